//! Recording what keyed each step and finding the previous record of a
//! step on a miss (the store side of [`crate::whymiss`]). Everything here
//! is best effort: a failure to read or write these rows never fails or
//! changes a build, it only loses an explanation.

use std::os::unix::ffi::OsStrExt;

use sha2::{Digest as _, Sha256};
use strata_store::{StepInfo, Store};

use crate::cache::CacheKey;
use crate::request::BuildRequest;
use crate::steps::StepKey;
use crate::whymiss::{explain_parent_change, explain_same_parent, one_line, Above, Inputs, Trace};

/// Which step this is, across builds.
pub(crate) struct StepWhy<'a> {
    /// The build's identity (context directory and Dockerfile).
    pub scope: &'a str,
    /// The step's identity in it: stage, instruction text, occurrence.
    pub ident: String,
    /// Its place: stage and position (to tell an edited instruction).
    pub position: String,
    /// The instruction as written (trimmed).
    pub instruction: String,
    pub above: &'a Above,
}

/// The identity of a build for the step history: a digest of the
/// context directory and the Dockerfile's path.
pub(crate) fn why_scope(req: &BuildRequest) -> String {
    let canon = |p: &std::path::Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let ctx = canon(&req.context);
    let df = match &req.dockerfile {
        Some(p) => canon(p),
        None => crate::request::default_dockerfile(&ctx),
    };
    let mut h = Sha256::new();
    h.update(ctx.as_os_str().as_bytes());
    h.update(b"\0");
    h.update(df.as_os_str().as_bytes());
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// Records a stage base's trace under its key (once).
pub(crate) fn note_base(store: &Store, key: &CacheKey, instruction: &str, trace: &Trace) {
    let meta = store.meta();
    if meta.step_exists(key.as_str()).unwrap_or(true) {
        return;
    }
    let info = StepInfo {
        key: key.0.clone(),
        parent: None,
        instruction: instruction.to_string(),
        def: serde_json::to_string(trace).unwrap_or_default(),
    };
    if let Err(e) = meta.step_put(&info, None) {
        tracing::debug!("could not record the base of a stage: {e}");
    }
}

/// After a step: its row (on a miss, or on a hit of an entry recorded
/// without one) and its key in the history.
pub(crate) fn note_step(
    store: &Store,
    why: &StepWhy<'_>,
    parent: &CacheKey,
    step: &StepKey,
    executed: bool,
) {
    let (key, trace, inputs) = (&step.key, &step.trace, &step.inputs);
    let meta = store.meta();
    if executed || !meta.step_exists(key.as_str()).unwrap_or(true) {
        let info = StepInfo {
            key: key.0.clone(),
            parent: Some(parent.0.clone()),
            instruction: why.instruction.clone(),
            def: serde_json::to_string(trace).unwrap_or_default(),
        };
        let files = (!inputs.is_empty())
            .then(|| serde_json::to_string(inputs).ok())
            .flatten();
        if let Err(e) = meta.step_put(&info, files.as_deref()) {
            tracing::debug!("could not record a build step: {e}");
        }
    }
    let names = [why.ident.as_str(), why.position.as_str()];
    if let Err(e) = meta.step_set_last_keys(why.scope, &names, key.as_str()) {
        tracing::debug!("could not record the step history: {e}");
    }
}

/// Why the step keyed `key` (below `parent`) missed, when a record of
/// the same step exists: the last key of this step of this build, else
/// the latest record with the same parent and instruction. `None` for
/// a step never built before.
pub(crate) fn miss_reason(
    store: &Store,
    why: &StepWhy<'_>,
    parent: &CacheKey,
    step: &StepKey,
) -> Option<String> {
    let (trace, inputs) = (&step.trace, &step.inputs);
    let meta = store.meta();
    let last = meta
        .step_last_key(why.scope, &why.ident)
        .ok()
        .flatten()
        .and_then(|k| meta.step_get(&k).ok().flatten());
    let prev = match last {
        Some(p) if p.parent.as_deref() != Some(parent.as_str()) => {
            let old_parent = p
                .parent
                .as_deref()
                .and_then(|k| meta.step_get(k).ok().flatten())
                .map(|row| {
                    let trace = serde_json::from_str::<Trace>(&row.def).unwrap_or_default();
                    (row.instruction, trace)
                });
            let old_parent = old_parent.as_ref().map(|(i, t)| (i.as_str(), t));
            return Some(explain_parent_change(why.above, old_parent));
        }
        Some(p) => p,
        None => match meta.step_find(parent.as_str(), &why.instruction, "") {
            Ok(Some(p)) => p,
            // Another instruction at this place last time: edited.
            _ => {
                let k = meta.step_last_key(why.scope, &why.position).ok()??;
                let p = meta.step_get(&k).ok()??;
                return (p.instruction != why.instruction).then(|| {
                    format!(
                        "the instruction changed (was: {})",
                        one_line(&p.instruction)
                    )
                });
            }
        },
    };
    let old: Trace = serde_json::from_str(&prev.def).ok()?;
    let old_files = || {
        meta.step_files(&prev.key)
            .ok()
            .flatten()
            .and_then(|s| serde_json::from_str::<Inputs>(&s).ok())
    };
    Some(explain_same_parent(&old, trace, old_files, inputs))
}
