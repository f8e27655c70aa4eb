//! `strata run` (and the flags `create` shares): a foreground container,
//! or with `-d` a detached one owned by a monitor ([`super::ctr`]).

use anyhow::{bail, Context as _};
use strata_engine::container::{
    network, ContainerPlan, LimitOptions, Limits, NetworkChoice, Port, RunOptions, RunRootfs,
};
use strata_engine::images;
use strata_runtime::{ContainerExtras, ContainerSpec, Executor, Runc, StdioConfig};
use strata_store::Store;

use super::container_network::PendingNetwork;
use super::Global;

#[derive(clap::Args, Debug)]
#[command(disable_help_flag = true)]
pub(crate) struct RunArgs {
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
    /// Security options: no-new-privileges[:true], seccomp=unconfined, systempaths=unconfined
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
    pub(crate) fn image(&self) -> &str {
        &self.image_and_args[0]
    }

    /// The words after the image.
    pub(crate) fn args(&self) -> &[String] {
        &self.image_and_args[1..]
    }

    /// What the flags ask of the container's process, for
    /// [`ContainerPlan::from_image`]: `--env-file` lines then `-e`, a bare
    /// `K` taking the value from strata's environment (skipped when unset).
    pub(crate) fn run_options(&self) -> anyhow::Result<RunOptions> {
        let mut given = Vec::new();
        for f in &self.env_file {
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
        given.extend(self.env.iter().cloned());
        let env = given
            .into_iter()
            .filter_map(|e| match e.split_once('=') {
                Some(_) => Some(e),
                None => std::env::var(&e).ok().map(|v| format!("{e}={v}")),
            })
            .collect();
        Ok(RunOptions {
            platform: self.platform.clone(),
            entrypoint: self.entrypoint.clone(),
            args: self.args().to_vec(),
            env,
            workdir: self.workdir.clone(),
            user: self.user.clone(),
        })
    }

    /// The limits and security options of the flags, checked.
    pub(crate) fn limits(&self) -> anyhow::Result<Limits> {
        Ok(Limits::parse(&LimitOptions {
            memory: self.memory.clone(),
            cpus: self.cpus,
            pids_limit: self.pids_limit,
            ulimits: self.ulimit.clone(),
            shm_size: self.shm_size.clone(),
            read_only: self.read_only,
            tmpfs: self.tmpfs.clone(),
            cap_add: self.cap_add.clone(),
            cap_drop: self.cap_drop.clone(),
            security_opt: self.security_opt.clone(),
            init: self.init,
        })?)
    }

    /// `--network`, with its warning (if any) shown.
    pub(crate) fn network(&self) -> anyhow::Result<NetworkChoice> {
        let n = NetworkChoice::parse(self.network.as_deref())?;
        if let Some(w) = &n.warning {
            eprintln!("strata: warning: {w}");
        }
        Ok(n)
    }

    /// `-p`, checked against the network.
    pub(crate) fn ports(&self, network: &NetworkChoice) -> anyhow::Result<Vec<Port>> {
        let ports = self
            .publish
            .iter()
            .map(|p| Port::parse(p))
            .collect::<Result<Vec<_>, _>>()?;
        network.check_ports(&ports)?;
        Ok(ports)
    }
}

/// The pulled (if needed) image and the container's process as the
/// flags and the image decide them.
pub(crate) fn plan(g: &Global, store: &Store, a: &RunArgs) -> anyhow::Result<ContainerPlan> {
    pull_if_needed(g, store, a)?;
    let opts = a.run_options()?;
    Ok(ContainerPlan::from_image(store, a.image(), &opts)?)
}

/// `--pull`: pulls the image when asked to (or when missing).
pub(crate) fn pull_if_needed(g: &Global, store: &Store, a: &RunArgs) -> anyhow::Result<()> {
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

pub(crate) fn run(g: &Global, a: RunArgs) -> anyhow::Result<u8> {
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
    let net = a.network()?;
    let ports = a.ports(&net)?;
    // pasta configures the namespace (4-8 ms) while the image is found and
    // its rootfs mounted.
    let mut pending = PendingNetwork::start(&net.name, &ports);
    let store = Store::open(&g.store_root())
        .with_context(|| format!("opening the store at {}", g.store_root().display()))?;
    let plan = plan(g, &store, &a)?;
    let mut mounts = network::volume_mounts(&a.volumes)?;
    let lim = a.limits()?;
    let mut extra = ContainerExtras {
        extra_hosts: network::add_hosts(&a.add_host)?,
        ..Default::default()
    };
    lim.apply(&mut extra, &mut mounts)?;
    let mut argv = plan.argv();
    if lim.init {
        argv = super::init::wrap(argv, &mut mounts)?;
    }

    let lease = store.lease("run")?;
    let rootfs = RunRootfs::mount(&store, &plan.image, &lease)?;
    let private = pending.wait()?;
    let network = network::runtime_network(
        private.as_ref().and_then(|p| p.net.as_ref()),
        &net.name,
        &a.dns,
    );
    let spec = ContainerSpec {
        id: rootfs.id(),
        rootfs: rootfs.root().to_path_buf(),
        process: plan.process(rootfs.root(), argv, a.tty, a.interactive)?,
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
    // The container's exit status is not kept waiting for the delete of
    // everything it wrote (see remove_later).
    if let Some(dir) = rootfs.release_later()? {
        super::remove_later::spawn(&dir)?;
    }
    drop(private);
    Ok(status.code.clamp(0, 255) as u8)
}
