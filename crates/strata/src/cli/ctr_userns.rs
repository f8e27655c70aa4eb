//! Rootless, the processes of a running container live in the user and
//! mount namespaces of the strata process that started it, its monitor
//! ([`super::ctr`]): the overlay of its rootfs is mounted there, and runc
//! can join the container's namespaces only from that user namespace.
//! Every strata process of an unprivileged user makes a user namespace of
//! its own ([`strata_runtime::rootless`]), a stranger to the monitor's,
//! so commands that act on a running container (`exec`, `cp`, `top`)
//! join the monitor's namespaces instead, before any thread starts, as
//! podman's commands join its pause process's.

use super::ctr::{find_as_saved, ContainerCommand};
use super::{Cli, Command};

/// The container a command acts on inside its namespaces, if it does.
fn container_key(cmd: &Command) -> Option<&str> {
    match cmd {
        Command::Exec(a) | Command::Container(ContainerCommand::Exec(a)) => {
            a.words.first().map(String::as_str)
        }
        Command::Cp(a) | Command::Container(ContainerCommand::Cp(a)) => {
            let split = super::cp::split;
            split(&a.src).or_else(|| split(&a.dest)).map(|(c, _)| c)
        }
        Command::Top(a) | Command::Container(ContainerCommand::Top(a)) => Some(&a.container),
        _ => None,
    }
}

/// For an unprivileged user: the monitor (pid, start time) whose
/// namespaces this command must run in, when it acts on a running
/// container. Parses the command line by itself (strata's namespaces do
/// not exist yet); `None` for other commands, bad arguments (the real
/// parse reports them) and containers that do not run.
pub(crate) fn monitor_to_join() -> Option<(u32, Option<u64>)> {
    // Opted out of user namespaces: the monitor made none either.
    if std::env::var_os("STRATA_USERNS").is_some_and(|v| v == "0") {
        return None;
    }
    let args = <Cli as clap::Parser>::try_parse().ok()?;
    let key = container_key(&args.command)?;
    let s = find_as_saved(&args.global.store_root(), key).ok()?;
    if s.status != "running" || s.monitor_pid == 0 {
        return None;
    }
    let alive = strata_runtime::netns::process_start_time(s.monitor_pid)
        .is_some_and(|t| s.monitor_start.is_none_or(|recorded| recorded == t));
    alive.then_some((s.monitor_pid, s.monitor_start))
}

/// Whether process `pid` is in this process's user namespace (false when
/// it cannot be told: another user namespace may not look).
pub(crate) fn in_our_user_namespace(pid: u32) -> bool {
    let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/user")).ok();
    let theirs = ns(&pid.to_string());
    theirs.is_some() && theirs == ns("self")
}
