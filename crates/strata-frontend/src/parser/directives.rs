//! Parser directives (`# syntax=`, `# escape=`, `# check=`). They are only
//! recognised on the leading comment lines: the first line that is not a
//! directive (an instruction, a blank line, an ordinary comment) ends the
//! directive section for good, exactly as BuildKit's `DirectiveParser` does.

use std::collections::BTreeSet;

/// One parser directive as written at the top of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// Lower-cased name: `syntax`, `escape` or `check`.
    pub name: String,
    /// The value with surrounding whitespace trimmed.
    pub value: String,
    /// 1-based line of the directive.
    pub line: usize,
}

const VALID: [&str; 3] = ["syntax", "escape", "check"];

/// Tracks the directive section while the parser walks the lines.
#[derive(Debug)]
pub(crate) struct DirectiveState {
    done: bool,
    seen: BTreeSet<String>,
    pub(crate) escape: char,
    pub(crate) list: Vec<Directive>,
}

/// A parser directive that is not valid (BuildKit's wording).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DirectiveError {
    /// The same directive twice.
    #[error("only one {0} parser directive can be used")]
    Repeated(String),
    /// An escape token other than `\` or `` ` ``.
    #[error("invalid escape token '{0}' does not match ` or \\")]
    BadEscape(String),
}

impl DirectiveState {
    pub(crate) fn new() -> Self {
        DirectiveState {
            done: false,
            seen: BTreeSet::new(),
            escape: '\\',
            list: Vec::new(),
        }
    }

    /// Looks at one (newline-trimmed) line. Fails when the line is a bad
    /// directive (repeated, or an escape token other than `\` or `` ` ``).
    pub(crate) fn observe(&mut self, line: &str, line_no: usize) -> Result<(), DirectiveError> {
        if self.done {
            return Ok(());
        }
        let Some((key, value)) = split_directive(line) else {
            self.done = true;
            return Ok(());
        };
        let key = key.to_ascii_lowercase();
        if !VALID.contains(&key.as_str()) {
            self.done = true;
            return Ok(());
        }
        if !self.seen.insert(key.clone()) {
            return Err(DirectiveError::Repeated(key));
        }
        if key == "escape" {
            match value.as_str() {
                "\\" => self.escape = '\\',
                "`" => self.escape = '`',
                other => return Err(DirectiveError::BadEscape(other.to_string())),
            }
        }
        self.list.push(Directive {
            name: key,
            value,
            line: line_no,
        });
        Ok(())
    }
}

fn is_re_space(c: char) -> bool {
    // RE2's \s: [\t\n\f\r ]
    matches!(c, '\t' | '\n' | '\x0c' | '\r' | ' ')
}

/// Matches `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`.
pub(crate) fn split_directive(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix('#')?;
    let rest = rest.trim_start_matches(is_re_space);
    let key_len = rest
        .char_indices()
        .take_while(|(i, c)| {
            if *i == 0 {
                c.is_ascii_alphabetic()
            } else {
                c.is_ascii_alphanumeric()
            }
        })
        .count();
    if key_len == 0 {
        return None;
    }
    let (key, rest) = rest.split_at(key_len); // ASCII, so byte count == char count
    let rest = rest.trim_start_matches(is_re_space).strip_prefix('=')?;
    if rest.is_empty() {
        return None;
    }
    let value = rest
        .trim_start_matches(is_re_space)
        .trim_end_matches(is_re_space);
    if value.is_empty() {
        // `.+?` needs one character: the regex settles on the last blank.
        let last = rest.chars().last()?;
        return Some((key.to_string(), last.to_string()));
    }
    Some((key.to_string(), value.to_string()))
}

/// What `DetectSyntax` finds: the `syntax` directive of a file, also in the
/// `//` comment style or a whole-file JSON object, after a `#!` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxDirective {
    /// The value up to the first space.
    pub reference: String,
    /// The whole value.
    pub cmdline: String,
    /// 1-based line.
    pub line: usize,
}

/// Finds the `syntax` directive (or, with `name = "check"`, the `check` one)
/// the way BuildKit's front-end selector does. `//` comments and the JSON
/// object form are only accepted for `syntax`.
pub fn detect_directive(text: &str, name: &str) -> Option<SyntaxDirective> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let allow_alt = name == "syntax";
    if allow_alt && text.trim_start().starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(text).ok()?;
        let s = v.get(name)?.as_str()?;
        return Some(SyntaxDirective {
            reference: s.split(' ').next().unwrap_or("").to_string(),
            cmdline: s.to_string(),
            line: 1,
        });
    }
    let mut prefix: Option<&str> = None;
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if i == 0 && line.starts_with("#!") {
            continue;
        }
        let p = match prefix {
            Some(p) => p,
            None if line.starts_with('#') => "#",
            None if allow_alt && line.starts_with("//") => "//",
            None => return None,
        };
        prefix = Some(p);
        let body = line.strip_prefix(p)?;
        let (key, value) = split_directive(&format!("#{body}"))?;
        if key.eq_ignore_ascii_case(name) {
            return Some(SyntaxDirective {
                reference: value.split(' ').next().unwrap_or("").to_string(),
                cmdline: value,
                line: i + 1,
            });
        }
    }
    None
}
