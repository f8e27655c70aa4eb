//! `save`: images from the store into a docker-archive or an OCI layout
//! tar, streamed (each blob is read from its file as the tar is written).

use std::io::{BufReader, Read, Write};

use strata_oci::archive::{BlobSource, ImageToSave};
use strata_oci::{Digest, ImageConfig, ImageManifest, Raw, Reference};

use super::{Result, TransferError};
use crate::snapshot::Snapshotter;
use crate::store::Store;

/// The archive layout `save` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// What `docker save` writes (Docker 25+ layout: an OCI layout plus
    /// `manifest.json`), readable by every `docker load` and by OCI tools.
    Docker,
    /// An OCI image layout tar (`oci-archive:`).
    Oci,
}

/// One image to save and the names to record for it (none: untagged).
#[derive(Clone, Debug)]
pub struct ImageToExport {
    /// The image ID.
    pub id: Digest,
    /// Names to record for it.
    pub names: Vec<Reference>,
}

/// The store's blobs and built layers as a [`BlobSource`].
pub struct StoreBlobs<'a>(pub &'a Snapshotter);

impl BlobSource for StoreBlobs<'_> {
    fn open_blob(&self, digest: &Digest) -> Result<(Box<dyn Read + '_>, u64), strata_oci::Error> {
        // A built layer has no blob: its tar is made again from its
        // snapshot (and checked against its digest as it streams).
        let size = self
            .0
            .layer_size(digest)
            .map_err(|e| strata_oci::Error::external(format!("stat blob {digest}"), e))?;
        let r = self
            .0
            .open_layer(digest)
            .map_err(|e| strata_oci::Error::external(format!("open blob {digest}"), e))?;
        Ok((Box::new(BufReader::with_capacity(256 * 1024, r)), size))
    }
}

/// Writes `images` to `out` as `format`. The images are held by a lease
/// while they are written, so a concurrent `rmi` + prune cannot pull
/// blobs from under the writer.
pub fn save_images(
    store: &Store,
    out: impl Write,
    images: &[ImageToExport],
    format: ArchiveFormat,
) -> Result<()> {
    let lease = store.lease("save")?;
    let to_save = leased_images_to_save(store, &lease, images)?;
    let source = StoreBlobs(store.snapshotter());
    match format {
        ArchiveFormat::Docker => strata_oci::write_docker_archive(out, &to_save, &source)?,
        ArchiveFormat::Oci => strata_oci::write_oci_archive(out, &to_save, &source)?,
    }
    Ok(())
}

/// A multi-platform tag to export: its index blob, its images, its names.
#[derive(Debug, Clone)]
pub struct IndexToExport {
    /// The index blob's digest.
    pub index: Digest,
    /// The images it lists.
    pub members: Vec<Digest>,
    /// Names to record for it.
    pub names: Vec<Reference>,
}

/// Writes `images` and multi-platform `indexes` to `out` as an OCI archive
/// (each index named in `index.json`, its manifests beside it).
pub fn save_oci_with_indexes(
    store: &Store,
    out: impl Write,
    images: &[ImageToExport],
    indexes: &[IndexToExport],
) -> Result<()> {
    let lease = store.lease("save")?;
    let to_save = leased_images_to_save(store, &lease, images)?;
    let mut ix_save = Vec::new();
    for ix in indexes {
        let mut members = Vec::new();
        for m in &ix.members {
            lease.add_image(m)?;
            members.push(image_to_save(
                store,
                &ImageToExport {
                    id: m.clone(),
                    names: Vec::new(),
                },
            )?);
        }
        let bytes = store.blobs().read(&ix.index)?;
        let media_type = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["mediaType"].as_str().map(str::to_string))
            .unwrap_or_else(|| strata_oci::media_types::OCI_INDEX.to_string());
        ix_save.push(strata_oci::IndexToSave {
            bytes,
            digest: ix.index.clone(),
            media_type,
            names: ix.names.clone(),
            members,
        });
    }
    let source = StoreBlobs(store.snapshotter());
    strata_oci::write_oci_archive_with_indexes(out, &to_save, &ix_save, &source)?;
    Ok(())
}

/// Each of `images` held by `lease` (so that no GC removes its blobs while
/// they are written), then read for the archive writer.
fn leased_images_to_save(
    store: &Store,
    lease: &crate::Lease,
    images: &[ImageToExport],
) -> Result<Vec<ImageToSave>> {
    let mut to_save = Vec::with_capacity(images.len());
    for img in images {
        lease.add_image(&img.id)?;
        to_save.push(image_to_save(store, img)?);
    }
    Ok(to_save)
}

fn image_to_save(store: &Store, img: &ImageToExport) -> Result<ImageToSave> {
    let info = store
        .meta()
        .image(&img.id)?
        .ok_or_else(|| TransferError::Invalid(format!("image {} is not in the store", img.id)))?;
    let manifest: Raw<ImageManifest> = Raw::from_bytes(
        store.blobs().read(&info.manifest_digest)?,
        &format!("manifest {}", info.manifest_digest),
    )?;
    let config: Raw<ImageConfig> = Raw::from_bytes(
        store.blobs().read(&info.config_digest)?,
        &format!("config {}", info.config_digest),
    )?;
    Ok(ImageToSave::new(&manifest, &config, img.names.clone())?)
}
