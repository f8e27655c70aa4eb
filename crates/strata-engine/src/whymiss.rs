//! Why a step missed the cache, in one line naming the input that changed.
//!
//! Every executed step records beside its cache entry what keyed it (a
//! [`Trace`]: the definition JSON hashed into the key, plus the build args
//! in scope and a label for its input) and, apart, a compact per-file list
//! of its context inputs ([`Inputs`]), read only to explain a later miss.
//! The history of a build (context + Dockerfile) remembers each step's key
//! by a stable identity (stage, instruction text, occurrence: insertions
//! above do not lose it) and by its place (stage, position: to tell an
//! edited instruction).
//!
//! On a miss the previous record of the same step (by identity, else the
//! latest with the same parent and instruction) is compared with the
//! current one: same parent → the step's own inputs changed (a context
//! file's content or mode, a build arg, a bind mount's files, the stage or
//! image it copies from); another parent → the step above changed (or, for
//! the first step of a stage, its base image). Secrets never reach a key
//! (as in BuildKit), so a secret is never a reason and nothing of one is
//! recorded.
//!
//! The comparison functions here are pure; the store I/O lives in
//! `miss_record.rs`, the wiring in `solve.rs`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Most files recorded per input (beyond, the list is marked incomplete).
pub(crate) const MAX_FILES: usize = 10_000;

/// Files named in one reason before "and N more".
const SHOWN_FILES: usize = 3;

/// What keyed a step (stored as the step row's `def`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Trace {
    /// The definition hashed into the key (see `steps/key.rs`).
    pub def: Value,
    /// Build args in scope (names and values; a secret is never one).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub args: BTreeMap<String, String>,
    /// What a COPY/ADD reads: `context`, `stage build`, `image NAME`...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// A bind mount's label for each entry of `def.mount_inputs`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<String>,
    /// For a stage's base: the image reference as written in FROM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// One input file: context-relative path, mode (type and permissions, as
/// keyed) and content digest (a symlink's target, empty for a directory).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileEntry(pub String, pub u32, pub String);

/// The files of one input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileSet {
    pub files: Vec<FileEntry>,
    /// False when the list stopped at [`MAX_FILES`].
    #[serde(default = "yes")]
    pub complete: bool,
}

fn yes() -> bool {
    true
}

impl Default for FileSet {
    fn default() -> FileSet {
        FileSet {
            files: Vec::new(),
            complete: true,
        }
    }
}

impl FileSet {
    /// Adds an entry (up to [`MAX_FILES`]).
    pub(crate) fn push(&mut self, path: String, mode: u32, digest: String) {
        if self.files.len() < MAX_FILES {
            self.files.push(FileEntry(path, mode, digest));
        } else {
            self.complete = false;
        }
    }
}

/// A step's file lists by input: `input` (COPY/ADD sources), `mount:N`
/// (the N-th bind mount).
pub(crate) type Inputs = BTreeMap<String, FileSet>;

/// How one file differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FileChange {
    Content(String),
    Mode(String, u32, u32),
    /// File type changed (a file became a directory or a link...).
    Kind(String),
    LinkTarget(String),
    Added(String),
    Removed(String),
}

impl FileChange {
    fn describe(&self) -> String {
        match self {
            FileChange::Content(p) => format!("{p} changed (content)"),
            FileChange::Mode(p, a, b) => {
                format!(
                    "{p} changed (mode {:04o} -> {:04o})",
                    a & 0o7777,
                    b & 0o7777
                )
            }
            FileChange::Kind(p) => format!("{p} changed (type)"),
            FileChange::LinkTarget(p) => format!("{p} changed (link target)"),
            FileChange::Added(p) => format!("{p} added"),
            FileChange::Removed(p) => format!("{p} removed"),
        }
    }
}

const S_IFMT: u32 = 0o170000;
const S_IFLNK: u32 = 0o120000;

/// The differences between two file lists, in path order.
pub(crate) fn diff_files(old: &[FileEntry], new: &[FileEntry]) -> Vec<FileChange> {
    let old: BTreeMap<&str, &FileEntry> = old.iter().map(|e| (e.0.as_str(), e)).collect();
    let new: BTreeMap<&str, &FileEntry> = new.iter().map(|e| (e.0.as_str(), e)).collect();
    let mut out = Vec::new();
    let mut paths: Vec<&str> = old.keys().chain(new.keys()).copied().collect();
    paths.sort_unstable();
    paths.dedup();
    for p in paths {
        let change = match (old.get(p), new.get(p)) {
            (Some(_), None) => FileChange::Removed(p.to_string()),
            (None, Some(_)) => FileChange::Added(p.to_string()),
            (Some(a), Some(b)) if a.1 & S_IFMT != b.1 & S_IFMT => FileChange::Kind(p.to_string()),
            (Some(a), Some(b)) if a.2 != b.2 => {
                if a.1 & S_IFMT == S_IFLNK {
                    FileChange::LinkTarget(p.to_string())
                } else {
                    FileChange::Content(p.to_string())
                }
            }
            (Some(a), Some(b)) if a.1 != b.1 => FileChange::Mode(p.to_string(), a.1, b.1),
            _ => continue,
        };
        out.push(change);
    }
    out
}

/// The first few changes, then a count: `a changed (content), b added, and
/// 4 more files`.
pub(crate) fn describe_file_changes(changes: &[FileChange]) -> String {
    let shown: Vec<String> = changes
        .iter()
        .take(SHOWN_FILES)
        .map(FileChange::describe)
        .collect();
    let mut s = shown.join(", ");
    let rest = changes.len().saturating_sub(SHOWN_FILES);
    if rest > 0 {
        s.push_str(&format!(
            ", and {rest} more file{}",
            if rest == 1 { "" } else { "s" }
        ));
    }
    s
}

/// `sha256:0123456789ab` (12 hex digits; any prefix such as `dir:` kept),
/// or the text as it is.
pub(crate) fn short_digest(d: &str) -> String {
    match d.rsplit_once(':') {
        Some((alg, hex)) if hex.len() > 12 => format!("{alg}:{}", &hex[..12]),
        _ => d.to_string(),
    }
}

/// One line for a changed set of files: the files that differ, else a
/// generic sentence (`what` names the input, e.g. `the context sources`).
fn files_reason(old: Option<&FileSet>, new: Option<&FileSet>, what: &str) -> String {
    if let (Some(o), Some(n)) = (old, new) {
        let changes = diff_files(&o.files, &n.files);
        if !changes.is_empty() {
            return describe_file_changes(&changes);
        }
        if !o.complete || !n.complete {
            return format!("{what} changed (more than {MAX_FILES} files: not compared)");
        }
    }
    format!("{what} changed")
}

/// Build args whose values differ: `build arg V changed (1 -> 2)`, `build
/// arg V set (=x)`, `build arg V unset`; `None` when all are equal.
pub(crate) fn describe_args(old: &[(String, String)], new: &[(String, String)]) -> Option<String> {
    let old: BTreeMap<&str, &str> = old.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let new: BTreeMap<&str, &str> = new.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut names: Vec<&str> = old.keys().chain(new.keys()).copied().collect();
    names.sort_unstable();
    names.dedup();
    let parts: Vec<String> = names
        .into_iter()
        .filter_map(|k| match (old.get(k), new.get(k)) {
            (Some(a), Some(b)) if a != b => Some(format!("build arg {k} changed ({a} -> {b})")),
            (None, Some(b)) => Some(format!("build arg {k} set (={b})")),
            (Some(_), None) => Some(format!("build arg {k} unset")),
            _ => None,
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

fn pairs(v: &Value) -> Vec<(String, String)> {
    serde_json::from_value::<Vec<(String, String)>>(v.clone()).unwrap_or_default()
}

fn map_pairs(m: &BTreeMap<String, String>) -> Vec<(String, String)> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Why a step with the same parent and instruction as a recorded one got
/// another key: the first input (in the order a user would look) that
/// differs. `old_files` is read only when files matter.
pub(crate) fn explain_same_parent(
    old: &Trace,
    new: &Trace,
    old_files: impl FnOnce() -> Option<Inputs>,
    new_files: &Inputs,
) -> String {
    let (o, n) = (&old.def, &new.def);
    // RUN keys its build args: name them before the command they expand in.
    if o["build_args"] != n["build_args"] {
        if let Some(s) = describe_args(&pairs(&o["build_args"]), &pairs(&n["build_args"])) {
            return s;
        }
    }
    let mut old_files = Some(old_files);
    let mut files = || old_files.take().and_then(|f| f()).unwrap_or_default();
    let mut loaded: Option<Inputs> = None;
    if o["input"] != n["input"] {
        let what = new.input.as_deref().unwrap_or("the sources");
        return match what {
            "context" => {
                let f = loaded.get_or_insert_with(&mut files);
                files_reason(
                    f.get("input"),
                    new_files.get("input"),
                    "the context sources",
                )
            }
            w if w.starts_with("context ") => {
                let f = loaded.get_or_insert_with(&mut files);
                format!(
                    "{w}: {}",
                    files_reason(f.get("input"), new_files.get("input"), "its sources")
                )
            }
            w => match (&old.input, &new.input) {
                (Some(a), Some(b)) if a != b => format!("{b} changed (was {a})"),
                _ if w.starts_with("image ") => format!(
                    "{w} changed ({} -> {})",
                    short_digest(o["input"].as_str().unwrap_or("?")),
                    short_digest(n["input"].as_str().unwrap_or("?"))
                ),
                _ => format!("{w} changed"),
            },
        };
    }
    if o["mount_inputs"] != n["mount_inputs"] {
        let (om, nm) = (
            o["mount_inputs"].as_array().cloned().unwrap_or_default(),
            n["mount_inputs"].as_array().cloned().unwrap_or_default(),
        );
        for i in 0..nm.len().max(om.len()) {
            if om.get(i) == nm.get(i) {
                continue;
            }
            let label = new
                .mounts
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("bind mount {}", i + 1));
            let key = format!("mount:{i}");
            let f = loaded.get_or_insert_with(&mut files);
            if f.contains_key(&key) || new_files.contains_key(&key) {
                return format!(
                    "{label}: {}",
                    files_reason(f.get(&key), new_files.get(&key), "its files")
                );
            }
            return format!("{label} changed");
        }
    }
    if o["instr"] != n["instr"] {
        // Same text, another expansion: a build arg it uses (or a field).
        if let Some(s) = describe_args(&map_pairs(&old.args), &map_pairs(&new.args)) {
            return s;
        }
        let field = changed_field(&o["instr"], &n["instr"]);
        return match field.as_deref() {
            Some("mounts") => "its --mount options changed".into(),
            Some(f) => format!("the expanded instruction changed ({f})"),
            None => "the expanded instruction changed".into(),
        };
    }
    for (field, what) in [
        ("env", "the environment (ENV) changed"),
        ("workdir", "the working directory changed"),
        ("user", "the user changed"),
        ("shell", "the shell changed"),
        ("cmd_set", "whether CMD was set changed"),
    ] {
        if o[field] != n[field] {
            return what.into();
        }
    }
    if let Some(f) = changed_field(o, n) {
        return format!("its definition changed ({f})");
    }
    // Same definition, same key: the entry's layers are gone.
    "the cached result is no longer in the store (its layers were removed)".into()
}

/// The first top-level field (under a one-key enum wrapper such as
/// `{"Run": {...}}`) whose value differs.
fn changed_field(a: &Value, b: &Value) -> Option<String> {
    let unwrap = |v: &Value| -> Option<serde_json::Map<String, Value>> {
        let m = v.as_object()?;
        if m.len() == 1 {
            if let Some(Value::Object(inner)) = m.values().next() {
                return Some(inner.clone());
            }
        }
        Some(m.clone())
    };
    let (a, b) = (unwrap(a)?, unwrap(b)?);
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .find(|k| a.get(*k) != b.get(*k))
        .map(|k| k.to_string())
}

/// What sits above a step in its stage.
#[derive(Debug, Clone)]
pub(crate) enum Above {
    /// The stage's base: an image (its trace now) or another stage.
    Base {
        trace: Trace,
    },
    Stage(String),
    /// An earlier step (its instruction, one line).
    Step(String),
}

/// Why a step's parent key differs from last time: the step above changed
/// (the cause is explained there), or, right below FROM, the base.
/// `old_parent` is what was above last time, if recorded: its instruction
/// and trace (for a base).
pub(crate) fn explain_parent_change(above: &Above, old_parent: Option<(&str, &Trace)>) -> String {
    let old_base = old_parent.map(|(_, t)| t);
    match above {
        Above::Step(text) => match old_parent.map(|(i, _)| one_line(i)) {
            // Another step is above now (edited, inserted or removed).
            Some(was) if &was != text => {
                format!("the step above changed: {text} (was: {was})")
            }
            _ => format!("the step above changed: {text}"),
        },
        Above::Stage(label) => format!("the base stage {label} changed"),
        Above::Base { trace } => {
            let name = trace.from.as_deref().unwrap_or("the base image");
            let Some(old) = old_base else {
                return format!("the base image changed ({name})");
            };
            if old.def.get("base").is_none() {
                // A step was above last time (it was removed).
                let was = old_parent.map(|(i, _)| one_line(i)).unwrap_or_default();
                return format!("the step above changed: FROM {name} (was: {was})");
            }
            let (o, n) = (&old.def, &trace.def);
            if old.from != trace.from {
                let was = old.from.as_deref().unwrap_or("?");
                return format!("the base changed: FROM {name} (was {was})");
            }
            if o["base"] != n["base"] {
                let s = |v: &Value| short_digest(v.as_str().unwrap_or("?"));
                return format!(
                    "the base image {name} changed ({} -> {})",
                    s(&o["base"]),
                    s(&n["base"])
                );
            }
            if o["platform"] != n["platform"] {
                return format!(
                    "the platform changed ({} -> {})",
                    o["platform"].as_str().unwrap_or("?"),
                    n["platform"].as_str().unwrap_or("?")
                );
            }
            format!("the base image changed ({name})")
        }
    }
}

/// An instruction as one short line (whitespace collapsed, cut at 80
/// characters).
pub(crate) fn one_line(text: &str) -> String {
    let s: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() > 80 {
        let cut: String = s.chars().take(77).collect();
        format!("{cut}...")
    } else {
        s
    }
}

#[cfg(test)]
mod tests;
