//! Containers and bundles left behind by a strata that was killed: listed,
//! and removed once their owner is gone.

use super::*;

impl Runc {
    /// Ids of the containers in our state root (`runc list`).
    pub fn list(&self) -> Result<Vec<String>, Error> {
        if !self.state_root.exists() {
            return Ok(Vec::new());
        }
        let out = self
            .command()
            .args(["list", "--format", "json"])
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| Error::io(format!("running {} list", self.binary.display()), e))?;
        if !out.status.success() {
            return Err(Error::Runc {
                id: String::new(),
                message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        Ok(v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| c["id"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Deletes containers (and their bundles) whose owning strata process no
    /// longer exists, e.g. after it was killed with SIGKILL. Returns their ids.
    ///
    /// Every container strata starts has a bundle dir whose `config.json`
    /// names the owner pid, and the bundle outlives runc's state (the guard
    /// removes it last), so a readdir of the bundle root finds them all:
    /// runc is started only for a container that is really stale, never to
    /// list them (a Go binary start before every container was most of
    /// `strata run`'s own overhead).
    ///
    /// A stale container may still run (its strata was SIGKILLed while a
    /// RUN was running: `runc run` and the container outlive it): all its
    /// processes are killed through its cgroup before runc's state and the
    /// bundle are deleted. Only containers whose recorded owner (pid and
    /// start time) is gone are touched, never those of a live strata, so
    /// concurrent strata processes with other stores are safe. Also removes
    /// the network namespace files of dead owners ([`crate::netns`]).
    pub fn cleanup_stale(&self) -> Result<Vec<String>, Error> {
        self.stale_containers(true)
    }

    /// The containers [`Runc::cleanup_stale`] would remove, without
    /// touching them.
    pub fn find_stale(&self) -> Result<Vec<String>, Error> {
        self.stale_containers(false)
    }

    fn stale_containers(&self, remove: bool) -> Result<Vec<String>, Error> {
        if remove {
            if let Ok(dir) = crate::netns::default_dir() {
                crate::netns::cleanup_stale(&dir);
            }
        }
        let entries = match std::fs::read_dir(&self.bundle_root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(Error::io(
                    format!("listing {}", self.bundle_root.display()),
                    e,
                ))
            }
        };
        let mut removed = Vec::new();
        for ent in entries.flatten() {
            let Some(id) = ent.file_name().to_str().map(String::from) else {
                continue;
            };
            if !valid_id(&id) {
                continue;
            }
            // A bundle without a config is being created, or its owner
            // was killed before runc started (the config is written
            // atomically, just before runc runs): nothing of runc's to
            // clean; the dir goes once it is clearly abandoned.
            let Some((pid, start)) = bundle_owner(&ent.path()) else {
                if older_than(&ent.path(), ABANDONED_BUNDLE) {
                    if remove {
                        let _ = std::fs::remove_dir_all(ent.path());
                    }
                    removed.push(id);
                }
                continue;
            };
            if !crate::netns::owner_alive(pid, start) {
                if remove {
                    self.remove_stale(&id, &ent.path());
                }
                removed.push(id);
            }
        }
        Ok(removed)
    }
}

/// A bundle dir without a config for this long belongs to a process that
/// was killed while creating it (that takes milliseconds when it lives).
pub(super) const ABANDONED_BUNDLE: Duration = Duration::from_secs(60);

pub(super) fn older_than(p: &Path, age: Duration) -> bool {
    std::fs::symlink_metadata(p)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|e| e > age)
}

/// The owner pid and start time (absent in bundles of older stratas)
/// recorded in a bundle's `config.json` annotations.
pub(crate) fn bundle_owner(bundle: &Path) -> Option<(u32, Option<u64>)> {
    let bytes = std::fs::read(bundle.join("config.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let pid = v["annotations"][OWNER_ANNOTATION].as_str()?.parse().ok()?;
    let start = v["annotations"][OWNER_START_ANNOTATION]
        .as_str()
        .and_then(|s| s.parse().ok());
    Some((pid, start))
}
