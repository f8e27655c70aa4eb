//! The steps of a stage, each a typed definition ([`StepDef`]) with two
//! separate operations, as BuildKit's `Op` with its `CacheMap` apart from
//! its `Exec`:
//!
//! - its cache key: [`key::step_key`] (the one keying function: the common
//!   part there, each family's inputs in its own file);
//! - its execution: [`execute`], which dispatches to one function per
//!   family: [`run`] (RUN), [`copy`] (COPY and ADD, sources in
//!   [`copy_sources`]), [`metadata`] (ENV, LABEL, USER, CMD... and WORKDIR,
//!   whose directory is made by [`workdir`]).
//!
//! Whether a step executes at all (cache hit or miss) is decided above, in
//! `solve.rs`.

use std::collections::BTreeMap;

use strata_frontend::{Plan, Resolved, StageScope};
use strata_oci::Platform;

use crate::error::StepError;
use crate::inputs::BuildInputs;
use crate::session::Session;
use crate::stage::StageState;

pub(crate) mod copy;
pub(crate) mod copy_sources;
pub(crate) mod key;
pub(crate) mod metadata;
pub(crate) mod run;
pub(crate) mod workdir;

pub(crate) use copy::{FileKind, FileStep};
pub(crate) use key::{step_key, StepKey};
pub(crate) use run::RunStep;

/// What a step reads besides its stage's state: the build's services and
/// inputs, the plan, the pass's platform and the stages already built.
pub(crate) struct StepEnv<'a> {
    pub(crate) session: &'a Session<'a>,
    pub(crate) inputs: &'a BuildInputs<'a>,
    pub(crate) plan: &'a Plan,
    /// The pass's target platform (images named by `--from` are resolved
    /// for it).
    pub(crate) platform: &'a Platform,
    /// The states of the stages this one depends on, by index.
    pub(crate) deps: &'a BTreeMap<usize, StageState>,
}

impl StepEnv<'_> {
    /// The final state of the stage `i` this stage depends on.
    pub(crate) fn dep(&self, i: usize) -> Result<&StageState, StepError> {
        self.deps.get(&i).ok_or(StepError::StageNotBuilt(i))
    }
}

/// One step's place, for progress events and error messages.
pub(crate) struct StepCtx<'a> {
    pub(crate) step_no: usize,
    pub(crate) label: String,
    pub(crate) name: String,
    pub(crate) location: String,
    /// The instruction as written.
    pub(crate) source: &'a str,
}

/// A resolved instruction, typed by family.
pub(crate) enum StepDef<'r> {
    /// RUN.
    Run(RunStep<'r>),
    /// COPY or ADD.
    Files(FileStep<'r>),
    /// Every other instruction: it edits the image config (WORKDIR may
    /// also add a layer).
    Metadata(&'r Resolved),
}

impl<'r> StepDef<'r> {
    /// The typed definition of `resolved`.
    pub(crate) fn of(resolved: &'r Resolved) -> Result<StepDef<'r>, StepError> {
        if let Some(run) = RunStep::of(resolved) {
            return Ok(StepDef::Run(run));
        }
        if let Some(files) = FileStep::of(resolved) {
            return Ok(StepDef::Files(files));
        }
        match resolved {
            Resolved::From { .. } => Err(StepError::FromInStage),
            r => Ok(StepDef::Metadata(r)),
        }
    }

    /// The resolved instruction (serialized into the key).
    pub(crate) fn resolved(&self) -> &'r Resolved {
        match self {
            StepDef::Run(r) => r.resolved,
            StepDef::Files(f) => f.resolved,
            StepDef::Metadata(r) => r,
        }
    }

    /// Does executing the step mount the stage's root filesystem? RUN and
    /// WORKDIR always; COPY/ADD unless `--link` without a `--chown` by
    /// name (see [`copy::execute`]).
    pub(crate) fn needs_rootfs(&self) -> bool {
        match self {
            StepDef::Run(_) => true,
            StepDef::Files(f) => !f.link || f.needs_passwd(),
            StepDef::Metadata(r) => matches!(r, Resolved::Workdir(_)),
        }
    }

    /// Can the key be computed twice without fetching anything (a
    /// download, a clone, a pull) or reporting events?
    pub(crate) fn keyed_without_side_effects(&self, inputs: &BuildInputs<'_>) -> bool {
        let unresolved_image = |from: Option<&strata_frontend::FromRef>| {
            matches!(from, Some(strata_frontend::FromRef::Image(name))
                if inputs.named(name).is_none())
        };
        match self {
            StepDef::Run(r) => !r.mounts.iter().any(|m| unresolved_image(m.from.as_ref())),
            StepDef::Files(f) => !f.fetches_remote() && !unresolved_image(f.from),
            StepDef::Metadata(_) => true,
        }
    }
}

/// What executing a step gave.
pub(crate) struct Executed {
    /// The stage's state after the step.
    pub(crate) next: StageState,
    /// A `COPY --link` whose layer came from the cache (counted as cached).
    pub(crate) link_cached: bool,
}

/// Executes `def` on `st` (a cache miss): one function per family. `key`
/// is what [`step_key`] gave for it (the next state's key; a file step's
/// fetched sources).
pub(crate) fn execute(
    env: &StepEnv<'_>,
    st: &StageState,
    scope: &StageScope,
    def: &StepDef<'_>,
    key: &StepKey,
    ctx: &StepCtx<'_>,
) -> Result<Executed, StepError> {
    let mut next = st.clone();
    next.key = key.key.clone();
    let created = env.inputs.created();
    let mut link_cached = false;
    match def {
        StepDef::Run(r) => {
            let layer = run::execute(env, st, scope, r, ctx, &mut next.config, &created)?;
            next.layers.push(layer);
        }
        StepDef::Files(f) => {
            let (layer, cached) = copy::execute(env, st, f, key)?;
            link_cached = cached;
            next.config.push_history(
                &created,
                format!("{} # buildkit", ctx.source.trim()),
                Some(layer.diff_id.clone()),
            );
            next.layers.push(layer);
        }
        StepDef::Metadata(r) => metadata::execute(env, st, r, ctx, &mut next, &created)?,
    }
    Ok(Executed { next, link_cached })
}
