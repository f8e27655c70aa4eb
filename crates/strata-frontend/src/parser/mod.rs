//! The Dockerfile parser: text → [`Ast`]. It follows BuildKit's
//! `frontend/dockerfile/parser` rules (directives, comments, continuation
//! lines, heredocs, per-instruction argument rules) so that [`Ast::dump`]
//! reproduces BuildKit's dump byte for byte. It accepts unknown instruction
//! words and unknown flags, as BuildKit's parser does; the typed layer
//! (`plan`) rejects them with a located error.

mod args;
mod directives;
mod dump;
mod heredoc;
mod lines;

pub use directives::{detect_directive, Directive, SyntaxDirective};
pub use dump::go_quote;
pub use heredoc::{chomp, heredocs_from_line, parse_heredoc, Heredoc};

use crate::error::Diagnostic;
use crate::{Error, Location};
use args::{extract_flags, parse_args, split_keyword, ArgError};
use directives::DirectiveState;
use lines::{is_comment, trim_continuation, trim_newline, LineCursor};

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ast {
    /// The file name used in locations.
    pub file: String,
    /// Parser directives found at the top.
    pub directives: Vec<Directive>,
    /// The escape character in effect (`\` or `` ` ``).
    pub escape: char,
    /// Instructions in file order.
    pub children: Vec<Node>,
    /// The physical lines of the file (for error snippets).
    pub lines: Vec<String>,
}

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The keyword as written (`From`, `RUN`, ...).
    pub keyword: String,
    /// Leading `--` flags, quotes removed (`--from=build`).
    pub flags: Vec<String>,
    /// Raw arguments, per BuildKit's rule for this instruction (ENV/LABEL
    /// give key/value/separator triples, HEALTHCHECK gives the type first).
    pub args: Vec<String>,
    /// The arguments were a JSON array (exec form).
    pub json: bool,
    /// ONBUILD's nested instruction.
    pub onbuild: Option<Box<Node>>,
    /// Heredocs, in marker order, with their raw bodies.
    pub heredocs: Vec<Heredoc>,
    /// The logical line (continuations joined), trimmed: the "original" text.
    pub original: String,
    /// The text after the keyword (flags included), trimmed.
    pub rest: String,
    /// Where the instruction starts (keyword position) and its last line.
    pub location: Location,
}

impl Node {
    /// The keyword, lower-cased.
    pub fn name(&self) -> String {
        self.keyword.to_ascii_lowercase()
    }
}

impl Ast {
    /// The physical line `n` (1-based), for error snippets.
    pub fn line_text(&self, n: usize) -> Option<&str> {
        n.checked_sub(1)
            .and_then(|i| self.lines.get(i))
            .map(String::as_str)
    }

    /// A located error with the line shown.
    pub fn error_at(&self, location: &Location, message: impl Into<String>) -> Diagnostic {
        let d = Diagnostic::new(location.clone(), message);
        match self.line_text(location.line) {
            Some(t) => d.with_line(t),
            None => d,
        }
    }
}

fn located(file: &str, lines: &[String], line: usize, column: usize, message: String) -> Error {
    let loc = Location {
        file: file.to_string(),
        line,
        column,
        end_line: line,
    };
    let mut d = Diagnostic::new(loc, message);
    if let Some(t) = line.checked_sub(1).and_then(|i| lines.get(i)) {
        d = d.with_line(t.clone());
    }
    Error::diag(d)
}

/// Parses Dockerfile text. `file_name` is only used in locations.
///
/// Errors: no instructions, a bad directive, a JSON array with a non-string,
/// ENV/LABEL without a value, an unterminated heredoc.
pub fn parse(text: &str, file_name: &str) -> Result<Ast, Error> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let all_lines: Vec<String> = text
        .split_inclusive('\n')
        .map(|l| trim_newline(l).to_string())
        .collect();
    let mut ds = DirectiveState::new();
    let mut cur = LineCursor::new(text);
    let mut children = Vec::new();
    let err = |line: usize, col: usize, msg: String| located(file_name, &all_lines, line, col, msg);

    while let Some(raw) = cur.next_line() {
        let start_line = cur.line_no();
        let trimmed = trim_newline(raw);
        let body = trimmed.trim_start();
        let column = trimmed.chars().count() - body.chars().count() + 1;
        ds.observe(body, start_line)
            .map_err(|m| err(start_line, column, m.to_string()))?;
        let body = if is_comment(body) { "" } else { body };
        let (first, mut eol) = trim_continuation(body, ds.escape);
        if eol && first.is_empty() {
            continue;
        }
        let mut logical = first.to_string();
        while !eol {
            let Some(next) = cur.next_line() else { break };
            let t = trim_newline(next);
            ds.observe(t, cur.line_no())
                .map_err(|m| err(cur.line_no(), 1, m.to_string()))?;
            if is_comment(t) || t.trim_start().is_empty() {
                continue;
            }
            let (part, done) = trim_continuation(t, ds.escape);
            logical.push_str(part);
            eol = done;
        }
        let location = Location {
            file: file_name.to_string(),
            line: start_line,
            column,
            end_line: cur.line_no(),
        };
        let mut node = node_from_line(&logical, ds.escape, location.clone())
            .map_err(|m| err(start_line, column, m.to_string()))?;
        if can_contain_heredoc(&node) && logical.contains("<<") {
            let docs =
                heredocs_from_line(&logical).map_err(|m| err(start_line, column, m.to_string()))?;
            for mut doc in docs {
                doc.content = read_heredoc_body(&mut cur, &doc).ok_or_else(|| {
                    let d = Diagnostic::new(
                        location.clone(),
                        format!("unterminated heredoc <<{}", doc.name),
                    )
                    .with_line(all_lines.get(start_line - 1).cloned().unwrap_or_default())
                    .with_hint(format!(
                        "end the heredoc with a line holding only `{}`{}",
                        doc.name,
                        if doc.chomp {
                            " (leading TABs allowed)"
                        } else {
                            ""
                        }
                    ));
                    Error::diag(d)
                })?;
                node.heredocs.push(doc);
            }
            node.location.end_line = cur.line_no();
        }
        children.push(node);
    }
    if children.is_empty() {
        let line = cur.line_no().max(1);
        let d = Diagnostic::new(
            Location {
                file: file_name.to_string(),
                line,
                column: 1,
                end_line: line,
            },
            "file with no instructions",
        )
        .with_hint("a Dockerfile needs at least a FROM instruction");
        return Err(Error::diag(d));
    }
    Ok(Ast {
        file: file_name.to_string(),
        directives: ds.list,
        escape: ds.escape,
        children,
        lines: all_lines,
    })
}

/// Reads body lines up to the terminator; `None` at end of file.
fn read_heredoc_body(cur: &mut LineCursor<'_>, doc: &Heredoc) -> Option<String> {
    let mut content = String::new();
    while let Some(line) = cur.next_line() {
        let mut candidate = trim_newline(line);
        if doc.chomp {
            candidate = candidate.trim_start_matches('\t');
        }
        if candidate == doc.name {
            return Some(content);
        }
        content.push_str(line);
    }
    None
}

fn can_contain_heredoc(node: &Node) -> bool {
    let n = match (&node.onbuild, node.name().as_str()) {
        (Some(sub), "onbuild") => sub.as_ref(),
        _ => node,
    };
    matches!(n.name().as_str(), "run" | "copy" | "add") && !n.json
}

/// A logical line whose arguments do not parse (BuildKit's wording).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LineError {
    /// A JSON array with a non-string element; the instruction, upper-cased.
    #[error(
        "{0} requires the arguments to be a JSON array of strings (found a non-string element)"
    )]
    NotStringArray(String),
    /// `ENV`/`LABEL` legacy form with only a key.
    #[error("{0} must have two arguments")]
    MissingValue(&'static str),
    /// `ENV`/`LABEL` new form with a word that has no `=`.
    #[error("Syntax error - can't find = in {0:?}. Must be of the form: name=value")]
    NoEquals(String),
}

/// Builds a node from a logical line (also used for ONBUILD triggers).
pub(crate) fn node_from_line(
    line: &str,
    escape: char,
    location: Location,
) -> Result<Node, LineError> {
    node_at_depth(line, escape, location, 0)
}

/// `depth` is how many ONBUILDs enclose this line. An ONBUILD inside an
/// ONBUILD is not parsed further (it is refused by the typed layer: chaining
/// is not allowed), so `ONBUILD ONBUILD ...` ten thousand times deep cannot
/// recurse ten thousand times.
fn node_at_depth(
    line: &str,
    escape: char,
    location: Location,
    depth: usize,
) -> Result<Node, LineError> {
    let (keyword, rest) = split_keyword(line);
    let (after_flags, flags) = if rest.is_empty() {
        (String::new(), vec![])
    } else {
        extract_flags(rest)
    };
    let arg_text = after_flags.trim();
    let lower = keyword.to_ascii_lowercase();
    let mut node = Node {
        keyword: keyword.to_string(),
        flags,
        args: vec![],
        json: false,
        onbuild: None,
        heredocs: vec![],
        original: line.trim().to_string(),
        rest: rest.to_string(),
        location: location.clone(),
    };
    if lower == "onbuild" {
        if !arg_text.is_empty() && depth == 0 {
            node.onbuild = Some(Box::new(node_at_depth(arg_text, escape, location, 1)?));
        }
        return Ok(node);
    }
    let parsed = parse_args(&lower, arg_text, escape).map_err(|e| match e {
        ArgError::NotStringArray => LineError::NotStringArray(keyword.to_uppercase()),
        ArgError::MissingValue(k) => LineError::MissingValue(k),
        ArgError::NoEquals(w) => LineError::NoEquals(w),
    })?;
    node.args = parsed.args;
    node.json = parsed.json;
    Ok(node)
}
