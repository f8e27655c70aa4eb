//! Physical-line helpers: the cursor over lines (newlines kept, as heredoc
//! bodies need them), comment detection, and the continuation rule.

/// Iterates over lines, keeping their `\n`, and counts them.
pub(crate) struct LineCursor<'a> {
    rest: &'a str,
    line_no: usize,
}

impl<'a> LineCursor<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        LineCursor {
            rest: text,
            line_no: 0,
        }
    }

    pub(crate) fn next_line(&mut self) -> Option<&'a str> {
        if self.rest.is_empty() {
            return None;
        }
        let end = self.rest.find('\n').map_or(self.rest.len(), |i| i + 1);
        let (line, rest) = self.rest.split_at(end);
        self.rest = rest;
        self.line_no += 1;
        Some(line)
    }

    /// 1-based number of the line last returned.
    pub(crate) fn line_no(&self) -> usize {
        self.line_no
    }
}

pub(crate) fn trim_newline(line: &str) -> &str {
    let l = line.strip_suffix('\n').unwrap_or(line);
    l.strip_suffix('\r').unwrap_or(l)
}

/// A line whose first non-blank character is `#`.
pub(crate) fn is_comment(line: &str) -> bool {
    trim_newline(line).trim_start().starts_with('#')
}

/// BuildKit's `([^\\])\\[ \t]*$|^\\[ \t]*$` with the escape token: returns the
/// line without the continuation marker and whether the instruction ends here.
pub(crate) fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let body = line.trim_end_matches([' ', '\t']);
    let Some(before) = body.strip_suffix(escape) else {
        return (line, true);
    };
    match before.chars().last() {
        None => ("", false),
        Some(c) if c == escape => (line, true),
        Some(_) => (before, false),
    }
}
