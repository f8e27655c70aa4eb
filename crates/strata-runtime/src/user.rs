//! Resolving a Dockerfile/CLI user string (`USER`, `-u`) to numeric ids by
//! reading the rootfs' `/etc/passwd` and `/etc/group`, with Docker's rules
//! (moby/sys/user `GetExecUser`).
//!
//! The files are opened with `openat2(RESOLVE_IN_ROOT)`, so a symlinked
//! `/etc/passwd` is resolved inside the rootfs and can never point at the
//! host's files.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{Mode, OFlags, ResolveFlags};

use crate::Error;

/// The largest uid/gid Docker accepts (`2^31 - 1`).
const MAX_ID: u64 = i32::MAX as u64;

/// A user resolved to numeric ids, ready for the OCI spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSpec {
    /// The uid the process runs as.
    pub uid: u32,
    /// The primary gid.
    pub gid: u32,
    /// Supplementary groups: the primary gid first, then (only when no group
    /// was given explicitly) the groups of `/etc/group` listing the user by
    /// name, as Docker and containerd set them.
    pub additional_gids: Vec<u32>,
    /// The home directory from the passwd entry, `/` when there is none.
    /// Used as `HOME` when the environment does not set it.
    pub home: String,
}

impl Default for UserSpec {
    /// root (0:0), no supplementary groups, home `/root`.
    fn default() -> Self {
        UserSpec {
            uid: 0,
            gid: 0,
            additional_gids: Vec::new(),
            home: "/root".to_string(),
        }
    }
}

struct PasswdEntry {
    name: String,
    uid: u64,
    gid: u64,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u64,
    members: Vec<String>,
}

/// A user or group name that the image's passwd or group file lacks
/// (Docker's wording, without the host path of the rootfs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameNotFound {
    /// A user name missing from `/etc/passwd`.
    #[error("unable to find user {0}: no matching entries in passwd file")]
    User(String),
    /// A group name missing from `/etc/group`.
    #[error("unable to find group {0}: no matching entries in group file")]
    Group(String),
}

/// Resolves `user` (`""`, `name`, `uid`, `name:group`, `uid:gid`, `name:gid`,
/// `uid:group`) against `rootfs/etc/passwd` and `rootfs/etc/group`.
///
/// Docker's rules:
/// - `""` means uid 0; its passwd entry (if any) gives gid and home.
/// - A numeric user is always a uid; without a passwd entry the gid is 0 and
///   home is `/`.
/// - A name without an entry fails with
///   `unable to find user NAME: no matching entries in passwd file`.
/// - An explicit group (name or number) replaces the primary gid and no
///   supplementary groups are added; a group name without an entry fails with
///   `unable to find group NAME: no matching entries in group file`.
/// - Otherwise the supplementary groups are the groups listing the user's name.
/// - The primary gid always leads the supplementary groups, so busybox `id`
///   prints `uid=0(root) gid=0(root) groups=0(root),10(wheel)` as in Docker.
///
/// Missing `/etc/passwd` or `/etc/group` files count as empty.
pub fn resolve_user(rootfs: &Path, user: &str) -> Result<UserSpec, Error> {
    let (user_arg, group_arg) = match user.split_once(':') {
        Some((u, g)) => (u, g),
        None => (user, ""),
    };
    let passwd = read_rootfs_file(rootfs, "etc/passwd")?
        .map(|s| parse_passwd(&s))
        .unwrap_or_default();
    let uid_num = parse_id(user_arg);

    let matched = passwd.iter().find(|e| match (user_arg, uid_num) {
        ("", _) => e.uid == 0,
        (_, Some(uid)) => e.uid == uid,
        (name, None) => e.name == name,
    });

    let mut out = UserSpec {
        uid: 0,
        gid: 0,
        additional_gids: Vec::new(),
        home: "/".to_string(),
    };
    let matched_name = match matched {
        Some(e) => {
            out.uid = to_id(e.uid, user)?;
            out.gid = to_id(e.gid, user)?;
            out.home = if e.home.is_empty() {
                "/".to_string()
            } else {
                e.home.clone()
            };
            Some(e.name.clone())
        }
        None if user_arg.is_empty() => None,
        None => match uid_num {
            Some(uid) => {
                out.uid = to_id(uid, user)?;
                None
            }
            None => {
                return Err(Error::NameNotFound {
                    missing: NameNotFound::User(user_arg.to_string()),
                    rootfs: rootfs.to_path_buf(),
                })
            }
        },
    };

    if !group_arg.is_empty() || matched_name.is_some() {
        let groups = read_rootfs_file(rootfs, "etc/group")?
            .map(|s| parse_group(&s))
            .unwrap_or_default();
        if !group_arg.is_empty() {
            let gid_num = parse_id(group_arg);
            let found = groups.iter().find(|g| match gid_num {
                Some(gid) => g.gid == gid,
                None => g.name == group_arg,
            });
            out.gid = match (found, gid_num) {
                (Some(g), _) => to_id(g.gid, user)?,
                (None, Some(gid)) => to_id(gid, user)?,
                (None, None) => {
                    return Err(Error::NameNotFound {
                        missing: NameNotFound::Group(group_arg.to_string()),
                        rootfs: rootfs.to_path_buf(),
                    })
                }
            };
        } else if let Some(name) = matched_name {
            for g in groups.iter().filter(|g| g.members.contains(&name)) {
                out.additional_gids.push(to_id(g.gid, user)?);
            }
        }
    }
    // The primary gid leads the supplementary groups (containerd and Docker
    // since the CVE-2023-25173 fix; BuildKit tests `id` on busybox for it).
    let mut gids = vec![out.gid];
    for g in out.additional_gids.drain(..) {
        if !gids.contains(&g) {
            gids.push(g);
        }
    }
    out.additional_gids = gids;
    Ok(out)
}

fn parse_id(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn to_id(id: u64, spec: &str) -> Result<u32, Error> {
    if id > MAX_ID {
        return Err(Error::InvalidUser {
            user: spec.to_string(),
            reason: format!("id {id} is out of range (0..={MAX_ID})"),
        });
    }
    Ok(id as u32)
}

/// `name:password:uid:gid:gecos:home:shell`; malformed lines are skipped.
fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f.get(5).unwrap_or(&"").to_string(),
            })
        })
        .collect()
}

/// `name:password:gid:member,member`; malformed lines are skipped.
fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            Some(GroupEntry {
                name: f.first()?.to_string(),
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Reads `rootfs/rel` with every path component (symlinks included) resolved
/// inside `rootfs`. `Ok(None)` when the file does not exist. At most 4 MiB.
pub(crate) fn read_rootfs_file(rootfs: &Path, rel: &str) -> Result<Option<String>, Error> {
    let io_err = |e: std::io::Error| Error::Io {
        context: format!("reading {} in rootfs {}", rel, rootfs.display()),
        cause: e,
    };
    let root = rustix::fs::open(
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::Io {
        context: format!("opening rootfs {}", rootfs.display()),
        cause: e.into(),
    })?;
    let fd: OwnedFd = match rustix::fs::openat2(
        &root,
        rel,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) | Err(rustix::io::Errno::NOTDIR) => return Ok(None),
        Err(e) => return Err(io_err(e.into())),
    };
    let mut file = std::fs::File::from(fd);
    if !file.metadata().map_err(io_err)?.is_file() {
        return Ok(None);
    }
    let mut buf = Vec::new();
    (&mut file)
        .take(4 << 20)
        .read_to_end(&mut buf)
        .map_err(io_err)?;
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\n\
             nobody:x:65534:65534:nobody:/home:/bin/false\n\
             app:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\nwheel:x:10:root\nnogroup:x:65534:\napp:x:1000:\nstaff:x:50:app,other\n",
        )
        .unwrap();
        dir
    }

    fn r(user: &str) -> Result<UserSpec, Error> {
        resolve_user(rootfs().path(), user)
    }

    #[test]
    fn empty_is_root_with_groups() {
        let u = r("").unwrap();
        assert_eq!((u.uid, u.gid, u.additional_gids), (0, 0, vec![0, 10]));
        assert_eq!(u.home, "/root");
    }

    #[test]
    fn names_and_numbers() {
        let u = r("app").unwrap();
        assert_eq!(
            (u.uid, u.gid, u.additional_gids.clone()),
            (1000, 1000, vec![1000, 50])
        );
        assert_eq!(u.home, "/home/app");
        let u = r("1000").unwrap();
        assert_eq!(
            (u.uid, u.gid, u.additional_gids),
            (1000, 1000, vec![1000, 50])
        );
        let u = r("1234").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (1234, 0, "/"));
        let u = r("app:staff").unwrap();
        assert_eq!((u.uid, u.gid, u.additional_gids), (1000, 50, vec![50]));
        let u = r("nobody:4321").unwrap();
        assert_eq!((u.uid, u.gid), (65534, 4321));
    }

    #[test]
    fn unknown_names_fail_like_docker() {
        let e = r("ghost").unwrap_err().to_string();
        assert!(
            e.contains("unable to find user ghost: no matching entries in passwd file"),
            "{e}"
        );
        let e = r("app:ghosts").unwrap_err().to_string();
        assert!(
            e.contains("unable to find group ghosts: no matching entries in group file"),
            "{e}"
        );
        assert!(r("99999999999").is_err());
    }

    #[test]
    fn symlinked_passwd_stays_inside_rootfs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        // Absolute target: resolved inside the rootfs, where it does not exist.
        std::os::unix::fs::symlink("/etc/passwd.host", dir.path().join("etc/passwd")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd.host"),
            "inside:x:7:7::/in:/bin/sh\n",
        )
        .unwrap();
        let u = resolve_user(dir.path(), "inside").unwrap();
        assert_eq!(u.uid, 7);
        // A relative escape is clamped at the rootfs.
        std::fs::remove_file(dir.path().join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink(
            "../../../../../../etc/passwd",
            dir.path().join("etc/passwd"),
        )
        .unwrap();
        assert!(resolve_user(dir.path(), "root").is_err());
    }

    #[test]
    fn missing_files_allow_numeric_ids() {
        let dir = tempfile::tempdir().unwrap();
        let u = resolve_user(dir.path(), "5:6").unwrap();
        assert_eq!((u.uid, u.gid), (5, 6));
        assert!(resolve_user(dir.path(), "root").is_err());
        let u = resolve_user(dir.path(), "").unwrap();
        assert_eq!((u.uid, u.gid), (0, 0));
    }
}
