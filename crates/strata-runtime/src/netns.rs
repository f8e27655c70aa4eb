//! A private network namespace with outbound access through `pasta`
//! (Debian `passt`), for the RUN steps of one build.
//!
//! [`PrivateNetwork::create`]:
//! 1. creates an empty file `<run dir>/netns/<owner pid>-<owner start
//!    time>-<hex>` and bind-mounts a fresh network namespace on it (a
//!    thread `unshare(CLONE_NEWNET)`s and binds `/proc/thread-self/ns/net`,
//!    what `ip netns add` does, without the `ip` binary);
//! 2. starts `pasta --runas 0:0 -f --netns FILE --config-net` from a keeper
//!    thread that lives as long as the network, with `PR_SET_PDEATHSIG`
//!    (SIGKILL): pasta dies with strata, even when strata is SIGKILLed
//!    (the death signal fires when the spawning *thread* exits, hence the
//!    dedicated thread). No port is forwarded in either direction (`-t none
//!    -u none -T none -U none`): the namespace's loopback is its own. pasta
//!    maps the default gateway's address to the host's loopback (its
//!    default), and forwards DNS sent to [`DNS_FORWARD`] to the host's
//!    resolver, which the container's `/etc/resolv.conf` names;
//! 3. waits until pasta has configured the interface (a default route in
//!    the namespace), so the first container never races it.
//!
//! Dropping it kills pasta, unmounts and removes the file. A strata killed
//! with SIGKILL leaves the file (pasta dies with it; pasta also quits when
//! the file goes): [`cleanup_stale`] removes files whose owner is gone.
//!
//! Containers join the namespace by path ([`crate::Network::Join`]); they
//! see only `lo` and pasta's tap interface, none of the host's interfaces,
//! packets or abstract unix sockets.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::Error;

/// The address the container's resolver uses; pasta forwards DNS queries
/// sent to it to the host's first nameserver (podman uses the same).
pub const DNS_FORWARD: &str = "169.254.1.1";

/// How long pasta may take to configure the namespace (it takes ~10-50 ms).
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A joined network namespace, as the container spec needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetnsRef {
    /// The bind-mounted namespace file.
    pub path: PathBuf,
    /// The container's `/etc/resolv.conf` (`None`: the host's).
    pub resolv_conf: Option<String>,
}

/// A network namespace with pasta giving it outbound access; torn down on
/// drop (see the module doc).
#[derive(Debug)]
pub struct PrivateNetwork {
    netns: NetnsRef,
    stop: Option<mpsc::Sender<()>>,
    keeper: Option<std::thread::JoinHandle<()>>,
    pasta_pid: u32,
    setup: Duration,
}

/// Where namespace files live: `<run dir>/netns`.
pub fn default_dir() -> Result<PathBuf, crate::Error> {
    Ok(crate::runc::run_dir()?.join("netns"))
}

/// The pasta binary: `$STRATA_PASTA`, else `pasta` in PATH or the usual
/// system dirs.
pub fn find_pasta() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("STRATA_PASTA") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/usr/sbin", "/usr/local/bin"].map(PathBuf::from))
        .map(|d| d.join("pasta"))
        .find(|p| p.is_file())
}

/// Why a private network cannot be made here, if it cannot: pasta missing,
/// or `/dev/net/tun` not openable (rootless on a host where it is 0600).
pub fn unavailable_reason() -> Option<String> {
    if find_pasta().is_none() {
        return Some("pasta is not installed (Debian/Ubuntu: `apt-get install passt`)".to_string());
    }
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
    {
        Ok(_) => None,
        Err(e) => Some(format!("/dev/net/tun cannot be opened ({e})")),
    }
}

/// Why a private network cannot be made here, with how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable {
    /// What failed, as [`unavailable_reason`] says it.
    pub why: String,
    /// The commands (as root) or package that fix it.
    pub fix: String,
}

/// [`unavailable_reason`] with the fix for that cause: the tun device's
/// mode (0600 on minimal hosts, so an unprivileged pasta cannot open it),
/// a missing device or module, or a missing pasta.
pub fn unavailable() -> Option<Unavailable> {
    let why = unavailable_reason()?;
    let mknod = "`modprobe tun; mkdir -p /dev/net && mknod -m 0666 /dev/net/tun c 10 200`";
    let fix = if find_pasta().is_none() {
        "install pasta: `apt-get install passt`".to_string()
    } else {
        let err = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
            .err();
        match err.map(|e| e.kind()) {
            Some(std::io::ErrorKind::PermissionDenied) => {
                "let users open the tun device, as root: `chmod 0666 /dev/net/tun` (a udev                  rule `KERNEL==\"tun\", MODE=\"0666\"` keeps that across reboots)"
                    .to_string()
            }
            Some(std::io::ErrorKind::NotFound) => {
                format!("load the tun module and create the device, as root: {mknod}")
            }
            _ => format!(
                "/dev/net/tun must be the tun character device (10, 200); as root: {mknod}"
            ),
        }
    };
    Some(Unavailable { why, fix })
}

/// The start time of process `pid` (field 22 of `/proc/PID/stat`, clock
/// ticks since boot): with the pid, it names one process for good.
pub fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parens: skip past
    // the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// True when the process `pid` started at `start` still exists.
pub fn owner_alive(pid: u32, start: Option<u64>) -> bool {
    match (process_start_time(pid), start) {
        (None, _) => {
            // No /proc entry readable: fall back to kill(0).
            let Some(pid) = rustix::process::Pid::from_raw(pid as i32) else {
                return false;
            };
            match rustix::process::test_kill_process(pid) {
                Ok(()) => true,
                Err(e) => e == rustix::io::Errno::PERM,
            }
        }
        (Some(_), None) => true,
        (Some(now), Some(recorded)) => now == recorded,
    }
}

fn random_hex() -> String {
    let id = crate::new_container_id();
    id.trim_start_matches("strata-")[..12].to_string()
}

fn c_path(p: &Path) -> Result<std::ffi::CString, Error> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes())
        .map_err(|_| Error::InvalidSpec(format!("path {} has a NUL byte", p.display())))
}

/// Unmounts (lazily) and removes a namespace file, best effort.
fn remove_netns_file(path: &Path) {
    let _ = rustix::mount::unmount(path, rustix::mount::UnmountFlags::DETACH);
    let _ = std::fs::remove_file(path);
}

/// Creates the namespace file `path` with a new network namespace on it.
#[allow(unsafe_code)] // each unsafe block below has its SAFETY comment
fn create_netns(path: &Path) -> Result<(), Error> {
    std::fs::File::options()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
    let target = c_path(path)?;
    let r = std::thread::scope(|s| {
        s.spawn(|| -> std::io::Result<()> {
            // Only this thread changes namespace; it ends right after.
            // SAFETY: plain syscalls; the strings outlive them.
            unsafe {
                if libc::unshare(libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let src = c"/proc/thread-self/ns/net";
                if libc::mount(
                    src.as_ptr(),
                    target.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("namespace thread panicked")))
    });
    r.map_err(|e| {
        let _ = std::fs::remove_file(path);
        Error::io(
            format!("creating a network namespace on {}", path.display()),
            e,
        )
    })
}

/// True when the namespace's IPv4 routing table has a default route.
fn has_default_route() -> bool {
    std::fs::read_to_string("/proc/thread-self/net/route")
        .map(|t| {
            t.lines()
                .skip(1)
                .any(|l| l.split_whitespace().nth(1) == Some("00000000"))
        })
        .unwrap_or(false)
}

/// The container's resolv.conf: the host's search and options lines, and
/// pasta's forwarder as the only nameserver.
fn resolv_conf() -> String {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let mut out = format!("nameserver {DNS_FORWARD}\n");
    for l in host.lines() {
        let t = l.trim_start();
        if t.starts_with("search") || t.starts_with("domain") || t.starts_with("options") {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

/// What a container's private network publishes, and what its errors
/// suggest instead.
#[derive(Debug, Clone, Default)]
pub struct PastaOptions {
    /// pasta `-t` specs (`[ADDR/]HOST:CONTAINER`): host ports forwarded
    /// into the namespace.
    pub tcp: Vec<String>,
    /// pasta `-u` specs.
    pub udp: Vec<String>,
    /// Appended to error messages: what else the user can do (default:
    /// the build's flags).
    pub hint: Option<String>,
}

impl PrivateNetwork {
    /// Creates the namespace under `dir` and starts pasta (see the module
    /// doc). Fails with what to install or do.
    pub fn create(dir: &Path) -> Result<PrivateNetwork, Error> {
        PrivateNetwork::create_with(dir, &PastaOptions::default())
    }

    /// [`PrivateNetwork::create`] with published ports.
    pub fn create_with(dir: &Path, opts: &PastaOptions) -> Result<PrivateNetwork, Error> {
        let started = Instant::now();
        let hint = opts.hint.clone().unwrap_or_else(|| {
            "build with --network none, or with --allow network.host --network host".to_string()
        });
        let pasta = find_pasta().ok_or_else(|| {
            Error::Network(format!(
                "a private network needs pasta, which is not installed: \
                 `apt-get install passt` (or {hint})"
            ))
        })?;
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        }
        let me = std::process::id();
        let start = process_start_time(me).unwrap_or(0);
        let path = dir.join(format!("{me}-{start}-{}", random_hex()));
        create_netns(&path)?;
        let log = path.with_extension("log");

        let (ready_tx, ready_rx) = mpsc::channel::<Result<u32, Error>>();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let ns_path = path.clone();
        let log_path = log.clone();
        let mut ports: Vec<String> = Vec::new();
        for (flag, specs) in [("-t", &opts.tcp), ("-u", &opts.udp)] {
            if specs.is_empty() {
                ports.extend([flag.to_string(), "none".to_string()]);
            }
            for spec in specs {
                ports.extend([flag.to_string(), spec.clone()]);
            }
        }
        let hint2 = hint.clone();
        let keeper = std::thread::Builder::new()
            .name("strata-pasta".into())
            .spawn(move || {
                keep_pasta(
                    &pasta, &ns_path, &log_path, &ports, &hint2, ready_tx, stop_rx,
                )
            });
        let keeper = match keeper {
            Ok(k) => k,
            Err(e) => {
                remove_netns_file(&path);
                return Err(Error::io("starting the pasta thread", e));
            }
        };
        let result = ready_rx
            .recv()
            .unwrap_or_else(|_| Err(Error::Network("the pasta thread ended".to_string())));
        let _ = std::fs::remove_file(&log);
        match result {
            Ok(pid) => Ok(PrivateNetwork {
                netns: NetnsRef {
                    path,
                    resolv_conf: Some(resolv_conf()),
                },
                stop: Some(stop_tx),
                keeper: Some(keeper),
                pasta_pid: pid,
                setup: started.elapsed(),
            }),
            Err(e) => {
                drop(stop_tx);
                let _ = keeper.join();
                remove_netns_file(&path);
                Err(e)
            }
        }
    }

    /// What containers join.
    pub fn netns(&self) -> &NetnsRef {
        &self.netns
    }

    /// pasta's pid.
    pub fn pasta_pid(&self) -> u32 {
        self.pasta_pid
    }

    /// How long [`PrivateNetwork::create`] took.
    pub fn setup_time(&self) -> Duration {
        self.setup
    }
}

impl Drop for PrivateNetwork {
    fn drop(&mut self) {
        // SIGKILL now, so pasta is dying when this returns; the keeper
        // reaps it in the background when the channel closes. Waiting here
        // cost 30-90 ms per build: pasta's exit removes its tap device,
        // which waits for RCU grace periods in the kernel.
        // pasta is our child and not reaped until the keeper's wait
        // below, so the pid cannot have been reused.
        if let Some(pid) = rustix::process::Pid::from_raw(self.pasta_pid as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
        drop(self.stop.take());
        drop(self.keeper.take());
        remove_netns_file(&self.netns.path);
    }
}

/// The keeper thread: starts pasta (its death signal is tied to this
/// thread), reports readiness, then waits for the stop and kills pasta.
#[allow(unsafe_code)] // each unsafe block below has its SAFETY comment
fn keep_pasta(
    pasta: &Path,
    netns: &Path,
    log: &Path,
    ports: &[String],
    hint: &str,
    ready: mpsc::Sender<Result<u32, Error>>,
    stop: mpsc::Receiver<()>,
) {
    use std::os::unix::process::CommandExt;
    let log_file = match std::fs::File::create(log) {
        Ok(f) => f,
        Err(e) => {
            let _ = ready.send(Err(Error::io(format!("creating {}", log.display()), e)));
            return;
        }
    };
    let mut cmd = Command::new(pasta);
    cmd.args(["--runas", "0:0", "-f", "-q", "--config-net", "--netns"])
        .arg(netns)
        .args(ports)
        .args(["-T", "none", "-U", "none"])
        .args(["--dns-forward", DNS_FORWARD])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file);
    // SAFETY: prctl is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(Err(Error::io(format!("starting {}", pasta.display()), e)));
            return;
        }
    };
    let fail = |child: &mut std::process::Child, why: String| {
        let _ = child.kill();
        let _ = child.wait();
        let mut text = String::new();
        let _ = std::fs::File::open(log).and_then(|mut f| f.read_to_string(&mut text));
        let text: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with("Failed to send") && !l.trim().is_empty())
            .collect();
        let msg = if text.is_empty() {
            why
        } else {
            format!("{why}: {}", text.join("; "))
        };
        Error::Network(format!(
            "giving the container a private network with pasta failed ({msg}); {hint}"
        ))
    };
    // Watch the namespace from this thread (it only waits from now on).
    let joined = std::fs::File::open(netns).and_then(|f| {
        // SAFETY: setns on an fd we own, for this thread only.
        if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    });
    if let Err(e) = joined {
        let msg = fail(&mut child, format!("joining {}: {e}", netns.display()));
        let _ = ready.send(Err(msg));
        return;
    }
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut nap = Duration::from_micros(200);
    loop {
        if has_default_route() {
            break;
        }
        if let Ok(Some(st)) = child.try_wait() {
            let msg = fail(&mut child, format!("pasta exited with {st}"));
            let _ = ready.send(Err(msg));
            return;
        }
        if Instant::now() >= deadline {
            let msg = fail(
                &mut child,
                format!(
                    "pasta did not configure the namespace within {}s",
                    READY_TIMEOUT.as_secs()
                ),
            );
            let _ = ready.send(Err(msg));
            return;
        }
        std::thread::sleep(nap);
        // pasta takes 4-8 ms: a 1 ms cap keeps the wait close to it.
        nap = (nap * 2).min(Duration::from_millis(1));
    }
    if ready.send(Ok(child.id())).is_err() {
        let _ = child.kill();
        let _ = child.wait();
        return;
    }
    // Until the network is dropped (the sender goes away).
    let _ = stop.recv();
    let _ = child.kill();
    let _ = child.wait();
}

/// Removes namespace files under `dir` whose owner process is gone (a
/// strata killed with SIGKILL). Returns the paths removed.
pub fn cleanup_stale(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for ent in entries.flatten() {
        let name = ent.file_name().to_string_lossy().into_owned();
        let mut parts = name.splitn(3, '-');
        let (Some(pid), Some(start)) = (
            parts.next().and_then(|p| p.parse::<u32>().ok()),
            parts.next().and_then(|s| s.parse::<u64>().ok()),
        ) else {
            continue;
        };
        if !owner_alive(pid, Some(start).filter(|&s| s != 0)) {
            remove_netns_file(&ent.path());
            removed.push(ent.path());
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_names_this_process() {
        let me = std::process::id();
        let t = process_start_time(me).expect("own start time");
        assert!(owner_alive(me, Some(t)));
        assert!(
            !owner_alive(me, Some(t + 1)),
            "a reused pid is not the owner"
        );
    }

    #[test]
    fn resolv_conf_points_at_the_forwarder() {
        let r = resolv_conf();
        assert!(r.starts_with(&format!("nameserver {DNS_FORWARD}\n")), "{r}");
        assert_eq!(r.matches("nameserver").count(), 1, "{r}");
    }
}

#[cfg(test)]
mod timing {
    use super::*;

    /// `cargo test -p strata-runtime --lib netns_cost -- --ignored --nocapture`
    /// (root, pasta installed): what one build's namespace costs.
    #[test]
    #[ignore]
    fn netns_cost() {
        let dir = tempfile::tempdir().unwrap();
        for _ in 0..10 {
            let t = Instant::now();
            let n = PrivateNetwork::create(dir.path()).unwrap();
            let up = t.elapsed();
            let t = Instant::now();
            drop(n);
            println!(
                "setup {:.1} ms, teardown {:.1} ms",
                up.as_secs_f64() * 1e3,
                t.elapsed().as_secs_f64() * 1e3
            );
        }
    }
}
