//! Where a step's cache key is made: `H(parent key, definition)`, the
//! definition being the resolved instruction, the state it runs in
//! (workdir, user, shell, whether CMD was set) and its inputs' digests
//! (RUN's environment, build args and bind mounts; COPY/ADD's sources).
//! Execution and FROM's unpack prediction both key through
//! [`step_key`], so they cannot disagree. The definition is also what is
//! recorded to explain a later miss (see `whymiss.rs`).

use serde_json::json;
use strata_frontend::StageScope;

use super::copy_sources::Prepared;
use super::def::StepDef;
use crate::cache::CacheKey;
use crate::config::ConfigEditor as _;
use crate::error::StepError;
use crate::state::StageState;
use crate::step_env::StepEnv;
use crate::whymiss::{Inputs, Trace};

/// What keys a step: its cache key, the definition hashed into it, a file
/// step's fetched sources (handed to execution), and what explains a later
/// miss (kept, never hashed).
pub(crate) struct StepKey {
    pub(crate) key: CacheKey,
    /// `COPY --link`: the key of its layer alone, without the parent (the
    /// definition only), so the layer is reused under any parent.
    pub(crate) link_key: Option<CacheKey>,
    pub(crate) prepared: Option<Prepared>,
    pub(crate) trace: Trace,
    pub(crate) inputs: Inputs,
}

/// The cache key of `def` on the state `st` (`scope` has resolved it):
/// see the module docs.
pub(crate) fn step_key(
    env: &StepEnv<'_>,
    st: &StageState,
    scope: &StageScope,
    def: &StepDef<'_>,
) -> Result<StepKey, StepError> {
    let mut json = json!({
        "instr": serde_json::to_value(def.resolved()).unwrap_or_default(),
        "workdir": st.config.workdir(),
        "user": st.config.runtime().user,
        "shell": st.config.shell(),
        "cmd_set": st.cmd_set,
    });
    // What keyed the step, kept to explain a later miss (not hashed).
    let mut trace = Trace {
        args: env.inputs.recorded_build_args(scope).into_iter().collect(),
        ..Default::default()
    };
    let mut inputs = Inputs::new();
    let mut prepared = None;
    match def {
        StepDef::Run(r) => {
            super::run::key_inputs(r, env, st, scope, &mut json, &mut trace, &mut inputs)?
        }
        StepDef::Files(f) => {
            let mut p = super::copy_sources::prepare(env, f)?;
            json["input"] = json!(p.digest);
            trace.input = Some(p.label.clone());
            if let Some(files) = p.files.take() {
                inputs.insert("input".into(), files);
            }
            prepared = Some(p);
        }
        StepDef::Metadata(_) => {}
    }
    let key = CacheKey::derive(Some(&st.key), &json);
    let link_key = match def {
        StepDef::Files(f) if f.link => Some(CacheKey::derive(None, &json!({ "link": json }))),
        _ => None,
    };
    trace.def = json;
    Ok(StepKey {
        key,
        link_key,
        prepared,
        trace,
        inputs,
    })
}
