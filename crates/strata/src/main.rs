//! strata: the command-line interface. Thin: parse arguments, call a library,
//! render the result. Each subcommand lives in its own module under `cli/`.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    // A container reaper started by a build (strata_runtime::reaper) does
    // its work and exits here; any other process returns at once.
    strata_runtime::reaper::run_if_reaper();
    // The delete of a `run --rm` container's files, after `run` returned.
    cli::remove_later::run_if_remover();
    // `run --init`: strata as the container's PID 1.
    cli::init::run_if_init();
    // First, while the process is still single-threaded: an unprivileged
    // user gets a user namespace of its own (strata_runtime::rootless), so
    // that build and run work without `unshare` and files of other owners
    // keep them (through the user's /etc/subuid range).
    // Taken before: inside, it is 0.
    let uid = rustix::process::geteuid().as_raw();
    // A store that is not the user's, checked here while its owner can
    // still be named: inside the namespace, root's files are unmapped.
    if uid != 0 {
        if let Err(e) = check_store_owner() {
            eprintln!("strata: error: {e}");
            return ExitCode::from(1);
        }
    }
    // `exec`, `cp`, `top` of a running rootless container: into the
    // namespaces of its monitor, not new ones (cli::ctr_userns).
    let join = (uid != 0).then(cli::ctr_userns::monitor_to_join).flatten();
    let userns = match join {
        Some((pid, start)) => {
            strata_runtime::rootless::join_namespaces_of(pid, start).map_err(anyhow::Error::from)
        }
        None => strata_runtime::enter_user_namespace().map_err(anyhow::Error::from),
    };
    let userns = match userns {
        Ok(u) => u,
        Err(e) => {
            eprintln!("strata: error: {e:#}");
            return ExitCode::from(1);
        }
    };
    let entered = matches!(
        userns,
        strata_runtime::Userns::Range { .. } | strata_runtime::Userns::Single { .. }
    );
    if let Some(w) = userns.warning(&strata_runtime::rootless::user_name(uid)) {
        eprintln!("strata: warning: {w}");
    }
    if entered && !strata_runtime::rootless::kernel_has_userns_overlay() {
        eprintln!(
            "strata: warning: this kernel is older than Linux 5.11 and cannot mount overlay in a \
             user namespace; strata has no fuse-overlayfs fallback yet, so rootless build and run \
             will fail (run as root, or use a newer kernel)"
        );
    }
    // A detached container's monitor (cli::ctr): forks, runs it, exits;
    // here, inside strata's user namespace when rootless, still
    // single-threaded.
    cli::ctr::run_if_monitor();
    // `strata unshare [CMD...]` (as `podman unshare`): a shell or command in
    // strata's namespace, e.g. to remove a store whose files belong to the
    // user's subordinate ids. Not a clap subcommand: it takes raw argv.
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|a| a == "unshare") {
        return unshare(&argv[2..], entered);
    }

    let args = match cli::help::command()
        .try_get_matches()
        .and_then(|m| <cli::Cli as clap::FromArgMatches>::from_arg_matches(&m))
    {
        Ok(a) => a,
        Err(e) => e.exit(),
    };
    match cli::dispatch(args) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("strata: error: {err:#}");
            ExitCode::from(1)
        }
    }
}

/// [`strata_store::perms::check_owner`] on the store the command line
/// names, when the command uses one and the store exists (bad arguments
/// are left to the real parse, which reports them).
fn check_store_owner() -> Result<(), strata_store::StoreError> {
    let Ok(args) = <cli::Cli as clap::Parser>::try_parse() else {
        return Ok(());
    };
    if !args.command.uses_store() {
        return Ok(());
    }
    let root = args.global.store_root();
    if std::fs::metadata(&root).is_err() {
        return Ok(());
    }
    strata_store::perms::check_owner(&root)
}

fn unshare(cmd: &[std::ffi::OsString], entered: bool) -> ExitCode {
    use std::os::unix::process::CommandExt;
    if !entered {
        eprintln!("strata: error: unshare: strata made no user namespace here (already root?)");
        return ExitCode::from(1);
    }
    let shell = std::env::var_os("SHELL").unwrap_or_else(|| "/bin/sh".into());
    let (prog, rest) = match cmd.split_first() {
        Some((p, r)) => (p.clone(), r),
        None => (shell, &[][..]),
    };
    let err = std::process::Command::new(&prog).args(rest).exec();
    eprintln!("strata: error: unshare: {}: {err}", prog.to_string_lossy());
    ExitCode::from(127)
}
