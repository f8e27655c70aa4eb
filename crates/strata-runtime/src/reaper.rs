//! Ties containers to the strata process that runs them: a strata killed
//! with SIGKILL leaves `runc run` and its container running (no death
//! signal reaches the container's init). A small helper process, the
//! reaper, notices strata's death and kills what strata left.
//!
//! [`start`] spawns `/proc/self/exe` (the strata binary, whose `main`
//! calls [`run_if_reaper`] first) with a pipe as stdin; strata keeps the
//! write end for its whole life. The reaper leaves strata's session (no
//! terminal signal reaches it), ignores SIGINT/SIGTERM/SIGHUP and blocks
//! on the pipe. End of file means strata is gone, however it ended: the
//! reaper then kills and deletes every container whose bundle names that
//! strata (pid and start time) as owner, exactly as
//! [`crate::Runc::cleanup_stale`] would, and exits. After a normal exit
//! strata has removed its containers itself and the reaper finds none.
//!
//! Only a binary whose `main` calls [`run_if_reaper`] may call [`start`]:
//! `/proc/self/exe` of a test binary would run its tests again.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The environment variable that makes a strata process a reaper:
/// `PID:START:RUNC:STATE_ROOT:BUNDLE_ROOT` (paths without ':').
pub const REAPER_ENV: &str = "STRATA_INTERNAL_REAPER";

/// The write end of the pipe the reaper watches; never closed while the
/// process lives.
static WATCHED: std::sync::OnceLock<Option<std::fs::File>> = std::sync::OnceLock::new();

/// Set to `0`, no reaper is started (to see what the other clean-ups do).
pub const DISABLE_ENV: &str = "STRATA_REAPER";

/// Starts the reaper for this process once (later calls do nothing).
/// Best effort: without it, stale containers are still cleaned by the next
/// strata and by `system check --repair`.
pub(crate) fn start(runc: &Path, state_root: &Path, bundle_root: &Path) {
    if std::env::var_os(DISABLE_ENV).is_some_and(|v| v == "0") {
        return;
    }
    WATCHED.get_or_init(|| match spawn(runc, state_root, bundle_root) {
        Ok(f) => Some(f),
        Err(e) => {
            tracing::debug!("starting the container reaper: {e}");
            None
        }
    });
}

fn spawn(runc: &Path, state_root: &Path, bundle_root: &Path) -> std::io::Result<std::fs::File> {
    let me = std::process::id();
    let start = crate::netns::process_start_time(me).unwrap_or(0);
    let paths = [runc, state_root, bundle_root]
        .map(|p| p.to_string_lossy().into_owned())
        .join(":");
    let (read, write) = std::io::pipe()?;
    // Dropping the Child neither kills nor waits: the reaper outlives us
    // by design and is reaped by init (or our subreaper) in the end.
    Command::new("/proc/self/exe")
        .env(REAPER_ENV, format!("{me}:{start}:{paths}"))
        .stdin(read)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    Ok(std::fs::File::from(std::os::fd::OwnedFd::from(write)))
}

/// When this process was started as a reaper ([`REAPER_ENV`] set), does
/// the reaper's work and exits; otherwise returns at once. Call it first
/// thing in `main`.
#[allow(unsafe_code)] // each unsafe block below has its SAFETY comment
pub fn run_if_reaper() {
    let Some(spec) = std::env::var_os(REAPER_ENV) else {
        return;
    };
    let spec = spec.to_string_lossy().into_owned();
    let mut f = spec.splitn(5, ':');
    let (Some(pid), Some(start), Some(runc), Some(state), Some(bundles)) =
        (f.next(), f.next(), f.next(), f.next(), f.next())
    else {
        std::process::exit(2);
    };
    let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
        std::process::exit(2);
    };
    // SAFETY: plain syscalls in a single-threaded process.
    unsafe {
        libc::setsid();
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
            libc::signal(sig, libc::SIG_IGN);
        }
    }
    // Until strata is gone: EOF (or an error) on the pipe.
    let mut buf = [0u8; 64];
    loop {
        // SAFETY: reading into a valid buffer from fd 0.
        let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            continue;
        }
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        break;
    }
    reap(
        pid,
        Some(start).filter(|&s| s != 0),
        Path::new(runc),
        Path::new(state),
        Path::new(bundles),
    );
    std::process::exit(0);
}

/// Kills and deletes the containers owned by `pid` (started at `start`),
/// and removes the namespace files of dead owners (pasta died with strata).
fn reap(pid: u32, start: Option<u64>, runc: &Path, state_root: &Path, bundle_root: &Path) {
    if let Ok(dir) = crate::netns::default_dir() {
        crate::netns::cleanup_stale(&dir);
    }
    let Ok(entries) = std::fs::read_dir(bundle_root) else {
        return;
    };
    let runc = crate::Runc::with_binary(PathBuf::from(runc)).map(|r| {
        r.with_state_root(state_root)
            .with_bundle_root(bundle_root)
            .with_reaper(false)
    });
    let Ok(runc) = runc else { return };
    for ent in entries.flatten() {
        let Some((owner, owner_start)) = crate::runc::bundle_owner(&ent.path()) else {
            continue;
        };
        if owner != pid || (start.is_some() && owner_start.is_some() && owner_start != start) {
            continue;
        }
        let Some(id) = ent.file_name().to_str().map(String::from) else {
            continue;
        };
        runc.remove_stale(&id, &ent.path());
    }
}
