//! The runc runtime: the [`Executor`] that hands a bundle to `runc run` in
//! the foreground (`foreground.rs`), detached containers (`detached.rs`),
//! what a killed strata left behind (`stale.rs`) and where runc's state
//! lives (`dirs.rs`).
//!
//! Per container: a bundle dir `<bundle_root>/<id>` with `config.json`, the
//! injected files and runc's JSON log; runc state under a strata-only
//! `--root` (default `/run/strata/runc`) so it never meets Docker's; cgroups
//! under `/strata/<id>` (cgroupfs driver, works on this host's hybrid v1/v2
//! hierarchy). A guard removes the bundle dir on every path out, errors and
//! panics included, and runs `runc delete --force` only when runc left its
//! state behind (it was killed, or never reaped the container).
//!
//! Latency matters here (`strata run --rm IMAGE true` is mostly runc's own
//! start-up): the exit of runc is awaited on a pidfd, never by sleeping, and
//! no other runc process is started on the normal path.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::signals;
use crate::spec::{build_oci_spec, InjectedFiles, DEFAULT_NOFILE};
use crate::stdio::{self, StdioConfig};
use crate::{ContainerSpec, Error, Executor, ExitStatus};

mod detached;
mod dirs;
mod foreground;
mod stale;

pub use dirs::is_rootless;
pub(crate) use dirs::run_dir;
pub(crate) use stale::bundle_owner;

/// The annotation recording the pid of the strata process that runs a
/// container; [`Runc::cleanup_stale`] removes containers whose owner is gone.
pub const OWNER_ANNOTATION: &str = "io.strata.owner-pid";

/// The annotation recording the owner's start time (clock ticks since boot,
/// `/proc/PID/stat` field 22), so a reused pid is not taken for the owner.
pub const OWNER_START_ANNOTATION: &str = "io.strata.owner-start";

/// Where [`Runc::locate`] looks after `STRATA_RUNC` and `PATH`.
const WELL_KNOWN: &[&str] = &[
    "/usr/sbin/runc",
    "/usr/bin/runc",
    "/usr/local/sbin/runc",
    "/usr/local/bin/runc",
];

/// Runs containers with the `runc` binary. Needs root.
#[derive(Debug, Clone)]
pub struct Runc {
    binary: PathBuf,
    state_root: PathBuf,
    bundle_root: PathBuf,
    cgroup_parent: Option<String>,
    stop_timeout: Duration,
    forward_signals: bool,
    reaper: bool,
}

impl Runc {
    /// Finds runc: `$STRATA_RUNC`, then `runc` in `PATH`, then the usual
    /// system paths. The error says how to install it. Also removes
    /// containers left behind by strata processes that were killed
    /// ([`Runc::cleanup_stale`]: one readdir when there are none), best effort.
    pub fn locate() -> Result<Runc, Error> {
        let runc = Runc::find()?;
        if let Err(e) = runc.cleanup_stale() {
            tracing::debug!("cleaning up stale containers: {e}");
        }
        Ok(runc)
    }

    /// [`Runc::locate`] without the clean-up of stale containers.
    pub fn find() -> Result<Runc, Error> {
        let runc = if let Some(p) = std::env::var_os("STRATA_RUNC") {
            Runc::with_binary(p)?
        } else {
            let from_path: Vec<PathBuf> = std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).map(|d| d.join("runc")).collect())
                .unwrap_or_default();
            let found = from_path
                .into_iter()
                .chain(WELL_KNOWN.iter().map(PathBuf::from))
                .find(|p| is_executable(p));
            match found {
                Some(p) => Runc::with_binary(p)?,
                None => {
                    return Err(Error::RuncNotFound {
                        path: PathBuf::from("runc"),
                    })
                }
            }
        };
        Ok(runc)
    }

    /// Uses the runc binary at `path`; fails with the install hint when it is
    /// not an executable file.
    pub fn with_binary(path: impl Into<PathBuf>) -> Result<Runc, Error> {
        let binary = path.into();
        if !is_executable(&binary) {
            return Err(Error::RuncNotFound { path: binary });
        }
        let run_dir = run_dir()?;
        let rootless = is_rootless();
        Ok(Runc {
            binary,
            state_root: run_dir.join("runc"),
            bundle_root: run_dir.join("bundles"),
            // Rootless: no cgroup of our own (runc cannot create one
            // without a delegated cgroup v2 tree).
            cgroup_parent: (!rootless).then(|| "/strata".to_string()),
            stop_timeout: Duration::from_secs(10),
            forward_signals: true,
            reaper: false,
        })
    }

    /// The runc binary in use.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// runc's `--root` state directory (default `/run/strata/runc`).
    pub fn with_state_root(mut self, dir: impl Into<PathBuf>) -> Runc {
        self.state_root = dir.into();
        self
    }

    /// Where bundle dirs are created (default `/run/strata/bundles`).
    pub fn with_bundle_root(mut self, dir: impl Into<PathBuf>) -> Runc {
        self.bundle_root = dir.into();
        self
    }

    /// The cgroup parent (default `/strata`; each container gets
    /// `<parent>/<id>`); `None` lets runc use the id at the hierarchy root.
    pub fn with_cgroup_parent(mut self, parent: Option<String>) -> Runc {
        self.cgroup_parent = parent;
        self
    }

    /// After the first SIGINT/SIGTERM/SIGHUP/SIGQUIT is forwarded, how long
    /// the container has before SIGKILL (default 10 s, as `docker stop`). A
    /// second signal kills at once.
    pub fn with_stop_timeout(mut self, timeout: Duration) -> Runc {
        self.stop_timeout = timeout;
        self
    }

    /// Whether [`Executor::run`] installs the signal forwarding handlers of
    /// [`crate::signals`] while containers run (default true).
    pub fn with_signal_forwarding(mut self, on: bool) -> Runc {
        self.forward_signals = on;
        self
    }

    /// Whether the first [`Executor::run`] starts the [`crate::reaper`],
    /// which kills this process's containers when it dies, even by SIGKILL
    /// (default false). Only for a binary whose `main` calls
    /// [`crate::reaper::run_if_reaper`] first.
    pub fn with_reaper(mut self, on: bool) -> Runc {
        self.reaper = on;
        self
    }

    /// Kills and deletes a stale container and removes its bundle.
    pub(crate) fn remove_stale(&self, id: &str, bundle: &Path) {
        self.kill_and_delete(id);
        let _ = std::fs::remove_dir_all(bundle);
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root").arg(&self.state_root);
        cmd
    }

    /// `runc kill ID SIG`, best effort.
    fn kill(&self, id: &str, signal: &str) {
        let _ = self
            .command()
            .args(["kill", id, signal])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }

    /// Kills every process of a container through its cgroup (`runc kill
    /// --all ID KILL`: processes that left the pid namespace's init behind
    /// too), then deletes it (`runc delete --force`), best effort.
    fn kill_and_delete(&self, id: &str) {
        let _ = self
            .command()
            .args(["kill", "--all", id, "KILL"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        self.delete(id);
    }

    /// `runc delete --force ID`, best effort.
    fn delete(&self, id: &str) {
        let _ = self
            .command()
            .args(["delete", "--force", id])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The RLIMIT_NOFILE runc can set: [`DEFAULT_NOFILE`], or our hard limit
/// when it is lower and we lack CAP_SYS_RESOURCE to exceed it.
fn nofile_limit() -> u64 {
    let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .maximum
        .unwrap_or(u64::MAX);
    // In a user namespace CAP_SYS_RESOURCE does not lift the hard limit.
    if hard >= DEFAULT_NOFILE || (has_cap_sys_resource() && !is_rootless()) {
        DEFAULT_NOFILE
    } else {
        hard
    }
}

/// `CAP_SYS_RESOURCE` is capability 24.
const CAP_SYS_RESOURCE_BIT: u64 = 1 << 24;

fn has_cap_sys_resource() -> bool {
    crate::proc_self_status("CapEff")
        .and_then(|h| u64::from_str_radix(&h, 16).ok())
        .is_some_and(|caps| caps & CAP_SYS_RESOURCE_BIT != 0)
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 1024
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'+'))
        && !id.starts_with('.')
}

/// The `error`-level messages of runc's JSON log.
fn runc_errors(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["level"] == "error")
        .filter_map(|v| v["msg"].as_str().map(String::from))
        .collect()
}

/// Rootless: no cgroup unless the spec asks for limits; then one under
/// the delegated cgroup, or an error naming each limit that cannot be
/// applied and why (never a limit silently dropped).
fn rootless_cgroup_path(spec: &ContainerSpec) -> Result<Option<String>, Error> {
    let limits = crate::cgroups::requested_limits(&spec.extra);
    if limits.is_empty() {
        return Ok(None);
    }
    let controllers: Vec<&str> = limits.iter().map(|(_, c)| *c).collect();
    match crate::cgroups::rootless_delegation(&controllers) {
        crate::cgroups::Delegation::Delegated { parent } => Ok(Some(format!(
            "{}/strata-{}",
            parent.trim_end_matches('/'),
            spec.id.trim_start_matches("strata-")
        ))),
        crate::cgroups::Delegation::Missing { why } => Err(Error::RootlessLimits {
            flags: limits.iter().map(|(f, _)| f.to_string()).collect(),
            why,
        }),
    }
}

fn mkdir_private(dir: &Path) -> Result<(), Error> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))
}

#[cfg(test)]
mod tests {
    use super::dirs::check_private_dir;
    use super::*;

    #[test]
    fn ids_are_checked() {
        assert!(valid_id("strata-0af3"));
        assert!(!valid_id(""));
        assert!(!valid_id("../x"));
        assert!(!valid_id("a b"));
    }

    #[test]
    fn abandoned_configless_bundles_are_removed_young_ones_kept() {
        let t = tempfile::tempdir().unwrap();
        let runc = Runc::with_binary("/bin/true")
            .unwrap()
            .with_bundle_root(t.path());
        let old = t.path().join("build-old");
        let young = t.path().join("build-young");
        std::fs::create_dir(&old).unwrap();
        std::fs::create_dir(&young).unwrap();
        let an_hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
        std::fs::File::open(&old)
            .unwrap()
            .set_modified(an_hour_ago)
            .unwrap();
        let removed = runc.cleanup_stale().unwrap();
        assert_eq!(removed, vec!["build-old".to_string()]);
        assert!(!old.exists());
        assert!(young.exists(), "a bundle being created was removed");
    }

    #[test]
    fn only_a_private_directory_of_ours_is_a_run_dir() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let ok = t.path().join("ok");
        std::fs::create_dir(&ok).unwrap();
        std::fs::set_permissions(&ok, std::fs::Permissions::from_mode(0o700)).unwrap();
        check_private_dir(&ok).unwrap();
        let wide = t.path().join("wide");
        std::fs::create_dir(&wide).unwrap();
        std::fs::set_permissions(&wide, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = check_private_dir(&wide).unwrap_err().to_string();
        assert!(e.contains("mode 0777") && e.contains("remove it"), "{e}");
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&ok, &link).unwrap();
        let e = check_private_dir(&link).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        let file = t.path().join("file");
        std::fs::write(&file, b"").unwrap();
        assert!(check_private_dir(&file).is_err());
        if rustix::process::geteuid().as_raw() == 0 {
            std::os::unix::fs::chown(&ok, Some(65534), None).unwrap();
            let e = check_private_dir(&ok).unwrap_err().to_string();
            assert!(e.contains("belongs to someone else (uid 65534"), "{e}");
        }
    }

    #[test]
    fn missing_binary_gives_install_hint() {
        let e = Runc::with_binary("/nonexistent/runc")
            .unwrap_err()
            .to_string();
        assert!(e.contains("apt-get install runc"), "{e}");
    }
}
