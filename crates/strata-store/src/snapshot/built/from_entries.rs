//! [`EntriesLayer`]: a layer written entry by entry (COPY, ADD) straight
//! into a new built snapshot, so that it too is stored once: the entries'
//! tar is applied by a second thread as it is made (a bounded pipe, flat
//! memory), never written; the diff ID is then hashed from the snapshot's
//! files ([`digest_dir`]), as a RUN's is from its upper dir, so that the
//! tar made again from the snapshot later is the one the image names.

use std::path::PathBuf;

use strata_oci::Digest;

use super::super::applying::ApplyingSnapshot;
use super::super::Snapshotter;
use crate::diff::{digest_dir, LayerBuilder, LayerInfo, LayerOptions};
use crate::error::{Result, StoreError};
use crate::meta::Lease;

/// A layer being written into a snapshot (see the module docs). Dropped
/// without [`finish`](Self::finish), it leaves nothing behind.
pub struct EntriesLayer {
    builder: Option<LayerBuilder>,
    apply: ApplyingSnapshot,
}

impl Snapshotter {
    /// Starts a layer whose entries are applied into a new snapshot as
    /// they are written (`opts`: only its mtime clamp counts; the layer
    /// has no blob to compress).
    pub fn entries_layer(&self, opts: LayerOptions) -> Result<EntriesLayer> {
        let mut apply = self.applying()?;
        let writer = apply.take_writer().expect("a new apply has its writer");
        let builder = LayerBuilder::uncompressed(Box::new(writer), opts);
        Ok(EntriesLayer {
            builder: Some(builder),
            apply,
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
        let warnings = match (ended, self.apply.finish()) {
            // The apply's error is the cause of the writer's (a closed pipe).
            (_, Some(Err(e))) => return Err(e),
            (Err(e), _) => return Err(e),
            (Ok(()), Some(Ok(s))) => s,
            (Ok(()), None) => return Err(StoreError::Invalid("layer applied twice".into())),
        };
        if !warnings.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.apply.fs()))
    }

    /// The apply's error when writing an entry failed: the real cause of a
    /// closed pipe (a full disk, a refused path), or None.
    pub fn apply_error(&mut self) -> Option<StoreError> {
        drop(self.builder.take());
        match self.apply.finish() {
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
