//! [`ApplyingSnapshot`]: a layer's tar applied into a new snapshot's temp
//! dir by a thread while it streams in (a bounded pipe, flat memory), then
//! committed under its chain ID or dropped. Shared by COPY's entries
//! ([`super::built`]) and `load`, which unpacks each layer while it reads
//! the archive instead of reading the stored blob again afterwards.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::thread::JoinHandle;

use strata_oci::Digest;

use super::Snapshotter;
use crate::diff::{apply_layer_unhashed, ApplyMode};
use crate::error::{IoCtx, Result, StoreError};
use crate::fsutil;
use crate::meta::Lease;
use crate::pipe::{self, PipeWriter};

/// A layer being applied into `ROOT/tmp/snap-*/fs` (see the module docs).
/// Dropped uncommitted, it leaves nothing behind.
pub(crate) struct ApplyingSnapshot {
    writer: Option<PipeWriter>,
    /// The apply thread; it gives the apply's warnings.
    applier: Option<JoinHandle<Result<Vec<String>>>>,
    /// `ROOT/tmp/snap-*`, locked while it exists (GC's temp sweep skips a
    /// locked dir).
    tmp: PathBuf,
    _guard: File,
}

impl Snapshotter {
    /// Starts applying a layer's tar (plain or compressed) into a new
    /// snapshot temp dir. The stream is not hashed: the caller knows its
    /// digest otherwise (see [`apply_layer_unhashed`]).
    pub(crate) fn applying(&self) -> Result<ApplyingSnapshot> {
        let (tmp, guard) = self.new_temp()?;
        let dest = tmp.join("fs");
        // A failed apply stops reading and drops the pipe, so the writer
        // stops at its next write; `finish` then gives the cause.
        let spawned = pipe::spawn("layer-apply", move |mut r| {
            apply_layer_unhashed(&mut r, &dest, ApplyMode::OverlayReady)
        })
        .what(|| "start the layer apply thread".to_string());
        let (writer, applier) = match spawned {
            Ok(s) => s,
            Err(e) => {
                let _ = fsutil::remove_any(&tmp);
                return Err(e);
            }
        };
        Ok(ApplyingSnapshot {
            writer: Some(writer),
            applier: Some(applier),
            tmp,
            _guard: guard,
        })
    }
}

impl ApplyingSnapshot {
    /// The write end of the tar stream, for a writer that owns it (a
    /// layer builder); [`feed`](Self::feed) is then a no-op.
    pub(crate) fn take_writer(&mut self) -> Option<PipeWriter> {
        self.writer.take()
    }

    /// Passes on the next bytes of the tar. An apply that stopped (a bad
    /// stream, a full disk) ignores them: [`finish`](Self::finish) says why.
    pub(crate) fn feed(&mut self, chunk: &[u8]) {
        if let Some(w) = self.writer.as_mut() {
            if w.write_all(chunk).is_err() {
                self.writer = None;
            }
        }
    }

    /// Ends the stream and waits for the apply: its warnings (attributes
    /// not restored, entries skipped), or why it failed (None when already
    /// finished).
    pub(crate) fn finish(&mut self) -> Option<Result<Vec<String>>> {
        if let Some(mut w) = self.writer.take() {
            let _ = w.close();
        }
        let h = self.applier.take()?;
        Some(h.join().unwrap_or_else(|_| {
            Err(StoreError::Invalid(
                "the layer apply thread panicked".into(),
            ))
        }))
    }

    /// The applied files.
    pub(crate) fn fs(&self) -> PathBuf {
        self.tmp.join("fs")
    }

    /// Commits the (finished) applied layer as snapshot `chain_id`, added
    /// to `lease` first (so GC keeps it from the moment it exists). A
    /// snapshot of that chain already there is kept (the same layer), and
    /// this one dropped.
    pub(crate) fn commit(
        self,
        snapshots: &Snapshotter,
        chain_id: &Digest,
        lease: Option<&Lease>,
    ) -> Result<()> {
        if let Some(l) = lease {
            l.add_snapshot(chain_id)?;
        }
        snapshots.commit_temp(&self.tmp, chain_id)
    }
}

impl Drop for ApplyingSnapshot {
    fn drop(&mut self) {
        let _ = self.finish();
        if self.tmp.exists() {
            let _ = fsutil::remove_any(&self.tmp);
        }
    }
}
