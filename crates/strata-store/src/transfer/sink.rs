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

use super::pipe::{self, PipeWriter};
use crate::blobs::BlobWriter;
use crate::diff::decompressed;
use crate::error::StoreError;
use crate::meta::Lease;
use crate::store::Store;

const READ_CHUNK: usize = 256 * 1024;

/// What a layer needs besides its digest: diff ID and uncompressed size,
/// or why they could not be learned (not a valid compressed stream).
pub(crate) type LayerFacts = std::result::Result<(Digest, u64), String>;

/// Stages blobs from an archive reader. See the module docs.
pub struct StagingSink<'a> {
    store: &'a Store,
    lease: &'a Lease,
    staged: Vec<(BlobWriter, Digest)>,
    facts: HashMap<Digest, LayerFacts>,
    /// Layer facts the store already knows, by blob digest.
    known: HashMap<Digest, (Digest, u64)>,
}

/// Decompresses and hashes a stream on a helper thread.
struct Unpacker {
    w: PipeWriter,
    h: JoinHandle<LayerFacts>,
}

impl Unpacker {
    fn start() -> io::Result<Unpacker> {
        let (w, h) = pipe::spawn("layer-unpack", |mut r| {
            let facts = (|| {
                let mut d = decompressed(&mut r).map_err(|e| e.to_string())?;
                let mut out = DigestWriter::new(io::sink());
                io::copy(&mut d, &mut out).map_err(|e| e.to_string())?;
                let (_, digest, n) = out.finish();
                Ok((digest, n))
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
        self.h
            .join()
            .unwrap_or_else(|_| Err("decompressor thread panicked".into()))
    }
}

fn ext(context: &str, e: impl std::error::Error + Send + Sync + 'static) -> strata_oci::Error {
    strata_oci::Error::external(context.to_string(), e)
}

impl<'a> StagingSink<'a> {
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
        })
    }

    /// Diff ID and uncompressed size of a blob that went through the sink.
    pub(crate) fn layer_facts(&self, digest: &Digest) -> Option<&LayerFacts> {
        self.facts.get(digest)
    }

    /// Publishes every staged blob (recording it in the lease first).
    pub fn commit(mut self) -> Result<(), StoreError> {
        for (w, d) in self.staged.drain(..) {
            w.commit_leased(Some(&d), Some(self.lease))?;
        }
        Ok(())
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
        let mut buf = vec![0u8; READ_CHUNK];
        let mut first = true;
        loop {
            let n = match data.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(strata_oci::Error::Io {
                        context: "reading a blob from the archive".into(),
                        source: e,
                    })
                }
            };
            let chunk = &buf[..n];
            if first {
                first = false;
                if known.is_none() && Compression::sniff(chunk) != Compression::None {
                    unpacker = Some(Unpacker::start().map_err(|e| ext("start decompressor", e))?);
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
        }
        let (_, digest, size) = hash.finish();
        let facts = match (known, unpacker) {
            (Some(k), _) => Ok(k),
            (None, Some(u)) => u.finish(),
            // Uncompressed: the blob is the tar itself.
            (None, None) => Ok((digest.clone(), size)),
        };
        self.facts.insert(digest.clone(), facts);
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
