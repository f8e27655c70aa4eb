//! The steps of a stage, each a typed definition ([`StepDef`], in
//! `def.rs`: RUN, COPY/ADD told apart by a `FileKind`, or a metadata
//! instruction) with two separate operations, as BuildKit's `Op` with its
//! `CacheMap` apart from its `Exec`:
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

use strata_frontend::StageScope;

use crate::config::ConfigEditor as _;
use crate::error::StepError;
use crate::state::StageState;
use crate::step_env::{StepCtx, StepEnv};

pub(crate) mod copy;
pub(crate) mod copy_sources;
pub(crate) mod def;
pub(crate) mod key;
pub(crate) mod metadata;
pub(crate) mod run;
pub(crate) mod workdir;

pub(crate) use def::StepDef;
pub(crate) use key::{step_key, StepKey};

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
            let prepared = key
                .prepared
                .as_ref()
                .expect("a file step's key prepares it");
            let (layer, cached) = copy::execute(
                env,
                st,
                f,
                prepared,
                key.link_key.as_ref(),
                ctx.mounted_later,
            )?;
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
