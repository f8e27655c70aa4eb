//! [`EntriesLayer`]: a layer written entry by entry (COPY, ADD) straight
//! into a new built snapshot, so that it too is stored once: the entries'
//! tar is applied by a second thread as it is made (a bounded pipe, flat
//! memory), never written; the diff ID is then hashed from the snapshot's
//! files ([`digest_dir`]), as a RUN's is from its upper dir, so that the
//! tar made again from the snapshot later is the one the image names.

use std::fs::File;
use std::path::PathBuf;
use std::thread::JoinHandle;

use strata_oci::Digest;

use super::super::Snapshotter;
use crate::diff::{
    apply_layer, digest_dir, ApplyMode, ApplyStats, LayerBuilder, LayerInfo, LayerOptions,
};
use crate::error::{IoCtx, Result, StoreError};
use crate::fsutil;
use crate::meta::Lease;
use crate::pipe;

/// A layer being written into a snapshot (see the module docs). Dropped
/// without [`finish`](Self::finish), it leaves nothing behind.
pub struct EntriesLayer {
    builder: Option<LayerBuilder>,
    applier: Option<JoinHandle<Result<ApplyStats>>>,
    /// `ROOT/tmp/snap-*`, locked while it is written (GC's temp sweep
    /// skips a locked dir); the files go to its `fs`.
    tmp: PathBuf,
    _guard: File,
}

impl Snapshotter {
    /// Starts a layer whose entries are applied into a new snapshot as
    /// they are written (`opts`: only its mtime clamp counts; the layer
    /// has no blob to compress).
    pub fn entries_layer(&self, opts: LayerOptions) -> Result<EntriesLayer> {
        let tmp = self.tmp.join(fsutil::unique_name("snap"));
        let dest = tmp.join("fs");
        fsutil::create_dir_all(&dest)?;
        let guard = File::open(&tmp).ctx("open snapshot temp dir", &tmp)?;
        guard.lock().ctx("lock snapshot temp dir", &tmp)?;
        // A failed apply stops reading and drops the pipe, so the writer
        // stops at its next entry (a full disk does not read the rest of a
        // big COPY); `apply_error` then gives the cause.
        let (out, applier) = pipe::spawn("layer-apply", move |mut r| {
            apply_layer(&mut r, &dest, ApplyMode::OverlayReady)
        })
        .what(|| "start the layer apply thread".to_string())?;
        let builder = LayerBuilder::uncompressed(Box::new(out), opts);
        Ok(EntriesLayer {
            builder: Some(builder),
            applier: Some(applier),
            tmp,
            _guard: guard,
        })
    }
}

impl EntriesLayer {
    /// Where the entries are written.
    pub fn builder(&mut self) -> &mut LayerBuilder {
        self.builder.as_mut().expect("not finished")
    }

    /// Ends the tar and waits for its apply. Returns the files' dir, or
    /// None when the apply could not keep every attribute (an owner it may
    /// not set, a device node it never makes): then the snapshot's files
    /// are not the layer, and the caller writes it as a blob instead.
    fn applied(&mut self) -> Result<Option<PathBuf>> {
        let ended = match self.builder.take() {
            Some(b) => b.finish().map(drop),
            None => Ok(()),
        };
        let stats = self.join_applier();
        let stats = match (ended, stats) {
            // The apply's error is the cause of the writer's (a closed pipe).
            (_, Some(Err(e))) => return Err(e),
            (Err(e), _) => return Err(e),
            (Ok(()), Some(Ok(s))) => s,
            (Ok(()), None) => return Err(StoreError::Invalid("layer applied twice".into())),
        };
        if !stats.warnings.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.tmp.join("fs")))
    }

    fn join_applier(&mut self) -> Option<Result<ApplyStats>> {
        let h = self.applier.take()?;
        Some(h.join().unwrap_or_else(|_| {
            Err(StoreError::Invalid(
                "the layer apply thread panicked".into(),
            ))
        }))
    }

    /// The apply's error when writing an entry failed: the real cause of a
    /// closed pipe (a full disk, a refused path), or None.
    pub fn apply_error(&mut self) -> Option<StoreError> {
        drop(self.builder.take());
        match self.join_applier() {
            Some(Err(e)) => Some(e),
            _ => None,
        }
    }

    /// Ends the layer and keeps it as the built snapshot on top of the
    /// layers `parents` (diff IDs, base first). Returns the layer to record
    /// ([`Snapshotter::adopt_built`]), or None when its files could not
    /// be written faithfully (see [`Self::applied`]): write it as a blob.
    pub fn finish(
        mut self,
        snapshots: &Snapshotter,
        parents: &[Digest],
        lease: Option<&Lease>,
    ) -> Result<Option<LayerInfo>> {
        let Some(dir) = self.applied()? else {
            return Ok(None);
        };
        let info = digest_dir(&dir, LayerOptions::default())?;
        let mut diff_ids = parents.to_vec();
        diff_ids.push(info.diff_id.clone());
        let chain = strata_oci::chain_ids(&diff_ids);
        let chain_id = chain.last().expect("one layer at least");
        snapshots
            .adopt_built(chain_id, &info, &dir, lease)
            .map(Some)
    }
}

impl Drop for EntriesLayer {
    fn drop(&mut self) {
        drop(self.builder.take());
        let _ = self.join_applier();
        let _ = fsutil::remove_any(&self.tmp);
    }
}
