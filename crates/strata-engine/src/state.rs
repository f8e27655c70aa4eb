//! A stage's state between steps: its image config, layers and cache key.

use strata_frontend::{Command, Stage};

use crate::cache::{CacheKey, LayerRef};
use crate::config::{CommandForm, ImageConfig};

/// A stage's state between steps.
#[derive(Debug, Clone)]
pub(crate) struct StageState {
    pub(crate) config: ImageConfig,
    pub(crate) layers: Vec<LayerRef>,
    pub(crate) key: CacheKey,
    /// Whether a CMD was set in this stage (ENTRYPOINT's reset rule).
    pub(crate) cmd_set: bool,
}

/// The display name of a stage: its name, else `stage-N`.
pub(crate) fn stage_label(stage: &Stage) -> String {
    stage
        .name
        .clone()
        .unwrap_or_else(|| format!("stage-{}", stage.index))
}

/// A frontend command as the config's command form.
pub(crate) fn form(c: &Command) -> CommandForm {
    match c {
        Command::Shell(s) => CommandForm::Shell(s.clone()),
        Command::Exec(v) => CommandForm::Exec(v.clone()),
    }
}
