//! Per-container directories under `ROOT/containers/<id>/`: `upper/`,
//! `work/`, `merged/` (the overlay rootfs), and `snapshots` (the chain IDs
//! it mounts, so GC keeps them). The owner holds an flock on `lock` for the
//! container's life; a directory whose lock nobody holds is stale (its
//! process exited or crashed) and is cleaned up.

use std::fs;
use std::path::{Path, PathBuf};

use strata_oci::Digest;

use crate::error::{IoCtx, Result, StoreError};
use crate::fsutil::{self, FileLock};
use crate::mount::{self, RootfsMount};

/// The containers directory.
#[derive(Debug, Clone)]
pub struct Containers {
    dir: PathBuf,
    tmp: PathBuf,
}

/// A live container directory (its lock is held until dropped or removed).
#[derive(Debug)]
pub struct ContainerDir {
    id: String,
    path: PathBuf,
    tmp: PathBuf,
    _lock: FileLock,
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

impl Containers {
    pub(crate) fn new(dir: PathBuf, tmp: PathBuf) -> Containers {
        Containers { dir, tmp }
    }

    /// Creates (or takes over a stale) `ROOT/containers/<id>/`, recording
    /// the snapshots (chain IDs) it will mount. Fails if `id` is in use.
    ///
    /// The directory is made in `ROOT/tmp` with its lock held and renamed
    /// into place, so a directory under `containers/` always has a lock
    /// file: one whose lock nobody holds is stale, with no window in which
    /// a scan cannot tell (a process killed between mkdir and lock used to
    /// leave a lockless directory that looked "being created").
    pub fn create(&self, id: &str, snapshots: &[Digest]) -> Result<ContainerDir> {
        if !valid_id(id) {
            return Err(StoreError::Invalid(format!(
                "invalid container id {id:?} (use letters, digits, '-', '_', '.')"
            )));
        }
        let path = self.dir.join(id);
        let list: String = snapshots.iter().map(|d| format!("{d}\n")).collect();
        // A GC or check may be removing a stale dir of the same id at this
        // very moment: retry a few times before calling the id in use.
        for attempt in 1..=20u64 {
            match self.take_over(&path)? {
                TakeOver::Absent => {}
                TakeOver::Busy => {
                    std::thread::sleep(std::time::Duration::from_millis(5 * attempt));
                    continue;
                }
                TakeOver::Taken(lock) => {
                    // A stale previous life: clear it.
                    mount::unmount(&path.join("merged"))?;
                    for sub in ["upper", "work", "merged", "empty"] {
                        fsutil::remove_any(&path.join(sub))?;
                    }
                    fs::write(path.join("snapshots"), &list)
                        .ctx("write", &path.join("snapshots"))?;
                    return Ok(ContainerDir {
                        id: id.to_string(),
                        path,
                        tmp: self.tmp.clone(),
                        _lock: lock,
                    });
                }
            }
            let fresh = self.tmp.join(fsutil::unique_name("ctr"));
            fsutil::create_dir_all(&fresh)?;
            let lock = FileLock::exclusive(&fresh.join("lock"))?;
            fs::write(fresh.join("snapshots"), &list).ctx("write", &fresh.join("snapshots"))?;
            match fs::rename(&fresh, &path) {
                Ok(()) => {
                    return Ok(ContainerDir {
                        id: id.to_string(),
                        path,
                        tmp: self.tmp.clone(),
                        _lock: lock,
                    })
                }
                // Someone else's directory appeared first: look again.
                Err(e)
                    if matches!(e.raw_os_error(), Some(libc::ENOTEMPTY) | Some(libc::EEXIST)) =>
                {
                    drop(lock);
                    fsutil::remove_any(&fresh)?;
                }
                Err(e) => {
                    drop(lock);
                    let _ = fsutil::remove_any(&fresh);
                    return Err(e).ctx("rename into place", &path);
                }
            }
        }
        Err(StoreError::Invalid(format!(
            "container {id} is in use by another process"
        )))
    }

    /// Locks an existing directory at `path` if nobody holds it.
    fn take_over(&self, path: &Path) -> Result<TakeOver> {
        match fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(TakeOver::Absent),
            Err(e) => return Err(e).ctx("stat", path),
            Ok(md) if !md.is_dir() => {
                fsutil::remove_any(path)?;
                return Ok(TakeOver::Absent);
            }
            Ok(_) => {}
        }
        let lock_path = path.join("lock");
        match FileLock::probe_exclusive(&lock_path)? {
            // Renamed away (being removed) since the stat, or a dir left by
            // an older strata without a lock file: look again / adopt it.
            None if !path.exists() => Ok(TakeOver::Absent),
            None => match FileLock::try_exclusive(&lock_path) {
                Ok(Some(lock)) => Ok(TakeOver::Taken(lock)),
                Ok(None) => Ok(TakeOver::Busy),
                Err(_) if !path.exists() => Ok(TakeOver::Absent),
                Err(e) => Err(e),
            },
            Some(None) => Ok(TakeOver::Busy),
            // The lock is ours, but the directory may have been renamed
            // away (removed by a GC) between the open and the lock.
            Some(Some(lock)) if same_file(&lock_path, &lock) => Ok(TakeOver::Taken(lock)),
            Some(Some(_)) => Ok(TakeOver::Busy),
        }
    }

    /// Ids of the container directories present.
    pub fn list(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for ent in fs::read_dir(&self.dir).ctx("list containers", &self.dir)? {
            let ent = ent.ctx("list containers", &self.dir)?;
            if let Some(n) = ent.file_name().to_str() {
                out.push(n.to_string());
            }
        }
        out.sort();
        Ok(out)
    }

    /// Ids of container directories nobody holds (read-only: see
    /// [`Containers::cleanup_stale`] to remove them).
    pub fn stale(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for id in self.list()? {
            let path = self.dir.join(&id);
            if !path.is_dir() {
                out.push(id);
            } else {
                match FileLock::probe_exclusive(&path.join("lock"))? {
                    Some(Some(_)) => out.push(id),
                    Some(None) => {}
                    None if path.is_dir() => out.push(id),
                    None => {} // renamed away right now
                }
            }
        }
        Ok(out)
    }

    /// Removes container directories nobody holds; returns their ids.
    /// Chain IDs used by live containers are added to `live_snapshots`.
    pub fn cleanup_stale(&self, live_snapshots: &mut Vec<Digest>) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for id in self.list()? {
            let path = self.dir.join(&id);
            if !path.is_dir() {
                fsutil::remove_any(&path)?;
                continue;
            }
            // Since directories are renamed in with their lock, a
            // lockless one is debris (an old strata's, or a failed delete).
            let lock = match FileLock::probe_exclusive(&path.join("lock"))? {
                Some(lock) => lock,
                None if !path.exists() => continue, // renamed away right now
                None => {
                    self.discard(&path)?;
                    removed.push(id);
                    continue;
                }
            };
            match lock {
                None => {
                    let list = fs::read_to_string(path.join("snapshots")).unwrap_or_default();
                    live_snapshots.extend(list.lines().filter_map(|l| l.parse().ok()));
                }
                Some(lock) if same_file(&path.join("lock"), &lock) => {
                    self.discard(&path)?;
                    drop(lock);
                    removed.push(id);
                }
                // Renamed away and perhaps replaced since the open.
                Some(_) => {}
            }
        }
        Ok(removed)
    }

    /// Unmounts a container directory and deletes it: renamed into
    /// `ROOT/tmp` first, so a kill mid-delete leaves temp debris (cleaned
    /// by pid) rather than a half-deleted, lockless container directory.
    fn discard(&self, path: &Path) -> Result<()> {
        discard(path, &self.tmp)
    }
}

fn discard(path: &Path, tmp: &Path) -> Result<()> {
    mount::unmount(&path.join("merged"))?;
    match rename_into_tmp(path, tmp) {
        Ok(Some(doomed)) => fsutil::remove_any(&doomed),
        Ok(None) => Ok(()),
        Err(_) => fsutil::remove_any(path),
    }
}

/// Moves an (unmounted) container dir into `tmp` under a new name, so it
/// leaves the store in one step; None when it was gone already.
fn rename_into_tmp(path: &Path, tmp: &Path) -> std::io::Result<Option<PathBuf>> {
    let doomed = tmp.join(fsutil::unique_name("rm"));
    match fs::rename(path, &doomed) {
        Ok(()) => {
            fsutil::crash_point("container-remove:renamed");
            Ok(Some(doomed))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether the lock file at `path` is the file `lock` holds (it was not
/// renamed away with its directory between the open and the lock).
fn same_file(path: &Path, lock: &FileLock) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(path), lock.file().metadata()) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

enum TakeOver {
    Absent,
    Busy,
    Taken(FileLock),
}

impl ContainerDir {
    /// The container's ID.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The container's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The overlay upper directory.
    pub fn upper(&self) -> PathBuf {
        self.path.join("upper")
    }
    /// The overlay mount point (the rootfs).
    pub fn merged(&self) -> PathBuf {
        self.path.join("merged")
    }

    /// Mounts the rootfs (see [`RootfsMount::mount`]) in this directory.
    pub fn mount_rootfs(&self, lowers: &[PathBuf]) -> Result<RootfsMount> {
        RootfsMount::mount(lowers, &self.path)
    }

    /// Unmounts (if still mounted) and deletes the directory (renamed
    /// into the store's tmp first, its lock held until then).
    pub fn remove(self) -> Result<()> {
        discard(&self.path, &self.tmp)
    }

    /// [`remove`](Self::remove) without the delete: unmounts and moves the
    /// directory into `ROOT/tmp`, returning its new path (None: it was
    /// gone), for a caller that deletes it after answering its user (`run
    /// --rm`). There it is temp debris like any other, removed by GC and
    /// `check --repair` once nobody holds it locked.
    pub fn remove_later(self) -> Result<Option<PathBuf>> {
        mount::unmount(&self.path.join("merged"))?;
        rename_into_tmp(&self.path, &self.tmp).ctx("move into the temp dir", &self.path)
    }
}
