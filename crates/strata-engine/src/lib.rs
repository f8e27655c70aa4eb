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
pub mod cache_io;
pub mod config;
pub mod config_json;
pub mod container;
pub mod context;
pub mod copy;
pub mod dockerfile;
pub mod epoch;
pub mod events;
pub mod explain;
pub mod glob;
mod image_cache;
pub mod images;
mod miss_record;
pub mod mounts;
pub mod named;
pub mod network;
pub mod output;
pub mod resolve;
pub mod rootfs;
pub mod run_step;
mod runmounts;
pub mod scheduler;
pub mod sources;
pub mod stage;
mod stage_files;
mod stage_run;
mod stat_cache;
pub mod whymiss;

pub use build::{build, BuildError, BuildOutput, BuildRequest, NamedContext, SecretSource};
pub use events::{Event, EventKind, Stream};
pub use network::NetworkMode;
pub use resolve::PullPolicy;
pub use strata_registry::PullOptions;
