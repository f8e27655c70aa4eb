//! `start`, `stop`, `restart`, `kill`, `rm` and `wait`.

use super::*;

#[derive(clap::Args, Debug)]
pub(crate) struct StartArgs {
    /// Attach: follow the output and return the exit code
    #[arg(short, long)]
    pub attach: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub(crate) fn start(g: &Global, a: StartArgs) -> anyhow::Result<u8> {
    let root = g.store_root();
    let mut failed = false;
    for key in &a.containers {
        let mut reader = None;
        let r = find(&root, key).and_then(|s| {
            // Where the log stands before the start: attach prints from here.
            reader = Some(LogReader::new(&root, &s.id, false));
            if !s.running() {
                start_monitor(&root, &s.id)?;
            }
            Ok(s)
        });
        match r {
            Ok(s) if a.attach => {
                let reader = reader.unwrap_or_else(|| LogReader::new(&root, &s.id, false));
                let code = follow_until_exit(&root, &s.id, reader)?;
                return Ok(code.clamp(0, 255) as u8);
            }
            Ok(_) => println!("{key}"),
            Err(e) => {
                eprintln!("strata: error: {e:#}");
                failed = true;
            }
        }
    }
    Ok(u8::from(failed))
}

/// Prints the container's output from now until it exits; its exit code.
pub(super) fn follow_until_exit(
    root: &Path,
    id: &str,
    mut reader: LogReader,
) -> anyhow::Result<i32> {
    reader.print_new(&mut std::io::stdout(), &mut std::io::stderr())?;
    loop {
        let alive = monitor_alive(root, id);
        reader.print_new(&mut std::io::stdout(), &mut std::io::stderr())?;
        if !alive {
            let s = State::load(root, id)?;
            return Ok(s.exit_code);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[derive(clap::Args, Debug)]
pub(crate) struct StopArgs {
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "time", default_value_t = 10)]
    pub time: u64,
    /// Signal to send instead of the image's STOPSIGNAL
    #[arg(short = 's', long = "signal")]
    pub signal: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub(super) fn sig_name(s: &str) -> String {
    s.trim_start_matches("SIG").to_uppercase()
}

/// A signal name (`TERM`, `SIGTERM`) or number.
pub(super) fn signal_number(sig: &str) -> Option<i32> {
    if let Ok(n) = sig.parse::<i32>() {
        return Some(n);
    }
    Some(match sig_name(sig).as_str() {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "TERM" => libc::SIGTERM,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        "WINCH" => libc::SIGWINCH,
        "ALRM" => libc::SIGALRM,
        "PIPE" => libc::SIGPIPE,
        _ => return None,
    })
}

/// `runc kill`; when runc cannot (rootless: this strata's user namespace
/// is not the monitor's), the signal goes straight to the container's
/// init, which the same user owns (SIGKILL to a PID namespace's init ends
/// all of it).
#[allow(unsafe_code)] // libc calls, each with its SAFETY comment
pub(super) fn signal_container(runc: &Runc, s: &State, sig: &str, all: bool) -> anyhow::Result<()> {
    match runc.signal(&s.id, sig, all) {
        Ok(()) => Ok(()),
        Err(e) => {
            let Some(n) = signal_number(sig).filter(|_| s.pid > 0) else {
                return Err(e.into());
            };
            // SAFETY: plain syscall.
            if unsafe { libc::kill(s.pid as i32, n) } != 0 {
                bail!(
                    "{e} (and kill({}, {n}): {})",
                    s.pid,
                    std::io::Error::last_os_error()
                );
            }
            Ok(())
        }
    }
}

pub(super) fn wait_stopped(root: &Path, id: &str, timeout: Duration) -> bool {
    let until = Instant::now() + timeout;
    loop {
        if !monitor_alive(root, id) {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(super) fn stop_one(
    root: &Path,
    s: &State,
    time: u64,
    signal: Option<&str>,
) -> anyhow::Result<()> {
    if !s.running() {
        return Ok(());
    }
    let runc = Runc::find()?;
    let sig = sig_name(signal.unwrap_or(&s.config.stop_signal));
    let _ = signal_container(&runc, s, &sig, false);
    if !wait_stopped(root, &s.id, Duration::from_secs(time)) {
        let _ = signal_container(&runc, s, "KILL", true);
        if !wait_stopped(root, &s.id, Duration::from_secs(10)) {
            bail!("container {} did not stop after SIGKILL", s.name);
        }
    }
    Ok(())
}

/// Runs `f` on each named container, printing its name when `f` succeeds
/// and the error otherwise (Docker's way for stop/kill/rm); exit code 1
/// when any failed.
pub(super) fn each_container(
    root: &Path,
    keys: &[String],
    mut f: impl FnMut(&str, State) -> anyhow::Result<()>,
) -> u8 {
    let mut failed = false;
    for key in keys {
        match find(root, key).and_then(|s| f(key, s)) {
            Ok(()) => println!("{key}"),
            Err(e) => {
                eprintln!("strata: error: {e:#}");
                failed = true;
            }
        }
    }
    u8::from(failed)
}

pub(crate) fn stop(g: &Global, a: StopArgs) -> anyhow::Result<u8> {
    let root = g.store_root();
    Ok(each_container(&root, &a.containers, |_, s| {
        stop_one(&root, &s, a.time, a.signal.as_deref())
    }))
}

pub(crate) fn restart(g: &Global, a: StopArgs) -> anyhow::Result<u8> {
    let root = g.store_root();
    Ok(each_container(&root, &a.containers, |_, s| {
        stop_one(&root, &s, a.time, a.signal.as_deref())?;
        start_monitor(&root, &s.id)
    }))
}

#[derive(clap::Args, Debug)]
pub(crate) struct KillArgs {
    /// Signal to send
    #[arg(short = 's', long = "signal", default_value = "KILL")]
    pub signal: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub(crate) fn kill(g: &Global, a: KillArgs) -> anyhow::Result<u8> {
    let root = g.store_root();
    Ok(each_container(&root, &a.containers, |key, s| {
        if !s.running() {
            bail!(
                "cannot kill container {key}: container {} is not running",
                s.id
            );
        }
        signal_container(&Runc::find()?, &s, &sig_name(&a.signal), false)
    }))
}

#[derive(clap::Args, Debug)]
pub(crate) struct RmArgs {
    /// Kill a running container first
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Detaches a mount at `p`, if any.
#[allow(unsafe_code)] // libc calls, each with its SAFETY comment
pub(super) fn unmount(p: &Path) {
    use std::os::unix::ffi::OsStrExt;
    if let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) {
        // SAFETY: plain syscall on a valid C string.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

pub(super) fn remove_dir(root: &Path, id: &str) -> anyhow::Result<()> {
    let dir = ctr_dir(root, id);
    unmount(&dir.join("merged"));
    std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))
}

pub(crate) fn rm(g: &Global, a: RmArgs) -> anyhow::Result<u8> {
    let root = g.store_root();
    Ok(each_container(&root, &a.containers, |_, s| {
        if s.running() {
            if !a.force {
                bail!(
                    "cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                    s.name
                );
            }
            let _ = signal_container(&Runc::find()?, &s, "KILL", true);
            if !wait_stopped(&root, &s.id, Duration::from_secs(10)) {
                bail!("container {} did not stop after SIGKILL", s.name);
            }
        }
        // An --rm container's monitor removes it itself.
        if ctr_dir(&root, &s.id).exists() {
            remove_dir(&root, &s.id)?;
        }
        Ok(())
    }))
}

#[derive(clap::Args, Debug)]
pub(crate) struct WaitArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub(crate) fn wait(g: &Global, a: WaitArgs) -> anyhow::Result<u8> {
    let root = g.store_root();
    let mut failed = false;
    for key in &a.containers {
        let r = find(&root, key).map(|s| {
            while monitor_alive(&root, &s.id) {
                std::thread::sleep(Duration::from_millis(50));
            }
            State::load(&root, &s.id)
                .map(|s| s.exit_code)
                .unwrap_or(s.exit_code)
        });
        match r {
            Ok(code) => println!("{code}"),
            Err(e) => {
                eprintln!("strata: error: {e:#}");
                failed = true;
            }
        }
    }
    Ok(u8::from(failed))
}
