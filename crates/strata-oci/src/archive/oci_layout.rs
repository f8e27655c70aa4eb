//! OCI image layouts (`oci-layout`, `index.json`, `blobs/sha256/...`):
//! resolving `index.json` into images, whether the layout came as a tar or
//! sits in a directory, and reading a layout directory.

use std::collections::{HashMap, HashSet};
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use super::layout_dir::LayoutDir;
use super::reader::JSON_BLOB_LIMIT;
use super::tar_io::Tee;
use super::{ArchiveContents, ArchiveImage, BlobSink};
use crate::config::ImageConfig;
use crate::descriptor::{annotations, Descriptor, Platform};
use crate::digest::Digest;
use crate::error::Error;
use crate::manifest::{ImageIndex, ImageManifest};
use crate::media_types;
use crate::raw::Raw;
use crate::reference::Reference;

/// Annotation BuildKit puts on attestation manifests inside an index.
const REFERENCE_TYPE: &str = "vnd.docker.reference.type";
const MAX_INDEX_DEPTH: usize = 4;

/// How index resolution reaches blobs.
pub(crate) trait LayoutBlobs {
    /// The bytes of a small JSON blob (manifest, index, config).
    fn json(&mut self, digest: &Digest, what: &str) -> Result<Vec<u8>, Error>;
    fn has(&mut self, digest: &Digest) -> bool;
    /// Checks a layer is there (a directory reader also sends it to the sink).
    fn layer(&mut self, desc: &Descriptor) -> Result<(), Error>;
}

/// Checks `oci-layout` names a layout version we read (1.x).
pub(crate) fn check_layout_file(bytes: &[u8]) -> Result<(), Error> {
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| Error::json("oci-layout", e))?;
    match v.get("imageLayoutVersion").and_then(|v| v.as_str()) {
        Some(ver) if ver.starts_with("1.") => Ok(()),
        other => Err(Error::Invalid {
            why: format!("oci-layout names imageLayoutVersion {other:?}; only 1.x is supported"),
        }),
    }
}

/// The names an index entry gives its image, normalised.
pub(crate) fn names_of(desc: &Descriptor) -> Vec<String> {
    if let Some(n) = desc.annotation(annotations::CONTAINERD_IMAGE_NAME) {
        if let Ok(r) = Reference::parse(n) {
            return vec![r.to_string()];
        }
    }
    if let Some(n) = desc.annotation(annotations::REF_NAME) {
        // A bare tag ("latest") names no repository: not a name we can use.
        if n.contains(['/', ':', '@']) {
            if let Ok(r) = Reference::parse(n) {
                return vec![r.to_string()];
            }
        }
    }
    Vec::new()
}

/// Resolves `index.json` into the images whose blobs are present.
pub(crate) fn resolve_index(
    index_bytes: &[u8],
    blobs: &mut dyn LayoutBlobs,
) -> Result<Vec<ArchiveImage>, Error> {
    let index: ImageIndex =
        serde_json::from_slice(index_bytes).map_err(|e| Error::json("index.json", e))?;
    // The same manifest listed under several names (one index entry per
    // name, as skopeo and BuildKit write them): walked once, with all the
    // names. Walking each entry and merging afterwards read and parsed the
    // manifest and config once per name, and compared every image with
    // every other.
    let mut entries: Vec<(&Descriptor, Vec<String>)> = Vec::new();
    // Digest -> the entries with it (one per platform, as a rule).
    let mut at: HashMap<&Digest, Vec<usize>> = HashMap::new();
    for desc in &index.manifests {
        let same = at.entry(&desc.digest).or_default();
        match same
            .iter()
            .find(|&&i| entries[i].0.platform == desc.platform)
        {
            Some(&i) => entries[i].1.extend(names_of(desc)),
            None => {
                same.push(entries.len());
                entries.push((desc, names_of(desc)));
            }
        }
    }
    let mut out: Vec<ArchiveImage> = Vec::new();
    for (desc, mut names) in entries {
        super::dedup_names(&mut names);
        walk(desc, names, desc.platform.clone(), blobs, &mut out, 0)?;
    }
    if out.is_empty() {
        return Err(Error::Invalid {
            why: "index.json lists no image manifest".into(),
        });
    }
    // The same manifest reached twice (through two indexes): one image.
    let mut merged: Vec<ArchiveImage> = Vec::new();
    let mut by_digest: HashMap<Digest, usize> = HashMap::new();
    for img in out {
        match by_digest.get(img.manifest.digest()) {
            Some(&i) => merged[i].names.extend(img.names),
            None => {
                by_digest.insert(img.manifest.digest().clone(), merged.len());
                merged.push(img);
            }
        }
    }
    for m in &mut merged {
        super::dedup_names(&mut m.names);
    }
    Ok(merged)
}

fn walk(
    desc: &Descriptor,
    names: Vec<String>,
    platform: Option<Platform>,
    blobs: &mut dyn LayoutBlobs,
    out: &mut Vec<ArchiveImage>,
    depth: usize,
) -> Result<(), Error> {
    if depth > MAX_INDEX_DEPTH {
        return Err(Error::Invalid {
            why: format!(
                "indexes nested more than {MAX_INDEX_DEPTH} deep at {}",
                desc.digest
            ),
        });
    }
    if desc.annotation(REFERENCE_TYPE).is_some() {
        return Ok(()); // attestations, signatures: not images
    }
    let mt = desc.media_type.as_str();
    if media_types::is_index(mt) {
        let bytes = sized_json(blobs, desc, "index")?;
        let index: ImageIndex = serde_json::from_slice(&bytes)
            .map_err(|e| Error::json(format!("index {}", desc.digest), e))?;
        let present: Vec<&Descriptor> = index
            .manifests
            .iter()
            .filter(|d| blobs.has(&d.digest))
            .collect();
        if present.is_empty() {
            return Err(Error::Invalid {
                why: format!(
                    "none of the manifests of index {} is in the archive",
                    desc.digest
                ),
            });
        }
        for child in present {
            let plat = child.platform.clone().or_else(|| platform.clone());
            walk(child, names.clone(), plat, blobs, out, depth + 1)?;
        }
        return Ok(());
    }
    if !media_types::is_manifest(mt) {
        return Ok(()); // an artifact we do not import
    }
    let bytes = sized_json(blobs, desc, "manifest")?;
    let manifest: Raw<ImageManifest> =
        Raw::from_bytes(bytes, &format!("manifest {}", desc.digest))?;
    let config_bytes = sized_json(blobs, &manifest.config, "config")?;
    let config: Raw<ImageConfig> =
        Raw::from_bytes(config_bytes, &format!("config {}", manifest.config.digest))?;
    for layer in &manifest.layers {
        let foreign = media_types::is_foreign_layer(&layer.media_type) || layer.urls.is_some();
        if foreign && !blobs.has(&layer.digest) {
            continue;
        }
        blobs.layer(layer)?;
    }
    out.push(ArchiveImage {
        config_digest: manifest.config.digest.clone(),
        layers: manifest.layers.clone(),
        manifest,
        manifest_synthesised: false,
        config,
        names,
        platform,
    });
    Ok(())
}

fn sized_json(
    blobs: &mut dyn LayoutBlobs,
    desc: &Descriptor,
    what: &str,
) -> Result<Vec<u8>, Error> {
    let bytes = blobs.json(&desc.digest, what)?;
    if bytes.len() as u64 != desc.size {
        return Err(Error::SizeMismatch {
            digest: desc.digest.clone(),
            expected: desc.size,
            actual: bytes.len() as u64,
        });
    }
    Ok(bytes)
}

/// Reads an OCI image layout directory (what `skopeo copy ... oci:DIR`
/// writes), sending the blobs its images use to `sink`, each once.
pub fn read_oci_layout_dir(dir: &Path, sink: &mut dyn BlobSink) -> Result<ArchiveContents, Error> {
    // Every file is opened beneath `dir` and must be a regular file: a
    // FIFO blob hung the load, a symlink blob read a host file.
    let layout_dir = LayoutDir::open(dir)?;
    let layout = layout_dir
        .read_small("oci-layout", 1 << 20)
        .map_err(|e| match e {
            Error::Io { cause, .. } if cause.kind() == std::io::ErrorKind::NotFound => {
                Error::NotAnArchive {
                    why: format!(
                        "{} has no oci-layout file; is it an OCI image layout?",
                        dir.display()
                    ),
                }
            }
            e => e,
        })?;
    check_layout_file(&layout)?;
    let index = layout_dir.read_small("index.json", super::reader::METADATA_LIMIT)?;
    let mut blobs = DirBlobs {
        dir: layout_dir,
        sink,
        sent: HashSet::new(),
    };
    let images = resolve_index(&index, &mut blobs)?;
    Ok(ArchiveContents { images })
}

struct DirBlobs<'a> {
    dir: LayoutDir,
    sink: &'a mut dyn BlobSink,
    sent: HashSet<Digest>,
}

impl DirBlobs<'_> {
    fn rel(d: &Digest) -> String {
        format!("blobs/sha256/{}", d.hex())
    }

    fn path(&self, d: &Digest) -> PathBuf {
        self.dir.path().join(Self::rel(d))
    }

    fn send(&mut self, d: &Digest, size: u64, data: &mut dyn Read) -> Result<(), Error> {
        let mut tee = Tee::new(data, size, 0);
        let got = self.sink.put_blob(Some(d), Some(size), &mut tee)?;
        if tee.count != size {
            return Err(super::reader::short_read(&d.to_string(), size, &mut tee));
        }
        if got != *d {
            return Err(Error::DigestMismatch {
                entry: self.path(d).display().to_string(),
                expected: d.clone(),
                actual: got,
            });
        }
        self.sent.insert(d.clone());
        Ok(())
    }
}

impl LayoutBlobs for DirBlobs<'_> {
    fn json(&mut self, digest: &Digest, what: &str) -> Result<Vec<u8>, Error> {
        let path = self.path(digest);
        let bytes = match self
            .dir
            .read_small(&Self::rel(digest), JSON_BLOB_LIMIT as u64)
        {
            Err(Error::Io { cause, .. }) if cause.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::MissingBlob {
                    what: what.to_string(),
                    digest: digest.clone(),
                })
            }
            r => r?,
        };
        let actual = Digest::sha256_of(&bytes);
        if actual != *digest {
            return Err(Error::DigestMismatch {
                entry: path.display().to_string(),
                expected: digest.clone(),
                actual,
            });
        }
        if !self.sent.contains(digest) {
            self.send(digest, bytes.len() as u64, &mut Cursor::new(&bytes))?;
        }
        Ok(bytes)
    }

    fn has(&mut self, digest: &Digest) -> bool {
        self.dir.has_file(&Self::rel(digest))
    }

    fn layer(&mut self, desc: &Descriptor) -> Result<(), Error> {
        if self.sent.contains(&desc.digest) {
            return Ok(());
        }
        let path = self.path(&desc.digest);
        let ctx = || format!("opening layer {} at {}", desc.digest, path.display());
        let f = match self.dir.open_file(&Self::rel(&desc.digest))? {
            Some(f) => f,
            None => {
                return Err(Error::MissingBlob {
                    what: "layer".into(),
                    digest: desc.digest.clone(),
                })
            }
        };
        let size = f.metadata().map_err(|e| Error::io(ctx(), e))?.len();
        if size != desc.size {
            return Err(Error::SizeMismatch {
                digest: desc.digest.clone(),
                expected: desc.size,
                actual: size,
            });
        }
        let mut r = std::io::BufReader::with_capacity(1 << 16, f);
        self.send(&desc.digest, size, &mut r)
    }
}
