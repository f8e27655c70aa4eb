//! Rules about FROM lines and stage names: StageNameCasing, FromAsCasing,
//! DuplicateStageName, ReservedStageName, UndefinedArgInFrom,
//! InvalidDefaultArgInFrom, FromPlatformFlagConstDisallowed.

use std::collections::BTreeSet;

use super::{
    LintOptions, Sink, Walk, DUPLICATE_STAGE_NAME, FROM_AS_CASING,
    FROM_PLATFORM_FLAG_CONST_DISALLOWED, INVALID_BASE_IMAGE_PLATFORM, INVALID_DEFAULT_ARG_IN_FROM,
    RESERVED_STAGE_NAME, STAGE_NAME_CASING, UNDEFINED_ARG_IN_FROM,
};
use crate::plan::reference::is_valid_reference;
use crate::plan::{from_node, Base, Instruction};
use crate::shell::Lexer;
use crate::suggest;

const RESERVED: [&str; 2] = ["context", "scratch"];

pub(super) fn check(w: &Walk<'_>, sink: &mut Sink<'_>) {
    names(w, sink);
    from_args(w, sink);
}

fn names(w: &Walk<'_>, sink: &mut Sink<'_>) {
    let mut seen = BTreeSet::new();
    for view in &w.stages {
        let node = view.from;
        let Some(as_kw) = node.args.get(1) else {
            continue;
        };
        let Some(raw) = node.args.get(2) else {
            continue;
        };
        let loc = &node.location;
        let keyword_upper = node.keyword == node.keyword.to_ascii_uppercase();
        let keyword_lower = node.keyword == node.keyword.to_ascii_lowercase();
        let as_upper = *as_kw == as_kw.to_ascii_uppercase();
        let as_lower = *as_kw == as_kw.to_ascii_lowercase();
        if (keyword_upper && !as_upper) || (keyword_lower && !as_lower) {
            // The AS word sits right before the name at the end of the line.
            let text = sink.line(loc.line);
            let needle = format!(" {as_kw} ");
            let column = text
                .rfind(&needle)
                .map_or(loc.column, |b| text[..b].chars().count() + 2);
            sink.warn_at(
                FROM_AS_CASING,
                loc,
                column,
                format!(
                    "'{as_kw}' and '{}' keywords' casing do not match",
                    node.keyword
                ),
            );
        }
        let lower = raw.to_ascii_lowercase();
        if *raw != lower {
            sink.warn(
                STAGE_NAME_CASING,
                loc,
                Some(raw),
                format!("Stage name '{raw}' should be lowercase"),
            );
        }
        if RESERVED.contains(&lower.as_str()) {
            sink.warn(
                RESERVED_STAGE_NAME,
                loc,
                Some(raw),
                format!("Stage name should not use the same name as reserved stage {lower:?}"),
            );
        }
        if !seen.insert(lower.clone()) {
            sink.warn(
                DUPLICATE_STAGE_NAME,
                loc,
                Some(raw),
                format!("Duplicate stage name {lower:?}, stage names should be unique"),
            );
        }
    }
}

/// The global ARGs as they stand with their defaults only (no build args),
/// and every declared global name.
fn default_globals(w: &Walk<'_>) -> (Vec<(String, Option<String>)>, BTreeSet<String>) {
    let mut values: Vec<(String, Option<String>)> = Vec::new();
    let mut declared = BTreeSet::new();
    for node in &w.globals {
        let Ok(Instruction::Arg(decls)) = from_node(node, None) else {
            continue;
        };
        for d in decls {
            let value = d.default.and_then(|def| {
                let lookup = |n: &str| lookup_in(&values, &w.predefined, n);
                Lexer::new(w.escape)
                    .process(&def, &lookup)
                    .ok()
                    .map(|e| e.word)
            });
            declared.insert(d.name.clone());
            values.push((d.name, value));
        }
    }
    (values, declared)
}

fn lookup_in(
    values: &[(String, Option<String>)],
    predefined: &[(String, String)],
    n: &str,
) -> Option<String> {
    if let Some((_, v)) = values.iter().rev().find(|(k, _)| k == n) {
        return v.clone();
    }
    predefined
        .iter()
        .find(|(k, _)| k == n)
        .map(|(_, v)| v.clone())
}

fn from_args(w: &Walk<'_>, sink: &mut Sink<'_>) {
    let (defaults, declared) = default_globals(w);
    let predefined: BTreeSet<&str> = w.predefined.iter().map(|(k, _)| k.as_str()).collect();
    let known: Vec<&str> = declared
        .iter()
        .map(String::as_str)
        .chain(predefined.iter().copied())
        .collect();
    let lookup = |n: &str| lookup_in(&defaults, &w.predefined, n);
    let lexer = Lexer::new(w.escape);
    for view in &w.stages {
        let node = view.from;
        let Ok(Instruction::From {
            image, platform, ..
        }) = from_node(node, None)
        else {
            continue;
        };
        let loc = &node.location;
        // UndefinedArgInFrom: the image word and the --platform value.
        for word in std::iter::once(&image).chain(platform.iter()) {
            let Ok(exp) = lexer.process(word, &lookup) else {
                continue;
            };
            for var in exp.unmatched.iter().chain(exp.matched.iter()) {
                if declared.contains(var) || predefined.contains(var.as_str()) {
                    continue;
                }
                let mut message = format!("FROM argument '{var}' is not declared");
                if let Some(s) = suggest::nearest(var, &known) {
                    message.push_str(&format!(" (did you mean {s}?)"));
                }
                sink.warn(UNDEFINED_ARG_IN_FROM, loc, Some(var), message);
            }
        }
        // InvalidDefaultArgInFrom: the image word with defaults only.
        if image.contains('$') {
            if let Ok(exp) = lexer.process(&image, &lookup) {
                let name = exp.word;
                let ok = !name.is_empty()
                    && (name.eq_ignore_ascii_case("scratch") || is_valid_reference(&name));
                if !ok {
                    sink.warn_word(
                        INVALID_DEFAULT_ARG_IN_FROM,
                        loc,
                        &image,
                        format!(
                            "Default value for ARG {image} results in empty or invalid base image name"
                        ),
                    );
                }
            }
        }
        // FromPlatformFlagConstDisallowed.
        if let Some(p) = &platform {
            let Ok(exp) = lexer.process(p, &lookup) else {
                continue;
            };
            if !exp.matched.is_empty() || !exp.unmatched.is_empty() || exp.word.is_empty() {
                continue;
            }
            let mut parts = exp.word.split('/');
            let os = parts.next().unwrap_or_default().to_ascii_lowercase();
            let arch = parts.next().unwrap_or_default().to_ascii_lowercase();
            let stage_name = view.name.clone().unwrap_or_default();
            let named_for_it = (!os.is_empty() && stage_name.contains(&os))
                || (!arch.is_empty() && stage_name.contains(&arch));
            if !named_for_it {
                sink.warn(
                    FROM_PLATFORM_FLAG_CONST_DISALLOWED,
                    loc,
                    Some("--platform"),
                    format!(
                        "FROM --platform flag should not use constant value {:?}",
                        exp.word
                    ),
                );
            }
        }
    }
}

/// `os/arch` of a platform string, lower-cased (`linux/arm64/v8` → linux, arm64).
fn os_arch(p: &str) -> (String, String) {
    let mut parts = p.split('/');
    let os = parts.next().unwrap_or_default().to_ascii_lowercase();
    let arch = parts.next().unwrap_or_default().to_ascii_lowercase();
    (os, arch)
}

/// InvalidBaseImagePlatform: the base image the caller has is for another
/// OS or architecture than the stage's platform (variants are not compared,
/// as in BuildKit).
pub(super) fn base_platforms(w: &Walk<'_>, opts: &LintOptions<'_>, sink: &mut Sink<'_>) {
    let Some(platform_of) = opts.image_platform else {
        return;
    };
    for view in &w.stages {
        let (Base::Image(image), Some(expected)) = (&view.base, &view.platform) else {
            continue;
        };
        let Some(actual) = platform_of(image) else {
            continue;
        };
        if os_arch(&actual) != os_arch(expected) {
            sink.warn_word(
                INVALID_BASE_IMAGE_PLATFORM,
                &view.from.location,
                view.from.args.first().map_or("", String::as_str),
                format!(
                    "Base image {image} was pulled with platform {actual:?}, expected {expected:?} for current build"
                ),
            );
        }
    }
}
