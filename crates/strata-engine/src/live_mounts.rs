//! The rootfs mounts this process holds, so that a process ending at once
//! can still release them.
//!
//! Ctrl-C during a build step other than RUN (a long COPY) ends strata from
//! its signal thread with `exit(130)`: no cancellation point stops a copy
//! half-way, and waiting for one would not be prompt. `exit` runs no
//! destructor, so the step's [`MountedRootfs`](crate::mounts::MountedRootfs)
//! guard never unmounted: the overlay stayed under
//! `STORE/containers/build-*/merged` until the next strata command on that
//! store cleaned it up. Every `MountedRootfs` is registered here from its
//! mount to its drop, and [`release_all`] (called right before such an
//! exit) unmounts and removes each one, then refuses new mounts.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

struct Registry {
    /// Set by [`release_all`]: the process is about to exit.
    closing: bool,
    next: u64,
    /// Container directories (`upper/`, `work/`, `merged/`, `lock`...).
    dirs: Vec<(u64, PathBuf)>,
}

/// The process's registry (the tests make their own).
static LIVE: Mutex<Registry> = Registry::new();

impl Registry {
    const fn new() -> Mutex<Registry> {
        Mutex::new(Registry {
            closing: false,
            next: 0,
            dirs: Vec::new(),
        })
    }
}

fn lock(reg: &Mutex<Registry>) -> MutexGuard<'_, Registry> {
    // A panic elsewhere must not stop the release on exit.
    reg.lock().unwrap_or_else(|p| p.into_inner())
}

/// A mount refused because [`release_all`] ran: the process is exiting.
#[derive(Debug, thiserror::Error)]
#[error("strata is exiting (interrupted): no new mounts")]
pub struct Exiting;

/// The registry held while one container directory is created and
/// mounted, so that [`release_all`] cannot run between the mount and its
/// registration (which would leave exactly the mount it exists to remove).
pub(crate) struct Slot<'a> {
    reg: &'a Mutex<Registry>,
    held: MutexGuard<'a, Registry>,
}

/// Takes the registry for one mount; refused once the process is exiting.
pub(crate) fn slot() -> Result<Slot<'static>, Exiting> {
    slot_in(&LIVE)
}

fn slot_in(reg: &Mutex<Registry>) -> Result<Slot<'_>, Exiting> {
    let held = lock(reg);
    if held.closing {
        return Err(Exiting);
    }
    Ok(Slot { reg, held })
}

impl<'a> Slot<'a> {
    /// Registers the mounted container directory `dir` until the returned
    /// guard drops.
    pub(crate) fn register(mut self, dir: &Path) -> Live<'a> {
        let id = self.held.next;
        self.held.next += 1;
        self.held.dirs.push((id, dir.to_path_buf()));
        Live { reg: self.reg, id }
    }
}

/// One registered mount; dropped after its owner unmounted and removed it.
pub(crate) struct Live<'a> {
    reg: &'a Mutex<Registry>,
    id: u64,
}

impl Drop for Live<'_> {
    fn drop(&mut self) {
        lock(self.reg).dirs.retain(|(id, _)| *id != self.id);
    }
}

/// Unmounts and removes every registered container directory and refuses
/// new mounts; for a process about to exit without unwinding (see the
/// module doc). Returns how many were released. Best effort: a directory
/// whose unmount fails is left to the store's stale-container cleanup
/// (never deleted while its overlay might still be mounted).
pub fn release_all() -> usize {
    release_all_in(&LIVE)
}

fn release_all_in(reg: &Mutex<Registry>) -> usize {
    let dirs = {
        let mut reg = lock(reg);
        reg.closing = true;
        std::mem::take(&mut reg.dirs)
    };
    let mut released = 0;
    for (_, dir) in dirs {
        // Lazy: the step's thread may still have files open in it.
        match rustix::mount::unmount(dir.join("merged"), rustix::mount::UnmountFlags::DETACH) {
            // EINVAL: not mounted (already released by its owner).
            Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => {}
            Err(e) => {
                tracing::warn!("unmounting {}: {e}", dir.display());
                continue;
            }
        }
        // A lockless directory left by a kill mid-delete is debris the
        // store's container scan removes.
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => released += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => released += 1,
            Err(e) => tracing::warn!("removing {}: {e}", dir.display()),
        }
    }
    released
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_all_removes_what_is_registered_and_closes() {
        let reg = Registry::new();
        let t = tempfile::tempdir().unwrap();
        let kept = t.path().join("kept");
        let gone = t.path().join("gone");
        for d in [&kept, &gone] {
            std::fs::create_dir_all(d.join("merged")).unwrap();
        }
        // A released owner deregisters: its directory is not touched.
        drop(slot_in(&reg).ok().unwrap().register(&kept));
        let live = slot_in(&reg).ok().unwrap().register(&gone);
        assert_eq!(release_all_in(&reg), 1);
        assert!(kept.exists(), "a deregistered directory was removed");
        assert!(!gone.exists(), "a registered directory was left");
        assert!(
            slot_in(&reg).is_err(),
            "a mount was allowed after release_all"
        );
        // The owner's own drop afterwards is harmless.
        drop(live);
        assert_eq!(release_all_in(&reg), 0);
    }
}
