//! What `StageScope::resolve` hands the engine: instructions with every
//! word expanded, mounts parsed, durations checked.

use std::time::Duration;

use super::instruction::Command;
use super::Base;
use crate::parser::Heredoc;

/// Where `COPY --from` / `RUN --mount=from=` reads from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum FromRef {
    /// An earlier stage, by index.
    Stage(usize),
    /// An image reference (as written after expansion).
    Image(String),
}

/// `RUN --mount` type.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum MountKind {
    /// A bind mount of a context, stage or image path.
    Bind,
    /// A persistent cache directory.
    Cache,
    /// A fresh tmpfs.
    Tmpfs,
    /// A secret file.
    Secret,
    /// An SSH agent socket.
    Ssh,
}

/// One parsed `RUN --mount=...` spec.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Mount {
    /// `type=` (bind when absent).
    pub kind: MountKind,
    /// `target`/`dst`/`destination`.
    pub target: Option<String>,
    /// `source`/`src`.
    pub source: Option<String>,
    /// `from=`: a stage or an image.
    pub from: Option<FromRef>,
    /// `ro`/`readonly` (bind defaults to read-only, as in BuildKit).
    pub readonly: bool,
    /// `id=` (cache, secret, ssh).
    pub id: Option<String>,
    /// `sharing=shared|private|locked` (cache).
    pub sharing: Option<String>,
    /// `mode=`: file mode of a secret, ssh socket or cache directory, as written.
    pub mode: Option<String>,
    /// `uid=` of a secret, ssh socket or cache directory, as written.
    pub uid: Option<String>,
    /// `gid=` of a secret, ssh socket or cache directory, as written.
    pub gid: Option<String>,
    /// `required`: a missing secret or ssh agent fails the step.
    pub required: bool,
    /// Any other `key=value` options, in order.
    pub options: Vec<(String, String)>,
}

/// HEALTHCHECK with durations parsed. `test` uses Docker's config form:
/// `["CMD-SHELL", cmd]` or `["CMD", arg...]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HealthcheckSpec {
    /// Docker's test form: `["CMD-SHELL", cmd]`, `["CMD", arg...]` or `["NONE"]`.
    pub test: Vec<String>,
    /// `--interval`.
    pub interval: Option<Duration>,
    /// `--timeout`.
    pub timeout: Option<Duration>,
    /// `--start-period`.
    pub start_period: Option<Duration>,
    /// `--start-interval`.
    pub start_interval: Option<Duration>,
    /// `--retries`.
    pub retries: Option<u32>,
}

/// An instruction ready to execute: every word expanded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Resolved {
    /// `FROM`.
    From {
        /// The base: scratch, a stage or an image.
        base: Base,
        /// `AS name`.
        name: Option<String>,
        /// `--platform`, expanded.
        platform: Option<String>,
    },
    /// `RUN`.
    Run {
        /// Shell form is NOT expanded (the shell does it); exec form neither.
        command: Command,
        /// `--mount` specs, parsed.
        mounts: Vec<Mount>,
        /// `--network`.
        network: Option<String>,
        /// `--security`.
        security: Option<String>,
        /// Bodies chomped (`<<-`) but not expanded (the shell expands them).
        heredocs: Vec<Heredoc>,
    },
    /// `COPY`.
    Copy {
        /// Sources, expanded.
        srcs: Vec<String>,
        /// Destination, expanded.
        dest: String,
        /// `--from`, resolved to a stage or an image.
        from: Option<FromRef>,
        /// `--chown`.
        chown: Option<String>,
        /// `--chmod`.
        chmod: Option<String>,
        /// `--link`.
        link: bool,
        /// `--parents`.
        parents: bool,
        /// `--exclude` patterns.
        exclude: Vec<String>,
        /// Bodies chomped and, when `expand`, expanded with the scope.
        heredocs: Vec<Heredoc>,
    },
    /// `ADD`.
    Add {
        /// Sources (paths, URLs, git repositories), expanded.
        srcs: Vec<String>,
        /// Destination, expanded.
        dest: String,
        /// `--chown`.
        chown: Option<String>,
        /// `--chmod`.
        chmod: Option<String>,
        /// `--link`.
        link: bool,
        /// `--exclude` patterns.
        exclude: Vec<String>,
        /// `--checksum`.
        checksum: Option<String>,
        /// `--keep-git-dir`.
        keep_git_dir: bool,
        /// `--unpack`: `None` = the default (unpack local archives).
        unpack: Option<bool>,
        /// Bodies chomped and, when `expand`, expanded with the scope.
        heredocs: Vec<Heredoc>,
    },
    /// `ENV` pairs.
    Env(Vec<(String, String)>),
    /// Declared names with their values in this scope (`None` = no value).
    Arg(Vec<(String, Option<String>)>),
    /// `LABEL` pairs.
    Label(Vec<(String, String)>),
    /// `EXPOSE` ports.
    Expose(Vec<String>),
    /// `VOLUME` paths.
    Volume(Vec<String>),
    /// `USER`.
    User(String),
    /// `WORKDIR`.
    Workdir(String),
    /// `CMD`.
    Cmd(Command),
    /// `ENTRYPOINT`.
    Entrypoint(Command),
    /// `SHELL`.
    Shell(Vec<String>),
    /// `STOPSIGNAL`.
    StopSignal(String),
    /// `None` = `HEALTHCHECK NONE`.
    Healthcheck(Option<HealthcheckSpec>),
    /// The raw trigger text, stored in the image config for child builds.
    Onbuild(String),
    /// `MAINTAINER`.
    Maintainer(String),
}

/// A duration that is not a Go duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?} (use e.g. 30s, 1m30s, 500ms)")]
pub struct DurationError {
    /// The text given.
    pub input: String,
}

/// A `--mount` spec that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MountSpecError {
    /// `from=` holds a variable (BuildKit's wording, [`MOUNT_FROM_VARIABLE`]).
    #[error("{}", MOUNT_FROM_VARIABLE)]
    FromVariable,
    /// An option that needs `=value` given bare.
    #[error("mount option {0} needs a value ({0}=...)")]
    MissingValue(String),
    /// A `type=` that is not bind, cache, tmpfs, secret or ssh.
    #[error("unsupported mount type {0:?} (bind, cache, tmpfs, secret, ssh)")]
    UnsupportedType(String),
    /// A `sharing=` that is not shared, private or locked.
    #[error("invalid sharing {0:?} (shared, private, locked)")]
    Sharing(String),
    /// No `target=` for a mount that needs one.
    #[error("mount needs a target (target=<path>)")]
    NoTarget,
}

/// Parses a Go duration (`30s`, `1m30s`, `1.5h`, `250ms`).
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let bad = || DurationError {
        input: s.to_string(),
    };
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(bad());
        }
        let n: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total += n * mult;
    }
    if !total.is_finite() || total > 1e12 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(total))
}

/// BuildKit's wording when `from=` of a `--mount` holds a variable.
pub const MOUNT_FROM_VARIABLE: &str =
    "'from' doesn't support variable expansion, define alias stage instead";

/// The fields of a `--mount` spec: `key` (lower-cased) and the value of
/// `key=value` (`None` for a bare key), blanks trimmed, empty fields dropped.
pub fn mount_fields(spec: &str) -> Vec<(String, Option<String>)> {
    spec.split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(|field| match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim().to_string())),
            None => (field.to_ascii_lowercase(), None),
        })
        .collect()
}

/// The raw `from=` of a `--mount` spec. BuildKit refuses a variable there
/// (a `$` that is not the last character): the stage graph must be known
/// before any scope exists.
pub fn mount_from(spec: &str) -> Result<Option<String>, MountSpecError> {
    let Some((_, v)) = mount_fields(spec).into_iter().find(|(k, _)| k == "from") else {
        return Ok(None);
    };
    let v = v.unwrap_or_default();
    if v.find('$').is_some_and(|i| i + 1 != v.len()) {
        return Err(MountSpecError::FromVariable);
    }
    Ok(Some(v))
}

/// Parses one `--mount` spec (CSV of `key=value` and bare keys). The
/// `from=` value is returned raw for the caller to resolve against stages.
pub fn parse_mount(spec: &str) -> Result<(Mount, Option<String>), MountSpecError> {
    parse_mount_fields(mount_fields(spec))
}

/// [`parse_mount`] on fields already split (and their values expanded).
pub fn parse_mount_fields(
    fields: Vec<(String, Option<String>)>,
) -> Result<(Mount, Option<String>), MountSpecError> {
    let mut m = Mount {
        kind: MountKind::Bind,
        target: None,
        source: None,
        from: None,
        readonly: false,
        id: None,
        sharing: None,
        mode: None,
        uid: None,
        gid: None,
        required: false,
        options: Vec::new(),
    };
    let mut from = None;
    let mut ro: Option<bool> = None;
    for (k, v) in fields {
        let val = || {
            v.clone()
                .ok_or_else(|| MountSpecError::MissingValue(k.clone()))
        };
        match k.as_str() {
            "type" => {
                m.kind = match val()?.as_str() {
                    "bind" => MountKind::Bind,
                    "cache" => MountKind::Cache,
                    "tmpfs" => MountKind::Tmpfs,
                    "secret" => MountKind::Secret,
                    "ssh" => MountKind::Ssh,
                    other => return Err(MountSpecError::UnsupportedType(other.to_string())),
                }
            }
            "target" | "dst" | "destination" => m.target = Some(val()?),
            "source" | "src" => m.source = Some(val()?),
            "from" => from = Some(val()?),
            "ro" | "readonly" => ro = Some(v.as_deref().is_none_or(|b| b == "true" || b == "1")),
            "rw" | "readwrite" => ro = Some(!v.as_deref().is_none_or(|b| b == "true" || b == "1")),
            "id" => m.id = Some(val()?),
            "sharing" => {
                let s = val()?;
                if !matches!(s.as_str(), "shared" | "private" | "locked") {
                    return Err(MountSpecError::Sharing(s));
                }
                m.sharing = Some(s)
            }
            "mode" => m.mode = Some(val()?),
            "uid" => m.uid = Some(val()?),
            "gid" => m.gid = Some(val()?),
            "required" => m.required = v.as_deref().is_none_or(|b| b == "true" || b == "1"),
            _ => m.options.push((k.clone(), v.unwrap_or_default())),
        }
    }
    m.readonly = ro.unwrap_or(m.kind == MountKind::Bind);
    if m.target.is_none() && !matches!(m.kind, MountKind::Secret | MountKind::Ssh) {
        return Err(MountSpecError::NoTarget);
    }
    Ok((m, from))
}
