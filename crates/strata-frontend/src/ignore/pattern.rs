//! One `.dockerignore` pattern: Go `filepath.Match` syntax plus `**`,
//! compiled the way moby/patternmatcher compiles it (exact, prefix, suffix,
//! or a regular expression) but matched with our own dynamic program, so a
//! hostile pattern costs O(pattern × path), never exponential time.

/// How the pattern is matched (mirrors patternmatcher's `matchType`).
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Exact,
    /// Ends in `**` with no other wildcard: a prefix test.
    Prefix(String),
    /// Starts with `**` with no other wildcard: a suffix test. `true` when
    /// the `**` was followed by `/`, so the suffix must start a segment.
    Suffix(String, bool),
    Tokens(Vec<Tok>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Lit(char),
    /// `*`: any run of non-`/`.
    Star,
    /// `?`: one non-`/`.
    One,
    /// `**` not at the end: `(.*/)?`; the body is the following `DirsBody`.
    OptDirs,
    DirsBody,
    /// `**` at the end (after other wildcards): `.*`.
    AnyAll,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// A class whose regex would not compile (a reversed range): match-time error.
    BadClass,
}

/// A compiled pattern.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    pub(crate) cleaned: String,
    pub(crate) exclusion: bool,
    kind: Kind,
}

/// Why a pattern is not valid `filepath.Match` syntax (Go's wording).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// A `\` at the end of the pattern.
    #[error("trailing backslash")]
    TrailingBackslash,
    /// A malformed character class.
    #[error("syntax error in pattern")]
    Syntax,
    /// A lone `!` (an exclusion of nothing).
    #[error("illegal exclusion pattern: \"!\" (write !PATH to re-include PATH)")]
    EmptyExclusion,
    /// A pattern found bad while matching a path.
    #[error("bad pattern: {0}")]
    WhileMatching(Box<PatternError>),
}

/// Go's `filepath.Match` syntax check (run against ".", as patternmatcher does).
pub(crate) fn validate(p: &str) -> Result<(), PatternError> {
    let chars: Vec<char> = p.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                if i + 1 >= chars.len() {
                    return Err(PatternError::TrailingBackslash);
                }
                i += 2;
            }
            '[' => {
                i += 1;
                if chars.get(i) == Some(&'^') {
                    i += 1;
                }
                let mut n = 0;
                loop {
                    if chars.get(i) == Some(&']') && n > 0 {
                        i += 1;
                        break;
                    }
                    i = class_esc(&chars, i)?.1;
                    if chars.get(i) == Some(&'-') {
                        i = class_esc(&chars, i + 1)?.1;
                    }
                    n += 1;
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Go's `getEsc`: one (possibly escaped) class character.
fn class_esc(chars: &[char], mut i: usize) -> Result<(char, usize), PatternError> {
    let bad = || Err(PatternError::Syntax);
    match chars.get(i) {
        None | Some('-') | Some(']') => return bad(),
        Some('\\') => {
            i += 1;
            if i >= chars.len() {
                return bad();
            }
        }
        _ => {}
    }
    let c = chars[i];
    if i + 1 >= chars.len() {
        return bad();
    }
    Ok((c, i + 1))
}

impl Pattern {
    /// Compiles an already cleaned, validated pattern (without its `!`).
    pub(crate) fn new(cleaned: String, exclusion: bool) -> Pattern {
        let kind = compile(&cleaned);
        Pattern {
            cleaned,
            exclusion,
            kind,
        }
    }

    /// Whether the pattern matches `path` in full. `Err` = bad pattern.
    pub(crate) fn matches(&self, path: &str) -> Result<bool, PatternError> {
        match &self.kind {
            Kind::Exact => Ok(path == self.cleaned),
            Kind::Prefix(p) => Ok(path.starts_with(p.as_str())),
            Kind::Suffix(s, false) => Ok(path.ends_with(s.as_str())),
            Kind::Suffix(s, true) => Ok(path == s
                || path
                    .strip_suffix(s.as_str())
                    .is_some_and(|head| head.ends_with('/'))),
            Kind::Tokens(t) => run(t, path),
        }
    }
}

fn compile(pattern: &str) -> Kind {
    let chars: Vec<char> = pattern.chars().collect();
    let mut toks = Vec::new();
    let mut wild = false; // any wildcard other than a leading/trailing `**`
    let mut leading = false;
    let mut trailing = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' if chars.get(i) == Some(&'*') => {
                let at_start = i == 1;
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i >= chars.len() {
                    if wild || leading {
                        toks.push(Tok::AnyAll);
                        wild = true;
                    } else {
                        trailing = true;
                    }
                } else {
                    toks.push(Tok::OptDirs);
                    toks.push(Tok::DirsBody);
                    if !at_start {
                        wild = true;
                    }
                }
                if at_start {
                    leading = true;
                }
            }
            '*' => {
                toks.push(Tok::Star);
                wild = true;
            }
            '?' => {
                toks.push(Tok::One);
                wild = true;
            }
            '\\' => {
                if let Some(&n) = chars.get(i) {
                    toks.push(Tok::Lit(n));
                    i += 1;
                    wild = true;
                } else {
                    toks.push(Tok::Lit('\\'));
                }
            }
            '[' => {
                let (tok, next) = compile_class(&chars, i);
                toks.push(tok);
                i = next;
                wild = true;
            }
            c => toks.push(Tok::Lit(c)),
        }
    }
    if leading && !wild {
        // `**` alone, `**/foo`, `**foo`: a suffix test on what follows.
        let suffix: String = chars.iter().skip(2).collect();
        return match suffix.strip_prefix('/') {
            Some(s) => Kind::Suffix(s.to_string(), true),
            None => Kind::Suffix(suffix, false),
        };
    }
    if trailing && !wild {
        let prefix: String = chars[..chars.len() - 2].iter().collect();
        return Kind::Prefix(prefix);
    }
    if !wild && !leading && !trailing {
        return Kind::Exact;
    }
    Kind::Tokens(toks)
}

/// Compiles `[...]` starting after the `[`. The pattern was validated, so
/// the class is well formed; a reversed range makes the regex invalid.
fn compile_class(chars: &[char], mut i: usize) -> (Tok, usize) {
    let negated = chars.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut bad = false;
    let mut first = true;
    while i < chars.len() {
        if chars[i] == ']' && !first {
            i += 1;
            break;
        }
        first = false;
        let Ok((lo, next)) = class_esc(chars, i) else {
            break;
        };
        i = next;
        let mut hi = lo;
        if chars.get(i) == Some(&'-') {
            if let Ok((h, next)) = class_esc(chars, i + 1) {
                hi = h;
                i = next;
            }
        }
        if hi < lo {
            bad = true;
        }
        ranges.push((lo, hi));
    }
    if bad {
        return (Tok::BadClass, i);
    }
    (Tok::Class { negated, ranges }, i)
}

/// Bottom-up dynamic program: ok[t][p] = tokens t.. match path[p..].
fn run(toks: &[Tok], path: &str) -> Result<bool, PatternError> {
    if toks.contains(&Tok::BadClass) {
        return Err(PatternError::Syntax);
    }
    let s: Vec<char> = path.chars().collect();
    let (m, n) = (toks.len(), s.len());
    let w = n + 1;
    let mut ok = vec![false; (m + 1) * w];
    ok[m * w + n] = true;
    for t in (0..m).rev() {
        for p in (0..=n).rev() {
            let c = s.get(p).copied();
            let adv = |ok: &Vec<bool>, tt: usize| p < n && ok[tt * w + p + 1];
            let v = match &toks[t] {
                Tok::Lit(l) => c == Some(*l) && adv(&ok, t + 1),
                Tok::One => c.is_some_and(|c| c != '/') && adv(&ok, t + 1),
                Tok::Star => ok[(t + 1) * w + p] || (c.is_some_and(|c| c != '/') && adv(&ok, t)),
                Tok::AnyAll => ok[(t + 1) * w + p] || (c.is_some_and(|c| c != '\n') && adv(&ok, t)),
                Tok::OptDirs => ok[(t + 2) * w + p] || ok[(t + 1) * w + p],
                Tok::DirsBody => match c {
                    Some('/') => adv(&ok, t + 1) || adv(&ok, t),
                    Some('\n') | None => false,
                    Some(_) => adv(&ok, t),
                },
                Tok::Class { negated, ranges } => {
                    c.is_some_and(|c| {
                        ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != *negated
                    }) && adv(&ok, t + 1)
                }
                Tok::BadClass => false,
            };
            ok[t * w + p] = v;
        }
    }
    Ok(ok[0])
}
