//! Comparing two flattened images: filesystems path by path and the runtime
//! parts of their configs, producing readable `only in` / `differs` lines.
//!
//! There is no tolerance here beyond what Docker itself treats as equal
//! (null vs empty for maps and lists that mean "none") and the exceptions a
//! case declares by name, each of which is reported.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::image::{hardlink_groups, Entry, Fs, Kind};

/// Known, deliberate differences a case may declare (its `case.json`).
#[derive(Clone, Debug, Default)]
pub(crate) struct Exceptions {
    /// WORKDIR paths created after USER: the classic builder makes them
    /// root-owned, BuildKit (and strata) owned by the USER. Only the uid/gid
    /// of exactly these paths is ignored.
    pub buildkit_workdir_owner: Vec<String>,
    /// Paths whose content the build cannot make reproducible (pyc files,
    /// package caches, logs with timestamps), each a glob with `*` (within a
    /// name) and `**` (any number of names) and the reason it is volatile.
    /// Their differences are counted per pattern and shown, never failing.
    pub volatile: Vec<(String, String)>,
}

/// True when `path` (no leading slash) matches `pattern` (leading slash
/// optional): `**` matches any number of names (also none), `*` and `?`
/// match within one name.
pub(crate) fn glob_match(pattern: &str, path: &str) -> bool {
    let pat: Vec<&str> = pattern
        .trim_start_matches('/')
        .split('/')
        .filter(|p| !p.is_empty())
        .collect();
    let names: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    match_names(&pat, &names)
}

fn match_names(pat: &[&str], names: &[&str]) -> bool {
    match pat.split_first() {
        None => names.is_empty(),
        Some((&"**", rest)) => (0..=names.len()).any(|i| match_names(rest, &names[i..])),
        Some((p, rest)) => names.split_first().is_some_and(|(n, tail)| {
            match_name(p.as_bytes(), n.as_bytes()) && match_names(rest, tail)
        }),
    }
}

fn match_name(p: &[u8], n: &[u8]) -> bool {
    match p.split_first() {
        None => n.is_empty(),
        Some((b'*', rest)) => (0..=n.len()).any(|i| match_name(rest, &n[i..])),
        Some((b'?', rest)) => !n.is_empty() && match_name(rest, &n[1..]),
        Some((c, rest)) => n.first() == Some(c) && match_name(rest, &n[1..]),
    }
}

/// The outcome of comparing Docker's image (`a`) with strata's (`b`).
#[derive(Debug, Default)]
pub(crate) struct Report {
    /// Real differences; the case fails when there is any.
    pub diffs: Vec<String>,
    /// Differences that a declared exception allowed, shown but not failing.
    pub excused: Vec<String>,
}

/// Compares two filesystems. `a` is Docker's, `b` strata's.
pub(crate) fn diff_fs(a: &Fs, b: &Fs, exc: &Exceptions, report: &mut Report) {
    let (ga, gb) = (hardlink_groups(a), hardlink_groups(b));
    let paths: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    // Per volatile pattern: how many paths differed, and the first one.
    let mut volatile: Vec<(usize, Option<String>)> = vec![(0, None); exc.volatile.len()];
    for path in paths {
        if let Some(i) = exc.volatile.iter().position(|(p, _)| glob_match(p, path)) {
            let (x, y) = (a.get(path), b.get(path));
            let same = match (x, y) {
                (Some(x), Some(y)) => compared(x) == compared(y) && ga.get(path) == gb.get(path),
                _ => false,
            };
            if !same {
                volatile[i].0 += 1;
                volatile[i].1.get_or_insert_with(|| format!("/{path}"));
            }
            continue;
        }
        match (a.get(path), b.get(path)) {
            (Some(x), None) => report
                .diffs
                .push(format!("only in docker: /{path} {}", describe(x))),
            (None, Some(y)) => report
                .diffs
                .push(format!("only in strata: /{path} {}", describe(y))),
            (Some(x), Some(y)) => {
                let excused_owner = exc
                    .buildkit_workdir_owner
                    .iter()
                    .any(|p| p.trim_start_matches('/') == path);
                if excused_owner && (x.uid, x.gid) != (y.uid, y.gid) {
                    report.excused.push(format!(
                        "/{path} owner docker {}:{} strata {}:{} (buildkit_workdir_owner)",
                        x.uid, x.gid, y.uid, y.gid
                    ));
                }
                let y_cmp = if excused_owner {
                    Entry {
                        uid: x.uid,
                        gid: x.gid,
                        ..y.clone()
                    }
                } else {
                    y.clone()
                };
                if compared(x) != compared(&y_cmp) {
                    report.diffs.push(format!(
                        "differs: /{path}\n      docker {}\n      strata {}",
                        describe(x),
                        describe(y)
                    ));
                }
                let (la, lb) = (ga.get(path), gb.get(path));
                if la != lb {
                    report.diffs.push(format!(
                        "hard links differ: /{path} docker {} strata {}",
                        links(la),
                        links(lb)
                    ));
                }
            }
            (None, None) => unreachable!(),
        }
    }
    for ((pattern, why), (n, first)) in exc.volatile.iter().zip(volatile) {
        if n > 0 {
            report.excused.push(format!(
                "volatile {pattern}: {n} path(s) differ, e.g. {} ({why})",
                first.unwrap_or_default()
            ));
        }
    }
}

/// A one-line description of an entry, marking implicit parents (which
/// compare equal to explicit root-owned 0755 directories).
pub(crate) fn describe(e: &Entry) -> String {
    let implicit = if e.implicit { " (implicit parent)" } else { "" };
    format!("{}{implicit}", compared(e))
}

/// Everything compared about an entry, as one string.
fn compared(e: &Entry) -> String {
    let owner = format!("{}:{}", e.uid, e.gid);
    match &e.kind {
        Kind::File => {
            let sum = e.sha256.as_deref().map_or("", |s| &s[..12]);
            format!("file {:04o} {owner} {}B sha256:{sum}", e.mode, e.size)
        }
        Kind::Dir => format!("dir {:04o} {owner}", e.mode),
        // A symlink's own mode means nothing on Linux (always 0777 in effect)
        // and tar writers differ on it: not compared.
        Kind::Symlink(t) => format!("symlink -> {t} {owner}"),
        Kind::CharDev(ma, mi) => format!("char {ma},{mi} {:04o} {owner}", e.mode),
        Kind::BlockDev(ma, mi) => format!("block {ma},{mi} {:04o} {owner}", e.mode),
        Kind::Fifo => format!("fifo {:04o} {owner}", e.mode),
    }
}

fn links(group: Option<&Vec<String>>) -> String {
    group.map_or("none".into(), |g| {
        let names: Vec<String> = g.iter().map(|p| format!("/{p}")).collect();
        format!("{{{}}}", names.join(", "))
    })
}

/// How a config field is normalised before comparison.
#[derive(Clone, Copy)]
enum Norm {
    /// Compared as written: null and [] mean different things for
    /// Cmd/Entrypoint (Docker writes `CMD []` as [] and clears to null).
    Exact,
    /// A string where absent, null and "" all mean unset.
    Str,
    /// A list where absent, null and [] all mean none.
    List,
    /// A map (ExposedPorts, Volumes, Labels) where absent, null, {} are none.
    Map,
    /// Any other field of `config` (Hostname, Tty, ArgsEscaped...): its
    /// zero value (false, 0, "", [], {}) means the same as absent or null.
    Zero,
}

/// The runtime-relevant config fields, under `config` in the image config,
/// and how each is normalised. Every other field of `config` is compared
/// too, as [`Norm::Zero`], but for [`SKIPPED_CONFIG_FIELDS`].
const RUNTIME_FIELDS: &[(&str, Norm)] = &[
    ("Env", Norm::List),
    ("Cmd", Norm::Exact),
    ("Entrypoint", Norm::Exact),
    ("WorkingDir", Norm::Str),
    ("User", Norm::Str),
    ("ExposedPorts", Norm::Map),
    ("Labels", Norm::Map),
    ("Volumes", Norm::Map),
    ("StopSignal", Norm::Str),
    ("Healthcheck", Norm::Exact),
    ("Shell", Norm::List),
    ("OnBuild", Norm::List),
];

/// Fields of `config` that are not compared, each with the reason.
const SKIPPED_CONFIG_FIELDS: &[(&str, &str)] = &[(
    "Image",
    "the classic builder records the ID of its own intermediate image of the \
     previous step there; no other builder can reproduce it, nothing runs from it",
)];

/// Top-level image config fields that are part of the build's result.
const TOP_FIELDS: &[(&str, Norm)] = &[
    ("comment", Norm::Str),
    ("author", Norm::Str),
    ("os", Norm::Str),
    ("architecture", Norm::Str),
    ("variant", Norm::Str),
];

/// Compares the image configs. `a` is Docker's, `b` strata's: the whole
/// `config` object (field by field, see [`RUNTIME_FIELDS`]) and
/// [`TOP_FIELDS`]. `created`, `history`, `rootfs` (the layers, compared as
/// a filesystem) and the classic builder's `container`/`container_config`/
/// `docker_version` are not the build's result.
pub(crate) fn diff_config(a: &Value, b: &Value, report: &mut Report) {
    let (ca, cb) = (&a["config"], &b["config"]);
    let mut fields: Vec<(String, Norm)> = RUNTIME_FIELDS
        .iter()
        .map(|(f, n)| (f.to_string(), *n))
        .collect();
    let others: BTreeSet<&String> = [ca, cb]
        .iter()
        .filter_map(|c| c.as_object())
        .flat_map(|m| m.keys())
        .filter(|k| !RUNTIME_FIELDS.iter().any(|(f, _)| f == k))
        .filter(|k| !SKIPPED_CONFIG_FIELDS.iter().any(|(f, _)| f == k))
        .collect();
    fields.extend(others.into_iter().map(|k| (k.clone(), Norm::Zero)));
    for (field, norm) in &fields {
        compare_field(
            &format!("config.{field}"),
            &ca[field.as_str()],
            &cb[field.as_str()],
            *norm,
            report,
        );
    }
    for (field, norm) in TOP_FIELDS {
        compare_field(field, &a[*field], &b[*field], *norm, report);
    }
}

fn compare_field(name: &str, x: &Value, y: &Value, norm: Norm, report: &mut Report) {
    let (nx, ny) = (normalize(x, norm), normalize(y, norm));
    if nx != ny {
        report.diffs.push(format!(
            "{name} differs\n      docker {x}\n      strata {y}"
        ));
    }
}

fn normalize(v: &Value, norm: Norm) -> Value {
    let zero = match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
    };
    match (norm, v) {
        (Norm::Zero, _) if zero => Value::Null,
        (Norm::Zero, _) => v.clone(),
        (Norm::Exact, _) => v.clone(),
        (Norm::Str, Value::Null) => Value::String(String::new()),
        (Norm::List, Value::Null) => Value::Array(Vec::new()),
        // Maps compare by content, whatever the key order in the JSON.
        (Norm::Map, Value::Null) => Value::Object(Default::default()),
        (Norm::Map, Value::Object(m)) => {
            let sorted: BTreeMap<&String, &Value> = m.iter().collect();
            serde_json::to_value(sorted).unwrap_or(Value::Null)
        }
        _ => v.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn volatile_globs() {
        let g = glob_match;
        assert!(g("/var/log/**", "var/log/apt/history.log"));
        assert!(g("/var/log/**", "var/log/dpkg.log"));
        assert!(!g("/var/log/**", "var/logs/x"));
        assert!(g(
            "/opt/venv/**/__pycache__/*.pyc",
            "opt/venv/lib/python3.11/site-packages/six/__pycache__/six.cpython-311.pyc"
        ));
        assert!(g(
            "/opt/venv/**/__pycache__/*.pyc",
            "opt/venv/__pycache__/a.pyc"
        ));
        assert!(!g("/opt/venv/**/__pycache__/*.pyc", "opt/venv/lib/a.py"));
        assert!(g("/var/lib/dpkg/*-old", "var/lib/dpkg/status-old"));
        assert!(!g("/var/lib/dpkg/*-old", "var/lib/dpkg/status"));
        assert!(g("etc/shadow?", "etc/shadow-") && !g("/etc/shadow", "etc/shadow-"));
    }

    #[test]
    fn the_whole_config_and_top_fields_are_compared() {
        let docker = json!({
            "comment": "",
            "author": "A",
            "os": "linux",
            "architecture": "amd64",
            "config": {"Hostname": "", "Tty": false, "Image": "sha256:aa", "Env": ["A=1"], "OpenStdin": false}
        });
        let same = json!({
            "os": "linux",
            "author": "A",
            "architecture": "amd64",
            "config": {"Env": ["A=1"], "Image": "sha256:bb"}
        });
        let mut r = Report::default();
        diff_config(&docker, &same, &mut r);
        assert!(r.diffs.is_empty(), "{:?}", r.diffs);
        let other = json!({
            "comment": "made by a builder",
            "author": "A",
            "os": "linux",
            "architecture": "amd64",
            "config": {"Env": ["A=1"], "Tty": true}
        });
        let mut r = Report::default();
        diff_config(&docker, &other, &mut r);
        assert_eq!(r.diffs.len(), 2, "{:?}", r.diffs);
        assert!(r.diffs[0].starts_with("config.Tty differs"));
        assert!(r.diffs[1].starts_with("comment differs"));
    }
}
