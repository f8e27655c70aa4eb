//! Shell patterns for `${v#p}`, `${v%p}` and `${v/p/r}`: `*` (any run),
//! `?` (one character), `\*` `\?` `\\` (literals), `\}` and `\/` (the escape
//! only protected the delimiter). Everything else is literal, including `[`.
//! Matching is a dynamic program, so hostile patterns cannot blow up.

use crate::Error;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Lit(char),
    Any,
    One,
}

/// A compiled shell pattern.
#[derive(Debug, Clone)]
pub(crate) struct Glob(Vec<Tok>);

impl Glob {
    pub(crate) fn compile(pattern: &str) -> Result<Glob, Error> {
        let mut toks = Vec::new();
        let mut it = pattern.chars().peekable();
        while let Some(c) = it.next() {
            match c {
                '*' => toks.push(Tok::Any),
                '?' => toks.push(Tok::One),
                '\\' => match it.peek() {
                    Some('}') | Some('/') => {}
                    Some(&n @ ('*' | '?' | '\\')) => {
                        it.next();
                        toks.push(Tok::Lit(n));
                    }
                    other => {
                        let shown = other.map(|c| c.to_string()).unwrap_or_default();
                        return Err(Error::expansion(format!(
                            "invalid pattern ({pattern}) in substitution: invalid escape '\\{shown}'"
                        )));
                    }
                },
                c => toks.push(Tok::Lit(c)),
            }
        }
        Ok(Glob(toks))
    }

    /// For each end position `e` in `text[start..]`, whether the pattern
    /// matches `text[start..e]` exactly (index 0 = empty match).
    fn match_ends(&self, text: &[char], start: usize) -> Vec<bool> {
        let n = text.len() - start;
        // states[t] = pattern prefix of length t matched the text so far.
        let mut states = vec![false; self.0.len() + 1];
        states[0] = true;
        self.close(&mut states);
        let mut ends = vec![false; n + 1];
        ends[0] = states[self.0.len()];
        for (k, &c) in text[start..].iter().enumerate() {
            let mut next = vec![false; self.0.len() + 1];
            for t in 0..self.0.len() {
                if !states[t] {
                    continue;
                }
                match self.0[t] {
                    Tok::Lit(l) if l == c => next[t + 1] = true,
                    Tok::One if c != '\n' => next[t + 1] = true,
                    Tok::Any if c != '\n' => next[t] = true,
                    _ => {}
                }
            }
            self.close(&mut next);
            states = next;
            ends[k + 1] = states[self.0.len()];
            if !states.iter().any(|s| *s) {
                break;
            }
        }
        ends
    }

    /// `*` may match nothing: propagate states across it.
    fn close(&self, states: &mut [bool]) {
        for t in 0..self.0.len() {
            if states[t] && self.0[t] == Tok::Any {
                states[t + 1] = true;
            }
        }
    }

    /// Length of the shortest (or longest) prefix of `text` that matches.
    pub(crate) fn prefix_len(&self, text: &[char], greedy: bool) -> Option<usize> {
        let ends = self.match_ends(text, 0);
        if greedy {
            ends.iter().rposition(|m| *m)
        } else {
            ends.iter().position(|m| *m)
        }
    }

    /// Start of the shortest (or longest) suffix of `text` that matches.
    pub(crate) fn suffix_start(&self, text: &[char], greedy: bool) -> Option<usize> {
        let mut starts = (0..=text.len()).filter(|&s| {
            let ends = self.match_ends(text, s);
            ends[text.len() - s]
        });
        if greedy {
            starts.next()
        } else {
            starts.next_back()
        }
    }

    /// Leftmost match at or after `from`, the longest one at that start.
    pub(crate) fn find(&self, text: &[char], from: usize) -> Option<(usize, usize)> {
        (from..=text.len()).find_map(|s| {
            let ends = self.match_ends(text, s);
            ends.iter().rposition(|m| *m).map(|len| (s, s + len))
        })
    }
}
