//! Build-cache export and import through a registry (`--cache-to
//! type=registry,ref=REF`, `--cache-from type=registry,ref=REF`) or a local
//! OCI layout directory (`type=local,dest=DIR` / `src=DIR`).
//!
//! The cache is the store's own cache index: key → opaque value (the
//! engine's JSON step record) plus the blobs it needs. It travels as one
//! OCI image manifest whose config (`application/vnd.strata.buildcache.v1+json`)
//! lists the entries and whose layers are every blob they need, so any
//! registry can hold it. Which keys to export (`mode=min`: the final
//! stage's chain; `mode=max`: every stage) is the engine's decision; it
//! passes the keys. Import downloads the blobs (verified) and writes the
//! entries into the local cache index, where the engine's lookups find them.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};
use strata_oci::{media_types, Descriptor, Digest, ImageManifest, Raw, Reference};
use strata_store::{CacheRecord, Store};

use crate::client::Client;
use crate::error::Error;
use crate::progress::{ProgressMode, Reporter};

/// The media type of the build cache's config blob (the cache document).
pub const CACHE_CONFIG_MEDIA_TYPE: &str = "application/vnd.strata.buildcache.v1+json";

/// The cache config document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheDocument {
    /// The document format version.
    pub version: u32,
    /// The exported cache entries.
    pub entries: Vec<CacheDocEntry>,
}

/// One exported build cache entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheDocEntry {
    /// The cache key.
    pub key: String,
    /// The cached value, as the store records it.
    pub value: String,
    /// Blobs the entry needs (pushed with the cache).
    pub blobs: Vec<Digest>,
}

/// A cache manifest, its config bytes and its layer descriptors.
type Built = (Raw<ImageManifest>, Vec<u8>, Vec<Descriptor>);

/// Builds the manifest and config for `keys` (missing keys are skipped).
fn build(store: &Store, keys: &[String]) -> Result<Built, Error> {
    let mut entries = Vec::new();
    let mut blobs: BTreeMap<Digest, Descriptor> = BTreeMap::new();
    let layer_types: BTreeMap<Digest, String> = store
        .meta()
        .layers()?
        .into_iter()
        .map(|l| (l.digest, l.media_type))
        .collect();
    for key in keys {
        let Some(rec) = store.meta().cache_get(key)? else {
            continue;
        };
        for d in &rec.blobs {
            if !blobs.contains_key(d) {
                let size = store.snapshotter().layer_size(d)?;
                let mt = layer_types
                    .get(d)
                    .cloned()
                    .unwrap_or_else(|| media_types::OCI_LAYER_TAR_GZIP.to_string());
                blobs.insert(d.clone(), Descriptor::new(mt, d.clone(), size));
            }
        }
        entries.push(CacheDocEntry {
            key: key.clone(),
            value: rec.value,
            blobs: rec.blobs,
        });
    }
    let doc = CacheDocument {
        version: 1,
        entries,
    };
    let config = serde_json::to_vec(&doc).expect("json");
    let cdesc = Descriptor::new(
        CACHE_CONFIG_MEDIA_TYPE,
        Digest::sha256_of(&config),
        config.len() as u64,
    );
    let layers: Vec<Descriptor> = blobs.into_values().collect();
    let manifest = Raw::from_value(ImageManifest::oci(cdesc, layers.clone()));
    Ok((manifest, config, layers))
}

/// Registers imported entries after checking their blobs are present.
fn register(store: &Store, doc: &CacheDocument) -> Result<usize, Error> {
    let mut n = 0;
    for e in &doc.entries {
        if e.blobs.iter().all(|d| store.has_layer(d)) {
            store.meta().cache_put(
                &e.key,
                &CacheRecord {
                    value: e.value.clone(),
                    blobs: e.blobs.clone(),
                    images: Vec::new(),
                },
            )?;
            n += 1;
        }
    }
    Ok(n)
}

/// Exports the cache entries `keys` to `reference`; returns the manifest digest.
pub fn export_to_registry(
    client: &Client,
    store: &Store,
    reference: &Reference,
    keys: &[String],
) -> Result<Digest, Error> {
    let (manifest, config, layers) = build(store, keys)?;
    let repo = reference.repository();
    let reporter = Reporter::new(ProgressMode::Quiet);
    store
        .blobs()
        .put(Some(manifest.config.digest.clone()).as_ref(), &config)?;
    let mut all = layers;
    all.push(manifest.config.clone());
    for d in &all {
        let bar = reporter.blob(&d.digest, d.size, "");
        crate::push::push_blob(client, store, repo, &d.digest, d.size, &[], 16 << 20, &bar)?;
    }
    let tag = reference.tag().unwrap_or("latest");
    client.put_manifest(repo, tag, media_types::OCI_MANIFEST, manifest.bytes())
}

/// Imports the cache at `reference`; returns how many entries were registered.
pub fn import_from_registry(
    client: &Client,
    store: &Store,
    reference: &Reference,
) -> Result<usize, Error> {
    let repo = reference.repository();
    let tag = reference.tag().unwrap_or("latest");
    let (bytes, _, _) = client.get_manifest(repo, tag)?;
    let manifest: ImageManifest = serde_json::from_slice(&bytes).map_err(|e| {
        Error::protocol(
            client.registry(),
            format!("cache {reference}"),
            e.to_string(),
        )
    })?;
    if manifest.config.media_type != CACHE_CONFIG_MEDIA_TYPE {
        return Err(Error::protocol(
            client.registry(),
            format!("cache {reference}"),
            format!(
                "not a strata build cache (config type {})",
                manifest.config.media_type
            ),
        ));
    }
    let config = client.get_blob_bytes(repo, &manifest.config.digest, 64 << 20)?;
    let doc: CacheDocument = serde_json::from_slice(&config).map_err(|e| {
        Error::protocol(
            client.registry(),
            format!("cache {reference}"),
            e.to_string(),
        )
    })?;
    let lease = store.lease(&format!("cache import {reference}"))?;
    for l in &manifest.layers {
        if store.blobs().exists(&l.digest) {
            store
                .blobs()
                .ingest_leased(Some(&l.digest), &mut io::empty(), Some(&lease))?;
        } else {
            client.fetch_blob(
                repo,
                &l.digest,
                l.size,
                store.blobs(),
                Some(&lease),
                &|_| {},
            )?;
        }
    }
    register(store, &doc)
}

/// Exports to an OCI layout directory (`type=local,dest=DIR`).
pub fn export_to_dir(store: &Store, dir: &Path, keys: &[String]) -> Result<Digest, Error> {
    let (manifest, config, layers) = build(store, keys)?;
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs)
        .map_err(|e| Error::io(format!("create {}", blobs.display()), e))?;
    let write = |d: &Digest, bytes: &[u8]| {
        std::fs::write(blobs.join(d.hex()), bytes)
            .map_err(|e| Error::io(format!("write {}", blobs.join(d.hex()).display()), e))
    };
    for l in &layers {
        let dest = blobs.join(l.digest.hex());
        if !dest.exists() {
            let mut src = store.open_layer(&l.digest)?;
            let mut out = std::fs::File::create(&dest)
                .map_err(|e| Error::io(format!("create {}", dest.display()), e))?;
            io::copy(&mut src, &mut out)
                .map_err(|e| Error::io(format!("write {}", dest.display()), e))?;
        }
    }
    write(&manifest.config.digest, &config)?;
    write(manifest.digest(), manifest.bytes())?;
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_INDEX,
        "manifests": [{"mediaType": media_types::OCI_MANIFEST, "digest": manifest.digest(), "size": manifest.size(),
                       "annotations": {"org.opencontainers.image.ref.name": "latest"}}],
    });
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&index).expect("json"),
    )
    .map_err(|e| Error::io(format!("write {}/index.json", dir.display()), e))?;
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
        .map_err(|e| Error::io(format!("write {}/oci-layout", dir.display()), e))?;
    Ok(manifest.digest().clone())
}

/// Largest index, manifest or config read from a cache directory.
const CACHE_JSON_LIMIT: u64 = 64 << 20;

fn cache_dir_error(cause: strata_oci::Error) -> Error {
    Error::Layout {
        what: "cache directory".into(),
        cause: Box::new(cause),
    }
}

/// Imports from an OCI layout directory (`type=local,src=DIR`), verifying
/// every blob as it is copied into the store.
pub fn import_from_dir(store: &Store, dir: &Path) -> Result<usize, Error> {
    // Opened beneath `dir`, regular files only: a FIFO would hang the
    // build, a symlink would read a host file (strata_oci::LayoutDir).
    let layout = strata_oci::archive::LayoutDir::open(dir).map_err(cache_dir_error)?;
    let read = |rel: &str| {
        layout
            .read_small(rel, CACHE_JSON_LIMIT)
            .map_err(cache_dir_error)
    };
    let index: serde_json::Value = serde_json::from_slice(&read("index.json")?)
        .map_err(|e| Error::Invalid(format!("{}/index.json: {e}", dir.display())))?;
    let mdigest: Digest = index["manifests"][0]["digest"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| Error::Invalid(format!("{}/index.json names no manifest", dir.display())))?;
    let blob_rel = |d: &Digest| format!("blobs/sha256/{}", d.hex());
    let bytes = read(&blob_rel(&mdigest))?;
    if Digest::sha256_of(&bytes) != mdigest {
        return Err(Error::Invalid(format!(
            "{}: manifest {mdigest} does not match its digest",
            dir.display()
        )));
    }
    let manifest: ImageManifest = serde_json::from_slice(&bytes)
        .map_err(|e| Error::Invalid(format!("cache manifest: {e}")))?;
    let config = read(&blob_rel(&manifest.config.digest))?;
    if Digest::sha256_of(&config) != manifest.config.digest {
        return Err(Error::Invalid(format!(
            "{}: cache config does not match its digest",
            dir.display()
        )));
    }
    let doc: CacheDocument = serde_json::from_slice(&config)
        .map_err(|e| Error::Invalid(format!("cache config: {e}")))?;
    let lease = store.lease(&format!("cache import {}", dir.display()))?;
    for l in &manifest.layers {
        let rel = blob_rel(&l.digest);
        let mut f = layout
            .open_file(&rel)
            .map_err(cache_dir_error)?
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "{}: cache layer {} is missing",
                    dir.display(),
                    l.digest
                ))
            })?;
        store
            .blobs()
            .ingest_leased(Some(&l.digest), &mut f, Some(&lease))?;
    }
    register(store, &doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache dir whose manifest blob is a FIFO, or a link to a host
    /// file: refused at once, naming the path (a FIFO used to hang).
    #[test]
    fn a_fifo_or_escaping_link_in_a_cache_dir_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(&t.path().join("store")).unwrap();
        let dir = t.path().join("cache");
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        let hex = "a".repeat(64);
        std::fs::write(
            dir.join("index.json"),
            format!(r#"{{"schemaVersion":2,"manifests":[{{"digest":"sha256:{hex}","size":1}}]}}"#),
        )
        .unwrap();
        let blob = dir.join("blobs/sha256").join(&hex);
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &blob,
            rustix::fs::Mode::from_raw_mode(0o644),
        )
        .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let (s2, d2) = (t.path().join("store"), dir.clone());
        std::thread::spawn(move || {
            let store = Store::open(&s2).unwrap();
            let _ = tx.send(import_from_dir(&store, &d2).map_err(|e| e.to_string()));
        });
        let e = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("importing a cache dir with a FIFO blob hung")
            .unwrap_err();
        assert!(e.contains("FIFO") && e.contains(&hex), "{e}");
        std::fs::remove_file(&blob).unwrap();
        std::fs::write(t.path().join("host-file"), b"{}").unwrap();
        std::os::unix::fs::symlink(t.path().join("host-file"), &blob).unwrap();
        let e = import_from_dir(&store, &dir).unwrap_err().to_string();
        assert!(e.contains("leads out of"), "{e}");
    }
}
