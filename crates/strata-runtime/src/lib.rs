//! strata-runtime: runs one process in a rootfs through an OCI runtime spec
//! handed to `runc`.
//!
//! It gets a rootfs path and a process description; it never knows about
//! images or stores.
//!
//! It owns: turning a [`ContainerSpec`] into a runc bundle with Docker's
//! defaults ([`spec`]), resolving a `USER` string against the rootfs'
//! `/etc/passwd` and `/etc/group` ([`resolve_user`]), running runc in the
//! foreground with stdio inherited, piped to callbacks or discarded
//! ([`StdioConfig`]), forwarding SIGINT/SIGTERM to the container
//! ([`signals`]), reporting the exit status the way Docker does, always
//! cleaning up (runc state, cgroups, bundle dir), and emulation of foreign
//! CPU architectures ([`binfmt`]: whether a platform can run, registering
//! qemu-user-static with binfmt_misc only when asked (`strata binfmt
//! install`) or, rootless, in strata's own user namespace). It must never write into
//! the rootfs itself (runc may create mount points there, see
//! [`INJECTED_PATHS`] and [`write_init_layer`]), never read files of the
//! rootfs by following links out of it, never touch Docker's runc state, and
//! never parse image references or open the store.
//!
//! Behaviour callers rely on:
//! - **Placeholders.** runc creates missing mount points (`/proc`, `/dev`,
//!   `/sys`, and empty files for [`INJECTED_PATHS`]) in the rootfs. Mount an
//!   init layer from [`write_init_layer`] just below the overlay upper dir,
//!   or have the differ skip those entries.
//! - **Exit codes.** `Ok(ExitStatus)` whenever the process ran: its code, or
//!   `128 + N` when killed by signal N. `Err(Error::Runc)` when runc could not
//!   start it; [`Error::docker_exit_code`] maps errors to 125/126/127. runc
//!   also prints its own error line on the container's stderr (it shares the
//!   stream), so Piped callers see it in their stderr callback.
//! - **Signals.** While a container runs, SIGINT/SIGTERM/SIGHUP/SIGQUIT do
//!   not kill this process: the first is passed to the container, which gets
//!   SIGKILL after [`Runc::with_stop_timeout`] (10 s) or at the next signal.
//! - **Networks.** [`Network::Host`] never comes with `CAP_NET_RAW` (it
//!   would let a process capture the host's packets); [`Network::None`] is
//!   a fresh namespace with `lo`; [`Network::Join`] joins a namespace by
//!   path, such as a [`PrivateNetwork`] ([`netns`]: a named namespace with
//!   outbound access through pasta, whose resolv.conf the container gets).
//! - **Stale containers.** Each bundle records its owner's pid and start
//!   time; [`Runc::cleanup_stale`] (run by [`Runc::locate`]) kills every
//!   process of a container whose owner is gone (`runc kill --all`, through
//!   its cgroup), deletes it and its bundle, and removes dead owners'
//!   namespace files.
//! - **Not (yet) like Docker:** the seccomp profile is a denylist of the
//!   syscalls Docker's allowlist refuses a default container ([`seccomp`]);
//!   no AppArmor profile. Rootless, strata enters a user namespace itself
//!   ([`rootless`]). `RLIMIT_NOFILE` is 1048576 only when the caller may set
//!   it (else the caller's hard limit).
//!
//! ```no_run
//! use strata_runtime::*;
//! let rootfs = std::path::Path::new("/tmp/rootfs");
//! let spec = ContainerSpec {
//!     id: new_container_id(),
//!     rootfs: rootfs.into(),
//!     process: ProcessSpec {
//!         args: vec!["echo".into(), "hello".into()],
//!         user: resolve_user(rootfs, "nobody")?,
//!         ..Default::default()
//!     },
//!     network: Network::None,
//!     mounts: vec![],
//!     hostname: None,
//!     readonly_rootfs: false,
//!     extra: Default::default(),
//! };
//! let status = Runc::locate()?.run(&spec, StdioConfig::Inherit)?;
//! std::process::exit(status.code);
//! # Ok::<(), Error>(())
//! ```

pub mod binfmt;
pub mod cgroups;
pub mod netns;
pub mod reaper;
pub mod rootless;
mod runc;
pub mod seccomp;
pub mod signals;
pub mod spec;
mod stdio;
mod user;

use std::path::PathBuf;

pub use netns::{NetnsRef, PastaOptions, PrivateNetwork};
pub use rootless::{enter_user_namespace, Userns, UsernsError};
pub use runc::{is_rootless, Runc, OWNER_ANNOTATION, OWNER_START_ANNOTATION};
pub use seccomp::{BLOCKED_SYSCALLS, ENOSYS_SYSCALLS};
pub use spec::{
    effective_capabilities, write_init_layer, BindMount, ContainerExtras, ContainerSpec, MountSpec,
    Network, ProcessSpec, Ulimit, UlimitError, DEFAULT_CAPABILITIES, DEFAULT_PATH, INJECTED_PATHS,
};
pub use stdio::{OutputSink, StdioConfig};
pub use user::{resolve_user, NameNotFound, UserSpec};

/// Runs containers. [`Runc`] is the implementation; an embedded runtime can
/// come later behind the same trait.
pub trait Executor {
    /// Runs `spec` in the foreground until its process exits and returns its
    /// status. A process that ran and failed is `Ok` with a non-zero code; an
    /// `Err` means the container could not be started (bad spec, runc error
    /// such as "executable file not found") or waiting failed. Everything the
    /// run created is removed before returning.
    fn run(&self, spec: &ContainerSpec, io: StdioConfig) -> Result<ExitStatus, Error>;
}

/// How the container's process ended, as Docker reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus {
    /// The exit code; `128 + N` when killed by signal N.
    pub code: i32,
    /// The signal, when the code says the process was killed by one (codes
    /// 129..=192). Like Docker, a process that itself exits with such a code
    /// cannot be told apart.
    pub signal: Option<i32>,
}

impl ExitStatus {
    /// From an exit code, deriving [`ExitStatus::signal`].
    pub fn from_code(code: i32) -> ExitStatus {
        ExitStatus {
            code,
            signal: (129..=192).contains(&code).then_some(code - 128),
        }
    }

    /// Exit code 0.
    pub fn success(&self) -> bool {
        self.code == 0
    }
}

/// A new unique container id: `strata-` and 32 random hex digits.
pub fn new_container_id() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_ok();
    if !ok {
        // Fall back to time, pid and a counter: unique within this host.
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        bytes[..8].copy_from_slice(&t.to_le_bytes());
        bytes[8..12].copy_from_slice(&std::process::id().to_le_bytes());
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed) as u32;
        bytes[12..].copy_from_slice(&n.to_le_bytes());
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("strata-{hex}")
}

/// Errors of this crate; each names what failed and, where possible, what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No usable runc binary.
    #[error(
        "runc not found at {}: strata runs containers with runc; install it with \
         `apt-get install runc` (or set STRATA_RUNC to its path)",
        path.display()
    )]
    RuncNotFound {
        /// The path looked at (`runc` when searched in PATH).
        path: PathBuf,
    },
    /// A user or group name missing from the rootfs' passwd or group
    /// file. `missing` alone is the message without the host path (what
    /// a build step reports about its image).
    #[error("{missing} (rootfs {})", rootfs.display())]
    NameNotFound {
        /// Which name is missing.
        missing: NameNotFound,
        /// The rootfs searched.
        rootfs: PathBuf,
    },
    /// A malformed user string.
    #[error("invalid user {user:?}: {reason}")]
    InvalidUser {
        /// The string given.
        user: String,
        /// What is wrong.
        reason: String,
    },
    /// A container spec we refuse to run.
    #[error("invalid container spec: {0}")]
    InvalidSpec(String),
    /// The OCI spec could not be built.
    #[error("building the OCI runtime spec: {0}")]
    Spec(String),
    /// A tty was requested but stdin is not a terminal.
    #[error(
        "a tty was requested (-t) but stdin is not a terminal: drop -t or run from a terminal"
    )]
    NotATerminal,
    /// runc could not create or start the container.
    #[error("runc failed to run container {id}: {message}")]
    Runc {
        /// The container id.
        id: String,
        /// runc's error messages.
        message: String,
    },
    /// Resource limits asked of a rootless container that no delegated
    /// cgroup can apply ([`cgroups`]).
    #[error("cannot apply {} to a container of an unprivileged user: {why}", flags.join(", "))]
    RootlessLimits {
        /// The limits' flags (`--memory`, ...).
        flags: Vec<String>,
        /// Why, and how to fix it.
        why: String,
    },
    /// The private network of RUN steps could not be set up.
    #[error("{0}")]
    Network(String),
    /// binfmt_misc cannot run a platform's programs.
    #[error(transparent)]
    Binfmt(#[from] binfmt::BinfmtError),
    /// A `--ulimit` value that does not parse.
    #[error(transparent)]
    Ulimit(#[from] spec::UlimitError),
    /// Entering strata's user namespace failed.
    #[error(transparent)]
    Userns(#[from] rootless::UsernsError),
    /// A file system or process operation failed. The cause is part of
    /// the message and not also a `source()` (callers print `{:#}` and
    /// would see it twice).
    #[error("{context}: {cause}")]
    Io {
        /// What was being done, naming the path.
        context: String,
        /// The cause.
        cause: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            cause: source,
        }
    }

    pub(crate) fn spec(e: impl std::fmt::Display) -> Error {
        Error::Spec(e.to_string())
    }

    /// The exit code `docker run` uses for this error: 127 when the command
    /// was not found, 126 when it could not be executed, 125 otherwise.
    pub fn docker_exit_code(&self) -> i32 {
        match self {
            Error::Runc { message, .. }
                if message.contains("executable file not found")
                    || message.contains("no such file or directory") =>
            {
                127
            }
            Error::Runc { message, .. } if message.contains("permission denied") => 126,
            _ => 125,
        }
    }
}

/// One field of `/proc/self/status` (`Threads`, `CapEff`, ...), trimmed.
pub(crate) fn proc_self_status(field: &str) -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let prefix = format!("{field}:");
    status
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim().to_string())
}

#[cfg(test)]
mod error_tests {
    use super::*;

    use strata_test_support::errors::error_chain as chain;

    #[test]
    fn a_cause_is_printed_once() {
        let denied = || std::io::Error::from_raw_os_error(13);
        let text = denied().to_string();
        let io = Error::io("creating /run/strata/x", denied());
        let binfmt = Error::from(binfmt::BinfmtError::Mount {
            dir: "/proc/sys/fs/binfmt_misc".into(),
            cause: denied(),
        });
        let userns = Error::from(rootless::UsernsError::Os {
            what: "writing /proc/self/uid_map".into(),
            cause: denied(),
        });
        for e in [io, binfmt, userns] {
            let shown = chain(&e);
            assert_eq!(shown.matches(&text).count(), 1, "{shown}");
        }
    }

    #[test]
    fn a_missing_user_is_a_variant_with_and_without_the_rootfs() {
        let e = Error::NameNotFound {
            missing: NameNotFound::User("app".into()),
            rootfs: "/store/m/1".into(),
        };
        assert_eq!(
            e.to_string(),
            "unable to find user app: no matching entries in passwd file (rootfs /store/m/1)"
        );
        let Error::NameNotFound { missing, .. } = e else {
            unreachable!()
        };
        assert_eq!(
            missing.to_string(),
            "unable to find user app: no matching entries in passwd file"
        );
    }
}
