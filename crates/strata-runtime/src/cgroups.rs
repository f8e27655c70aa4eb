//! Resource limits (`--memory`, `--cpus`, `--pids-limit`) for rootless
//! containers.
//!
//! As root, every container gets a cgroup under `/strata` and runc writes
//! the limits there. An unprivileged user may only use cgroups that were
//! delegated to it: on cgroup v2, a subtree it owns whose parent enables
//! the controller for it (systemd's `Delegate=` on `user@UID.service`).
//! cgroup v1 is never delegated. Where the limits cannot be applied, the
//! container does not start and the error names each limit, why and how
//! to fix it, as podman refuses ("cannot specify resource limits without
//! cgroups v2"): a limit is never silently ignored.
//!
//! With delegation, the container's cgroup is `<A>/strata-<id>`, with `A`
//! the deepest cgroup above or at strata's own that the user can write and
//! whose `cgroup.subtree_control` enables every controller needed (its
//! children get them; a cgroup with processes of its own, such as a login
//! scope, cannot enable controllers for its children, so `A` is usually
//! an ancestor). runc creates and removes it.

use std::path::{Path, PathBuf};

use crate::spec::ContainerExtras;

/// Where the cgroup v2 hierarchy is mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The limits of `extra` that need a cgroup: (Docker flag, controller).
pub fn requested_limits(extra: &ContainerExtras) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    if extra.memory.is_some() {
        out.push(("--memory", "memory"));
    }
    if extra.nano_cpus.is_some() {
        out.push(("--cpus", "cpu"));
    }
    if extra.pids_limit.is_some() {
        out.push(("--pids-limit", "pids"));
    }
    out
}

/// Whether an unprivileged user can have limits applied here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delegation {
    /// A cgroup (path from the hierarchy's root, starting with `/`) under
    /// which the user may create container cgroups with the controllers.
    Delegated {
        /// The parent for container cgroups.
        parent: String,
    },
    /// No such cgroup.
    Missing {
        /// Why, and how to fix it.
        why: String,
    },
}

/// How to get delegation, for the error.
const FIX: &str = "to apply limits as an unprivileged user, boot with cgroup v2 (the unified \
     hierarchy; systemd: systemd.unified_cgroup_hierarchy=1) and have systemd delegate the \
     controllers to your user (`Delegate=` in user@.service, and run strata from a user \
     session or `systemd-run --user --scope`); or run strata as root; or drop the limit flags";

/// The cgroup v2 delegation available to this process for `controllers`.
pub fn rootless_delegation(controllers: &[&str]) -> Delegation {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    find_delegation(Path::new(CGROUP_ROOT), &own, controllers, writable)
}

fn writable(p: &Path) -> bool {
    rustix::fs::access(p, rustix::fs::Access::WRITE_OK).is_ok()
}

/// [`rootless_delegation`] on a hierarchy at `root`, for a process whose
/// `/proc/self/cgroup` is `self_cgroup`.
fn find_delegation(
    root: &Path,
    self_cgroup: &str,
    controllers: &[&str],
    writable: impl Fn(&Path) -> bool,
) -> Delegation {
    let names = controllers.join(", ");
    if !root.join("cgroup.controllers").exists() {
        return Delegation::Missing {
            why: format!(
                "this host has no cgroup v2 hierarchy for the {names} controller{s} (cgroup v1 \
                 or a hybrid setup, and cgroup v1 is never delegated to unprivileged users); {FIX}",
                s = if controllers.len() == 1 { "" } else { "s" }
            ),
        };
    }
    let Some(own) = self_cgroup.lines().find_map(|l| l.strip_prefix("0::")) else {
        return Delegation::Missing {
            why: format!("strata's own cgroup is not on the cgroup v2 hierarchy; {FIX}"),
        };
    };
    let own = own.trim();
    let mut path = PathBuf::from(own);
    loop {
        let dir = root.join(path.strip_prefix("/").unwrap_or(&path));
        let enabled =
            std::fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
        let enabled: Vec<&str> = enabled.split_whitespace().collect();
        if controllers.iter().all(|c| enabled.contains(c))
            && writable(&dir)
            && writable(&dir.join("cgroup.procs"))
        {
            return Delegation::Delegated {
                parent: path.display().to_string(),
            };
        }
        if !path.pop() || path.as_os_str().is_empty() {
            break;
        }
    }
    Delegation::Missing {
        why: format!(
            "no cgroup delegated to you enables the {names} controller{s} (strata runs in cgroup \
             {own}; neither it nor a parent is writable by you with {names} enabled for its \
             children); {FIX}",
            s = if controllers.len() == 1 { "" } else { "s" }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(dirs: &[(&str, &str)]) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        for (dir, subtree) in dirs {
            let d = t.path().join(dir);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("cgroup.subtree_control"), subtree).unwrap();
            std::fs::write(d.join("cgroup.procs"), "").unwrap();
        }
        t
    }

    #[test]
    fn cgroup_v1_is_never_delegated() {
        let t = tempfile::tempdir().unwrap();
        let d = find_delegation(t.path(), "4:memory:/x\n0::/\n", &["memory"], |_| true);
        let Delegation::Missing { why } = d else {
            panic!("{d:?}")
        };
        assert!(why.contains("cgroup v1") && why.contains("memory"), "{why}");
        assert!(why.contains("systemd.unified_cgroup_hierarchy=1"), "{why}");
    }

    #[test]
    fn the_deepest_writable_cgroup_enabling_all_controllers_is_used() {
        let svc = "user.slice/user-1000.slice/user@1000.service";
        let t = tree(&[
            ("user.slice", "cpu memory pids"),
            ("user.slice/user-1000.slice", "cpu memory pids"),
            (svc, "cpu memory pids"),
            (&format!("{svc}/app.slice"), "memory"),
            (&format!("{svc}/app.slice/term.scope"), ""),
        ]);
        let own = format!("0::/{svc}/app.slice/term.scope\n");
        let under_service = |p: &Path| p.to_string_lossy().contains("user@1000.service");
        assert_eq!(
            find_delegation(t.path(), &own, &["memory"], under_service),
            Delegation::Delegated {
                parent: format!("/{svc}/app.slice")
            }
        );
        assert_eq!(
            find_delegation(t.path(), &own, &["memory", "pids"], under_service),
            Delegation::Delegated {
                parent: format!("/{svc}")
            }
        );
        // Nothing writable (a login session scope owned by root).
        let d = find_delegation(t.path(), &own, &["cpu"], |_| false);
        let Delegation::Missing { why } = d else {
            panic!("{d:?}")
        };
        assert!(why.contains("term.scope") && why.contains("cpu"), "{why}");
    }
}
