//! Remote ADD sources, fetched into a temporary directory of the store
//! before the layer is written: http(s) downloads and git repositories.

use std::path::PathBuf;

pub mod git;
pub mod http;

/// Why a remote source could not be fetched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The download failed.
    #[error("downloading {url}")]
    Download {
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A downloaded or cloned file could not be written.
    #[error("{}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `--checksum` names another algorithm than sha256.
    #[error("--checksum={0}: only sha256 checksums are supported (--checksum=sha256:<hex>)")]
    UnsupportedChecksum(String),
    /// The content is not what `--checksum` says.
    #[error(
        "checksum mismatch for {what}: expected {want}, got {got}: fix --checksum or the source"
    )]
    ChecksumMismatch {
        /// The source.
        what: String,
        /// The expected digest.
        want: String,
        /// The actual one.
        got: String,
    },
    /// git is not installed (the cause is part of the advice).
    #[error("cannot run git ({error}): install it (apt-get install git) to ADD git repositories")]
    GitMissing {
        /// Why it could not be run.
        error: std::io::Error,
    },
    /// A git command failed.
    #[error("git {args} failed: {stderr}")]
    Git {
        /// Its arguments.
        args: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// A path of the clone could not be resolved.
    #[error(transparent)]
    Fs(std::io::Error),
    /// The fragment's subdirectory is not in the repository.
    #[error("{subdir}: no such directory in {repo}")]
    NoSuchDir {
        /// The subdirectory.
        subdir: String,
        /// The repository.
        repo: String,
    },
    /// An ADD of a git repository failed.
    #[error("ADD {url}")]
    Add {
        /// The repository.
        url: String,
        /// Why.
        #[source]
        source: Box<SourceError>,
    },
    /// The commit checked out is not the one `--checksum` names.
    #[error("checksum mismatch for {url}: expected commit {want}, got {got}")]
    CommitMismatch {
        /// The repository.
        url: String,
        /// The commit asked for.
        want: String,
        /// The commit checked out.
        got: String,
    },
}

/// True for the sources ADD treats as git repositories: `git://`,
/// `git@host:path`, `ssh://`, and http(s) URLs whose path ends in `.git`
/// (before any `#ref`), as BuildKit.
pub fn is_git_url(s: &str) -> bool {
    if s.starts_with("git://") || s.starts_with("git@") || s.starts_with("ssh://") {
        return true;
    }
    if s.starts_with("http://") || s.starts_with("https://") {
        let path = s.split('#').next().unwrap_or(s);
        return path.ends_with(".git") || path.ends_with(".git/");
    }
    false
}

/// True for an http(s) URL that is not a git repository.
pub fn is_http_url(s: &str) -> bool {
    (s.starts_with("http://") || s.starts_with("https://")) && !is_git_url(s)
}

/// True for any source ADD fetches instead of reading the context.
pub fn is_remote(s: &str) -> bool {
    is_git_url(s) || is_http_url(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert!(is_git_url("https://github.com/a/b.git#main"));
        assert!(is_git_url("git@github.com:a/b.git"));
        assert!(is_git_url("git://127.0.0.1:9418/repo.git"));
        assert!(!is_git_url("https://example.com/file.tar.gz"));
        assert!(is_http_url("http://127.0.0.1:8080/x.txt"));
        assert!(!is_remote("src/main.go"));
    }
}
