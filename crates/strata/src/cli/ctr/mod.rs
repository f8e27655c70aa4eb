//! Containers that outlive the command that made them: `create`,
//! `run -d`, `start`, `stop`, `kill`, `restart`, `rm`, `wait`, `ps`,
//! `logs`, `exec`, `inspect`, `container prune`.
//!
//! Each container is a directory `ROOT/ctrs/<id>/`: `state.json` (what
//! `inspect` shows), `upper/` and `work/` (its writable layer, kept until
//! `rm`), `merged/` (the overlay, mounted while it runs), `init/` (the
//! runtime's init layer), `ctr.log` (+ `ctr.log.1`: stdout and stderr,
//! one timestamped line per record, bounded) and `lock`.
//!
//! A running container is owned by a monitor: strata re-executed with
//! [`MONITOR_ENV`], which forks once more and `setsid`s (so it survives
//! the strata that started it, even a SIGKILLed one), holds `lock` for
//! the container's whole life, is the child subreaper of the container's
//! init (`runc run --detach`), writes the log, owns pasta when the
//! network is private, and records the exit code and OOM kill. A
//! container whose state says running while nobody holds its lock lost
//! its monitor: it is shown as exited.

// The submodules (one per group of commands) take these imports and the
// container state below with `use super::*`.
use std::io::{BufRead, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde::{Deserialize, Serialize};
use strata_engine::images;
use strata_runtime::{resolve_user, BindMount, ContainerSpec, MountSpec, ProcessSpec, Runc};
use strata_store::Store;

use super::container_network::PendingNetwork;
use super::run::RunArgs;
use super::Global;
pub(crate) use strata_engine::container::{Limits, Port};

mod create;
mod exec_inspect;
mod lifecycle;
mod logs;
mod monitor;
mod ps;

pub(crate) use create::*;
pub(crate) use exec_inspect::*;
pub(crate) use lifecycle::*;
pub(crate) use logs::*;
pub(crate) use monitor::*;
pub(crate) use ps::*;

/// Set, a strata process is a container monitor: `ROOT\nID`.
pub(crate) const MONITOR_ENV: &str = "STRATA_INTERNAL_MONITOR";

/// A container's log is rotated (one old file kept) past this size.
const LOG_LIMIT: u64 = 8 << 20;

/// What the container runs, fixed at `create`.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub(crate) struct CtrConfig {
    pub image: String,
    pub image_id: String,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub hostname: String,
    pub network: String,
    pub ports: Vec<Port>,
    pub volumes: Vec<(String, String, bool)>,
    pub add_hosts: Vec<(String, String)>,
    pub dns: Vec<String>,
    pub stop_signal: String,
    pub auto_remove: bool,
    pub limits: Limits,
}

/// `state.json`.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub(crate) struct State {
    pub id: String,
    pub name: String,
    pub created: String,
    /// created, running, exited
    pub status: String,
    pub pid: u32,
    pub exit_code: i32,
    pub oom_killed: bool,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub error: String,
    pub config: CtrConfig,
    /// The monitor's pid while it runs (0 otherwise): rootless, commands
    /// that act on the running container join its namespaces
    /// ([`super::ctr_userns`]).
    #[serde(default)]
    pub monitor_pid: u32,
    /// The monitor's start time (`/proc/PID/stat` field 22), so a reused
    /// pid is not taken for it.
    #[serde(default)]
    pub monitor_start: Option<u64>,
}

fn now() -> String {
    strata_oci::rfc3339_nano(time::OffsetDateTime::now_utc())
}

fn ctrs_dir(root: &Path) -> PathBuf {
    root.join("ctrs")
}

pub(crate) fn ctr_dir(root: &Path, id: &str) -> PathBuf {
    ctrs_dir(root).join(id)
}

fn random_id() -> String {
    let a = strata_runtime::new_container_id();
    let b = strata_runtime::new_container_id();
    format!("{}{}", &a["strata-".len()..], &b["strata-".len()..])
}

impl State {
    fn load(root: &Path, id: &str) -> anyhow::Result<State> {
        let p = ctr_dir(root, id).join("state.json");
        let bytes = std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", p.display()))
    }

    fn save(&self, root: &Path) -> anyhow::Result<()> {
        let dir = ctr_dir(root, &self.id);
        let tmp = dir.join("state.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)
            .and_then(|()| std::fs::rename(&tmp, dir.join("state.json")))
            .with_context(|| format!("writing {}", dir.join("state.json").display()))
    }

    fn short_id(&self) -> &str {
        &self.id[..12]
    }

    /// The state, corrected when its monitor is gone.
    fn refreshed(mut self, root: &Path) -> State {
        if self.status == "running" && !monitor_alive(root, &self.id) {
            // Reload: the monitor may have just finished writing.
            if let Ok(s) = State::load(root, &self.id) {
                self = s;
            }
            if self.status == "running" {
                // Its container may still run (runc run --detach): kill
                // it and delete runc's state, cgroup and bundle.
                if let Ok(runc) = Runc::find() {
                    runc.remove(&self.id);
                }
                unmount(&ctr_dir(root, &self.id).join("merged"));
                self.status = "exited".into();
                self.exit_code = 137;
                self.finished_at = Some(now());
                self.error = "the container's monitor process died".into();
                let _ = self.save(root);
            }
        }
        self
    }

    fn running(&self) -> bool {
        self.status == "running"
    }

    fn command_line(&self) -> String {
        let c = &self.config;
        c.entrypoint
            .iter()
            .chain(&c.cmd)
            .cloned()
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// True while a monitor holds the container's lock.
fn monitor_alive(root: &Path, id: &str) -> bool {
    let Ok(f) = std::fs::File::open(ctr_dir(root, id).join("lock")) else {
        return false;
    };
    match f.try_lock_shared() {
        Ok(()) => false,
        Err(std::fs::TryLockError::WouldBlock) => true,
        Err(_) => false,
    }
}

/// All containers, oldest first.
fn all(root: &Path) -> Vec<State> {
    all_as_saved(root)
        .into_iter()
        .map(|s| s.refreshed(root))
        .collect()
}

/// All containers as their `state.json` says, oldest first.
fn all_as_saved(root: &Path) -> Vec<State> {
    let mut out: Vec<State> = std::fs::read_dir(ctrs_dir(root))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| State::load(root, e.file_name().to_str()?).ok())
        .collect();
    out.sort_by(|a, b| a.created.cmp(&b.created));
    out
}

/// Finds a container by name, full id or unique id prefix.
fn find(root: &Path, key: &str) -> anyhow::Result<State> {
    pick(all(root), key)
}

/// [`find`] without correcting the state of containers whose monitor
/// died (which may run runc): for a look before strata has its namespaces.
pub(crate) fn find_as_saved(root: &Path, key: &str) -> anyhow::Result<State> {
    pick(all_as_saved(root), key)
}

fn pick(all: Vec<State>, key: &str) -> anyhow::Result<State> {
    let key = key.trim_start_matches('/');
    if let Some(s) = all.iter().find(|s| s.name == key || s.id == key) {
        return Ok(s.clone());
    }
    let matches: Vec<&State> = all.iter().filter(|s| s.id.starts_with(key)).collect();
    match matches.as_slice() {
        [one] if !key.is_empty() => Ok((*one).clone()),
        [] | [_] => bail!("No such container: {key}"),
        _ => bail!("multiple containers match the prefix {key:?}: give more of the id"),
    }
}

/// A container by name, id or id prefix, its state refreshed.
pub(crate) fn find_container(root: &Path, key: &str) -> anyhow::Result<State> {
    Ok(find(root, key)?.refreshed(root))
}

/// Ids of the containers (any state) created from image `image_id`.
pub(crate) fn users_of_image(root: &Path, image_id: &str) -> Vec<String> {
    all(root)
        .into_iter()
        .filter(|s| s.config.image_id == image_id)
        .map(|s| s.id)
        .collect()
}

/// `strata container ...`.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum ContainerCommand {
    /// List containers
    #[command(alias = "list", alias = "ps")]
    Ls(PsArgs),
    /// Create a new container
    Create(RunArgs),
    /// Run a command in a new container
    Run(RunArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Remove one or more containers
    Rm(RmArgs),
    /// Block until containers stop, then print their exit codes
    Wait(WaitArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Run a command in a running container
    Exec(ExecArgs),
    /// Display detailed information on containers
    Inspect(InspectArgs),
    /// Remove all stopped containers
    Prune(PruneArgs),
    /// Copy files between a container and the host
    Cp(super::cp::CpArgs),
    /// Display the running processes of a container
    Top(super::top::TopArgs),
    /// Create a new image from a container's changes
    Commit(super::commit::CommitArgs),
    /// Export a container's filesystem as a tar archive
    Export(super::commit::ExportArgs),
}

pub(crate) fn dispatch(g: &Global, c: ContainerCommand) -> anyhow::Result<u8> {
    match c {
        ContainerCommand::Ls(a) => ps(g, a),
        ContainerCommand::Create(a) => create(g, a),
        ContainerCommand::Run(a) => super::run::run(g, a),
        ContainerCommand::Start(a) => start(g, a),
        ContainerCommand::Stop(a) => stop(g, a),
        ContainerCommand::Restart(a) => restart(g, a),
        ContainerCommand::Kill(a) => kill(g, a),
        ContainerCommand::Rm(a) => rm(g, a),
        ContainerCommand::Wait(a) => wait(g, a),
        ContainerCommand::Logs(a) => logs(g, a),
        ContainerCommand::Exec(a) => exec(g, a),
        ContainerCommand::Inspect(a) => inspect(g, a),
        ContainerCommand::Prune(a) => prune(g, a),
        ContainerCommand::Cp(a) => super::cp::cp(g, a),
        ContainerCommand::Top(a) => super::top::top(g, a),
        ContainerCommand::Commit(a) => super::commit::commit(g, a),
        ContainerCommand::Export(a) => super::commit::export(g, a),
    }
}

/// `rmi`/`image rm`: drops (with Docker's conflict message) the names
/// whose image a container uses, unless `force`. True when one was refused.
pub(crate) fn refuse_used_images(g: &Global, names: &mut Vec<String>, force: bool) -> bool {
    if force {
        return false;
    }
    let root = g.store_root();
    if !ctrs_dir(&root).exists() {
        return false;
    }
    let Ok(store) = Store::open(&root) else {
        return false;
    };
    let mut refused = false;
    names.retain(|name| {
        let Ok(id) = images::find_image_id(&store, name) else {
            return true;
        };
        match users_of_image(&root, &id.to_string()).first() {
            Some(ctr) => {
                eprintln!(
                    "Error response from daemon: conflict: unable to remove repository reference \"{name}\" (must force) - container {} is using its referenced image {}",
                    &ctr[..12],
                    &id.to_string().trim_start_matches("sha256:")[..12]
                );
                refused = true;
                false
            }
            None => true,
        }
    });
    refused
}

/// `inspect NAME...`: when every name is a container, prints them and
/// returns the exit code; otherwise `None` (they are images).
pub(crate) fn inspect_if_containers(g: &Global, names: &[String]) -> Option<anyhow::Result<u8>> {
    let root = g.store_root();
    if !ctrs_dir(&root).exists() {
        return None;
    }
    let found: Vec<State> = names.iter().filter_map(|n| try_find(&root, n)).collect();
    if found.len() != names.len() {
        return None;
    }
    let out: Vec<serde_json::Value> = found.iter().map(|s| inspect_json(&root, s)).collect();
    Some(
        serde_json::to_string_pretty(&out)
            .map(|t| {
                let _ = writeln!(std::io::stdout(), "{t}");
                0
            })
            .map_err(Into::into),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_parse_like_docker() {
        let p = Port::parse("127.0.0.1:18080:80").unwrap();
        assert_eq!(p.display(), "127.0.0.1:18080->80/tcp");
        assert_eq!(
            Port::parse("8080:80/udp").unwrap().display(),
            "0.0.0.0:8080->80/udp"
        );
        assert_eq!(Port::parse("80").unwrap().host_port, 80);
        assert!(Port::parse("x:80").is_err());
        assert!(Port::parse("1.2.3:80:80").is_err());
        assert!(Port::parse("80/sctp").is_err());
    }
}
