//! `exec`, `inspect` and `container prune`.

use super::*;

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
    if strata_runtime::is_rootless() && !crate::cli::ctr_userns::in_our_user_namespace(s.pid) {
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
        if let Some((key, value)) = crate::cli::key_value_or_env(e) {
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
