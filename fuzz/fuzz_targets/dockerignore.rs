//! `.dockerignore`: the file parser, then the matcher built from it against
//! a handful of paths (including the input's own lines as paths, so the
//! fuzzer can steer both sides). Any panic or hang is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_frontend::{ignore::clean_path, parse_dockerignore, IgnoreMatcher};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // First part: the .dockerignore file; after a NUL: paths to test.
    let (file, paths) = text.split_once('\0').unwrap_or((text, ""));
    let patterns = parse_dockerignore(file);
    let Ok(m) = IgnoreMatcher::new(&patterns) else {
        return;
    };
    let fixed = ["Dockerfile", "a", "a/b/c.txt", ".git/HEAD", "../x", "/abs", ""];
    for p in fixed.iter().copied().chain(paths.split('\0')).chain(file.lines()) {
        let _ = m.matches(p);
        let _ = m.can_skip_dir(p);
        let _ = clean_path(p);
    }
});
