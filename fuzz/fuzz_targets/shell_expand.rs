//! Word expansion in every lexer mode, and .dockerignore matching of the
//! same input as pattern and path. Any panic or hang is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_frontend::{IgnoreMatcher, Lexer};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env = |n: &str| match n {
        "A" => Some("a b*c".to_string()),
        "E" => Some(String::new()),
        "P" => Some("/x/y/z.txt".to_string()),
        _ => None,
    };
    for escape in ['\\', '`'] {
        for bits in 0..8u8 {
            let mut lex = Lexer::new(escape);
            lex.raw_quotes = bits & 1 != 0;
            lex.raw_escapes = bits & 2 != 0;
            lex.skip_unset = bits & 4 != 0;
            let _ = lex.process(text, &env);
        }
    }
    let (pat, path) = text.split_once('\n').unwrap_or((text, "a/b/c"));
    let pats: Vec<String> = pat.split('|').map(String::from).collect();
    if let Ok(m) = IgnoreMatcher::new(&pats) {
        let _ = m.matches(path);
        let _ = m.can_skip_dir(path);
    }
    let _ = strata_frontend::parse_dockerignore(text);
});
