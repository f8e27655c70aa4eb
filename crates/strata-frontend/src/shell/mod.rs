//! Shell-word expansion with BuildKit's rules (its `shell.Lex`): `$v`,
//! `${v}`, `${v:-w}` `${v-w}` `${v:+w}` `${v+w}` `${v:?m}` `${v?m}`, the
//! pattern operators `# ## % %% / //`, single and double quotes, the escape
//! character, and word splitting. This is what the builder applies to
//! instruction words; RUN/CMD/ENTRYPOINT shell forms never come here (the
//! container's shell expands those).

mod glob;

use std::collections::BTreeSet;

use crate::Error;
use glob::Glob;

/// The most bytes one expansion may produce (one instruction word, one
/// ENV/ARG/LABEL value, one `--mount` spec): 1 MiB. BuildKit sets no such
/// bound (Go's allocator aborts instead); a real word is a few hundred
/// bytes, and doubling tricks (`ENV A=$A$A` repeated) reach it in about
/// twenty steps instead of asking for gigabytes.
pub const MAX_WORD_BYTES: usize = 1 << 20;

/// The most bytes one heredoc body may expand to: 16 MiB (bodies are whole
/// files written by `COPY <<EOF`; BuildKit's own Dockerfile limit is in the
/// same range).
pub const MAX_HEREDOC_BYTES: usize = 16 << 20;

/// The deepest `${...}` nesting accepted (`${a:-${b:-${c}}}` is 3 levels):
/// 64. The expander recurses per level; deeper input (10,000 levels
/// overflowed the stack) gets an error instead.
pub const MAX_NESTING: usize = 64;

/// A variable lookup: `Some(value)` when set (possibly empty), `None` when unset.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Lexer options. The defaults are what instruction words use.
#[derive(Debug, Clone, Copy)]
pub struct Lexer {
    /// The escape character (`\`, or `` ` `` with `# escape=``).
    pub escape: char,
    /// Keep quote characters in the output (used to find heredoc markers).
    pub raw_quotes: bool,
    /// Keep escape characters in the output.
    pub raw_escapes: bool,
    /// Leave `$VAR` of unset variables as written instead of making it empty
    /// (the "expand as far as is known" mode).
    pub skip_unset: bool,
    /// Quotes are plain characters (BuildKit's `SkipProcessQuotes`): `$`
    /// expands inside `'...'` too. Used for the bodies of unquoted heredocs,
    /// which are file contents, not shell words.
    pub skip_quotes: bool,
    /// The most bytes the result may hold ([`MAX_WORD_BYTES`] by default);
    /// more is an error, never an unbounded allocation.
    pub max_bytes: usize,
}

impl Lexer {
    /// A lexer with `escape` as the escape character and the default limits.
    pub fn new(escape: char) -> Self {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset: false,
            skip_quotes: false,
            max_bytes: MAX_WORD_BYTES,
        }
    }
}

/// `n` bytes as the limits are written (`1 MiB`, `512 KiB`, `100 bytes`).
pub fn human_bytes(n: usize) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

/// The start of `input` for messages (at most 60 characters).
fn excerpt(input: &str) -> String {
    let mut it = input.chars();
    let head: String = it.by_ref().take(60).collect();
    if it.next().is_some() {
        format!("{head}...")
    } else {
        head
    }
}

/// The result of processing one input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expansion {
    /// Single-word result (no splitting, inner whitespace kept).
    pub word: String,
    /// Split result (unquoted whitespace, including from unquoted expansions, splits).
    pub words: Vec<String>,
    /// Variables looked up that were set.
    pub matched: BTreeSet<String>,
    /// Variables looked up that were unset.
    pub unmatched: BTreeSet<String>,
}

/// Expands one word (quotes removed, no splitting).
pub fn expand_word(word: &str, env: EnvLookup<'_>, escape: char) -> Result<String, Error> {
    Lexer::new(escape).process(word, env).map(|e| e.word)
}

/// Expands and splits into words (unquoted whitespace separates words).
pub fn expand_words(word: &str, env: EnvLookup<'_>, escape: char) -> Result<Vec<String>, Error> {
    Lexer::new(escape).process(word, env).map(|e| e.words)
}

impl Lexer {
    /// Processes `input`, returning both the single-word and the split form
    /// and which variables were consulted.
    pub fn process(&self, input: &str, env: EnvLookup<'_>) -> Result<Expansion, Error> {
        let mut sw = ShellWord {
            chars: input.chars().collect(),
            pos: 0,
            env,
            opts: *self,
            raw_escapes: self.raw_escapes,
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
            depth: 0,
        };
        let (word, words) = sw.process_stop_on(None, self.raw_escapes).map_err(|e| {
            Error::expansion(format!("failed to process {:?}: {e}", excerpt(input)))
        })?;
        Ok(Expansion {
            word,
            words,
            matched: sw.matched,
            unmatched: sw.unmatched,
        })
    }
}

struct ShellWord<'a> {
    chars: Vec<char>,
    pos: usize,
    env: EnvLookup<'a>,
    opts: Lexer,
    raw_escapes: bool,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
    /// `${` levels open now (bounded by [`MAX_NESTING`]).
    depth: usize,
}

/// Accumulates split words (BuildKit's `wordsStruct`).
#[derive(Default)]
struct Words {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() && self.in_word && !self.heredoc_marker_pending() {
            if !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else if !ch.is_whitespace() || self.heredoc_marker_pending() {
            self.add_raw_char(ch);
        }
    }

    /// `<<` (or `<<-`) followed by blanks stays one word with what follows,
    /// so `RUN <<  EOF` still names a heredoc.
    fn heredoc_marker_pending(&self) -> bool {
        let t = self.word.trim_end();
        let t = t.strip_suffix('-').unwrap_or(t);
        !self.word.is_empty() && t.ends_with("<<")
    }

    fn add_raw_char(&mut self, ch: char) {
        self.word.push(ch);
        self.in_word = true;
    }

    fn add_string(&mut self, s: &str) {
        for c in s.chars() {
            self.add_char(c);
        }
    }

    fn add_raw_string(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(std::mem::take(&mut self.word));
        }
        self.words
    }
}

type R<T> = Result<T, WordError>;

/// Why a word cannot be expanded (BuildKit's wording; [`Lexer::process`]
/// prefixes the word).
#[derive(Debug, thiserror::Error)]
enum WordError {
    #[error(
        "the expanded text is larger than {} (the limit for one word or value)",
        human_bytes(*.0)
    )]
    TooBig(usize),
    #[error("unexpected end of statement while looking for matching {0}")]
    Unclosed(char),
    #[error("unexpected end of statement while looking for matching single-quote")]
    UnclosedSingleQuote,
    #[error("unexpected end of statement while looking for matching double-quote")]
    UnclosedDoubleQuote,
    #[error("${{...}} nested more than {MAX_NESTING} levels deep")]
    TooDeep,
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    #[error("unsupported modifier ({0}) in substitution")]
    UnsupportedModifier(String),
    #[error("syntax error: missing '/' in ${{}}")]
    MissingSlash,
    /// `${name?message}` / `${name:?message}` with the variable unset (or empty).
    #[error("{name}: {message}")]
    Required { name: String, message: String },
    #[error(transparent)]
    Pattern(#[from] Error),
}

impl ShellWord<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn get_env(&mut self, name: &str) -> Option<String> {
        match (self.env)(name) {
            Some(v) => {
                self.matched.insert(name.to_string());
                Some(v)
            }
            None => {
                self.unmatched.insert(name.to_string());
                None
            }
        }
    }

    fn process_stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> R<(String, Vec<String>)> {
        let saved = self.raw_escapes;
        self.raw_escapes = raw_escapes;
        let r = self.stop_on_inner(stop);
        self.raw_escapes = saved;
        r
    }

    fn too_big(&self, len: usize) -> R<()> {
        if len > self.opts.max_bytes {
            return Err(WordError::TooBig(self.opts.max_bytes));
        }
        Ok(())
    }

    fn stop_on_inner(&mut self, stop: Option<char>) -> R<(String, Vec<String>)> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            self.too_big(result.len())?;
            if Some(ch) == stop {
                self.next();
                return Ok((result, words.finish()));
            }
            match ch {
                '$' => {
                    let tmp = self.process_dollar()?;
                    result.push_str(&tmp);
                    words.add_string(&tmp);
                }
                '\'' if !self.opts.skip_quotes => {
                    let tmp = self.process_single_quote()?;
                    result.push_str(&tmp);
                    words.add_raw_string(&tmp);
                }
                '"' if !self.opts.skip_quotes => {
                    let tmp = self.process_double_quote()?;
                    result.push_str(&tmp);
                    words.add_raw_string(&tmp);
                }
                _ => {
                    self.next();
                    if ch == self.opts.escape {
                        if self.raw_escapes {
                            words.add_raw_char(ch);
                            result.push(ch);
                        }
                        // The escape character escapes, except at the end.
                        let Some(escaped) = self.next() else { break };
                        words.add_raw_char(escaped);
                        result.push(escaped);
                    } else {
                        words.add_char(ch);
                        result.push(ch);
                    }
                }
            }
        }
        if let Some(stop) = stop {
            return Err(WordError::Unclosed(stop));
        }
        self.too_big(result.len())?;
        Ok((result, words.finish()))
    }

    fn process_single_quote(&mut self) -> R<String> {
        let mut result = String::new();
        let open = self.next();
        if self.opts.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.next() {
                None => return Err(WordError::UnclosedSingleQuote),
                Some('\'') => {
                    if self.opts.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(c) => result.push(c),
            }
        }
    }

    fn process_double_quote(&mut self) -> R<String> {
        let mut result = String::new();
        let open = self.next();
        if self.opts.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.peek() {
                None => return Err(WordError::UnclosedDoubleQuote),
                Some('"') => {
                    self.next();
                    if self.opts.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let v = self.process_dollar()?;
                    result.push_str(&v);
                    self.too_big(result.len())?;
                }
                Some(ch) => {
                    self.next();
                    if ch == self.opts.escape {
                        if self.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            // A lone escape at the very end: the loop reports the missing quote.
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == self.opts.escape => {
                                self.next();
                                result.push(n);
                            }
                            Some(_) => {
                                // Not an escapable character: the escape stays literal.
                                if !self.raw_escapes {
                                    result.push(ch);
                                }
                            }
                        }
                    } else {
                        result.push(ch);
                    }
                }
            }
        }
    }

    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    self.next();
                    name.push(d);
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return ch.to_string();
            }
            if !ch.is_alphanumeric() && ch != '_' {
                break;
            }
            self.next();
            name.push(ch);
        }
        name
    }

    fn process_dollar(&mut self) -> R<String> {
        self.next(); // the '$'
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.get_env(&name) {
                Some(v) => v,
                None if self.opts.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.next(); // the '{'
        if self.depth >= MAX_NESTING {
            return Err(WordError::TooDeep);
        }
        self.depth += 1;
        let r = self.braced();
        self.depth -= 1;
        r
    }

    /// `${...}` after the `{`.
    fn braced(&mut self) -> R<String> {
        match self.peek() {
            None => return Err(WordError::MissingBrace),
            Some('{' | '}' | ':') => return Err(WordError::BadSubstitution),
            _ => {}
        }
        let name = self.process_name();
        let Some(mut ch) = self.next() else {
            return Err(WordError::MissingBrace);
        };
        let mut chs = ch.to_string();
        let mut null_is_unset = false;
        match ch {
            '}' => {
                return Ok(match self.get_env(&name) {
                    Some(v) => v,
                    None if self.opts.skip_unset => format!("${{{name}}}"),
                    None => String::new(),
                })
            }
            '/' => return self.process_replace(&name),
            ':' => {
                null_is_unset = true;
                let Some(n) = self.next() else {
                    return Err(WordError::MissingBrace);
                };
                ch = n;
                chs.push(n);
            }
            '+' | '-' | '?' | '#' | '%' => {}
            _ => return Err(WordError::UnsupportedModifier(chs)),
        }
        let raw = ch == '#' || ch == '%';
        if null_is_unset && raw {
            return Err(WordError::UnsupportedModifier(chs));
        }
        let word = match self.process_stop_on(Some('}'), raw) {
            Ok((w, _)) => w,
            Err(e) if self.peek().is_none() => {
                let _ = e;
                return Err(WordError::MissingBrace);
            }
            Err(e) => return Err(e),
        };
        let value = self.get_env(&name);
        if self.opts.skip_unset && value.is_none() {
            return Ok(format!("${{{name}{chs}{word}}}"));
        }
        let empty = value
            .as_deref()
            .is_none_or(|v| null_is_unset && v.is_empty());
        match ch {
            '-' => Ok(if empty {
                word
            } else {
                value.unwrap_or_default()
            }),
            '+' => Ok(if empty { String::new() } else { word }),
            '?' => match value {
                None => Err(WordError::Required {
                    name,
                    message: if word.is_empty() {
                        "is not allowed to be unset".to_string()
                    } else {
                        word
                    },
                }),
                Some(v) if null_is_unset && v.is_empty() => Err(WordError::Required {
                    name,
                    message: if word.is_empty() {
                        "is not allowed to be empty".to_string()
                    } else {
                        word
                    },
                }),
                Some(v) => Ok(v),
            },
            '#' | '%' => {
                let value = value.unwrap_or_default();
                let (greedy, pat) = match word.strip_prefix(ch) {
                    Some(p) => (true, p),
                    None => (false, word.as_str()),
                };
                let glob = Glob::compile(pat)?;
                let v: Vec<char> = value.chars().collect();
                Ok(if ch == '#' {
                    match glob.prefix_len(&v, greedy) {
                        Some(n) => v[n..].iter().collect(),
                        None => value,
                    }
                } else {
                    match glob.suffix_start(&v, greedy) {
                        Some(s) => v[..s].iter().collect(),
                        None => value,
                    }
                })
            }
            _ => Err(WordError::UnsupportedModifier(chs)),
        }
    }

    fn process_replace(&mut self, name: &str) -> R<String> {
        let all = self.peek() == Some('/');
        if all {
            self.next();
        }
        let pattern = match self.process_stop_on(Some('/'), true) {
            Ok((p, _)) => p,
            Err(_) if self.peek().is_none() => return Err(WordError::MissingSlash),
            Err(e) => return Err(e),
        };
        let replacement = match self.process_stop_on(Some('}'), true) {
            Ok((r, _)) => r,
            Err(_) if self.peek().is_none() => return Err(WordError::MissingBrace),
            Err(e) => return Err(e),
        };
        let value = self.get_env(name);
        let Some(value) = value else {
            if self.opts.skip_unset {
                return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
            }
            return Ok(String::new());
        };
        let glob = Glob::compile(&pattern)?;
        let v: Vec<char> = value.chars().collect();
        let mut out = String::new();
        let mut pos = 0;
        let starts = glob.match_starts(&v);
        while let Some((s, e)) = glob.find(&v, pos, &starts) {
            out.extend(&v[pos..s]);
            out.push_str(&replacement);
            self.too_big(out.len())?;
            if !all {
                pos = e;
                break;
            }
            if e == s {
                // Empty match: keep one character and move on.
                if let Some(c) = v.get(s) {
                    out.push(*c);
                }
                pos = s + 1;
                if pos > v.len() {
                    break;
                }
            } else {
                pos = e;
            }
        }
        if pos <= v.len() {
            out.extend(&v[pos..]);
        }
        Ok(out)
    }
}
