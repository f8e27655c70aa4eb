//! Why a build or one of its steps failed.
//!
//! Every error wraps its cause as a typed `source()` and never repeats it in
//! its own message: a caller prints the chain once with `{err:#}` (anyhow)
//! or [`chain`], and a program tells a registry failure from a failed RUN
//! by matching the variants ([`BuildError::Step`] carries a [`StepError`]).

use std::path::PathBuf;
use std::sync::Arc;

use crate::copy::CopyError;
use crate::images::ImageError;
use crate::mounts::MountError;
use crate::named::NamedContextError;
use crate::network::NetworkError;
use crate::resolve::ResolveError;
use crate::run_step::RunError;
use crate::runmounts::RunMountError;
use crate::sources::SourceError;

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The Dockerfile could not be read.
    #[error("cannot read the Dockerfile {}", path.display())]
    ReadDockerfile {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// The Dockerfile or its `.dockerignore` could not be parsed or planned.
    #[error(transparent)]
    Dockerfile(#[from] strata_frontend::Error),
    /// SOURCE_DATE_EPOCH (build arg or environment) is not a number.
    #[error(transparent)]
    SourceDateEpoch(#[from] crate::epoch::InvalidSourceDateEpoch),
    /// A step failed: where, in which stage, which instruction, and why.
    #[error("{location}: [{stage}] {instruction}")]
    Step {
        /// `FILE:LINE` of the instruction.
        location: String,
        /// The stage's label (with its platform in a multi-platform build).
        stage: String,
        /// The instruction as written (trimmed).
        instruction: String,
        /// What failed (boxed: errors stay small on the success path).
        #[source]
        source: Box<StepError>,
    },
    /// A `--build-context NAME=...` could not be resolved.
    #[error("--build-context {name}")]
    NamedContext {
        /// The context's name.
        name: String,
        /// Why.
        #[source]
        source: Box<NamedContextError>,
    },
    /// The build's network settings are refused (`--network host`).
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// The build context could not be opened.
    #[error(transparent)]
    Context(#[from] crate::context::ContextError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] strata_store::StoreError),
    /// Writing or tagging the multi-platform index failed.
    #[error(transparent)]
    Transfer(#[from] strata_store::transfer::TransferError),
    /// Committing, loading or tagging an image failed.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The runtime's init layer could not be written.
    #[error(transparent)]
    Runtime(#[from] strata_runtime::Error),
    /// A temporary directory could not be made.
    #[error("creating a temporary directory in the store")]
    TempDir(#[source] std::io::Error),
    /// The target stage produced no state (a scheduler bug).
    #[error("the target stage was not built")]
    TargetNotBuilt,
    /// The build was cancelled.
    #[error("build cancelled")]
    Cancelled,
}

impl BuildError {
    /// RUN's exit code, when a RUN failed.
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            BuildError::Step { source, .. } => match source.as_ref() {
                StepError::RunFailed { exit_code, .. } => Some(*exit_code),
                _ => None,
            },
            _ => None,
        }
    }
}

/// Why one step (an instruction, or a stage's FROM) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StepError {
    /// The instruction could not be resolved (word expansion, flags).
    #[error(transparent)]
    Dockerfile(#[from] strata_frontend::Error),
    /// An ONBUILD trigger of the base image could not be parsed.
    #[error("ONBUILD {trigger}")]
    Trigger {
        /// The trigger's text.
        trigger: String,
        /// Why.
        #[source]
        source: strata_frontend::Error,
    },
    /// A RUN's command exited with a non-zero status.
    #[error("process {command} did not complete successfully: exit code: {exit_code}")]
    RunFailed {
        /// The command line, quoted and shortened for display.
        command: String,
        /// Its exit status.
        exit_code: i32,
    },
    /// A RUN could not be started or its layer written.
    #[error(transparent)]
    Run(RunError),
    /// A `RUN --mount` could not be prepared.
    #[error("--mount")]
    RunMount(#[source] RunMountError),
    /// A RUN's network could not be set up or is refused.
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// An image named by FROM, `--from` or `--mount=from=` could not be
    /// found or pulled (registry and authentication failures land here).
    #[error(transparent)]
    Image(#[from] Arc<ResolveError>),
    /// A COPY or ADD failed.
    #[error(transparent)]
    Copy(#[from] CopyError),
    /// A remote source of ADD (URL, git) could not be fetched.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The image config refused the change (EXPOSE, VOLUME).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// An image in the store could not be read.
    #[error(transparent)]
    StoredImage(#[from] ImageError),
    /// A stage's root filesystem could not be mounted.
    #[error(transparent)]
    Mount(#[from] MountError),
    /// The build context could not be read.
    #[error(transparent)]
    Context(#[from] crate::context::ContextError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] strata_store::StoreError),
    /// The runtime failed (user lookup, container).
    #[error(transparent)]
    Runtime(#[from] strata_runtime::Error),
    /// `FROM --platform` names no valid platform.
    #[error("FROM --platform: {0}")]
    Platform(String),
    /// The host cannot run programs of the stage's platform.
    #[error("{0}")]
    CannotRun(String),
    /// The base's layers could not be unpacked.
    #[error("unpacking the base image's layers")]
    Unpack(#[source] strata_store::StoreError),
    /// `WORKDIR` goes through something that is not a directory.
    #[error("WORKDIR {workdir}: {path} exists and is not a directory")]
    NotADirectory {
        /// The WORKDIR.
        workdir: String,
        /// The offending path.
        path: String,
    },
    /// A file operation of the step failed.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A file operation failed (a temporary directory, a path of the
    /// stage's filesystem); the OS error is the whole message, as before.
    #[error(transparent)]
    Fs(std::io::Error),
    /// What a RUN's bind mount shows could not be read (for its key).
    #[error(transparent)]
    MountInput(RunMountError),
    /// A `#!` heredoc script could not be prepared.
    #[error(transparent)]
    Script(RunMountError),
    /// A stage this step reads from produced no state (a scheduler bug).
    #[error(transparent)]
    StageNotBuilt(#[from] crate::step_env::NotBuilt),
    /// FROM appears inside a stage (the planner prevents it).
    #[error("FROM inside a stage")]
    FromInStage,
}

impl From<RunError> for StepError {
    fn from(e: RunError) -> StepError {
        match e {
            RunError::Failed { command, code } => StepError::RunFailed {
                command,
                exit_code: code,
            },
            e => StepError::Run(e),
        }
    }
}

impl From<RunMountError> for StepError {
    fn from(e: RunMountError) -> StepError {
        StepError::RunMount(e)
    }
}

impl From<ResolveError> for StepError {
    fn from(e: ResolveError) -> StepError {
        StepError::Image(Arc::new(e))
    }
}

impl StepError {
    /// An I/O error with what was being done.
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StepError {
        let context = context.into();
        move |source| StepError::Io { context, source }
    }
}

/// An error and its causes on one line, `a: b: c` (as anyhow's `{:#}`).
/// A cause whose text the line already ends with is not repeated (an
/// error of another crate that still prints its own source).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !s.is_empty() && !out.ends_with(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_error_prints_its_cause_once() {
        let io = std::io::Error::from_raw_os_error(13);
        let e = BuildError::Step {
            location: "Dockerfile:2".into(),
            stage: "stage-0".into(),
            instruction: "COPY a b".into(),
            source: Box::new(StepError::Io {
                context: "heredoc a".into(),
                source: io,
            }),
        };
        let text = chain(&e);
        assert_eq!(
            text,
            "Dockerfile:2: [stage-0] COPY a b: heredoc a: Permission denied (os error 13)"
        );
        assert_eq!(text.matches("Permission denied").count(), 1);
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        #[derive(Debug, thiserror::Error)]
        #[error("reading /x: {source}")]
        struct Repeats {
            source: std::io::Error,
        }
        let e = Repeats {
            source: std::io::Error::from_raw_os_error(2),
        };
        assert_eq!(chain(&e), e.to_string());
    }

    #[test]
    fn a_failed_run_has_its_exit_code() {
        let e = BuildError::Step {
            location: "Dockerfile:2".into(),
            stage: "stage-0".into(),
            instruction: "RUN false".into(),
            source: Box::new(StepError::from(RunError::Failed {
                command: "\"/bin/sh -c false\"".into(),
                code: 7,
            })),
        };
        assert_eq!(e.exit_code(), Some(7));
        assert!(chain(&e).ends_with("exit code: 7"));
    }
}
