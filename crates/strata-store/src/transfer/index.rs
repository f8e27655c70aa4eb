//! Multi-platform tags: an index (Docker manifest list, or OCI index when
//! an entry is an OCI manifest) over images already in the store, written
//! as a blob and recorded under one tag; and choosing a tag's image for a
//! platform.

use strata_oci::{media_types, Descriptor, Digest, ImageIndex, Platform, Reference};

use super::{resolve_image, Result, TransferError};
use crate::{Lease, Store};

/// One platform's image in a multi-platform tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// The platform.
    pub platform: Platform,
    /// The image ID.
    pub image: Digest,
}

/// The platform an image's config states (normalized).
pub fn image_platform(store: &Store, image: &Digest) -> Result<Platform> {
    let info = store
        .meta()
        .image(image)?
        .ok_or_else(|| TransferError::Invalid(format!("image {image} not found in the store")))?;
    let bytes = store.blobs().read(&info.config_digest)?;
    config_platform(&bytes)
        .map_err(|e| TransferError::Invalid(format!("config of image {image}: {e}")))
}

/// The platform an image config's JSON states, normalized (no `os`:
/// linux; no `architecture`: amd64).
pub(crate) fn config_platform(bytes: &[u8]) -> serde_json::Result<Platform> {
    let v: serde_json::Value = serde_json::from_slice(bytes)?;
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    let (os, arch, variant) = (s("os"), s("architecture"), s("variant"));
    let os = if os.is_empty() {
        "linux".to_string()
    } else {
        os
    };
    let arch = if arch.is_empty() {
        "amd64".to_string()
    } else {
        arch
    };
    Ok(Platform::new(
        &os,
        &arch,
        (!variant.is_empty()).then_some(variant.as_str()),
    )
    .normalized())
}

/// Writes the index blob over `entries` (one per platform; a later
/// duplicate platform replaces an earlier one). Returns its digest and the
/// entries it lists, normalized.
pub fn write_index(
    store: &Store,
    entries: &[IndexEntry],
    lease: Option<&Lease>,
) -> Result<(Digest, Vec<IndexEntry>)> {
    let mut uniq: Vec<IndexEntry> = Vec::new();
    for e in entries {
        let e = IndexEntry {
            platform: e.platform.normalized(),
            image: e.image.clone(),
        };
        match uniq.iter_mut().find(|u| u.platform.matches(&e.platform)) {
            Some(u) => *u = e,
            None => uniq.push(e),
        }
    }
    if uniq.is_empty() {
        return Err(TransferError::Invalid(
            "an index needs at least one image".into(),
        ));
    }
    let mut descs = Vec::new();
    let mut all_docker = true;
    for e in &uniq {
        let info = store.meta().image(&e.image)?.ok_or_else(|| {
            TransferError::Invalid(format!("image {} not found in the store", e.image))
        })?;
        all_docker &= info.manifest_media_type == media_types::DOCKER_MANIFEST;
        let size = store.blobs().size(&info.manifest_digest)?;
        let mut d = Descriptor::new(
            &info.manifest_media_type,
            info.manifest_digest.clone(),
            size,
        );
        d.platform = Some(e.platform.clone());
        descs.push(d);
    }
    let index = if all_docker {
        ImageIndex::docker(descs)
    } else {
        ImageIndex::oci(descs)
    };
    let bytes = serde_json::to_vec(&index).expect("index serializes");
    let (digest, _) = store.blobs().ingest_leased(None, &mut &bytes[..], lease)?;
    Ok((digest, uniq))
}

/// Writes the index over `entries` ([`write_index`]) and tags `name` (a
/// full reference) with it. The plain tag points at the host platform's
/// image, else the first entry's. Returns the index digest.
pub fn tag_index(
    store: &Store,
    name: &str,
    entries: &[IndexEntry],
    lease: Option<&Lease>,
) -> Result<Digest> {
    let (digest, uniq) = write_index(store, entries, lease)
        .map_err(|e| TransferError::Invalid(format!("{name}: {e}")))?;
    let host = Platform::host();
    let default = uniq
        .iter()
        .find(|e| e.platform.matches(&host))
        .unwrap_or(&uniq[0])
        .image
        .clone();
    let rows: Vec<(String, Digest)> = uniq
        .iter()
        .map(|e| (e.platform.to_string(), e.image.clone()))
        .collect();
    store.meta().put_index_tag(name, &digest, &rows, &default)?;
    Ok(digest)
}

/// The entries of a multi-platform tag (`None` for a plain tag or a name
/// that is not a tag).
pub fn index_entries(store: &Store, name: &str) -> Result<Option<(Digest, Vec<IndexEntry>)>> {
    let Ok(r) = Reference::parse(name) else {
        return Ok(None);
    };
    if r.digest().is_some() {
        return Ok(None);
    }
    let Some((digest, rows)) = store.meta().index_tag(&r.to_string())? else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for (p, image) in rows {
        let platform = Platform::parse(&p).map_err(strata_oci::Error::from)?;
        out.push(IndexEntry { platform, image });
    }
    Ok(Some((digest, out)))
}

/// Finds an image for `platform`: a multi-platform tag gives the entry of
/// that platform (an error naming the ones it has when it has none), any
/// other name resolves as [`resolve_image`] does.
pub fn resolve_image_for(store: &Store, name: &str, platform: &Platform) -> Result<Option<Digest>> {
    if let Some((_, entries)) = index_entries(store, name)? {
        return match entries.iter().find(|e| e.platform.matches(platform)) {
            Some(e) => Ok(Some(e.image.clone())),
            None => Err(TransferError::Invalid(format!(
                "image {name} has no variant for platform {platform} (it has {})",
                entries
                    .iter()
                    .map(|e| e.platform.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        };
    }
    resolve_image(store, name)
}
