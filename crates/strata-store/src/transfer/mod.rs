//! Images in and out of the store as archives: `load` (docker-archive or
//! OCI layout, tar or directory, gzip or not), `save` (docker-archive or
//! OCI layout tar), `import` (a rootfs tar as one gzip layer), and the
//! registration path they share with the registry client
//! ([`commit_image`], [`register_images`]).
//!
//! Load is all-or-nothing: every blob is hashed as it streams in and kept
//! in a flocked temp file (GC leaves it alone) until the whole archive has
//! been read and every digest, size and diff ID checked; only then are the
//! blobs published (under a lease) and the images registered. A truncated
//! or corrupt archive leaves the store exactly as it was.

mod import;
mod index;
mod load;
mod save;
pub(crate) mod sink;

use strata_oci::{media_types, Descriptor, Digest, ImageConfig, ImageManifest, Raw, Reference};

use crate::error::StoreError;
use crate::meta::{ImageRecord, LayerRecord, Lease};
use crate::store::Store;

pub use import::import_layer;
pub use index::{
    image_platform, index_entries, resolve_image_for, tag_index, write_index, IndexEntry,
};
pub use load::{load_archive, load_layout_dir, register_images, unpack_images, LoadedImage};
pub use save::{
    save_images, save_oci_with_indexes, ArchiveFormat, ImageToExport, IndexToExport, StoreBlobs,
};
pub use sink::{scan_layer, LayerScan, StagingSink};

/// Errors of archive transfer: the store's or the archive's.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The archive is unreadable or invalid.
    #[error(transparent)]
    Archive(#[from] strata_oci::Error),
    /// A request that cannot be done (bad argument, inconsistent image).
    #[error("{0}")]
    Invalid(String),
}

/// The result type of archive transfer.
pub type Result<T, E = TransferError> = std::result::Result<T, E>;

/// Finds an image as `docker` does for an IMAGE argument: a full ID, a tag
/// (`busybox`, `busybox:1.35`, `docker.io/library/busybox:1.35`), a repo
/// digest (`busybox@sha256:...`), then a unique ID prefix of at least 4 hex digits. `None` when nothing matches.
pub fn resolve_image(store: &Store, name: &str) -> Result<Option<Digest>> {
    if let Ok(d) = name.parse::<Digest>() {
        return Ok(store.meta().image(&d)?.map(|_| d));
    }
    if let Ok(r) = Reference::parse(name) {
        let found = match r.digest() {
            // `name@sha256:...`: a manifest digest a pull or push recorded
            // (a tag beside the digest is ignored, as Docker does).
            Some(d) => store
                .meta()
                .resolve_repo_digest(&format!("{}@{d}", r.name()))?,
            None => store.meta().resolve_tag(&r.to_string())?,
        };
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(store.meta().find_image_by_id_prefix(name)?)
}

/// Stores a config we made (import, commit) and a Docker v2 schema 2
/// manifest for it, and registers the image (untagged). The layer blobs
/// must already be in the store. Returns the image ID (the config digest).
pub fn commit_image(
    store: &Store,
    config: &Raw<ImageConfig>,
    layers: &[LayerRecord],
    lease: Option<&Lease>,
) -> Result<Digest> {
    let diff_ids: Vec<&Digest> = layers.iter().map(|l| &l.diff_id).collect();
    if config.rootfs.diff_ids.iter().collect::<Vec<_>>() != diff_ids {
        return Err(TransferError::Invalid(format!(
            "config {} lists diff IDs that do not match its {} layers",
            config.digest(),
            layers.len()
        )));
    }
    let blobs = store.blobs();
    blobs.ingest_leased(Some(config.digest()), &mut config.bytes(), lease)?;
    let manifest = Raw::from_value(ImageManifest::docker(
        Descriptor::new(
            media_types::DOCKER_CONFIG,
            config.digest().clone(),
            config.size(),
        ),
        layers
            .iter()
            .map(|l| Descriptor::new(l.media_type.clone(), l.digest.clone(), l.size))
            .collect(),
    ));
    blobs.ingest_leased(Some(manifest.digest()), &mut manifest.bytes(), lease)?;
    let id = config.digest().clone();
    let rec = ImageRecord {
        id: id.clone(),
        manifest_digest: manifest.digest().clone(),
        manifest_media_type: media_types::DOCKER_MANIFEST.to_string(),
        config_digest: id.clone(),
        layers: layers.to_vec(),
        created: config.created.clone().unwrap_or_default(),
    };
    store.register_image(&rec, lease, &[])?;
    Ok(id)
}
