//! Rules about how instructions are written: ConsistentInstructionCasing,
//! MaintainerDeprecated, LegacyKeyValueFormat, JSONArgsRecommended,
//! MultipleInstructionsDisallowed, WorkdirRelativePath.

use super::{
    Sink, Walk, CONSISTENT_INSTRUCTION_CASING, JSON_ARGS_RECOMMENDED, LEGACY_KEY_VALUE_FORMAT,
    MAINTAINER_DEPRECATED, MULTIPLE_INSTRUCTIONS_DISALLOWED, WORKDIR_RELATIVE_PATH,
};
use crate::parser::Node;
use crate::plan::Base;
use crate::Location;

pub(super) fn check(w: &Walk<'_>, sink: &mut Sink<'_>) {
    casing(w, sink);
    per_stage(w, sink);
}

fn self_consistent(k: &str) -> bool {
    k == k.to_ascii_lowercase() || k == k.to_ascii_uppercase()
}

/// BuildKit counts the instructions of the stages (FROM lines included;
/// global ARGs are not part of a stage), then flags every instruction not
/// in the majority's case (ties go to upper case).
fn casing(w: &Walk<'_>, sink: &mut Sink<'_>) {
    let nodes: Vec<&Node> = w
        .stages
        .iter()
        .flat_map(|v| std::iter::once(v.from).chain(v.steps.iter().map(|(n, _)| *n)))
        .collect();
    let (mut lower, mut upper) = (0usize, 0usize);
    for n in &nodes {
        if self_consistent(&n.keyword) {
            if n.keyword == n.keyword.to_ascii_lowercase() {
                lower += 1;
            } else {
                upper += 1;
            }
        }
    }
    let majority_lower = lower > upper;
    for n in nodes {
        let k = &n.keyword;
        let want = if majority_lower && *k != k.to_ascii_lowercase() {
            "lowercase"
        } else if !majority_lower && *k != k.to_ascii_uppercase() {
            "uppercase"
        } else {
            continue;
        };
        sink.warn(
            CONSISTENT_INSTRUCTION_CASING,
            &n.location,
            None,
            format!("Command '{k}' should match the case of the command majority ({want})"),
        );
    }
}

/// What a stage leaves to a stage built on it.
#[derive(Clone, Copy, Default)]
struct End {
    shell_set: bool,
    workdir_set: bool,
}

fn per_stage(w: &Walk<'_>, sink: &mut Sink<'_>) {
    let mut ends: Vec<End> = Vec::with_capacity(w.stages.len());
    for view in &w.stages {
        let mut state = match view.base {
            Base::Stage(p) => ends.get(p).copied().unwrap_or_default(),
            _ => End::default(),
        };
        let mut last: [Option<&Location>; 3] = [None, None, None];
        for (node, _) in &view.steps {
            let name = node.name();
            let upper = name.to_ascii_uppercase();
            let loc = &node.location;
            match name.as_str() {
                "maintainer" => sink.warn(
                    MAINTAINER_DEPRECATED,
                    loc,
                    None,
                    "Maintainer instruction is deprecated in favor of using label".into(),
                ),
                // The parser marks the legacy form with an empty separator.
                "env" | "label" if node.args.len() == 3 && node.args[2].is_empty() => {
                    sink.warn(
                        LEGACY_KEY_VALUE_FORMAT,
                        loc,
                        None,
                        format!(
                            "\"{upper} key=value\" should be used instead of legacy \"{upper} key value\" format"
                        ),
                    );
                }
                "shell" => state.shell_set = true,
                "workdir" => {
                    let path = node.args.first().map(String::as_str).unwrap_or_default();
                    let absolute = path.starts_with('/') || path.starts_with('$');
                    if !state.workdir_set && !absolute {
                        sink.warn(
                            WORKDIR_RELATIVE_PATH,
                            loc,
                            Some(path),
                            format!(
                                "Relative workdir {path:?} can have unexpected results if the base image changes"
                            ),
                        );
                    }
                    state.workdir_set = true;
                }
                _ => {}
            }
            if matches!(name.as_str(), "cmd" | "entrypoint") && !node.json && !state.shell_set {
                sink.warn(
                    JSON_ARGS_RECOMMENDED,
                    loc,
                    None,
                    format!(
                        "JSON arguments recommended for {upper} to prevent unintended behavior related to OS signals"
                    ),
                );
            }
            let slot = match name.as_str() {
                "cmd" => 0,
                "entrypoint" => 1,
                "healthcheck" => 2,
                _ => continue,
            };
            if let Some(prev) = last[slot] {
                sink.warn(
                    MULTIPLE_INSTRUCTIONS_DISALLOWED,
                    prev,
                    None,
                    format!(
                        "Multiple {upper} instructions should not be used in the same stage because only the last one will be used"
                    ),
                );
            }
            last[slot] = Some(loc);
        }
        ends.push(state);
    }
}
