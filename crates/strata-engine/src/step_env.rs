//! What a step sees besides its stage's state ([`StepEnv`]) and where it
//! is in the build ([`StepCtx`]).

use std::collections::BTreeMap;

use strata_frontend::Plan;
use strata_oci::Platform;

use crate::inputs::BuildInputs;
use crate::session::Session;
use crate::state::StageState;

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
    pub(crate) fn dep(&self, i: usize) -> Result<&StageState, NotBuilt> {
        self.deps.get(&i).ok_or(NotBuilt(i))
    }
}

/// A stage a step reads from produced no state (a scheduler bug: stages
/// run after those they depend on).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("stage {0} was not built")]
pub struct NotBuilt(pub usize);

/// One step's place, for progress events and error messages.
pub(crate) struct StepCtx<'a> {
    pub(crate) step_no: usize,
    pub(crate) label: String,
    pub(crate) name: String,
    pub(crate) location: String,
    /// The instruction as written.
    pub(crate) source: &'a str,
    /// Whether the build mounts the state after this step later (see
    /// `stage.rs`, `mounted_later`): a COPY then applies its layer into
    /// its snapshot at once, else it writes a blob, unpacked if ever run.
    pub(crate) mounted_later: bool,
}
