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
//!
//! The keys computed on the way are handed to execution ([`Predicted`]),
//! which uses them instead of keying those steps a second time.

use strata_frontend::{Stage, StageScope};

use crate::cache::LayerRef;
use crate::error::StepError;
use crate::events::EventKind;
use crate::mounts::chain_of;
use crate::pass::Pass;
use crate::state::StageState;
use crate::step_env::StepEnv;
use crate::steps::{step_key, StepDef, StepKey};

/// A step's key computed ahead by FROM, with the key of the state it was
/// computed on (execution uses it only on that same state).
pub(crate) struct PredictedKey {
    pub(crate) parent: crate::cache::CacheKey,
    pub(crate) key: StepKey,
}

/// The keys FROM computed, by step index in the stage.
pub(crate) type Predicted = std::collections::BTreeMap<usize, PredictedKey>;

/// Prepares the snapshots of what the first executed step of `stage`
/// that needs a root filesystem will mount, reporting the unpack as
/// events of the FROM step `step`. Returns the step keys it computed.
pub(crate) fn unpack_base(
    pass: &Pass<'_>,
    env: &StepEnv<'_>,
    stage: &Stage,
    st: &StageState,
    scope: &StageScope,
    step: usize,
) -> Result<Predicted, StepError> {
    let mut predicted = Predicted::new();
    if st.layers.is_empty() {
        return Ok(predicted);
    }
    let session = env.session;
    let chain = chain_of(&st.layers)?;
    let snapshots = session.store.snapshotter();
    // Present already (the usual rebuild): nothing to decide.
    if snapshots.all_present(&chain) {
        return Ok(predicted);
    }
    let has_triggers = st
        .config
        .runtime()
        .on_build
        .as_ref()
        .is_some_and(|t| !t.is_empty());
    if has_triggers {
        return Ok(predicted);
    }
    let Some(layers) = rootfs_needed(pass, env, stage, st, scope, &mut predicted) else {
        return Ok(predicted);
    };
    let chain = chain_of(&layers)?;
    let report = |p: &strata_store::UnpackProgress| {
        let (layer, layer_size) = match &p.finished {
            Some((d, size)) => (Some(d.to_string()), Some(*size)),
            None => (None, None),
        };
        session.emit(EventKind::Unpack {
            step,
            layers_done: p.layers_done,
            layers_total: p.layers_total,
            bytes_done: p.bytes_done,
            bytes_total: p.bytes_total,
            layer,
            layer_size,
        });
    };
    snapshots
        .prepare_with_progress(&chain, Some(session.lease), Some(&report))
        .map_err(StepError::Unpack)?;
    Ok(predicted)
}

/// The layers the first executed step needing a root filesystem will
/// mount, found by keying the steps as execution does and looking them
/// up in the cache; `None` when no such step will run, or when it
/// cannot be told without side effects. The keys computed go to
/// `predicted`.
fn rootfs_needed(
    pass: &Pass<'_>,
    env: &StepEnv<'_>,
    stage: &Stage,
    st: &StageState,
    scope: &StageScope,
    predicted: &mut Predicted,
) -> Option<Vec<LayerRef>> {
    let mut st = st.clone();
    let mut scope = scope.clone();
    let mut missed = pass.cache.no_cache;
    for (i, step) in stage.steps.iter().enumerate() {
        let resolved = scope.resolve(step).ok()?;
        let def = StepDef::of(&resolved).ok()?;
        if missed {
            // Every step from the first miss on executes.
            if def.needs_rootfs() {
                return Some(st.layers);
            }
            continue;
        }
        if !def.keyed_without_side_effects(env.inputs) {
            return None;
        }
        let step_key = step_key(env, &st, &scope, &def).ok()?;
        let key = step_key.key.clone();
        predicted.insert(
            i,
            PredictedKey {
                parent: st.key.clone(),
                key: step_key,
            },
        );
        match env.session.cache_lookup(&key) {
            Some(rec) => {
                st = StageState {
                    config: rec.config,
                    layers: rec.layers,
                    key,
                    cmd_set: rec.cmd_set,
                };
            }
            None => {
                if def.needs_rootfs() {
                    return Some(st.layers);
                }
                missed = true;
            }
        }
    }
    None
}
