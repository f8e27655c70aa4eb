//! RUN in a stage: the command line (shell or exec form, heredocs), the
//! environment (image Env, then build args in scope), `--network`,
//! `--mount`s, and the history entry BuildKit writes.

use std::collections::BTreeMap;

use strata_frontend::{Command, Heredoc, Mount, StageScope};

use crate::build::{BuildError, Builder};
use crate::cache::LayerRef;
use crate::config::{CommandForm, ConfigEditor, ImageConfig};
use crate::run_step::RunParams;
use crate::stage::{StageState, StepCtx};

/// The argv of a RUN: the stage's shell (or exec form); heredocs as
/// BuildKit runs them. `RUN <<EOF` alone runs the body as the script;
/// otherwise the bodies follow the command line, so the shell feeds each
/// to its `<<NAME` (`RUN python3 <<EOF`, several heredocs in one RUN).
pub fn run_argv(c: &ImageConfig, command: &Command, heredocs: &[Heredoc]) -> Vec<String> {
    let mut argv = c.argv(&CommandForm::from(command));
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
pub fn shebang_script<'a>(command: &Command, heredocs: &'a [Heredoc]) -> Option<&'a Heredoc> {
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

impl Builder<'_> {
    /// The network mode of a RUN with `--network=flag` in this build;
    /// host networking without `--allow network.host` is an error.
    pub(crate) fn run_network_mode(
        &self,
        flag: &Option<String>,
    ) -> Result<crate::NetworkMode, String> {
        crate::network::resolve(
            flag.as_deref(),
            self.req.network,
            self.req.allow_network_host,
        )
    }

    /// Runs one RUN on `st` and records its history in `c` (the next
    /// config). Returns the new layer.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run_instruction(
        &self,
        st: &StageState,
        scope: &StageScope,
        s: &StepCtx<'_>,
        command: &Command,
        heredocs: &[Heredoc],
        mounts: &[Mount],
        network: &Option<String>,
        deps: &BTreeMap<usize, StageState>,
        c: &mut ImageConfig,
        created: &str,
    ) -> Result<LayerRef, BuildError> {
        let err = |m: String| self.step_error(s, m, None);
        let mut argv = run_argv(c, command, heredocs);
        let mut env = c.runtime().env.clone().unwrap_or_default();
        let args = self.recorded_build_args(scope);
        for (k, v) in &args {
            env.push(format!("{k}={v}"));
        }
        let proxies = self.proxy_env(&env);
        env.extend(proxies);
        let mode = self.run_network_mode(network).map_err(err)?;
        // The build's private network is made by the first RUN that really
        // executes (never for a cached one): started here, in the
        // background, and waited for once the rootfs is mounted.
        self.network.prepare(mode);
        let network = || -> Result<strata_runtime::Network, String> {
            let joined = self.network.network(mode)?;
            if let Some(w) = joined.warning {
                (self.events)(crate::events::Event::now(crate::events::EventKind::Log {
                    step: s.step_no,
                    stream: crate::events::Stream::Stderr,
                    line: w,
                }));
            }
            Ok(joined.network)
        };
        let mut rm = self
            .prepare_mounts(mounts, st, deps)
            .map_err(|m| err(format!("--mount: {m}")))?;
        if let Some(h) = shebang_script(command, heredocs) {
            argv = vec![rm
                .add_script(self.store, &h.name, &h.content)
                .map_err(err)?];
        }
        let params = RunParams {
            argv: argv.clone(),
            env,
            user: &c.runtime().user,
            workdir: c.workdir(),
            network: &network,
            step: s.step_no,
            mounts: rm.specs.clone(),
            extra_lowers: vec![rm.placeholders.0.clone()],
            extra_env: rm.env.clone(),
            epoch: self.req.source_date_epoch,
            extra: self.req.run_extra.clone(),
        };
        let layer = crate::run_step::run(
            self.store,
            self.executor,
            &self.init_layer,
            &st.layers,
            &params,
            self.events,
            self.lease,
        )
        .map_err(|e| {
            let code = match &e {
                crate::run_step::RunError::Failed { code, .. } => Some(*code),
                _ => None,
            };
            self.step_error(s, e.to_string(), code)
        })?;
        drop(rm);
        let by = run_created_by(&args, &argv);
        c.push_history(created, by, Some(layer.diff_id.clone()));
        Ok(layer)
    }
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
