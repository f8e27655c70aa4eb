//! `run --init`: strata itself as the container's PID 1, a minimal init
//! that starts the command, forwards every catchable signal to it, reaps
//! all zombies and exits with the command's status.
//!
//! strata is linked against the host's glibc, which the image may lack:
//! the container gets a tmpfs at [`INIT_DIR`] with strata and the shared
//! objects it has loaded (read from `/proc/self/maps`) bind-mounted
//! read-only, and runs them through the host's dynamic loader.

use anyhow::Context as _;
use strata_runtime::{BindMount, MountSpec};

/// Where the init's files appear inside the container.
pub(crate) const INIT_DIR: &str = "/.strata-init";

/// The argument that makes strata the init (after the loader's).
pub(crate) const INIT_FLAG: &str = "--strata-init";

/// The argv running `argv` under the init, adding its mounts.
pub(crate) fn wrap(argv: Vec<String>, mounts: &mut Vec<MountSpec>) -> anyhow::Result<Vec<String>> {
    let exe = std::fs::canonicalize("/proc/self/exe").context("finding strata's own binary")?;
    let maps = std::fs::read_to_string("/proc/self/maps").context("reading /proc/self/maps")?;
    let mut libs: Vec<std::path::PathBuf> = Vec::new();
    for l in maps.lines() {
        if let Some(p) = l.split_whitespace().nth(5) {
            if p.contains(".so") && p.starts_with('/') && !libs.iter().any(|x| x.as_os_str() == p) {
                libs.push(p.into());
            }
        }
    }
    let loader = libs
        .iter()
        .find(|p| p.to_string_lossy().contains("ld-linux"))
        .cloned()
        .context("--init: strata's dynamic loader was not found in /proc/self/maps")?;
    mounts.push(MountSpec::Tmpfs {
        destination: INIT_DIR.into(),
        size: Some(1 << 20),
        mode: Some(0o755),
    });
    // The name the loader looks for: `liblzma.so.5`, not the file's
    // `liblzma.so.5.4.1`.
    let name = |p: &std::path::Path| {
        let n = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        match n.find(".so.") {
            Some(i) => {
                let rest = &n[i + 4..];
                let major = rest.split('.').next().unwrap_or(rest);
                format!("{}.so.{major}", &n[..i])
            }
            None => n,
        }
    };
    for l in libs.iter().chain([&exe]) {
        mounts.push(MountSpec::Bind(BindMount {
            source: l.clone(),
            destination: format!("{INIT_DIR}/{}", name(l)),
            readonly: true,
        }));
    }
    Ok([
        format!("{INIT_DIR}/{}", name(&loader)),
        "--library-path".into(),
        INIT_DIR.into(),
        format!("{INIT_DIR}/{}", name(&exe)),
        INIT_FLAG.into(),
        "--".into(),
    ]
    .into_iter()
    .chain(argv)
    .collect())
}

/// When strata was started as an init (`strata --strata-init -- CMD...`),
/// runs it and exits; otherwise returns at once.
pub(crate) fn run_if_init() {
    let argv: Vec<std::ffi::CString> = std::env::args_os()
        .map(|a| {
            use std::os::unix::ffi::OsStrExt;
            std::ffi::CString::new(a.as_bytes()).unwrap_or_default()
        })
        .collect();
    if argv.get(1).map(|a| a.as_bytes()) != Some(INIT_FLAG.as_bytes()) {
        return;
    }
    let cmd: Vec<std::ffi::CString> = argv[2..]
        .iter()
        .skip_while(|a| a.as_bytes() == b"--")
        .cloned()
        .collect();
    if cmd.is_empty() {
        eprintln!("strata-init: no command");
        std::process::exit(127);
    }
    std::process::exit(init(&cmd));
}

#[allow(unsafe_code)] // libc calls, each with its SAFETY comment
fn init(cmd: &[std::ffi::CString]) -> i32 {
    // SAFETY: plain signal-mask and process syscalls in a single-threaded
    // process; the child only calls async-signal-safe functions.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigprocmask(libc::SIG_BLOCK, &all, &mut old);
        let child = libc::fork();
        if child < 0 {
            eprintln!("strata-init: fork: {}", std::io::Error::last_os_error());
            return 126;
        }
        if child == 0 {
            libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
            let mut ptrs: Vec<*const libc::c_char> = cmd.iter().map(|c| c.as_ptr()).collect();
            ptrs.push(std::ptr::null());
            libc::execvp(ptrs[0], ptrs.as_ptr());
            let e = std::io::Error::last_os_error();
            eprintln!("strata-init: exec {:?}: {e}", cmd[0]);
            libc::_exit(if e.raw_os_error() == Some(libc::ENOENT) {
                127
            } else {
                126
            });
        }
        loop {
            let mut sig: libc::c_int = 0;
            if libc::sigwait(&all, &mut sig) != 0 {
                continue;
            }
            if sig == libc::SIGCHLD {
                loop {
                    let mut status = 0;
                    let r = libc::waitpid(-1, &mut status, libc::WNOHANG);
                    if r <= 0 {
                        break;
                    }
                    if r == child {
                        // Reap what is left, then report the command's status.
                        while libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) > 0 {}
                        if libc::WIFEXITED(status) {
                            return libc::WEXITSTATUS(status);
                        }
                        return 128 + libc::WTERMSIG(status);
                    }
                }
            } else {
                libc::kill(child, sig);
            }
        }
    }
}
