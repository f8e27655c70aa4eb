//! Go's `filepath.Match` for one path segment, as Docker matches COPY/ADD
//! source wildcards (`*`, `?`, `[a-z]`, `[^x]`, `\` escapes), and the
//! segment-by-segment expansion of a wildcard path against a directory tree.

use std::io;
use std::path::{Path, PathBuf};

/// True when `s` contains a wildcard character Go's matcher interprets.
pub(crate) fn has_wildcards(s: &str) -> bool {
    s.chars().any(|c| matches!(c, '*' | '?' | '[' | '\\'))
}

/// A malformed pattern (unclosed `[`, trailing `\`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("syntax error in pattern {0:?}")]
pub struct BadPattern(pub String);

/// Matches `name` (one path segment, no `/`) against `pattern` with Go's
/// `filepath.Match` rules.
pub(crate) fn match_segment(pattern: &str, name: &str) -> Result<bool, BadPattern> {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    validate(&p).map_err(|_| BadPattern(pattern.to_string()))?;
    Ok(match_from(&p, 0, &n, 0))
}

fn validate(p: &[char]) -> Result<(), ()> {
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' => {
                if i + 1 >= p.len() {
                    return Err(());
                }
                i += 2;
            }
            '[' => {
                let (_, next) = class_end(p, i).ok_or(())?;
                i = next;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Parses the class starting at `p[i] == '['`; returns (ranges with negation flag, index after `]`).
#[allow(clippy::type_complexity)]
fn class_end(p: &[char], i: usize) -> Option<((bool, Vec<(char, char)>), usize)> {
    let mut j = i + 1;
    let negated = p.get(j) == Some(&'^');
    if negated {
        j += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let c = *p.get(j)?;
        if c == ']' && !first {
            return Some(((negated, ranges), j + 1));
        }
        first = false;
        let (lo, after) = class_char(p, j)?;
        j = after;
        let mut hi = lo;
        if p.get(j) == Some(&'-') && p.get(j + 1).is_some_and(|c| *c != ']') {
            let (h, after) = class_char(p, j + 1)?;
            hi = h;
            j = after;
        }
        ranges.push((lo, hi));
    }
}

fn class_char(p: &[char], j: usize) -> Option<(char, usize)> {
    match *p.get(j)? {
        '\\' => Some((*p.get(j + 1)?, j + 2)),
        '-' | ']' => None,
        c => Some((c, j + 1)),
    }
}

fn match_from(p: &[char], pi: usize, n: &[char], ni: usize) -> bool {
    if pi == p.len() {
        return ni == n.len();
    }
    match p[pi] {
        '*' => {
            // `*` matches any run of characters (never a separator: names
            // are single segments).
            (ni..=n.len()).any(|k| match_from(p, pi + 1, n, k))
        }
        '?' => ni < n.len() && match_from(p, pi + 1, n, ni + 1),
        '[' => {
            let Some(((negated, ranges), next)) = class_end(p, pi) else {
                return false;
            };
            let Some(c) = n.get(ni) else { return false };
            let inside = ranges.iter().any(|(lo, hi)| lo <= c && c <= hi);
            inside != negated && match_from(p, next, n, ni + 1)
        }
        '\\' => n.get(ni) == p.get(pi + 1) && match_from(p, pi + 2, n, ni + 1),
        c => n.get(ni) == Some(&c) && match_from(p, pi + 1, n, ni + 1),
    }
}

/// Expands a relative wildcard path (`src/*.go`, `a/?/b`) under `root`,
/// segment by segment. Returns the matching relative paths (exact names,
/// whatever their bytes), sorted (bytewise, as Go's filepath.Glob). Entries
/// for which `skip(rel)` is true (e.g. `.dockerignore`d; `rel` shown
/// lossily when not UTF-8) are left out. Symlinked directories before a
/// wildcard are followed inside `root`; a wildcard never descends into one.
pub(crate) fn expand(
    root: &Path,
    pattern: &str,
    skip: &dyn Fn(&str) -> bool,
) -> Result<Vec<PathBuf>, GlobError> {
    let mut current = vec![PathBuf::new()];
    let segments: Vec<&str> = pattern
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    for (idx, seg) in segments.iter().enumerate() {
        let last = idx + 1 == segments.len();
        let mut next = Vec::new();
        for base in &current {
            // Symlinked directories on the way are followed inside `root`
            // (never to the host's); a wildcard segment does not descend
            // into a symlink (as filepath.Walk in BuildKit's matcher).
            let dir: PathBuf = if base.as_os_str().is_empty() {
                root.to_path_buf()
            } else {
                match crate::rootfs::resolve_in_root_os(root, base, true) {
                    Ok(d) => d,
                    Err(_) => continue,
                }
            };
            if !has_wildcards(seg) {
                let rel = base.join(seg);
                if std::fs::symlink_metadata(dir.join(seg)).is_ok() && !skip(&rel.to_string_lossy())
                {
                    next.push(rel);
                }
                continue;
            }
            let meta = match std::fs::symlink_metadata(&dir) {
                Ok(m) => m,
                Err(_) => continue,
            };
            if !meta.is_dir() {
                continue;
            }
            let mut names = Vec::new();
            for entry in std::fs::read_dir(&dir).map_err(|e| GlobError::Io(dir.clone(), e))? {
                let entry = entry.map_err(|e| GlobError::Io(dir.clone(), e))?;
                let name = entry.file_name();
                if match_segment(seg, &name.to_string_lossy()).map_err(GlobError::Pattern)? {
                    names.push(name);
                }
            }
            names.sort();
            for name in names {
                let rel = base.join(&name);
                if skip(&rel.to_string_lossy()) {
                    continue;
                }
                if !last && !std::fs::symlink_metadata(dir.join(&name)).is_ok_and(|m| m.is_dir()) {
                    continue;
                }
                next.push(rel);
            }
        }
        current = next;
    }
    current.retain(|r| !r.as_os_str().is_empty());
    Ok(current)
}

#[derive(Debug, thiserror::Error)]
/// Why a wildcard could not be expanded.
pub enum GlobError {
    #[error(transparent)]
    /// The pattern is malformed.
    Pattern(#[from] BadPattern),
    #[error("reading {}", .0.display())]
    /// A directory could not be read.
    Io(PathBuf, #[source] io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_match_rules() {
        let cases = [
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*/b", "abc/b", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^b-d]", "abe", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a?b", "a☺b", true),
            ("a[^a]b", "a☺b", true),
            ("*.go", "main.go", true),
            ("*.go", "main.c", false),
            ("[\\-]", "-", true),
            ("[x\\-]", "z", false),
        ];
        for (p, n, want) in cases {
            assert_eq!(match_segment(p, n).unwrap(), want, "{p} vs {n}");
        }
        for bad in ["[", "[^", "a\\", "[a-", "[]a]", "[-]"] {
            assert!(match_segment(bad, "a").is_err(), "{bad}");
        }
    }

    #[test]
    fn expands_per_segment() {
        let d = tempfile::tempdir().unwrap();
        for f in ["a/x.go", "a/y.txt", "b/z.go", "c.go"] {
            let p = d.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        }
        let none = |_: &str| false;
        let expand = |root: &Path, p: &str, skip: &dyn Fn(&str) -> bool| {
            expand(root, p, skip).map(|v| {
                v.into_iter()
                    .map(|p| p.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(
            expand(d.path(), "*/*.go", &none).unwrap(),
            vec!["a/x.go", "b/z.go"]
        );
        assert_eq!(expand(d.path(), "*.go", &none).unwrap(), vec!["c.go"]);
        assert_eq!(expand(d.path(), "?", &none).unwrap(), vec!["a", "b"]);
        assert!(expand(d.path(), "nope*", &none).unwrap().is_empty());
        let skip_b = |r: &str| r.starts_with('b');
        assert_eq!(expand(d.path(), "*/*.go", &skip_b).unwrap(), vec!["a/x.go"]);
    }
}
