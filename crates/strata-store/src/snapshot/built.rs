//! Built layers: a layer a build made from a RUN's upper dir is kept as its
//! snapshot alone, plus its diff ID, as Docker's overlay2 store keeps it:
//! no tar and no gzip blob is written on the build's critical path. Its tar
//! is made again from the snapshot when something needs the bytes (save,
//! push, `--output`, cache export, an unpack onto another parent) and
//! checked against the diff ID every time ([`retar`]): a snapshot changed
//! since it was built gives an error, never a tar with a new digest.
//!
//! On disk, `snapshots/<chain>/layer` holds the diff ID and the tar's size.
//! It is written into the snapshot's temp dir before the commit rename, so
//! a snapshot is built or not, never half. `built/<diff-hex>` is a symlink
//! to the chain hex, to find the snapshot by diff ID; it is only an index:
//! a dangling or stale link is ignored, and GC mends the index from the
//! markers ([`Snapshotter::reindex`]).

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use strata_oci::Digest;

use super::Snapshotter;
use crate::diff::{digest_dir, LayerInfo, LayerOptions, LayerWriter};
use crate::error::{IoCtx, Result};
use crate::fsutil::{self, FileLock};
use crate::meta::Lease;

pub use from_entries::EntriesLayer;
pub use retar::RetarReader;

mod from_entries;
mod retar;

/// The marker file of a built snapshot.
const MARKER: &str = "layer";

impl Snapshotter {
    /// Keeps `dir` (a RUN's upper dir, overlay-ready, whose layer `info`
    /// was computed by [`crate::diff::digest_dir`]) as the built snapshot
    /// `chain_id`: the layer's only copy. Returns the layer to record: `info`
    /// itself, or, when a snapshot of the same chain unpacked from a blob
    /// is there already (its files need not give the same tar again), a
    /// gzip blob written from `dir`. `dir` is consumed either way.
    pub fn adopt_built(
        &self,
        chain_id: &Digest,
        info: &LayerInfo,
        dir: &Path,
        lease: Option<&Lease>,
    ) -> Result<LayerInfo> {
        let _gc = FileLock::shared(&self.gc_lock)?;
        if let Some(l) = lease {
            l.add_snapshot(chain_id)?;
        }
        // A snapshot of this chain unpacked from a blob: its files need not
        // give this tar again, so the layer gets a blob, written from ours.
        let as_blob = |from: &Path| {
            LayerWriter::new(&self.blobs, LayerOptions::default()).write_dir(from, lease)
        };
        if self.exists(chain_id) {
            if self.built_diff_id(chain_id).as_ref() == Some(&info.diff_id) {
                self.link_built(&info.diff_id, chain_id)?;
                fsutil::remove_any(dir)?;
                return Ok(info.clone());
            }
            let blob = as_blob(dir)?;
            fsutil::remove_any(dir)?;
            return Ok(blob);
        }
        // Stage as tmp/snap-*/{fs,layer}, then rename the whole snapshot
        // dir: the same commit protocol as an unpack.
        let tmp = self.tmp.join(fsutil::unique_name("snap"));
        fsutil::create_dir_all(&tmp)?;
        let marker_path = tmp.join(MARKER);
        let marker = format!("{}\n{}\n", info.diff_id, info.uncompressed_size);
        let result = fs::write(&marker_path, marker)
            .ctx("write built layer marker", &marker_path)
            .and_then(|()| fs::rename(dir, tmp.join("fs")).ctx("move upper dir into snapshot", dir))
            .and_then(|()| {
                let target = self.dir.join(chain_id.hex());
                match fs::rename(&tmp, &target) {
                    Ok(()) => fsutil::fsync_dir(&self.dir).map(|()| info.clone()),
                    Err(_) if self.built_diff_id(chain_id).as_ref() == Some(&info.diff_id) => {
                        // The same layer, built by a concurrent build.
                        Ok(info.clone())
                    }
                    // Unpacked by a concurrent build first.
                    Err(_) if self.exists(chain_id) => as_blob(&tmp.join("fs")),
                    Err(e) => Err(e).ctx("commit snapshot", &target),
                }
            });
        if tmp.exists() {
            let _ = fsutil::remove_any(&tmp);
        }
        let layer = result?;
        if layer.digest == info.diff_id {
            self.link_built(&info.diff_id, chain_id)?;
        }
        Ok(layer)
    }

    /// The diff ID a built snapshot was recorded with (None for a snapshot
    /// unpacked from a blob, or none at all).
    pub fn built_diff_id(&self, chain_id: &Digest) -> Option<Digest> {
        self.built_marker(chain_id).map(|(d, _)| d)
    }

    fn built_marker(&self, chain_id: &Digest) -> Option<(Digest, u64)> {
        let text = fs::read_to_string(self.dir.join(chain_id.hex()).join(MARKER)).ok()?;
        let mut lines = text.lines();
        let diff_id = lines.next()?.parse().ok()?;
        let size = lines.next()?.parse().ok()?;
        Some((diff_id, size))
    }

    /// The built snapshot holding the layer `diff_id`: its chain ID and
    /// tar size.
    fn find_built(&self, diff_id: &Digest) -> Option<(Digest, u64)> {
        let target = fs::read_link(self.built.join(diff_id.hex())).ok()?;
        let chain_id = Digest::from_sha256_hex(target.to_str()?).ok()?;
        let (marked, size) = self.built_marker(&chain_id)?;
        (marked == *diff_id && self.exists(&chain_id)).then_some((chain_id, size))
    }

    /// The directory of the built snapshot holding layer `diff_id`.
    pub fn built_layer(&self, diff_id: &Digest) -> Option<PathBuf> {
        self.find_built(diff_id).map(|(c, _)| self.path(&c))
    }

    /// True when the layer blob `digest` can be read: a blob, or a built
    /// snapshot whose tar it is.
    pub fn has_layer(&self, digest: &Digest) -> bool {
        self.blobs.exists(digest) || self.find_built(digest).is_some()
    }

    /// The size of layer blob `digest` (a built layer's: its tar's).
    pub fn layer_size(&self, digest: &Digest) -> Result<u64> {
        match self.blobs.size(digest) {
            Err(e) if !self.blobs.exists(digest) => match self.find_built(digest) {
                Some((_, size)) => Ok(size),
                None => Err(e),
            },
            r => r,
        }
    }

    /// Reads layer blob `digest`: the blob, or a built layer's tar made
    /// again from its snapshot and checked against `digest` (its diff ID)
    /// as it streams: a changed snapshot fails the read before the tar's
    /// end, so no consumer ever completes a tar with another digest.
    pub fn open_layer(&self, digest: &Digest) -> Result<Box<dyn Read + Send>> {
        if !self.blobs.exists(digest) {
            if let Some((chain_id, _)) = self.find_built(digest) {
                return Ok(Box::new(RetarReader::start(
                    self.path(&chain_id),
                    digest.clone(),
                )));
            }
        }
        Ok(Box::new(self.blobs.open(digest)?))
    }

    /// The diff ID the files of built snapshot `chain_id` give now (its
    /// tar made again and hashed; compare with [`Self::built_diff_id`]).
    pub fn digest_built(&self, chain_id: &Digest) -> Result<Digest> {
        Ok(digest_dir(&self.path(chain_id), LayerOptions::default())?.diff_id)
    }

    /// Points `built/<diff-hex>` at `chain_id` (atomically: a symlink made
    /// under a temp name, renamed over the old one).
    fn link_built(&self, diff_id: &Digest, chain_id: &Digest) -> Result<()> {
        let link = self.built.join(diff_id.hex());
        if fs::read_link(&link)
            .is_ok_and(|t| t.as_os_str() == std::ffi::OsStr::new(&chain_id.hex()))
        {
            return Ok(());
        }
        let tmp = self.built.join(format!(".{}", fsutil::unique_name("link")));
        std::os::unix::fs::symlink(chain_id.hex(), &tmp).ctx("index built layer", &tmp)?;
        fs::rename(&tmp, &link).ctx("index built layer", &link)
    }

    /// Built snapshots present: chain ID -> the diff ID it holds.
    pub(crate) fn built_snapshots(&self) -> Result<HashMap<Digest, Digest>> {
        let mut out = HashMap::new();
        for chain_id in self.list()? {
            if let Some(d) = self.built_diff_id(&chain_id) {
                out.insert(chain_id, d);
            }
        }
        Ok(out)
    }

    /// Mends the diff ID index after snapshots were removed: links whose
    /// snapshot is gone are dropped, and every built snapshot left is
    /// findable again (one of them per diff ID). Returns the links dropped.
    pub(crate) fn reindex(&self) -> Result<usize> {
        let mut dropped = 0;
        for ent in fs::read_dir(&self.built).ctx("list built layers", &self.built)? {
            let ent = ent.ctx("list built layers", &self.built)?;
            let valid = ent
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_sha256_hex(n).ok())
                .is_some_and(|d| self.find_built(&d).is_some());
            if !valid {
                fsutil::remove_any(&ent.path())?;
                dropped += 1;
            }
        }
        for (chain_id, diff_id) in self.built_snapshots()? {
            if self.find_built(&diff_id).is_none() {
                self.link_built(&diff_id, &chain_id)?;
            }
        }
        Ok(dropped)
    }
}
