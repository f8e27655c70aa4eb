//! `strata run` (and the flags `create` shares): a foreground container,
//! or with `-d` a detached one owned by a monitor ([`super::ctr`]).

use anyhow::{bail, Context as _};
use strata_engine::images;
use strata_engine::mounts::MountedRootfs;
use strata_runtime::{
    resolve_user, write_init_layer, BindMount, ContainerExtras, ContainerSpec, Executor, MountSpec,
    Network, PastaOptions, PrivateNetwork, ProcessSpec, Runc, StdioConfig, Ulimit,
};
use strata_store::Store;

use super::ctr::{Limits, Port};
use super::Global;

#[derive(clap::Args, Debug)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Run the container in the background and print its ID
    #[arg(short, long)]
    pub detach: bool,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Platform to run, for a multi-platform image (default: the host's; others run under emulation)
    #[arg(long)]
    pub platform: Option<String>,
    /// Remove the container's files when it exits
    #[arg(long)]
    pub rm: bool,
    /// Keep stdin open
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Set environment variables (K=V, or K to take it from the environment)
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Read environment variables from a file (K=V lines, # comments)
    #[arg(long = "env-file")]
    pub env_file: Vec<std::path::PathBuf>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Username or UID (format: name|uid[:group|gid])
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// Network: private (the default; bridge is an alias), host or none
    #[arg(long = "network", alias = "net")]
    pub network: Option<String>,
    /// Publish a container's port to the host ([IP:]HOST:CONTAINER[/udp]); needs --network private
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Add a line to /etc/hosts (HOST:IP)
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    /// DNS servers for the container's resolv.conf (private network)
    #[arg(long)]
    pub dns: Vec<String>,
    /// Bind mount a volume (SRC:DST[:ro])
    #[arg(short = 'v', long = "volume")]
    pub volumes: Vec<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Memory limit (e.g. 32m, 1g)
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Number of CPUs (e.g. 0.5)
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Maximum number of processes (-1: unlimited)
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    /// Ulimit options (NAME=SOFT[:HARD])
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Size of /dev/shm (e.g. 64m)
    #[arg(long = "shm-size")]
    pub shm_size: Option<String>,
    /// Mount the container's root filesystem read-only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Mount a tmpfs (PATH[:size=N,mode=M])
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Add Linux capabilities
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// Security options: no-new-privileges[:true], seccomp=unconfined
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Pull image before running: missing, always, never
    #[arg(long, default_value = "missing")]
    pub pull: String,
    /// The image, then the command and its arguments: every word after
    /// the image belongs to the container (`--help`, `-e`, `--` included).
    #[arg(
        value_name = "IMAGE [COMMAND [ARG...]]",
        required = true,
        num_args = 1..,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub image_and_args: Vec<String>,
}

impl RunArgs {
    /// The image named.
    pub fn image(&self) -> &str {
        &self.image_and_args[0]
    }

    /// The words after the image.
    pub fn args(&self) -> &[String] {
        &self.image_and_args[1..]
    }
}

/// The image of `run`/`create`, for `--platform` when given; refused
/// when this host cannot run its platform.
pub fn load_for_platform(store: &Store, a: &RunArgs) -> anyhow::Result<images::BaseImage> {
    let image = match &a.platform {
        Some(p) => {
            let p =
                strata_oci::Platform::parse(p).map_err(|e| anyhow::anyhow!("--platform: {e}"))?;
            let id = strata_store::transfer::resolve_image_for(store, a.image(), &p)?
                .with_context(|| format!("No such image: {}", a.image()))?;
            images::load_image(store, &id.to_string())?
        }
        None => images::load_image(store, a.image())?,
    };
    strata_runtime::binfmt::ensure_can_run(
        &image.config.os,
        &image.config.architecture,
        image.config.variant.as_deref(),
    )
    .map_err(|e| anyhow::anyhow!("{}: {e}", a.image()))?;
    Ok(image)
}

/// Docker's rules for the container's command: `--entrypoint` replaces
/// ENTRYPOINT and clears CMD; arguments after the image replace CMD.
pub fn entrypoint_and_cmd(
    cfg: &strata_engine::config::RuntimeConfig,
    a: &RunArgs,
) -> (Vec<String>, Vec<String>) {
    let (entrypoint, default_cmd) = match &a.entrypoint {
        Some(ep) if ep.is_empty() => (Vec::new(), Vec::new()),
        Some(ep) => (vec![ep.clone()], Vec::new()),
        None => (
            cfg.entrypoint.clone().unwrap_or_default(),
            cfg.cmd.clone().unwrap_or_default(),
        ),
    };
    let cmd = if a.args().is_empty() {
        default_cmd
    } else {
        a.args().to_vec()
    };
    (entrypoint, cmd)
}

/// `--pull`: pulls the image when asked to (or when missing).
pub fn pull_if_needed(g: &Global, store: &Store, a: &RunArgs) -> anyhow::Result<()> {
    let present = images::find_image_id(store, a.image()).is_ok();
    let pull = match a.pull.as_str() {
        "missing" => !present,
        "always" => true,
        "never" => {
            if !present {
                bail!(
                    "Unable to find image '{}' locally, and --pull never forbids pulling it",
                    a.image()
                );
            }
            false
        }
        other => bail!("invalid --pull {other:?}: use missing, always or never"),
    };
    if pull {
        if !present {
            eprintln!("Unable to find image '{}' locally", a.image());
        }
        let code = super::registry::pull(
            g,
            super::registry::PullArgs {
                name: a.image().to_string(),
                platform: None,
                quiet: false,
                all_platforms: false,
                insecure_registry: Vec::new(),
            },
        )?;
        if code != 0 {
            bail!("pulling {} failed", a.image());
        }
    }
    Ok(())
}

/// The image's env with `-e` and `--env-file` applied.
pub fn merged_env(mut env: Vec<String>, a: &RunArgs) -> anyhow::Result<Vec<String>> {
    let mut given = Vec::new();
    for f in &a.env_file {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("reading the env file {}", f.display()))?;
        for l in text.lines() {
            let l = l.trim_start();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            given.push(l.to_string());
        }
    }
    given.extend(a.env.iter().cloned());
    for e in &given {
        let Some((key, value)) = super::key_value_or_env(e) else {
            continue;
        };
        env.retain(|x| x.split('=').next() != Some(key.as_str()));
        env.push(format!("{key}={value}"));
    }
    Ok(env)
}

/// `--network`: `private` (also `bridge`, `default`), `host` or `none`.
/// Not given, it is `private`; an unprivileged user on a host where
/// pasta cannot work gets the host's network with a warning (as build's
/// RUN steps do), never silently.
pub fn network_name(n: Option<&str>) -> anyhow::Result<String> {
    let Some(n) = n else {
        if strata_runtime::is_rootless() {
            if let Some(why) = strata_runtime::netns::unavailable_reason() {
                eprintln!(
                    "strata: warning: the container uses the host's network: no private network \
                     for an unprivileged user here ({why}); give --network host or none to \
                     silence this"
                );
                return Ok("host".into());
            }
        }
        return Ok("private".into());
    };
    Ok(match n {
        "private" | "bridge" | "default" => "private".into(),
        "host" => "host".into(),
        "none" => "none".into(),
        other => bail!(
            "invalid --network {other:?}: use private (or its alias bridge), host or none; \
             user-defined networks are not supported"
        ),
    })
}

/// `-v SRC:DST[:ro]`.
pub fn volume_mounts(volumes: &[String]) -> anyhow::Result<Vec<MountSpec>> {
    let mut mounts = Vec::new();
    for v in volumes {
        let parts: Vec<&str> = v.split(':').collect();
        let (src, dst, ro) = match parts.as_slice() {
            [s, d] => (*s, *d, false),
            [s, d, "ro"] => (*s, *d, true),
            [s, d, "rw"] => (*s, *d, false),
            _ => bail!("invalid volume {v:?}: use SRC:DST[:ro]"),
        };
        if !dst.starts_with('/') {
            bail!("invalid volume {v:?}: the destination must be an absolute path");
        }
        let source = std::fs::canonicalize(src).with_context(|| {
            format!("volume source {src} (named volumes are not supported; give a host path)")
        })?;
        mounts.push(MountSpec::Bind(BindMount {
            source,
            destination: dst.to_string(),
            readonly: ro,
        }));
    }
    Ok(mounts)
}

/// `--add-host HOST:IP` (`host-gateway` is the host as pasta maps it).
pub fn add_hosts(v: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    v.iter()
        .map(|h| {
            let (host, ip) = h
                .split_once(':')
                .or_else(|| h.split_once('='))
                .with_context(|| format!("invalid --add-host {h:?}: use HOST:IP"))?;
            let ip = if ip == "host-gateway" {
                gateway().unwrap_or_else(|| "127.0.0.1".into())
            } else {
                ip.to_string()
            };
            if ip.parse::<std::net::IpAddr>().is_err() {
                bail!("invalid --add-host {h:?}: {ip:?} is not an IP address");
            }
            Ok((host.to_string(), ip))
        })
        .collect()
}

/// The host's default gateway (pasta gives the container the same one and
/// maps it to the host's loopback).
pub fn gateway() -> Option<String> {
    let t = std::fs::read_to_string("/proc/net/route").ok()?;
    t.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(1) == Some(&"00000000")).then(|| {
            let g = u32::from_str_radix(f[2], 16).ok()?;
            Some(std::net::Ipv4Addr::from(g.to_le_bytes()).to_string())
        })?
    })
}

/// A resolv.conf naming `dns` as the nameservers.
pub fn resolv_with(dns: &[String]) -> String {
    dns.iter().map(|d| format!("nameserver {d}\n")).collect()
}

fn parse_size(s: &str, what: &str) -> anyhow::Result<u64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.trim_end_matches('b');
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let n: f64 = num
        .parse()
        .with_context(|| format!("invalid {what} {s:?}: use a size like 32m or 1g"))?;
    Ok((n * mult as f64) as u64)
}

/// The limits and security options of `run`'s flags.
pub fn limits(a: &RunArgs) -> anyhow::Result<Limits> {
    let mut l = Limits {
        memory: a
            .memory
            .as_deref()
            .map(|m| parse_size(m, "--memory"))
            .transpose()?
            .map(|m| m as i64),
        cpus: a.cpus,
        pids_limit: a.pids_limit.filter(|&p| p > 0),
        ulimits: a.ulimit.clone(),
        shm_size: a
            .shm_size
            .as_deref()
            .map(|m| parse_size(m, "--shm-size"))
            .transpose()?,
        read_only: a.read_only,
        tmpfs: a.tmpfs.clone(),
        cap_add: a.cap_add.clone(),
        cap_drop: a.cap_drop.clone(),
        init: a.init,
        ..Default::default()
    };
    if let Some(m) = l.memory {
        if m < 6 << 20 {
            bail!("Minimum memory limit allowed is 6MB");
        }
    }
    if let Some(c) = l.cpus {
        if c <= 0.0 {
            bail!("invalid --cpus {c}: give a positive number");
        }
    }
    for o in &a.security_opt {
        match o.as_str() {
            "no-new-privileges" | "no-new-privileges:true" | "no-new-privileges=true" => {
                l.no_new_privileges = true
            }
            "seccomp=unconfined" | "seccomp:unconfined" => l.seccomp_unconfined = true,
            other => bail!(
                "unsupported --security-opt {other:?}: strata knows no-new-privileges and \
                 seccomp=unconfined"
            ),
        }
    }
    strata_runtime::effective_capabilities(&l.cap_add, &l.cap_drop)?;
    for u in &l.ulimits {
        Ulimit::parse(u).map_err(|e| anyhow::anyhow!(e))?;
    }
    Ok(l)
}

/// Puts `l` into the runtime's extras and mounts.
pub fn apply_limits(
    l: &Limits,
    extra: &mut ContainerExtras,
    mounts: &mut Vec<MountSpec>,
) -> anyhow::Result<()> {
    extra.memory = l.memory;
    extra.nano_cpus = l.cpus.map(|c| (c * 1e9) as i64);
    extra.pids_limit = l.pids_limit;
    extra.shm_size = l.shm_size;
    extra.cap_add = l.cap_add.clone();
    extra.cap_drop = l.cap_drop.clone();
    extra.seccomp_unconfined = l.seccomp_unconfined;
    for u in &l.ulimits {
        extra
            .ulimits
            .push(Ulimit::parse(u).map_err(|e| anyhow::anyhow!(e))?);
    }
    for t in &l.tmpfs {
        let (dst, opts) = t.split_once(':').unwrap_or((t.as_str(), ""));
        if !dst.starts_with('/') {
            bail!("invalid --tmpfs {t:?}: the path must be absolute");
        }
        let mut size = None;
        let mut mode = None;
        for o in opts.split(',').filter(|o| !o.is_empty()) {
            if let Some(v) = o.strip_prefix("size=") {
                size = Some(parse_size(v, "tmpfs size")?);
            } else if let Some(v) = o.strip_prefix("mode=") {
                mode = Some(
                    u32::from_str_radix(v, 8)
                        .with_context(|| format!("invalid tmpfs mode {v:?}"))?,
                );
            }
        }
        mounts.push(MountSpec::Tmpfs {
            destination: dst.to_string(),
            size,
            mode: mode.or(Some(0o1777)),
        });
    }
    Ok(())
}

/// A private network for one container, publishing `ports`.
pub fn private_network(ports: &[Port]) -> anyhow::Result<PrivateNetwork> {
    if let Some(why) = strata_runtime::netns::unavailable_reason() {
        bail!(
            "--network private cannot be set up: {why}. To fix it: install pasta \
             (`apt-get install passt`) and make /dev/net/tun usable (as root: `mkdir -p /dev/net && \
             mknod -m 0666 /dev/net/tun c 10 200`, or `chmod 0666 /dev/net/tun`), or run with \
             --network host or --network none"
        );
    }
    let spec = |p: &Port| {
        if p.host_ip.is_empty() {
            format!("{}:{}", p.host_port, p.container_port)
        } else {
            format!("{}/{}:{}", p.host_ip, p.host_port, p.container_port)
        }
    };
    let opts = PastaOptions {
        tcp: ports
            .iter()
            .filter(|p| p.proto == "tcp")
            .map(spec)
            .collect(),
        udp: ports
            .iter()
            .filter(|p| p.proto == "udp")
            .map(spec)
            .collect(),
        hint: Some("run with --network host or --network none instead".into()),
    };
    let dir = strata_runtime::netns::default_dir()?;
    Ok(PrivateNetwork::create_with(&dir, &opts)?)
}

pub fn run(g: &Global, a: RunArgs) -> anyhow::Result<u8> {
    if a.detach {
        return super::ctr::run_detached(g, a);
    }
    // Docker's habit: a container stays after it exits unless --rm. An
    // interactive or tty run (-i, -t) goes straight to runc with our
    // terminal and is always removed.
    if !a.tty && !a.interactive && (!a.rm || a.name.is_some()) {
        return super::ctr::run_attached(g, a);
    }
    if a.name.is_some() {
        bail!("--name with -i or -t is not supported yet: an interactive run is always removed when it exits");
    }
    let store = Store::open(&g.store_root())
        .with_context(|| format!("opening the store at {}", g.store_root().display()))?;
    pull_if_needed(g, &store, &a)?;
    let image = load_for_platform(&store, &a)?;
    let cfg = image.config.runtime();

    let (entrypoint, cmd) = entrypoint_and_cmd(cfg, &a);
    let mut argv: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if argv.is_empty() {
        bail!("no command specified: the image {} has no ENTRYPOINT or CMD; give one after the image name", a.image());
    }
    let env = merged_env(cfg.env.clone().unwrap_or_default(), &a)?;
    let net = network_name(a.network.as_deref())?;
    let mut ports = Vec::new();
    for p in &a.publish {
        ports.push(Port::parse(p)?);
    }
    if !ports.is_empty() && net != "private" {
        bail!("-p publishes ports of a private network; --network {net} has none to publish (use --network private)");
    }
    let mut mounts = volume_mounts(&a.volumes)?;
    let lim = limits(&a)?;
    let mut extra = ContainerExtras {
        extra_hosts: add_hosts(&a.add_host)?,
        ..Default::default()
    };
    apply_limits(&lim, &mut extra, &mut mounts)?;
    if lim.init {
        argv = super::init::wrap(argv, &mut mounts)?;
    }

    let lease = store.lease("run")?;
    // Locked while the container runs: GC leaves it alone.
    let init_dir = store.temp_dir("init")?;
    let init = init_dir.path().to_path_buf();
    write_init_layer(&init)?;
    let result = (|| -> anyhow::Result<u8> {
        let private = match net.as_str() {
            "private" => Some(private_network(&ports)?),
            _ => None,
        };
        let network = match (&private, net.as_str()) {
            (Some(p), _) => {
                let mut n = p.netns().clone();
                if !a.dns.is_empty() {
                    n.resolv_conf = Some(resolv_with(&a.dns));
                }
                Network::Join(n)
            }
            (None, "none") => Network::None,
            _ => Network::Host,
        };
        let rootfs = MountedRootfs::mount_as(
            "run",
            &store,
            &image.layers,
            std::slice::from_ref(&init),
            Some(&lease),
        )?;
        let user_spec = a.user.clone().unwrap_or_else(|| cfg.user.clone());
        let user = resolve_user(rootfs.root(), &user_spec)?;
        let workdir = a
            .workdir
            .clone()
            .or_else(|| (!cfg.working_dir.is_empty()).then(|| cfg.working_dir.clone()))
            .unwrap_or_else(|| "/".into());
        let spec = ContainerSpec {
            id: rootfs.id(),
            rootfs: rootfs.root().to_path_buf(),
            process: ProcessSpec {
                args: argv,
                env,
                cwd: workdir,
                user,
                tty: a.tty,
                stdin: a.interactive,
            },
            network,
            mounts,
            hostname: a.hostname.clone(),
            readonly_rootfs: lim.read_only,
            extra,
        };
        let runc = Runc::locate()?;
        let status = match runc.run(&spec, StdioConfig::Inherit) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("strata: error: {e}");
                return Ok(e.docker_exit_code() as u8);
            }
        };
        rootfs.release()?;
        drop(private);
        Ok(status.code.clamp(0, 255) as u8)
    })();
    drop(init_dir);
    result
}
