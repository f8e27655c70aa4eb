//! `.dockerignore` with Docker's semantics (moby/patternmatcher): Go
//! `filepath.Match` syntax plus `**`, `!` exclusions, last match wins,
//! cleaned patterns, parent-aware matching. The matcher is pure; only
//! [`load`] reads a file.

mod pattern;

use std::path::Path;

use crate::Error;
pub use pattern::PatternError;
use pattern::{validate, Pattern};

/// Go's `path.Clean` (lexical: collapse `//`, drop `.`, resolve `..`, no trailing `/`).
pub fn clean_path(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|s| *s != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            s => out.push(s),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Reads `.dockerignore` text into patterns (moby's `ignorefile.ReadAll`):
/// BOM dropped, `#` lines skipped, lines trimmed, blank lines skipped,
/// `!` split off and the rest trimmed, paths cleaned, one leading `/` removed.
pub fn parse_dockerignore(text: &str) -> Vec<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let mut p = line.trim();
        if p.is_empty() {
            continue;
        }
        let invert = p.starts_with('!');
        if invert {
            p = p[1..].trim();
        }
        let mut pat = String::new();
        if !p.is_empty() {
            pat = clean_path(p);
            if pat.len() > 1 && pat.starts_with('/') {
                pat.remove(0);
            }
        }
        out.push(if invert { format!("!{pat}") } else { pat });
    }
    out
}

/// Which ignore file to use for a Dockerfile: `<Dockerfile-name>.dockerignore`
/// beside the Dockerfile wins over the context root's `.dockerignore`.
/// `exists` answers for a candidate path; the helper itself touches nothing.
pub fn choose_ignore_file(
    dockerfile: &Path,
    context: &Path,
    exists: &dyn Fn(&Path) -> bool,
) -> Option<std::path::PathBuf> {
    if let Some(name) = dockerfile.file_name() {
        let mut n = name.to_os_string();
        n.push(".dockerignore");
        let beside = dockerfile.with_file_name(n);
        if exists(&beside) {
            return Some(beside);
        }
    }
    let root = context.join(".dockerignore");
    exists(&root).then_some(root)
}

/// Reads and parses the ignore file chosen by [`choose_ignore_file`];
/// no file gives no patterns. The only function here that reads the disk.
///
/// The ignore file must be a regular file (or a symlink to one): anything
/// else that exists under that name (a FIFO, a device, a directory) is
/// refused, never skipped (skipping would send what it excludes) and never
/// read (the open is `O_NONBLOCK` and the type is checked on the open
/// file, so a FIFO nobody writes to cannot hang the build).
pub fn load(dockerfile: &Path, context: &Path) -> Result<Vec<String>, Error> {
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let Some(path) = choose_ignore_file(dockerfile, context, &|p| p.metadata().is_ok()) else {
        return Ok(Vec::new());
    };
    let err = |message: String| Error::Io {
        path: path.display().to_string(),
        message,
    };
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(&path)
        .map_err(|e| err(e.to_string()))?;
    let ft = f.metadata().map_err(|e| err(e.to_string()))?.file_type();
    if !ft.is_file() {
        let kind = if ft.is_fifo() {
            "a FIFO (named pipe)"
        } else if ft.is_dir() {
            "a directory"
        } else if ft.is_char_device() || ft.is_block_device() {
            "a device"
        } else {
            "a special file"
        };
        return Err(err(format!(
            "is {kind}, not a regular file: strata reads ignore files only from regular files"
        )));
    }
    let mut text = String::new();
    f.read_to_string(&mut text)
        .map_err(|e| err(e.to_string()))?;
    Ok(parse_dockerignore(&text))
}

/// A compiled pattern list.
#[derive(Debug, Clone)]
pub struct IgnoreMatcher {
    patterns: Vec<Pattern>,
    exclusions: bool,
}

impl IgnoreMatcher {
    /// Compiles patterns: each is trimmed, empty ones dropped, cleaned; a
    /// leading `!` makes an exclusion; a lone `!` or bad syntax is an error.
    pub fn new(patterns: &[String]) -> Result<Self, Error> {
        let mut out = Vec::new();
        let mut exclusions = false;
        for raw in patterns {
            let p = raw.trim();
            if p.is_empty() {
                continue;
            }
            let p = clean_path(p);
            let (exclusion, body) = match p.strip_prefix('!') {
                Some("") => {
                    return Err(Error::IgnorePattern {
                        pattern: raw.clone(),
                        reason: PatternError::EmptyExclusion,
                    })
                }
                Some(b) => (true, b.to_string()),
                None => (false, p),
            };
            validate(&body).map_err(|reason| Error::IgnorePattern {
                pattern: raw.clone(),
                reason,
            })?;
            exclusions |= exclusion;
            out.push(Pattern::new(body, exclusion));
        }
        Ok(IgnoreMatcher {
            patterns: out,
            exclusions,
        })
    }

    /// Number of compiled patterns.
    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    /// No patterns at all.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether any pattern is an exclusion (`!`).
    pub fn has_exclusions(&self) -> bool {
        self.exclusions
    }

    /// Whether `rel_path` (relative to the context, `/`-separated) is
    /// ignored: `MatchesOrParentMatches`, the last applicable pattern wins,
    /// and a pattern matching a parent directory matches the path.
    pub fn matches(&self, rel_path: &str) -> Result<bool, Error> {
        let parent = dir_of(rel_path);
        let parent_dirs: Vec<&str> = parent.split('/').collect();
        let mut matched = false;
        for p in &self.patterns {
            if p.exclusion != matched {
                continue;
            }
            let mut hit = p.matches(rel_path).map_err(|reason| Error::IgnorePattern {
                pattern: p.cleaned.clone(),
                reason: PatternError::WhileMatching(Box::new(reason)),
            })?;
            if !hit && parent != "." {
                for i in 0..parent_dirs.len() {
                    if p.matches(&parent_dirs[..=i].join("/")).unwrap_or(false) {
                        hit = true;
                        break;
                    }
                }
            }
            if hit {
                matched = !p.exclusion;
            }
        }
        Ok(matched)
    }

    /// Whether the context walker may skip the directory `rel_dir` without
    /// looking inside: it is ignored, and no exclusion pattern could
    /// re-include anything under it. Conservative: `false` when unsure.
    pub fn can_skip_dir(&self, rel_dir: &str) -> bool {
        if !self.matches(rel_dir).unwrap_or(false) {
            return false;
        }
        if !self.exclusions {
            return true;
        }
        let dir = clean_path(rel_dir);
        let dir_segs: Vec<&str> = if dir == "." {
            vec![]
        } else {
            dir.split('/').collect()
        };
        !self
            .patterns
            .iter()
            .filter(|p| p.exclusion)
            .any(|p| could_match_below(&p.cleaned, &dir_segs))
    }
}

/// Could `pattern` match some path strictly below the directory `dir`?
fn could_match_below(pattern: &str, dir: &[&str]) -> bool {
    let segs: Vec<&str> = pattern.split('/').collect();
    for (i, d) in dir.iter().enumerate() {
        let Some(seg) = segs.get(i) else {
            // The pattern names an ancestor of the directory (or the
            // directory itself), so it re-includes everything below.
            return true;
        };
        if seg.contains("**") {
            return true;
        }
        let one = Pattern::new((*seg).to_string(), false);
        if !one.matches(d).unwrap_or(true) {
            return false;
        }
    }
    true
}

/// Go's `filepath.Dir` for `/` paths.
fn dir_of(p: &str) -> String {
    match p.rfind('/') {
        Some(i) => clean_path(&p[..=i]),
        None => ".".into(),
    }
}
