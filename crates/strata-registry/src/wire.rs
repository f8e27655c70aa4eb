//! What goes over the wire on push: layers the store keeps uncompressed
//! (docker-archive loads, uncompressed build layers) are gzip-compressed
//! first, as `docker push` does, and the manifest is rewritten to name the
//! compressed blobs. The image ID does not change (the config's diff IDs
//! are those of the uncompressed tars); only the pushed manifest digest
//! differs from the stored one. A compressed blob is recorded as the gzip
//! variant of its diff, so the next push of any image with that layer
//! reuses it instead of compressing again.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use strata_oci::media_types;
use strata_oci::{Descriptor, ImageManifest};
use strata_store::{ImageInfo, LayerRecord, Lease, Store};

use crate::error::Error;

/// The gzip media type for an uncompressed layer type, in the same family
/// (Docker or OCI); `None` when the layer needs no compression.
fn gzip_type_for(media_type: &str) -> Option<&'static str> {
    match media_type {
        media_types::DOCKER_LAYER_TAR => Some(media_types::DOCKER_LAYER_TAR_GZIP),
        media_types::OCI_LAYER_TAR => Some(media_types::OCI_LAYER_TAR_GZIP),
        _ => None,
    }
}

/// The manifest to push and its bytes: the stored ones, byte for byte,
/// when every layer is already compressed; otherwise a manifest naming
/// gzip blobs (made here, `jobs` at once, leased by `lease`).
pub(crate) fn wire_manifest(
    store: &Store,
    info: &ImageInfo,
    manifest: ImageManifest,
    stored_bytes: Vec<u8>,
    jobs: usize,
    lease: &Lease,
) -> Result<(ImageManifest, Vec<u8>), Error> {
    let todo: Vec<usize> = manifest
        .layers
        .iter()
        .enumerate()
        .filter(|(_, l)| gzip_type_for(&l.media_type).is_some())
        .map(|(i, _)| i)
        .collect();
    if todo.is_empty() {
        return Ok((manifest, stored_bytes));
    }
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<(usize, Result<Descriptor, Error>)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, 8).min(todo.len()) {
            s.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::SeqCst);
                let Some(&i) = todo.get(k) else { break };
                let r = compressed(store, info, &manifest.layers[i], lease);
                done.lock().unwrap_or_else(|p| p.into_inner()).push((i, r));
            });
        }
    });
    let mut out = manifest;
    for (i, r) in done.into_inner().unwrap_or_else(|p| p.into_inner()) {
        out.layers[i] = r?;
    }
    let bytes = serde_json::to_vec(&out).expect("manifest serializes");
    Ok((out, bytes))
}

/// The gzip descriptor for one uncompressed layer: a recorded one whose
/// blob is still present, else made now.
fn compressed(
    store: &Store,
    info: &ImageInfo,
    layer: &Descriptor,
    lease: &Lease,
) -> Result<Descriptor, Error> {
    let gzip_type = gzip_type_for(&layer.media_type).expect("only uncompressed layers");
    let diff_id = info
        .layers
        .iter()
        .find(|l| l.digest == layer.digest)
        .map(|l| l.diff_id.clone())
        // An uncompressed layer's blob digest is its diff ID.
        .unwrap_or_else(|| layer.digest.clone());
    if let Some(rec) = store.meta().layer_by_diff_id(&diff_id, Some(gzip_type))? {
        if rec.media_type == gzip_type && store.blobs().exists(&rec.digest) {
            lease.add_blob(&rec.digest)?;
            return Ok(Descriptor::new(gzip_type, rec.digest, rec.size));
        }
    }
    // In parallel, at the level build layers are stored with: the wire is
    // rarely fast enough for a higher level to pay for its CPU.
    let (digest, size) = strata_store::gzip_blob(
        store.blobs(),
        &layer.digest,
        &mut store.open_layer(&layer.digest)?,
        strata_store::diff::DEFAULT_GZIP_LEVEL,
        Some(lease),
    )?;
    store.meta().put_layer(&LayerRecord {
        digest: digest.clone(),
        diff_id,
        size,
        uncompressed_size: layer.size,
        media_type: gzip_type.to_string(),
    })?;
    Ok(Descriptor::new(gzip_type, digest, size))
}
