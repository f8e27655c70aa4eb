//! `StagingSink`: the store's [`BlobSink`] for archive readers.
//!
//! Each new blob is hashed while it is written to a flocked temp file and
//! is *not* published: it is staged until [`StagingSink::commit`], which
//! the caller runs only after the whole archive has been read and checked.
//! Dropping the sink instead deletes the temp files, so a failed load
//! leaves nothing behind. A blob the store already has is claimed for the
//! lease and its data only hashed (stored once).
//!
//! Compressed blobs (layers) are also decompressed on a helper thread in
//! the same pass, to learn the diff ID and the uncompressed size the
//! image record needs.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::thread::JoinHandle;

use strata_oci::archive::BlobSink;
use strata_oci::media_types::Compression;
use strata_oci::{Digest, DigestWriter};

use crate::blobs::BlobWriter;
use crate::diff::decompressed;
use crate::error::StoreError;
use crate::meta::Lease;
use crate::pipe::{self, PipeWriter};
use crate::snapshot::ApplyingSnapshot;
use crate::store::Store;

const READ_CHUNK: usize = 256 * 1024;

/// What a layer needs besides its digest: diff ID and uncompressed size,
/// or why they could not be learned (not a valid compressed stream).
pub(crate) type LayerFacts = std::result::Result<Facts, Undecodable>;

/// Why a layer blob could not be decompressed and read as a tar.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Undecodable {
    /// The compression could not be detected or set up.
    #[error(transparent)]
    Decompress(#[from] StoreError),
    /// The decompressed stream broke off or is not a tar.
    #[error(transparent)]
    Read(#[from] io::Error),
    /// The decompressing thread panicked.
    #[error("decompressor thread panicked")]
    Panicked,
}

/// The diff ID and uncompressed size of a blob read as a layer, and the
/// first entry no filesystem could unpack (a path over PATH_MAX, a
/// component over NAME_MAX), learned while the blob streams in.
#[derive(Clone, Debug)]
pub(crate) struct Facts {
    pub diff_id: Digest,
    pub size: u64,
    /// (entry name, why), the name cut to a prefix.
    pub bad_entry: Option<(String, &'static str)>,
    /// File bytes as Docker counts them, when the tar was read to its end.
    pub content_size: Option<u64>,
}

/// Longest prefix of an entry name shown in an error.
const SHOWN_PREFIX: usize = 120;

/// Reads the tar stream `r` entry by entry: the first entry whose name
/// (or hard link target) no filesystem could hold, and the layer's content
/// size as Docker counts it (a regular file's size, a symlink target's
/// length, nothing for a hard link or a directory; see
/// [`crate::store::content_size_of_tar`]), known only when the archive was
/// read to its end. A stream that is not a tar has neither.
pub(crate) fn walk_entries(r: &mut dyn Read) -> (Option<(String, &'static str)>, Option<u64>) {
    let mut ar = tar::Archive::new(r);
    let Ok(entries) = ar.entries() else {
        return (None, None);
    };
    let mut bad = None;
    let mut content = 0u64;
    for e in entries {
        let Ok(e) = e else {
            return (bad, None);
        };
        if bad.is_none() {
            bad = unpackable_entry(&e);
        }
        let h = e.header();
        content += match h.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                h.size().unwrap_or(0)
            }
            tar::EntryType::Symlink => e.link_name_bytes().map_or(0, |l| l.len() as u64),
            _ => 0,
        };
    }
    (bad, Some(content))
}

/// Whether no filesystem could hold this entry's name (or hard link /
/// symlink target): (the name cut to a prefix, why).
pub(crate) fn unpackable_entry<R: Read>(e: &tar::Entry<'_, R>) -> Option<(String, &'static str)> {
    let name = e.path_bytes();
    let why = crate::safe_path::entry_length_problem(&name).or_else(|| {
        let link = e.link_name_bytes()?;
        match e.header().entry_type() {
            tar::EntryType::Link => crate::safe_path::entry_length_problem(&link),
            // symlink(2) takes at most PATH_MAX - 1 bytes of target.
            tar::EntryType::Symlink if link.len() >= crate::safe_path::MAX_PATH => {
                Some("symlink target is longer than 4095 bytes")
            }
            _ => None,
        }
    })?;
    let shown = String::from_utf8_lossy(&name[..name.len().min(SHOWN_PREFIX)]).into_owned();
    let shown = if name.len() > SHOWN_PREFIX {
        format!("{shown}… ({} bytes)", name.len())
    } else {
        shown
    };
    Some((shown, why))
}

/// What [`scan_layer`] learned from a layer's uncompressed tar stream.
#[derive(Clone, Debug)]
pub struct LayerScan {
    /// The stream's sha256 (the layer's diff ID), when asked for.
    pub diff_id: Option<Digest>,
    /// Its length in bytes (the layer's uncompressed size).
    pub size: u64,
    /// The first entry no filesystem could unpack (a path over PATH_MAX,
    /// a component over NAME_MAX, a link target too long): (the name cut
    /// to a prefix, why).
    pub bad_entry: Option<(String, &'static str)>,
    /// File bytes as Docker counts them, when the tar was read to its end.
    pub content_size: Option<u64>,
}

/// Reads a layer's uncompressed tar stream `r` to its end, in one pass:
/// its diff ID (with `hash`), its size, and its first unpackable entry.
/// The check `load`, `import` and `pull` share, so an image whose layer
/// can never be unpacked is refused when it comes in, not when it is
/// first run. A stream that is not a tar has no bad entry (its diff ID
/// check fails instead).
pub fn scan_layer(r: &mut dyn Read, hash: bool) -> io::Result<LayerScan> {
    let mut tee = Counted {
        inner: r,
        hash: hash.then(|| DigestWriter::new(io::sink())),
        n: 0,
    };
    let (bad_entry, content_size) = walk_entries(&mut tee);
    io::copy(&mut tee, &mut io::sink())?;
    Ok(LayerScan {
        diff_id: tee.hash.map(|h| h.finish().1),
        size: tee.n,
        bad_entry,
        content_size,
    })
}

/// Counts (and with `hash`, hashes) what is read through it.
struct Counted<'r> {
    inner: &'r mut dyn Read,
    hash: Option<DigestWriter<io::Sink>>,
    n: u64,
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = self.hash.as_mut() {
            h.write_all(&buf[..n]).expect("hashing into a sink");
        }
        self.n += n as u64;
        Ok(n)
    }
}

/// Stages blobs from an archive reader. See the module docs.
pub struct StagingSink<'a> {
    store: &'a Store,
    lease: &'a Lease,
    staged: Vec<(BlobWriter, Digest)>,
    facts: HashMap<Digest, LayerFacts>,
    /// Layer facts the store already knows, by blob digest.
    known: HashMap<Digest, (Digest, u64)>,
    /// New layer blobs also applied into snapshot temp dirs while they
    /// streamed in (see [`Unpacked`]).
    unpacked: Unpacked,
}

/// Layers a load unpacked while reading the archive, by blob digest: each
/// committed as the snapshot of an image's chain by
/// [`super::load::register_images`], or dropped (a layer of another
/// platform's image, a blob that was not a layer).
pub(crate) type Unpacked = HashMap<Digest, ApplyingSnapshot>;

/// Decompresses and hashes a stream on a helper thread.
struct Unpacker {
    w: PipeWriter,
    h: JoinHandle<LayerFacts>,
}

impl Unpacker {
    /// `compressed`: learn the diff ID (hash what decompresses); else the
    /// blob is the tar and only its entry names are checked.
    fn start(compressed: bool) -> io::Result<Unpacker> {
        let (w, h) = pipe::spawn("layer-unpack", move |mut r| {
            let facts = (|| {
                let mut d = decompressed(&mut r)?;
                let scan = scan_layer(&mut d, compressed)?;
                Ok(Facts {
                    // Uncompressed: filled in by the caller (the blob's
                    // own digest).
                    diff_id: scan.diff_id.unwrap_or_else(|| Digest::sha256_of(b"")),
                    size: scan.size,
                    bad_entry: scan.bad_entry,
                    content_size: scan.content_size,
                })
            })();
            r.drain();
            facts
        })?;
        Ok(Unpacker { w, h })
    }

    fn feed(&mut self, chunk: &[u8]) {
        // A helper that stopped (bad stream) reports why at `finish`.
        let _ = self.w.write_all(chunk);
    }

    fn finish(mut self) -> LayerFacts {
        let _ = self.w.close();
        drop(self.w);
        self.h.join().unwrap_or_else(|_| Err(Undecodable::Panicked))
    }
}

fn ext(context: &str, e: impl std::error::Error + Send + Sync + 'static) -> strata_oci::Error {
    strata_oci::Error::external(context.to_string(), e)
}

impl<'a> StagingSink<'a> {
    /// A sink staging blobs in `store` under `lease`.
    pub fn new(store: &'a Store, lease: &'a Lease) -> Result<StagingSink<'a>, StoreError> {
        let known = store
            .meta()
            .layers()?
            .into_iter()
            .map(|l| (l.digest, (l.diff_id, l.uncompressed_size)))
            .collect();
        Ok(StagingSink {
            store,
            lease,
            staged: Vec::new(),
            facts: HashMap::new(),
            known,
            unpacked: HashMap::new(),
        })
    }

    /// Diff ID and uncompressed size of a blob that went through the sink.
    pub(crate) fn layer_facts(&self, digest: &Digest) -> Option<&LayerFacts> {
        self.facts.get(digest)
    }

    /// Publishes every staged blob (recording it in the lease first).
    /// Returns the layers unpacked on the way, not yet snapshots.
    pub(crate) fn commit(mut self) -> Result<Unpacked, StoreError> {
        for (w, d) in self.staged.drain(..) {
            w.commit_leased(Some(&d), Some(self.lease))?;
        }
        Ok(std::mem::take(&mut self.unpacked))
    }

    /// Claims a blob the store has for the lease; false if it is absent.
    fn claim_existing(&self, d: &Digest) -> Result<bool, StoreError> {
        if !self.store.blobs().exists(d) {
            return Ok(false);
        }
        // With `expected` present, ingest reads nothing and only claims it.
        match self
            .store
            .blobs()
            .ingest_leased(Some(d), &mut io::empty(), Some(self.lease))
        {
            Ok(_) => Ok(true),
            Err(StoreError::DigestMismatch { .. }) => Ok(false), // removed meanwhile
            Err(e) => Err(e),
        }
    }

    /// Streams `data` through a hasher, into `out` when given, and through
    /// a decompressor when it is compressed and its facts are not known.
    fn pump(
        &mut self,
        data: &mut dyn Read,
        mut out: Option<&mut BlobWriter>,
        known: Option<(Digest, u64)>,
    ) -> Result<Digest, strata_oci::Error> {
        let mut hash = DigestWriter::new(io::sink());
        let mut unpacker: Option<Unpacker> = None;
        let mut applying: Option<ApplyingSnapshot> = None;
        let mut buf = vec![0u8; READ_CHUNK];
        let mut first = true;
        let mut is_compressed = false;
        loop {
            let n = match data.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(strata_oci::Error::Io {
                        context: "reading a blob from the archive".into(),
                        cause: e,
                    })
                }
            };
            let chunk = &buf[..n];
            if first {
                first = false;
                // Every new blob is read as a layer on a helper thread:
                // compressed, for its diff ID; any, for entry names no
                // filesystem could hold (refused by `load`, naming them).
                if known.is_none() {
                    let compressed = Compression::sniff(chunk) != Compression::None;
                    is_compressed = compressed;
                    unpacker = Some(
                        Unpacker::start(compressed).map_err(|e| ext("start decompressor", e))?,
                    );
                }
                // A new blob that may be a layer (not a JSON config or
                // manifest) is also unpacked on a third thread as it
                // streams in, so that the load's unpack does not read it
                // again. Best effort: without it, the layer is unpacked
                // from its blob afterwards, as before.
                if known.is_none() && out.is_some() && !chunk.starts_with(b"{") {
                    applying = self.store.snapshotter().applying().ok();
                }
            }
            hash.write_all(chunk).expect("hashing into a sink");
            if let Some(w) = out.as_deref_mut() {
                w.write_all(chunk)
                    .map_err(|e| ext("writing a blob into the store's temp dir", e))?;
            }
            if let Some(u) = unpacker.as_mut() {
                u.feed(chunk);
            }
            if let Some(a) = applying.as_mut() {
                a.feed(chunk);
            }
        }
        let (_, digest, size) = hash.finish();
        let plain = |bad_entry, content_size| Facts {
            diff_id: digest.clone(),
            size,
            bad_entry,
            content_size,
        };
        let facts = match (known, unpacker) {
            (Some((diff_id, size)), _) => Ok(Facts {
                diff_id,
                size,
                bad_entry: None,
                content_size: None,
            }),
            (None, Some(u)) if is_compressed => u.finish(),
            // Uncompressed: the blob is the tar itself.
            (None, Some(u)) => {
                let f = u.finish().ok();
                Ok(plain(
                    f.as_ref().and_then(|f| f.bad_entry.clone()),
                    f.and_then(|f| f.content_size),
                ))
            }
            (None, None) => Ok(plain(None, None)),
        };
        // Learned while the blob streamed in: registering the image
        // reads nothing back for its size.
        if let Ok(Facts {
            diff_id,
            content_size: Some(n),
            ..
        }) = &facts
        {
            crate::store::note_content_size(diff_id, *n);
        }
        self.facts.insert(digest.clone(), facts);
        // Kept when it applied and the blob reads as a layer: its diff ID is
        // then in the facts, which the image's config is checked against.
        if let (Some(mut a), Some(Ok(_))) = (applying, self.facts.get(&digest)) {
            if let Some(Ok(_warnings)) = a.finish() {
                self.unpacked.insert(digest.clone(), a);
            }
        }
        Ok(digest)
    }
}

impl BlobSink for StagingSink<'_> {
    fn put_blob(
        &mut self,
        expected: Option<&Digest>,
        _size_hint: Option<u64>,
        data: &mut dyn Read,
    ) -> Result<Digest, strata_oci::Error> {
        if let Some(d) = expected {
            if self.claim_existing(d).map_err(|e| ext("claim blob", e))? {
                let known = self.known.get(d).cloned();
                return self.pump(data, None, known);
            }
        }
        let mut w = self
            .store
            .blobs()
            .writer()
            .map_err(|e| ext("create temp blob", e))?;
        let digest = self.pump(data, Some(&mut w), None)?;
        if let Some(exp) = expected {
            if *exp != digest {
                // The reader reports the mismatch with the entry name.
                return Ok(digest);
            }
        }
        self.staged.push((w, digest.clone()));
        Ok(digest)
    }
}
