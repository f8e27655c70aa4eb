//! strata-engine: the solver. It schedules a frontend `Plan` as a DAG,
//! computes cache keys, executes steps (RUN through the runtime, COPY/ADD as
//! file operations) and reports progress events.
//!
//! It owns no storage format and no process execution of its own: blobs,
//! snapshots and layers go through strata-store, containers through
//! strata-runtime. It never writes outside the store root and the temporary
//! directories it creates there, and never leaves a mount behind.

mod base_unpack;
pub mod build;
pub mod cache;
pub mod config;
pub mod context;
pub mod copy;
mod error;
pub mod events;
pub mod explain;
pub mod glob;
mod image_cache;
pub mod images;
mod inputs;
mod miss_record;
pub mod mounts;
mod named;
pub mod network;
pub mod output;
mod pass;
mod request;
pub mod resolve;
pub mod rootfs;
pub mod run_step;
mod runmounts;
pub mod scheduler;
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
pub mod whymiss;

pub use build::build;
pub use copy::ChownError;
pub use error::{chain, BuildError, StepError};
pub use events::{Event, EventKind, Stream};
pub use named::NamedContextError;
pub use network::{NetworkError, NetworkMode};
pub use request::{default_dockerfile, BuildOutput, BuildRequest, NamedContext, SecretSource};
pub use resolve::{PullPolicy, ResolveError};
pub use runmounts::RunMountError;
pub use strata_registry::PullOptions;
pub use tempdir::TempDir;
