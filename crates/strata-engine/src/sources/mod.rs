//! Remote ADD sources, fetched into a temporary directory of the store
//! before the layer is written: http(s) downloads and git repositories.

pub mod git;
pub mod http;

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
