//! Why a `RUN --mount` could not be prepared.

use std::path::PathBuf;
use std::sync::Arc;

use crate::resolve::ResolveError;

/// Why a `RUN --mount` could not be prepared.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunMountError {
    /// A mount point could not be created in the placeholder layer.
    #[error("creating mount point {target}")]
    Point {
        /// The mount's target.
        target: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The placeholder layer could not be created.
    #[error("mount points")]
    Placeholders(#[source] std::io::Error),
    /// A `#!` heredoc's name cannot name a file.
    #[error("heredoc name {0:?} cannot be a file name")]
    ScriptName(String),
    /// A `#!` heredoc could not be written.
    #[error("heredoc {name}")]
    Script {
        /// The heredoc's name.
        name: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A mount over `/`.
    #[error(
        "--mount=type={kind},target={target}: a mount cannot cover the root filesystem: choose a directory such as /mnt or /root/.cache"
    )]
    CoversRoot {
        /// The mount's type.
        kind: String,
        /// Its target as written.
        target: String,
    },
    /// A mount type that needs `target=` without one.
    #[error("a {0} mount needs target=")]
    NeedsTarget(&'static str),
    /// `mode=` is not octal.
    #[error("invalid mode={0}: use an octal mode such as 0755")]
    InvalidMode(String),
    /// `uid=` or `gid=` is not a number.
    #[error("invalid {what}={value}: use a number")]
    InvalidId {
        /// `uid` or `gid`.
        what: &'static str,
        /// The value given.
        value: String,
    },
    /// A tmpfs `size=` that is not a size.
    #[error("invalid size={0}: use bytes or a k/m/g suffix")]
    InvalidSize(String),
    /// A bind mount's source is missing.
    #[error("bind mount source {0}: not found")]
    SourceNotFound(String),
    /// A bind mount's source in the build context could not be read.
    #[error("bind mount source {source_path}")]
    BindContext {
        /// The `source=` as written.
        source_path: String,
        /// Why.
        #[source]
        source: crate::context::ContextError,
    },
    /// What a bind mount shows could not be digested (for the key).
    #[error("--mount=type=bind,source={source_path}")]
    BindInput {
        /// The `source=` as written.
        source_path: String,
        /// Why.
        #[source]
        source: crate::context::ContextError,
    },
    /// `cp` could not be started.
    #[error("cp")]
    Cp(#[source] std::io::Error),
    /// `cp` failed.
    #[error("copying {} failed", .0.display())]
    CopyFailed(PathBuf),
    /// A cache mount's lock could not be taken.
    #[error("cache mount {id}")]
    CacheLock {
        /// The cache's id.
        id: String,
        /// Why.
        #[source]
        source: Box<strata_store::StoreError>,
    },
    /// A cache mount's directory could not be created.
    #[error("{}", path.display())]
    CacheDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `--mount=type=ssh` of an agent that was not forwarded.
    #[error(
        "ssh agent {0:?} was not forwarded: pass --ssh {0} (with SSH_AUTH_SOCK set) or --ssh {0}=SOCKET"
    )]
    SshNotForwarded(String),
    /// A secret's file cannot be read (the cause is part of the advice).
    #[error("secret {id}: cannot read {}: {error}; give src= a regular file (or use env=)", path.display())]
    SecretUnreadable {
        /// The secret's id.
        id: String,
        /// Its file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// A secret's environment variable is not set.
    #[error("secret {id}: environment variable {var} is not set")]
    SecretEnvUnset {
        /// The secret's id.
        id: String,
        /// The variable.
        var: String,
    },
    /// A secret mount without an id.
    #[error("a secret mount needs id= (and --secret id=...)")]
    SecretNeedsId,
    /// A required secret was not given.
    #[error(
        "secret {0} is required but was not given: pass --secret id={0},src=FILE (or env=VAR)"
    )]
    SecretMissing(String),
    /// The secret's file could not be written.
    #[error("secret {id}")]
    SecretIo {
        /// The secret's id.
        id: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A stage the mount reads from produced no state.
    #[error(transparent)]
    StageNotBuilt(#[from] crate::step_env::NotBuilt),
    /// An image the mount reads from could not be found or pulled.
    #[error(transparent)]
    Image(#[from] Arc<ResolveError>),
    /// An image the mount reads from could not be read.
    #[error(transparent)]
    StoredImage(#[from] crate::images::ImageError),
    /// A root filesystem could not be mounted.
    #[error(transparent)]
    Mount(#[from] crate::mounts::MountError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] strata_store::StoreError),
    /// A file operation failed.
    #[error(transparent)]
    Fs(#[from] std::io::Error),
}
