//! Argument definitions and dispatch. Each command's flags and code live in
//! the module named after it.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub(crate) mod archive;
pub(crate) mod build;
pub(crate) mod changes;
pub(crate) mod check;
pub(crate) mod commit;
pub(crate) mod container_network;
pub(crate) mod cp;
pub(crate) mod ctr;
pub(crate) mod ctr_userns;
pub(crate) mod dryrun;
pub(crate) mod explain;
pub(crate) mod help;
pub(crate) mod images;
pub(crate) mod init;
pub(crate) mod output;
pub(crate) mod platform;
pub(crate) mod registry;
pub(crate) mod remove_later;
pub(crate) mod run;
pub(crate) mod suggest;
pub(crate) mod system;
pub(crate) mod template;
pub(crate) mod top;

#[derive(Parser, Debug)]
#[command(
    name = "strata",
    version,
    about = "Daemonless container image builder and runner"
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct Global {
    /// Store root (default: $STRATA_ROOT, else /var/lib/strata for root, else $XDG_DATA_HOME/strata)
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,
}

impl Global {
    /// The store root: `--root`, else `STRATA_ROOT`, else the per-user default.
    pub(crate) fn store_root(&self) -> PathBuf {
        if let Some(root) = &self.root {
            return root.clone();
        }
        if let Some(root) = std::env::var_os("STRATA_ROOT").filter(|v| !v.is_empty()) {
            return PathBuf::from(root);
        }
        // Real root only: "root" inside a user namespace (rootless) is
        // still the user, whose data lives in their home.
        if !strata_runtime::is_rootless() {
            return PathBuf::from("/var/lib/strata");
        }
        let data = std::env::var_os("XDG_DATA_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .unwrap_or_else(|| PathBuf::from("."));
        data.join("strata")
    }
}

// Parsed once per process: the size of `build`'s flags does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Build an image from a Dockerfile
    Build(build::BuildArgs),
    /// Check a Dockerfile without building it
    Check(check::CheckArgs),
    /// Run a command in a new container
    Run(run::RunArgs),
    /// Create a new container (start it with `start`)
    Create(run::RunArgs),
    /// Start one or more stopped containers
    Start(ctr::StartArgs),
    /// Stop one or more running containers (signal, then SIGKILL after -t seconds)
    Stop(ctr::StopArgs),
    /// Restart one or more containers
    Restart(ctr::StopArgs),
    /// Send a signal to one or more running containers
    Kill(ctr::KillArgs),
    /// Remove one or more containers
    Rm(ctr::RmArgs),
    /// Block until containers stop, then print their exit codes
    Wait(ctr::WaitArgs),
    /// List containers
    Ps(ctr::PsArgs),
    /// Fetch the logs of a container
    Logs(ctr::LogsArgs),
    /// Run a command in a running container
    Exec(ctr::ExecArgs),
    /// Copy files between a container and the host
    Cp(cp::CpArgs),
    /// Display the running processes of a container
    Top(top::TopArgs),
    /// Create a new image from a container's changes
    Commit(commit::CommitArgs),
    /// Export a container's filesystem as a tar archive
    Export(commit::ExportArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(ctr::ContainerCommand),
    /// List images
    Images(images::LsArgs),
    /// Manage images
    #[command(subcommand)]
    Image(images::ImageCommand),
    /// Remove one or more images
    Rmi(images::RmArgs),
    /// Create a tag TARGET that refers to SOURCE
    Tag(images::TagArgs),
    /// Display detailed information on images
    Inspect(images::InspectArgs),
    /// Show the history of an image
    History(images::HistoryArgs),
    /// Load an image from a docker-archive or OCI layout
    Load(images::LoadArgs),
    /// Save one or more images to an archive
    Save(images::SaveArgs),
    /// Import a root filesystem tarball as an image
    Import(images::ImportArgs),
    /// Pull an image from a registry
    Pull(registry::PullArgs),
    /// Push an image to a registry
    Push(registry::PushArgs),
    /// Multi-platform tags: create, add to, inspect an index
    #[command(subcommand)]
    Manifest(platform::ManifestCommand),
    /// Emulation of foreign platforms (qemu-user-static through binfmt_misc)
    #[command(subcommand)]
    Binfmt(platform::BinfmtCommand),
    /// Log in to a registry
    Login(registry::LoginArgs),
    /// Log out from a registry
    Logout(registry::LogoutArgs),
    /// Manage the store
    #[command(subcommand)]
    System(system::SystemCommand),
    /// Print a shell completion script (bash, zsh, fish)
    Completion(help::CompletionArgs),
}

impl Command {
    /// Whether the command opens the store (all but the Dockerfile check
    /// and the registry logins; a dry-run build does not either).
    pub(crate) fn uses_store(&self) -> bool {
        match self {
            Command::Check(_) | Command::Login(_) | Command::Logout(_) | Command::Binfmt(_) => {
                false
            }
            Command::Build(a) => !a.dry_run,
            _ => true,
        }
    }
}

/// Runs one command; the returned value is the process exit code.
pub(crate) fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    let g = cli.global;
    match cli.command {
        Command::Build(a) => build::run(&g, a),
        Command::Check(a) => check::run(&g, a),
        Command::Run(a) => run::run(&g, a),
        Command::Create(a) => ctr::create(&g, a),
        Command::Start(a) => ctr::start(&g, a),
        Command::Stop(a) => ctr::stop(&g, a),
        Command::Restart(a) => ctr::restart(&g, a),
        Command::Kill(a) => ctr::kill(&g, a),
        Command::Rm(a) => ctr::rm(&g, a),
        Command::Wait(a) => ctr::wait(&g, a),
        Command::Ps(a) => ctr::ps(&g, a),
        Command::Logs(a) => ctr::logs(&g, a),
        Command::Exec(a) => ctr::exec(&g, a),
        Command::Cp(a) => cp::cp(&g, a),
        Command::Top(a) => top::top(&g, a),
        Command::Commit(a) => commit::commit(&g, a),
        Command::Export(a) => commit::export(&g, a),
        Command::Container(c) => ctr::dispatch(&g, c),
        Command::Images(a) => images::ls(&g, a),
        Command::Image(images::ImageCommand::Rm(mut a)) => {
            let refused = ctr::refuse_used_images(&g, &mut a.images, a.force);
            if a.images.is_empty() {
                return Ok(1);
            }
            let code = images::rm(&g, a)?;
            Ok(code.max(u8::from(refused)))
        }
        Command::Image(c) => images::dispatch(&g, c),
        Command::Rmi(mut a) => {
            let refused = ctr::refuse_used_images(&g, &mut a.images, a.force);
            if a.images.is_empty() {
                return Ok(1);
            }
            let code = images::rm(&g, a)?;
            Ok(code.max(u8::from(refused)))
        }
        Command::Tag(a) => images::tag(&g, a),
        Command::Inspect(a) => match ctr::inspect_if_containers(&g, &a.images) {
            Some(code) => code,
            None => images::inspect(&g, a),
        },
        Command::History(a) => images::history(&g, a),
        Command::Load(a) => images::load(&g, a),
        Command::Save(a) => images::save(&g, a),
        Command::Import(a) => images::import(&g, a),
        Command::Pull(a) => registry::pull(&g, a),
        Command::Push(a) => registry::push(&g, a),
        Command::Manifest(c) => platform::manifest(&g, c),
        Command::Binfmt(c) => platform::binfmt_cmd(c),
        Command::Login(a) => registry::login(&g, a),
        Command::Logout(a) => registry::logout(&g, a),
        Command::System(c) => system::dispatch(&g, c),
        Command::Completion(a) => help::completion(a),
    }
}

/// On SIGINT, SIGTERM or SIGHUP: runs `cleanup`, then exits with 128 +
/// the signal, as a shell reports it. The signals are blocked in the
/// calling thread (and so in every thread it starts afterwards) and taken
/// by a waiter thread, so the cleanup runs as ordinary code, not in a
/// signal handler. Call it before starting other threads.
#[allow(unsafe_code)] // libc calls, each with its SAFETY comment
pub(crate) fn cleanup_on_signal(what: &'static str, cleanup: impl FnOnce() + Send + 'static) {
    // SAFETY: sigset_t is plain data initialised by sigemptyset; the
    // calls only change this thread's signal mask.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return;
        }
        set
    };
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut sig = 0;
            // SAFETY: waits on the set built above.
            if unsafe { libc::sigwait(&set, &mut sig) } == 0 {
                cleanup();
                eprintln!(
                    "strata: {what} interrupted by signal {sig}; its temp files were removed"
                );
                std::process::exit(128 + sig);
            }
        });
    if spawned.is_err() {
        // No waiter: let the signals kill the process as before.
        // SAFETY: as above.
        unsafe {
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        }
    }
}

/// `KEY=VALUE`, or `KEY` alone for the value of that variable in strata's
/// environment (None when it is unset): the rule of `--build-arg`, `-e`
/// and `--env-file` alike.
pub(crate) fn key_value_or_env(s: &str) -> Option<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) => Some((k.to_string(), v.to_string())),
        None => std::env::var(s).ok().map(|v| (s.to_string(), v)),
    }
}
