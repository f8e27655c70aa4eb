//! Rules that need the build context's `.dockerignore`: CopyIgnoredFile.

use super::{Sink, Walk, COPY_IGNORED_FILE};
use crate::ignore::clean_path;
use crate::plan::Instruction;
use crate::IgnoreMatcher;

/// COPY/ADD sources from the context that `.dockerignore` excludes. As in
/// BuildKit, nothing is reported when the ignore file has `!` exclusions
/// (whether a path is re-included is not knowable from the patterns
/// alone). Sources with variables, URLs and heredocs are not checked.
pub(super) fn check(w: &Walk<'_>, matcher: &IgnoreMatcher, sink: &mut Sink<'_>) {
    if matcher.is_empty() || matcher.has_exclusions() {
        return;
    }
    for view in &w.stages {
        for (node, inst) in &view.steps {
            let (cmd, spec) = match inst {
                Instruction::Copy(c) if c.from.is_none() => ("Copy", c),
                Instruction::Add(c) => ("Add", c),
                _ => continue,
            };
            for src in &spec.srcs {
                if src.starts_with("<<") || src.contains('$') || src.contains("://") {
                    continue;
                }
                if cmd == "Add" && (src.starts_with("git@") || src.ends_with(".git")) {
                    continue;
                }
                let path = clean_path(src.trim_start_matches('/'));
                if path == "." || path.is_empty() {
                    continue;
                }
                if matcher.matches(&path).unwrap_or(false) {
                    sink.warn(
                        COPY_IGNORED_FILE,
                        &node.location,
                        Some(src),
                        format!(
                            "Attempting to {cmd} file {path:?} that is excluded by .dockerignore"
                        ),
                    );
                }
            }
        }
    }
}
