//! `strata run`.

use anyhow::Context as _;
use strata_engine::images;
use strata_engine::mounts::MountedRootfs;
use strata_runtime::{
    resolve_user, write_init_layer, BindMount, ContainerSpec, Executor, MountSpec, Network,
    ProcessSpec, Runc, StdioConfig,
};
use strata_store::Store;

use super::Global;

#[derive(clap::Args, Debug)]
pub struct RunArgs {
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
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Username or UID (format: name|uid[:group|gid])
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// Network mode: host or none
    #[arg(long, default_value = "host")]
    pub network: String,
    /// Bind mount a volume (SRC:DST[:ro])
    #[arg(short = 'v', long = "volume")]
    pub volumes: Vec<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Image to run
    pub image: String,
    /// Command and arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

pub fn run(g: &Global, a: RunArgs) -> anyhow::Result<u8> {
    let store = Store::open(&g.store_root())
        .with_context(|| format!("opening the store at {}", g.store_root().display()))?;
    let image = match &a.platform {
        Some(p) => {
            let p =
                strata_oci::Platform::parse(p).map_err(|e| anyhow::anyhow!("--platform: {e}"))?;
            let id = strata_store::transfer::resolve_image_for(&store, &a.image, &p)?
                .with_context(|| format!("No such image: {}", a.image))?;
            images::load_image(&store, &id.to_string())?
        }
        None => images::load_image(&store, &a.image)?,
    };
    strata_runtime::binfmt::ensure_can_run(
        &image.config.os,
        &image.config.architecture,
        image.config.variant.as_deref(),
    )
    .map_err(|e| anyhow::anyhow!("{}: {e}", a.image))?;
    let cfg = &image.config.config;

    // Docker's rules: --entrypoint replaces ENTRYPOINT and clears CMD;
    // arguments replace CMD.
    let (entrypoint, default_cmd) = match &a.entrypoint {
        Some(ep) if ep.is_empty() => (Vec::new(), Vec::new()),
        Some(ep) => (vec![ep.clone()], Vec::new()),
        None => (
            cfg.entrypoint.clone().unwrap_or_default(),
            cfg.cmd.clone().unwrap_or_default(),
        ),
    };
    let cmd = if a.args.is_empty() {
        default_cmd
    } else {
        a.args.clone()
    };
    let argv: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if argv.is_empty() {
        anyhow::bail!("no command specified: the image {} has no ENTRYPOINT or CMD; give one after the image name", a.image);
    }

    let mut env = cfg.env.clone().unwrap_or_default();
    for e in &a.env {
        let kv = match e.split_once('=') {
            Some(_) => e.clone(),
            None => match std::env::var(e) {
                Ok(v) => format!("{e}={v}"),
                Err(_) => continue,
            },
        };
        let key = kv.split('=').next().unwrap_or_default().to_string();
        env.retain(|x| x.split('=').next() != Some(key.as_str()));
        env.push(kv);
    }
    let network = match a.network.as_str() {
        "host" | "default" | "bridge" => Network::Host,
        "none" => Network::None,
        other => anyhow::bail!("invalid --network {other:?}: use host or none"),
    };
    let mut mounts = Vec::new();
    for v in &a.volumes {
        let parts: Vec<&str> = v.split(':').collect();
        let (src, dst, ro) = match parts.as_slice() {
            [s, d] => (*s, *d, false),
            [s, d, "ro"] => (*s, *d, true),
            [s, d, "rw"] => (*s, *d, false),
            _ => anyhow::bail!("invalid volume {v:?}: use SRC:DST[:ro]"),
        };
        if !dst.starts_with('/') {
            anyhow::bail!("invalid volume {v:?}: the destination must be an absolute path");
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

    let lease = store.lease("run")?;
    // Locked while the container runs: GC leaves it alone.
    let init_dir = store.temp_dir("init")?;
    let init = init_dir.path().to_path_buf();
    write_init_layer(&init)?;
    let result = (|| -> anyhow::Result<u8> {
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
            hostname: None,
            readonly_rootfs: false,
            extra: Default::default(),
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
        Ok(status.code.clamp(0, 255) as u8)
    })();
    drop(init_dir);
    let _ = a.rm;
    result
}
