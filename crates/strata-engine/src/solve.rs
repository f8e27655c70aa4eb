//! One step through the cache: resolve it, key it (`steps/key.rs`), look
//! the key up (the local cache, then `--cache-from` images); on a miss say
//! why, execute it (`steps/`) and record the result and what keyed it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use strata_frontend::{StageScope, Step};

use crate::cache::{CacheKey, StepRecord};
use crate::error::StepError;
use crate::events::EventKind;
use crate::images::BaseImage;
use crate::miss_record::StepWhy;
use crate::state::StageState;
use crate::step_env::{StepCtx, StepEnv};
use crate::steps::{step_key, StepDef, StepKey};

/// How a pass uses the cache, and what it counted.
#[derive(Default)]
pub(crate) struct StepCache {
    /// `--no-cache`: every step executes.
    pub(crate) no_cache: bool,
    /// `--cache-from` local images (see `image_cache.rs`).
    pub(crate) cache_from: Vec<BaseImage>,
    pub(crate) executed: AtomicUsize,
    pub(crate) cached: AtomicUsize,
    /// Cache keys of each stage's steps, in order (for `--cache-to`).
    pub(crate) stage_keys: Mutex<BTreeMap<usize, Vec<CacheKey>>>,
}

impl StepCache {
    /// Notes a step's key for `--cache-to` (which keys a build used).
    pub(crate) fn record_key(&self, stage: usize, key: &CacheKey) {
        let mut keys = self.stage_keys.lock().unwrap_or_else(|p| p.into_inner());
        keys.entry(stage).or_default().push(key.clone());
    }
}

/// How a step went.
pub(crate) struct Solved {
    /// Taken from the cache (no execution).
    pub(crate) cached: bool,
    /// On a miss, why (when an earlier record of the step says so).
    pub(crate) miss_reason: Option<String>,
}

/// One step to solve: the instruction, its place, its identity in the
/// step history, and its key when FROM computed it already (on this same
/// state).
pub(crate) struct StepJob<'a> {
    pub(crate) step: &'a Step,
    pub(crate) ctx: &'a StepCtx<'a>,
    pub(crate) why: StepWhy<'a>,
    pub(crate) predicted: Option<StepKey>,
}

/// Resolves, keys and (on a miss) executes one step on `st`.
pub(crate) fn solve_step(
    env: &StepEnv<'_>,
    cache: &StepCache,
    st: &mut StageState,
    scope: &mut StageScope,
    job: StepJob<'_>,
) -> Result<Solved, StepError> {
    let StepJob {
        step,
        ctx,
        why,
        predicted,
    } = job;
    let why = &why;
    let resolved = scope.resolve(step)?;
    let def = StepDef::of(&resolved)?;
    let key = match predicted {
        Some(k) => k,
        None => step_key(env, st, scope, &def)?,
    };
    let store = env.session.store;
    if !cache.no_cache {
        if let Some(next) = cache_hit(env, cache, st, scope, &def, &key) {
            crate::miss_record::note_step(store, why, &st.key, &key, false);
            *st = next;
            cache.cached.fetch_add(1, Ordering::Relaxed);
            return Ok(Solved {
                cached: true,
                miss_reason: None,
            });
        }
    }
    let miss_reason = if cache.no_cache {
        None
    } else {
        let reason = crate::miss_record::miss_reason(store, why, &st.key, &key);
        env.session.emit(EventKind::CacheMiss {
            step: ctx.step_no,
            reason: reason.clone(),
        });
        reason
    };
    let done = crate::steps::execute(env, st, scope, &def, &key, ctx)?;
    env.session.cache_put(&key.key, &record(&done.next));
    crate::miss_record::note_step(store, why, &st.key, &key, true);
    let counter = if done.link_cached {
        &cache.cached
    } else {
        &cache.executed
    };
    counter.fetch_add(1, Ordering::Relaxed);
    *st = done.next;
    Ok(Solved {
        cached: done.link_cached,
        miss_reason,
    })
}

/// The state after the step from the local cache, else from a
/// `--cache-from` image (then recorded locally).
fn cache_hit(
    env: &StepEnv<'_>,
    cache: &StepCache,
    st: &StageState,
    scope: &StageScope,
    def: &StepDef<'_>,
    key: &StepKey,
) -> Option<StageState> {
    if let Some(rec) = env.session.cache_lookup(&key.key) {
        return Some(StageState {
            config: rec.config,
            layers: rec.layers,
            key: key.key.clone(),
            cmd_set: rec.cmd_set,
        });
    }
    let StepDef::Run(run) = def else {
        return None;
    };
    if cache.cache_from.is_empty() {
        return None;
    }
    let args = env.inputs.recorded_build_args(scope);
    let next = crate::image_cache::hit(env.session, &cache.cache_from, st, run, &args, &key.key)?;
    env.session.cache_put(&key.key, &record(&next));
    Some(next)
}

/// The cache record of a state.
fn record(st: &StageState) -> StepRecord {
    StepRecord {
        config: st.config.clone(),
        layers: st.layers.clone(),
        cmd_set: st.cmd_set,
    }
}
