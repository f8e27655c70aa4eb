//! Where runc's state and bundles live (a private directory of ours), and
//! whether strata runs rootless.

use super::*;

/// True when strata is not real root: an unprivileged user, or "root" in a
/// user namespace (`unshare --user --map-root-user`, rootless mode).
pub fn is_rootless() -> bool {
    // Asked several times per container; a process does not change user
    // namespace once running, so read /proc once.
    static ROOTLESS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ROOTLESS.get_or_init(|| {
        if rustix::process::geteuid().as_raw() != 0 {
            return true;
        }
        std::fs::read_to_string("/proc/self/uid_map")
            .map(|m| m.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"])
            .unwrap_or(false)
    })
}

/// Where runc state and bundles live: `/run/strata` for real root;
/// rootless, `$XDG_RUNTIME_DIR/strata`, else `/tmp/strata-run-<uid>` with
/// `<uid>` the user's id outside any user namespace. Rootless, the
/// directory is created 0700 if missing and then checked
/// ([`check_private_dir`]): a name in a shared directory like `/tmp` can be
/// created first by someone else, who could then plant links or runc
/// state in it.
pub(crate) fn run_dir() -> Result<PathBuf, Error> {
    if !is_rootless() {
        return Ok(PathBuf::from("/run/strata"));
    }
    let dir = if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        PathBuf::from(d).join("strata")
    } else {
        let euid = rustix::process::geteuid().as_raw();
        // Outside a user namespace (euid not 0) our uid is the outer one;
        // inside, root's line of uid_map names it.
        let outer = if euid != 0 {
            euid.to_string()
        } else {
            std::fs::read_to_string("/proc/self/uid_map")
                .ok()
                .and_then(|m| m.split_whitespace().nth(1).map(String::from))
                .unwrap_or_else(|| euid.to_string())
        };
        std::env::temp_dir().join(format!("strata-run-{outer}"))
    };
    {
        use std::os::unix::fs::DirBuilderExt;
        // Recursive: an existing dir (or a symlink to one) is not an error
        // here; the check below decides.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    }
    check_private_dir(&dir)?;
    Ok(dir)
}

/// Refuses `dir` unless it is a real directory (not a symlink), owned by
/// the current uid, with no group or other permission bits. It is never
/// repaired: whoever else could enter it may already have put something
/// there.
pub(crate) fn check_private_dir(dir: &Path) -> Result<(), Error> {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::symlink_metadata(dir)
        .map_err(|e| Error::io(format!("checking {}", dir.display()), e))?;
    let me = rustix::process::geteuid().as_raw();
    let why = if md.file_type().is_symlink() {
        Some("it is a symbolic link".to_string())
    } else if !md.is_dir() {
        Some("it is not a directory".to_string())
    } else if md.uid() != me {
        Some(format!(
            "it belongs to someone else (uid {} as seen here, where you are uid {me})",
            md.uid()
        ))
    } else if md.mode() & 0o077 != 0 {
        Some(format!(
            "its mode {:04o} lets other users in (strata needs 0700)",
            md.mode() & 0o7777
        ))
    } else {
        None
    };
    match why {
        None => Ok(()),
        Some(why) => Err(Error::io(
            format!("strata's run directory {}", dir.display()),
            std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "{why}; it may have been created by another user to interfere with your \
                     containers: remove it (strata recreates it, mode 0700), or set \
                     XDG_RUNTIME_DIR to a private directory of yours"
                ),
            ),
        )),
    }
}
