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
        close(&self.0, &mut states);
        let mut ends = vec![false; n + 1];
        ends[0] = states[self.0.len()];
        for (k, &c) in text[start..].iter().enumerate() {
            states = step(&self.0, &states, c);
            ends[k + 1] = states[self.0.len()];
            if !states.iter().any(|s| *s) {
                break;
            }
        }
        ends
    }

    /// Runs the reversed pattern over the reversed text, in one pass:
    /// `out[s]` is whether the pattern matches `text[s..e]` for `e == len`
    /// (`anywhere_end == false`) or for some `e >= s` (`true`). One pass of
    /// O(text × pattern), so `${v%p}` and `${v//p/r}` stay linear in the
    /// value instead of trying every start (quadratic or worse).
    fn starts(&self, text: &[char], anywhere_end: bool) -> Vec<bool> {
        let rev: Vec<Tok> = self.0.iter().rev().cloned().collect();
        let m = rev.len();
        let mut states = vec![false; m + 1];
        states[0] = true;
        close(&rev, &mut states);
        let mut out = vec![false; text.len() + 1];
        out[text.len()] = states[m];
        for k in (0..text.len()).rev() {
            states = step(&rev, &states, text[k]);
            if anywhere_end {
                states[0] = true;
                close(&rev, &mut states);
            }
            out[k] = states[m];
        }
        out
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
        let ok = self.starts(text, false);
        if greedy {
            ok.iter().position(|m| *m)
        } else {
            ok.iter().rposition(|m| *m)
        }
    }

    /// Where matches can start in `text` (for [`Glob::find`]), computed once per value.
    pub(crate) fn match_starts(&self, text: &[char]) -> Vec<bool> {
        self.starts(text, true)
    }

    /// Leftmost match at or after `from`, the longest one at that start.
    /// `starts` is [`Glob::match_starts`] of the same text.
    pub(crate) fn find(
        &self,
        text: &[char],
        from: usize,
        starts: &[bool],
    ) -> Option<(usize, usize)> {
        let s = (from..=text.len()).find(|&s| starts[s])?;
        let ends = self.match_ends(text, s);
        ends.iter().rposition(|m| *m).map(|len| (s, s + len))
    }
}

/// One NFA step over `c`.
fn step(toks: &[Tok], states: &[bool], c: char) -> Vec<bool> {
    let mut next = vec![false; toks.len() + 1];
    for t in 0..toks.len() {
        if !states[t] {
            continue;
        }
        match toks[t] {
            Tok::Lit(l) if l == c => next[t + 1] = true,
            Tok::One if c != '\n' => next[t + 1] = true,
            Tok::Any if c != '\n' => next[t] = true,
            _ => {}
        }
    }
    close(toks, &mut next);
    next
}

/// `*` may match nothing: propagate states across it.
fn close(toks: &[Tok], states: &mut [bool]) {
    for t in 0..toks.len() {
        if states[t] && toks[t] == Tok::Any {
            states[t + 1] = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Glob;

    fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    #[test]
    fn finds_and_suffixes() {
        let g = Glob::compile("a*b").unwrap();
        let t = chars("xxab_ab");
        let st = g.match_starts(&t);
        assert_eq!(g.find(&t, 0, &st), Some((2, 7)));
        assert_eq!(g.find(&t, 3, &st), Some((5, 7)));
        let g = Glob::compile("*b").unwrap();
        let t = chars("abab");
        assert_eq!(g.suffix_start(&t, true), Some(0));
        assert_eq!(g.suffix_start(&t, false), Some(3));
        let g = Glob::compile("?").unwrap();
        assert_eq!(g.suffix_start(&chars(""), false), None);
        let g = Glob::compile("").unwrap();
        let t = chars("ab");
        assert_eq!(g.find(&t, 1, &g.match_starts(&t)), Some((1, 1)));
    }

    #[test]
    fn hostile_patterns_on_large_values_are_fast() {
        // Trying every start was quadratic here (200,000² steps).
        let t: Vec<char> = std::iter::repeat_n('a', 200_000).collect();
        let g = Glob::compile("*x").unwrap();
        let st = g.match_starts(&t);
        assert_eq!(g.find(&t, 0, &st), None);
        assert_eq!(g.suffix_start(&t, false), None);
        assert_eq!(g.suffix_start(&t, true), None);
    }
}
