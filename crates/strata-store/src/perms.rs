//! Who may reach the store: its owner only.
//!
//! Layers are unpacked with their setuid bits and file capabilities (they
//! must be, for the images to work), so a snapshot or a container's merged
//! rootfs that another host user can reach is a way to root for that user
//! (Docker's CVE-2021-41091). The store root is therefore `0710` when root
//! owns it (as Docker's `/var/lib/docker`: group root may traverse, nobody
//! else) and `0700` when a user owns it (rootless), and every directory
//! directly inside it is `0700`, every file directly inside it (the db and
//! its WAL) `0600`. Everything deeper is only reachable through those, so
//! image content keeps its own modes. Containers run by root reach their
//! rootfs anyway (root bypasses modes, runc resolves the path before it
//! drops privileges), and a rootless user owns the store.
//!
//! [`secure`] is run on every open, so a store made by an older strata with
//! wide modes is fixed the first time it is used; what it changed is kept
//! for `check` to report.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{IoCtx, Result, StoreError};

/// The mode of a directory directly inside the root.
pub const DIR_MODE: u32 = 0o700;
/// The mode of a file directly inside the root.
pub const FILE_MODE: u32 = 0o600;

/// The mode the root itself gets, by owner (as this process sees it: in
/// strata's user namespace, the rootless user's store is "root's").
pub fn root_mode(owner_uid: u32) -> u32 {
    if owner_uid == 0 && !outer_uid(0).1 {
        0o710
    } else {
        0o700
    }
}

/// One path whose mode let other users in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModeFix {
    /// The path.
    pub path: PathBuf,
    /// The permission bits found.
    pub found: u32,
    /// The permission bits it has (or must have).
    pub wanted: u32,
}

/// Creates `root` (private from birth: no window where it is wide), its
/// parents with the default modes.
pub(crate) fn create_root(root: &Path) -> Result<()> {
    if fs::symlink_metadata(root).is_ok() {
        return Ok(());
    }
    if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).ctx("create directory", parent)?;
    }
    let mode = root_mode(rustix::process::geteuid().as_raw());
    match fs::DirBuilder::new().mode(mode).create(root) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            Err(e).ctx("create directory", root)
        }
        _ => Ok(()),
    }
}

/// Creates a directory inside the root with [`DIR_MODE`] (and its parents
/// inside the root likewise).
pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .ctx("create directory", dir)
}

/// Creates an empty file with [`FILE_MODE`] unless it exists.
pub(crate) fn create_private_file(path: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
    {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e).ctx("create", path),
        _ => Ok(()),
    }
}

/// Refuses a store that belongs to someone other than the current user,
/// before anything touches the db:
///
/// - a user on another's store (root's, usually) could not write it
///   (SQLite would say only "attempt to write a readonly database");
/// - root on a user's store could, but every file it wrote (blobs,
///   snapshots, the db's WAL) would be root's, and the user could then
///   neither remove nor rewrite them: root must run strata as that user.
///
/// "Current user" and "owner" are as this process sees them: in strata's
/// user namespace a rootless user is uid 0 and owns its store as uid 0.
/// Public so the CLI can run it before it enters that namespace, where an
/// owner outside the user's mapping (root) shows as unmapped.
pub fn check_owner(root: &Path) -> Result<()> {
    let md = fs::metadata(root).ctx("stat store root", root)?;
    let me = rustix::process::geteuid().as_raw();
    let owner = md.uid();
    if owner == me {
        return Ok(());
    }
    let (outer_me, in_userns) = outer_uid(me);
    let overflow = std::fs::read_to_string("/proc/sys/kernel/overflowuid")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(65534);
    if me == 0 && !(in_userns && owner == overflow) {
        let name = user_name(owner);
        let as_user = match &name {
            Some(n) => format!("`runuser -u {n} -- strata ...` or `sudo -u {n} strata ...`"),
            None => format!("`setpriv --reuid {owner} --regid {owner} --init-groups strata ...`"),
        };
        let whose = match &name {
            Some(n) => format!("uid {owner} ({n})"),
            None => format!("uid {owner}"),
        };
        return Err(StoreError::Invalid(format!(
            "the store at {} belongs to {whose}, and strata is running as root: files root \
             writes there would belong to root, and their owner could not remove them; run \
             strata as that user ({as_user}), or use root's own store (--root DIR or \
             STRATA_ROOT; by default /var/lib/strata)",
            root.display()
        )));
    }
    let whose = if in_userns && owner == overflow {
        // Unmapped in strata's user namespace: its owner is not this user,
        // and the usual case is root's store.
        "another user (not mapped into strata's user namespace: root, for a store made by \
         root)"
            .to_string()
    } else if owner == 0 {
        "root (uid 0)".to_string()
    } else {
        format!("uid {owner}")
    };
    Err(StoreError::Invalid(format!(
        "the store at {} belongs to {whose}, and you are uid {outer_me}: use a store of your \
         own (--root DIR or STRATA_ROOT; by default an unprivileged user's store is \
         $XDG_DATA_HOME/strata) or run strata as the store's owner",
        root.display()
    )))
}

/// The name of `uid` in /etc/passwd, if it has one.
fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 2 && f[2].parse() == Ok(uid)).then(|| f[0].to_string())
    })
}

/// `me` as seen outside the user namespace (from `/proc/self/uid_map`),
/// and whether this process is in a user namespace other than the initial.
fn outer_uid(me: u32) -> (u32, bool) {
    let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    if map.trim().is_empty() || !crate::mount::is_userns_map(&map) {
        return (me, false);
    }
    for l in map.lines() {
        let f: Vec<u32> = l
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if let [inner, outer, count] = f[..] {
            if me >= inner && me - inner < count {
                return (outer + (me - inner), true);
            }
        }
    }
    (me, true)
}

/// Paths of the store root whose modes let other users in: the root and
/// the entries directly inside it. With `fix`, tightens them (`chmod`;
/// owners unchanged) and returns what it changed.
pub(crate) fn scan(root: &Path, fix: bool) -> Result<Vec<ModeFix>> {
    let mut out = Vec::new();
    let md = fs::symlink_metadata(root).ctx("stat store root", root)?;
    check_one(root, &md, root_mode(md.uid()), fix, &mut out)?;
    for ent in fs::read_dir(root).ctx("list store root", root)? {
        let ent = ent.ctx("list store root", root)?;
        let p = ent.path();
        let Ok(md) = fs::symlink_metadata(&p) else {
            continue; // removed meanwhile
        };
        let wanted = if md.is_dir() {
            DIR_MODE
        } else if md.is_file() {
            // Keep the owner's bits; drop group's and others'.
            md.mode() & 0o7700
        } else {
            continue; // symlinks have no modes of their own
        };
        check_one(&p, &md, wanted, fix, &mut out)?;
    }
    Ok(out)
}

fn check_one(
    path: &Path,
    md: &fs::Metadata,
    wanted: u32,
    fix: bool,
    out: &mut Vec<ModeFix>,
) -> Result<()> {
    let found = md.mode() & 0o7777;
    // Only bits for group/others beyond `wanted` are a problem; a mode
    // tighter than wanted (0700 root) is fine.
    if found & 0o077 & !wanted == 0 {
        return Ok(());
    }
    if fix {
        let mode = (found & 0o7700) | (wanted & 0o077);
        match fs::set_permissions(path, fs::Permissions::from_mode(mode)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            r => r.ctx("restrict permissions of", path)?,
        }
    }
    out.push(ModeFix {
        path: path.to_path_buf(),
        found,
        wanted,
    });
    Ok(())
}

/// [`scan`] with `fix`, for [`crate::Store::open`].
pub(crate) fn secure(root: &Path) -> Result<Vec<ModeFix>> {
    scan(root, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().mode() & 0o7777
    }

    #[test]
    fn wide_root_and_children_are_tightened_and_reported() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("store");
        fs::create_dir_all(root.join("snapshots")).unwrap();
        fs::write(root.join("meta.db"), b"").unwrap();
        for (p, m) in [("", 0o755), ("snapshots", 0o755), ("meta.db", 0o644)] {
            fs::set_permissions(root.join(p), fs::Permissions::from_mode(m)).unwrap();
        }
        let found = scan(&root, false).unwrap();
        assert_eq!(found.len(), 3, "{found:?}");
        assert_eq!(mode(&root), 0o755, "a scan without fix changed a mode");
        let fixed = secure(&root).unwrap();
        assert_eq!(fixed, found);
        let me = rustix::process::geteuid().as_raw();
        assert_eq!(mode(&root), root_mode(me));
        assert_eq!(mode(&root.join("snapshots")), 0o700);
        assert_eq!(mode(&root.join("meta.db")), 0o600);
        assert!(scan(&root, false).unwrap().is_empty());
    }

    #[test]
    fn a_new_root_is_private_from_birth() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("a/b/store");
        create_root(&root).unwrap();
        assert_eq!(mode(&root) & 0o067, 0);
    }
}
