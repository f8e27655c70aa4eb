//! Reading an archive tar (optionally gzipped) in one streaming pass: every
//! blob goes to the sink as it passes; metadata files are kept; at the end
//! the images are resolved from `index.json` (OCI layout, Docker 25+) or
//! `manifest.json` (legacy `docker save`).

use std::collections::{HashMap, HashSet};
use std::io::Read;

use super::tar_io::{maybe_gunzip, normalise_entry_name, resolve_link_target, Tee};
use super::{docker, oci_layout, ArchiveContents, BlobSink};
use crate::descriptor::Descriptor;
use crate::digest::Digest;
use crate::error::Error;
use crate::media_types::Compression;

/// Largest metadata file (`manifest.json`, `index.json`, ...) we read.
pub(crate) const METADATA_LIMIT: u64 = 64 << 20;
/// Largest JSON blob (manifest, config, index) kept in memory.
pub(crate) const JSON_BLOB_LIMIT: usize = 8 << 20;
/// Cap on all kept JSON blobs together.
const JSON_TOTAL_LIMIT: usize = 512 << 20;
const METADATA_FILES: [&str; 4] = ["manifest.json", "index.json", "oci-layout", "repositories"];

/// A regular file of the archive that went to the sink.
#[derive(Debug, Clone)]
pub(crate) struct FileInfo {
    pub digest: Digest,
    pub size: u64,
    pub compression: Compression,
}

/// What one pass over the tar found.
#[derive(Default)]
pub(crate) struct Scanned {
    pub files: HashMap<String, FileInfo>,
    pub links: HashMap<String, String>,
    pub meta: HashMap<&'static str, Vec<u8>>,
    pub json: HashMap<Digest, Vec<u8>>,
    pub present: HashMap<Digest, u64>,
    json_total: usize,
}

impl Scanned {
    /// The file at an archive path, following links inside the archive.
    pub(super) fn lookup(&self, path: &str) -> Result<Option<&FileInfo>, Error> {
        let mut p = normalise_entry_name(path.as_bytes())?;
        for _ in 0..32 {
            if let Some(f) = self.files.get(&p) {
                return Ok(Some(f));
            }
            match self.links.get(&p) {
                Some(t) => p = t.clone(),
                None => return Ok(None),
            }
        }
        Err(Error::UnsafeEntry {
            entry: path.to_string(),
            why: "too many levels of links",
        })
    }
}

/// Reads a `docker save` archive or an OCI layout tar, plain or gzipped,
/// handing every blob to `sink`. See [`super::ArchiveImage`] for what
/// comes back.
pub fn read_archive(input: impl Read, sink: &mut dyn BlobSink) -> Result<ArchiveContents, Error> {
    let input = maybe_gunzip(input)?;
    let scanned = scan(input, sink)?;
    resolve(&scanned)
}

fn scan(input: impl Read, sink: &mut dyn BlobSink) -> Result<Scanned, Error> {
    let mut archive = tar::Archive::new(input);
    let mut seen = HashSet::new();
    let mut s = Scanned::default();
    let entries = archive
        .entries()
        .map_err(|e| Error::io("reading the archive as tar", e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::io("reading the archive's next tar entry", e))?;
        let kind = entry.header().entry_type();
        if kind.is_dir() || kind.is_pax_global_extensions() {
            continue;
        }
        let name = normalise_entry_name(&entry.path_bytes())?;
        if name.is_empty() {
            return Err(Error::UnsafeEntry {
                entry: String::from_utf8_lossy(&entry.path_bytes()).into_owned(),
                why: "a file entry with an empty name",
            });
        }
        if !seen.insert(name.clone()) {
            return Err(Error::DuplicateEntry { entry: name });
        }
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry.link_name_bytes().ok_or_else(|| Error::UnsafeEntry {
                entry: name.clone(),
                why: "a link without a target",
            })?;
            let target = resolve_link_target(&name, &target, kind.is_hard_link())?;
            s.links.insert(name, target);
            continue;
        }
        if !(kind.is_file() || kind == tar::EntryType::Continuous) {
            return Err(Error::UnsafeEntry {
                entry: name,
                why: "an entry type image archives do not use (device, fifo or sparse file)",
            });
        }
        let size = entry.size();
        if let Some(meta) = METADATA_FILES.iter().find(|m| **m == name) {
            if size > METADATA_LIMIT {
                return Err(Error::TooLarge {
                    entry: name,
                    what: "a metadata file",
                    limit: METADATA_LIMIT,
                });
            }
            let mut buf = Vec::with_capacity(size as usize);
            entry
                .read_to_end(&mut buf)
                .map_err(|e| Error::io(format!("reading {name} from the archive"), e))?;
            s.meta.insert(meta, buf);
            continue;
        }
        if is_legacy_layer_metadata(&name) {
            continue; // `<id>/json`, `<id>/VERSION`: nothing we need.
        }
        let expected = expected_digest(&name)?;
        put_entry(&mut s, sink, &name, expected, size, &mut entry)?;
    }
    Ok(s)
}

fn put_entry(
    s: &mut Scanned,
    sink: &mut dyn BlobSink,
    name: &str,
    expected: Option<Digest>,
    size: u64,
    data: &mut dyn Read,
) -> Result<(), Error> {
    let mut tee = Tee::new(data, size, JSON_BLOB_LIMIT);
    let digest = sink.put_blob(expected.as_ref(), Some(size), &mut tee)?;
    if tee.count != size {
        return Err(short_read(name, size, &mut tee));
    }
    if let Some(exp) = &expected {
        if *exp != digest {
            return Err(Error::DigestMismatch {
                entry: name.to_string(),
                expected: exp.clone(),
                actual: digest,
            });
        }
    }
    let compression = Compression::sniff(&tee.head);
    if let Some(bytes) = tee.into_cached() {
        let actual = Digest::sha256_of(&bytes);
        if actual != digest {
            return Err(Error::DigestMismatch {
                entry: name.to_string(),
                expected: digest,
                actual,
            });
        }
        s.json_total += bytes.len();
        if s.json_total > JSON_TOTAL_LIMIT {
            return Err(Error::TooLarge {
                entry: name.to_string(),
                what: "the JSON documents of one archive together",
                limit: JSON_TOTAL_LIMIT as u64,
            });
        }
        s.json.entry(digest.clone()).or_insert(bytes);
    }
    s.present.insert(digest.clone(), size);
    s.files.insert(
        name.to_string(),
        FileInfo {
            digest,
            size,
            compression,
        },
    );
    Ok(())
}

/// Why a blob came out shorter than declared: the archive ended, or the
/// sink stopped reading.
pub(crate) fn short_read<R: Read>(name: &str, size: u64, tee: &mut Tee<R>) -> Error {
    let mut probe = [0u8; 1];
    match tee.read(&mut probe) {
        Ok(0) | Err(_) => Error::Truncated {
            entry: name.to_string(),
            declared: size,
            actual: tee.count,
        },
        Ok(_) => Error::Invalid {
            why: format!(
                "the blob sink stopped reading {name:?} after {} of {size} bytes",
                tee.count
            ),
        },
    }
}

fn is_legacy_layer_metadata(name: &str) -> bool {
    match name.split_once('/') {
        Some((dir, file)) => dir != "blobs" && (file == "json" || file == "VERSION"),
        None => false,
    }
}

/// `blobs/sha256/<hex>` names its digest; other names do not.
fn expected_digest(name: &str) -> Result<Option<Digest>, Error> {
    let Some(rest) = name.strip_prefix("blobs/") else {
        return Ok(None);
    };
    match rest.split_once('/') {
        Some(("sha256", hex)) => Ok(Some(Digest::from_sha256_hex(hex).map_err(|e| {
            Error::Invalid {
                why: format!("blob entry {name:?} is not named by a sha256 digest: {e}"),
            }
        })?)),
        Some((alg, _)) => Err(Error::Invalid {
            why: format!(
                "blob entry {name:?} uses digest algorithm {alg:?}; only sha256 is supported"
            ),
        }),
        None => Ok(None),
    }
}

fn resolve(s: &Scanned) -> Result<ArchiveContents, Error> {
    let images = match (s.meta.get("index.json"), s.meta.get("manifest.json")) {
        (Some(index), docker_manifest) => {
            if let Some(layout) = s.meta.get("oci-layout") {
                oci_layout::check_layout_file(layout)?;
            }
            let mut images = oci_layout::resolve_index(index, &mut TarBlobs { s })?;
            if let Some(m) = docker_manifest {
                docker::merge_repo_tags(&mut images, m, s)?;
            }
            images
        }
        (None, Some(m)) => docker::resolve_manifest_json(m, s)?,
        (None, None) => {
            return Err(Error::NotAnArchive {
                why: "it has neither manifest.json (docker save) nor index.json (OCI layout)"
                    .into(),
            })
        }
    };
    Ok(ArchiveContents { images })
}

/// Blob access for index resolution over a scanned tar.
struct TarBlobs<'a> {
    s: &'a Scanned,
}

impl oci_layout::LayoutBlobs for TarBlobs<'_> {
    fn json(&mut self, digest: &Digest, what: &str) -> Result<Vec<u8>, Error> {
        match self.s.json.get(digest) {
            Some(b) => Ok(b.clone()),
            None if self.s.present.contains_key(digest) => Err(Error::Invalid {
                why: format!(
                    "{what} {digest} is not a JSON document of at most {JSON_BLOB_LIMIT} bytes"
                ),
            }),
            None => Err(Error::MissingBlob {
                what: what.to_string(),
                digest: digest.clone(),
            }),
        }
    }

    fn has(&mut self, digest: &Digest) -> bool {
        self.s.present.contains_key(digest)
    }

    fn layer(&mut self, desc: &Descriptor) -> Result<(), Error> {
        match self.s.present.get(&desc.digest) {
            Some(&size) if size == desc.size => Ok(()),
            Some(&size) => Err(Error::SizeMismatch {
                digest: desc.digest.clone(),
                expected: desc.size,
                actual: size,
            }),
            None => Err(Error::MissingBlob {
                what: "layer".into(),
                digest: desc.digest.clone(),
            }),
        }
    }
}
