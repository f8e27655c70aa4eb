//! Reading a stage's root filesystem from the host: path resolution that
//! treats the rootfs directory as `/` (symlinks, absolute or relative, and
//! `..` never leave it), as `openat2(RESOLVE_IN_ROOT)` would.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Symlink hops allowed while resolving one path (Linux's limit).
const MAX_HOPS: usize = 40;

/// Resolves `path` (absolute in the container's view) inside `root` and
/// returns the host path. Every symlink met on the way is followed within
/// the root; the last component too when `follow_last`. Missing components
/// are allowed (the result may not exist); a non-directory in the middle is
/// `NotADirectory`.
pub(crate) fn resolve_in_root(root: &Path, path: &str, follow_last: bool) -> io::Result<PathBuf> {
    resolve_in_root_os(root, Path::new(path), follow_last)
}

/// [`resolve_in_root`] for a path of any bytes (names that are not UTF-8).
pub(crate) fn resolve_in_root_os(
    root: &Path,
    path: &Path,
    follow_last: bool,
) -> io::Result<PathBuf> {
    let mut pending: Vec<OsString> = components(path.as_os_str()).into_iter().rev().collect();
    let mut resolved: Vec<OsString> = Vec::new();
    let mut hops = 0;
    while let Some(comp) = pending.pop() {
        match comp.as_bytes() {
            b"." => continue,
            b".." => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        let host = host_path(root, &resolved).join(&comp);
        let is_last = pending.is_empty();
        match fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() && (!is_last || follow_last) => {
                hops += 1;
                if hops > MAX_HOPS {
                    return Err(io::Error::other(format!(
                        "too many levels of symbolic links resolving {}",
                        path.display()
                    )));
                }
                let target = fs::read_link(&host)?;
                if target.as_os_str().as_bytes().starts_with(b"/") {
                    resolved.clear();
                }
                for c in components(target.as_os_str()).into_iter().rev() {
                    pending.push(c);
                }
            }
            Ok(m) if !is_last && !m.is_dir() && !m.file_type().is_symlink() => {
                return Err(io::Error::new(
                    io::ErrorKind::NotADirectory,
                    format!("{}: a component is not a directory", path.display()),
                ));
            }
            _ => resolved.push(comp),
        }
    }
    Ok(host_path(root, &resolved))
}

fn components(p: &OsStr) -> Vec<OsString> {
    p.as_bytes()
        .split(|b| *b == b'/')
        .filter(|c| !c.is_empty())
        .map(|c| OsStr::from_bytes(c).to_os_string())
        .collect()
}

fn host_path(root: &Path, comps: &[OsString]) -> PathBuf {
    let mut p = root.to_path_buf();
    for c in comps {
        p.push(c);
    }
    p
}

/// The container path of a host path under `root` (`/` for the root).
pub(crate) fn container_path(root: &Path, host: &Path) -> String {
    match host.strip_prefix(root) {
        Ok(rel) if rel.as_os_str().is_empty() => "/".into(),
        Ok(rel) => format!("/{}", rel.to_string_lossy()),
        Err(_) => host.to_string_lossy().into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_stay_inside() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs::create_dir_all(r.join("usr/bin")).unwrap();
        fs::write(r.join("usr/bin/app"), "x").unwrap();
        symlink("/", r.join("rootlink")).unwrap();
        symlink("../../..", r.join("usr/bin/up")).unwrap();
        symlink("/usr/bin", r.join("bin")).unwrap();
        symlink("app", r.join("usr/bin/alias")).unwrap();
        assert_eq!(resolve_in_root(r, "/rootlink", true).unwrap(), r);
        assert_eq!(
            resolve_in_root(r, "/usr/bin/up/etc", true).unwrap(),
            r.join("etc")
        );
        assert_eq!(
            resolve_in_root(r, "/bin/app", true).unwrap(),
            r.join("usr/bin/app")
        );
        assert_eq!(
            resolve_in_root(r, "/bin/alias", true).unwrap(),
            r.join("usr/bin/app")
        );
        assert_eq!(
            resolve_in_root(r, "/bin/alias", false).unwrap(),
            r.join("usr/bin/alias")
        );
        assert_eq!(resolve_in_root(r, "/../../x", true).unwrap(), r.join("x"));
        assert!(resolve_in_root(r, "/usr/bin/app/x", true).is_err());
        assert_eq!(container_path(r, &r.join("usr/bin")), "/usr/bin");
    }
}
