//! Deleting a `run --rm` container's files after strata has exited.
//!
//! The container's upper dir holds everything its process wrote: 40,000
//! files after a package install, whose delete took 0.6 s on an idle disk
//! (as long as `rm -rf`) and several seconds on a busy one, all of it
//! before `run` returned the container's exit status. Now `run` unmounts
//! the rootfs and moves its directory into `ROOT/tmp` (one rename, so the
//! container is gone from the store at once), deletes it for at most
//! [`INLINE`], and hands what is left to a remover: strata re-executed
//! with [`REMOVER_ENV`], in a session of its own, stdio closed, so neither
//! the caller's shell nor a pipe it reads waits for it.
//!
//! Nothing is left behind: the directory is locked (an flock on it) by
//! `run` before the remover starts and stays locked by the remover, which
//! inherits the locked descriptor as its stdin, until it is deleted; so
//! GC and `system check` see an entry in use, never debris. If the remover
//! cannot start, `run` finishes the delete itself; if it dies half-way,
//! the lock goes with it and the next GC or `check --repair` removes the
//! rest (an unlocked `ROOT/tmp` entry whose creator is gone).

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Set, a strata process is a remover: the path it deletes.
pub(crate) const REMOVER_ENV: &str = "STRATA_INTERNAL_REMOVE";

/// How long `run` deletes by itself before it hands the rest to a
/// remover: most containers write a few files, gone in well under a
/// millisecond, and then nothing is left even for a moment (a script's
/// next command sees an empty `ROOT/tmp`, as before); a big upper dir
/// costs its caller this much and no more.
const INLINE: Duration = Duration::from_millis(50);

/// Deletes `dir` (in the store's tmp): here when that is quick, else in a
/// remover process (or here after all when none can be started). Only
/// the strata binary may call it: it runs `/proc/self/exe`.
pub(crate) fn spawn(dir: &Path) -> anyhow::Result<()> {
    // Locked first, so the directory is never unlocked debris, even for
    // the moment between this process's exit and the remover's start.
    let locked = File::open(dir).and_then(|f| f.lock().map(|()| f));
    let (tx, rx) = std::sync::mpsc::channel();
    let path = dir.to_path_buf();
    // Still deleting when the remover starts, this thread races it
    // harmlessly (each skips what the other removed) until we exit.
    std::thread::spawn(move || {
        let _ = tx.send(remove(&path));
    });
    if let Ok(done) = rx.recv_timeout(INLINE) {
        return done;
    }
    let started = locked.and_then(|f| {
        // Dropping the Child neither kills nor waits: the remover outlives
        // us by design and is reaped by init (or our subreaper).
        Command::new("/proc/self/exe")
            .env(REMOVER_ENV, dir)
            .stdin(Stdio::from(f))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
    });
    match started {
        Ok(_) => Ok(()),
        Err(_) => rx.recv().unwrap_or(Ok(())),
    }
}

fn remove(dir: &Path) -> anyhow::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(anyhow::Error::new(e).context(format!("removing {}", dir.display())))
        }
        _ => Ok(()),
    }
}

/// When this process was started as a remover ([`REMOVER_ENV`] set),
/// deletes its directory and exits; otherwise returns at once. Call it
/// first thing in `main` (a remover started by a rootless strata is
/// already in its user namespace, which owns the files).
#[allow(unsafe_code)] // libc calls, each with its SAFETY comment
pub(crate) fn run_if_remover() {
    let Some(dir) = std::env::var_os(REMOVER_ENV) else {
        return;
    };
    // SAFETY: plain syscalls in a single-threaded process. Out of the
    // caller's session, the terminal's Ctrl-C and hang-up do not reach it.
    unsafe {
        libc::setsid();
        for sig in [libc::SIGINT, libc::SIGHUP] {
            libc::signal(sig, libc::SIG_IGN);
        }
    }
    // The lock on `dir` is held through stdin until the process exits.
    let code = i32::from(remove(Path::new(&dir)).is_err());
    std::process::exit(code);
}
