//! `load`: an archive (or an OCI layout directory) into the store, all or
//! nothing. See the module docs of `transfer`.

use std::io::Read;
use std::path::Path;

use strata_oci::archive::{ArchiveContents, ArchiveImage};
use strata_oci::{media_types, Digest};

use super::index::config_platform;
use super::sink::{StagingSink, Unpacked};
use super::{Result, TransferError};
use crate::meta::{ImageRecord, LayerRecord, Lease};
use crate::store::Store;

/// One image a load registered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedImage {
    /// The image ID (config digest).
    pub id: Digest,
    /// Full references now pointing at it (empty: untagged).
    pub names: Vec<String>,
    /// Tags that pointed at another image before: (tag, previous image).
    pub moved: Vec<(String, Digest)>,
}

/// Loads a `docker save` archive or an OCI layout tar (gzipped or not).
pub fn load_archive(store: &Store, input: impl Read) -> Result<Vec<LoadedImage>> {
    // What an earlier load killed with SIGKILL left (SIGTERM and SIGINT
    // are cleaned up by the CLI before it exits).
    let _ = store.remove_dead_temp_blobs();
    let lease = store.lease("load")?;
    let mut sink = StagingSink::new(store, &lease)?;
    let contents = strata_oci::read_archive(input, &mut sink)?;
    register_images(store, sink, &contents, &lease)
}

/// Loads an OCI image layout directory (`skopeo copy ... oci:DIR`).
pub fn load_layout_dir(store: &Store, dir: &Path) -> Result<Vec<LoadedImage>> {
    let _ = store.remove_dead_temp_blobs();
    let lease = store.lease("load")?;
    let mut sink = StagingSink::new(store, &lease)?;
    let contents = strata_oci::read_oci_layout_dir(dir, &mut sink)?;
    register_images(store, sink, &contents, &lease)
}

/// Checks every image of `contents` against what went through `sink`,
/// then publishes the staged blobs and registers the images and their
/// names. Nothing is published when a check fails.
pub fn register_images(
    store: &Store,
    sink: StagingSink<'_>,
    contents: &ArchiveContents,
    lease: &Lease,
) -> Result<Vec<LoadedImage>> {
    if contents.images.is_empty() {
        return Err(TransferError::Invalid(
            "the archive holds no image (its index or manifest.json is empty)".into(),
        ));
    }
    let records: Vec<ImageRecord> = contents
        .images
        .iter()
        .map(|img| image_record(store, &sink, img))
        .collect::<Result<_>>()?;
    let unpacked = sink.commit()?;
    let mut out = Vec::new();
    for (img, rec) in contents.images.iter().zip(&records) {
        if img.manifest_synthesised {
            let m = &img.manifest;
            store
                .blobs()
                .ingest_leased(Some(m.digest()), &mut m.bytes(), Some(lease))?;
        }
        let prevs = store.register_image(rec, Some(lease), &img.names)?;
        let mut loaded = LoadedImage {
            id: rec.id.clone(),
            names: Vec::new(),
            moved: Vec::new(),
        };
        for (name, prev) in img.names.iter().zip(prevs) {
            if let Some(prev) = prev.filter(|p| *p != rec.id) {
                loaded.moved.push((name.clone(), prev));
            }
        }
        loaded.names = img.names.clone();
        out.push(loaded);
    }
    keep_unpacked(store, &contents.images, &records, unpacked, lease);
    Ok(out)
}

/// Commits the layers the load unpacked while reading the archive as the
/// snapshots of the host-platform images that use them (the rest are
/// dropped), so that [`unpack_images`] finds them present. Best effort:
/// a layer not committed here is unpacked from its blob there. Each
/// record's diff IDs are those its layers' tars hashed to
/// ([`image_record`] refused the load otherwise), so they name the
/// snapshots.
fn keep_unpacked(
    store: &Store,
    images: &[ArchiveImage],
    records: &[ImageRecord],
    mut unpacked: Unpacked,
    lease: &Lease,
) {
    let host = strata_oci::Platform::host().architecture;
    let snapshots = store.snapshotter();
    for (img, rec) in images.iter().zip(records) {
        if unpacked.is_empty() {
            return;
        }
        if !config_platform(img.config.bytes()).is_ok_and(|p| p.architecture == host) {
            continue;
        }
        let diff_ids: Vec<Digest> = rec.layers.iter().map(|l| l.diff_id.clone()).collect();
        for (layer, chain_id) in rec.layers.iter().zip(strata_oci::chain_ids(&diff_ids)) {
            let Some(applied) = unpacked.remove(&layer.digest) else {
                continue;
            };
            if !snapshots.exists(&chain_id) {
                let _ = applied.commit(snapshots, &chain_id, Some(lease));
            }
        }
    }
}

/// Unpacks the layers of `images` into snapshots now (in parallel), as
/// `docker load` does, so the first `run` or build on a loaded image
/// starts at once instead of paying the unpack there. Held by a lease of
/// its own: an untagged loaded image may meet a concurrent prune.
pub fn unpack_images(store: &Store, images: &[Digest]) -> Result<()> {
    let lease = store.lease("unpack loaded images")?;
    for id in images {
        lease.add_image(id)?;
        let Some(info) = store.meta().image(id)? else {
            continue; // removed meanwhile
        };
        let chain: Vec<(Digest, Digest)> = info
            .layers
            .iter()
            .map(|l| (l.diff_id.clone(), l.digest.clone()))
            .collect();
        store.snapshotter().prepare_leased(&chain, Some(&lease))?;
    }
    Ok(())
}

/// The record for one archive image, checking that each layer is present
/// and decompresses to the diff ID its config names.
fn image_record(store: &Store, sink: &StagingSink<'_>, img: &ArchiveImage) -> Result<ImageRecord> {
    let id = img.config_digest.clone();
    let diff_ids = img.config.diff_ids();
    if diff_ids.len() != img.layers.len() {
        return Err(TransferError::Invalid(format!(
            "image {id}: the manifest lists {} layers but the config {} diff IDs; the archive is corrupt",
            img.layers.len(),
            diff_ids.len()
        )));
    }
    let mut layers = Vec::with_capacity(img.layers.len());
    for (i, (desc, want)) in img.layers.iter().zip(diff_ids).enumerate() {
        let (diff_id, uncompressed) = match sink.layer_facts(&desc.digest) {
            Some(Ok(f)) => {
                if let Some((entry, why)) = &f.bad_entry {
                    let name = img
                        .names
                        .first()
                        .map(|n| format!("{n} ({id})"))
                        .unwrap_or_else(|| id.to_string());
                    return Err(TransferError::Invalid(format!(
                        "image {name}: layer {i} ({}) can never be unpacked: entry {entry:?}: \
                         {why}; refusing to load it",
                        desc.digest
                    )));
                }
                (f.diff_id.clone(), f.size)
            }
            Some(Err(why)) => {
                return Err(TransferError::Invalid(format!(
                    "image {id}: layer {i} ({}) cannot be decompressed: {why}",
                    desc.digest
                )))
            }
            None => known_layer(store, &id, i, &desc.digest, &desc.media_type)?,
        };
        if diff_id != *want {
            return Err(TransferError::Invalid(format!(
                "image {id}: layer {i} ({}) unpacks to diff ID {diff_id} but the config says {want}; the archive is corrupt",
                desc.digest
            )));
        }
        layers.push(LayerRecord {
            digest: desc.digest.clone(),
            diff_id,
            size: desc.size,
            uncompressed_size: uncompressed,
            media_type: desc.media_type.clone(),
        });
    }
    Ok(ImageRecord {
        id: id.clone(),
        manifest_digest: img.manifest.digest().clone(),
        manifest_media_type: img.manifest.media_type().to_string(),
        config_digest: id,
        layers,
        created: img.config.created.clone().unwrap_or_default(),
    })
}

/// A layer the archive does not hold (a foreign layer): usable only when
/// the store already has it.
fn known_layer(
    store: &Store,
    id: &Digest,
    i: usize,
    digest: &Digest,
    media_type: &str,
) -> Result<(Digest, u64)> {
    let rec = store
        .meta()
        .layers()?
        .into_iter()
        .find(|l| l.digest == *digest && store.snapshotter().has_layer(digest));
    match rec {
        Some(l) => Ok((l.diff_id, l.uncompressed_size)),
        None if media_types::is_foreign_layer(media_type) => Err(TransferError::Invalid(format!(
            "image {id}: layer {i} ({digest}) is a foreign layer the archive does not hold; \
             strata cannot download foreign layers"
        ))),
        None => Err(TransferError::Invalid(format!(
            "image {id}: layer {i} ({digest}) is not in the archive; the archive is incomplete"
        ))),
    }
}
