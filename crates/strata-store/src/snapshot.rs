//! The snapshotter: each layer unpacked once, overlay-ready, keyed by its
//! chain ID, under `ROOT/snapshots/<chain-hex>/fs`.
//!
//! A snapshot is unpacked into `ROOT/tmp/snap-*/fs` (the temp dir is flocked
//! while in progress) and renamed into place when complete and its diff ID
//! verified: the rename is the commit, so a half-unpacked layer is never
//! visible. Each snapshot holds only its own layer (whiteouts as overlay
//! whiteouts), so the layers of one chain are independent and unpacked in
//! parallel; the overlay mount stacks them.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use sha2::{Digest as _, Sha256};
use strata_oci::Digest;

use crate::blobs::BlobStore;
use crate::diff::{apply_layer, ApplyMode};
use crate::error::{IoCtx, Result, StoreError};
use crate::fsutil::{self, FileLock};
use crate::meta::Lease;

/// Chain IDs of a list of diff IDs (base first), as the OCI image spec
/// defines them: `chain[0] = diff[0]`, `chain[n] = sha256(chain[n-1] + " " + diff[n])`.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => {
                let h = Sha256::digest(format!("{prev} {d}").as_bytes());
                Digest::from_sha256_hex(&hex::encode(h)).expect("valid hex")
            }
        };
        out.push(next);
    }
    out
}

/// Unpacked layers.
#[derive(Debug, Clone)]
pub struct Snapshotter {
    dir: PathBuf,
    tmp: PathBuf,
    blobs: BlobStore,
    gc_lock: PathBuf,
}

impl Snapshotter {
    pub(crate) fn new(dir: PathBuf, tmp: PathBuf, blobs: BlobStore, gc_lock: PathBuf) -> Self {
        Snapshotter {
            dir,
            tmp,
            blobs,
            gc_lock,
        }
    }

    /// The snapshot's layer directory (`.../<chain-hex>/fs`).
    pub fn path(&self, chain_id: &Digest) -> PathBuf {
        self.dir.join(chain_id.hex()).join("fs")
    }

    pub fn exists(&self, chain_id: &Digest) -> bool {
        self.path(chain_id).is_dir()
    }

    /// Makes sure every layer of `chain` (`(diff_id, blob digest)`, base
    /// first) is unpacked; returns the layer directories, base first (give
    /// them to [`crate::RootfsMount::mount`] in this order).
    pub fn prepare(&self, chain: &[(Digest, Digest)]) -> Result<Vec<PathBuf>> {
        self.prepare_leased(chain, None)
    }

    /// Like [`prepare`](Self::prepare); the snapshots are added to `lease`
    /// so GC keeps them until it ends.
    pub fn prepare_leased(
        &self,
        chain: &[(Digest, Digest)],
        lease: Option<&Lease>,
    ) -> Result<Vec<PathBuf>> {
        let diff_ids: Vec<Digest> = chain.iter().map(|(d, _)| d.clone()).collect();
        let chains = chain_ids(&diff_ids);
        let todo: Vec<usize> = (0..chain.len()).collect();
        let next = AtomicUsize::new(0);
        let first_err: Mutex<Option<StoreError>> = Mutex::new(None);
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .clamp(1, 4)
            .min(todo.len().max(1));
        if workers == 1 {
            // One layer (e.g. `run` of a busybox image): no thread to start.
            for (i, (diff_id, blob)) in chain.iter().enumerate() {
                self.ensure(&chains[i], diff_id, blob, lease)?;
            }
            return Ok(chains.iter().map(|c| self.path(c)).collect());
        }
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= todo.len() || first_err.lock().unwrap().is_some() {
                        return;
                    }
                    let (diff_id, blob) = &chain[i];
                    if let Err(e) = self.ensure(&chains[i], diff_id, blob, lease) {
                        first_err.lock().unwrap().get_or_insert(e);
                        return;
                    }
                });
            }
        });
        if let Some(e) = first_err.into_inner().unwrap() {
            return Err(e);
        }
        Ok(chains.iter().map(|c| self.path(c)).collect())
    }

    /// Unpacks one layer as snapshot `chain_id` unless present.
    fn ensure(
        &self,
        chain_id: &Digest,
        diff_id: &Digest,
        blob: &Digest,
        lease: Option<&Lease>,
    ) -> Result<()> {
        if let Some(l) = lease {
            // Under the shared GC lock: a present snapshot stays present.
            let _gc = FileLock::shared(&self.gc_lock)?;
            l.add_snapshot(chain_id)?;
            if self.exists(chain_id) {
                return Ok(());
            }
        } else if self.exists(chain_id) {
            return Ok(());
        }
        let tmp = self.tmp.join(fsutil::unique_name("snap"));
        fsutil::create_dir_all(&tmp.join("fs"))?;
        let guard = File::open(&tmp).ctx("open snapshot temp dir", &tmp)?;
        guard.lock().ctx("lock snapshot temp dir", &tmp)?;
        let result = (|| {
            let mut data = self.blobs.open(blob)?;
            let stats = apply_layer(&mut data, &tmp.join("fs"), ApplyMode::OverlayReady)?;
            if &stats.diff_id != diff_id {
                return Err(StoreError::DiffIdMismatch {
                    expected: diff_id.clone(),
                    actual: stats.diff_id,
                });
            }
            let target = self.dir.join(chain_id.hex());
            let _gc = FileLock::shared(&self.gc_lock)?;
            match fs::rename(&tmp, &target) {
                Ok(()) => fsutil::fsync_dir(&self.dir),
                // Someone else committed the same snapshot first.
                Err(_) if self.exists(chain_id) => Ok(()),
                Err(e) => Err(e).ctx("commit snapshot", &target),
            }
        })();
        drop(guard);
        if tmp.exists() {
            let _ = fsutil::remove_any(&tmp);
        }
        result
    }

    /// Adopts `dir` (an overlay upper dir, already overlay-ready: whiteouts
    /// as char 0/0, opaque xattrs) as the snapshot `chain_id`, by renaming
    /// it into place, so the layer just written from it is never unpacked
    /// again. `dir` must be on the store's filesystem and hold exactly the
    /// layer's contents; it is consumed (moved, or removed when the
    /// snapshot exists already).
    pub fn adopt(&self, chain_id: &Digest, dir: &Path, lease: Option<&Lease>) -> Result<()> {
        let _gc = FileLock::shared(&self.gc_lock)?;
        if let Some(l) = lease {
            l.add_snapshot(chain_id)?;
        }
        if self.exists(chain_id) {
            return fsutil::remove_any(dir);
        }
        // Stage as tmp/snap-*/fs, then rename the whole snapshot dir: the
        // same commit protocol as an unpack.
        let tmp = self.tmp.join(fsutil::unique_name("snap"));
        fsutil::create_dir_all(&tmp)?;
        let result = fs::rename(dir, tmp.join("fs"))
            .ctx("move upper dir into snapshot", dir)
            .and_then(|()| {
                let target = self.dir.join(chain_id.hex());
                match fs::rename(&tmp, &target) {
                    Ok(()) => fsutil::fsync_dir(&self.dir),
                    Err(_) if self.exists(chain_id) => Ok(()),
                    Err(e) => Err(e).ctx("commit snapshot", &target),
                }
            });
        if tmp.exists() {
            let _ = fsutil::remove_any(&tmp);
        }
        result
    }

    /// Chain IDs of the snapshots present.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for ent in fs::read_dir(&self.dir).ctx("list snapshots", &self.dir)? {
            let ent = ent.ctx("list snapshots", &self.dir)?;
            if let Some(d) = ent
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_sha256_hex(n).ok())
            {
                out.push(d);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Entries of the snapshots dir that are not complete snapshots.
    pub(crate) fn strays(&self) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        for ent in fs::read_dir(&self.dir).ctx("list snapshots", &self.dir)? {
            let ent = ent.ctx("list snapshots", &self.dir)?;
            let p = ent.path();
            let ok = ent
                .file_name()
                .to_str()
                .is_some_and(|n| Digest::from_sha256_hex(n).is_ok())
                && p.join("fs").is_dir();
            if !ok {
                out.push(p);
            }
        }
        Ok(out)
    }

    /// Removes a snapshot. It is first renamed into `ROOT/tmp` (one atomic
    /// step), so a process killed while deleting leaves a temp leftover,
    /// never a half-empty snapshot that still looks complete.
    pub(crate) fn remove(&self, chain_id: &Digest) -> Result<()> {
        let path = self.dir.join(chain_id.hex());
        let doomed = self.tmp.join(fsutil::unique_name("rm"));
        match fs::rename(&path, &doomed) {
            Ok(()) => {
                fsutil::crash_point("snapshot-remove:renamed");
                fsutil::remove_any(&doomed)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            // Another filesystem or an odd entry: delete in place.
            Err(_) => fsutil::remove_any(&path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_spec() {
        let a = Digest::sha256_of(b"a");
        let b = Digest::sha256_of(b"b");
        let c = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(c[0], a);
        assert_eq!(c[1], Digest::sha256_of(format!("{a} {b}").as_bytes()));
        assert!(chain_ids(&[]).is_empty());
    }
}
