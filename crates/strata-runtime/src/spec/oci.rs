//! The OCI runtime `config.json` of a [`ContainerSpec`]: Docker's default
//! mounts, the rootless variants, namespaces, capabilities, rlimits,
//! cgroup resources and the seccomp profile.

use super::ulimit::rlimit_type;
use super::*;

pub(super) fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount, Error> {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(Error::spec)
}

pub(super) fn bind(source: &Path, dest: &str, readonly: bool) -> Result<Mount, Error> {
    let mut opts = vec!["rbind", "rprivate"];
    if readonly {
        opts.push("ro");
    }
    mount(dest, "bind", &source.to_string_lossy(), &opts)
}

/// Docker's default mounts, in Docker's order.
pub(super) fn default_mounts() -> Result<Vec<Mount>, Error> {
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

pub(super) fn check_abs(what: &str, path: &str) -> Result<(), Error> {
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
pub(super) fn rootless_mounts(mounts: &mut Vec<Mount>) -> Result<(), Error> {
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
