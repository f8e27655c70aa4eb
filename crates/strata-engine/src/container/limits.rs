//! Resource limits and security options of a container (`run --memory`,
//! `--cpus`, `--ulimit`, `--tmpfs`, `--cap-add`, `--security-opt`, ...):
//! checked once when the container is made ([`Limits::parse`]), kept with
//! a container's state, and put into the runtime's extras and mounts each
//! time it starts ([`Limits::apply`]).

use serde::{Deserialize, Serialize};
use strata_runtime::{ContainerExtras, MountSpec, Ulimit};

use super::ContainerError;

/// The options as given (`run`'s flags, unparsed).
#[derive(Debug, Clone, Default)]
pub struct LimitOptions {
    /// `--memory` (e.g. `32m`).
    pub memory: Option<String>,
    /// `--cpus`.
    pub cpus: Option<f64>,
    /// `--pids-limit` (<= 0: unlimited).
    pub pids_limit: Option<i64>,
    /// `--ulimit NAME=SOFT[:HARD]`.
    pub ulimits: Vec<String>,
    /// `--shm-size`.
    pub shm_size: Option<String>,
    /// `--read-only`.
    pub read_only: bool,
    /// `--tmpfs PATH[:size=N,mode=M]`.
    pub tmpfs: Vec<String>,
    /// `--cap-add`.
    pub cap_add: Vec<String>,
    /// `--cap-drop`.
    pub cap_drop: Vec<String>,
    /// `--security-opt`.
    pub security_opt: Vec<String>,
    /// `--init`.
    pub init: bool,
}

/// Resource limits and security options, checked.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct Limits {
    /// Bytes of memory.
    pub memory: Option<i64>,
    /// CPUs (fractions allowed).
    pub cpus: Option<f64>,
    /// Processes.
    pub pids_limit: Option<i64>,
    /// `NAME=SOFT[:HARD]`, each parsed by [`Ulimit::parse`].
    pub ulimits: Vec<String>,
    /// Bytes of /dev/shm.
    pub shm_size: Option<u64>,
    /// A read-only rootfs.
    pub read_only: bool,
    /// `PATH[:size=N,mode=M]`.
    pub tmpfs: Vec<String>,
    /// Capabilities added.
    pub cap_add: Vec<String>,
    /// Capabilities dropped.
    pub cap_drop: Vec<String>,
    /// `no-new-privileges`.
    pub no_new_privileges: bool,
    /// `seccomp=unconfined`.
    pub seccomp_unconfined: bool,
    /// `systempaths=unconfined`: /proc and /sys without masked or
    /// read-only paths. (Defaulted: a container recorded before it existed
    /// still reads.)
    #[serde(default)]
    pub systempaths_unconfined: bool,
    /// Run an init as PID 1 (the caller provides it).
    pub init: bool,
}

fn invalid(message: String) -> ContainerError {
    ContainerError::Invalid(message)
}

/// A size like `32m`, `1g`, `512k` or `100` (bytes); `what` names the
/// option in errors.
pub fn parse_size(s: &str, what: &str) -> Result<u64, ContainerError> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.trim_end_matches('b');
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let n: f64 = num.parse().map_err(|e| {
        invalid(format!(
            "invalid {what} {s:?}: use a size like 32m or 1g: {e}"
        ))
    })?;
    Ok((n * mult as f64) as u64)
}

impl Limits {
    /// Checks `o`: sizes, the minimum memory, capabilities, ulimits and
    /// security options.
    pub fn parse(o: &LimitOptions) -> Result<Limits, ContainerError> {
        let mut l = Limits {
            memory: o
                .memory
                .as_deref()
                .map(|m| parse_size(m, "--memory"))
                .transpose()?
                .map(|m| m as i64),
            cpus: o.cpus,
            pids_limit: o.pids_limit.filter(|&p| p > 0),
            ulimits: o.ulimits.clone(),
            shm_size: o
                .shm_size
                .as_deref()
                .map(|m| parse_size(m, "--shm-size"))
                .transpose()?,
            read_only: o.read_only,
            tmpfs: o.tmpfs.clone(),
            cap_add: o.cap_add.clone(),
            cap_drop: o.cap_drop.clone(),
            init: o.init,
            ..Default::default()
        };
        if let Some(m) = l.memory {
            if m < 6 << 20 {
                return Err(invalid("Minimum memory limit allowed is 6MB".into()));
            }
        }
        if let Some(c) = l.cpus {
            if c <= 0.0 {
                return Err(invalid(format!(
                    "invalid --cpus {c}: give a positive number"
                )));
            }
        }
        for opt in &o.security_opt {
            match opt.as_str() {
                "no-new-privileges" | "no-new-privileges:true" | "no-new-privileges=true" => {
                    l.no_new_privileges = true
                }
                "seccomp=unconfined" | "seccomp:unconfined" => l.seccomp_unconfined = true,
                "systempaths=unconfined" | "systempaths:unconfined" => {
                    l.systempaths_unconfined = true
                }
                other => {
                    return Err(invalid(format!(
                        "unsupported --security-opt {other:?}: strata knows no-new-privileges, \
                         seccomp=unconfined and systempaths=unconfined"
                    )))
                }
            }
        }
        strata_runtime::effective_capabilities(&l.cap_add, &l.cap_drop)?;
        for u in &l.ulimits {
            Ulimit::parse(u)?;
        }
        Ok(l)
    }

    /// Puts the limits into the runtime's `extra` and the tmpfs mounts
    /// into `mounts`.
    pub fn apply(
        &self,
        extra: &mut ContainerExtras,
        mounts: &mut Vec<MountSpec>,
    ) -> Result<(), ContainerError> {
        extra.memory = self.memory;
        extra.nano_cpus = self.cpus.map(|c| (c * 1e9) as i64);
        extra.pids_limit = self.pids_limit;
        extra.shm_size = self.shm_size;
        extra.cap_add = self.cap_add.clone();
        extra.cap_drop = self.cap_drop.clone();
        extra.seccomp_unconfined = self.seccomp_unconfined;
        extra.systempaths_unconfined = self.systempaths_unconfined;
        for u in &self.ulimits {
            extra.ulimits.push(Ulimit::parse(u)?);
        }
        for t in &self.tmpfs {
            mounts.push(tmpfs_mount(t)?);
        }
        Ok(())
    }
}

/// `PATH[:size=N,mode=M]` (mode 1777 when not given).
fn tmpfs_mount(t: &str) -> Result<MountSpec, ContainerError> {
    let (dst, opts) = t.split_once(':').unwrap_or((t, ""));
    if !dst.starts_with('/') {
        return Err(invalid(format!(
            "invalid --tmpfs {t:?}: the path must be absolute"
        )));
    }
    let mut size = None;
    let mut mode = None;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        if let Some(v) = o.strip_prefix("size=") {
            size = Some(parse_size(v, "tmpfs size")?);
        } else if let Some(v) = o.strip_prefix("mode=") {
            mode = Some(
                u32::from_str_radix(v, 8)
                    .map_err(|e| invalid(format!("invalid tmpfs mode {v:?}: {e}")))?,
            );
        }
    }
    Ok(MountSpec::Tmpfs {
        destination: dst.to_string(),
        size,
        mode: mode.or(Some(0o1777)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_minimums() {
        assert_eq!(parse_size("32m", "--memory").unwrap(), 32 << 20);
        assert_eq!(parse_size("1GB", "--memory").unwrap(), 1 << 30);
        assert!(parse_size("lots", "--memory")
            .unwrap_err()
            .to_string()
            .contains("invalid --memory \"lots\""));
        let small = LimitOptions {
            memory: Some("1m".into()),
            ..Default::default()
        };
        assert_eq!(
            Limits::parse(&small).unwrap_err().to_string(),
            "Minimum memory limit allowed is 6MB"
        );
    }

    #[test]
    fn tmpfs_defaults_to_sticky_world_writable() {
        let l = Limits {
            tmpfs: vec!["/scratch:size=1m".into()],
            ..Default::default()
        };
        let mut mounts = Vec::new();
        l.apply(&mut ContainerExtras::default(), &mut mounts)
            .unwrap();
        assert!(matches!(
            &mounts[..],
            [MountSpec::Tmpfs { destination, size: Some(1048576), mode: Some(0o1777) }]
                if destination == "/scratch"
        ));
    }
}
