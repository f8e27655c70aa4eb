//! Heredocs (`<<EOF`, `<<-EOF`, `<<'EOF'`, `3<<EOF`): finding the markers in
//! an instruction line and describing them. Reading the bodies is done by the
//! line loop in `parser::parse`, which owns the line cursor.

use crate::shell::Lexer;
use crate::Error;

/// One heredoc attached to an instruction.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Heredoc {
    /// The terminator word, quotes removed.
    pub name: String,
    /// `N<<EOF` gives `N`; 0 when absent.
    pub file_descriptor: u32,
    /// False when any part of the word was quoted: the body is then taken literally.
    pub expand: bool,
    /// `<<-`: leading TABs are stripped from body lines (see [`chomp`]).
    pub chomp: bool,
    /// The raw body: the lines with their newlines, before chomping or expansion.
    pub content: String,
}

fn no_env(_: &str) -> Option<String> {
    None
}

/// Parses one word as a heredoc marker: `^(\d*)<<(-?)\s*([^<]*)$`.
/// `Ok(None)` when the word is not a heredoc; `Err` for a broken quote.
pub fn parse_heredoc(src: &str) -> Result<Option<Heredoc>, Error> {
    let digits: String = src.chars().take_while(char::is_ascii_digit).collect();
    let Some(rest) = src[digits.len()..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let rest = rest.trim_start_matches(['\t', '\n', '\x0c', '\r', ' ']);
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let fd = if digits.is_empty() {
        0
    } else {
        digits.parse::<u32>().unwrap_or(0)
    };
    let mut lex = Lexer::new('\\');
    lex.skip_unset = true;
    // No variables are looked up here, so nothing grows: no size limit.
    lex.max_bytes = usize::MAX;
    let plain = lex.process(rest, &no_env)?.words;
    if plain.len() != 1 {
        return Ok(None);
    }
    lex.raw_quotes = true;
    let raw = lex.process(rest, &no_env)?.words;
    if raw.len() != 1 {
        return Err(Error::expansion(format!(
            "internal lexing of heredoc produced inconsistent results: {rest}"
        )));
    }
    let quotes = |s: &str| s.chars().filter(|c| *c == '\'' || *c == '"').count();
    let expand = quotes(&plain[0]) == quotes(&raw[0]);
    Ok(Some(Heredoc {
        name: plain[0].clone(),
        file_descriptor: fd,
        expand,
        chomp,
        content: String::new(),
    }))
}

/// The heredoc markers on an instruction line, in order.
pub fn heredocs_from_line(line: &str) -> Result<Vec<Heredoc>, Error> {
    let mut lex = Lexer::new('\\');
    lex.raw_quotes = true;
    lex.raw_escapes = true;
    lex.skip_unset = true;
    lex.max_bytes = usize::MAX;
    // A line the lexer cannot split (an open quote) carries no heredocs.
    let Ok(exp) = lex.process(line, &no_env) else {
        return Ok(Vec::new());
    };
    let mut docs = Vec::new();
    for w in exp.words {
        if let Some(h) = parse_heredoc(&w)? {
            docs.push(h);
        }
    }
    Ok(docs)
}

/// `<<-` bodies: removes all leading TABs (not spaces) from every line.
pub fn chomp(content: &str) -> String {
    content
        .split_inclusive('\n')
        .map(|l| l.trim_start_matches('\t'))
        .collect()
}
