//! strata-engine: the solver. It schedules a frontend `Plan` as a DAG,
//! computes cache keys, executes steps (RUN through the runtime, COPY/ADD as
//! file operations) and reports progress events.
//!
//! It owns no storage format and no process execution of its own: blobs,
//! snapshots and layers go through strata-store, containers through
//! strata-runtime. It never writes outside the store root and the temporary
//! directories it creates there, and never leaves a mount behind.
//!
//! # API
//!
//! [`build()`] takes a [`BuildRequest`] and returns a [`BuildOutput`] or a
//! [`BuildError`]; progress goes to an [`EventSink`] as [`Event`]s. A
//! failed step is [`BuildError::Step`], whose source is a typed
//! [`StepError`] (a failed RUN with its exit code, a registry error, a
//! COPY error...). The other public modules are what the CLI uses besides
//! building: images in the store ([`images`], [`config`]), `--output`
//! ([`output`]), `image explain` ([`explain`]), remote contexts
//! ([`sources`]), mounting a root filesystem ([`mounts`]), releasing
//! every mount before an exit that cannot unwind ([`live_mounts`]).
//!
//! # Where things are
//!
//! - `build.rs`: the entry point: one pass per platform, commit, tag.
//! - `session.rs`, `inputs.rs`, `pass.rs`: what a build works with (store,
//!   executor, events, resolver, lease, cancellation), what it reads (the
//!   request, the context), what one platform's pass shares.
//! - `stage.rs`, `stage_base.rs`, `base_unpack.rs`: one stage: FROM, ONBUILD
//!   triggers, then each step; unpacking the base ahead of the steps.
//! - `solve.rs`: one step through the cache (hit, `--cache-from`, miss).
//! - `steps/`: the typed steps: `key.rs` makes a step's cache key;
//!   `run.rs`, `copy.rs`, `metadata.rs`, `workdir.rs` execute them.
//! - `run_step.rs`: a RUN's process started through the runtime, its layer
//!   written; `runmounts/`: `RUN --mount`; `copy/`: COPY/ADD file rules.
//! - `miss_record.rs`, `whymiss.rs`: what keyed each step, kept beside its
//!   cache record, and why a later build missed.
//! - `error.rs`: [`BuildError`] and [`StepError`].
//! - `config.rs`, `config_json.rs`: Docker's edit rules over the one image
//!   config model (`strata_oci::ImageConfig`) and the bytes a build writes.
//! - `dockerfile.rs`: reading, parsing and planning a Dockerfile (the build
//!   and every command that only looks at one).
//! - `container/`: a container assembled from an image for `run`/`create`;
//!   `cache_io.rs`: `--cache-from`/`--cache-to`; `output.rs`: `--output`;
//!   `epoch.rs`: SOURCE_DATE_EPOCH.

mod base_unpack;
pub mod build;
pub mod cache;
pub mod cache_io;
pub mod config;
pub mod config_json;
pub mod container;
pub mod context;
mod copy;
pub mod dockerfile;
pub mod epoch;
mod error;
pub mod events;
pub mod explain;
mod glob;
mod image_cache;
pub mod images;
mod inputs;
pub mod live_mounts;
mod miss_record;
#[cfg(test)]
mod module_cycles;
pub mod mounts;
mod named;
pub mod network;
pub mod output;
mod pass;
mod request;
mod resolve;
mod rootfs;
pub mod run_step;
mod runmounts;
mod scheduler;
mod session;
mod solve;
pub mod sources;
mod stage;
mod stage_base;
mod stat_cache;
mod state;
mod step_env;
mod steps;
mod tempdir;
mod whymiss;

pub use build::build;
pub use copy::{ChownError, CopyError, InvalidChmod};
pub use error::{chain, BuildError, StepError};
pub use events::{Event, EventKind, EventSink, Stream};
pub use glob::GlobError;
pub use named::NamedContextError;
pub use network::{NetworkError, NetworkMode};
pub use request::{default_dockerfile, BuildOutput, BuildRequest, NamedContext, SecretSource};
pub use resolve::{PullPolicy, ResolveError};
pub use runmounts::RunMountError;
pub use step_env::NotBuilt;
pub use strata_registry::PullOptions;
pub use tempdir::TempDir;
