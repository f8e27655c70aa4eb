//! The [`Executor`] that hands a bundle to `runc run` in the foreground.
//!
//! Per container: a bundle dir `<bundle_root>/<id>` with `config.json`, the
//! injected files and runc's JSON log; runc state under a strata-only
//! `--root` (default `/run/strata/runc`) so it never meets Docker's; cgroups
//! under `/strata/<id>` (cgroupfs driver, works on this host's hybrid v1/v2
//! hierarchy). A guard removes the bundle dir on every path out, errors and
//! panics included, and runs `runc delete --force` only when runc left its
//! state behind (it was killed, or never reaped the container).
//!
//! Latency matters here (`strata run --rm IMAGE true` is mostly runc's own
//! start-up): the exit of runc is awaited on a pidfd, never by sleeping, and
//! no other runc process is started on the normal path.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::signals;
use crate::spec::{build_oci_spec, InjectedFiles, DEFAULT_NOFILE};
use crate::stdio::{self, StdioConfig};
use crate::{ContainerSpec, Error, Executor, ExitStatus};

/// The annotation recording the pid of the strata process that runs a
/// container; [`Runc::cleanup_stale`] removes containers whose owner is gone.
pub const OWNER_ANNOTATION: &str = "io.strata.owner-pid";

/// Where [`Runc::locate`] looks after `STRATA_RUNC` and `PATH`.
const WELL_KNOWN: &[&str] = &[
    "/usr/sbin/runc",
    "/usr/bin/runc",
    "/usr/local/sbin/runc",
    "/usr/local/bin/runc",
];

/// Runs containers with the `runc` binary. Needs root.
#[derive(Debug, Clone)]
pub struct Runc {
    binary: PathBuf,
    state_root: PathBuf,
    bundle_root: PathBuf,
    cgroup_parent: Option<String>,
    stop_timeout: Duration,
    forward_signals: bool,
}

impl Runc {
    /// Finds runc: `$STRATA_RUNC`, then `runc` in `PATH`, then the usual
    /// system paths. The error says how to install it. Also removes
    /// containers left behind by strata processes that were killed
    /// ([`Runc::cleanup_stale`]: one readdir when there are none), best effort.
    pub fn locate() -> Result<Runc, Error> {
        let runc = if let Some(p) = std::env::var_os("STRATA_RUNC") {
            Runc::with_binary(p)?
        } else {
            let from_path: Vec<PathBuf> = std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).map(|d| d.join("runc")).collect())
                .unwrap_or_default();
            let found = from_path
                .into_iter()
                .chain(WELL_KNOWN.iter().map(PathBuf::from))
                .find(|p| is_executable(p));
            match found {
                Some(p) => Runc::with_binary(p)?,
                None => {
                    return Err(Error::RuncNotFound {
                        path: PathBuf::from("runc"),
                    })
                }
            }
        };
        if let Err(e) = runc.cleanup_stale() {
            tracing::debug!("cleaning up stale containers: {e}");
        }
        Ok(runc)
    }

    /// Uses the runc binary at `path`; fails with the install hint when it is
    /// not an executable file.
    pub fn with_binary(path: impl Into<PathBuf>) -> Result<Runc, Error> {
        let binary = path.into();
        if !is_executable(&binary) {
            return Err(Error::RuncNotFound { path: binary });
        }
        let run_dir = run_dir()?;
        let rootless = is_rootless();
        Ok(Runc {
            binary,
            state_root: run_dir.join("runc"),
            bundle_root: run_dir.join("bundles"),
            // Rootless: no cgroup of our own (runc cannot create one
            // without a delegated cgroup v2 tree).
            cgroup_parent: (!rootless).then(|| "/strata".to_string()),
            stop_timeout: Duration::from_secs(10),
            forward_signals: true,
        })
    }

    /// The runc binary in use.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// runc's `--root` state directory (default `/run/strata/runc`).
    pub fn with_state_root(mut self, dir: impl Into<PathBuf>) -> Runc {
        self.state_root = dir.into();
        self
    }

    /// Where bundle dirs are created (default `/run/strata/bundles`).
    pub fn with_bundle_root(mut self, dir: impl Into<PathBuf>) -> Runc {
        self.bundle_root = dir.into();
        self
    }

    /// The cgroup parent (default `/strata`; each container gets
    /// `<parent>/<id>`); `None` lets runc use the id at the hierarchy root.
    pub fn with_cgroup_parent(mut self, parent: Option<String>) -> Runc {
        self.cgroup_parent = parent;
        self
    }

    /// After the first SIGINT/SIGTERM/SIGHUP/SIGQUIT is forwarded, how long
    /// the container has before SIGKILL (default 10 s, as `docker stop`). A
    /// second signal kills at once.
    pub fn with_stop_timeout(mut self, timeout: Duration) -> Runc {
        self.stop_timeout = timeout;
        self
    }

    /// Whether [`Executor::run`] installs the signal forwarding handlers of
    /// [`crate::signals`] while containers run (default true).
    pub fn with_signal_forwarding(mut self, on: bool) -> Runc {
        self.forward_signals = on;
        self
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root").arg(&self.state_root);
        cmd
    }

    /// `runc kill ID SIG`, best effort.
    fn kill(&self, id: &str, signal: &str) {
        let _ = self
            .command()
            .args(["kill", id, signal])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }

    /// `runc delete --force ID`, best effort.
    fn delete(&self, id: &str) {
        let _ = self
            .command()
            .args(["delete", "--force", id])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }

    /// Ids of the containers in our state root (`runc list`).
    pub fn list(&self) -> Result<Vec<String>, Error> {
        if !self.state_root.exists() {
            return Ok(Vec::new());
        }
        let out = self
            .command()
            .args(["list", "--format", "json"])
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| Error::io(format!("running {} list", self.binary.display()), e))?;
        if !out.status.success() {
            return Err(Error::Runc {
                id: String::new(),
                message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        Ok(v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| c["id"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Deletes containers (and their bundles) whose owning strata process no
    /// longer exists, e.g. after it was killed with SIGKILL. Returns their ids.
    ///
    /// Every container strata starts has a bundle dir whose `config.json`
    /// names the owner pid, and the bundle outlives runc's state (the guard
    /// removes it last), so a readdir of the bundle root finds them all:
    /// runc is started only for a container that is really stale, never to
    /// list them (a Go binary start before every container was most of
    /// `strata run`'s own overhead).
    pub fn cleanup_stale(&self) -> Result<Vec<String>, Error> {
        let entries = match std::fs::read_dir(&self.bundle_root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(Error::io(
                    format!("listing {}", self.bundle_root.display()),
                    e,
                ))
            }
        };
        let mut removed = Vec::new();
        for ent in entries.flatten() {
            let Some(id) = ent.file_name().to_str().map(String::from) else {
                continue;
            };
            if !valid_id(&id) {
                continue;
            }
            // A bundle without a config is being created, or its owner
            // was killed before runc started (the config is written
            // atomically, just before runc runs): nothing of runc's to
            // clean; the dir goes once it is clearly abandoned.
            let Some(pid) = bundle_owner(&ent.path()) else {
                if older_than(&ent.path(), ABANDONED_BUNDLE) {
                    let _ = std::fs::remove_dir_all(ent.path());
                    removed.push(id);
                }
                continue;
            };
            if !process_alive(pid) {
                self.delete(&id);
                let _ = std::fs::remove_dir_all(ent.path());
                removed.push(id);
            }
        }
        Ok(removed)
    }
}

/// A bundle dir without a config for this long belongs to a process that
/// was killed while creating it (that takes milliseconds when it lives).
const ABANDONED_BUNDLE: Duration = Duration::from_secs(60);

fn older_than(p: &Path, age: Duration) -> bool {
    std::fs::symlink_metadata(p)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|e| e > age)
}

/// The owner pid recorded in a bundle's `config.json` annotations.
fn bundle_owner(bundle: &Path) -> Option<i32> {
    let bytes = std::fs::read(bundle.join("config.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v["annotations"][OWNER_ANNOTATION].as_str()?.parse().ok()
}

fn process_alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks for existence.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Deletes the container and the bundle dir when dropped.
struct Cleanup<'a> {
    runc: &'a Runc,
    id: String,
    bundle: PathBuf,
    started: bool,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        // `runc run` in the foreground deletes the container itself when its
        // process exits; its state dir remains only when runc was killed or
        // failed half-way. A stat instead of another runc start.
        if self.started && self.runc.state_root.join(&self.id).exists() {
            self.runc.delete(&self.id);
        }
        if let Err(e) = std::fs::remove_dir_all(&self.bundle) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("removing bundle {}: {e}", self.bundle.display());
            }
        }
    }
}

/// How often the wait for runc looks at forwarded signals when none woke it.
const SIGNAL_CHECK: Duration = Duration::from_millis(50);

/// Blocks until the process behind `pidfd` exits, a signal interrupts the
/// wait, or `timeout` passes.
fn wait_exit(pidfd: Option<&rustix::fd::OwnedFd>, timeout: Duration) {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let Some(fd) = pidfd else {
        // No pidfd (Linux < 5.3): short naps are the only portable wait
        // that still lets us look at signals.
        std::thread::sleep(timeout.min(Duration::from_millis(2)));
        return;
    };
    let ts = Timespec {
        tv_sec: timeout.as_secs() as _,
        tv_nsec: timeout.subsec_nanos() as _,
    };
    let mut fds = [PollFd::new(fd, PollFlags::IN)];
    // EINTR (a signal) and errors alike: the caller looks again.
    let _ = poll(&mut fds, Some(&ts));
}

/// The RLIMIT_NOFILE runc can set: [`DEFAULT_NOFILE`], or our hard limit
/// when it is lower and we lack CAP_SYS_RESOURCE to exceed it.
fn nofile_limit() -> u64 {
    let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .maximum
        .unwrap_or(u64::MAX);
    // In a user namespace CAP_SYS_RESOURCE does not lift the hard limit.
    if hard >= DEFAULT_NOFILE || (has_cap_sys_resource() && !is_rootless()) {
        DEFAULT_NOFILE
    } else {
        hard
    }
}

/// `CAP_SYS_RESOURCE` is capability 24.
const CAP_SYS_RESOURCE_BIT: u64 = 1 << 24;

fn has_cap_sys_resource() -> bool {
    crate::proc_self_status("CapEff")
        .and_then(|h| u64::from_str_radix(&h, 16).ok())
        .is_some_and(|caps| caps & CAP_SYS_RESOURCE_BIT != 0)
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 1024
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'+'))
        && !id.starts_with('.')
}

/// The `error`-level messages of runc's JSON log.
fn runc_errors(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["level"] == "error")
        .filter_map(|v| v["msg"].as_str().map(String::from))
        .collect()
}

fn mkdir_private(dir: &Path) -> Result<(), Error> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))
}

impl Executor for Runc {
    fn run(&self, spec: &ContainerSpec, io: StdioConfig) -> Result<ExitStatus, Error> {
        if !valid_id(&spec.id) {
            return Err(Error::InvalidSpec(format!(
                "container id {:?} may only contain letters, digits, '_', '-', '.', '+'",
                spec.id
            )));
        }
        let rootfs = std::path::absolute(&spec.rootfs)
            .map_err(|e| Error::io(format!("resolving rootfs {}", spec.rootfs.display()), e))?;
        if !rootfs.is_dir() {
            return Err(Error::InvalidSpec(format!(
                "rootfs {} is not a directory",
                rootfs.display()
            )));
        }
        if spec.process.tty && !stdio::stdin_is_terminal() {
            return Err(Error::NotATerminal);
        }

        mkdir_private(&self.state_root)?;
        mkdir_private(&self.bundle_root)?;
        let bundle = self.bundle_root.join(&spec.id);
        std::fs::create_dir(&bundle).map_err(|e| {
            Error::io(
                format!(
                    "creating bundle {} (is container id {} already in use?)",
                    bundle.display(),
                    spec.id
                ),
                e,
            )
        })?;
        let mut cleanup = Cleanup {
            runc: self,
            id: spec.id.clone(),
            bundle: bundle.clone(),
            started: false,
        };

        let files =
            InjectedFiles::write(&bundle, &spec.effective_hostname(), &spec.extra.extra_hosts)?;
        let cgroups_path = self
            .cgroup_parent
            .as_ref()
            .map(|p| format!("{}/{}", p.trim_end_matches('/'), spec.id));
        let mut oci = build_oci_spec(
            spec,
            &rootfs,
            &files,
            cgroups_path.as_deref(),
            nofile_limit(),
        )?;
        oci.set_annotations(Some(
            [(OWNER_ANNOTATION.to_string(), std::process::id().to_string())].into(),
        ));
        let config = bundle.join("config.json");
        let json = serde_json::to_vec_pretty(&oci).map_err(|e| Error::spec(e.to_string()))?;
        // Written under a temp name and renamed: a config that is there is
        // whole, so a cleanup never mistakes a half-written one for none.
        let partial = bundle.join("config.json.partial");
        std::fs::write(&partial, json)
            .and_then(|()| std::fs::rename(&partial, &config))
            .map_err(|e| Error::io(format!("writing {}", config.display()), e))?;

        let log = bundle.join("runc.log");
        let mut cmd = self.command();
        cmd.arg("--log")
            .arg(&log)
            .args(["--log-format", "json", "run", "--bundle"])
            .arg(&bundle)
            .arg(&spec.id);
        let sinks = stdio::configure(&mut cmd, io, spec.process.stdin || spec.process.tty);

        let _signals = self.forward_signals.then(signals::Guard::install);
        let mut watch = signals::Watch::new();
        cleanup.started = true;
        let mut child = cmd
            .spawn()
            .map_err(|e| Error::io(format!("starting {}", self.binary.display()), e))?;
        let pumps = sinks.start(child.stdout.take(), child.stderr.take());
        let pumps = match pumps {
            Ok(p) => p,
            Err(e) => {
                self.kill(&spec.id, "KILL");
                let _ = child.wait();
                return Err(e);
            }
        };
        tracing::debug!(id = %spec.id, pid = child.id(), "runc started");

        // A pidfd turns "runc exited" into a poll() wake-up: the exit is
        // seen at once (the old 1, 2, 4, ... 50 ms naps noticed it up to
        // 50 ms late). A forwarded signal interrupts poll() when it lands on
        // this thread; else it is seen at the next SIGNAL_CHECK tick.
        let pidfd = rustix::process::Pid::from_raw(child.id() as i32).and_then(|pid| {
            rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()
        });
        let mut signals_seen = 0u32;
        let mut kill_at: Option<Instant> = None;
        let mut killed = false;
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) => {}
                Err(e) => {
                    self.kill(&spec.id, "KILL");
                    let _ = child.wait();
                    return Err(Error::io("waiting for runc", e));
                }
            }
            if let Some(r) = watch.poll() {
                signals_seen += 1;
                if signals_seen == 1 {
                    if !r.from_terminal {
                        // runc forwards what it receives to the container.
                        // SAFETY: signalling our own child process.
                        unsafe { libc::kill(child.id() as i32, r.signal) };
                    }
                    kill_at = Some(Instant::now() + self.stop_timeout);
                } else if !killed {
                    self.kill(&spec.id, "KILL");
                    killed = true;
                }
            }
            if !killed && kill_at.is_some_and(|t| Instant::now() >= t) {
                self.kill(&spec.id, "KILL");
                killed = true;
            }
            let mut timeout = SIGNAL_CHECK;
            if let Some(t) = kill_at.filter(|_| !killed) {
                timeout = timeout.min(t.saturating_duration_since(Instant::now()));
            }
            wait_exit(pidfd.as_ref(), timeout);
        };
        pumps.join()?;

        use std::os::unix::process::ExitStatusExt;
        let code = match (status.code(), status.signal()) {
            (Some(c), _) => c,
            (None, Some(sig)) => 128 + sig,
            (None, None) => 255,
        };
        if code != 0 && signals_seen == 0 {
            let errors = runc_errors(&log);
            if !errors.is_empty() {
                return Err(Error::Runc {
                    id: spec.id.clone(),
                    message: errors.join("; "),
                });
            }
        }
        drop(cleanup);
        Ok(ExitStatus::from_code(code))
    }
}

/// True when strata is not real root: an unprivileged user, or "root" in a
/// user namespace (`unshare --user --map-root-user`, rootless mode).
pub fn is_rootless() -> bool {
    // Asked several times per container; a process does not change user
    // namespace once running, so read /proc once.
    static ROOTLESS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ROOTLESS.get_or_init(|| {
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } != 0 {
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
fn run_dir() -> Result<PathBuf, Error> {
    if !is_rootless() {
        return Ok(PathBuf::from("/run/strata"));
    }
    let dir = if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        PathBuf::from(d).join("strata")
    } else {
        let outer = std::fs::read_to_string("/proc/self/uid_map")
            .ok()
            .and_then(|m| m.split_whitespace().nth(1).map(String::from))
            .unwrap_or_else(|| unsafe { libc::geteuid() }.to_string());
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
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        assert!(valid_id("strata-0af3"));
        assert!(!valid_id(""));
        assert!(!valid_id("../x"));
        assert!(!valid_id("a b"));
    }

    #[test]
    fn abandoned_configless_bundles_are_removed_young_ones_kept() {
        let t = tempfile::tempdir().unwrap();
        let runc = Runc::with_binary("/bin/true")
            .unwrap()
            .with_bundle_root(t.path());
        let old = t.path().join("build-old");
        let young = t.path().join("build-young");
        std::fs::create_dir(&old).unwrap();
        std::fs::create_dir(&young).unwrap();
        let an_hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
        std::fs::File::open(&old)
            .unwrap()
            .set_modified(an_hour_ago)
            .unwrap();
        let removed = runc.cleanup_stale().unwrap();
        assert_eq!(removed, vec!["build-old".to_string()]);
        assert!(!old.exists());
        assert!(young.exists(), "a bundle being created was removed");
    }

    #[test]
    fn only_a_private_directory_of_ours_is_a_run_dir() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let ok = t.path().join("ok");
        std::fs::create_dir(&ok).unwrap();
        std::fs::set_permissions(&ok, std::fs::Permissions::from_mode(0o700)).unwrap();
        check_private_dir(&ok).unwrap();
        let wide = t.path().join("wide");
        std::fs::create_dir(&wide).unwrap();
        std::fs::set_permissions(&wide, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = check_private_dir(&wide).unwrap_err().to_string();
        assert!(e.contains("mode 0777") && e.contains("remove it"), "{e}");
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&ok, &link).unwrap();
        let e = check_private_dir(&link).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        let file = t.path().join("file");
        std::fs::write(&file, b"").unwrap();
        assert!(check_private_dir(&file).is_err());
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            std::os::unix::fs::chown(&ok, Some(65534), None).unwrap();
            let e = check_private_dir(&ok).unwrap_err().to_string();
            assert!(e.contains("belongs to someone else (uid 65534"), "{e}");
        }
    }

    #[test]
    fn missing_binary_gives_install_hint() {
        let e = Runc::with_binary("/nonexistent/runc")
            .unwrap_err()
            .to_string();
        assert!(e.contains("apt-get install runc"), "{e}");
    }
}
