//! The content store: blobs by digest as plain files under
//! `ROOT/blobs/sha256/<hex>`.
//!
//! A blob is written to a temp file under `ROOT/tmp` while it is hashed,
//! fsynced, verified, and only then renamed into place (and the directory
//! fsynced), so a blob file that exists is always complete and correct
//! (barring disk corruption, which `check` finds). While a temp file is being
//! written its writer holds an exclusive flock on it, so GC can tell an
//! in-progress write from a leftover of a crashed process.
//!
//! Visibility and GC: a blob is renamed into place while holding the shared
//! GC lock, and when a [`Lease`] is given the blob is recorded in the lease
//! *before* the rename. GC holds the exclusive GC lock, lists the blob files
//! first and reads its roots (tags, images, cache, leases) afterwards, so a
//! blob it sees was either already protected or is truly unreferenced.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata_oci::{Digest, DigestWriter};

use crate::error::{IoCtx, Result, StoreError};
use crate::fsutil::{self, FileLock};
use crate::meta::Lease;

/// The blob directory and its temp directory.
#[derive(Clone, Debug)]
pub struct BlobStore {
    inner: Arc<BlobInner>,
}

#[derive(Debug)]
struct BlobInner {
    dir: PathBuf,
    tmp: PathBuf,
    gc_lock: PathBuf,
}

impl BlobStore {
    /// `dir` is `ROOT/blobs/sha256`, `tmp` is `ROOT/tmp`; both must exist.
    pub(crate) fn new(dir: PathBuf, tmp: PathBuf, gc_lock: PathBuf) -> BlobStore {
        BlobStore {
            inner: Arc::new(BlobInner { dir, tmp, gc_lock }),
        }
    }

    /// Where the blob lives (whether or not it exists).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.inner.dir.join(digest.hex())
    }

    /// True when the blob is in the store.
    pub fn exists(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// The blob's size in bytes.
    pub fn size(&self, digest: &Digest) -> Result<u64> {
        match fs::metadata(self.path(digest)) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(StoreError::BlobNotFound(digest.clone()))
            }
            Err(e) => Err(e).ctx("stat blob", &self.path(digest)),
        }
    }

    /// Opens the blob for reading.
    pub fn open(&self, digest: &Digest) -> Result<File> {
        let path = self.path(digest);
        match File::open(&path) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(StoreError::BlobNotFound(digest.clone()))
            }
            Err(e) => Err(e).ctx("open blob", &path),
        }
    }

    /// Reads a whole (small) blob, e.g. a manifest or a config.
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.open(digest)?
            .read_to_end(&mut buf)
            .ctx("read blob", &self.path(digest))?;
        Ok(buf)
    }

    /// Streams `data` into the store, verifying it against `expected` when
    /// given. Returns the digest and size. If `expected` is already present
    /// the data is not read at all.
    pub fn ingest(&self, expected: Option<&Digest>, data: &mut dyn Read) -> Result<(Digest, u64)> {
        self.ingest_leased(expected, data, None)
    }

    /// Like [`ingest`](Self::ingest), recording the blob in `lease` so GC
    /// keeps it until the lease ends.
    pub fn ingest_leased(
        &self,
        expected: Option<&Digest>,
        data: &mut dyn Read,
        lease: Option<&Lease>,
    ) -> Result<(Digest, u64)> {
        if let Some(d) = expected {
            if let Some(size) = self.claim_existing(d, lease)? {
                return Ok((d.clone(), size));
            }
        }
        let mut w = self.writer()?;
        let tmp = w.tmp_path.clone();
        io::copy(data, &mut w).what(|| format!("ingest blob into {}", tmp.display()))?;
        w.commit_leased(expected, lease)
    }

    /// Stores a small in-memory blob.
    pub fn put(&self, expected: Option<&Digest>, bytes: &[u8]) -> Result<(Digest, u64)> {
        self.ingest(expected, &mut &bytes[..])
    }

    /// If the blob exists, protects it with the lease (under the shared GC
    /// lock, so a running GC cannot remove it in between) and returns its size.
    fn claim_existing(&self, digest: &Digest, lease: Option<&Lease>) -> Result<Option<u64>> {
        let _gc = FileLock::shared(&self.inner.gc_lock)?;
        match fs::metadata(self.path(digest)) {
            Ok(m) => {
                if let Some(l) = lease {
                    l.add_blob(digest)?;
                }
                Ok(Some(m.len()))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).ctx("stat blob", &self.path(digest)),
        }
    }

    /// A writer for a new blob; call [`BlobWriter::commit`] to verify and
    /// publish it. Dropping it uncommitted deletes the temp file.
    pub fn writer(&self) -> Result<BlobWriter> {
        let tmp_path = self.inner.tmp.join(fsutil::unique_name("blob"));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp_path)
            .ctx("create temp blob", &tmp_path)?;
        file.lock().ctx("lock temp blob", &tmp_path)?;
        Ok(BlobWriter {
            store: self.clone(),
            out: Some(DigestWriter::new(BufWriter::with_capacity(
                256 * 1024,
                file,
            ))),
            tmp_path,
        })
    }

    /// Every blob digest present (files with a malformed name are skipped).
    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for ent in fs::read_dir(&self.inner.dir).ctx("list blobs", &self.inner.dir)? {
            let ent = ent.ctx("list blobs", &self.inner.dir)?;
            if let Some(name) = ent.file_name().to_str() {
                if let Ok(d) = Digest::from_sha256_hex(name) {
                    out.push(d);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes a blob (GC and repair only). Missing is not an error.
    pub(crate) fn remove(&self, digest: &Digest) -> Result<()> {
        let p = self.path(digest);
        match fs::remove_file(&p) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e).ctx("remove blob", &p),
            _ => Ok(()),
        }
    }

    /// Re-hashes a blob. Returns the digest of its contents and its size.
    pub fn rehash(&self, digest: &Digest) -> Result<(Digest, u64)> {
        let mut f = self.open(digest)?;
        let mut w = DigestWriter::new(io::sink());
        io::copy(&mut f, &mut w).ctx("read blob", &self.path(digest))?;
        let (_, d, n) = w.finish();
        Ok((d, n))
    }

    pub(crate) fn gc_lock_path(&self) -> &Path {
        &self.inner.gc_lock
    }
}

/// A blob being written: hashes what passes through, publishes on commit.
pub struct BlobWriter {
    store: BlobStore,
    out: Option<DigestWriter<BufWriter<File>>>,
    tmp_path: PathBuf,
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.out.as_ref().map(|o| o.written()).unwrap_or(0)
    }

    /// Verifies against `expected` (when given) and publishes the blob.
    pub fn commit(self, expected: Option<&Digest>) -> Result<(Digest, u64)> {
        self.commit_leased(expected, None)
    }

    /// Verifies, records the blob in `lease` (before it becomes visible),
    /// and publishes it. On a mismatch the temp file is deleted.
    pub fn commit_leased(
        mut self,
        expected: Option<&Digest>,
        lease: Option<&Lease>,
    ) -> Result<(Digest, u64)> {
        let out = self.out.take().expect("BlobWriter used after commit");
        let (buf, digest, size) = out.finish();
        let file = buf
            .into_inner()
            .map_err(|e| e.into_error())
            .ctx("write temp blob", &self.tmp_path)?;
        if let Some(exp) = expected {
            if *exp != digest {
                drop(file);
                let _ = fs::remove_file(&self.tmp_path);
                return Err(StoreError::DigestMismatch {
                    expected: exp.clone(),
                    actual: digest,
                    size,
                });
            }
        }
        let target = self.store.path(&digest);
        let _gc = FileLock::shared(self.store.gc_lock_path())?;
        if let Some(l) = lease {
            l.add_blob(&digest)?;
        }
        if target.is_file() {
            // Same content already present: keep the existing file.
            drop(file);
            let _ = fs::remove_file(&self.tmp_path);
            return Ok((digest, size));
        }
        file.sync_all().ctx("fsync temp blob", &self.tmp_path)?;
        fs::rename(&self.tmp_path, &target).ctx("publish blob", &target)?;
        drop(file);
        fsutil::fsync_dir(&self.store.inner.dir)?;
        Ok((digest, size))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out
            .as_mut()
            .ok_or_else(|| io::Error::other("BlobWriter used after commit"))?
            .write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        match self.out.as_mut() {
            Some(o) => o.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.out.is_some() {
            self.out = None;
            let _ = fs::remove_file(&self.tmp_path);
        }
    }
}
