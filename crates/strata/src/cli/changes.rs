//! `import --change`: Dockerfile instructions applied to an image config
//! as `docker import --change` does. The lines are parsed and expanded by
//! the frontend (a synthetic `FROM scratch` Dockerfile) and applied with
//! the engine's config setters, so the rules are the build's. The engine
//! has no public "apply one resolved instruction" function (its stage
//! executor does it inline, with history and layers), hence this small
//! dispatch.

use anyhow::{bail, Context};
use strata_engine::config::{CommandForm, ConfigEditor, ImageConfig};
use strata_frontend::{BuildOptions, Resolved, StageScope};

/// What `docker import --change` accepts.
const ALLOWED: [&str; 11] = [
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "HEALTHCHECK",
    "LABEL",
    "ONBUILD",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Parses and expands the change lines (before any data is read, so a bad
/// change fails fast).
pub(crate) fn parse(changes: &[String]) -> anyhow::Result<Vec<Resolved>> {
    for c in changes {
        let word = c
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        if !ALLOWED.contains(&word.as_str()) {
            bail!(
                "--change {c:?}: {word} cannot be applied to an imported image; \
                 allowed: {}",
                ALLOWED.join(", ")
            );
        }
        if c.contains('\n') {
            bail!("--change {c:?}: give one instruction per --change, without newlines");
        }
    }
    let text = format!("FROM scratch\n{}\n", changes.join("\n"));
    let ast = strata_frontend::parse(&text, "--change").context("parse --change")?;
    let plan = strata_frontend::plan(&ast, &BuildOptions::default()).context("--change")?;
    let stage = plan.stages.first().context("--change: no stage")?;
    let mut scope = StageScope::new(&plan, 0, &[]);
    stage
        .steps
        .iter()
        .map(|s| {
            scope
                .resolve(s)
                .with_context(|| format!("--change {:?}", s.source))
        })
        .collect()
}

/// Applies resolved changes in order with Docker's rules.
pub(crate) fn apply(cfg: &mut ImageConfig, changes: &[Resolved]) -> anyhow::Result<()> {
    let mut cmd_set = false;
    for r in changes {
        match r {
            Resolved::Env(pairs) => cfg.set_env(pairs),
            Resolved::Label(pairs) => cfg.add_labels(pairs),
            Resolved::Expose(ports) => cfg.expose(ports).map_err(|e| anyhow::anyhow!(e.0))?,
            Resolved::Volume(v) => cfg.add_volumes(v).map_err(|e| anyhow::anyhow!(e.0))?,
            Resolved::User(u) => cfg.set_user(u),
            Resolved::Workdir(w) => {
                cfg.set_workdir(w);
            }
            Resolved::Cmd(c) => {
                cfg.set_cmd(&CommandForm::from(c));
                cmd_set = true;
            }
            Resolved::Entrypoint(c) => cfg.set_entrypoint(&CommandForm::from(c), cmd_set),
            Resolved::StopSignal(s) => cfg.set_stop_signal(s),
            Resolved::Onbuild(t) => cfg.add_onbuild(t),
            Resolved::Healthcheck(hc) => cfg.set_healthcheck(hc.as_ref()),
            other => bail!("--change: {other:?} cannot be applied to an imported image"),
        }
    }
    Ok(())
}
