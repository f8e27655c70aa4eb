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

/// The annotation recording the owner's start time (clock ticks since boot,
/// `/proc/PID/stat` field 22), so a reused pid is not taken for the owner.
pub const OWNER_START_ANNOTATION: &str = "io.strata.owner-start";

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
    reaper: bool,
}

impl Runc {
    /// Finds runc: `$STRATA_RUNC`, then `runc` in `PATH`, then the usual
    /// system paths. The error says how to install it. Also removes
    /// containers left behind by strata processes that were killed
    /// ([`Runc::cleanup_stale`]: one readdir when there are none), best effort.
    pub fn locate() -> Result<Runc, Error> {
        let runc = Runc::find()?;
        if let Err(e) = runc.cleanup_stale() {
            tracing::debug!("cleaning up stale containers: {e}");
        }
        Ok(runc)
    }

    /// [`Runc::locate`] without the clean-up of stale containers.
    pub fn find() -> Result<Runc, Error> {
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
            reaper: false,
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

    /// Whether the first [`Executor::run`] starts the [`crate::reaper`],
    /// which kills this process's containers when it dies, even by SIGKILL
    /// (default false). Only for a binary whose `main` calls
    /// [`crate::reaper::run_if_reaper`] first.
    pub fn with_reaper(mut self, on: bool) -> Runc {
        self.reaper = on;
        self
    }

    /// Kills and deletes a stale container and removes its bundle.
    pub(crate) fn remove_stale(&self, id: &str, bundle: &Path) {
        self.kill_and_delete(id);
        let _ = std::fs::remove_dir_all(bundle);
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

    /// Kills every process of a container through its cgroup (`runc kill
    /// --all ID KILL`: processes that left the pid namespace's init behind
    /// too), then deletes it (`runc delete --force`), best effort.
    fn kill_and_delete(&self, id: &str) {
        let _ = self
            .command()
            .args(["kill", "--all", id, "KILL"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        self.delete(id);
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
    ///
    /// A stale container may still run (its strata was SIGKILLed while a
    /// RUN was running: `runc run` and the container outlive it): all its
    /// processes are killed through its cgroup before runc's state and the
    /// bundle are deleted. Only containers whose recorded owner (pid and
    /// start time) is gone are touched, never those of a live strata, so
    /// concurrent strata processes with other stores are safe. Also removes
    /// the network namespace files of dead owners ([`crate::netns`]).
    pub fn cleanup_stale(&self) -> Result<Vec<String>, Error> {
        self.stale_containers(true)
    }

    /// The containers [`Runc::cleanup_stale`] would remove, without
    /// touching them.
    pub fn find_stale(&self) -> Result<Vec<String>, Error> {
        self.stale_containers(false)
    }

    fn stale_containers(&self, remove: bool) -> Result<Vec<String>, Error> {
        if remove {
            if let Ok(dir) = crate::netns::default_dir() {
                crate::netns::cleanup_stale(&dir);
            }
        }
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
            let Some((pid, start)) = bundle_owner(&ent.path()) else {
                if older_than(&ent.path(), ABANDONED_BUNDLE) {
                    if remove {
                        let _ = std::fs::remove_dir_all(ent.path());
                    }
                    removed.push(id);
                }
                continue;
            };
            if !crate::netns::owner_alive(pid, start) {
                if remove {
                    self.remove_stale(&id, &ent.path());
                }
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

/// The owner pid and start time (absent in bundles of older stratas)
/// recorded in a bundle's `config.json` annotations.
pub(crate) fn bundle_owner(bundle: &Path) -> Option<(u32, Option<u64>)> {
    let bytes = std::fs::read(bundle.join("config.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let pid = v["annotations"][OWNER_ANNOTATION].as_str()?.parse().ok()?;
    let start = v["annotations"][OWNER_START_ANNOTATION]
        .as_str()
        .and_then(|s| s.parse().ok());
    Some((pid, start))
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

/// Rootless: no cgroup unless the spec asks for limits; then one under
/// the delegated cgroup, or an error naming each limit that cannot be
/// applied and why (never a limit silently dropped).
fn rootless_cgroup_path(spec: &ContainerSpec) -> Result<Option<String>, Error> {
    let limits = crate::cgroups::requested_limits(&spec.extra);
    if limits.is_empty() {
        return Ok(None);
    }
    let controllers: Vec<&str> = limits.iter().map(|(_, c)| *c).collect();
    match crate::cgroups::rootless_delegation(&controllers) {
        crate::cgroups::Delegation::Delegated { parent } => Ok(Some(format!(
            "{}/strata-{}",
            parent.trim_end_matches('/'),
            spec.id.trim_start_matches("strata-")
        ))),
        crate::cgroups::Delegation::Missing { why } => Err(Error::RootlessLimits {
            flags: limits.iter().map(|(f, _)| f.to_string()).collect(),
            why,
        }),
    }
}

fn mkdir_private(dir: &Path) -> Result<(), Error> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))
}

impl Runc {
    /// Writes the bundle dir `<bundle_root>/<id>` (config.json and the
    /// injected files) for `spec`; removed again when this fails.
    fn write_bundle(&self, spec: &ContainerSpec, rootfs: &Path) -> Result<PathBuf, Error> {
        let rootfs = rootfs.to_path_buf();
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

        let resolv = match &spec.network {
            crate::Network::Join(n) => n.resolv_conf.as_deref(),
            _ => None,
        };
        let fail = |e: Error| {
            let _ = std::fs::remove_dir_all(&bundle);
            e
        };
        let files = InjectedFiles::write(
            &bundle,
            &spec.effective_hostname(),
            resolv,
            &spec.extra.extra_hosts,
        )
        .map_err(fail)?;
        let cgroups_path = match self.cgroup_path(&spec.id) {
            Some(p) => Some(p),
            None if is_rootless() => rootless_cgroup_path(spec).map_err(fail)?,
            None => None,
        };
        let mut oci = build_oci_spec(
            spec,
            &rootfs,
            &files,
            cgroups_path.as_deref(),
            nofile_limit(),
        )
        .map_err(fail)?;
        let me = std::process::id();
        let mut annotations: std::collections::HashMap<String, String> =
            [(OWNER_ANNOTATION.to_string(), me.to_string())].into();
        if let Some(t) = crate::netns::process_start_time(me) {
            annotations.insert(OWNER_START_ANNOTATION.to_string(), t.to_string());
        }
        oci.set_annotations(Some(annotations));
        let config = bundle.join("config.json");
        let json = serde_json::to_vec_pretty(&oci)
            .map_err(|e| Error::spec(e.to_string()))
            .map_err(fail)?;
        // Written under a temp name and renamed: a config that is there is
        // whole, so a cleanup never mistakes a half-written one for none.
        let partial = bundle.join("config.json.partial");
        if let Err(e) =
            std::fs::write(&partial, json).and_then(|()| std::fs::rename(&partial, &config))
        {
            let _ = std::fs::remove_dir_all(&bundle);
            return Err(Error::io(format!("writing {}", config.display()), e));
        }
        Ok(bundle)
    }

    /// runc's `--root` state directory.
    pub fn state_root(&self) -> &Path {
        &self.state_root
    }

    /// The cgroup path a container `id` gets (relative to each hierarchy's
    /// root), when strata sets one: under the cgroup parent, or rootless,
    /// the delegated cgroup its bundle names (see [`crate::cgroups`]).
    pub fn cgroup_path(&self, id: &str) -> Option<String> {
        match &self.cgroup_parent {
            Some(p) => Some(format!("{}/{}", p.trim_end_matches('/'), id)),
            None => {
                let config = std::fs::read(self.bundle_root.join(id).join("config.json")).ok()?;
                let v: serde_json::Value = serde_json::from_slice(&config).ok()?;
                v["linux"]["cgroupsPath"].as_str().map(String::from)
            }
        }
    }

    /// Starts `spec` detached (`runc run --detach`): the container's
    /// stdout and stderr are the given files, stdin is `/dev/null`. Returns
    /// the container process' pid. The caller should be a child subreaper
    /// (`PR_SET_CHILD_SUBREAPER`) to wait for it, and must call
    /// [`Runc::remove`] once it has exited (runc keeps its state and
    /// cgroup until then, so the cgroup's counters can still be read).
    pub fn start_detached(
        &self,
        spec: &ContainerSpec,
        stdout: std::fs::File,
        stderr: std::fs::File,
    ) -> Result<u32, Error> {
        if !valid_id(&spec.id) {
            return Err(Error::InvalidSpec(format!(
                "invalid container id {:?}",
                spec.id
            )));
        }
        let rootfs = std::path::absolute(&spec.rootfs)
            .map_err(|e| Error::io(format!("resolving rootfs {}", spec.rootfs.display()), e))?;
        let bundle = self.write_bundle(spec, &rootfs)?;
        let log = bundle.join("runc.log");
        let pid_file = bundle.join("pid");
        let status = self
            .command()
            .arg("--log")
            .arg(&log)
            .args(["--log-format", "json", "run", "--detach", "--pid-file"])
            .arg(&pid_file)
            .arg("--bundle")
            .arg(&bundle)
            .arg(&spec.id)
            .stdin(std::process::Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .status()
            .map_err(|e| Error::io(format!("starting {}", self.binary.display()), e))?;
        let pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok());
        match (status.success(), pid) {
            (true, Some(pid)) => Ok(pid),
            _ => {
                let errors = runc_errors(&log);
                self.remove(&spec.id);
                Err(Error::Runc {
                    id: spec.id.clone(),
                    message: if errors.is_empty() {
                        format!("runc exited with {status}")
                    } else {
                        errors.join("; ")
                    },
                })
            }
        }
    }

    /// Kills what is left of container `id`, deletes runc's state (and
    /// the cgroup) and the bundle dir, best effort.
    pub fn remove(&self, id: &str) {
        if self.state_root.join(id).exists() {
            self.kill_and_delete(id);
        }
        let _ = std::fs::remove_dir_all(self.bundle_root.join(id));
    }

    /// `runc kill [--all] ID SIGNAL` (a name like `TERM` or a number).
    pub fn signal(&self, id: &str, signal: &str, all: bool) -> Result<(), Error> {
        let mut cmd = self.command();
        cmd.arg("kill");
        if all {
            cmd.arg("--all");
        }
        let out = cmd
            .args([id, signal])
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| Error::io(format!("running {} kill", self.binary.display()), e))?;
        if !out.status.success() {
            return Err(Error::Runc {
                id: id.to_string(),
                message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(())
    }

    /// Runs a process in the running container `id` (`runc exec`) in the
    /// foreground with our stdio; returns its exit code (`128 + N` when
    /// killed by signal N).
    pub fn exec(&self, id: &str, p: &crate::ProcessSpec) -> Result<ExitStatus, Error> {
        if p.tty && !stdio::stdin_is_terminal() {
            return Err(Error::NotATerminal);
        }
        let mut cmd = self.command();
        cmd.arg("exec");
        if p.tty {
            cmd.arg("-t");
        }
        cmd.arg("--cwd").arg(&p.cwd);
        cmd.arg("--user")
            .arg(format!("{}:{}", p.user.uid, p.user.gid));
        for g in &p.user.additional_gids {
            cmd.arg("--additional-gids").arg(g.to_string());
        }
        for e in &p.env {
            cmd.arg("--env").arg(e);
        }
        cmd.arg(id).args(&p.args);
        cmd.stdin(if p.stdin || p.tty {
            std::process::Stdio::inherit()
        } else {
            std::process::Stdio::null()
        });
        let status = cmd
            .status()
            .map_err(|e| Error::io(format!("running {} exec", self.binary.display()), e))?;
        use std::os::unix::process::ExitStatusExt;
        let code = match (status.code(), status.signal()) {
            (Some(c), _) => c,
            (None, Some(sig)) => 128 + sig,
            (None, None) => 255,
        };
        Ok(ExitStatus::from_code(code))
    }
}

impl Executor for Runc {
    #[allow(unsafe_code)] // each unsafe block below has its SAFETY comment
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

        let bundle = self.write_bundle(spec, &rootfs)?;
        let mut cleanup = Cleanup {
            runc: self,
            id: spec.id.clone(),
            bundle: bundle.clone(),
            started: false,
        };

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
        if self.reaper {
            crate::reaper::start(&self.binary, &self.state_root, &self.bundle_root);
        }
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
        if rustix::process::geteuid().as_raw() == 0 {
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
