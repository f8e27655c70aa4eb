//! Instruction flags (`--from=x`, `--link`, repeated `--mount=...`), checked
//! against what each instruction takes (BuildKit's `BFlags`).

use std::collections::BTreeMap;

/// The kind of value a flag takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum FlagKind {
    /// `--name=value`.
    Str,
    /// `--name=value`, repeatable.
    List,
    /// `--name`, `--name=true|false`.
    Bool,
}

/// The flags an instruction accepts.
pub(crate) fn allowed(instruction: &str) -> &'static [(&'static str, FlagKind)] {
    use FlagKind::*;
    match instruction {
        "from" => &[("platform", Str)],
        "run" => &[("mount", List), ("network", Str), ("security", Str)],
        "copy" => &[
            ("from", Str),
            ("chown", Str),
            ("chmod", Str),
            ("link", Bool),
            ("parents", Bool),
            ("exclude", List),
        ],
        "add" => &[
            ("chown", Str),
            ("chmod", Str),
            ("link", Bool),
            ("exclude", List),
            ("keep-git-dir", Bool),
            ("checksum", Str),
            ("unpack", Bool),
        ],
        "healthcheck" => &[
            ("interval", Str),
            ("timeout", Str),
            ("start-period", Str),
            ("start-interval", Str),
            ("retries", Str),
        ],
        _ => &[],
    }
}

/// Parsed flag values.
#[derive(Debug, Default, Clone)]
pub(crate) struct Flags {
    strings: BTreeMap<String, String>,
    lists: BTreeMap<String, Vec<String>>,
    bools: BTreeMap<String, bool>,
}

impl Flags {
    pub(crate) fn str(&self, name: &str) -> Option<String> {
        self.strings.get(name).cloned()
    }
    pub(crate) fn list(&self, name: &str) -> Vec<String> {
        self.lists.get(name).cloned().unwrap_or_default()
    }
    pub(crate) fn flag(&self, name: &str) -> bool {
        self.bools.get(name).copied().unwrap_or(false)
    }
    pub(crate) fn opt_bool(&self, name: &str) -> Option<bool> {
        self.bools.get(name).copied()
    }
}

/// A flag problem: the offending flag text and the message.
pub(crate) struct FlagError {
    pub flag: String,
    pub message: String,
    pub hint: String,
}

fn usage(instruction: &str) -> String {
    let list = allowed(instruction);
    if list.is_empty() {
        return format!("{} takes no flags", instruction.to_uppercase());
    }
    let names: Vec<String> = list
        .iter()
        .map(|(n, k)| match k {
            FlagKind::Bool => format!("--{n}"),
            _ => format!("--{n}=<value>"),
        })
        .collect();
    format!("{} takes {}", instruction.to_uppercase(), names.join(", "))
}

/// Parses raw flags (`--name=value` words, quotes already removed).
pub(crate) fn parse(instruction: &str, raw: &[String]) -> Result<Flags, FlagError> {
    let mut out = Flags::default();
    let table = allowed(instruction);
    for f in raw {
        let body = f.strip_prefix("--").unwrap_or(f);
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let err = |message: String| FlagError {
            flag: f.clone(),
            message,
            hint: usage(instruction),
        };
        let Some((_, kind)) = table.iter().find(|(n, _)| *n == name) else {
            let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
            let did_you_mean = crate::suggest::nearest(name, &names)
                .map(|n| format!(" (did you mean --{n}?)"))
                .unwrap_or_default();
            return Err(err(format!(
                "{} does not take the flag --{name}{did_you_mean}",
                instruction.to_uppercase()
            )));
        };
        match (kind, value) {
            (FlagKind::Bool, None) => {
                out.bools.insert(name.into(), true);
            }
            (FlagKind::Bool, Some(v)) => {
                let b = match v.to_ascii_lowercase().as_str() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(err(format!("--{name} expects true or false, not {v:?}"))),
                };
                out.bools.insert(name.into(), b);
            }
            (_, None) => {
                return Err(err(format!(
                    "missing a value on flag --{name} (write --{name}=<value>)"
                )))
            }
            (FlagKind::Str, Some(v)) => {
                if out.strings.insert(name.into(), v.into()).is_some() {
                    return Err(err(format!("duplicate flag specified: --{name}")));
                }
            }
            (FlagKind::List, Some(v)) => out.lists.entry(name.into()).or_default().push(v.into()),
        }
    }
    Ok(out)
}
