//! Container assembly for `run`, `create` and the container lifecycle
//! commands: from an image in the store and the caller's options to what
//! the runtime needs.
//!
//! - [`ContainerPlan::from_image`] loads the image (for a platform when
//!   asked, refusing one this host cannot run) and applies Docker's rules:
//!   `--entrypoint` replaces ENTRYPOINT and clears CMD, arguments after the
//!   image replace CMD, `-e` overrides the image's ENV by key, `-w`/`-u`
//!   override WORKDIR/USER;
//! - [`ContainerPlan::process`] resolves the user in the mounted rootfs and
//!   gives the runtime's [`ProcessSpec`];
//! - [`RunRootfs`] mounts the rootfs of a container that lives for one
//!   command (`run --rm -it`);
//! - [`mount_container_rootfs`] mounts a kept container's rootfs (its
//!   image's layers, its init layer, its own upper dir), and
//!   [`commit_layer`] writes its upper dir as a new layer;
//! - [`limits`] and [`network`] turn the resource, security and network
//!   options into the runtime's extras, mounts and network.

pub mod limits;
pub mod network;

use std::path::Path;

use strata_oci::{Digest, Platform};
use strata_runtime::{resolve_user, ProcessSpec};
use strata_store::{Lease, RootfsMount, Store};

use crate::images::{self, BaseImage, ImageError};

pub use limits::{LimitOptions, Limits};
pub use network::{NetworkChoice, Port};

/// Why a container could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// An option's value is not understood (the message names the option).
    #[error("{0}")]
    Invalid(String),
    /// `--platform` is no platform.
    #[error("--platform")]
    Platform(#[from] strata_oci::PlatformError),
    /// `--ulimit` is not understood.
    #[error(transparent)]
    Ulimit(#[from] strata_runtime::UlimitError),
    /// No image of that name (for the platform asked).
    #[error("No such image: {0}")]
    NoSuchImage(String),
    /// The image's platform cannot run on this host.
    #[error("{image}")]
    CannotRun {
        /// The image as named.
        image: String,
        /// Why (binfmt).
        #[source]
        why: strata_runtime::binfmt::BinfmtError,
    },
    /// Neither the image nor the caller gives a command.
    #[error(
        "no command specified: the image {0} has no ENTRYPOINT or CMD; give one after the image name"
    )]
    NoCommand(String),
    /// A file the options name could not be read.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Loading the image failed.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] strata_store::StoreError),
    /// Resolving the image in the store failed.
    #[error(transparent)]
    Transfer(#[from] strata_store::transfer::TransferError),
    /// Mounting the image's layers failed.
    #[error(transparent)]
    Mount(#[from] crate::mounts::MountError),
    /// The runtime refused (user, capabilities, network).
    #[error(transparent)]
    Runtime(#[from] strata_runtime::Error),
}

/// What the caller asks of the container's process (`run`'s flags).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `--platform`: which image of a multi-platform name.
    pub platform: Option<String>,
    /// `--entrypoint` (empty: none).
    pub entrypoint: Option<String>,
    /// The words after the image.
    pub args: Vec<String>,
    /// `-e`/`--env-file` entries as `K=V`, in order (a later key wins).
    pub env: Vec<String>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `-u`.
    pub user: Option<String>,
}

/// The container's process as the image and the options decide it.
#[derive(Debug, Clone)]
pub struct ContainerPlan {
    /// The image as named.
    pub image_name: String,
    /// The image loaded.
    pub image: BaseImage,
    /// ENTRYPOINT after the options.
    pub entrypoint: Vec<String>,
    /// CMD after the options.
    pub cmd: Vec<String>,
    /// The environment: the image's ENV with the options' entries applied.
    pub env: Vec<String>,
    /// The working directory (`/` when neither gives one).
    pub working_dir: String,
    /// The user spec, resolved in the rootfs by [`ContainerPlan::process`].
    pub user: String,
    /// STOPSIGNAL (`SIGTERM` when the image has none).
    pub stop_signal: String,
}

impl ContainerPlan {
    /// Loads `image` from `store` and applies `opts` (see the module doc).
    /// Refused when the image's platform cannot run here, or when there
    /// is no command at all.
    pub fn from_image(
        store: &Store,
        image: &str,
        opts: &RunOptions,
    ) -> Result<ContainerPlan, ContainerError> {
        let loaded = load_for_platform(store, image, opts.platform.as_deref())?;
        let cfg = loaded.config.runtime();
        let (entrypoint, cmd) = entrypoint_and_cmd(
            cfg.entrypoint.as_deref().unwrap_or_default(),
            cfg.cmd.as_deref().unwrap_or_default(),
            opts,
        );
        if entrypoint.is_empty() && cmd.is_empty() {
            return Err(ContainerError::NoCommand(image.to_string()));
        }
        let env = merge_env(cfg.env.clone().unwrap_or_default(), &opts.env);
        let working_dir = opts
            .workdir
            .clone()
            .or_else(|| (!cfg.working_dir.is_empty()).then(|| cfg.working_dir.clone()))
            .unwrap_or_else(|| "/".into());
        let user = opts.user.clone().unwrap_or_else(|| cfg.user.clone());
        let stop_signal = cfg
            .stop_signal
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "SIGTERM".into());
        Ok(ContainerPlan {
            image_name: image.to_string(),
            image: loaded,
            entrypoint,
            cmd,
            env,
            working_dir,
            user,
            stop_signal,
        })
    }

    /// The image's ID.
    pub fn image_id(&self) -> &Digest {
        &self.image.id
    }

    /// ENTRYPOINT then CMD.
    pub fn argv(&self) -> Vec<String> {
        self.entrypoint.iter().chain(&self.cmd).cloned().collect()
    }

    /// The process running `args` (the plan's [`argv`](Self::argv), or it
    /// wrapped by an init) as the plan's user resolved in `rootfs`.
    pub fn process(
        &self,
        rootfs: &Path,
        args: Vec<String>,
        tty: bool,
        stdin: bool,
    ) -> Result<ProcessSpec, ContainerError> {
        Ok(ProcessSpec {
            args,
            env: self.env.clone(),
            cwd: self.working_dir.clone(),
            user: resolve_user(rootfs, &self.user)?,
            tty,
            stdin,
        })
    }
}

/// The image named `name` (of `platform` when given), refused when this
/// host cannot run its platform.
pub fn load_for_platform(
    store: &Store,
    name: &str,
    platform: Option<&str>,
) -> Result<BaseImage, ContainerError> {
    let image = match platform {
        Some(p) => {
            let p = Platform::parse(p)?;
            let id = strata_store::transfer::resolve_image_for(store, name, &p)?
                .ok_or_else(|| ContainerError::NoSuchImage(name.to_string()))?;
            images::load_image(store, &id.to_string())?
        }
        None => images::load_image(store, name)?,
    };
    strata_runtime::binfmt::ensure_can_run(
        &image.config.os,
        &image.config.architecture,
        image.config.variant.as_deref(),
    )
    .map_err(|why| ContainerError::CannotRun {
        image: name.to_string(),
        why,
    })?;
    Ok(image)
}

/// Docker's rules for the container's command: `--entrypoint` replaces
/// ENTRYPOINT and clears CMD (an empty one leaves neither); arguments
/// after the image replace CMD.
pub fn entrypoint_and_cmd(
    entrypoint: &[String],
    cmd: &[String],
    opts: &RunOptions,
) -> (Vec<String>, Vec<String>) {
    let (entrypoint, default_cmd) = match &opts.entrypoint {
        Some(ep) if ep.is_empty() => (Vec::new(), Vec::new()),
        Some(ep) => (vec![ep.clone()], Vec::new()),
        None => (entrypoint.to_vec(), cmd.to_vec()),
    };
    let cmd = if opts.args.is_empty() {
        default_cmd
    } else {
        opts.args.clone()
    };
    (entrypoint, cmd)
}

/// `env` with each `K=V` of `given` replacing any entry of the same key
/// (and added at the end).
pub fn merge_env(mut env: Vec<String>, given: &[String]) -> Vec<String> {
    for kv in given {
        let key = kv.split('=').next().unwrap_or_default();
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(kv.clone());
    }
    env
}

/// The rootfs of a container that lives as long as one command: the
/// image's layers under a fresh init layer and upper dir, all in the
/// store's tmp (locked while it lives, so GC leaves it alone), removed
/// on [`release`](Self::release) or drop.
pub struct RunRootfs {
    // Declared first: unmounted before the init layer below is removed.
    rootfs: crate::mounts::MountedRootfs,
    _init: strata_store::TempDir,
}

impl RunRootfs {
    /// Writes an init layer and mounts `image` under it, held by `lease`.
    pub fn mount(
        store: &Store,
        image: &BaseImage,
        lease: &Lease,
    ) -> Result<RunRootfs, ContainerError> {
        let init = store.temp_dir("init")?;
        strata_runtime::write_init_layer(init.path())?;
        let rootfs = crate::mounts::MountedRootfs::mount_as(
            "run",
            store,
            &image.layers,
            &[init.path().to_path_buf()],
            Some(lease),
        )?;
        Ok(RunRootfs {
            rootfs,
            _init: init,
        })
    }

    /// The container's ID (its directory's).
    pub fn id(&self) -> String {
        self.rootfs.id()
    }

    /// The mounted root.
    pub fn root(&self) -> &Path {
        self.rootfs.root()
    }

    /// Unmounts and removes it, reporting a failure to unmount.
    pub fn release(self) -> Result<(), ContainerError> {
        Ok(self.rootfs.release()?)
    }

    /// Unmounts it and moves its directory into the store's tmp, returning
    /// where: deleting a big upper dir (40,000 files: 0.6 s, far more when
    /// the disk is busy) is left to the caller, after it has answered. The
    /// init layer, a few files, is removed now.
    pub fn release_later(self) -> Result<Option<std::path::PathBuf>, ContainerError> {
        Ok(self.rootfs.release_later()?)
    }
}

/// Mounts the rootfs of a container kept in `dir` (`upper/`, `work/`,
/// `merged/`, `init/`): the image's layers (prepared under `lease`), then
/// its init layer (written on first use), then its own upper dir. A `work/`
/// left by an earlier mount is cleared first.
pub fn mount_container_rootfs(
    store: &Store,
    image: &BaseImage,
    dir: &Path,
    lease: &Lease,
) -> Result<RootfsMount, ContainerError> {
    let chain = crate::mounts::chain_of(&image.layers)?;
    let mut lowers = store.snapshotter().prepare_leased(&chain, Some(lease))?;
    let init = dir.join("init");
    if !init.join("etc").exists() {
        let io = |source| ContainerError::Io {
            what: format!("writing the init layer {}", init.display()),
            source,
        };
        std::fs::create_dir_all(&init).map_err(io)?;
        strata_runtime::write_init_layer(&init)?;
    }
    lowers.push(init);
    let _ = std::fs::remove_dir_all(dir.join("work"));
    Ok(RootfsMount::mount(&lowers, dir)?)
}

/// Writes a container's upper dir `upper` as a layer (gzip, times kept)
/// held by `lease`, for `commit`.
pub fn commit_layer(
    store: &Store,
    upper: &Path,
    lease: &Lease,
) -> Result<crate::cache::LayerRef, ContainerError> {
    let info = strata_store::LayerWriter::new(store.blobs(), crate::run_step::layer_options(None))
        .write_dir(upper, Some(lease))?;
    Ok(info.to_record())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn entrypoint_and_cmd_follow_docker() {
        let (ep, cmd) = (words("/bin/ep"), words("default args"));
        let opts = RunOptions::default();
        assert_eq!(
            entrypoint_and_cmd(&ep, &cmd, &opts),
            (ep.clone(), cmd.clone())
        );
        let opts = RunOptions {
            args: words("mine"),
            ..Default::default()
        };
        assert_eq!(
            entrypoint_and_cmd(&ep, &cmd, &opts),
            (ep.clone(), words("mine"))
        );
        // --entrypoint clears CMD; an empty one leaves nothing.
        let opts = RunOptions {
            entrypoint: Some("/bin/sh".into()),
            ..Default::default()
        };
        assert_eq!(
            entrypoint_and_cmd(&ep, &cmd, &opts),
            (words("/bin/sh"), Vec::new())
        );
        let opts = RunOptions {
            entrypoint: Some(String::new()),
            args: words("ls"),
            ..Default::default()
        };
        assert_eq!(
            entrypoint_and_cmd(&ep, &cmd, &opts),
            (Vec::new(), words("ls"))
        );
    }

    #[test]
    fn given_env_replaces_by_key_and_appends() {
        let env = merge_env(words("A=1 PATH=/bin B=2"), &words("PATH=/x C=3"));
        assert_eq!(env, words("A=1 B=2 PATH=/x C=3"));
    }
}
