//! Unpacking a stage's base on its FROM step. Snapshots are prepared
//! lazily by the first step that mounts a root filesystem; on a freshly
//! loaded big base that put seconds of unpacking on a WORKDIR or RUN while
//! FROM showed 0.0s. So FROM prepares the chain itself, with progress
//! events, when a step of the stage will mount it: it walks the stage's
//! steps through the cache exactly as execution will (same keys), and
//! stops at the first miss. Nothing is unpacked when every step that
//! needs a root filesystem is cached (a no-op rebuild), when none does
//! (metadata-only stages, `COPY --link`), or when that cannot be told
//! without side effects (ONBUILD triggers, ADD of URLs or git, `--from`
//! an image not resolved yet): those stay lazy, as before.

use std::collections::BTreeMap;

use strata_frontend::{FromRef, Resolved, Stage, StageScope};

use crate::build::Builder;
use crate::cache::LayerRef;
use crate::events::{Event, EventKind};
use crate::mounts::chain_of;
use crate::sources::is_remote;
use crate::stage::StageState;
use crate::stage_files::FileStep;

/// Does executing `r` mount the stage's root filesystem? RUN and WORKDIR
/// always; COPY/ADD unless `--link` without a `--chown` by name (see
/// `Builder::copy_step`).
pub(crate) fn needs_rootfs(r: &Resolved) -> bool {
    match r {
        Resolved::Run { .. } | Resolved::Workdir(_) => true,
        _ => match FileStep::of(r) {
            Some(f) => {
                let needs_passwd = f
                    .chown
                    .is_some_and(|c| c.split(':').any(|part| part.parse::<u64>().is_err()));
                !f.link || needs_passwd
            }
            None => false,
        },
    }
}

impl Builder<'_> {
    /// Prepares the snapshots of what the first executed step of `stage`
    /// that needs a root filesystem will mount, reporting the unpack as
    /// events of the FROM step `step`.
    pub(crate) fn unpack_base(
        &self,
        stage: &Stage,
        st: &StageState,
        scope: &StageScope,
        deps: &BTreeMap<usize, StageState>,
        step: usize,
    ) -> Result<(), String> {
        if st.layers.is_empty() {
            return Ok(());
        }
        let chain = chain_of(&st.layers).map_err(|e| e.to_string())?;
        let snapshots = self.store.snapshotter();
        // Present already (the usual rebuild): nothing to decide.
        if snapshots.all_present(&chain) {
            return Ok(());
        }
        let has_triggers = st
            .config
            .runtime()
            .on_build
            .as_ref()
            .is_some_and(|t| !t.is_empty());
        if has_triggers {
            return Ok(());
        }
        let Some(layers) = self.rootfs_needed(stage, st, scope, deps) else {
            return Ok(());
        };
        let chain = chain_of(&layers).map_err(|e| e.to_string())?;
        let report = |p: &strata_store::UnpackProgress| {
            let (layer, layer_size) = match &p.finished {
                Some((d, size)) => (Some(d.to_string()), Some(*size)),
                None => (None, None),
            };
            (self.events)(Event::now(EventKind::Unpack {
                step,
                layers_done: p.layers_done,
                layers_total: p.layers_total,
                bytes_done: p.bytes_done,
                bytes_total: p.bytes_total,
                layer,
                layer_size,
            }));
        };
        snapshots
            .prepare_with_progress(&chain, Some(self.lease), Some(&report))
            .map_err(|e| format!("unpacking the base image's layers: {e}"))?;
        Ok(())
    }

    /// The layers the first executed step needing a root filesystem will
    /// mount, found by keying the steps as execution does and looking them
    /// up in the cache; `None` when no such step will run, or when it
    /// cannot be told without side effects.
    fn rootfs_needed(
        &self,
        stage: &Stage,
        st: &StageState,
        scope: &StageScope,
        deps: &BTreeMap<usize, StageState>,
    ) -> Option<Vec<LayerRef>> {
        let mut st = st.clone();
        let mut scope = scope.clone();
        let mut missed = self.no_cache;
        for step in &stage.steps {
            let resolved = scope.resolve(step).ok()?;
            if missed {
                // Every step from the first miss on executes.
                if needs_rootfs(&resolved) {
                    return Some(st.layers);
                }
                continue;
            }
            if !self.keyed_without_side_effects(&resolved) {
                return None;
            }
            let key = self.step_key(&st, &scope, &resolved, deps).ok()?.key;
            match self.cache_lookup(&key) {
                Some(rec) => {
                    st = StageState {
                        config: rec.config,
                        layers: rec.layers,
                        key,
                        cmd_set: rec.cmd_set,
                    };
                }
                None => {
                    if needs_rootfs(&resolved) {
                        return Some(st.layers);
                    }
                    missed = true;
                }
            }
        }
        None
    }

    /// Can the key of `r` be computed twice without fetching anything (a
    /// download, a clone, a pull) or reporting events?
    fn keyed_without_side_effects(&self, r: &Resolved) -> bool {
        let unresolved_image = |from: Option<&FromRef>| {
            matches!(from, Some(FromRef::Image(name))
                if !self.named.contains_key(&name.to_ascii_lowercase()))
        };
        match r {
            Resolved::Run { mounts, .. } => {
                !mounts.iter().any(|m| unresolved_image(m.from.as_ref()))
            }
            _ => match FileStep::of(r) {
                Some(f) => {
                    let fetches = f.instruction == "ADD" && f.srcs.iter().any(|s| is_remote(s));
                    !fetches && !unresolved_image(f.from)
                }
                None => true,
            },
        }
    }
}
