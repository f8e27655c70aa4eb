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

/// Every capability name the kernel knows (for `--cap-add ALL`).
const ALL_CAPABILITIES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The capability set after `--cap-add`/`--cap-drop` (Docker's order:
/// drops apply to the defaults, adds after them; `ALL` in either).
pub fn effective_capabilities(add: &[String], drop: &[String]) -> Result<Vec<String>, Error> {
    let norm = |c: &String| -> Result<String, Error> {
        let n = c.trim().to_ascii_uppercase();
        let n = n.trim_start_matches("CAP_").to_string();
        if n == "ALL" || ALL_CAPABILITIES.contains(&n.as_str()) {
            Ok(n)
        } else {
            Err(Error::InvalidSpec(format!("unknown capability: {c:?}")))
        }
    };
    let add: Vec<String> = add.iter().map(norm).collect::<Result<_, _>>()?;
    let drop: Vec<String> = drop.iter().map(norm).collect::<Result<_, _>>()?;
    let mut caps: Vec<String> = if drop.iter().any(|d| d == "ALL") {
        Vec::new()
    } else {
        DEFAULT_CAPABILITIES
            .iter()
            .map(|c| c.trim_start_matches("CAP_").to_string())
            .filter(|c| !drop.contains(c))
            .collect()
    };
    if add.iter().any(|a| a == "ALL") {
        caps = ALL_CAPABILITIES.iter().map(|c| c.to_string()).collect();
    } else {
        for a in add {
            if !caps.contains(&a) {
                caps.push(a);
            }
        }
    }
    Ok(caps.into_iter().map(|c| format!("CAP_{c}")).collect())
}

/// One rlimit (`nofile`, `nproc`, `core`, ... as Docker's `--ulimit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ulimit {
    /// The rlimit's name, lower-case (`nofile`).
    pub name: String,
    /// The soft limit (`u64::MAX` = unlimited).
    pub soft: u64,
    /// The hard limit (`u64::MAX` = unlimited).
    pub hard: u64,
}

/// A `--ulimit` value that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UlimitError {
    /// Not `NAME=SOFT[:HARD]` with numbers.
    #[error("invalid ulimit argument: {0}")]
    Argument(String),
    /// A name that is no rlimit.
    #[error("invalid ulimit type: {0}")]
    Type(String),
    /// A soft limit above the hard one.
    #[error("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")]
    SoftAboveHard {
        /// The soft limit.
        soft: u64,
        /// The hard limit.
        hard: u64,
    },
}

impl Ulimit {
    /// Parses Docker's `NAME=SOFT[:HARD]` (`-1` = unlimited).
    pub fn parse(s: &str) -> Result<Ulimit, UlimitError> {
        let (name, v) = s
            .split_once('=')
            .ok_or_else(|| UlimitError::Argument(s.to_string()))?;
        let name = name.trim().to_ascii_lowercase();
        if rlimit_type(&name).is_none() {
            return Err(UlimitError::Type(name));
        }
        let num = |t: &str| -> Result<u64, UlimitError> {
            if t == "-1" {
                return Ok(u64::MAX);
            }
            t.parse::<u64>()
                .map_err(|_| UlimitError::Argument(s.to_string()))
        };
        let (soft, hard) = match v.split_once(':') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(v)?, num(v)?),
        };
        if soft > hard {
            return Err(UlimitError::SoftAboveHard { soft, hard });
        }
        Ok(Ulimit { name, soft, hard })
    }
}

fn rlimit_type(name: &str) -> Option<PosixRlimitType> {
    format!("RLIMIT_{}", name.to_ascii_uppercase()).parse().ok()
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

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount, Error> {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(Error::spec)
}

fn bind(source: &Path, dest: &str, readonly: bool) -> Result<Mount, Error> {
    let mut opts = vec!["rbind", "rprivate"];
    if readonly {
        opts.push("ro");
    }
    mount(dest, "bind", &source.to_string_lossy(), &opts)
}

/// Docker's default mounts, in Docker's order.
fn default_mounts() -> Result<Vec<Mount>, Error> {
    Ok(vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        )?,
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["ro", "nosuid", "noexec", "nodev", "relatime"],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
    ])
}

fn check_abs(what: &str, path: &str) -> Result<(), Error> {
    if !path.starts_with('/') {
        return Err(Error::InvalidSpec(format!(
            "{what} {path:?} must be an absolute path"
        )));
    }
    Ok(())
}

/// Rootless (strata as "root" of a user namespace): what `runc spec
/// --rootless` changes. devpts without `gid=5` (not mapped), the host's
/// `/sys` bind-mounted read-only (a sysfs mount needs a network namespace
/// owned by our user namespace), and no cgroup mount.
fn rootless_mounts(mounts: &mut Vec<Mount>) -> Result<(), Error> {
    mounts.retain(|m| m.destination() != Path::new("/sys/fs/cgroup"));
    for m in mounts.iter_mut() {
        if m.destination() == Path::new("/dev/pts") {
            m.set_options(Some(
                [
                    "nosuid",
                    "noexec",
                    "newinstance",
                    "ptmxmode=0666",
                    "mode=0620",
                ]
                .map(String::from)
                .to_vec(),
            ));
        }
    }
    let i = mounts
        .iter()
        .position(|m| m.destination() == Path::new("/sys"))
        .expect("default mounts have /sys");
    mounts[i] = MountBuilder::default()
        .destination("/sys")
        .typ("none")
        .source("/sys")
        .options(
            ["rbind", "nosuid", "noexec", "nodev", "ro"]
                .map(String::from)
                .to_vec(),
        )
        .build()
        .map_err(Error::spec)?;
    Ok(())
}

/// Builds the OCI runtime spec for `c`.
///
/// `rootfs` is the absolute rootfs path, `cgroups_path` the runc cgroups path
/// (`None`: runc's default, the container id), `nofile` the RLIMIT_NOFILE.
pub(crate) fn build_oci_spec(
    c: &ContainerSpec,
    rootfs: &Path,
    files: &InjectedFiles,
    cgroups_path: Option<&str>,
    nofile: u64,
) -> Result<Spec, Error> {
    let p = &c.process;
    if p.args.is_empty() {
        return Err(Error::InvalidSpec("no command given (empty args)".into()));
    }
    check_abs("working directory", &p.cwd)?;
    let hostname = c.effective_hostname();

    // Never CAP_NET_RAW in the host's network namespace: AF_PACKET would
    // see every packet of the host.
    let wanted = effective_capabilities(&c.extra.cap_add, &c.extra.cap_drop)?;
    let caps: HashSet<Capability> = wanted
        .iter()
        .filter(|cap| !(cap.as_str() == "CAP_NET_RAW" && c.network == Network::Host))
        .map(|c| {
            c.trim_start_matches("CAP_")
                .parse::<Capability>()
                .map_err(|e| Error::spec(format!("{c}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .inheritable(HashSet::<Capability>::new())
        .ambient(HashSet::<Capability>::new())
        .build()
        .map_err(Error::spec)?;
    let user = UserBuilder::default()
        .uid(p.user.uid)
        .gid(p.user.gid)
        .additional_gids(p.user.additional_gids.clone())
        .build()
        .map_err(Error::spec)?;
    let mut rlimits = vec![PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitNofile)
        .hard(nofile)
        .soft(nofile)
        .build()
        .map_err(Error::spec)?];
    for u in &c.extra.ulimits {
        let typ = rlimit_type(&u.name)
            .ok_or_else(|| Error::InvalidSpec(format!("invalid ulimit type: {}", u.name)))?;
        rlimits.retain(|r| r.typ() != typ);
        rlimits.push(
            PosixRlimitBuilder::default()
                .typ(typ)
                .hard(u.hard)
                .soft(u.soft)
                .build()
                .map_err(Error::spec)?,
        );
    }
    let process = ProcessBuilder::default()
        .terminal(p.tty)
        .user(user)
        .args(p.args.clone())
        .env(process_env(p, &hostname))
        .cwd(&p.cwd)
        .capabilities(capabilities)
        .rlimits(rlimits)
        .no_new_privileges(true)
        .build()
        .map_err(Error::spec)?;

    let rootless = crate::runc::is_rootless();
    let mut mounts = default_mounts()?;
    if let Some(size) = c.extra.shm_size {
        if let Some(m) = mounts
            .iter_mut()
            .find(|m| m.destination() == Path::new("/dev/shm"))
        {
            m.set_options(Some(
                ["nosuid", "noexec", "nodev", "mode=1777"]
                    .map(String::from)
                    .into_iter()
                    .chain([format!("size={size}")])
                    .collect(),
            ));
        }
    }
    if rootless {
        rootless_mounts(&mut mounts)?;
    }
    mounts.push(bind(&files.resolv_conf, "/etc/resolv.conf", true)?);
    mounts.push(bind(&files.hostname, "/etc/hostname", true)?);
    mounts.push(bind(&files.hosts, "/etc/hosts", true)?);
    for m in &c.mounts {
        mounts.push(match m {
            MountSpec::Bind(b) => {
                check_abs("bind mount destination", &b.destination)?;
                if !b.source.is_absolute() {
                    return Err(Error::InvalidSpec(format!(
                        "bind mount source {} must be an absolute path",
                        b.source.display()
                    )));
                }
                bind(&b.source, &b.destination, b.readonly)?
            }
            MountSpec::Tmpfs {
                destination,
                size,
                mode,
            } => {
                check_abs("tmpfs destination", destination)?;
                let mut opts = vec!["nosuid".to_string(), "nodev".to_string()];
                if let Some(size) = size {
                    opts.push(format!("size={size}"));
                }
                if let Some(mode) = mode {
                    opts.push(format!("mode={mode:o}"));
                }
                let refs: Vec<&str> = opts.iter().map(String::as_str).collect();
                mount(destination, "tmpfs", "tmpfs", &refs)?
            }
        });
    }

    let mut ns = vec![
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
    ];
    if c.network == Network::None {
        ns.push(LinuxNamespaceType::Network);
    }
    let mut namespaces = ns
        .into_iter()
        .map(|t| LinuxNamespaceBuilder::default().typ(t).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(Error::spec)?;
    if let Network::Join(n) = &c.network {
        namespaces.push(
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::Network)
                .path(n.path.clone())
                .build()
                .map_err(Error::spec)?,
        );
    }
    // Deny all devices; runc appends its allow-list for the default devices
    // (null, zero, full, random, urandom, tty, ptmx, pts) and creates them.
    let mut resources = LinuxResourcesBuilder::default();
    // Rootless: no device cgroup (runc cannot set one); devices are bind
    // mounts of the host's /dev/null etc., and mknod is impossible anyway.
    if !rootless {
        resources = resources.devices(vec![LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .map_err(Error::spec)?]);
    }
    if let Some(m) = c.extra.memory {
        resources = resources.memory(
            oci_spec::runtime::LinuxMemoryBuilder::default()
                .limit(m)
                .swap(m)
                .build()
                .map_err(Error::spec)?,
        );
    }
    if let Some(n) = c.extra.nano_cpus {
        let period: u64 = 100_000;
        resources = resources.cpu(
            oci_spec::runtime::LinuxCpuBuilder::default()
                .period(period)
                .quota(n * period as i64 / 1_000_000_000)
                .build()
                .map_err(Error::spec)?,
        );
    }
    if let Some(p) = c.extra.pids_limit {
        resources = resources.pids(
            oci_spec::runtime::LinuxPidsBuilder::default()
                .limit(p)
                .build()
                .map_err(Error::spec)?,
        );
    }
    let resources = resources.build().map_err(Error::spec)?;
    let mut linux = LinuxBuilder::default().namespaces(namespaces);
    // Rootless, a cgroup path means a delegated cgroup for the limits
    // (crate::cgroups; without one, limits are refused before this).
    if !rootless || cgroups_path.is_some() {
        linux = linux.resources(resources);
    }
    // The same syscall filter in every mode: seccomp needs no privilege
    // (no-new-privileges is set), so rootless containers get it too.
    if !c.extra.seccomp_unconfined {
        linux = linux.seccomp(crate::seccomp::profile()?);
    }
    let (masked, readonly): (&[&str], &[&str]) = if c.extra.systempaths_unconfined {
        (&[], &[])
    } else {
        (MASKED_PATHS, READONLY_PATHS)
    };
    let mut linux = linux
        .masked_paths(masked.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .readonly_paths(readonly.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    if let Some(cg) = cgroups_path {
        linux = linux.cgroups_path(PathBuf::from(cg));
    }
    let linux = linux.build().map_err(Error::spec)?;

    let root = RootBuilder::default()
        .path(rootfs)
        .readonly(c.readonly_rootfs)
        .build()
        .map_err(Error::spec)?;
    SpecBuilder::default()
        .version("1.0.2")
        .root(root)
        .process(process)
        .hostname(hostname)
        .mounts(mounts)
        .linux(linux)
        .build()
        .map_err(Error::spec)
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
