//! `strata build --dry-run`: print the plan (stages in build order, skipped
//! stages, each step with its words expanded as far as is known with an
//! empty base image environment) and stop.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::Context as _;
use strata_frontend::{
    parse, plan, Base, BuildOptions, Command, FromRef, Plan, Resolved, StageScope,
};

use super::build::BuildArgs;
use super::Global;

/// `--build-arg K=V`, or `K` alone to take the value from the environment.
pub fn build_args(raw: &[String]) -> BTreeMap<String, String> {
    raw.iter()
        .filter_map(|a| match a.split_once('=') {
            Some((k, v)) => Some((k.to_string(), v.to_string())),
            None => std::env::var(a).ok().map(|v| (a.clone(), v)),
        })
        .collect()
}

pub fn run(_g: &Global, a: &BuildArgs) -> anyhow::Result<u8> {
    let dockerfile = a
        .file
        .clone()
        .unwrap_or_else(|| strata_engine::build::default_dockerfile(&a.context));
    let text = strata_engine::context::read_dockerfile(&dockerfile)
        .with_context(|| format!("cannot read {}", dockerfile.display()))?;
    let opts = BuildOptions {
        build_args: build_args(&a.build_args),
        target: a.target.clone(),
        // The first --platform (the checks and the plan show one).
        target_platform: a
            .platforms
            .iter()
            .find_map(|p| strata_oci::Platform::parse(p).ok())
            .unwrap_or_else(strata_oci::Platform::host)
            .to_string(),
        build_platform: strata_oci::Platform::host().to_string(),
    };
    let result = parse(&text, &dockerfile.display().to_string()).and_then(|ast| plan(&ast, &opts));
    let p = match result {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return Ok(1);
        }
    };
    match render(&p) {
        Ok(out) => {
            print!("{out}");
            Ok(0)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(1)
        }
    }
}

fn stage_label(p: &Plan, i: usize) -> String {
    match &p.stages[i].name {
        Some(n) => format!("stage {i} ({n})"),
        None => format!("stage {i}"),
    }
}

/// The plan as text.
pub fn render(p: &Plan) -> Result<String, strata_frontend::Error> {
    let mut out = String::new();
    let order = p.build_order();
    let _ = writeln!(out, "target: {}", stage_label(p, p.target));
    let labels: Vec<String> = order.iter().map(|&i| stage_label(p, i)).collect();
    let _ = writeln!(out, "build order: {}", labels.join(", "));
    for s in p.stages.iter().filter(|s| !s.needed) {
        let _ = writeln!(
            out,
            "skipped: {} (not needed for the target)",
            stage_label(p, s.index)
        );
    }
    for &i in &order {
        let s = &p.stages[i];
        let base = match &s.base {
            Base::Scratch => "scratch".to_string(),
            Base::Image(r) => r.clone(),
            Base::Stage(k) => stage_label(p, *k),
        };
        let _ = writeln!(
            out,
            "\n[{}] FROM {base}{}",
            stage_label(p, i),
            s.platform
                .as_ref()
                .map(|pl| format!(" (platform {pl})"))
                .unwrap_or_default()
        );
        let mut scope = StageScope::new(p, i, &p.known_base_env(i));
        for (n, step) in s.steps.iter().enumerate() {
            let r = scope.resolve(step)?;
            let _ = writeln!(
                out,
                "  {}/{} {}:{}  {}",
                n + 1,
                s.steps.len(),
                step.location.file,
                step.location.line,
                step.source
            );
            let _ = writeln!(out, "      => {}", describe(p, &r));
        }
    }
    Ok(out)
}

fn cmd(c: &Command) -> String {
    match c {
        Command::Shell(s) => format!("(shell) {s}"),
        Command::Exec(v) => format!("(exec) {v:?}"),
    }
}

fn from_ref(p: &Plan, f: &FromRef) -> String {
    match f {
        FromRef::Stage(i) => stage_label(p, *i),
        FromRef::Image(r) => format!("image {r}"),
    }
}

fn describe(p: &Plan, r: &Resolved) -> String {
    match r {
        Resolved::Run {
            command, mounts, ..
        } => {
            let m: Vec<String> = mounts
                .iter()
                .map(|m| {
                    format!(
                        "{:?}:{}{}",
                        m.kind,
                        m.target.as_deref().unwrap_or(""),
                        m.from
                            .as_ref()
                            .map(|f| format!(" from {}", from_ref(p, f)))
                            .unwrap_or_default()
                    )
                })
                .collect();
            if m.is_empty() {
                format!("RUN {}", cmd(command))
            } else {
                format!("RUN {} mounts {m:?}", cmd(command))
            }
        }
        Resolved::Copy {
            srcs, dest, from, ..
        } => format!(
            "COPY {srcs:?} -> {dest:?}{}",
            from.as_ref()
                .map(|f| format!(" from {}", from_ref(p, f)))
                .unwrap_or_default()
        ),
        Resolved::Add { srcs, dest, .. } => format!("ADD {srcs:?} -> {dest:?}"),
        Resolved::Env(v) => format!("ENV {v:?}"),
        Resolved::Arg(v) => format!("ARG {v:?}"),
        Resolved::Label(v) => format!("LABEL {v:?}"),
        Resolved::Cmd(c) => format!("CMD {}", cmd(c)),
        Resolved::Entrypoint(c) => format!("ENTRYPOINT {}", cmd(c)),
        Resolved::Workdir(w) => format!("WORKDIR {w:?}"),
        Resolved::User(u) => format!("USER {u:?}"),
        other => format!("{other:?}"),
    }
}
