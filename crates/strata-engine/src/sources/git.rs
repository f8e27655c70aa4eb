//! ADD of git repositories through the git client: `URL#REF:SUBDIR`
//! (REF a branch, a tag or a full commit; both parts optional). A branch
//! or tag is cloned with `git clone --depth 1 --branch`, a commit fetched
//! by hash. Without `--keep-git-dir` the `.git` directory is left out.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::SourceError;

/// A parsed git source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitSource {
    /// The repository URL (without the fragment).
    pub repo: String,
    /// The branch, tag or commit after `#`.
    pub reference: Option<String>,
    /// The subdirectory after `:` in the fragment.
    pub subdir: Option<String>,
}

impl GitSource {
    /// Splits `URL#REF:SUBDIR`.
    pub fn parse(url: &str) -> GitSource {
        let (repo, frag) = match url.split_once('#') {
            Some((r, f)) => (r, Some(f)),
            None => (url, None),
        };
        let (reference, subdir) = match frag {
            None => (None, None),
            Some(f) => match f.split_once(':') {
                Some((r, s)) => (non_empty(r), non_empty(s)),
                None => (non_empty(f), None),
            },
        };
        GitSource {
            repo: repo.to_string(),
            reference,
            subdir,
        }
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn is_commit(r: &str) -> bool {
    r.len() == 40 && r.bytes().all(|b| b.is_ascii_hexdigit())
}

fn git(args: &[&str], cwd: Option<&Path>) -> Result<String, SourceError> {
    let mut c = Command::new("git");
    if let Some(d) = cwd {
        c.arg("-C").arg(d);
    }
    // Never prompt for credentials: a build is not interactive.
    c.args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true");
    let out = c
        .output()
        .map_err(|error| SourceError::GitMissing { error })?;
    if !out.status.success() {
        return Err(SourceError::Git {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A checked-out repository.
#[derive(Debug)]
pub struct Checkout {
    /// The directory whose contents ADD copies (the subdir when given).
    pub root: PathBuf,
    /// The commit checked out.
    pub commit: String,
}

/// Clones `src` into `dir` (which must not exist yet).
pub fn fetch(src: &GitSource, dir: &Path, keep_git_dir: bool) -> Result<Checkout, SourceError> {
    let d = dir.to_string_lossy().into_owned();
    match &src.reference {
        Some(r) if is_commit(r) => {
            git(&["init", "-q", &d], None)?;
            git(&["remote", "add", "origin", &src.repo], Some(dir))?;
            git(&["fetch", "-q", "--depth", "1", "origin", r], Some(dir))?;
            git(&["checkout", "-q", "FETCH_HEAD"], Some(dir))?;
        }
        Some(r) => {
            git(
                &["clone", "-q", "--depth", "1", "--branch", r, &src.repo, &d],
                None,
            )?;
        }
        None => {
            git(&["clone", "-q", "--depth", "1", &src.repo, &d], None)?;
        }
    }
    let commit = git(&["rev-parse", "HEAD"], Some(dir))?;
    if !keep_git_dir {
        let git_dir = dir.join(".git");
        std::fs::remove_dir_all(&git_dir).map_err(|source| SourceError::Io {
            path: git_dir,
            source,
        })?;
    }
    let root = match &src.subdir {
        Some(s) => {
            let p = crate::rootfs::resolve_in_root(dir, s, true).map_err(SourceError::Fs)?;
            if !p.is_dir() {
                return Err(SourceError::NoSuchDir {
                    subdir: s.clone(),
                    repo: src.repo.clone(),
                });
            }
            p
        }
        None => dir.to_path_buf(),
    };
    Ok(Checkout { root, commit })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fragments() {
        let g = GitSource::parse("https://h/r.git#v1.0:docs");
        assert_eq!(g.repo, "https://h/r.git");
        assert_eq!(g.reference.as_deref(), Some("v1.0"));
        assert_eq!(g.subdir.as_deref(), Some("docs"));
        let g = GitSource::parse("git://127.0.0.1:1/r.git");
        assert_eq!(g.reference, None);
        let g = GitSource::parse("git@h:r.git#:sub");
        assert_eq!((g.reference, g.subdir.as_deref()), (None, Some("sub")));
    }
}
