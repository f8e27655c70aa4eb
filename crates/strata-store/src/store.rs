//! The `Store` facade: opens the layout under ROOT and hands out the parts.
//!
//! ```text
//! ROOT/blobs/sha256/<hex>      content store
//! ROOT/tmp/                    temp files and dirs being written (flocked)
//! ROOT/meta.db                 SQLite metadata (WAL)
//! ROOT/locks/gc.lock           GC: exclusive; publishing a blob: shared
//! ROOT/leases/<id>.lock        held by a live lease's owner
//! ROOT/snapshots/<chain-hex>/fs  unpacked, overlay-ready layers
//! ROOT/containers/<id>/        per-container upper/work/merged dirs
//! ROOT/cache/                  the engine's (context stat cache, cache mounts)
//! ```
//!
//! ROOT is 0710 (root's) or 0700 (a user's), its entries 0700 / 0600:
//! only the owner reaches image content (see `perms.rs`).

use std::path::{Path, PathBuf};

use crate::blobs::BlobStore;
use crate::containers::Containers;
use crate::error::Result;
use crate::meta::{Lease, Meta};
use crate::perms;
use crate::snapshot::Snapshotter;

/// The local store. `Send + Sync`; clone-free sharing via `&Store` or `Arc`.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    blobs: BlobStore,
    meta: Meta,
    snapshots: Snapshotter,
    containers: Containers,
    mode_fixes: Vec<perms::ModeFix>,
}

impl Store {
    /// Opens the store at `root`, creating the layout and the db on first use.
    ///
    /// The root is made private on every open (see [`crate::perms`]): a
    /// store made with wide modes by an older strata is fixed here, and
    /// [`Store::mode_fixes`] says what was changed. A store owned by
    /// another user is refused before the db is touched.
    pub fn open(root: &Path) -> Result<Store> {
        perms::create_root(root)?;
        let root = std::fs::canonicalize(root).map_err(|e| crate::error::StoreError::Io {
            op: "resolve store root",
            path: root.to_path_buf(),
            source: e,
        })?;
        perms::check_owner(&root)?;
        for d in [
            "blobs/sha256",
            "tmp",
            "locks",
            "leases",
            "snapshots",
            "containers",
            // The engine's (context stat cache, RUN cache mounts): made
            // here so it is private from birth, not fixed (and reported)
            // at the next open.
            "cache",
        ] {
            perms::create_private_dir(&root.join(d))?;
        }
        // After the layout, before the db.
        let mut mode_fixes = perms::secure(&root)?;
        if !root.join("meta.db").exists() {
            // A new store in a directory the caller made: fixed, but no
            // earlier store was exposed, so nothing to report.
            mode_fixes.clear();
        }
        // SQLite would create the db with the umask's mode; its WAL and
        // shm files take the db's.
        perms::create_private_file(&root.join("meta.db"))?;
        let gc_lock = root.join("locks/gc.lock");
        let blobs = BlobStore::new(root.join("blobs/sha256"), root.join("tmp"), gc_lock.clone());
        let meta = Meta::open(&root.join("meta.db"), &root.join("leases"))?;
        let snapshots = Snapshotter::new(
            root.join("snapshots"),
            root.join("tmp"),
            blobs.clone(),
            gc_lock,
        );
        let containers = Containers::new(root.join("containers"), root.join("tmp"));
        Ok(Store {
            root,
            blobs,
            meta,
            snapshots,
            containers,
            mode_fixes,
        })
    }

    /// Paths whose modes let other users into the store when it was
    /// opened, now tightened (empty for a store that was already private).
    pub fn mode_fixes(&self) -> &[perms::ModeFix] {
        &self.mode_fixes
    }

    /// The (canonical) store root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// Images, tags, layers, build cache, leases.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    pub fn snapshotter(&self) -> &Snapshotter {
        &self.snapshots
    }

    /// Per-container directories and overlay rootfs mounts.
    pub fn containers(&self) -> &Containers {
        &self.containers
    }

    /// Starts a lease (a GC root for work in progress).
    pub fn lease(&self, label: &str) -> Result<Lease> {
        self.meta.lease(label)
    }

    /// A new directory in `ROOT/tmp`, locked by this process until the
    /// returned guard is dropped (which removes it): GC and `check --repair`
    /// never remove it while it is held. For every temp directory a caller
    /// makes in the store (build steps, `run`'s init layer).
    pub fn temp_dir(&self, prefix: &str) -> Result<crate::fsutil::TempDir> {
        crate::fsutil::TempDir::create_in(&self.tmp_dir(), prefix)
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub(crate) fn gc_lock_path(&self) -> PathBuf {
        self.root.join("locks/gc.lock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn store_is_send_sync() {
        assert_send_sync::<Store>();
    }
}
