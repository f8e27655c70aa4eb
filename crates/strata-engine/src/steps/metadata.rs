//! The metadata instructions: ENV, ARG, LABEL, EXPOSE, VOLUME, USER, CMD,
//! ENTRYPOINT, SHELL, STOPSIGNAL, HEALTHCHECK, ONBUILD, MAINTAINER and
//! WORKDIR. Each edits the image config and writes the history line
//! BuildKit writes; only WORKDIR may add a layer (see `workdir.rs`).
//! Their key is the common part of `key.rs` (nothing of their own).

use strata_frontend::Resolved;

use crate::config::go_quoted_list;
use crate::config::ConfigEditor as _;
use crate::error::StepError;
use crate::state::{form, StageState};
use crate::step_env::{StepCtx, StepEnv};

/// Applies the metadata instruction `r` to `next` (a copy of `st`, the
/// state before it).
pub(crate) fn execute(
    env: &StepEnv<'_>,
    st: &StageState,
    r: &Resolved,
    ctx: &StepCtx<'_>,
    next: &mut StageState,
    created: &str,
) -> Result<(), StepError> {
    let c = &mut next.config;
    let by = match r {
        Resolved::Workdir(path) => {
            let wd = c.set_workdir(path);
            let layer = super::workdir::execute(env, st, &wd, &c.runtime().user.clone())?;
            let diff = layer.as_ref().map(|l| l.diff_id.clone());
            c.push_history(created, format!("WORKDIR {wd}"), diff);
            next.layers.extend(layer);
            return Ok(());
        }
        // ARG changes only the scope (already updated when resolved).
        Resolved::Arg(_) => return Ok(()),
        Resolved::Env(pairs) => {
            c.set_env(pairs);
            format!("ENV {}", key_values(pairs))
        }
        Resolved::Label(pairs) => {
            c.add_labels(pairs);
            format!("LABEL {}", key_values(pairs))
        }
        Resolved::Expose(ports) => {
            c.expose(ports)?;
            format!("EXPOSE {}", ports.join(" "))
        }
        Resolved::Volume(paths) => {
            c.add_volumes(paths)?;
            format!("VOLUME [{}]", paths.join(" "))
        }
        Resolved::User(u) => {
            c.set_user(u);
            format!("USER {u}")
        }
        Resolved::Cmd(cmd) => {
            c.set_cmd(&form(cmd));
            next.cmd_set = true;
            format!(
                "CMD {}",
                go_quoted_list(c.runtime().cmd.as_deref().unwrap_or(&[]))
            )
        }
        Resolved::Entrypoint(ep) => {
            c.set_entrypoint(&form(ep), st.cmd_set);
            format!(
                "ENTRYPOINT {}",
                go_quoted_list(c.runtime().entrypoint.as_deref().unwrap_or(&[]))
            )
        }
        Resolved::Shell(sh) => {
            c.set_shell(sh);
            format!("SHELL {}", go_quoted_list(sh))
        }
        Resolved::StopSignal(sig) => {
            c.set_stop_signal(sig);
            format!("STOPSIGNAL {sig}")
        }
        Resolved::Healthcheck(hc) => {
            c.set_healthcheck(hc.as_ref());
            let args = ctx.source.trim().split_once(' ').map(|x| x.1).unwrap_or("");
            format!("HEALTHCHECK {args}")
        }
        Resolved::Onbuild(t) => {
            c.add_onbuild(t);
            format!("ONBUILD {t}")
        }
        Resolved::Maintainer(m) => {
            c.set_author(m);
            format!("MAINTAINER {m}")
        }
        Resolved::From { .. }
        | Resolved::Run { .. }
        | Resolved::Copy { .. }
        | Resolved::Add { .. } => {
            unreachable!("StepDef::of gives these their own family")
        }
    };
    c.push_history(created, by, None);
    Ok(())
}

/// `K=V K2=V2`, as ENV and LABEL history lines show them.
fn key_values(pairs: &[(String, String)]) -> String {
    let kv: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    kv.join(" ")
}
