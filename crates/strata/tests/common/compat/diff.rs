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
pub struct Exceptions {
    /// WORKDIR paths created after USER: the classic builder makes them
    /// root-owned, BuildKit (and strata) owned by the USER. Only the uid/gid
    /// of exactly these paths is ignored.
    pub buildkit_workdir_owner: Vec<String>,
}

/// The outcome of comparing Docker's image (`a`) with strata's (`b`).
#[derive(Debug, Default)]
pub struct Report {
    /// Real differences; the case fails when there is any.
    pub diffs: Vec<String>,
    /// Differences that a declared exception allowed, shown but not failing.
    pub excused: Vec<String>,
}

/// Compares two filesystems. `a` is Docker's, `b` strata's.
pub fn diff_fs(a: &Fs, b: &Fs, exc: &Exceptions, report: &mut Report) {
    let (ga, gb) = (hardlink_groups(a), hardlink_groups(b));
    let paths: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for path in paths {
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
}

/// A one-line description of an entry, marking implicit parents (which
/// compare equal to explicit root-owned 0755 directories).
pub fn describe(e: &Entry) -> String {
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
}

/// The runtime-relevant config fields, under `config` in the image config,
/// and how each is normalised.
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

/// Top-level image config fields that are part of the build's result.
const TOP_FIELDS: &[(&str, Norm)] = &[
    ("Author", Norm::Str),
    ("os", Norm::Str),
    ("architecture", Norm::Str),
];

/// Compares the image configs. `a` is Docker's, `b` strata's.
pub fn diff_config(a: &Value, b: &Value, report: &mut Report) {
    let (ca, cb) = (&a["config"], &b["config"]);
    for (field, norm) in RUNTIME_FIELDS {
        compare_field(
            &format!("config.{field}"),
            &ca[*field],
            &cb[*field],
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
    match (norm, v) {
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
