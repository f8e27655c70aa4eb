//! One platform's pass over the plan: what every stage of it shares (the
//! session, the build's inputs, the plan, the cache policy and counters).

use std::collections::BTreeMap;

use strata_frontend::Plan;
use strata_oci::Platform;

use crate::error::{BuildError, StepError};
use crate::events::EventKind;
use crate::inputs::BuildInputs;
use crate::session::Session;
use crate::solve::StepCache;
use crate::step_env::StepCtx;

/// One platform's pass over the plan: what every stage of it shares.
pub(crate) struct Pass<'a> {
    pub(crate) session: &'a Session<'a>,
    pub(crate) inputs: &'a BuildInputs<'a>,
    pub(crate) plan: &'a Plan,
    /// The platform this pass builds for (`TARGETPLATFORM`); a stage's
    /// `FROM --platform` overrides it for that stage.
    pub(crate) platform: Platform,
    /// Several target platforms: progress and errors name each stage's.
    pub(crate) multi_platform: bool,
    /// The progress number of each stage's FROM step.
    pub(crate) step_numbers: BTreeMap<usize, usize>,
    pub(crate) cache: StepCache,
    /// The build's identity in the step history (see `miss_record.rs`).
    pub(crate) why_scope: String,
}

impl Pass<'_> {
    /// The failure of step `s`: reported as an event, returned as a
    /// [`BuildError::Step`].
    pub(crate) fn step_error(&self, s: &StepCtx<'_>, e: StepError) -> BuildError {
        self.session.emit(EventKind::Error {
            step: Some(s.step_no),
            message: crate::error::chain(&e),
        });
        BuildError::Step {
            location: s.location.clone(),
            stage: s.label.clone(),
            instruction: s.source.trim().to_string(),
            source: Box::new(e),
        }
    }
}
