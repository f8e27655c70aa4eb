//! The monitor: the process that owns a running container (see the
//! module docs of `ctr`): mounts, starts, waits, logs, records the exit.

use super::*;

/// Starts the monitor of container `id` and waits until its process runs
/// (or failed to start: the error says why).
pub(super) fn start_monitor(root: &Path, id: &str) -> anyhow::Result<()> {
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
pub(super) fn report(msg: &str) {
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{msg}");
    let _ = out.flush();
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        use std::os::fd::AsRawFd;
        // SAFETY: replaces fd 1 with /dev/null.
        unsafe { libc::dup2(null.as_raw_fd(), 1) };
    }
}

pub(super) fn monitor(root: &Path, id: &str) -> i32 {
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
pub(super) fn run_monitored(
    root: &Path,
    state: &mut State,
    reported: &mut bool,
) -> anyhow::Result<i32> {
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
            crate::cli::init::wrap(args, &mut mounts)?
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
pub(super) fn wait_for(pid: u32) -> i32 {
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
pub(super) fn oom_killed(runc: &Runc, id: &str) -> bool {
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
