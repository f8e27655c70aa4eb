//! Images in and out of the store: resolving a base image by name, loading
//! its config and layers, and committing a built image (config blob, Docker
//! v2 schema 2 manifest, image record, tags).

use strata_oci::{media_types, Descriptor, Digest, ImageManifest, Reference};
use strata_store::{ImageRecord, Lease, Store};

use crate::cache::LayerRef;
use crate::config::{ConfigEditor, ImageConfig};

/// A base image loaded from the store.
#[derive(Debug, Clone)]
pub struct BaseImage {
    /// The image ID (digest of its config).
    pub id: Digest,
    /// Its config.
    pub config: ImageConfig,
    /// Its layers, bottom first.
    pub layers: Vec<LayerRef>,
}

/// Why an image could not be loaded from the store.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// No image of that name or ID.
    #[error("image {0} not found in the store: pull it (strata pull) or load/import it (strata load, strata import)")]
    NotFound(String),
    /// The name is no image reference.
    #[error("invalid image reference {0:?}: {1}")]
    BadReference(String, String),
    /// The stored config or manifest cannot be read.
    #[error("image {0}: {1}")]
    Corrupt(String, String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] strata_store::StoreError),
}

/// The full reference a name resolves to (`busybox` ->
/// `docker.io/library/busybox:latest`).
pub fn normalize(name: &str) -> Result<String, ImageError> {
    Reference::parse(name)
        .map(|r| r.to_string())
        .map_err(|e| ImageError::BadReference(name.to_string(), e.to_string()))
}

/// Finds an image by name, full reference, repo digest, ID or ID prefix
/// (the store's rules, shared with the CLI's IMAGE arguments).
pub fn find_image_id(store: &Store, name: &str) -> Result<Digest, ImageError> {
    match strata_store::transfer::resolve_image(store, name) {
        Ok(Some(id)) => Ok(id),
        Ok(None) => Err(ImageError::NotFound(name.to_string())),
        Err(strata_store::transfer::TransferError::Store(e)) => Err(ImageError::Store(e)),
        Err(e) => Err(ImageError::Corrupt(name.to_string(), e.to_string())),
    }
}

/// Loads an image's config and layers.
pub fn load_image(store: &Store, name: &str) -> Result<BaseImage, ImageError> {
    let id = find_image_id(store, name)?;
    let info = store
        .meta()
        .image(&id)?
        .ok_or_else(|| ImageError::NotFound(name.to_string()))?;
    let bytes = store.blobs().read(&info.config_digest)?;
    let config = crate::config::from_json(&bytes)
        .map_err(|e| ImageError::Corrupt(name.to_string(), format!("config: {e}")))?;
    let layers = info
        .layers
        .iter()
        .map(|l| LayerRef {
            digest: l.digest.clone(),
            diff_id: l.diff_id.clone(),
            size: l.size,
            uncompressed_size: l.uncompressed_size,
            media_type: l.media_type.clone(),
        })
        .collect();
    Ok(BaseImage { id, config, layers })
}

/// Writes the config and manifest blobs and registers the image (untagged).
/// Returns the image ID (the config digest).
pub fn commit_image(
    store: &Store,
    config: &ImageConfig,
    layers: &[LayerRef],
    lease: Option<&Lease>,
) -> Result<Digest, ImageError> {
    commit_image_annotated(store, config, layers, lease, &Default::default()).map(|(id, _)| id)
}

/// [`commit_image`] with manifest annotations (`build --annotation`);
/// returns the image ID and the manifest digest.
pub fn commit_image_annotated(
    store: &Store,
    config: &ImageConfig,
    layers: &[LayerRef],
    lease: Option<&Lease>,
    annotations: &std::collections::BTreeMap<String, String>,
) -> Result<(Digest, Digest), ImageError> {
    let mut config = config.clone();
    config.rootfs.kind = "layers".into();
    config.rootfs.diff_ids = layers.iter().map(|l| l.diff_id.clone()).collect();
    let config_bytes = config.to_json();
    let (config_digest, config_size) =
        store
            .blobs()
            .ingest_leased(None, &mut &config_bytes[..], lease)?;
    let manifest = ImageManifest::docker(
        Descriptor::new(
            media_types::DOCKER_CONFIG,
            config_digest.clone(),
            config_size,
        ),
        layers
            .iter()
            .map(|l| Descriptor::new(docker_media_type(&l.media_type), l.digest.clone(), l.size))
            .collect(),
    );
    let mut manifest = manifest;
    if !annotations.is_empty() {
        manifest.annotations = Some(annotations.clone());
    }
    let manifest_bytes = serde_json::to_vec(&manifest).expect("manifest serializes");
    let (manifest_digest, _) =
        store
            .blobs()
            .ingest_leased(None, &mut &manifest_bytes[..], lease)?;
    let rec = ImageRecord {
        id: config_digest.clone(),
        manifest_digest: manifest_digest.clone(),
        manifest_media_type: media_types::DOCKER_MANIFEST.to_string(),
        config_digest: config_digest.clone(),
        layers: layers.to_vec(),
        created: config.created.clone().unwrap_or_default(),
    };
    store.register_image(&rec, lease, &[])?;
    Ok((config_digest, manifest_digest))
}

/// The Docker media type matching a layer's (OCI or Docker) media type.
fn docker_media_type(mt: &str) -> &str {
    match mt {
        media_types::OCI_LAYER_TAR_GZIP => media_types::DOCKER_LAYER_TAR_GZIP,
        media_types::OCI_LAYER_TAR => media_types::DOCKER_LAYER_TAR,
        media_types::OCI_LAYER_TAR_ZSTD => media_types::DOCKER_LAYER_TAR_ZSTD,
        other => other,
    }
}

/// Tags `id` with each name (normalised). Returns the full references.
pub fn tag_image(store: &Store, id: &Digest, names: &[String]) -> Result<Vec<String>, ImageError> {
    let mut out = Vec::new();
    for n in names {
        let full = normalize(n)?;
        store.meta().tag(&full, id)?;
        out.push(full);
    }
    Ok(out)
}
