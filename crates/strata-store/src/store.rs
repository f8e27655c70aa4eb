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
            cause: e,
        })?;
        perms::check_owner(&root)?;
        for d in [
            "blobs/sha256",
            "tmp",
            "locks",
            "leases",
            "snapshots",
            "built",
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
            root.join("built"),
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

    /// Content-addressed blobs.
    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// Images, tags, layers, build cache, leases.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// Unpacked layers.
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

impl Store {
    /// The layer's content size as Docker counts it (see
    /// [`content_size_of_tar`]): recorded at first sight, then read from
    /// the db.
    pub fn layer_content_size(&self, layer: &crate::meta::LayerRecord) -> Result<u64> {
        if let Some(n) = self.meta.content_size(&layer.diff_id)? {
            return Ok(n);
        }
        let noted = WRITTEN
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .and_then(|m| m.get(&layer.diff_id).copied());
        let n = match noted {
            Some(n) => n,
            None => content_size_of_tar(&mut self.snapshots.open_layer(&layer.digest)?)?,
        };
        self.meta.put_content_size(&layer.diff_id, n)?;
        Ok(n)
    }

    /// Records the content sizes of `layers` (at creation or load time, so
    /// listing stays cheap). Best effort: a failure leaves the size to be
    /// computed when first shown.
    pub fn record_content_sizes(&self, layers: &[crate::meta::LayerRecord]) {
        for l in layers {
            let _ = self.layer_content_size(l);
        }
    }

    /// Reads layer blob `digest`: its blob, or a built layer's tar made
    /// again from its snapshot (see [`crate::snapshot::built`]).
    pub fn open_layer(&self, digest: &crate::Digest) -> Result<Box<dyn std::io::Read + Send>> {
        self.snapshots.open_layer(digest)
    }

    /// True when layer blob `digest` can be read (see [`Store::open_layer`]).
    pub fn has_layer(&self, digest: &crate::Digest) -> bool {
        self.snapshots.has_layer(digest)
    }

    /// Registers an image whose blobs are already stored, then tags it
    /// with `names` (full references; may be empty). Returns, per name,
    /// the image the name pointed at before.
    ///
    /// The image is added to `lease` *before* it is inserted: an image
    /// that is registered but not yet tagged is garbage to a concurrent
    /// `prune -a`, and the lease is what keeps it until a tag (or the
    /// caller's own lease) holds it. Every path that makes an image
    /// (build, commit/import, load, pull) goes through here for that.
    pub fn register_image(
        &self,
        rec: &crate::meta::ImageRecord,
        lease: Option<&Lease>,
        names: &[String],
    ) -> Result<Vec<Option<crate::Digest>>> {
        if let Some(l) = lease {
            l.add_image(&rec.id)?;
        }
        self.meta.put_image(rec)?;
        // What `image ls` and `history` show, recorded now so listing is cheap.
        self.record_content_sizes(&rec.layers);
        if names.is_empty() {
            return Ok(Vec::new());
        }
        self.meta.tag_all(names, &rec.id)
    }
}

/// Content sizes of the layers this process wrote (by diff ID), so that
/// registering a layer just built reads nothing back.
static WRITTEN: std::sync::Mutex<Option<std::collections::HashMap<crate::Digest, u64>>> =
    std::sync::Mutex::new(None);

/// Notes a layer's content size learned while it streamed by (a build,
/// a load, a pull), for [`Store::layer_content_size`] to record when the
/// image is registered.
pub fn note_content_size(diff_id: &crate::Digest, n: u64) {
    WRITTEN
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert_with(Default::default)
        .insert(diff_id.clone(), n);
}

/// The bytes of a layer's files, as Docker's `directory.Size` counts an
/// unpacked layer: a regular file its size, a symlink its target's length,
/// a hard link (the same inode again), a directory, a device or a whiteout
/// nothing. `data` may be compressed.
pub fn content_size_of_tar(data: &mut dyn std::io::Read) -> Result<u64> {
    let mut r = crate::diff::decompressed(data)?;
    crate::transfer::sink::walk_entries(&mut r)
        .1
        .ok_or_else(|| {
            crate::error::StoreError::BadLayer(
                "the layer is not a tar that reads to its end".into(),
            )
        })
}

#[cfg(test)]
mod content_size_tests {
    use super::content_size_of_tar;

    /// What the layer builder notes while writing is what reading the
    /// layer back counts.
    #[test]
    fn noted_at_build_time_matches_the_layer() {
        use crate::{EntryMeta, LayerBuilder, LayerOptions, Store};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("root")).unwrap();
        let src = dir.path().join("f");
        std::fs::write(&src, b"hello\n").unwrap();
        let meta = EntryMeta {
            mode: 0o644,
            ..Default::default()
        };
        let mut b = LayerBuilder::new(store.blobs(), LayerOptions::default()).unwrap();
        b.add_dir(std::path::Path::new("app"), &meta).unwrap();
        b.add_file(std::path::Path::new("app/hello"), &src, &meta)
            .unwrap();
        b.add_hardlink(
            std::path::Path::new("app/again"),
            std::path::Path::new("app/hello"),
            &meta,
        )
        .unwrap();
        b.add_symlink(
            std::path::Path::new("app/link"),
            std::path::Path::new("hello"),
            &meta,
        )
        .unwrap();
        b.add_whiteout(std::path::Path::new("gone")).unwrap();
        let info = b.finish().unwrap();
        let rec = info.to_record();
        let noted = store.layer_content_size(&rec).unwrap();
        let read = content_size_of_tar(&mut store.blobs().open(&info.digest).unwrap()).unwrap();
        assert_eq!((noted, read), (11, 11));
    }

    #[test]
    fn counts_file_bytes_not_tar_bytes() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_size(0);
        h.set_mode(0o755);
        b.append_data(&mut h, "app/", std::io::empty()).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(6);
        h.set_mode(0o644);
        b.append_data(&mut h, "app/hello", &b"hello\n"[..]).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Link);
        h.set_size(0);
        b.append_link(&mut h, "app/again", "app/hello").unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "app/link", "hello").unwrap();
        let bytes = b.into_inner().unwrap();
        assert!(bytes.len() > 2048);
        assert_eq!(content_size_of_tar(&mut &bytes[..]).unwrap(), 6 + 5);
    }
}
