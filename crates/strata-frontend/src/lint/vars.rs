//! Rules about variables: UndefinedVar, SecretsUsedInArgOrEnv.

use std::collections::BTreeSet;

use super::{LintOptions, Sink, Walk, SECRETS_USED_IN_ARG_OR_ENV, UNDEFINED_VAR};
use crate::plan::{from_node, Base, Instruction};
use crate::shell::Lexer;
use crate::{suggest, Location};

pub(super) fn check(w: &Walk<'_>, opts: &LintOptions<'_>, sink: &mut Sink<'_>) {
    secrets(w, sink);
    undefined(w, opts, sink);
}

const SECRET_TOKENS: [&str; 10] = [
    "apikey",
    "auth",
    "credential",
    "credentials",
    "key",
    "password",
    "pword",
    "passwd",
    "secret",
    "token",
];
const ALLOW_TOKENS: [&str; 3] = ["public", "file", "version"];

/// BuildKit's test: some `_`-separated part of the name is a secret word
/// (`API_KEY`, `db_password`, `GITHUB_TOKEN`) and no part is an allowed one
/// (`PUBLIC_KEY`, `KEY_FILE`, `TOKEN_VERSION`).
pub(crate) fn looks_secret(name: &str) -> bool {
    let parts: Vec<String> = name.split('_').map(str::to_ascii_lowercase).collect();
    let has = |set: &[&str]| parts.iter().any(|p| set.contains(&p.as_str()));
    has(&SECRET_TOKENS) && !has(&ALLOW_TOKENS)
}

fn secrets(w: &Walk<'_>, sink: &mut Sink<'_>) {
    let nodes = w.globals.iter().copied().chain(
        w.stages
            .iter()
            .flat_map(|v| v.steps.iter().map(|(n, _)| *n)),
    );
    for node in nodes {
        let (kind, names): (&str, Vec<String>) = match from_node(node, None) {
            Ok(Instruction::Arg(decls)) => ("ARG", decls.into_iter().map(|d| d.name).collect()),
            Ok(Instruction::Env(pairs)) => ("ENV", pairs.into_iter().map(|(k, _)| k).collect()),
            _ => continue,
        };
        for name in names.into_iter().filter(|n| looks_secret(n)) {
            sink.warn(
                SECRETS_USED_IN_ARG_OR_ENV,
                &node.location,
                Some(&name),
                format!("Do not use ARG or ENV instructions for sensitive data ({kind} {name:?})"),
            );
        }
    }
}

/// The variables a stage knows so far; `None` = unknown (a base image whose
/// config the caller could not tell).
type Known = Option<BTreeSet<String>>;

/// The words of a step that the builder expands (RUN, CMD, ENTRYPOINT and
/// HEALTHCHECK are left to the container's shell).
fn expanded_words(inst: &Instruction) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    match inst {
        Instruction::Copy(c) | Instruction::Add(c) => {
            out.extend(
                c.srcs
                    .iter()
                    .filter(|s| !s.starts_with("<<"))
                    .map(String::as_str),
            );
            out.push(&c.dest);
            out.extend(c.chown.as_deref());
            out.extend(c.chmod.as_deref());
        }
        Instruction::Env(pairs) => out.extend(pairs.iter().map(|(_, v)| v.as_str())),
        Instruction::Label(pairs) => {
            for (k, v) in pairs {
                out.push(k);
                out.push(v);
            }
        }
        Instruction::Expose(v) | Instruction::Volume(v) => out.extend(v.iter().map(String::as_str)),
        Instruction::User(s) | Instruction::Workdir(s) | Instruction::StopSignal(s) => out.push(s),
        _ => {}
    }
    out
}

/// `${NAME:-x}`, `${NAME+x}` and the like give a fallback: not a mistake.
fn has_fallback(word: &str, name: &str) -> bool {
    [":-", "-", ":+", "+", ":?", "?"]
        .iter()
        .any(|op| word.contains(&format!("${{{name}{op}")))
}

fn undefined(w: &Walk<'_>, opts: &LintOptions<'_>, sink: &mut Sink<'_>) {
    let lexer = Lexer::new(w.escape);
    let mut ends: Vec<Known> = Vec::with_capacity(w.stages.len());
    for view in &w.stages {
        let mut known: Known = match &view.base {
            Base::Stage(p) => ends.get(*p).cloned().flatten(),
            Base::Scratch => Some(BTreeSet::new()),
            Base::Image(name) => opts
                .image_env
                .and_then(|f| f(name))
                .map(|v| v.into_iter().collect()),
        };
        if let Some(k) = known.as_mut() {
            k.insert("PATH".to_string());
        }
        for (node, inst) in &view.steps {
            let Some(defined) = known.as_mut() else {
                break;
            };
            match inst {
                Instruction::Arg(decls) => {
                    // Each default sees the names declared before it.
                    for d in decls {
                        if let Some(def) = &d.default {
                            report(&lexer, def, defined, &node.location, sink);
                        }
                        defined.insert(d.name.clone());
                    }
                }
                inst => {
                    for word in expanded_words(inst) {
                        report(&lexer, word, defined, &node.location, sink);
                    }
                    if let Instruction::Env(pairs) = inst {
                        defined.extend(pairs.iter().map(|(k, _)| k.clone()));
                    }
                }
            }
        }
        ends.push(known);
    }
}

fn report(
    lexer: &Lexer,
    word: &str,
    defined: &BTreeSet<String>,
    loc: &Location,
    sink: &mut Sink<'_>,
) {
    if !word.contains('$') {
        return;
    }
    let lookup = |n: &str| defined.contains(n).then(|| "x".to_string());
    let Ok(exp) = lexer.process(word, &lookup) else {
        return;
    };
    for var in &exp.unmatched {
        if has_fallback(word, var) {
            continue;
        }
        let mut message = format!("Usage of undefined variable '${var}'");
        let candidates: Vec<&str> = defined.iter().map(String::as_str).collect();
        if let Some(s) = suggest::nearest(var, &candidates) {
            message.push_str(&format!(" (did you mean ${s}?)"));
        }
        let braced = format!("${{{var}");
        let needle = if word.contains(&braced) {
            braced
        } else {
            format!("${var}")
        };
        sink.warn(UNDEFINED_VAR, loc, Some(&needle), message);
    }
}
