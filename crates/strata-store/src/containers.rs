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
use crate::gc::TMP_GRACE;
use crate::mount::{self, RootfsMount};

/// The containers directory.
#[derive(Debug, Clone)]
pub struct Containers {
    dir: PathBuf,
}

/// A live container directory (its lock is held until dropped or removed).
#[derive(Debug)]
pub struct ContainerDir {
    id: String,
    path: PathBuf,
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
    pub(crate) fn new(dir: PathBuf) -> Containers {
        Containers { dir }
    }

    /// Creates (or takes over a stale) `ROOT/containers/<id>/`, recording
    /// the snapshots (chain IDs) it will mount. Fails if `id` is in use.
    pub fn create(&self, id: &str, snapshots: &[Digest]) -> Result<ContainerDir> {
        if !valid_id(id) {
            return Err(StoreError::Invalid(format!(
                "invalid container id {id:?} (use letters, digits, '-', '_', '.')"
            )));
        }
        let path = self.dir.join(id);
        // A GC or check may be judging this fresh dir stale at this very
        // moment (it holds the lock briefly, or removes the dir): retry a
        // few times before calling the id in use.
        let mut attempt = 0;
        let lock = loop {
            attempt += 1;
            fsutil::create_dir_all(&path)?;
            match FileLock::try_exclusive(&path.join("lock")) {
                Ok(Some(lock)) if path.is_dir() => break lock,
                Ok(_) | Err(_) if attempt < 20 => {
                    std::thread::sleep(std::time::Duration::from_millis(5 * attempt));
                }
                Ok(_) => {
                    return Err(StoreError::Invalid(format!(
                        "container {id} is in use by another process"
                    )))
                }
                Err(e) => return Err(e),
            }
        };
        // A stale previous life: clear it.
        mount::unmount(&path.join("merged"))?;
        for sub in ["upper", "work", "merged", "empty"] {
            fsutil::remove_any(&path.join(sub))?;
        }
        let list: String = snapshots.iter().map(|d| format!("{d}\n")).collect();
        fs::write(path.join("snapshots"), list).ctx("write", &path.join("snapshots"))?;
        Ok(ContainerDir {
            id: id.to_string(),
            path,
            _lock: lock,
        })
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
                    None if fsutil::older_than(&path, TMP_GRACE) => out.push(id),
                    None => {} // being created or removed right now
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
            // The owner may be creating or removing its directory right
            // now (no lock file yet, or already unlinked): leave it alone
            // unless it has been lockless for a while (a crash between
            // mkdir and lock).
            let lock = match FileLock::probe_exclusive(&path.join("lock"))? {
                Some(lock) => lock,
                None if fsutil::older_than(&path, TMP_GRACE) => {
                    mount::unmount(&path.join("merged"))?;
                    fsutil::remove_any(&path)?;
                    removed.push(id);
                    continue;
                }
                None => continue,
            };
            match lock {
                None => {
                    let list = fs::read_to_string(path.join("snapshots")).unwrap_or_default();
                    live_snapshots.extend(list.lines().filter_map(|l| l.parse().ok()));
                }
                Some(lock) => {
                    mount::unmount(&path.join("merged"))?;
                    fsutil::remove_any(&path)?;
                    drop(lock);
                    removed.push(id);
                }
            }
        }
        Ok(removed)
    }
}

impl ContainerDir {
    pub fn id(&self) -> &str {
        &self.id
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn upper(&self) -> PathBuf {
        self.path.join("upper")
    }
    pub fn merged(&self) -> PathBuf {
        self.path.join("merged")
    }

    /// Mounts the rootfs (see [`RootfsMount::mount`]) in this directory.
    pub fn mount_rootfs(&self, lowers: &[PathBuf]) -> Result<RootfsMount> {
        RootfsMount::mount(lowers, &self.path)
    }

    /// Unmounts (if still mounted) and deletes the directory.
    pub fn remove(self) -> Result<()> {
        mount::unmount(&self.merged())?;
        fsutil::remove_any(&self.path)
    }
}
