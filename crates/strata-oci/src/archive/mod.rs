//! Archive codecs: `docker save` archives (legacy `<id>/layer.tar` layout
//! and the Docker 25+ layout that is also an OCI layout) and OCI image
//! layouts (as a directory or a tar), read and written as streams.
//!
//! Blobs never pass through memory whole: readers hand each blob to a
//! [`BlobSink`] as it streams by; writers pull each blob from a
//! [`BlobSource`] that knows its size. Small JSON blobs (manifests,
//! configs, indexes) are also kept in memory while reading so the
//! archive's metadata can be resolved at the end, whatever the entry order.

mod docker;
mod layout_dir;
mod oci_layout;
mod reader;
mod tar_io;
mod writer;

use std::io::Read;

use crate::config::ImageConfig;
use crate::descriptor::{Descriptor, Platform};
use crate::digest::Digest;
use crate::error::Error;
use crate::manifest::ImageManifest;
use crate::raw::Raw;
use crate::reference::Reference;

pub use layout_dir::LayoutDir;
pub use oci_layout::read_oci_layout_dir;
pub use reader::read_archive;
pub use writer::{
    write_docker_archive, write_oci_archive, write_oci_archive_with_indexes, write_oci_layout_dir,
    IndexToSave,
};

/// Where a reader puts blobs as they stream by.
pub trait BlobSink {
    /// Consumes `data` to its end and returns the sha256 digest of what it
    /// read. `expected` is `Some` when the archive names the digest
    /// (`blobs/sha256/<hex>`), `None` for legacy `<id>/layer.tar` and
    /// `<id>.json` entries; a sink may refuse a mismatch itself, and the
    /// reader refuses one in any case. `size_hint` is the entry's size.
    fn put_blob(
        &mut self,
        expected: Option<&Digest>,
        size_hint: Option<u64>,
        data: &mut dyn Read,
    ) -> Result<Digest, Error>;
}

/// Where a writer gets blobs from.
pub trait BlobSource {
    /// A reader over the blob and its exact size in bytes.
    fn open_blob(&self, digest: &Digest) -> Result<(Box<dyn Read + '_>, u64), Error>;
}

/// What an archive holds, once its blobs went to the sink.
#[derive(Debug, Clone)]
pub struct ArchiveContents {
    /// The images, in the order the archive lists them.
    pub images: Vec<ArchiveImage>,
}

/// One image found in an archive.
#[derive(Debug, Clone)]
pub struct ArchiveImage {
    /// The manifest: its exact bytes when the archive holds one (OCI
    /// layouts, Docker 25+ archives), or a Docker v2 schema 2 manifest
    /// synthesised for a legacy archive (see `manifest_synthesised`).
    pub manifest: Raw<ImageManifest>,
    /// True when `manifest` was made up by the reader: its bytes were not
    /// in the archive and were not given to the sink; store them yourself.
    pub manifest_synthesised: bool,
    /// The config, with its exact bytes (they also went to the sink).
    pub config: Raw<ImageConfig>,
    /// The config's digest (the image ID).
    pub config_digest: Digest,
    /// The layer descriptors, bottom first, as in the manifest. Foreign
    /// layers that the archive does not hold are listed too.
    pub layers: Vec<Descriptor>,
    /// Names as the archive gives them, normalised
    /// (`docker.io/library/busybox:latest`): `RepoTags` of `manifest.json`,
    /// `io.containerd.image.name`, or `org.opencontainers.image.ref.name`
    /// when it is a whole reference. Empty for untagged images.
    pub names: Vec<String>,
    /// The platform the index states for this manifest, if any.
    pub platform: Option<Platform>,
}

/// One image for a writer.
#[derive(Debug, Clone)]
pub struct ImageToSave {
    /// The manifest's exact bytes.
    pub manifest_bytes: Vec<u8>,
    /// The manifest's digest.
    pub manifest_digest: Digest,
    /// The manifest's media type.
    pub manifest_media_type: String,
    /// The config's exact bytes.
    pub config_bytes: Vec<u8>,
    /// The config's digest (the image ID).
    pub config_digest: Digest,
    /// The layers as the manifest lists them; their blobs come from the
    /// `BlobSource` (foreign layers the source lacks are skipped).
    pub layers: Vec<Descriptor>,
    /// Names to record (`RepoTags`, index annotations).
    pub names: Vec<Reference>,
}

impl ImageToSave {
    /// Builds one from a manifest and config the store holds, checking that
    /// the manifest names this config.
    pub fn new(
        manifest: &Raw<ImageManifest>,
        config: &Raw<ImageConfig>,
        names: Vec<Reference>,
    ) -> Result<ImageToSave, Error> {
        if manifest.config.digest != *config.digest() {
            return Err(Error::Invalid {
                why: format!(
                    "manifest {} names config {}, not {}",
                    manifest.digest(),
                    manifest.config.digest,
                    config.digest()
                ),
            });
        }
        Ok(ImageToSave {
            manifest_bytes: manifest.bytes().to_vec(),
            manifest_digest: manifest.digest().clone(),
            manifest_media_type: manifest.media_type().to_string(),
            config_bytes: config.bytes().to_vec(),
            config_digest: config.digest().clone(),
            layers: manifest.layers.clone(),
            names,
        })
    }
}

/// Drops repeated names, keeping the first of each, in order: linear (a
/// set), where `contains` per name was quadratic. Names are gathered with
/// plain `extend` and deduplicated once at the end.
pub(crate) fn dedup_names(names: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::with_capacity(names.len());
    names.retain(|n| seen.insert(n.clone()));
}
