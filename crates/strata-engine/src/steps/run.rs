//! RUN: its key inputs (environment, build args, `--add-host`..., what
//! its bind mounts show) and its execution (the command line in shell or
//! exec form with heredocs, the environment, `--network`, `--mount`s, and
//! the history entry BuildKit writes). The process itself is started by
//! `run_step.rs`.

use serde_json::json;
use strata_frontend::{Command, Heredoc, StageScope};

use super::def::RunStep;
use crate::cache::LayerRef;
use crate::config::ConfigEditor as _;
use crate::config::ImageConfig;
use crate::error::StepError;
use crate::events::{EventKind, Stream};
use crate::run_step::RunParams;
use crate::state::{form, StageState};
use crate::step_env::{StepCtx, StepEnv};
use crate::whymiss::{Inputs, Trace};

/// RUN's part of the key (see `key.rs`): its network is checked first
/// (a cached step needs the entitlement too), then its environment,
/// build args, container extras and bind mount contents.
pub(crate) fn key_inputs(
    r: &RunStep<'_>,
    env: &StepEnv<'_>,
    st: &StageState,
    scope: &StageScope,
    json: &mut serde_json::Value,
    trace: &mut Trace,
    inputs: &mut Inputs,
) -> Result<(), StepError> {
    env.inputs.run_network_mode(r.network)?;
    json["env"] = json!(st.config.runtime().env);
    json["build_args"] = json!(env.inputs.recorded_build_args(scope));
    // `--add-host`, `--shm-size`, `--ulimit` key RUN as in BuildKit
    // (only when set, so that other keys stay as they were).
    let x = &env.inputs.req.run_extra;
    if *x != strata_runtime::ContainerExtras::default() {
        json["run_extra"] = json!({
            "hosts": x.extra_hosts,
            "shm": x.shm_size,
            "ulimits": x.ulimits.iter().map(|u| (&u.name, u.soft, u.hard)).collect::<Vec<_>>(),
        });
    }
    // What bind mounts show the command is an input as much as a
    // COPY's sources: their content goes into the key.
    let binds =
        crate::runmounts::bind_mount_inputs(env, r.mounts).map_err(StepError::MountInput)?;
    if !binds.is_empty() {
        json["mount_inputs"] = json!(binds.iter().map(|b| &b.digest).collect::<Vec<_>>());
    }
    for (i, b) in binds.into_iter().enumerate() {
        trace.mounts.push(b.label);
        if let Some(f) = b.files {
            inputs.insert(format!("mount:{i}"), f);
        }
    }
    Ok(())
}

/// Runs one RUN on `st` and records its history in `c` (the next
/// config). Returns the new layer.
pub(crate) fn execute(
    env: &StepEnv<'_>,
    st: &StageState,
    scope: &StageScope,
    r: &RunStep<'_>,
    ctx: &StepCtx<'_>,
    c: &mut ImageConfig,
    created: &str,
) -> Result<LayerRef, StepError> {
    let (os, arch) = (&st.config.os, &st.config.architecture);
    strata_runtime::binfmt::ensure_can_run(os, arch, st.config.variant.as_deref())
        .map_err(|e| StepError::CannotRun(e.to_string()))?;
    let session = env.session;
    let inputs = env.inputs;
    let mut argv = run_argv(c, r.command, r.heredocs);
    let mut run_env = c.runtime().env.clone().unwrap_or_default();
    let args = inputs.recorded_build_args(scope);
    for (k, v) in &args {
        run_env.push(format!("{k}={v}"));
    }
    let proxies = inputs.proxy_env(&run_env);
    run_env.extend(proxies);
    let mode = inputs.run_network_mode(r.network)?;
    // The build's private network is made by the first RUN that really
    // executes (never for a cached one): started here, in the
    // background, and waited for once the rootfs is mounted.
    inputs.network.prepare(mode);
    let network = || -> Result<strata_runtime::Network, crate::network::NetworkError> {
        let joined = inputs.network.network(mode)?;
        if let Some(w) = joined.warning {
            session.emit(EventKind::Log {
                step: ctx.step_no,
                stream: Stream::Stderr,
                line: w,
            });
        }
        Ok(joined.network)
    };
    let mut rm = crate::runmounts::prepare_mounts(env, r.mounts, st)?;
    if let Some(h) = shebang_script(r.command, r.heredocs) {
        argv = vec![rm
            .add_script(session.store, &h.name, &h.content)
            .map_err(StepError::Script)?];
    }
    let params = RunParams {
        argv: argv.clone(),
        env: run_env,
        user: &c.runtime().user,
        workdir: c.workdir(),
        network: &network,
        step: ctx.step_no,
        mounts: rm.specs.clone(),
        extra_lowers: vec![rm.placeholders.0.clone()],
        extra_env: rm.env.clone(),
        epoch: inputs.epoch(),
        extra: inputs.req.run_extra.clone(),
    };
    let layer = crate::run_step::run(
        session.store,
        session.executor,
        inputs.init_layer,
        &st.layers,
        &params,
        session.events,
        session.lease,
    )?;
    drop(rm);
    c.push_history(
        created,
        run_created_by(&args, &argv),
        Some(layer.diff_id.clone()),
    );
    Ok(layer)
}

/// The argv of a RUN: the stage's shell (or exec form); heredocs as
/// BuildKit runs them. `RUN <<EOF` alone runs the body as the script;
/// otherwise the bodies follow the command line, so the shell feeds each
/// to its `<<NAME` (`RUN python3 <<EOF`, several heredocs in one RUN).
pub(crate) fn run_argv(c: &ImageConfig, command: &Command, heredocs: &[Heredoc]) -> Vec<String> {
    let mut argv = c.argv(&form(command));
    if let (Command::Shell(text), false) = (command, heredocs.is_empty()) {
        let only_heredoc = heredocs.len() == 1 && {
            let t = text.trim();
            t.starts_with("<<") && !t.contains(char::is_whitespace)
        };
        let last = argv.len() - 1;
        if only_heredoc {
            argv[last] = heredocs[0].content.clone();
        } else {
            let mut full = text.clone();
            for h in heredocs {
                full.push('\n');
                full.push_str(&h.content);
                if !h.content.ends_with('\n') {
                    full.push('\n');
                }
                full.push_str(&h.name);
            }
            argv[last] = full;
        }
    }
    argv
}

/// The heredoc a RUN consists of alone, when its body starts with `#!`
/// (BuildKit executes such a body as a file rather than through the shell).
pub(crate) fn shebang_script<'a>(
    command: &Command,
    heredocs: &'a [Heredoc],
) -> Option<&'a Heredoc> {
    match (command, heredocs) {
        (Command::Shell(text), [h])
            if text.trim().starts_with("<<")
                && !text.trim().contains(char::is_whitespace)
                && h.content.starts_with("#!") =>
        {
            Some(h)
        }
        _ => None,
    }
}

/// The history line BuildKit writes for a RUN: `RUN [|N K=V ...] ARGV # buildkit`.
pub(crate) fn run_created_by(args: &[(String, String)], argv: &[String]) -> String {
    let prefix = if args.is_empty() {
        String::new()
    } else {
        let kv: Vec<String> = args.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("|{} {} ", args.len(), kv.join(" "))
    };
    format!("RUN {prefix}{} # buildkit", argv.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(name: &str, content: &str) -> Heredoc {
        Heredoc {
            name: name.into(),
            file_descriptor: 0,
            expand: true,
            chomp: false,
            content: content.into(),
        }
    }

    #[test]
    fn heredoc_argv() {
        let c = crate::config::scratch();
        let a = run_argv(
            &c,
            &Command::Shell("<<EOF".into()),
            &[doc("EOF", "echo hi\n")],
        );
        assert_eq!(a, ["/bin/sh", "-c", "echo hi\n"]);
        let a = run_argv(
            &c,
            &Command::Shell("<<A cat > /a && <<B cat > /b".into()),
            &[doc("A", "1\n"), doc("B", "2\n")],
        );
        assert_eq!(a[2], "<<A cat > /a && <<B cat > /b\n1\nA\n2\nB");
        let a = run_argv(&c, &Command::Shell("sh <<EOF".into()), &[doc("EOF", "x")]);
        assert_eq!(a[2], "sh <<EOF\nx\nEOF");
        let script = [doc("EOF", "#!/bin/awk -f\nBEGIN{print 1}\n")];
        assert!(shebang_script(&Command::Shell("<<EOF".into()), &script).is_some());
        assert!(shebang_script(&Command::Shell("sh <<EOF".into()), &script).is_none());
        assert!(shebang_script(&Command::Shell("<<EOF".into()), &[doc("EOF", "echo")]).is_none());
    }
}
