//! Entering a user namespace by itself when strata runs as an unprivileged
//! user (podman's and rootlesskit's approach, without the re-exec).
//!
//! Building and running need "root": mounting overlay, chowning layer
//! files to their owners, and runc creating namespaces. An unprivileged
//! strata gets that from a user namespace of its own, entered at the very
//! start of `main` while the process is still single-threaded
//! (`unshare(CLONE_NEWUSER)` refuses multi-threaded callers):
//!
//! 1. fork a helper, which waits on a pipe;
//! 2. the main process unshares a user and a mount namespace;
//! 3. the helper, still outside, runs `newuidmap`/`newgidmap` (setuid root,
//!    Debian's `uidmap`) on the main process: container root is the user,
//!    ids 1..=N are the user's `/etc/subuid` and `/etc/subgid` range;
//! 4. the main process carries on as uid 0 of the new namespace, with the
//!    same pid, stdio, terminal and environment, so signals and exit codes
//!    need no forwarding.
//!
//! Without a range or without `newuidmap` the process maps only its own
//! uid and gid, as `unshare --map-root-user` does: files of other owners in
//! images then collapse to root (the layer applier warns and keeps going).

use std::ffi::{CStr, OsString};
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A subordinate id range from `/etc/subuid` or `/etc/subgid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubidRange {
    /// First host id of the range.
    pub start: u32,
    /// Number of ids.
    pub count: u32,
}

/// What [`enter_user_namespace`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Userns {
    /// Already root (real root, or root of a namespace made by someone
    /// else, such as `unshare --user --map-root-user`): nothing done.
    NotNeeded,
    /// Opted out with `STRATA_USERNS=0`.
    Disabled,
    /// Entered; root is the user, ids `1..=count` map to the ranges.
    Range {
        /// The uid range mapped from 1.
        uids: SubidRange,
        /// The gid range mapped from 1.
        gids: SubidRange,
    },
    /// Entered with only the user's own uid and gid mapped (to root).
    /// `why`: the reason no range is mapped, for the warning.
    Single {
        /// Why no range is mapped, for the warning.
        why: String,
    },
    /// The kernel refused to create a user namespace; strata goes on
    /// unprivileged (load, save, tag, list work; build and run do not).
    Unavailable {
        /// The error.
        why: String,
    },
    /// Joined the user and mount namespaces of an existing strata process
    /// (a detached container's monitor, see [`join_namespaces_of`]).
    Joined {
        /// The process whose namespaces were joined.
        pid: u32,
    },
}

impl Userns {
    /// The one-line warning to print, if any.
    pub fn warning(&self, user: &str) -> Option<String> {
        match self {
            Userns::Single { why } => Some(format!(
                "only your own uid is mapped in strata's user namespace ({why}): files of other \
                 owners in images collapse to root; to fix, install uidmap and add a range, e.g. \
                 `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user}`"
            )),
            Userns::Unavailable { why } => Some(format!(
                "cannot create a user namespace ({why}): build and run will fail as an \
                 unprivileged user; enable unprivileged user namespaces \
                 (sysctl user.max_user_namespaces) or run as root"
            )),
            _ => None,
        }
    }
}

/// The user's first range in a subid file (`name:start:count` lines; the
/// owner may be the name or the numeric id, as shadow's `newuidmap` takes).
pub fn subid_range(file: &Path, user: &str, uid: u32) -> Option<SubidRange> {
    let text = std::fs::read_to_string(file).ok()?;
    parse_subid(&text, user, uid)
}

fn parse_subid(text: &str, user: &str, uid: u32) -> Option<SubidRange> {
    let uid = uid.to_string();
    text.lines().find_map(|line| {
        let mut f = line.trim().split(':');
        let (owner, start, count) = (f.next()?, f.next()?, f.next()?);
        if owner != user && owner != uid {
            return None;
        }
        let r = SubidRange {
            start: start.parse().ok()?,
            count: count.parse().ok()?,
        };
        // Range mapped from 1, so it must fit below u32::MAX with root.
        (r.count > 0 && r.start.checked_add(r.count).is_some()).then_some(r)
    })
}

/// The name of user `uid` from the passwd database (empty when unknown).
#[allow(unsafe_code)] // each unsafe block below has its SAFETY comment
pub fn user_name(uid: u32) -> String {
    let mut buf = vec![0u8; 16 * 1024];
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: buf outlives the call and pw.pw_name points into it.
    let rc =
        unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr().cast(), buf.len(), &mut out) };
    if rc != 0 || out.is_null() {
        return String::new();
    }
    // SAFETY: getpwuid_r succeeded, pw_name is a NUL-terminated string in buf.
    unsafe { CStr::from_ptr(pw.pw_name) }
        .to_string_lossy()
        .into_owned()
}

fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/usr/bin:/bin"));
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn threads() -> usize {
    crate::proc_self_status("Threads")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

#[allow(unsafe_code)] // each unsafe block below has its SAFETY comment
fn pipe() -> std::io::Result<(std::fs::File, std::fs::File)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: pipe2 returned two fresh descriptors that we now own.
    unsafe {
        Ok((
            OwnedFd::from_raw_fd(fds[0]).into(),
            OwnedFd::from_raw_fd(fds[1]).into(),
        ))
    }
}

/// Runs in the forked helper: waits until the parent has unshared, maps
/// its ids with the setuid tools and exits without returning.
#[allow(unsafe_code)] // each unsafe block below has its SAFETY comment
fn helper(
    mut go: std::fs::File,
    mut report: std::fs::File,
    target: i32,
    plan: &[(PathBuf, Vec<String>)],
) -> ! {
    let mut b = [0u8; 1];
    // EOF: the parent could not unshare and is not waiting for maps.
    if !matches!(go.read(&mut b), Ok(1)) || b[0] != b'm' {
        // SAFETY: _exit skips the parent's atexit handlers and buffers.
        unsafe { libc::_exit(1) }
    }
    // An inherited "ignore SIGCHLD" would make waiting for the tools fail.
    // SAFETY: plain syscall, in the single-threaded helper.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
    for (tool, args) in plan {
        let out = Command::new(tool)
            .arg(target.to_string())
            .args(args)
            .output();
        let err = match out {
            Ok(o) if o.status.success() => continue,
            Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
            Err(e) => e.to_string(),
        };
        let _ = write!(report, "{}: {err}", tool.display());
        // SAFETY: as above.
        unsafe { libc::_exit(1) }
    }
    // SAFETY: as above.
    unsafe { libc::_exit(0) }
}

fn write_proc(file: &str, text: &str) -> Result<(), UsernsError> {
    std::fs::write(format!("/proc/self/{file}"), text)
        .map_err(|e| UsernsError::os(format!("writing /proc/self/{file}"), e))
}

/// Why strata could not enter its user namespace and cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum UsernsError {
    /// Threads already run: `unshare(CLONE_NEWUSER)` would fail.
    #[error("cannot enter a user namespace: strata already runs threads")]
    Threads,
    /// The uid map was written and the gid map not, or the reverse.
    #[error(
        "mapping ids in strata's user namespace failed half-way ({helper}); check /etc/subgid"
    )]
    HalfMapped {
        /// What the mapping helper reported.
        helper: String,
    },
    /// A system call failed.
    #[error("{what}: {cause}")]
    Os {
        /// What was being done.
        what: String,
        /// The cause.
        cause: std::io::Error,
    },
}

impl UsernsError {
    fn os(what: impl Into<String>, cause: std::io::Error) -> UsernsError {
        UsernsError::Os {
            what: what.into(),
            cause,
        }
    }
}

/// Enters a new user and mount namespace when not root (see the module
/// doc). Must be called before any thread is started. `Err` only when the
/// process is left half-mapped and cannot go on.
#[allow(unsafe_code)] // each unsafe block below has its SAFETY comment
pub fn enter_user_namespace() -> Result<Userns, UsernsError> {
    let (uid, gid) = (
        rustix::process::geteuid().as_raw(),
        rustix::process::getegid().as_raw(),
    );
    if uid == 0 {
        return Ok(Userns::NotNeeded);
    }
    if std::env::var_os("STRATA_USERNS").is_some_and(|v| v == "0") {
        return Ok(Userns::Disabled);
    }
    if threads() > 1 {
        return Err(UsernsError::Threads);
    }
    let user = user_name(uid);
    // Plan the mapping before forking, so the helper only runs commands.
    let tools = (find_tool("newuidmap"), find_tool("newgidmap"));
    let ranges = (
        subid_range(Path::new("/etc/subuid"), &user, uid),
        subid_range(Path::new("/etc/subgid"), &user, uid),
    );
    let mut plan = Vec::new();
    let mut why_single = String::new();
    match (tools, ranges) {
        ((Some(nu), Some(ng)), (Some(ur), Some(gr))) => {
            let args = |own: u32, r: SubidRange| {
                [
                    "0",
                    &own.to_string(),
                    "1",
                    "1",
                    &r.start.to_string(),
                    &r.count.to_string(),
                ]
                .map(String::from)
                .to_vec()
            };
            plan.push((nu, args(uid, ur)));
            plan.push((ng, args(gid, gr)));
        }
        ((None, _) | (_, None), _) => why_single = "newuidmap/newgidmap not found".into(),
        (_, (None, _)) => why_single = format!("no range for {user} in /etc/subuid"),
        (_, (_, None)) => why_single = format!("no range for {user} in /etc/subgid"),
    }

    let (go_r, mut go_w) = pipe().map_err(|e| UsernsError::os("pipe", e))?;
    let (rep_r, rep_w) = pipe().map_err(|e| UsernsError::os("pipe", e))?;
    let me = rustix::process::getpid().as_raw_nonzero().get();
    // SAFETY: single-threaded (checked above), so the child may allocate
    // and spawn; it never returns into main (helper ends in _exit).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(UsernsError::os("fork", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        drop(go_w);
        drop(rep_r);
        helper(go_r, rep_w, me, &plan);
    }
    drop(go_r);
    drop(rep_w);
    // Reaps the helper (ECHILD when SIGCHLD is ignored: already reaped).
    let wait_helper = || {
        let mut status = 0;
        // SAFETY: pid is our child.
        while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
            && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
        {}
    };

    // SAFETY: plain syscall; single-threaded.
    if unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) } != 0 {
        let e = std::io::Error::last_os_error();
        drop(go_w);
        wait_helper();
        return Ok(Userns::Unavailable { why: e.to_string() });
    }
    let mut outcome = None;
    if !plan.is_empty() {
        let _ = go_w.write_all(b"m");
        drop(go_w);
        // EOF when the helper exits: a wait that works even when SIGCHLD is
        // ignored (inherited) and waitpid cannot see the helper.
        let mut msg = String::new();
        let _ = (&rep_r).read_to_string(&mut msg);
        wait_helper();
        // What was written decides, not the helper's exit status.
        let mapped = |f: &str| {
            std::fs::read_to_string(format!("/proc/self/{f}")).is_ok_and(|m| !m.trim().is_empty())
        };
        match (mapped("uid_map"), mapped("gid_map")) {
            (true, true) => {
                outcome = Some(Userns::Range {
                    uids: ranges.0.expect("planned"),
                    gids: ranges.1.expect("planned"),
                })
            }
            // Nothing written: the single map still works.
            (false, false) => {
                why_single = if msg.is_empty() {
                    "newuidmap failed".into()
                } else {
                    msg
                }
            }
            _ => return Err(UsernsError::HalfMapped { helper: msg }),
        }
    } else {
        drop(go_w);
        wait_helper();
    }
    let outcome = match outcome {
        Some(o) => o,
        None => {
            // As `unshare --map-root-user`: an unprivileged process may map
            // only its own ids, and gid_map only after setgroups is denied.
            write_proc("setgroups", "deny")?;
            write_proc("uid_map", &format!("0 {uid} 1"))?;
            write_proc("gid_map", &format!("0 {gid} 1"))?;
            Userns::Single { why: why_single }
        }
    };
    // Become root of the namespace explicitly (the ids already map to 0; this
    // also resets the saved ids), then keep our mounts from propagating.
    // SAFETY: plain syscalls.
    unsafe {
        if libc::setresgid(0, 0, 0) != 0 || libc::setresuid(0, 0, 0) != 0 {
            return Err(UsernsError::os(
                "becoming root in the user namespace",
                std::io::Error::last_os_error(),
            ));
        }
        let root = c"/";
        if libc::mount(
            std::ptr::null(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            return Err(UsernsError::os(
                "making mounts private in strata's mount namespace",
                std::io::Error::last_os_error(),
            ));
        }
    }
    Ok(outcome)
}

/// Joins the user and mount namespaces of process `pid` (started at
/// `start`, `/proc/PID/stat` field 22, when known) instead of making new
/// ones, and becomes root there, as `nsenter --preserve-credentials -U -m`
/// would. For commands that act on a running rootless container (`exec`):
/// its processes live in the user namespace of the strata process that
/// started it, and runc can join the container's namespaces only from
/// that user namespace. Another strata process, in a user namespace of its
/// own, is a stranger there (its root has no capability over them), so
/// `runc exec` failed with "failed to open /proc/PID/ns/ipc: Permission
/// denied". The unprivileged user may join: it owns that namespace.
///
/// Must be called before any thread is started, from outside any user
/// namespace. The working directory is kept (setns of a mount namespace
/// moves it to the namespace's root).
#[allow(unsafe_code)]
pub fn join_namespaces_of(pid: u32, start: Option<u64>) -> Result<Userns, crate::Error> {
    use std::os::fd::AsRawFd;
    let fail = |what: &str, e: std::io::Error| {
        crate::Error::io(format!("{what} of strata process {pid}"), e)
    };
    if threads() > 1 {
        return Err(fail(
            "joining the namespaces",
            std::io::Error::other("strata already runs threads"),
        ));
    }
    let open = |ns: &str| {
        std::fs::File::open(format!("/proc/{pid}/ns/{ns}"))
            .map_err(|e| fail(&format!("opening the {ns} namespace"), e))
    };
    let (user, mnt) = (open("user")?, open("mnt")?);
    // Opened first, checked after: a pid reused in between is caught.
    if start.is_some() && crate::netns::process_start_time(pid) != start {
        return Err(fail(
            "joining the namespaces",
            std::io::Error::new(std::io::ErrorKind::NotFound, "the process has exited"),
        ));
    }
    let cwd = std::env::current_dir().ok();
    // SAFETY: plain syscalls on descriptors we own; single-threaded.
    unsafe {
        if libc::setns(user.as_raw_fd(), libc::CLONE_NEWUSER) != 0 {
            return Err(fail(
                "joining the user namespace",
                std::io::Error::last_os_error(),
            ));
        }
        if libc::setns(mnt.as_raw_fd(), libc::CLONE_NEWNS) != 0 {
            return Err(fail(
                "joining the mount namespace",
                std::io::Error::last_os_error(),
            ));
        }
        if libc::setresgid(0, 0, 0) != 0 || libc::setresuid(0, 0, 0) != 0 {
            return Err(fail(
                "becoming root in the user namespace",
                std::io::Error::last_os_error(),
            ));
        }
    }
    if let Some(cwd) = cwd {
        // Best effort: the directory may not exist in that namespace.
        let _ = std::env::set_current_dir(cwd);
    }
    Ok(Userns::Joined { pid })
}

/// True when overlay can be expected to mount in a user namespace: Linux
/// 5.11 or later. Older kernels need fuse-overlayfs, which strata does not
/// use yet; callers say so instead of failing with a bare EPERM.
pub fn kernel_has_userns_overlay() -> bool {
    let Ok(release) = rustix::system::uname().release().to_str().map(String::from) else {
        return true;
    };
    let mut it = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let (major, minor) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    (major, minor) >= (5, 11)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subid_lines() {
        let t = "alice:100000:65536\n# x\nbob:x:1\n1002:200000:1000\ncarol:5:0\n";
        assert_eq!(
            parse_subid(t, "alice", 1),
            Some(SubidRange {
                start: 100000,
                count: 65536
            })
        );
        assert_eq!(
            parse_subid(t, "dave", 1002),
            Some(SubidRange {
                start: 200000,
                count: 1000
            })
        );
        assert_eq!(parse_subid(t, "bob", 7), None);
        assert_eq!(parse_subid(t, "carol", 7), None);
        assert_eq!(parse_subid("e:4294967295:2\n", "e", 1), None);
    }

    #[test]
    fn root_needs_nothing() {
        if rustix::process::geteuid().as_raw() == 0 {
            assert_eq!(enter_user_namespace().unwrap(), Userns::NotNeeded);
        }
    }
}
