//! The snapshotter: each layer unpacked once, overlay-ready, keyed by its
//! chain ID, under `ROOT/snapshots/<chain-hex>/fs`.
//!
//! A snapshot is unpacked into `ROOT/tmp/snap-*/fs` (the temp dir is flocked
//! while in progress) and renamed into place when complete and its diff ID
//! verified: the rename is the commit, so a half-unpacked layer is never
//! visible. Each snapshot holds only its own layer (whiteouts as overlay
//! whiteouts), so the layers of one chain are independent and unpacked in
//! parallel (biggest blob first, each streamed from its blob, progress
//! reported in blob bytes and layers); the overlay mount stacks them.
//! `ROOT/tmp/unpack-<chain-hex>` is flocked while a layer unpacks, so a
//! concurrent build needing the same layer waits for it instead of
//! unpacking it again.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use strata_oci::Digest;

use crate::blobs::BlobStore;
use crate::diff::{apply_layer, apply_layer_known, ApplyMode};
use crate::error::{IoCtx, Result, StoreError};
use crate::fsutil::{self, FileLock};
use crate::meta::Lease;

mod applying;
pub(crate) use applying::ApplyingSnapshot;
pub mod built;

/// Chain IDs of a list of diff IDs (base first): the image's own
/// ([`strata_oci::chain_ids`]), one computation for the whole workspace.
pub use strata_oci::chain_ids;

/// Most layers unpacked at once: each worker is one decompressing reader
/// and one writer of many small files; more than this only adds seeks.
const MAX_UNPACK_WORKERS: usize = 8;

/// Compressed bytes read between two progress reports of one layer.
const REPORT_EVERY: u64 = 4 << 20;

/// Where an unpack stands (see [`Snapshotter::prepare_with_progress`]).
/// Counts cover only the layers that were missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackProgress {
    /// Missing layers to unpack.
    pub layers_total: usize,
    /// Missing layers unpacked so far.
    pub layers_done: usize,
    /// Compressed size of the missing layers' blobs.
    pub bytes_total: u64,
    /// Blob bytes read so far (all of a layer's once it is done).
    pub bytes_done: u64,
    /// On the report that ends a layer: its diff ID and blob size.
    pub finished: Option<(Digest, u64)>,
}

/// The shared counters of one prepare.
struct Tally<'a> {
    layers_total: usize,
    bytes_total: u64,
    layers_done: AtomicUsize,
    bytes_done: AtomicU64,
    progress: Option<&'a (dyn Fn(&UnpackProgress) + Sync)>,
}

impl Tally<'_> {
    fn report(&self, layers_done: usize, bytes_done: u64, finished: Option<(Digest, u64)>) {
        if let Some(p) = self.progress {
            p(&UnpackProgress {
                layers_total: self.layers_total,
                layers_done,
                bytes_total: self.bytes_total,
                bytes_done: bytes_done.min(self.bytes_total),
                finished,
            });
        }
    }

    fn bytes(&self, n: u64) {
        let done = self.bytes_done.fetch_add(n, Ordering::Relaxed) + n;
        self.report(self.layers_done.load(Ordering::Relaxed), done, None);
    }

    /// A layer of `size` blob bytes is done, `read` of them already counted.
    fn layer_done(&self, diff_id: &Digest, size: u64, read: u64) {
        let rest = size.saturating_sub(read);
        let bytes = self.bytes_done.fetch_add(rest, Ordering::Relaxed) + rest;
        let layers = self.layers_done.fetch_add(1, Ordering::Relaxed) + 1;
        self.report(layers, bytes, Some((diff_id.clone(), size)));
    }
}

/// A blob reader that counts what it reads into a [`Tally`].
struct CountingReader<'a, 'b, R> {
    inner: R,
    unreported: u64,
    read: &'a mut u64,
    tally: &'a Tally<'b>,
}

impl<R: Read> Read for CountingReader<'_, '_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.unreported += n as u64;
        if self.unreported >= REPORT_EVERY {
            // The rest is counted when the layer is done.
            *self.read += self.unreported;
            self.tally.bytes(self.unreported);
            self.unreported = 0;
        }
        Ok(n)
    }
}

/// Unpacked layers.
#[derive(Debug, Clone)]
pub struct Snapshotter {
    dir: PathBuf,
    tmp: PathBuf,
    /// `ROOT/built`: diff ID -> the built snapshot holding that layer
    /// (see [`built`]).
    built: PathBuf,
    blobs: BlobStore,
    gc_lock: PathBuf,
}

impl Snapshotter {
    pub(crate) fn new(
        dir: PathBuf,
        tmp: PathBuf,
        built: PathBuf,
        blobs: BlobStore,
        gc_lock: PathBuf,
    ) -> Self {
        Snapshotter {
            dir,
            tmp,
            built,
            blobs,
            gc_lock,
        }
    }

    /// The snapshot's layer directory (`.../<chain-hex>/fs`).
    pub fn path(&self, chain_id: &Digest) -> PathBuf {
        self.dir.join(chain_id.hex()).join("fs")
    }

    /// True when the snapshot of `chain_id` is there.
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
        self.prepare_with_progress(chain, lease, None)
    }

    /// True when every layer of `chain` is unpacked already (a
    /// [`prepare`](Self::prepare) would only stat them).
    pub fn all_present(&self, chain: &[(Digest, Digest)]) -> bool {
        let diff_ids: Vec<Digest> = chain.iter().map(|(d, _)| d.clone()).collect();
        chain_ids(&diff_ids).iter().all(|c| self.exists(c))
    }

    /// Like [`prepare_leased`](Self::prepare_leased), reporting the unpack
    /// of the missing layers to `progress` (from worker threads): as their
    /// blobs are read, and once for each layer committed. Nothing is
    /// reported when every layer is present.
    pub fn prepare_with_progress(
        &self,
        chain: &[(Digest, Digest)],
        lease: Option<&Lease>,
        progress: Option<&(dyn Fn(&UnpackProgress) + Sync)>,
    ) -> Result<Vec<PathBuf>> {
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .clamp(1, MAX_UNPACK_WORKERS);
        self.prepare_inner(chain, lease, progress, workers)
    }

    /// The layers of a chain are independent (each snapshot holds only its
    /// own layer, whiteouts included), so the missing ones are unpacked by
    /// up to `workers` threads at once, biggest blob first (the longest
    /// unpack starts first), each streaming from its blob.
    fn prepare_inner(
        &self,
        chain: &[(Digest, Digest)],
        lease: Option<&Lease>,
        progress: Option<&(dyn Fn(&UnpackProgress) + Sync)>,
        workers: usize,
    ) -> Result<Vec<PathBuf>> {
        let diff_ids: Vec<Digest> = chain.iter().map(|(d, _)| d.clone()).collect();
        let chains = chain_ids(&diff_ids);
        let mut todo: Vec<(usize, u64)> = Vec::new();
        for (i, (_, blob)) in chain.iter().enumerate() {
            if !self.claim(&chains[i], lease)? {
                todo.push((i, self.layer_size(blob)?));
            }
        }
        todo.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let tally = Tally {
            layers_total: todo.len(),
            bytes_total: todo.iter().map(|t| t.1).sum(),
            layers_done: AtomicUsize::new(0),
            bytes_done: AtomicU64::new(0),
            progress,
        };
        let unpack = |&(i, size): &(usize, u64)| {
            let (diff_id, blob) = &chain[i];
            self.unpack(&chains[i], diff_id, blob, size, &tally)
        };
        let workers = workers.clamp(1, todo.len().max(1));
        if workers == 1 {
            // One layer (e.g. `run` of a busybox image): no thread to start.
            for t in &todo {
                unpack(t)?;
            }
            return Ok(chains.iter().map(|c| self.path(c)).collect());
        }
        let next = AtomicUsize::new(0);
        let first_err: Mutex<Option<StoreError>> = Mutex::new(None);
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    if n >= todo.len() || first_err.lock().unwrap().is_some() {
                        return;
                    }
                    if let Err(e) = unpack(&todo[n]) {
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

    /// Adds snapshot `chain_id` to `lease`; true when it is present (then
    /// GC keeps it from here on).
    fn claim(&self, chain_id: &Digest, lease: Option<&Lease>) -> Result<bool> {
        match lease {
            Some(l) => {
                // Under the shared GC lock: a present snapshot stays present.
                let _gc = FileLock::shared(&self.gc_lock)?;
                l.add_snapshot(chain_id)?;
                Ok(self.exists(chain_id))
            }
            None => Ok(self.exists(chain_id)),
        }
    }

    /// Unpacks one layer (blob of `size` bytes) as snapshot `chain_id`,
    /// streaming: the blob is read and decompressed as the tar is applied.
    fn unpack(
        &self,
        chain_id: &Digest,
        diff_id: &Digest,
        blob: &Digest,
        size: u64,
        tally: &Tally<'_>,
    ) -> Result<()> {
        // One unpack of a layer at a time: a concurrent build preparing the
        // same chain waits here and then finds the snapshot, instead of
        // unpacking it a second time. Only an optimisation: the rename
        // below is what keeps two unpacks of one layer correct.
        let lock_path = self.tmp.join(format!("unpack-{}", chain_id.hex()));
        let lock = FileLock::exclusive(&lock_path)?;
        let result = if self.exists(chain_id) {
            // Committed by a concurrent build since it was claimed.
            tally.layer_done(diff_id, size, 0);
            Ok(())
        } else {
            self.unpack_locked(chain_id, diff_id, blob, size, tally)
        };
        // Removed while held: a waiter holds the old inode and then finds
        // the snapshot; a newcomer creates a new file (and removes it too).
        let _ = fs::remove_file(&lock_path);
        drop(lock);
        result
    }

    /// A new snapshot temp dir `ROOT/tmp/snap-*` with its empty `fs`,
    /// locked while the returned file is open (GC's temp sweep and
    /// `load`'s cleanup skip a locked dir).
    fn new_temp(&self) -> Result<(PathBuf, File)> {
        let tmp = self.tmp.join(fsutil::unique_name("snap"));
        fsutil::create_dir_all(&tmp.join("fs"))?;
        let guard = File::open(&tmp).ctx("open snapshot temp dir", &tmp)?;
        guard.lock().ctx("lock snapshot temp dir", &tmp)?;
        Ok((tmp, guard))
    }

    /// Renames the finished temp dir `tmp` (from [`Self::new_temp`]) into
    /// place as snapshot `chain_id`, under the shared GC lock. A snapshot
    /// of that chain committed first by someone else is kept.
    fn commit_temp(&self, tmp: &Path, chain_id: &Digest) -> Result<()> {
        let target = self.dir.join(chain_id.hex());
        let _gc = FileLock::shared(&self.gc_lock)?;
        match fs::rename(tmp, &target) {
            Ok(()) => fsutil::fsync_dir(&self.dir),
            Err(_) if self.exists(chain_id) => Ok(()),
            Err(e) => Err(e).ctx("commit snapshot", &target),
        }
    }

    fn unpack_locked(
        &self,
        chain_id: &Digest,
        diff_id: &Digest,
        blob: &Digest,
        size: u64,
        tally: &Tally<'_>,
    ) -> Result<()> {
        let (tmp, guard) = self.new_temp()?;
        let mut read = 0u64;
        let result = (|| {
            let mut data = CountingReader {
                inner: self.open_layer(blob)?,
                unreported: 0,
                read: &mut read,
                tally,
            };
            let dest = tmp.join("fs");
            let stats = if blob == diff_id {
                // An uncompressed layer (as `load` stores docker-archive
                // layers, or a built layer's tar made again): the blob
                // store verified this digest when the blob was written, or
                // the tar's reader checks it, so it is not hashed twice.
                apply_layer_known(&mut data, &dest, ApplyMode::OverlayReady, diff_id)?
            } else {
                apply_layer(&mut data, &dest, ApplyMode::OverlayReady)?
            };
            if &stats.diff_id != diff_id {
                return Err(StoreError::DiffIdMismatch {
                    expected: diff_id.clone(),
                    actual: stats.diff_id,
                });
            }
            self.commit_temp(&tmp, chain_id)
        })();
        drop(guard);
        if tmp.exists() {
            let _ = fsutil::remove_any(&tmp);
        }
        if result.is_ok() {
            tally.layer_done(diff_id, size, read);
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
    use sha2::{Digest as _, Sha256};
    use std::path::Path;

    #[test]
    fn chain_ids_follow_the_spec() {
        let a = Digest::sha256_of(b"a");
        let b = Digest::sha256_of(b"b");
        let c = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(c[0], a);
        assert_eq!(c[1], Digest::sha256_of(format!("{a} {b}").as_bytes()));
        assert!(chain_ids(&[]).is_empty());
    }

    /// A gzipped layer tar of `entries` (path, kind), stored as a blob;
    /// returns (diff ID, blob digest).
    fn layer(store: &crate::Store, entries: &[(&str, &str)]) -> (Digest, Digest) {
        layer_as(store, entries, true)
    }

    /// [`layer`], gzipped or not (then the blob digest is the diff ID, as
    /// for the layers `load` takes from a docker-archive).
    fn layer_as(store: &crate::Store, entries: &[(&str, &str)], gzip: bool) -> (Digest, Digest) {
        let mut b = tar::Builder::new(Vec::new());
        for (i, (path, kind)) in entries.iter().enumerate() {
            let mut h = tar::Header::new_gnu();
            h.set_mtime(1_700_000_000 + i as u64);
            h.set_uid(i as u64 % 3);
            h.set_gid(0);
            match *kind {
                "dir" => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(0o750);
                    h.set_size(0);
                    b.append_data(&mut h, path, std::io::empty()).unwrap();
                }
                k if k.starts_with("->") => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_mode(0o777);
                    h.set_size(0);
                    b.append_link(&mut h, path, &k[2..]).unwrap();
                }
                k if k.starts_with("=>") => {
                    h.set_entry_type(tar::EntryType::Link);
                    h.set_mode(0o640);
                    h.set_size(0);
                    b.append_link(&mut h, path, &k[2..]).unwrap();
                }
                body => {
                    let data = body.repeat(1000 + i * 37);
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(0o640 | ((i as u32 % 2) * 0o111));
                    h.set_size(data.len() as u64);
                    b.append_data(&mut h, path, data.as_bytes()).unwrap();
                }
            }
        }
        let tar = b.into_inner().unwrap();
        let diff_id = Digest::sha256_of(&tar);
        if !gzip {
            let (blob, _) = store.blobs().put(None, &tar).unwrap();
            assert_eq!(blob, diff_id);
            return (diff_id, blob);
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        let (blob, _) = store.blobs().put(None, &gz.finish().unwrap()).unwrap();
        (diff_id, blob)
    }

    /// Everything of a tree that overlay reads: type, mode, owner, size,
    /// content, link target, device number, xattrs (opaque markers), and
    /// which files are hard links of one another.
    fn describe(root: &Path) -> Vec<String> {
        use std::os::unix::fs::MetadataExt;
        let mut out = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        let mut inodes = std::collections::HashMap::new();
        while let Some(dir) = stack.pop() {
            for ent in fs::read_dir(&dir).unwrap() {
                let p = ent.unwrap().path();
                let m = fs::symlink_metadata(&p).unwrap();
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                let mut xattrs = crate::diff::whiteout::read_xattrs(&p).unwrap();
                if crate::diff::whiteout::is_opaque_dir(&p) {
                    xattrs.push(("opaque".into(), b"y".to_vec()));
                }
                let extra = if m.file_type().is_symlink() {
                    fs::read_link(&p).unwrap().display().to_string()
                } else if m.is_file() {
                    let first = inodes.entry(m.ino()).or_insert_with(|| rel.clone());
                    format!(
                        "{} {}",
                        hex::encode(Sha256::digest(fs::read(&p).unwrap())),
                        first
                    )
                } else {
                    String::new()
                };
                if m.is_dir() {
                    stack.push(p.clone());
                }
                out.push(format!(
                    "{rel} {:o} {}:{} {} rdev={} {xattrs:?} {extra}",
                    m.mode(),
                    m.uid(),
                    m.gid(),
                    if m.is_dir() { 0 } else { m.size() },
                    m.rdev()
                ));
            }
        }
        out.sort();
        out
    }

    #[test]
    fn parallel_unpack_gives_the_same_snapshots_as_sequential() {
        let t = tempfile::tempdir().unwrap();
        let layers: Vec<Vec<(&str, &str)>> = vec![
            vec![
                ("etc", "dir"),
                ("etc/passwd", "root:x:0:0\n"),
                ("usr", "dir"),
                ("usr/lib", "dir"),
                ("usr/lib/a.so", "ELF"),
                ("usr/lib/b.so", "=>usr/lib/a.so"),
                ("usr/lib/c.so", "->a.so"),
                ("var/cache/x/y", "deep file without parents"),
            ],
            vec![
                ("usr/lib/.wh.a.so", ""),
                ("var/cache/.wh..wh..opq", ""),
                ("var/cache/z", "new in an opaque dir"),
                ("etc/passwd", "root:x:0:0\nnobody:x:65534\n"),
            ],
            vec![
                ("opt", "dir"),
                ("opt/.wh..wh..opq", ""),
                ("opt/tool", "#!/bin/sh"),
                ("etc/.wh.passwd", ""),
                ("etc/group", "root:x:0:"),
            ],
            vec![("usr/lib/a.so", "ELF again"), ("tmp", "dir")],
        ];
        let mut trees = Vec::new();
        let mut reports = Vec::new();
        for workers in [1, 3] {
            let root = t.path().join(format!("w{workers}"));
            let store = crate::Store::open(&root).unwrap();
            // Odd layers uncompressed (not hashed again on unpack).
            let chain: Vec<(Digest, Digest)> = layers
                .iter()
                .enumerate()
                .map(|(i, l)| layer_as(&store, l, i % 2 == 0))
                .collect();
            let seen = Mutex::new(Vec::new());
            let report = |p: &UnpackProgress| seen.lock().unwrap().push(p.clone());
            let lease = store.lease("test").unwrap();
            let dirs = store
                .snapshotter()
                .prepare_inner(&chain, Some(&lease), Some(&report), workers)
                .unwrap();
            trees.push(dirs.iter().map(|d| describe(d)).collect::<Vec<_>>());
            let seen = seen.into_inner().unwrap();
            let finished: Vec<_> = seen.iter().filter(|p| p.finished.is_some()).collect();
            assert_eq!(finished.len(), layers.len());
            let last = finished.iter().max_by_key(|p| p.layers_done).unwrap();
            assert_eq!(last.layers_done, layers.len());
            assert_eq!(last.bytes_done, last.bytes_total);
            // A second prepare finds everything and reports nothing.
            assert!(store.snapshotter().all_present(&chain));
            let again = Mutex::new(0);
            let count = |_: &UnpackProgress| *again.lock().unwrap() += 1;
            store
                .snapshotter()
                .prepare_with_progress(&chain, Some(&lease), Some(&count))
                .unwrap();
            assert_eq!(*again.lock().unwrap(), 0);
            reports.push(finished.len());
        }
        assert_eq!(trees[0], trees[1]);
        let _ = reports;
        // The whiteouts and the opaque markers are there, per layer.
        let second = trees[0][1].join("\n");
        assert!(
            second.contains("usr/lib/a.so 20000 0:0 0 rdev=0"),
            "{second}"
        );
        assert!(
            second.contains("var/cache 40755 0:0 0 rdev=0 [(\"opaque\""),
            "{second}"
        );
        assert!(trees[0][2]
            .iter()
            .any(|l| l.starts_with("opt ") && l.contains("opaque")));
        assert!(!trees[0][0].iter().any(|l| l.contains("opaque")));
    }

    #[test]
    fn concurrent_prepares_of_one_chain_all_succeed_and_leave_nothing_behind() {
        let t = tempfile::tempdir().unwrap();
        let store = crate::Store::open(&t.path().join("store")).unwrap();
        let chain: Vec<(Digest, Digest)> = (0..4)
            .map(|i| {
                let name = format!("f{i}");
                let body = format!("layer {i}\n");
                layer(&store, &[(name.as_str(), body.as_str()), ("d", "dir")])
            })
            .collect();
        let unpacked = AtomicUsize::new(0);
        let count = |p: &UnpackProgress| {
            if p.finished.is_some() {
                unpacked.fetch_add(1, Ordering::SeqCst);
            }
        };
        let results: Vec<Vec<PathBuf>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..3)
                .map(|_| {
                    s.spawn(|| {
                        let lease = store.lease("test").unwrap();
                        store
                            .snapshotter()
                            .prepare_inner(&chain, Some(&lease), Some(&count), 2)
                            .unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(results.iter().all(|r| r == &results[0]));
        for (i, dir) in results[0].iter().enumerate() {
            assert_eq!(
                fs::read_to_string(dir.join(format!("f{i}"))).unwrap(),
                format!("layer {i}\n").repeat(1000)
            );
        }
        // Every prepare reports each missing layer done (waiters too).
        assert!(unpacked.load(Ordering::SeqCst) >= 4);
        assert_eq!(store.snapshotter().list().unwrap().len(), 4);
        assert!(store.snapshotter().strays().unwrap().is_empty());
        let left: Vec<_> = fs::read_dir(store.tmp_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "left in tmp: {left:?}");
    }
}
