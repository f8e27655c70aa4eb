//! Containers that outlive the command that made them: `create`,
//! `run -d`, `start`, `stop`, `kill`, `restart`, `rm`, `wait`, `ps`,
//! `logs`, `exec`, `inspect`, `container prune`.
//!
//! Each container is a directory `ROOT/ctrs/<id>/`: `state.json` (what
//! `inspect` shows), `upper/` and `work/` (its writable layer, kept until
//! `rm`), `merged/` (the overlay, mounted while it runs), `init/` (the
//! runtime's init layer), `ctr.log` (+ `ctr.log.1`: stdout and stderr,
//! one timestamped line per record, bounded) and `lock`.
//!
//! A running container is owned by a monitor: strata re-executed with
//! [`MONITOR_ENV`], which forks once more and `setsid`s (so it survives
//! the strata that started it, even a SIGKILLed one), holds `lock` for
//! the container's whole life, is the child subreaper of the container's
//! init (`runc run --detach`), writes the log, owns pasta when the
//! network is private, and records the exit code and OOM kill. A
//! container whose state says running while nobody holds its lock lost
//! its monitor: it is shown as exited.

use std::io::{BufRead, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde::{Deserialize, Serialize};
use strata_engine::images;
use strata_runtime::{resolve_user, BindMount, ContainerSpec, MountSpec, ProcessSpec, Runc};
use strata_store::Store;

use super::container_network::PendingNetwork;
use super::run::RunArgs;
use super::Global;
pub(crate) use strata_engine::container::{Limits, Port};

/// Set, a strata process is a container monitor: `ROOT\nID`.
pub(crate) const MONITOR_ENV: &str = "STRATA_INTERNAL_MONITOR";

/// A container's log is rotated (one old file kept) past this size.
const LOG_LIMIT: u64 = 8 << 20;

/// What the container runs, fixed at `create`.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub(crate) struct CtrConfig {
    pub image: String,
    pub image_id: String,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub hostname: String,
    pub network: String,
    pub ports: Vec<Port>,
    pub volumes: Vec<(String, String, bool)>,
    pub add_hosts: Vec<(String, String)>,
    pub dns: Vec<String>,
    pub stop_signal: String,
    pub auto_remove: bool,
    pub limits: Limits,
}

/// `state.json`.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub(crate) struct State {
    pub id: String,
    pub name: String,
    pub created: String,
    /// created, running, exited
    pub status: String,
    pub pid: u32,
    pub exit_code: i32,
    pub oom_killed: bool,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub error: String,
    pub config: CtrConfig,
    /// The monitor's pid while it runs (0 otherwise): rootless, commands
    /// that act on the running container join its namespaces
    /// ([`super::ctr_userns`]).
    #[serde(default)]
    pub monitor_pid: u32,
    /// The monitor's start time (`/proc/PID/stat` field 22), so a reused
    /// pid is not taken for it.
    #[serde(default)]
    pub monitor_start: Option<u64>,
}

fn now() -> String {
    strata_oci::rfc3339_nano(time::OffsetDateTime::now_utc())
}

fn ctrs_dir(root: &Path) -> PathBuf {
    root.join("ctrs")
}

pub(crate) fn ctr_dir(root: &Path, id: &str) -> PathBuf {
    ctrs_dir(root).join(id)
}

fn random_id() -> String {
    let a = strata_runtime::new_container_id();
    let b = strata_runtime::new_container_id();
    format!("{}{}", &a["strata-".len()..], &b["strata-".len()..])
}

impl State {
    fn load(root: &Path, id: &str) -> anyhow::Result<State> {
        let p = ctr_dir(root, id).join("state.json");
        let bytes = std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", p.display()))
    }

    fn save(&self, root: &Path) -> anyhow::Result<()> {
        let dir = ctr_dir(root, &self.id);
        let tmp = dir.join("state.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)
            .and_then(|()| std::fs::rename(&tmp, dir.join("state.json")))
            .with_context(|| format!("writing {}", dir.join("state.json").display()))
    }

    fn short_id(&self) -> &str {
        &self.id[..12]
    }

    /// The state, corrected when its monitor is gone.
    fn refreshed(mut self, root: &Path) -> State {
        if self.status == "running" && !monitor_alive(root, &self.id) {
            // Reload: the monitor may have just finished writing.
            if let Ok(s) = State::load(root, &self.id) {
                self = s;
            }
            if self.status == "running" {
                // Its container may still run (runc run --detach): kill
                // it and delete runc's state, cgroup and bundle.
                if let Ok(runc) = Runc::find() {
                    runc.remove(&self.id);
                }
                unmount(&ctr_dir(root, &self.id).join("merged"));
                self.status = "exited".into();
                self.exit_code = 137;
                self.finished_at = Some(now());
                self.error = "the container's monitor process died".into();
                let _ = self.save(root);
            }
        }
        self
    }

    fn running(&self) -> bool {
        self.status == "running"
    }

    fn command_line(&self) -> String {
        let c = &self.config;
        c.entrypoint
            .iter()
            .chain(&c.cmd)
            .cloned()
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// True while a monitor holds the container's lock.
fn monitor_alive(root: &Path, id: &str) -> bool {
    let Ok(f) = std::fs::File::open(ctr_dir(root, id).join("lock")) else {
        return false;
    };
    match f.try_lock_shared() {
        Ok(()) => false,
        Err(std::fs::TryLockError::WouldBlock) => true,
        Err(_) => false,
    }
}

/// All containers, oldest first.
fn all(root: &Path) -> Vec<State> {
    all_as_saved(root)
        .into_iter()
        .map(|s| s.refreshed(root))
        .collect()
}

/// All containers as their `state.json` says, oldest first.
fn all_as_saved(root: &Path) -> Vec<State> {
    let mut out: Vec<State> = std::fs::read_dir(ctrs_dir(root))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| State::load(root, e.file_name().to_str()?).ok())
        .collect();
    out.sort_by(|a, b| a.created.cmp(&b.created));
    out
}

/// Finds a container by name, full id or unique id prefix.
fn find(root: &Path, key: &str) -> anyhow::Result<State> {
    pick(all(root), key)
}

/// [`find`] without correcting the state of containers whose monitor
/// died (which may run runc): for a look before strata has its namespaces.
pub(crate) fn find_as_saved(root: &Path, key: &str) -> anyhow::Result<State> {
    pick(all_as_saved(root), key)
}

fn pick(all: Vec<State>, key: &str) -> anyhow::Result<State> {
    let key = key.trim_start_matches('/');
    if let Some(s) = all.iter().find(|s| s.name == key || s.id == key) {
        return Ok(s.clone());
    }
    let matches: Vec<&State> = all.iter().filter(|s| s.id.starts_with(key)).collect();
    match matches.as_slice() {
        [one] if !key.is_empty() => Ok((*one).clone()),
        [] | [_] => bail!("No such container: {key}"),
        _ => bail!("multiple containers match the prefix {key:?}: give more of the id"),
    }
}

/// A container by name, id or id prefix, its state refreshed.
pub(crate) fn find_container(root: &Path, key: &str) -> anyhow::Result<State> {
    Ok(find(root, key)?.refreshed(root))
}

/// Ids of the containers (any state) created from image `image_id`.
pub(crate) fn users_of_image(root: &Path, image_id: &str) -> Vec<String> {
    all(root)
        .into_iter()
        .filter(|s| s.config.image_id == image_id)
        .map(|s| s.id)
        .collect()
}

// ---------------------------------------------------------------- create

/// Builds the container's state from `run`'s flags.
pub(crate) fn create_state(g: &Global, a: &RunArgs) -> anyhow::Result<State> {
    let root = g.store_root();
    let store =
        Store::open(&root).with_context(|| format!("opening the store at {}", root.display()))?;
    let plan = super::run::plan(g, &store, a)?;
    let network = a.network()?;
    let ports = a.ports(&network)?;
    let mut volumes = Vec::new();
    for m in strata_engine::container::network::volume_mounts(&a.volumes)? {
        if let MountSpec::Bind(b) = m {
            volumes.push((b.source.display().to_string(), b.destination, b.readonly));
        }
    }
    let id = random_id();
    let name = match &a.name {
        Some(n) => {
            let ok = !n.is_empty()
                && n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if !ok {
                bail!("invalid container name {n:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
            }
            n.clone()
        }
        None => format!("strata_{}", &id[..8]),
    };
    let limits = a.limits()?;
    let config = CtrConfig {
        image: a.image().to_string(),
        image_id: plan.image_id().to_string(),
        entrypoint: plan.entrypoint,
        cmd: plan.cmd,
        env: plan.env,
        working_dir: plan.working_dir,
        user: plan.user,
        hostname: a.hostname.clone().unwrap_or_else(|| id[..12].to_string()),
        network: network.name,
        ports,
        volumes,
        add_hosts: strata_engine::container::network::add_hosts(&a.add_host)?,
        dns: a.dns.clone(),
        stop_signal: plan.stop_signal,
        auto_remove: a.rm,
        limits,
    };
    let state = State {
        id: id.clone(),
        name: name.clone(),
        created: now(),
        status: "created".into(),
        pid: 0,
        exit_code: 0,
        oom_killed: false,
        started_at: None,
        finished_at: None,
        error: String::new(),
        config,
        monitor_pid: 0,
        monitor_start: None,
    };
    std::fs::create_dir_all(ctrs_dir(&root))?;
    // Names are unique: the name is claimed with an exclusive lock on
    // the containers dir while we look and create.
    let guard = std::fs::File::create(ctrs_dir(&root).join(".names.lock"))?;
    guard.lock()?;
    if let Some(other) = all(&root).iter().find(|s| s.name == name) {
        bail!(
            "Conflict. The container name \"/{name}\" is already in use by container \"{}\". \
             You have to remove (or rename) that container to be able to reuse that name.",
            other.id
        );
    }
    std::fs::create_dir_all(ctr_dir(&root, &id))?;
    state.save(&root)?;
    drop(guard);
    Ok(state)
}

/// `strata create`.
pub(crate) fn create(g: &Global, a: RunArgs) -> anyhow::Result<u8> {
    let s = create_state(g, &a)?;
    println!("{}", s.id);
    Ok(0)
}

/// `strata run -d`: create, start, print the id.
pub(crate) fn run_detached(g: &Global, a: RunArgs) -> anyhow::Result<u8> {
    if a.tty || a.interactive {
        // Accepted as Docker does; there is nothing to attach to.
    }
    let s = create_state(g, &a)?;
    let root = g.store_root();
    if let Err(e) = start_monitor(&root, &s.id) {
        if s.config.auto_remove {
            let _ = remove_dir(&root, &s.id);
        }
        if let Some(f) = e.downcast_ref::<StartFailed>() {
            eprintln!("strata: error: {}", f.message);
            return Ok(f.code.clamp(0, 255) as u8);
        }
        return Err(e);
    }
    println!("{}", s.id);
    Ok(0)
}

/// `strata run` in the foreground without `--rm` (or with `--name`):
/// a container that stays, started by its monitor; its output is
/// followed until it exits and SIGINT/SIGTERM/SIGHUP are passed to it
/// (Docker's `--sig-proxy`). With `--rm` it is removed here afterwards.
pub(crate) fn run_attached(g: &Global, a: RunArgs) -> anyhow::Result<u8> {
    let remove = a.rm;
    let mut s = create_state(g, &a)?;
    let root = g.store_root();
    if remove {
        // Removed here once its exit code is read, not by the monitor.
        s.config.auto_remove = false;
        s.save(&root)?;
    }
    let reader = LogReader::new(&root, &s.id, false);
    proxy_signals(&s.id);
    let code = match start_monitor(&root, &s.id) {
        Ok(()) => follow_until_exit(&root, &s.id, reader)?,
        Err(e) => match e.downcast_ref::<StartFailed>() {
            Some(f) => {
                eprintln!("strata: error: {}", f.message);
                f.code
            }
            None => {
                if remove {
                    let _ = remove_dir(&root, &s.id);
                }
                return Err(e);
            }
        },
    };
    if remove {
        remove_dir(&root, &s.id)?;
    }
    Ok(code.clamp(0, 255) as u8)
}

/// Passes SIGINT, SIGTERM and SIGHUP to container `id` from a waiter
/// thread (the signals are blocked in this thread and those it starts).
#[allow(unsafe_code)] // libc calls, each with its SAFETY comment
fn proxy_signals(id: &str) {
    // SAFETY: sigset_t is plain data initialised by sigemptyset; the calls
    // only change this thread's mask.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, sig);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    let id = id.to_string();
    let _ = std::thread::Builder::new()
        .name("sig-proxy".into())
        .spawn(move || loop {
            let mut sig = 0;
            // SAFETY: waits on the set built above.
            if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
                continue;
            }
            if let Ok(runc) = Runc::find() {
                let _ = runc.signal(&id, &sig.to_string(), false);
            }
        });
}

// ---------------------------------------------------------------- monitor

/// Starts the monitor of container `id` and waits until its process runs
/// (or failed to start: the error says why).
fn start_monitor(root: &Path, id: &str) -> anyhow::Result<()> {
    let (mut read, write) = std::io::pipe()?;
    let mut child = std::process::Command::new("/proc/self/exe")
        .env(MONITOR_ENV, format!("{}\n{id}", root.display()))
        .stdin(std::process::Stdio::null())
        .stdout(write)
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("starting the container monitor")?;
    // The intermediate process forks the monitor and exits at once.
    let _ = child.wait();
    let mut msg = String::new();
    read.read_to_string(&mut msg)?;
    let msg = msg.trim();
    if msg == "ok" {
        return Ok(());
    }
    if msg.is_empty() {
        bail!("the container monitor of {id} ended without a word");
    }
    let (code, message) = msg
        .strip_prefix("error ")
        .and_then(|r| r.split_once(": "))
        .and_then(|(c, m)| Some((c.parse::<i32>().ok()?, m)))
        .unwrap_or((125, msg.trim_start_matches("error: ")));
    Err(StartFailed {
        code,
        message: message.to_string(),
    }
    .into())
}

/// A container that could not start, with `docker run`'s exit code for
/// it (125, or 126/127 when its command cannot be run).
#[derive(Debug)]
pub(crate) struct StartFailed {
    pub code: i32,
    pub message: String,
}

impl std::fmt::Display for StartFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StartFailed {}

/// When this process was started as a container monitor, becomes it
/// (forks, setsid), runs the container to its end and exits; otherwise
/// returns at once. Call it first thing in `main`, while single-threaded.
#[allow(unsafe_code)] // libc calls, each with its SAFETY comment
pub(crate) fn run_if_monitor() {
    let Some(spec) = std::env::var_os(MONITOR_ENV) else {
        return;
    };
    let spec = spec.to_string_lossy().into_owned();
    let Some((root, id)) = spec.split_once('\n') else {
        std::process::exit(2);
    };
    // SAFETY: single-threaded here; the parent only exits.
    unsafe {
        match libc::fork() {
            -1 => {
                println!(
                    "error: forking the container monitor: {}",
                    std::io::Error::last_os_error()
                );
                libc::_exit(1);
            }
            0 => {}
            _ => libc::_exit(0),
        }
        libc::setsid();
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
    std::env::remove_var(MONITOR_ENV);
    let code = monitor(Path::new(root), id);
    std::process::exit(code);
}

/// Tells the starter how it went and lets go of its pipe.
#[allow(unsafe_code)] // libc calls, each with its SAFETY comment
fn report(msg: &str) {
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{msg}");
    let _ = out.flush();
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        use std::os::fd::AsRawFd;
        // SAFETY: replaces fd 1 with /dev/null.
        unsafe { libc::dup2(null.as_raw_fd(), 1) };
    }
}

fn monitor(root: &Path, id: &str) -> i32 {
    let dir = ctr_dir(root, id);
    let lock = match std::fs::File::create(dir.join("lock")) {
        Ok(f) => f,
        Err(e) => {
            report(&format!("error: container {id}: {e}"));
            return 1;
        }
    };
    if lock.try_lock().is_err() {
        report(&format!("error: container {id} is already running"));
        return 1;
    }
    let mut state = match State::load(root, id) {
        Ok(s) => s,
        Err(e) => {
            report(&format!("error: {e:#}"));
            return 1;
        }
    };
    let mut reported = false;
    let result = run_monitored(root, &mut state, &mut reported);
    let (code, err) = match result {
        Ok(code) => (code, None),
        Err(e) => (
            e.downcast_ref::<StartFailed>().map_or(125, |s| s.code),
            Some(format!("{e:#}")),
        ),
    };
    if let Some(e) = &err {
        state.error = e.clone();
    }
    state.status = "exited".into();
    state.pid = 0;
    state.monitor_pid = 0;
    state.monitor_start = None;
    state.exit_code = code;
    state.finished_at = Some(now());
    if state.config.auto_remove {
        let _ = remove_dir(root, id);
    } else {
        let _ = state.save(root);
    }
    // The starter reads the state once told: report after saving it.
    if let (Some(e), false) = (&err, reported) {
        report(&format!("error {code}: {e}"));
    }
    drop(lock);
    0
}

/// Mounts, starts, waits; returns the exit code.
fn run_monitored(root: &Path, state: &mut State, reported: &mut bool) -> anyhow::Result<i32> {
    let id = state.id.clone();
    let dir = ctr_dir(root, &id);
    // pasta configures the namespace (4-8 ms) while the store is opened
    // and the rootfs mounted.
    let mut network = PendingNetwork::start(&state.config.network, &state.config.ports);
    let store = Store::open(root)?;
    let image = images::load_image(&store, &state.config.image_id).with_context(|| {
        format!(
            "the image {} ({}) of container {} is gone",
            state.config.image, state.config.image_id, state.name
        )
    })?;
    let lease = store.lease("container")?;
    // A previous life that was not unmounted cleanly.
    unmount(&dir.join("merged"));
    let mount = strata_engine::container::mount_container_rootfs(&store, &image, &dir, &lease)?;
    let result = (|| -> anyhow::Result<i32> {
        let c = &state.config;
        let user = resolve_user(mount.target(), &c.user)?;
        let args: Vec<String> = c.entrypoint.iter().chain(&c.cmd).cloned().collect();
        let network_guard = network.wait()?;
        let private = network_guard.as_ref().and_then(|g| g.net.as_ref());
        let network =
            strata_engine::container::network::runtime_network(private, &c.network, &c.dns);
        let mut mounts: Vec<MountSpec> = c
            .volumes
            .iter()
            .map(|(s, d, ro)| {
                MountSpec::Bind(BindMount {
                    source: s.into(),
                    destination: d.clone(),
                    readonly: *ro,
                })
            })
            .collect();
        let mut extra = strata_runtime::ContainerExtras {
            extra_hosts: c.add_hosts.clone(),
            ..Default::default()
        };
        c.limits.apply(&mut extra, &mut mounts)?;
        let args = if c.limits.init {
            super::init::wrap(args, &mut mounts)?
        } else {
            args
        };
        let spec = ContainerSpec {
            id: id.clone(),
            rootfs: mount.target().to_path_buf(),
            process: ProcessSpec {
                args,
                env: c.env.clone(),
                cwd: c.working_dir.clone(),
                user,
                tty: false,
                stdin: false,
            },
            network,
            mounts,
            hostname: Some(c.hostname.clone()),
            readonly_rootfs: c.limits.read_only,
            extra,
        };
        let runc = Runc::find()?.with_signal_forwarding(false);
        let (out_r, out_w) = std::io::pipe()?;
        let (err_r, err_w) = std::io::pipe()?;
        let log = std::sync::Arc::new(std::sync::Mutex::new(LogWriter::open(&dir)?));
        let pumps: Vec<_> = [(out_r, "stdout"), (err_r, "stderr")]
            .into_iter()
            .map(|(r, stream)| {
                let log = log.clone();
                std::thread::spawn(move || pump(r, stream, &log))
            })
            .collect();
        let started = runc.start_detached(
            &spec,
            std::fs::File::from(std::os::fd::OwnedFd::from(out_w)),
            std::fs::File::from(std::os::fd::OwnedFd::from(err_w)),
        );
        let pid = match started {
            Ok(pid) => pid,
            Err(e) => {
                for p in pumps {
                    let _ = p.join();
                }
                return Err(StartFailed {
                    code: e.docker_exit_code(),
                    message: e.to_string(),
                }
                .into());
            }
        };
        state.status = "running".into();
        state.pid = pid;
        state.exit_code = 0;
        state.oom_killed = false;
        state.error.clear();
        state.started_at = Some(now());
        state.finished_at = None;
        state.monitor_pid = std::process::id();
        state.monitor_start = strata_runtime::netns::process_start_time(state.monitor_pid);
        state.save(root)?;
        report("ok");
        *reported = true;
        let code = wait_for(pid);
        state.oom_killed = oom_killed(&runc, &id);
        runc.remove(&id);
        for p in pumps {
            let _ = p.join();
        }
        Ok(code)
    })();
    let _ = mount.unmount();
    drop(lease);
    result
}

/// Waits for `pid` (our child once runc exited: we are a subreaper),
/// reaping other orphans on the way; its exit code as Docker reports it.
#[allow(unsafe_code)] // libc calls, each with its SAFETY comment
fn wait_for(pid: u32) -> i32 {
    loop {
        let mut status = 0;
        // SAFETY: waitpid on any child with a valid status pointer.
        let r = unsafe { libc::waitpid(-1, &mut status, 0) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            // No children: the process is not ours (not reparented);
            // poll for it.
            while Path::new(&format!("/proc/{pid}")).exists() {
                std::thread::sleep(Duration::from_millis(50));
            }
            return 255;
        }
        if r as u32 == pid {
            if libc::WIFEXITED(status) {
                return libc::WEXITSTATUS(status);
            }
            if libc::WIFSIGNALED(status) {
                return 128 + libc::WTERMSIG(status);
            }
        }
    }
}

/// Whether the kernel's OOM killer killed a process of the container's
/// cgroup (read before runc deletes it).
fn oom_killed(runc: &Runc, id: &str) -> bool {
    let Some(cg) = runc.cgroup_path(id) else {
        return false;
    };
    let cg = cg.trim_start_matches('/');
    let count = |path: String, key: &str| -> u64 {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix(key).map(|v| v.trim().parse().unwrap_or(0)))
            .unwrap_or(0)
    };
    count(
        format!("/sys/fs/cgroup/memory/{cg}/memory.oom_control"),
        "oom_kill ",
    ) > 0
        || count(format!("/sys/fs/cgroup/{cg}/memory.events"), "oom_kill ") > 0
        || count(
            format!("/sys/fs/cgroup/unified/{cg}/memory.events"),
            "oom_kill ",
        ) > 0
}

/// The bounded log: `<time> <stream> <text>` lines.
struct LogWriter {
    path: PathBuf,
    file: std::fs::File,
    size: u64,
    limit: u64,
}

impl LogWriter {
    fn open(dir: &Path) -> anyhow::Result<LogWriter> {
        let path = dir.join("ctr.log");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(LogWriter {
            path,
            file,
            size,
            limit: LOG_LIMIT,
        })
    }

    fn line(&mut self, stream: &str, text: &[u8]) {
        if self.size > self.limit {
            let _ = std::fs::rename(&self.path, self.path.with_extension("log.1"));
            if let Ok(f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
            {
                self.file = f;
                self.size = 0;
            }
        }
        // A record without its own newline (output that does not end in
        // one) is marked partial: readers drop the newline added here.
        let partial = if text.ends_with(b"\n") {
            ""
        } else {
            "-partial"
        };
        let mut rec = format!("{} {stream}{partial} ", now()).into_bytes();
        rec.extend_from_slice(text);
        if !partial.is_empty() {
            rec.push(b'\n');
        }
        if self.file.write_all(&rec).is_ok() {
            self.size += rec.len() as u64;
        }
    }
}

fn pump(r: std::io::PipeReader, stream: &'static str, log: &std::sync::Mutex<LogWriter>) {
    let mut r = std::io::BufReader::new(r);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match r.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                if let Ok(mut l) = log.lock() {
                    l.line(stream, &buf);
                }
            }
        }
    }
}

// ---------------------------------------------------------------- commands

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
fn follow_until_exit(root: &Path, id: &str, mut reader: LogReader) -> anyhow::Result<i32> {
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

fn sig_name(s: &str) -> String {
    s.trim_start_matches("SIG").to_uppercase()
}

/// A signal name (`TERM`, `SIGTERM`) or number.
fn signal_number(sig: &str) -> Option<i32> {
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
fn signal_container(runc: &Runc, s: &State, sig: &str, all: bool) -> anyhow::Result<()> {
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

fn wait_stopped(root: &Path, id: &str, timeout: Duration) -> bool {
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

fn stop_one(root: &Path, s: &State, time: u64, signal: Option<&str>) -> anyhow::Result<()> {
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
fn each_container(
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
fn unmount(p: &Path) {
    use std::os::unix::ffi::OsStrExt;
    if let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) {
        // SAFETY: plain syscall on a valid C string.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

fn remove_dir(root: &Path, id: &str) -> anyhow::Result<()> {
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

#[derive(clap::Args, Debug)]
pub(crate) struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// `table`, `json`, or a Go template such as '{{.Names}} {{.Status}}'
    #[arg(long)]
    pub format: Option<String>,
}

fn status_text(s: &State) -> String {
    let since = |t: &Option<String>| {
        t.as_deref()
            .and_then(super::output::parse_time)
            .map(|t| (time::OffsetDateTime::now_utc() - t).whole_seconds())
            .map(super::output::human_duration)
            .unwrap_or_default()
    };
    match s.status.as_str() {
        "running" => format!("Up {}", since(&s.started_at)),
        "created" => "Created".into(),
        _ => format!("Exited ({}) {} ago", s.exit_code, since(&s.finished_at)),
    }
}

fn ps_fields(s: &State, trunc: bool) -> Vec<(&'static str, String)> {
    let mut cmd = s.command_line();
    if trunc && cmd.chars().count() > 20 {
        cmd = format!("{}…", cmd.chars().take(19).collect::<String>());
    }
    vec![
        (
            "ID",
            if trunc {
                s.short_id().to_string()
            } else {
                s.id.clone()
            },
        ),
        ("Image", s.config.image.clone()),
        ("Command", format!("\"{cmd}\"")),
        ("CreatedAt", s.created.clone()),
        ("RunningFor", super::output::since(&s.created)),
        ("Status", status_text(s)),
        ("State", s.status.clone()),
        (
            "Ports",
            s.config
                .ports
                .iter()
                .map(Port::display)
                .collect::<Vec<_>>()
                .join(", "),
        ),
        ("Names", s.name.clone()),
        ("Networks", s.config.network.clone()),
    ]
}

pub(crate) fn ps(g: &Global, a: PsArgs) -> anyhow::Result<u8> {
    let root = g.store_root();
    let list: Vec<State> = all(&root)
        .into_iter()
        .rev()
        .filter(|s| a.all || s.running())
        .collect();
    let mut out = std::io::stdout().lock();
    if a.quiet {
        for s in &list {
            writeln!(out, "{}", if a.no_trunc { &s.id } else { s.short_id() })?;
        }
        return Ok(0);
    }
    match a.format.as_deref() {
        Some("json") => {
            for s in &list {
                let m: serde_json::Map<String, serde_json::Value> = ps_fields(s, !a.no_trunc)
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.into()))
                    .collect();
                writeln!(out, "{}", serde_json::Value::Object(m))?;
            }
        }
        Some(t) if t != "table" => {
            for s in &list {
                let mut line = t.replace("\\t", "\t");
                for (k, v) in ps_fields(s, !a.no_trunc) {
                    line = line.replace(&format!("{{{{.{k}}}}}"), &v);
                }
                writeln!(out, "{line}")?;
            }
        }
        _ => {
            let heads = [
                "CONTAINER ID",
                "IMAGE",
                "COMMAND",
                "CREATED",
                "STATUS",
                "PORTS",
                "NAMES",
            ];
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|s| {
                    let f = ps_fields(s, !a.no_trunc);
                    let get = |k: &str| f.iter().find(|(n, _)| *n == k).unwrap().1.clone();
                    vec![
                        get("ID"),
                        get("Image"),
                        get("Command"),
                        get("RunningFor"),
                        get("Status"),
                        get("Ports"),
                        get("Names"),
                    ]
                })
                .collect();
            let mut widths: Vec<usize> = heads.iter().map(|h| h.len()).collect();
            for r in &rows {
                for (i, c) in r.iter().enumerate() {
                    widths[i] = widths[i].max(c.chars().count());
                }
            }
            let fmt = |cells: Vec<String>| {
                let n = cells.len();
                cells
                    .into_iter()
                    .enumerate()
                    .map(|(i, c)| {
                        if i + 1 == n {
                            c
                        } else {
                            format!("{c:<w$}   ", w = widths[i])
                        }
                    })
                    .collect::<String>()
            };
            writeln!(
                out,
                "{}",
                fmt(heads.iter().map(|h| h.to_string()).collect())
            )?;
            for r in rows {
                writeln!(out, "{}", fmt(r))?;
            }
        }
    }
    Ok(0)
}

#[derive(clap::Args, Debug)]
pub(crate) struct LogsArgs {
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end ("all" for all)
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    pub container: String,
}

/// Reads a container's log records from where it left off.
struct LogReader {
    path: PathBuf,
    offset: u64,
    timestamps: bool,
}

impl LogReader {
    fn new(root: &Path, id: &str, timestamps: bool) -> LogReader {
        let path = ctr_dir(root, id).join("ctr.log");
        let offset = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        LogReader {
            path,
            offset,
            timestamps,
        }
    }

    fn records(&mut self) -> anyhow::Result<Vec<(String, String, Vec<u8>)>> {
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return Ok(Vec::new());
        };
        let len = f.metadata()?.len();
        if len < self.offset {
            self.offset = 0; // rotated
        }
        f.seek(std::io::SeekFrom::Start(self.offset))?;
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes)?;
        // Only whole lines.
        let end = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        bytes.truncate(end);
        self.offset += end as u64;
        Ok(parse_records(&bytes))
    }

    fn print(
        &self,
        recs: &[(String, String, Vec<u8>)],
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> anyhow::Result<()> {
        for (t, stream, text) in recs {
            let w: &mut dyn Write = if stream.starts_with("stderr") {
                &mut *err
            } else {
                &mut *out
            };
            if self.timestamps {
                write!(w, "{t} ")?;
            }
            let text = match stream.ends_with("-partial") {
                true => text.strip_suffix(b"\n").unwrap_or(text),
                false => text,
            };
            w.write_all(text)?;
            w.flush()?;
        }
        Ok(())
    }

    fn print_new(&mut self, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<()> {
        let r = self.records()?;
        self.print(&r, out, err)
    }
}

fn parse_records(bytes: &[u8]) -> Vec<(String, String, Vec<u8>)> {
    bytes
        .split_inclusive(|&b| b == b'\n')
        .filter_map(|l| {
            let mut it = l.splitn(3, |&b| b == b' ');
            let t = String::from_utf8_lossy(it.next()?).into_owned();
            let s = String::from_utf8_lossy(it.next()?).into_owned();
            Some((t, s, it.next()?.to_vec()))
        })
        .collect()
}

pub(crate) fn logs(g: &Global, a: LogsArgs) -> anyhow::Result<u8> {
    let root = g.store_root();
    let s = find(&root, &a.container)?;
    let dir = ctr_dir(&root, &s.id);
    let mut bytes = std::fs::read(dir.join("ctr.log.1")).unwrap_or_default();
    let mut reader = LogReader {
        path: dir.join("ctr.log"),
        offset: 0,
        timestamps: a.timestamps,
    };
    let mut recs = parse_records(&std::mem::take(&mut bytes));
    recs.extend(reader.records()?);
    if a.tail != "all" {
        let n: usize = a
            .tail
            .parse()
            .with_context(|| format!("invalid --tail {:?}: a number or all", a.tail))?;
        let skip = recs.len().saturating_sub(n);
        recs.drain(..skip);
    }
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    reader.print(&recs, &mut out, &mut err)?;
    if a.follow {
        loop {
            let alive = monitor_alive(&root, &s.id);
            reader.print_new(&mut out, &mut err)?;
            if !alive {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(0)
}

#[derive(clap::Args, Debug)]
pub(crate) struct ExecArgs {
    /// Keep stdin open
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Detached: run in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Username or UID (format: name|uid[:group|gid])
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// The container, then the command and its arguments
    #[arg(
        value_name = "CONTAINER COMMAND [ARG...]",
        required = true,
        num_args = 2..,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub words: Vec<String>,
}

pub(crate) fn exec(g: &Global, a: ExecArgs) -> anyhow::Result<u8> {
    let root = g.store_root();
    let s = find(&root, &a.words[0])?;
    if !s.running() {
        bail!("container {} is not running", s.id);
    }
    // Rootless, runc can enter the container only from its monitor's user
    // namespace, which main joined when it could (cli::ctr_userns).
    if strata_runtime::is_rootless() && !super::ctr_userns::in_our_user_namespace(s.pid) {
        bail!(
            "cannot exec in container {}: it runs in the user namespace of the strata process \
             that started it, and this strata is in another one (run `strata exec` directly \
             as the user who started the container, not under `unshare` or `strata unshare`)",
            s.name
        );
    }
    let rootfs = ctr_dir(&root, &s.id).join("merged");
    let user = resolve_user(&rootfs, a.user.as_deref().unwrap_or(&s.config.user))?;
    let mut env = s.config.env.clone();
    for e in &a.env {
        if let Some((key, value)) = super::key_value_or_env(e) {
            env.retain(|x| x.split('=').next() != Some(key.as_str()));
            env.push(format!("{key}={value}"));
        }
    }
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push(format!("PATH={}", strata_runtime::DEFAULT_PATH));
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", user.home));
    }
    let p = ProcessSpec {
        args: a.words[1..].to_vec(),
        env,
        cwd: a
            .workdir
            .clone()
            .unwrap_or_else(|| s.config.working_dir.clone()),
        user,
        tty: a.tty,
        stdin: a.interactive,
    };
    let status = Runc::find()?.exec(&s.id, &p)?;
    Ok(status.code.clamp(0, 255) as u8)
}

/// Docker's `inspect` shape of a container.
pub(crate) fn inspect_json(root: &Path, s: &State) -> serde_json::Value {
    let c = &s.config;
    let ports: serde_json::Map<String, serde_json::Value> = c
        .ports
        .iter()
        .map(|p| {
            (
                format!("{}/{}", p.container_port, p.proto),
                serde_json::json!([{"HostIp": if p.host_ip.is_empty() {"0.0.0.0"} else {&p.host_ip}, "HostPort": p.host_port.to_string()}]),
            )
        })
        .collect();
    let dir = ctr_dir(root, &s.id);
    serde_json::json!({
        "Id": s.id,
        "Created": s.created,
        "Path": c.entrypoint.iter().chain(&c.cmd).next().cloned().unwrap_or_default(),
        "Args": c.entrypoint.iter().chain(&c.cmd).skip(1).cloned().collect::<Vec<_>>(),
        "State": {
            "Status": s.status,
            "Running": s.running(),
            "Paused": false,
            "Restarting": false,
            "OOMKilled": s.oom_killed,
            "Dead": false,
            "Pid": s.pid,
            "ExitCode": s.exit_code,
            "Error": s.error,
            "StartedAt": s.started_at.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
            "FinishedAt": s.finished_at.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
        },
        "Image": c.image_id,
        "LogPath": dir.join("ctr.log"),
        "Name": format!("/{}", s.name),
        "HostConfig": {
            "NetworkMode": c.network,
            "AutoRemove": c.auto_remove,
            "ReadonlyRootfs": c.limits.read_only,
            "Memory": c.limits.memory.unwrap_or(0),
            "NanoCpus": c.limits.cpus.map(|x| (x * 1e9) as i64).unwrap_or(0),
            "PidsLimit": c.limits.pids_limit,
            "CapAdd": c.limits.cap_add,
            "CapDrop": c.limits.cap_drop,
            "Init": c.limits.init,
            "ExtraHosts": c.add_hosts.iter().map(|(h, ip)| format!("{h}:{ip}")).collect::<Vec<_>>(),
            "Dns": c.dns,
            "PortBindings": ports,
        },
        "GraphDriver": {
            "Name": "overlay2",
            "Data": {
                "UpperDir": dir.join("upper"),
                "WorkDir": dir.join("work"),
                "MergedDir": dir.join("merged"),
            }
        },
        "Mounts": c.volumes.iter().map(|(src, dst, ro)| serde_json::json!({
            "Type": "bind", "Source": src, "Destination": dst, "Mode": if *ro {"ro"} else {""}, "RW": !ro, "Propagation": "rprivate"
        })).collect::<Vec<_>>(),
        "Config": {
            "Hostname": c.hostname,
            "User": c.user,
            "Env": c.env,
            "Cmd": c.cmd,
            "Entrypoint": if c.entrypoint.is_empty() { serde_json::Value::Null } else { c.entrypoint.clone().into() },
            "Image": c.image,
            "WorkingDir": c.working_dir,
            "StopSignal": c.stop_signal,
            "ExposedPorts": c.ports.iter().map(|p| (format!("{}/{}", p.container_port, p.proto), serde_json::json!({}))).collect::<serde_json::Map<_, _>>(),
        },
        "NetworkSettings": {
            "Ports": ports,
            "Networks": { c.network.clone(): {} },
        },
    })
}

/// The container named `key`, if there is one (for `inspect`).
pub(crate) fn try_find(root: &Path, key: &str) -> Option<State> {
    find(root, key).ok()
}

#[derive(clap::Args, Debug)]
pub(crate) struct InspectArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub(crate) fn inspect(g: &Global, a: InspectArgs) -> anyhow::Result<u8> {
    let root = g.store_root();
    let mut out = Vec::new();
    let mut failed = false;
    for key in &a.containers {
        match find(&root, key) {
            Ok(s) => out.push(inspect_json(&root, &s)),
            Err(e) => {
                eprintln!("strata: error: {e:#}");
                failed = true;
            }
        }
    }
    let _ = writeln!(std::io::stdout(), "{}", serde_json::to_string_pretty(&out)?);
    Ok(u8::from(failed))
}

#[derive(clap::Args, Debug)]
pub(crate) struct PruneArgs {
    /// Do not prompt for confirmation (strata never prompts)
    #[arg(short, long)]
    pub force: bool,
}

pub(crate) fn prune(g: &Global, _a: PruneArgs) -> anyhow::Result<u8> {
    let root = g.store_root();
    println!("Deleted Containers:");
    for s in all(&root) {
        if !s.running() {
            remove_dir(&root, &s.id)?;
            println!("{}", s.id);
        }
    }
    Ok(0)
}

/// `strata container ...`.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum ContainerCommand {
    /// List containers
    #[command(alias = "list", alias = "ps")]
    Ls(PsArgs),
    /// Create a new container
    Create(RunArgs),
    /// Run a command in a new container
    Run(RunArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Remove one or more containers
    Rm(RmArgs),
    /// Block until containers stop, then print their exit codes
    Wait(WaitArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Run a command in a running container
    Exec(ExecArgs),
    /// Display detailed information on containers
    Inspect(InspectArgs),
    /// Remove all stopped containers
    Prune(PruneArgs),
    /// Copy files between a container and the host
    Cp(super::cp::CpArgs),
    /// Display the running processes of a container
    Top(super::top::TopArgs),
    /// Create a new image from a container's changes
    Commit(super::commit::CommitArgs),
    /// Export a container's filesystem as a tar archive
    Export(super::commit::ExportArgs),
}

pub(crate) fn dispatch(g: &Global, c: ContainerCommand) -> anyhow::Result<u8> {
    match c {
        ContainerCommand::Ls(a) => ps(g, a),
        ContainerCommand::Create(a) => create(g, a),
        ContainerCommand::Run(a) => super::run::run(g, a),
        ContainerCommand::Start(a) => start(g, a),
        ContainerCommand::Stop(a) => stop(g, a),
        ContainerCommand::Restart(a) => restart(g, a),
        ContainerCommand::Kill(a) => kill(g, a),
        ContainerCommand::Rm(a) => rm(g, a),
        ContainerCommand::Wait(a) => wait(g, a),
        ContainerCommand::Logs(a) => logs(g, a),
        ContainerCommand::Exec(a) => exec(g, a),
        ContainerCommand::Inspect(a) => inspect(g, a),
        ContainerCommand::Prune(a) => prune(g, a),
        ContainerCommand::Cp(a) => super::cp::cp(g, a),
        ContainerCommand::Top(a) => super::top::top(g, a),
        ContainerCommand::Commit(a) => super::commit::commit(g, a),
        ContainerCommand::Export(a) => super::commit::export(g, a),
    }
}

/// `rmi`/`image rm`: drops (with Docker's conflict message) the names
/// whose image a container uses, unless `force`. True when one was refused.
pub(crate) fn refuse_used_images(g: &Global, names: &mut Vec<String>, force: bool) -> bool {
    if force {
        return false;
    }
    let root = g.store_root();
    if !ctrs_dir(&root).exists() {
        return false;
    }
    let Ok(store) = Store::open(&root) else {
        return false;
    };
    let mut refused = false;
    names.retain(|name| {
        let Ok(id) = images::find_image_id(&store, name) else {
            return true;
        };
        match users_of_image(&root, &id.to_string()).first() {
            Some(ctr) => {
                eprintln!(
                    "Error response from daemon: conflict: unable to remove repository reference \"{name}\" (must force) - container {} is using its referenced image {}",
                    &ctr[..12],
                    &id.to_string().trim_start_matches("sha256:")[..12]
                );
                refused = true;
                false
            }
            None => true,
        }
    });
    refused
}

/// `inspect NAME...`: when every name is a container, prints them and
/// returns the exit code; otherwise `None` (they are images).
pub(crate) fn inspect_if_containers(g: &Global, names: &[String]) -> Option<anyhow::Result<u8>> {
    let root = g.store_root();
    if !ctrs_dir(&root).exists() {
        return None;
    }
    let found: Vec<State> = names.iter().filter_map(|n| try_find(&root, n)).collect();
    if found.len() != names.len() {
        return None;
    }
    let out: Vec<serde_json::Value> = found.iter().map(|s| inspect_json(&root, s)).collect();
    Some(
        serde_json::to_string_pretty(&out)
            .map(|t| {
                let _ = writeln!(std::io::stdout(), "{t}");
                0
            })
            .map_err(Into::into),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_parse_like_docker() {
        let p = Port::parse("127.0.0.1:18080:80").unwrap();
        assert_eq!(p.display(), "127.0.0.1:18080->80/tcp");
        assert_eq!(
            Port::parse("8080:80/udp").unwrap().display(),
            "0.0.0.0:8080->80/udp"
        );
        assert_eq!(Port::parse("80").unwrap().host_port, 80);
        assert!(Port::parse("x:80").is_err());
        assert!(Port::parse("1.2.3:80:80").is_err());
        assert!(Port::parse("80/sctp").is_err());
    }

    #[test]
    fn the_log_is_bounded_and_partial_lines_stay_exact() {
        let t = tempfile::tempdir().unwrap();
        let mut w = LogWriter::open(t.path()).unwrap();
        w.limit = 1000;
        for i in 0..100 {
            w.line("stdout", format!("line {i}\n").as_bytes());
        }
        w.line("stderr", b"no newline");
        let cur = std::fs::metadata(t.path().join("ctr.log")).unwrap().len();
        let old = std::fs::metadata(t.path().join("ctr.log.1")).unwrap().len();
        assert!(cur <= 1100 && old <= 1100, "{cur} {old}");
        let mut r = LogReader {
            path: t.path().join("ctr.log"),
            offset: 0,
            timestamps: false,
        };
        let recs = r.records().unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        r.print(&recs, &mut out, &mut err).unwrap();
        assert!(String::from_utf8_lossy(&out).ends_with("line 99\n"));
        assert_eq!(err, b"no newline");
    }

    #[test]
    fn log_records_round_trip() {
        let r = parse_records(b"2026-01-01T00:00:00Z stdout hello world\n2026 stderr x\n");
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].2, b"hello world\n");
        assert_eq!(r[1].1, "stderr");
    }
}
