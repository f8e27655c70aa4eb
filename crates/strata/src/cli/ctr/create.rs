//! `create`, `run -d` and attached `run`: a container's state, then its
//! monitor.

use super::*;

/// Builds the container's state from `run`'s flags.
pub(crate) fn create_state(g: &Global, a: &RunArgs) -> anyhow::Result<State> {
    let root = g.store_root();
    let store =
        Store::open(&root).with_context(|| format!("opening the store at {}", root.display()))?;
    let plan = crate::cli::run::plan(g, &store, a)?;
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
pub(super) fn proxy_signals(id: &str) {
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
