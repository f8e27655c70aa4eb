//! What a container is (the public description) and how it becomes an OCI
//! runtime `config.json` with Docker's defaults: namespaces, capabilities,
//! `/dev`, `/proc`, `/sys`, masked and read-only paths, rlimits, the seccomp
//! profile of [`crate::seccomp`], and the three
//! injected files `/etc/resolv.conf`, `/etc/hosts`, `/etc/hostname`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxDeviceCgroupBuilder,
    LinuxNamespaceBuilder, LinuxNamespaceType, LinuxResourcesBuilder, Mount, MountBuilder,
    PosixRlimitBuilder, PosixRlimitType, ProcessBuilder, RootBuilder, Spec, SpecBuilder,
    UserBuilder,
};

use crate::{Error, UserSpec};

mod capabilities;
mod oci;
mod ulimit;

pub use capabilities::effective_capabilities;
pub(crate) use oci::build_oci_spec;
pub use ulimit::{Ulimit, UlimitError};

/// Docker's default `PATH` (`system.DefaultPathEnv` on Linux).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Files the runtime bind-mounts read-only over the rootfs in every container:
/// the host's resolver configuration and generated `hosts` and `hostname`.
///
/// They are never part of an image. The contents are bind mounts and never
/// reach the rootfs, but when the target file does not exist runc creates an
/// **empty placeholder file** (and `/etc` if needed) as the mount point, and
/// that placeholder lands in an overlay upper dir. The engine must do one of:
/// - mount an "init layer" produced by [`write_init_layer`] between the image
///   layers and the upper dir (Docker's approach; the placeholders then exist
///   below the upper dir and nothing new is created), or
/// - have the differ skip these paths when they are empty regular files in
///   the upper dir that did not exist in the lower layers.
pub const INJECTED_PATHS: &[&str] = &["/etc/resolv.conf", "/etc/hosts", "/etc/hostname"];

/// Docker's default capability set (moby `oci/caps/defaults.go`), granted as
/// bounding, effective and permitted (never ambient or inheritable): a
/// non-root process therefore has no effective capabilities after `exec`, as
/// in Docker. Its mask is `0x00000000a80425fb`.
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Paths masked from the container (moby `oci/defaults.go`).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths made read-only inside the container (moby `oci/defaults.go`).
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The `RLIMIT_NOFILE` Docker containers get (dockerd's `LimitNOFILE`). When
/// the caller's hard limit is lower and it cannot raise it (no
/// `CAP_SYS_RESOURCE`), the caller's hard limit is used instead: runc cannot
/// set a limit above it.
pub const DEFAULT_NOFILE: u64 = 1_048_576;

/// The process to run.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    /// `argv`; `args[0]` is looked up in the container's `PATH` by runc.
    pub args: Vec<String>,
    /// `K=V` pairs. `PATH` (Docker's default), `HOSTNAME` and `HOME` (from
    /// [`UserSpec::home`]) are added when missing; `TERM=xterm` with a tty.
    pub env: Vec<String>,
    /// Working directory (absolute); runc creates it when missing.
    pub cwd: String,
    /// The resolved user, see [`crate::resolve_user`].
    pub user: UserSpec,
    /// Allocate a pseudo-terminal (`run -t`); needs a terminal on stdin.
    pub tty: bool,
    /// Keep stdin open (`run -i`); otherwise stdin is `/dev/null`.
    pub stdin: bool,
}

impl Default for ProcessSpec {
    fn default() -> Self {
        ProcessSpec {
            args: Vec::new(),
            env: Vec::new(),
            cwd: "/".to_string(),
            user: UserSpec::default(),
            tty: false,
            stdin: false,
        }
    }
}

/// The container's network.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Network {
    /// Share the host's network namespace (Docker `--network host`).
    /// The container never gets `CAP_NET_RAW` there: with it, a process
    /// could capture the host's packets (AF_PACKET).
    #[default]
    Host,
    /// A fresh network namespace with only `lo` (Docker `--network none`).
    None,
    /// Join an existing network namespace (a build's private network, see
    /// [`crate::PrivateNetwork`]); its resolv.conf replaces the host's.
    Join(crate::NetnsRef),
}

/// A host directory or file bind-mounted into the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    /// Host path (absolute).
    pub source: PathBuf,
    /// Path inside the container (absolute).
    pub destination: String,
    /// Mount read-only.
    pub readonly: bool,
}

/// A mount added on top of the rootfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSpec {
    /// `rbind`, `rprivate`, plus `ro` when read-only.
    Bind(BindMount),
    /// A fresh tmpfs with `nosuid,nodev` (executables allowed, as BuildKit's
    /// `RUN --mount=type=tmpfs`).
    Tmpfs {
        /// Path inside the container (absolute).
        destination: String,
        /// Size limit in bytes; `None` is the kernel default (half of RAM).
        size: Option<u64>,
        /// Permissions of the mount's root, e.g. `0o1777`.
        mode: Option<u32>,
    },
}

/// Everything needed to run one container.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    /// Unique id, also the runc container id; see [`crate::new_container_id`].
    pub id: String,
    /// The root filesystem (made absolute before use).
    pub rootfs: PathBuf,
    /// The process.
    pub process: ProcessSpec,
    /// Host or none.
    pub network: Network,
    /// Extra mounts, applied in order after the default ones.
    pub mounts: Vec<MountSpec>,
    /// Hostname; default: the host's with [`Network::Host`], otherwise the
    /// first 12 characters of the id's hex part (ids are `<kind>-<hex>`:
    /// `strata-`, `build-`, `run-`; Docker uses the short id).
    pub hostname: Option<String>,
    /// Mount the rootfs read-only.
    pub readonly_rootfs: bool,
    /// Docker's `--add-host`, `--shm-size`, `--ulimit`.
    pub extra: ContainerExtras,
}

/// Options most containers leave at Docker's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerExtras {
    /// `--add-host HOST:IP`: lines appended to `/etc/hosts`.
    pub extra_hosts: Vec<(String, String)>,
    /// `--shm-size`: the size of `/dev/shm` in bytes (default 64 MiB).
    pub shm_size: Option<u64>,
    /// `--ulimit NAME=SOFT[:HARD]`: rlimits replacing the defaults of the
    /// same name.
    pub ulimits: Vec<Ulimit>,
    /// `--memory`: the cgroup memory limit in bytes (swap limited to the
    /// same, as Docker does without `--memory-swap`).
    pub memory: Option<i64>,
    /// `--cpus` in billionths of a CPU (CFS quota over a 100 ms period).
    pub nano_cpus: Option<i64>,
    /// `--pids-limit`.
    pub pids_limit: Option<i64>,
    /// `--cap-add` (`ALL` or names with or without `CAP_`).
    pub cap_add: Vec<String>,
    /// `--cap-drop` (`ALL` or names).
    pub cap_drop: Vec<String>,
    /// `--security-opt seccomp=unconfined`: no syscall filter.
    pub seccomp_unconfined: bool,
    /// `--security-opt systempaths=unconfined`: no masked or read-only
    /// paths under /proc and /sys (Docker's flag; what a nested
    /// container runtime needs to mount its own procfs).
    pub systempaths_unconfined: bool,
}

impl ContainerSpec {
    /// The hostname the container gets.
    pub fn effective_hostname(&self) -> String {
        if let Some(h) = &self.hostname {
            return h.clone();
        }
        if self.network == Network::Host {
            if let Ok(name) = rustix::system::uname().nodename().to_str() {
                return name.to_string();
            }
        }
        let short = self.id.rsplit_once('-').map_or(&*self.id, |(_, hex)| hex);
        short.chars().take(12).collect()
    }
}

/// Host paths of the files bind-mounted at [`INJECTED_PATHS`].
pub(crate) struct InjectedFiles {
    pub resolv_conf: PathBuf,
    pub hosts: PathBuf,
    pub hostname: PathBuf,
}

impl InjectedFiles {
    /// Writes the three files into `dir` (the bundle); `resolv_conf`
    /// replaces the host's `/etc/resolv.conf` when given; `extra_hosts`
    /// (`--add-host`) are appended to `/etc/hosts`.
    pub(crate) fn write(
        dir: &Path,
        hostname: &str,
        resolv_conf: Option<&str>,
        extra_hosts: &[(String, String)],
    ) -> Result<InjectedFiles, Error> {
        let files = InjectedFiles {
            resolv_conf: dir.join("resolv.conf"),
            hosts: dir.join("hosts"),
            hostname: dir.join("hostname"),
        };
        let resolv = match resolv_conf.map(|r| Ok(r.as_bytes().to_vec())) {
            Some(r) => r,
            None => std::fs::read("/etc/resolv.conf"),
        };
        let resolv = match resolv {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::io("reading the host's /etc/resolv.conf", e)),
        };
        let mut hosts = format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
             fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
             ff02::2\tip6-allrouters\n127.0.1.1\t{hostname}\n"
        );
        for (host, ip) in extra_hosts {
            hosts.push_str(&format!("{ip}\t{host}\n"));
        }
        for (path, data) in [
            (&files.resolv_conf, resolv),
            (&files.hosts, hosts.into_bytes()),
            (&files.hostname, format!("{hostname}\n").into_bytes()),
        ] {
            std::fs::write(path, data)
                .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        }
        Ok(files)
    }
}

/// Creates, under `dir`, the mount points runc would otherwise create inside
/// the rootfs: `/proc`, `/sys`, `/dev`, `/dev/pts`, `/dev/shm`, `/etc` and the
/// empty [`INJECTED_PATHS`] files, plus `/etc/mtab -> /proc/mounts`, like
/// Docker's init layer. Mount `dir` as the lowest-but-one overlay layer (just
/// below the upper dir) so that running a container leaves no placeholder in
/// the upper dir. Existing entries are left alone.
pub fn write_init_layer(dir: &Path) -> Result<(), Error> {
    for d in ["proc", "sys", "dev/pts", "dev/shm", "etc"] {
        let p = dir.join(d);
        std::fs::create_dir_all(&p)
            .map_err(|e| Error::io(format!("creating {}", p.display()), e))?;
    }
    for f in INJECTED_PATHS {
        let p = dir.join(f.trim_start_matches('/'));
        if std::fs::symlink_metadata(&p).is_err() {
            std::fs::write(&p, b"")
                .map_err(|e| Error::io(format!("creating {}", p.display()), e))?;
        }
    }
    let mtab = dir.join("etc/mtab");
    if std::fs::symlink_metadata(&mtab).is_err() {
        std::os::unix::fs::symlink("/proc/mounts", &mtab)
            .map_err(|e| Error::io(format!("creating {}", mtab.display()), e))?;
    }
    Ok(())
}

/// The final environment: Docker's order (`PATH`, `HOSTNAME`, `TERM` with a
/// tty, then the user's values replacing those, then `HOME` if still unset).
pub(crate) fn process_env(p: &ProcessSpec, hostname: &str) -> Vec<String> {
    let mut env = vec![
        format!("PATH={DEFAULT_PATH}"),
        format!("HOSTNAME={hostname}"),
    ];
    if p.tty {
        env.push("TERM=xterm".to_string());
    }
    for kv in &p.env {
        let key = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
        match env
            .iter_mut()
            .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
        {
            Some(slot) => *slot = kv.clone(),
            None => env.push(kv.clone()),
        }
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", p.user.home));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A container `id` running `arg0` in `/r`: no network, no mounts, a
    /// writable rootfs, no extras (the tests override what they check).
    fn container(id: &str, arg0: &str) -> ContainerSpec {
        ContainerSpec {
            id: id.into(),
            rootfs: "/r".into(),
            process: ProcessSpec {
                args: vec![arg0.into()],
                ..Default::default()
            },
            network: Network::None,
            mounts: vec![],
            hostname: None,
            readonly_rootfs: false,
            extra: Default::default(),
        }
    }

    #[test]
    fn env_defaults_follow_docker() {
        let mut p = ProcessSpec {
            env: vec!["FOO=bar".into(), "HOSTNAME=mine".into()],
            ..Default::default()
        };
        p.user.home = "/home/app".into();
        let env = process_env(&p, "abc");
        assert_eq!(
            env,
            vec![
                format!("PATH={DEFAULT_PATH}"),
                "HOSTNAME=mine".into(),
                "FOO=bar".into(),
                "HOME=/home/app".into()
            ]
        );
        p.env = vec!["PATH=/bin".into(), "HOME=/x".into()];
        p.tty = true;
        let env = process_env(&p, "abc");
        assert_eq!(
            env,
            vec!["PATH=/bin", "HOSTNAME=abc", "TERM=xterm", "HOME=/x"]
        );
    }

    #[test]
    fn spec_has_docker_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let files = InjectedFiles::write(dir.path(), "h", None, &[]).unwrap();
        let c = ContainerSpec {
            mounts: vec![MountSpec::Tmpfs {
                destination: "/t".into(),
                size: Some(1024),
                mode: Some(0o1777),
            }],
            ..container("strata-0123456789abcdef", "sh")
        };
        assert_eq!(c.effective_hostname(), "0123456789ab");
        let spec = build_oci_spec(&c, Path::new("/r"), &files, Some("/strata/x"), 42).unwrap();
        let json = serde_json::to_value(&spec).unwrap();
        let caps = &json["process"]["capabilities"];
        assert_eq!(caps["effective"].as_array().unwrap().len(), 14);
        assert_eq!(caps["ambient"], serde_json::json!([]));
        assert_eq!(caps["inheritable"], serde_json::json!([]));
        assert_eq!(json["process"]["noNewPrivileges"], true);
        assert_eq!(json["process"]["rlimits"][0]["hard"], 42);
        let ns: Vec<_> = json["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(ns, ["mount", "pid", "ipc", "uts", "network"]);
        let last = json["mounts"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(
            last["options"],
            serde_json::json!(["nosuid", "nodev", "size=1024", "mode=1777"])
        );
        assert_eq!(json["hostname"], "0123456789ab");
        assert_eq!(json["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ALLOW");
        // Build steps and `strata run` name their containers build-/run-;
        // the hostname is still the bare short id, as Docker's is.
        for id in ["build-fedcba9876543210", "run-fedcba9876543210"] {
            let c = ContainerSpec {
                id: id.into(),
                ..c.clone()
            };
            assert_eq!(c.effective_hostname(), "fedcba987654");
        }
    }

    #[test]
    fn extras_set_hosts_shm_and_rlimits() {
        let dir = tempfile::tempdir().unwrap();
        let hosts = [("db.local".to_string(), "10.1.2.3".to_string())];
        let files = InjectedFiles::write(dir.path(), "h", None, &hosts).unwrap();
        let text = std::fs::read_to_string(&files.hosts).unwrap();
        assert!(text.ends_with("10.1.2.3\tdb.local\n"), "{text}");
        let c = ContainerSpec {
            extra: ContainerExtras {
                extra_hosts: hosts.to_vec(),
                shm_size: Some(128 << 20),
                ulimits: vec![
                    Ulimit::parse("nofile=100:200").unwrap(),
                    Ulimit::parse("nproc=50").unwrap(),
                ],
                ..Default::default()
            },
            ..container("strata-0123456789abcdef", "sh")
        };
        let spec = build_oci_spec(&c, Path::new("/r"), &files, None, 42).unwrap();
        let json = serde_json::to_value(&spec).unwrap();
        let rl = json["process"]["rlimits"].as_array().unwrap();
        assert_eq!(rl.len(), 2, "{rl:?}");
        assert!(rl
            .iter()
            .any(|r| r["type"] == "RLIMIT_NOFILE" && r["soft"] == 100 && r["hard"] == 200));
        assert!(rl
            .iter()
            .any(|r| r["type"] == "RLIMIT_NPROC" && r["soft"] == 50));
        let shm = json["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/dev/shm")
            .unwrap();
        assert!(shm["options"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o == &format!("size={}", 128u64 << 20)));
        assert!(Ulimit::parse("bogus=1").is_err());
        assert!(Ulimit::parse("nofile=2:1").is_err());
        assert_eq!(Ulimit::parse("core=-1").unwrap().hard, u64::MAX);
    }

    #[test]
    fn host_network_never_gets_net_raw_and_join_uses_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let files =
            InjectedFiles::write(dir.path(), "h", Some("nameserver 169.254.1.1\n"), &[]).unwrap();
        assert_eq!(
            std::fs::read_to_string(&files.resolv_conf).unwrap(),
            "nameserver 169.254.1.1\n"
        );
        let mut c = ContainerSpec {
            network: Network::Host,
            ..container("build-0123456789abcdef", "sh")
        };
        let caps_of = |c: &ContainerSpec| {
            let spec = build_oci_spec(c, Path::new("/r"), &files, None, 42).unwrap();
            let json = serde_json::to_value(&spec).unwrap();
            let names = |set: &str| -> Vec<String> {
                json["process"]["capabilities"][set]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_string())
                    .collect()
            };
            (names("bounding"), names("effective"), json)
        };
        let (bounding, effective, _) = caps_of(&c);
        assert!(!bounding.iter().any(|c| c == "CAP_NET_RAW"), "{bounding:?}");
        assert!(!effective.iter().any(|c| c == "CAP_NET_RAW"));
        assert_eq!(bounding.len(), DEFAULT_CAPABILITIES.len() - 1);
        c.network = Network::Join(crate::NetnsRef {
            path: "/run/strata/netns/x".into(),
            resolv_conf: None,
        });
        let (bounding, _, json) = caps_of(&c);
        assert!(bounding.iter().any(|c| c == "CAP_NET_RAW"));
        let net = json["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["type"] == "network")
            .cloned()
            .expect("a network namespace");
        assert_eq!(net["path"], "/run/strata/netns/x");
    }

    #[test]
    fn init_layer_has_placeholders() {
        let dir = tempfile::tempdir().unwrap();
        write_init_layer(dir.path()).unwrap();
        write_init_layer(dir.path()).unwrap();
        for p in INJECTED_PATHS {
            let m = std::fs::metadata(dir.path().join(&p[1..])).unwrap();
            assert!(m.is_file() && m.len() == 0);
        }
        assert!(dir.path().join("dev/shm").is_dir());
    }

    #[test]
    fn cap_add_and_drop_follow_dockers_rules() {
        let caps = effective_capabilities(&["net_admin".into()], &["CAP_CHOWN".into()]).unwrap();
        assert!(caps.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!caps.contains(&"CAP_CHOWN".to_string()));
        assert_eq!(caps.len(), DEFAULT_CAPABILITIES.len());
        let caps = effective_capabilities(&["KILL".into()], &["ALL".into()]).unwrap();
        assert_eq!(caps, ["CAP_KILL"]);
        let all = effective_capabilities(&["ALL".into()], &[]).unwrap();
        assert!(all.contains(&"CAP_SYS_ADMIN".to_string()));
        assert!(effective_capabilities(&["NOPE".into()], &[]).is_err());
    }

    #[test]
    fn limits_become_cgroup_resources_and_seccomp_can_be_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let files = InjectedFiles::write(dir.path(), "h", None, &[]).unwrap();
        let c = ContainerSpec {
            readonly_rootfs: true,
            extra: ContainerExtras {
                memory: Some(32 << 20),
                nano_cpus: Some(500_000_000),
                pids_limit: Some(20),
                seccomp_unconfined: true,
                ..Default::default()
            },
            ..container("strata-0123456789abcdef", "true")
        };
        let spec = build_oci_spec(&c, Path::new("/r"), &files, Some("/strata/x"), 42).unwrap();
        let json = serde_json::to_value(&spec).unwrap();
        let r = &json["linux"]["resources"];
        assert_eq!(r["memory"]["limit"], 32 << 20);
        assert_eq!(r["memory"]["swap"], 32 << 20);
        assert_eq!(r["cpu"]["quota"], 50_000);
        assert_eq!(r["cpu"]["period"], 100_000);
        assert_eq!(r["pids"]["limit"], 20);
        assert!(json["linux"]["seccomp"].is_null());
        assert_eq!(json["root"]["readonly"], true);
    }
}
