//! The services one build pass works with: the store, the executor, the
//! event sink, the image resolver, the lease that keeps what the build
//! made, and the cancellation flag. Everything else (the request, the plan,
//! a stage's state) is passed explicitly to the code that needs it.

use strata_runtime::Executor;
use strata_store::{CacheRecord, Lease, Store};

use crate::cache::{CacheKey, StepRecord};
use crate::events::{Event, EventKind, EventSink};
use crate::resolve::ImageResolver;
use crate::scheduler::Cancel;
use crate::tempdir::TempDir;

/// See the module docs.
pub(crate) struct Session<'a> {
    pub(crate) store: &'a Store,
    pub(crate) executor: &'a (dyn Executor + Sync),
    pub(crate) events: EventSink<'a>,
    pub(crate) images: &'a ImageResolver<'a>,
    /// Keeps every blob and image the build makes or uses until it ends.
    pub(crate) lease: &'a Lease,
    /// Set when a stage fails: the others stop before their next step.
    pub(crate) cancel: Cancel,
}

impl Session<'_> {
    /// Sends one event now.
    pub(crate) fn emit(&self, kind: EventKind) {
        (self.events)(Event::now(kind));
    }

    /// A temporary directory in the store (see [`TempDir`]).
    pub(crate) fn temp_dir(&self, prefix: &str) -> std::io::Result<TempDir> {
        TempDir::new(self.store, prefix)
    }

    /// The cache record of `key`, when every layer it names is still in
    /// the store (they are leased for the build).
    pub(crate) fn cache_lookup(&self, key: &CacheKey) -> Option<StepRecord> {
        let rec = self.store.meta().cache_get(key.as_str()).ok()??;
        let rec: StepRecord = serde_json::from_str(&rec.value).ok()?;
        for l in &rec.layers {
            let d = l.digest.clone();
            if !self.store.has_layer(&d) {
                return None;
            }
            let _ = self.lease.add_blob(&d);
        }
        Some(rec)
    }

    /// Records a cache entry (the layers it names are kept by GC with it).
    /// A failure only loses the entry: it is logged, never fatal.
    pub(crate) fn cache_put(&self, key: &CacheKey, rec: &StepRecord) {
        let record = CacheRecord {
            value: serde_json::to_string(rec).unwrap_or_default(),
            blobs: rec.layers.iter().map(|l| l.digest.clone()).collect(),
            images: Vec::new(),
        };
        if let Err(e) = self.store.meta().cache_put(key.as_str(), &record) {
            tracing::warn!("could not record build cache entry: {e}");
        }
    }
}
