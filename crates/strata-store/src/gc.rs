//! Garbage collection and prune.
//!
//! Roots: every image record (its manifest, config and layer blobs, and the
//! snapshots of its layer chain), build cache entries (their blobs and
//! images), live leases (blobs, images, snapshots), and live containers
//! (the snapshots they mount). Tags are roots of images, which matters for
//! `prune(all)`: it also removes untagged images and the whole build cache.
//!
//! GC holds the exclusive `locks/gc.lock` for its whole run. Blob and
//! snapshot publishers take it shared while they make something visible
//! and record it in their lease (see `blobs.rs`, `meta/leases.rs`), so GC
//! never sees a fresh blob that is not yet protected.

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use strata_oci::Digest;

use crate::error::{IoCtx, Result};
use crate::fsutil::{self, try_lock_file, FileLock};
use crate::meta::col_digest;
use crate::snapshot::chain_ids;
use crate::store::Store;

/// Temp entries younger than this are never removed (they may be about to
/// be locked by their writer), unless their process is gone.
pub const TMP_GRACE: Duration = Duration::from_secs(60);

/// The grace period GC and `check` apply to `ROOT/tmp`: [`TMP_GRACE`], or
/// `STRATA_TMP_GRACE_SECS` seconds when set (for tests that need a temp
/// entry to count as old without waiting a minute).
pub fn tmp_grace() -> Duration {
    std::env::var("STRATA_TMP_GRACE_SECS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(TMP_GRACE, Duration::from_secs)
}

/// What a GC / prune freed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    /// Images removed.
    pub images_removed: Vec<Digest>,
    /// Build cache entries removed.
    pub cache_entries_removed: usize,
    /// Blobs removed.
    pub blobs_removed: Vec<Digest>,
    /// Bytes of blobs removed (snapshots and temp files not counted).
    pub bytes_freed: u64,
    /// Layer records removed.
    pub layer_records_removed: usize,
    /// Snapshots removed, by chain ID.
    pub snapshots_removed: Vec<Digest>,
    /// Stale container directories removed.
    pub containers_removed: Vec<String>,
    /// Temp files and directories removed.
    pub tmp_removed: usize,
    /// Leases of dead processes released.
    pub leases_expired: usize,
}

/// The GC roots, read in one transaction.
#[derive(Default)]
struct Roots {
    blobs: HashSet<Digest>,
    snapshots: HashSet<Digest>,
}

impl Store {
    /// Removes what nothing refers to (keeps every image and cache entry).
    pub fn gc(&self) -> Result<PruneReport> {
        self.prune(false)
    }

    /// GC; with `all`, first removes untagged images (not held by a live
    /// lease) and the whole build cache.
    pub fn prune(&self, all: bool) -> Result<PruneReport> {
        let _gc = FileLock::exclusive(&self.gc_lock_path())?;
        let mut report = PruneReport {
            leases_expired: self.expire_leases()?,
            ..Default::default()
        };
        if all {
            report.cache_entries_removed = self.meta().cache_clear()?;
            report.images_removed = self.remove_untagged_images()?;
        }
        // List first, read roots second (see the module docs).
        let blobs = self.blobs().list()?;
        let snapshots = self.snapshotter().list()?;
        let mut live_snaps = Vec::new();
        report.containers_removed = self.containers().cleanup_stale(&mut live_snaps)?;
        let roots = self.read_roots()?;
        let doomed: Vec<Digest> = blobs
            .into_iter()
            .filter(|d| !roots.blobs.contains(d))
            .collect();
        // Records first, blobs second: a prune killed in between leaves
        // unreferenced blobs (the next GC takes them), never a layer record
        // naming a blob that is gone.
        report.layer_records_removed = self.forget_layers_of(&doomed)?;
        for d in doomed {
            report.bytes_freed += self.blobs().size(&d).unwrap_or(0);
            self.blobs().remove(&d)?;
            report.blobs_removed.push(d);
        }
        fsutil::crash_point("prune:blobs-removed");
        let live: HashSet<Digest> = live_snaps.into_iter().collect();
        // A built layer's snapshot is its only copy: kept while an image,
        // a cache entry or a lease names the layer, whatever its parent.
        let built = self.snapshotter().built_snapshots()?;
        let names_layer = |s: &Digest| built.get(s).is_some_and(|d| roots.blobs.contains(d));
        for s in snapshots {
            if !roots.snapshots.contains(&s) && !live.contains(&s) && !names_layer(&s) {
                self.snapshotter().remove(&s)?;
                report.snapshots_removed.push(s);
            }
        }
        for p in self.snapshotter().strays()? {
            fsutil::remove_any(&p)?;
        }
        self.snapshotter().reindex()?;
        // After the snapshots: a built layer's row goes with its snapshot.
        report.layer_records_removed += self.forget_missing_layers()?;
        report.tmp_removed = self.clean_tmp(tmp_grace())?.len();
        Ok(report)
    }

    /// `image prune`: removes untagged images (with `all`, every image:
    /// tags first), then collects what they alone used. Images a build
    /// lease or the build cache holds stay, as in [`Store::prune`].
    pub fn prune_images(&self, all: bool) -> Result<(Vec<String>, PruneReport)> {
        let (untagged, removed) = {
            let _gc = FileLock::exclusive(&self.gc_lock_path())?;
            let mut untagged = Vec::new();
            if all {
                for img in self.meta().images()? {
                    untagged.extend(img.tags);
                }
                self.meta().untag_all(&untagged)?;
            }
            (untagged, self.remove_untagged_images()?)
        };
        let mut report = self.prune(false)?;
        report.images_removed = removed;
        Ok((untagged, report))
    }

    /// Drops leases whose owner is gone (their lock file is not held).
    fn expire_leases(&self) -> Result<usize> {
        let mut n = 0;
        let mut known = HashSet::new();
        for l in self.meta().leases()? {
            let path = self.meta().lease_lock_path(&l.id);
            known.insert(path.clone());
            if let Some(lock) = FileLock::try_exclusive(&path)? {
                self.meta().delete_lease(&l.id)?;
                let _ = fs::remove_file(&path);
                drop(lock);
                n += 1;
            }
        }
        let dir = self.meta().leases_dir().to_path_buf();
        for ent in fs::read_dir(&dir).ctx("list leases", &dir)? {
            let p = ent.ctx("list leases", &dir)?.path();
            // `.lock-*`: a lease lock file being born (FileLock::exclusive_at
            // creates it, then locks it): taking it in between would pull
            // it from under its owner. Only a long-abandoned one is removed.
            let being_born = p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'))
                && !fsutil::older_than(&p, TMP_GRACE);
            if !known.contains(&p) && !being_born {
                // Probe, never create: the owner may be unlinking it.
                if let Some(Some(lock)) = FileLock::probe_exclusive(&p)? {
                    // No row: a lease that ended, or one being created
                    // (its owner holds the lock, so we would not get here).
                    let _ = fs::remove_file(&p);
                    drop(lock);
                }
            }
        }
        Ok(n)
    }

    fn remove_untagged_images(&self) -> Result<Vec<Digest>> {
        self.meta().write("remove untagged images", |tx| {
            let ids: Vec<Digest> = tx
                .prepare(
                    "SELECT id FROM images WHERE id NOT IN (SELECT image_id FROM tags)
                       AND id NOT IN (SELECT image_id FROM index_tags)
                       AND id NOT IN (SELECT ref FROM lease_refs WHERE kind = 'image')
                       AND id NOT IN (SELECT ref FROM cache_refs WHERE kind = 'image')",
                )?
                .query_map([], |r| col_digest(r, 0))?
                .collect::<rusqlite::Result<_>>()?;
            for id in &ids {
                tx.execute("DELETE FROM images WHERE id = ?1", [id.to_string()])?;
            }
            Ok(ids)
        })
    }

    fn read_roots(&self) -> Result<Roots> {
        self.meta().read("read GC roots", |tx| {
            let mut roots = Roots::default();
            let digests = |sql: &str| -> rusqlite::Result<Vec<Digest>> {
                tx.prepare(sql)?
                    .query_map([], |r| col_digest(r, 0))?
                    .collect()
            };
            for sql in [
                "SELECT manifest_digest FROM images",
                "SELECT DISTINCT index_digest FROM index_tags",
                "SELECT config_digest FROM images",
                "SELECT digest FROM image_layers",
                "SELECT ref FROM cache_refs WHERE kind = 'blob'",
                "SELECT ref FROM lease_refs WHERE kind = 'blob'",
            ] {
                roots.blobs.extend(digests(sql)?);
            }
            roots.snapshots.extend(digests(
                "SELECT ref FROM lease_refs WHERE kind = 'snapshot'",
            )?);
            let mut stmt = tx.prepare(
                "SELECT image_id, diff_id FROM image_layers ORDER BY image_id, position",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, col_digest(r, 1)?)))?;
            let mut cur: Option<String> = None;
            let mut diffs = Vec::new();
            for row in rows {
                let (img, diff) = row?;
                if cur.as_ref() != Some(&img) {
                    roots.snapshots.extend(chain_ids(&diffs));
                    diffs.clear();
                    cur = Some(img);
                }
                diffs.push(diff);
            }
            roots.snapshots.extend(chain_ids(&diffs));
            Ok(roots)
        })
    }

    /// Layer-table rows naming one of `blobs`, in one transaction.
    fn forget_layers_of(&self, blobs: &[Digest]) -> Result<usize> {
        if blobs.is_empty() {
            return Ok(0);
        }
        self.meta().write("forget layers of pruned blobs", |tx| {
            let mut stmt = tx.prepare("DELETE FROM layers WHERE digest = ?1")?;
            let mut n = 0;
            for d in blobs {
                n += stmt.execute([d.to_string()])?;
            }
            Ok(n)
        })
    }

    /// Layer-table rows whose blob is gone (left by an older strata or a
    /// repair).
    fn forget_missing_layers(&self) -> Result<usize> {
        let mut n = 0;
        for l in self.meta().layers()? {
            if !self.snapshotter().has_layer(&l.digest) {
                self.meta().write("forget layer", |tx| {
                    tx.execute(
                        "DELETE FROM layers WHERE diff_id = ?1 AND media_type = ?2",
                        [l.diff_id.to_string(), l.media_type.clone()],
                    )
                })?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Removes leftovers in `ROOT/tmp`: entries nobody holds locked that are
    /// older than `grace` or whose creating process is gone.
    pub(crate) fn clean_tmp(&self, grace: Duration) -> Result<Vec<std::path::PathBuf>> {
        let dir = self.tmp_dir();
        let mut removed = Vec::new();
        for ent in fs::read_dir(&dir).ctx("list temp dir", &dir)? {
            let p = ent.ctx("list temp dir", &dir)?.path();
            if is_leftover(&p, grace)? {
                fsutil::remove_any(&p)?;
                removed.push(p);
            }
        }
        Ok(removed)
    }
}

/// The pid in a `kind-<pid>-...` temp name.
fn creator_pid(path: &Path) -> Option<u32> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.split('-').nth(1).and_then(|p| p.parse::<u32>().ok())
}

/// Removes the temp blobs (`ROOT/tmp/blob-<pid>-…`) this process is
/// writing: for a SIGINT/SIGTERM handler, right before the process exits
/// (a load or import stopped by a signal leaves nothing). Best effort;
/// returns how many were removed.
pub fn remove_own_temp_blobs(root: &Path) -> usize {
    let me = std::process::id();
    let Ok(rd) = fs::read_dir(root.join("tmp")) else {
        return 0;
    };
    rd.flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("blob-"))
                && creator_pid(p) == Some(me)
        })
        .filter(|p| fs::remove_file(p).is_ok())
        .count()
}

impl Store {
    /// Removes temp blobs and snapshot temp dirs whose writer is gone (a
    /// load, import or pull killed with SIGKILL; a load unpacks layers as
    /// it reads them): named with a pid that no longer runs and not
    /// locked. Safe beside running writers (they hold their flock from
    /// creation and their pid runs), so `load` runs it first; the rest of
    /// `ROOT/tmp` is left to GC and `check --repair`.
    pub fn remove_dead_temp_blobs(&self) -> Result<usize> {
        let dir = self.tmp_dir();
        let mut n = 0;
        for ent in fs::read_dir(&dir).ctx("list temp dir", &dir)? {
            let p = ent.ctx("list temp dir", &dir)?.path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let is_temp = name.starts_with("blob-") || name.starts_with("snap-");
            if !is_temp || creator_pid(&p).is_none() || creator_alive(&p) {
                continue;
            }
            let Ok(f) = open_to_lock(&p) else {
                continue;
            };
            if try_lock_file(&f, &p)? && fsutil::remove_any(&p).is_ok() {
                n += 1;
            }
        }
        Ok(n)
    }
}

/// `kind-<pid>-...` names carry their creator's pid.
fn creator_alive(path: &Path) -> bool {
    match creator_pid(path) {
        Some(pid) => Path::new(&format!("/proc/{pid}")).exists(),
        None => true,
    }
}

pub(crate) fn is_leftover(path: &Path, grace: Duration) -> Result<bool> {
    let Ok(md) = fs::symlink_metadata(path) else {
        return Ok(false);
    };
    let old = fsutil::modified_before(&md, grace);
    if !old && creator_alive(path) {
        return Ok(false);
    }
    if md.file_type().is_symlink() {
        return Ok(true);
    }
    let Ok(f) = open_to_lock(path) else {
        return Ok(false);
    };
    try_lock_file(&f, path)
}

/// Opens a temp entry only to probe its flock: `O_NONBLOCK`, so an entry
/// that is a FIFO (nothing strata makes, but ROOT/tmp is only as clean as
/// whatever wrote there) cannot block GC waiting for a writer; never
/// follows a symlink.
fn open_to_lock(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_NOCTTY)
        .open(path)
}
