//! Turning an instruction's argument text into the raw argument strings the
//! dump shows: builder flags, JSON (exec) arrays, whitespace splitting,
//! ARG/ENV/LABEL words. No expansion and no quote removal happens here
//! (except inside flags, as BuildKit's `extractBuilderFlags` does).

/// What one instruction's argument text parsed into.
#[derive(Debug, Default)]
pub(crate) struct RawArgs {
    pub args: Vec<String>,
    pub json: bool,
}

/// Why argument text was rejected.
#[derive(Debug)]
pub(crate) enum ArgError {
    /// `[..]` parsed as JSON but holds a non-string.
    NotStringArray,
    /// `ENV`/`LABEL` legacy form with only a key.
    MissingValue(&'static str),
    /// `ENV`/`LABEL` new form with a word that has no `=`.
    NoEquals(String),
}

/// Go's `reWhitespace`: `[\t\v\f\r ]+`.
pub(crate) fn is_split_space(c: char) -> bool {
    matches!(c, '\t' | '\x0b' | '\x0c' | '\r' | ' ')
}

/// Splits `line` (trimmed) into keyword and the rest.
pub(crate) fn split_keyword(line: &str) -> (&str, &str) {
    let line = line.trim();
    match line.find(is_split_space) {
        Some(i) => {
            let (k, rest) = line.split_at(i);
            (k, rest.trim_start_matches(is_split_space))
        }
        None => (line, ""),
    }
}

/// Pulls leading `--flag` words off `line`. Returns the remaining text and
/// the flags with quotes removed and `\` removing itself.
pub(crate) fn extract_flags(line: &str) -> (String, Vec<String>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote(char),
    }
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut blank_ok = false;
    let mut i = 0;
    while i < chars.len() {
        let (pos, ch) = chars[i];
        if phase == Phase::Spaces {
            if ch.is_whitespace() {
                i += 1;
                continue;
            }
            let next_is_dash = chars.get(i + 1).map(|c| c.1) == Some('-');
            if ch != '-' || !next_is_dash {
                return (line[pos..].to_string(), words);
            }
            phase = Phase::Word;
        }
        match phase {
            Phase::Word => {
                if ch.is_whitespace() {
                    phase = Phase::Spaces;
                    if word == "--" {
                        return (line[pos..].to_string(), words);
                    }
                    if blank_ok || !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    word.clear();
                    blank_ok = false;
                } else if ch == '\'' || ch == '"' {
                    phase = Phase::Quote(ch);
                    blank_ok = true;
                } else if ch == '\\' {
                    if let Some(&(_, next)) = chars.get(i + 1) {
                        word.push(next);
                        i += 1;
                    }
                } else {
                    word.push(ch);
                }
            }
            Phase::Quote(q) => {
                if ch == q {
                    phase = Phase::Word;
                } else if ch == '\\' {
                    match chars.get(i + 1) {
                        Some(&(_, next)) => {
                            word.push(next);
                            i += 1;
                        }
                        None => phase = Phase::Word,
                    }
                } else {
                    word.push(ch);
                }
            }
            Phase::Spaces => {}
        }
        i += 1;
    }
    if phase != Phase::Spaces && word != "--" && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    (String::new(), words)
}

/// Splits like a shell but keeps quotes and escapes in the words
/// (BuildKit's `parseWords`, used for ARG, ENV and LABEL).
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut blank_ok = false;
    let mut i = 0;
    while i < chars.len() {
        let ch = chars[i];
        if !in_word {
            if ch.is_whitespace() {
                i += 1;
                continue;
            }
            in_word = true;
        }
        match quote {
            None => {
                if ch.is_whitespace() {
                    in_word = false;
                    if blank_ok || !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    blank_ok = false;
                    i += 1;
                    continue;
                }
                if ch == '\'' || ch == '"' {
                    quote = Some(ch);
                    blank_ok = true;
                }
                if ch == escape {
                    if i + 1 == chars.len() {
                        i += 1;
                        continue;
                    }
                    word.push(ch);
                    i += 1;
                    word.push(chars[i]);
                    i += 1;
                    continue;
                }
                word.push(ch);
            }
            Some(q) => {
                if ch == q {
                    quote = None;
                }
                if ch == escape && q != '\'' {
                    if i + 1 == chars.len() {
                        quote = None;
                        i += 1;
                        continue;
                    }
                    word.push(ch);
                    i += 1;
                    word.push(chars[i]);
                    i += 1;
                    continue;
                }
                word.push(ch);
            }
        }
        i += 1;
    }
    if in_word && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

/// Splits on runs of `[\t\v\f\r ]`.
pub(crate) fn split_whitespace(rest: &str) -> Vec<String> {
    if rest.is_empty() {
        return Vec::new();
    }
    rest.split(is_split_space)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Parses `rest` as a JSON array of strings. `Ok(None)` means "not JSON,
/// use the shell form"; a JSON array with a non-string is an error.
pub(crate) fn parse_json(rest: &str) -> Result<Option<Vec<String>>, ArgError> {
    let t = rest.trim_start();
    if !t.starts_with('[') {
        return Ok(None);
    }
    let Ok(values) = serde_json::from_str::<Vec<serde_json::Value>>(t) else {
        return Ok(None);
    };
    values
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(ArgError::NotStringArray),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn maybe_json(rest: &str) -> Result<RawArgs, ArgError> {
    if rest.is_empty() {
        return Ok(RawArgs::default());
    }
    match parse_json(rest)? {
        Some(args) => Ok(RawArgs { args, json: true }),
        None => Ok(RawArgs {
            args: vec![rest.to_string()],
            json: false,
        }),
    }
}

fn maybe_json_list(rest: &str) -> Result<RawArgs, ArgError> {
    match parse_json(rest)? {
        Some(args) => Ok(RawArgs { args, json: true }),
        None => Ok(RawArgs {
            args: split_whitespace(rest),
            json: false,
        }),
    }
}

fn name_val(rest: &str, key: &'static str, escape: char) -> Result<RawArgs, ArgError> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(RawArgs::default());
    };
    if !first.contains('=') {
        // Legacy `KEY name value`: the value is the rest, verbatim.
        let mut parts = rest.splitn(2, is_split_space);
        let k = parts.next().unwrap_or_default();
        let Some(v) = parts.next() else {
            return Err(ArgError::MissingValue(key));
        };
        let v = v.trim_start_matches(is_split_space);
        return Ok(RawArgs {
            args: vec![k.to_string(), v.to_string(), String::new()],
            json: false,
        });
    }
    let mut args = Vec::new();
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(ArgError::NoEquals(w));
        };
        args.extend([k.to_string(), v.to_string(), "=".to_string()]);
    }
    Ok(RawArgs { args, json: false })
}

fn healthcheck(rest: &str) -> Result<RawArgs, ArgError> {
    let Some(sep) = rest
        .find(char::is_whitespace)
        .or(Some(rest.len()))
        .filter(|&s| s > 0)
    else {
        return Ok(RawArgs::default());
    };
    let (typ, cmd) = rest.split_at(sep);
    let mut out = maybe_json(cmd.trim_start())?;
    out.args.insert(0, typ.to_string());
    Ok(out)
}

/// The per-instruction argument rule (BuildKit's dispatch table). ONBUILD
/// is handled by the caller because it nests a whole instruction.
pub(crate) fn parse_args(
    keyword_lower: &str,
    rest: &str,
    escape: char,
) -> Result<RawArgs, ArgError> {
    match keyword_lower {
        "add" | "copy" | "volume" => maybe_json_list(rest),
        "run" | "cmd" | "entrypoint" | "shell" => maybe_json(rest),
        "from" | "expose" => Ok(RawArgs {
            args: split_whitespace(rest),
            json: false,
        }),
        "arg" => Ok(RawArgs {
            args: parse_words(rest, escape),
            json: false,
        }),
        "env" => name_val(rest, "ENV", escape),
        "label" => name_val(rest, "LABEL", escape),
        "healthcheck" => healthcheck(rest),
        "maintainer" | "user" | "workdir" | "stopsignal" => Ok(RawArgs {
            args: if rest.is_empty() {
                vec![]
            } else {
                vec![rest.to_string()]
            },
            json: false,
        }),
        // Unknown words are accepted here; the typed layer rejects them.
        _ => Ok(RawArgs {
            args: vec![String::new()],
            json: false,
        }),
    }
}
