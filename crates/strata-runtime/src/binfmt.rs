//! Emulation of foreign CPU architectures through binfmt_misc and
//! qemu-user-static: whether the kernel can run a platform's programs
//! ([`check_can_run`]), the registrations it has ([`list`]), and
//! registering Debian's qemu entries with the `F` flag ([`install`]) that
//! runc containers need (the interpreter is opened at registration, so it
//! works inside the container's mount namespace; without `F` the exec
//! fails with a misleading "no such file or directory").

use std::fs;
use std::path::{Path, PathBuf};

/// Where binfmt_misc is mounted.
pub const BINFMT_MISC: &str = "/proc/sys/fs/binfmt_misc";
/// Where Debian's qemu-user-static puts its registration lines.
pub const BINFMT_D: &str = "/usr/lib/binfmt.d";

/// One binfmt_misc registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The entry's name (`qemu-aarch64`).
    pub name: String,
    /// Whether the entry is enabled.
    pub enabled: bool,
    /// The interpreter's path.
    pub interpreter: String,
    /// The flags (`F`: the interpreter is opened at registration).
    pub flags: String,
}

/// The qemu name of an OCI architecture (`arm64` → `aarch64`), `None`
/// when qemu has none.
pub fn qemu_arch(arch: &str) -> Option<&'static str> {
    Some(match arch {
        "amd64" => "x86_64",
        "386" => "i386",
        "arm64" => "aarch64",
        "arm" => "arm",
        "ppc64le" => "ppc64le",
        "ppc64" => "ppc64",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "mips64le" => "mips64el",
        "mips64" => "mips64",
        "mipsle" => "mipsel",
        "mips" => "mips",
        "loong64" => "loongarch64",
        _ => return None,
    })
}

/// The OCI architecture of this process and the ones it runs natively.
fn native(arch: &str) -> bool {
    let host = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        o => o,
    };
    arch == host || (host == "amd64" && arch == "386") || (host == "arm64" && arch == "arm")
}

/// The registrations in `dir` (a binfmt_misc mount); empty when it is not
/// mounted or not readable.
pub fn list_in(dir: &Path) -> Vec<Entry> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "register" || name == "status" {
            continue;
        }
        let Ok(text) = fs::read_to_string(e.path()) else {
            continue;
        };
        let mut entry = Entry {
            name,
            enabled: false,
            interpreter: String::new(),
            flags: String::new(),
        };
        for line in text.lines() {
            if line == "enabled" {
                entry.enabled = true;
            } else if let Some(i) = line.strip_prefix("interpreter ") {
                entry.interpreter = i.to_string();
            } else if let Some(f) = line.strip_prefix("flags: ") {
                entry.flags = f.to_string();
            } else if let Some(f) = line.strip_prefix("flags:") {
                entry.flags = f.trim().to_string();
            }
        }
        out.push(entry);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The host's registrations ([`BINFMT_MISC`]).
pub fn list() -> Vec<Entry> {
    list_in(Path::new(BINFMT_MISC))
}

/// Whether binfmt_misc is mounted at [`BINFMT_MISC`].
pub fn mounted() -> bool {
    Path::new(BINFMT_MISC).join("register").exists()
}

/// Whether `entry` emulates the qemu architecture `q`.
fn emulates(entry: &Entry, q: &str) -> bool {
    let base = Path::new(&entry.interpreter)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let named = |s: &str| {
        s == format!("qemu-{q}")
            || s.starts_with(&format!("qemu-{q}-"))
            || s.starts_with(&format!("{q}-binfmt"))
    };
    named(&entry.name) || named(&base)
}

/// Why programs of a platform cannot run here, or why registering an
/// emulator failed. Causes are printed in the message, not returned as
/// `source()` (callers print the chain and must see them once).
#[derive(Debug, thiserror::Error)]
pub enum BinfmtError {
    /// A platform whose OS is not linux.
    #[error("cannot run programs for platform {platform}: only linux containers run here")]
    NotLinux {
        /// `os/arch[/variant]`.
        platform: String,
    },
    /// An architecture no qemu emulator is known for.
    #[error(
        "cannot run programs for platform {platform} on this {} host: no emulator is known for it",
        std::env::consts::ARCH
    )]
    NoEmulator {
        /// `os/arch[/variant]`.
        platform: String,
    },
    /// No usable binfmt_misc registration for the platform's emulator.
    #[error(
        "cannot run programs for platform {platform} on this {} host: {why}; {}",
        std::env::consts::ARCH,
        fix_hint()
    )]
    NotRegistered {
        /// `os/arch[/variant]`.
        platform: String,
        /// What is missing (mount, entry, `F` flag).
        why: String,
    },
    /// The platform cannot run, and registering its emulator in strata's
    /// own user namespace failed too.
    #[error("{first} (registering qemu-{qemu} in strata's own user namespace failed too: {cause}; that needs kernel >= 6.7)")]
    UsernsRegister {
        /// Why the platform cannot run.
        first: Box<BinfmtError>,
        /// The qemu architecture name.
        qemu: String,
        /// Why the registration failed.
        cause: Box<BinfmtError>,
    },
    /// The directory of binfmt.d files cannot be read.
    #[error("{}: {cause}; {}", dir.display(), fix_hint())]
    NoConfDir {
        /// The directory.
        dir: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// No `qemu-*.conf` in the binfmt.d directory.
    #[error("no qemu-*.conf in {}: {}", dir.display(), fix_hint())]
    NoConfs {
        /// The directory.
        dir: PathBuf,
    },
    /// binfmt_misc could not be mounted.
    #[error("mounting binfmt_misc at {}: {cause} (run as root)", dir.display())]
    Mount {
        /// The mount point.
        dir: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// Reading a binfmt.d file or writing a registration failed.
    #[error("{context}: {cause}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        cause: std::io::Error,
    },
}

impl BinfmtError {
    fn io(context: impl std::fmt::Display, cause: std::io::Error) -> BinfmtError {
        BinfmtError::Io {
            context: context.to_string(),
            cause,
        }
    }
}

/// How to make a platform runnable, for error messages.
pub fn fix_hint() -> &'static str {
    "install the emulators (apt-get install qemu-user-static) and register them with the F flag (strata binfmt install, as root)"
}

/// Checks that a RUN for `os/arch[/variant]` can execute here: natively, or
/// through an enabled binfmt_misc entry with the `F` flag for its qemu.
/// The error names the platform and how to fix it.
pub fn check_can_run(os: &str, arch: &str, variant: Option<&str>) -> Result<(), BinfmtError> {
    check_can_run_in(Path::new(BINFMT_MISC), os, arch, variant)
}

/// [`check_can_run`] against the registrations in `dir`.
pub fn check_can_run_in(
    dir: &Path,
    os: &str,
    arch: &str,
    variant: Option<&str>,
) -> Result<(), BinfmtError> {
    let platform = match variant {
        Some(v) => format!("{os}/{arch}/{v}"),
        None => format!("{os}/{arch}"),
    };
    if arch.is_empty() {
        return Ok(());
    }
    if os != "linux" && !os.is_empty() {
        return Err(BinfmtError::NotLinux { platform });
    }
    if native(arch) {
        return Ok(());
    }
    let Some(q) = qemu_arch(arch) else {
        return Err(BinfmtError::NoEmulator { platform });
    };
    let entries = list_in(dir);
    let found: Vec<&Entry> = entries.iter().filter(|e| emulates(e, q)).collect();
    if found.iter().any(|e| e.enabled && e.flags.contains('F')) {
        return Ok(());
    }
    let why = if !dir.join("register").exists() {
        format!("binfmt_misc is not mounted at {}", dir.display())
    } else if let Some(e) = found.iter().find(|e| e.enabled) {
        format!(
            "the binfmt_misc entry {} has flags {:?}, without F (runc containers cannot see its interpreter)",
            e.name, e.flags
        )
    } else if !found.is_empty() {
        format!("the binfmt_misc entry {} is disabled", found[0].name)
    } else {
        format!("no binfmt_misc entry for qemu-{q} is registered")
    };
    Err(BinfmtError::NotRegistered { platform, why })
}

/// [`check_can_run`]; when this process runs rootless in a user namespace
/// of its own and the platform cannot run, first registers the platform's
/// qemu (Debian's `qemu-ARCH.conf`, with `F`) in a binfmt_misc instance of
/// that namespace (kernel >= 6.7), which the host never sees.
pub fn ensure_can_run(os: &str, arch: &str, variant: Option<&str>) -> Result<(), BinfmtError> {
    let first = check_can_run(os, arch, variant);
    let Err(why) = first else {
        return Ok(());
    };
    if !crate::is_rootless() || os != "linux" {
        return Err(why);
    }
    let Some(q) = qemu_arch(arch) else {
        return Err(why);
    };
    match register_in_own_userns(q) {
        Ok(()) => check_can_run(os, arch, variant),
        Err(e) => Err(BinfmtError::UsernsRegister {
            first: Box::new(why),
            qemu: q.to_string(),
            cause: Box::new(e),
        }),
    }
}

/// Mounts a binfmt_misc instance of this user namespace (once) and
/// registers `qemu-Q` there with the `F` flag.
fn register_in_own_userns(q: &str) -> Result<(), BinfmtError> {
    // The mount is tried once; its errno is kept to report it again.
    static MOUNTED: std::sync::OnceLock<Result<(), rustix::io::Errno>> = std::sync::OnceLock::new();
    static REGISTER: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _g = REGISTER.lock().unwrap_or_else(|p| p.into_inner());
    let dir = Path::new(BINFMT_MISC);
    MOUNTED
        .get_or_init(|| mount_binfmt_misc_errno(dir))
        .map_err(|e| mount_error(dir, e))?;
    let conf = Path::new(BINFMT_D).join(format!("qemu-{q}.conf"));
    let text = fs::read_to_string(&conf).map_err(|e| BinfmtError::io(conf.display(), e))?;
    for line in text.lines() {
        let Some((name, reg)) = with_fix_binary(line) else {
            continue;
        };
        if dir.join(&name).exists() {
            continue;
        }
        fs::write(dir.join("register"), &reg)
            .map_err(|e| BinfmtError::io(format_args!("registering {name}"), e))?;
    }
    Ok(())
}

/// One registration line of a binfmt.d file (`:name:type:offset:magic:
/// mask:interpreter:flags`) with `F` added to its flags; `None` for
/// comments and blank lines.
pub fn with_fix_binary(line: &str) -> Option<(String, String)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
        return None;
    }
    let sep = line.chars().next()?;
    let fields: Vec<&str> = line[1..].split(sep).collect();
    if fields.len() < 7 {
        return None;
    }
    let mut flags = fields[6].to_string();
    if !flags.contains('F') {
        flags.push('F');
    }
    let mut out = String::new();
    for f in &fields[..6] {
        out.push(sep);
        out.push_str(f);
    }
    out.push(sep);
    out.push_str(&flags);
    Some((fields[0].to_string(), out))
}

/// What [`install`] did for one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installed {
    /// Newly registered.
    Registered(String),
    /// Was registered without `F` (or disabled): replaced.
    Replaced(String),
    /// Already registered with `F`: left alone.
    Present(String),
}

/// Registers the `qemu-*.conf` entries of `conf_dir` (Debian's
/// [`BINFMT_D`]) in the binfmt_misc at `dir`, with the `F` flag, mounting
/// binfmt_misc there first when it is not. Entries whose interpreter is
/// missing are skipped. Needs root (or a user namespace with its own
/// binfmt_misc, kernel >= 6.7).
pub fn install(dir: &Path, conf_dir: &Path) -> Result<Vec<Installed>, BinfmtError> {
    if !dir.join("register").exists() {
        mount_binfmt_misc(dir)?;
    }
    let mut confs: Vec<PathBuf> = fs::read_dir(conf_dir)
        .map_err(|cause| BinfmtError::NoConfDir {
            dir: conf_dir.to_path_buf(),
            cause,
        })?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .map(|n| {
                    let n = n.to_string_lossy();
                    n.starts_with("qemu-") && n.ends_with(".conf")
                })
                .unwrap_or(false)
        })
        .collect();
    confs.sort();
    if confs.is_empty() {
        return Err(BinfmtError::NoConfs {
            dir: conf_dir.to_path_buf(),
        });
    }
    let mut out = Vec::new();
    for conf in confs {
        let text = fs::read_to_string(&conf).map_err(|e| BinfmtError::io(conf.display(), e))?;
        for line in text.lines() {
            let Some((name, reg)) = with_fix_binary(line) else {
                continue;
            };
            let interp = reg.rsplit(':').nth(1).unwrap_or("");
            if !Path::new(interp).exists() {
                continue;
            }
            let existing = dir.join(&name);
            let mut replaced = false;
            if existing.exists() {
                let e = list_in(dir).into_iter().find(|e| e.name == name);
                if e.as_ref()
                    .is_some_and(|e| e.enabled && e.flags.contains('F'))
                {
                    out.push(Installed::Present(name));
                    continue;
                }
                fs::write(&existing, "-1").map_err(|e| {
                    BinfmtError::io(format_args!("unregistering {}", existing.display()), e)
                })?;
                replaced = true;
            }
            fs::write(dir.join("register"), &reg).map_err(|e| {
                BinfmtError::io(format_args!("registering {name} ({})", conf.display()), e)
            })?;
            out.push(if replaced {
                Installed::Replaced(name)
            } else {
                Installed::Registered(name)
            });
        }
    }
    Ok(out)
}

/// Unregisters one entry (tests use it to simulate a missing emulator).
pub fn remove(dir: &Path, name: &str) -> Result<(), BinfmtError> {
    fs::write(dir.join(name), "-1")
        .map_err(|e| BinfmtError::io(format_args!("unregistering {name}"), e))
}

fn mount_binfmt_misc(dir: &Path) -> Result<(), BinfmtError> {
    mount_binfmt_misc_errno(dir).map_err(|e| mount_error(dir, e))
}

fn mount_binfmt_misc_errno(dir: &Path) -> Result<(), rustix::io::Errno> {
    rustix::mount::mount(
        "binfmt_misc",
        dir,
        "binfmt_misc",
        rustix::mount::MountFlags::empty(),
        None,
    )
}

fn mount_error(dir: &Path, errno: rustix::io::Errno) -> BinfmtError {
    BinfmtError::Mount {
        dir: dir.to_path_buf(),
        cause: errno.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_lines_get_the_f_flag() {
        let l = r":qemu-aarch64:M::\x7f\x45:\xff\xff:/usr/libexec/qemu-binfmt/aarch64-binfmt-P:OPF";
        let (n, r) = with_fix_binary(l).unwrap();
        assert_eq!(n, "qemu-aarch64");
        assert_eq!(r, l);
        let (_, r) =
            with_fix_binary(":qemu-s390x:M::\\x7f:\\xff:/usr/bin/qemu-s390x-static:PO").unwrap();
        assert!(r.ends_with(":POF"), "{r}");
        assert!(with_fix_binary("# comment").is_none());
        assert!(with_fix_binary("").is_none());
    }

    #[test]
    fn a_foreign_platform_needs_an_enabled_f_entry() {
        let d = tempfile::tempdir().unwrap();
        // Not mounted.
        let e = check_can_run_in(d.path(), "linux", "s390x", None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("linux/s390x")
                && e.contains("not mounted")
                && e.contains("strata binfmt install"),
            "{e}"
        );
        fs::write(d.path().join("register"), "").unwrap();
        let e = check_can_run_in(d.path(), "linux", "s390x", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no binfmt_misc entry for qemu-s390x"), "{e}");
        fs::write(
            d.path().join("qemu-s390x"),
            "enabled\ninterpreter /usr/libexec/qemu-binfmt/s390x-binfmt-P\nflags: PO\noffset 0\n",
        )
        .unwrap();
        let e = check_can_run_in(d.path(), "linux", "s390x", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("without F"), "{e}");
        fs::write(
            d.path().join("qemu-s390x"),
            "enabled\ninterpreter /usr/libexec/qemu-binfmt/s390x-binfmt-P\nflags: POF\noffset 0\n",
        )
        .unwrap();
        check_can_run_in(d.path(), "linux", "s390x", None).unwrap();
        assert!(check_can_run_in(d.path(), "windows", "amd64", None).is_err());
    }
}
