//! `strata build --dry-run`: print the plan (stages in build order, skipped
//! stages, each step with its words expanded as far as is known with an
//! empty base image environment) and stop.

use std::fmt::Write as _;

use anyhow::Context as _;
use strata_engine::dockerfile::Dockerfile;
use strata_frontend::{Base, Command, FromRef, Plan, Resolved, StageScope};

use super::build::BuildArgs;
use super::Global;

pub(crate) fn run(_g: &Global, a: &BuildArgs) -> anyhow::Result<u8> {
    let dockerfile = a.dockerfile();
    let df = Dockerfile::read(&dockerfile, dockerfile.display().to_string())
        .with_context(|| format!("cannot read {}", dockerfile.display()))?;
    let p = match df.plan(&a.plan_options()) {
        Ok((_, p)) => p,
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
pub(crate) fn render(p: &Plan) -> Result<String, strata_frontend::Error> {
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

/// A JSON array, as Dockerfiles write exec forms.
fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// A word as a Dockerfile would write it: bare when it needs no quoting.
fn word(w: &str) -> String {
    if !w.is_empty()
        && !w
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | '$' | '#'))
    {
        w.to_string()
    } else {
        serde_json::to_string(w).unwrap_or_default()
    }
}

fn pairs(v: &[(String, String)]) -> String {
    v.iter()
        .map(|(k, val)| format!("{}={}", word(k), word(val)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn cmd(c: &Command) -> String {
    match c {
        Command::Shell(s) => s.clone(),
        Command::Exec(v) => json_list(v),
    }
}

fn from_ref(p: &Plan, f: &FromRef) -> String {
    match f {
        FromRef::Stage(i) => match &p.stages[*i].name {
            Some(n) => n.clone(),
            None => i.to_string(),
        },
        FromRef::Image(r) => r.clone(),
    }
}

fn mount_flag(p: &Plan, m: &strata_frontend::Mount) -> String {
    use strata_frontend::MountKind;
    let kind = match m.kind {
        MountKind::Bind => "bind",
        MountKind::Cache => "cache",
        MountKind::Tmpfs => "tmpfs",
        MountKind::Secret => "secret",
        MountKind::Ssh => "ssh",
    };
    let mut f = vec![format!("type={kind}")];
    if let Some(id) = &m.id {
        f.push(format!("id={id}"));
    }
    if let Some(t) = &m.target {
        f.push(format!("target={t}"));
    }
    if let Some(from) = &m.from {
        f.push(format!("from={}", from_ref(p, from)));
    }
    if let Some(s) = &m.source {
        f.push(format!("source={s}"));
    }
    f.extend(m.options.iter().map(|(k, v)| format!("{k}={v}")));
    format!("--mount={}", f.join(","))
}

fn durations(h: &strata_frontend::HealthcheckSpec) -> String {
    let mut f = String::new();
    for (name, d) in [
        ("interval", h.interval),
        ("timeout", h.timeout),
        ("start-period", h.start_period),
        ("start-interval", h.start_interval),
    ] {
        if let Some(d) = d {
            f.push_str(&format!("--{name}={}s ", d.as_secs_f64()));
        }
    }
    if let Some(r) = h.retries {
        f.push_str(&format!("--retries={r} "));
    }
    f
}

fn copy_flags(
    chown: &Option<String>,
    chmod: &Option<String>,
    link: bool,
    exclude: &[String],
) -> String {
    let mut f = String::new();
    if let Some(c) = chown {
        f.push_str(&format!("--chown={c} "));
    }
    if let Some(c) = chmod {
        f.push_str(&format!("--chmod={c} "));
    }
    if link {
        f.push_str("--link ");
    }
    for e in exclude {
        f.push_str(&format!("--exclude={e} "));
    }
    f
}

/// A resolved step in Dockerfile words (every variable expanded).
fn describe(p: &Plan, r: &Resolved) -> String {
    match r {
        Resolved::From {
            base,
            name,
            platform,
        } => {
            let b = match base {
                Base::Scratch => "scratch".to_string(),
                Base::Image(r) => r.clone(),
                Base::Stage(k) => from_ref(p, &FromRef::Stage(*k)),
            };
            format!(
                "FROM {}{b}{}",
                platform
                    .as_ref()
                    .map(|pl| format!("--platform={pl} "))
                    .unwrap_or_default(),
                name.as_ref()
                    .map(|n| format!(" AS {n}"))
                    .unwrap_or_default()
            )
        }
        Resolved::Run {
            command,
            mounts,
            network,
            security,
            ..
        } => {
            let mut f: Vec<String> = mounts.iter().map(|m| mount_flag(p, m)).collect();
            if let Some(n) = network {
                f.push(format!("--network={n}"));
            }
            if let Some(s) = security {
                f.push(format!("--security={s}"));
            }
            f.push(cmd(command));
            format!("RUN {}", f.join(" "))
        }
        Resolved::Copy {
            srcs,
            dest,
            from,
            chown,
            chmod,
            link,
            parents,
            exclude,
            ..
        } => {
            let mut f = from
                .as_ref()
                .map(|f| format!("--from={} ", from_ref(p, f)))
                .unwrap_or_default();
            if *parents {
                f.push_str("--parents ");
            }
            f.push_str(&copy_flags(chown, chmod, *link, exclude));
            format!(
                "COPY {f}{} {}",
                srcs.iter().map(|s| word(s)).collect::<Vec<_>>().join(" "),
                word(dest)
            )
        }
        Resolved::Add {
            srcs,
            dest,
            chown,
            chmod,
            link,
            exclude,
            checksum,
            keep_git_dir,
            unpack,
            ..
        } => {
            let mut f = copy_flags(chown, chmod, *link, exclude);
            if let Some(c) = checksum {
                f.push_str(&format!("--checksum={c} "));
            }
            if *keep_git_dir {
                f.push_str("--keep-git-dir ");
            }
            if let Some(u) = unpack {
                f.push_str(&format!("--unpack={u} "));
            }
            format!(
                "ADD {f}{} {}",
                srcs.iter().map(|s| word(s)).collect::<Vec<_>>().join(" "),
                word(dest)
            )
        }
        Resolved::Env(v) => format!("ENV {}", pairs(v)),
        Resolved::Arg(v) => format!(
            "ARG {}",
            v.iter()
                .map(|(k, val)| match val {
                    Some(val) => format!("{}={}", word(k), word(val)),
                    None => word(k),
                })
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Resolved::Label(v) => format!("LABEL {}", pairs(v)),
        Resolved::Expose(v) => format!("EXPOSE {}", v.join(" ")),
        Resolved::Volume(v) => format!("VOLUME {}", json_list(v)),
        Resolved::User(u) => format!("USER {u}"),
        Resolved::Workdir(w) => format!("WORKDIR {}", word(w)),
        Resolved::Cmd(c) => format!("CMD {}", cmd(c)),
        Resolved::Entrypoint(c) => format!("ENTRYPOINT {}", cmd(c)),
        Resolved::Shell(v) => format!("SHELL {}", json_list(v)),
        Resolved::StopSignal(s) => format!("STOPSIGNAL {s}"),
        Resolved::Healthcheck(None) => "HEALTHCHECK NONE".to_string(),
        Resolved::Healthcheck(Some(h)) => {
            let test = match h.test.first().map(String::as_str) {
                Some("CMD-SHELL") => h.test[1..].join(" "),
                Some("CMD") => json_list(&h.test[1..]),
                _ => json_list(&h.test),
            };
            format!("HEALTHCHECK {}CMD {test}", durations(h))
        }
        Resolved::Onbuild(t) => format!("ONBUILD {}", t.lines().next().unwrap_or("")),
        Resolved::Maintainer(m) => format!("MAINTAINER {m}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dry_run_speaks_dockerfile() {
        let text = "FROM busybox AS build\nARG V=1\nENV A=\"b c\" D=e\nEXPOSE 8080 53/udp\nLABEL a=b\nRUN --mount=type=cache,target=/c echo $V\nCOPY a.txt /x/\nCMD [\"sh\", \"-c\", \"echo\"]\nFROM busybox\nCOPY --from=build --chown=1:1 /x /y\nVOLUME /data\nHEALTHCHECK --interval=5s CMD true\n";
        let df = Dockerfile {
            name: "Dockerfile".into(),
            text: text.into(),
        };
        let (_, p) = df.plan(&strata_frontend::BuildOptions::default()).unwrap();
        let out = render(&p).unwrap();
        for want in [
            "=> ENV A=\"b c\" D=e",
            "=> EXPOSE 8080 53/udp",
            "=> LABEL a=b",
            "=> ARG V=1",
            "=> RUN --mount=type=cache,target=/c echo $V",
            "=> COPY a.txt /x/",
            "=> CMD [\"sh\",\"-c\",\"echo\"]",
            "=> COPY --from=build --chown=1:1 /x /y",
            "=> VOLUME [\"/data\"]",
            "=> HEALTHCHECK --interval=5s CMD true",
        ] {
            assert!(out.contains(want), "{want}\n{out}");
        }
        assert!(!out.contains("(["), "{out}");
        assert!(!out.contains("(\""), "{out}");
    }
}
