//! `build --cache-from NAME` where NAME is a local image: the classic
//! builder's meaning. A step reuses that image's layer when
//!
//! - the stage so far is a prefix of the image: the same layers (diff IDs,
//!   in order) and the same history (`created_by` and `empty_layer` of
//!   every entry, times ignored), so the whole parent chain matches, base
//!   image included;
//! - the image's next history entry is the one this step would write: the
//!   same `created_by` (for RUN: the command line with its `|N K=V` build
//!   args prefix, after the stage's SHELL) and it has a layer.
//!
//! Only RUN steps are taken this way, and only those whose result the
//! history line describes: a RUN with a bind mount (whose content the line
//! does not show) or a `#!` heredoc script runs. COPY and ADD always run
//! (their history names sources, not content); when the layer they produce
//! is the image's next layer, the chain stays aligned and the RUN steps
//! after them can still be reused. Reused steps are recorded in the local
//! cache, so the next build hits without `--cache-from`.

use strata_frontend::MountKind;

use crate::cache::CacheKey;
use crate::config::ConfigEditor as _;
use crate::images::BaseImage;
use crate::session::Session;
use crate::state::StageState;
use crate::steps::def::RunStep;
use crate::steps::run::{run_argv, run_created_by, shebang_script};

/// The state after the RUN `run` taken from a `--cache-from` image in
/// `images`, when one matches (see the module docs); `args` are the build
/// args the RUN records.
pub(crate) fn hit(
    session: &Session<'_>,
    images: &[BaseImage],
    st: &StageState,
    run: &RunStep<'_>,
    args: &[(String, String)],
    key: &CacheKey,
) -> Option<StageState> {
    if images.is_empty() {
        return None;
    }
    if run.mounts.iter().any(|m| m.kind == MountKind::Bind)
        || shebang_script(run.command, run.heredocs).is_some()
    {
        return None;
    }
    let by = run_created_by(args, &run_argv(&st.config, run.command, run.heredocs));
    let ours = &st.config.history;
    for img in images {
        let theirs = &img.config.history;
        if theirs.len() <= ours.len() || img.layers.len() <= st.layers.len() {
            continue;
        }
        let same_history = ours
            .iter()
            .zip(theirs)
            .all(|(a, b)| a.created_by == b.created_by && a.empty_layer == b.empty_layer);
        let same_layers = st
            .layers
            .iter()
            .zip(&img.layers)
            .all(|(a, b)| a.diff_id == b.diff_id);
        let next = &theirs[ours.len()];
        if !same_history
            || !same_layers
            || next.empty_layer
            || next.created_by.as_deref() != Some(by.as_str())
        {
            continue;
        }
        let layer = img.layers[st.layers.len()].clone();
        let d = layer.digest.clone();
        if !session.store.has_layer(&d) {
            continue;
        }
        let _ = session.lease.add_blob(&d);
        let mut out = st.clone();
        out.key = key.clone();
        let created = next
            .created
            .clone()
            .unwrap_or_else(|| st.config.created.clone().unwrap_or_default());
        out.config
            .push_history(&created, by, Some(layer.diff_id.clone()));
        out.layers.push(layer);
        return Some(out);
    }
    None
}
