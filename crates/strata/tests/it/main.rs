//! The `strata` CLI's integration tests: one binary, a module per area.
//! They run the real binary against temp stores and need root, runc and a
//! static busybox (they skip, saying so, where the host lacks them); some
//! also need docker, a local registry, pasta or qemu (see README.md).
//!
//!     cargo test -p strata --test it                 # all of them
//!     cargo test -p strata --test it build::          # one area
//!
//! Shared fixtures (the CLI runner, the busybox base image, archive and
//! hostile-tar builders, the local registry) are in the dev-only crate
//! `strata-test-support`; what only one area needs stays in its module.

mod archives;
mod build;
mod build_cancel;
mod build_habits;
mod buildkit_features;
mod compat;
mod concurrency;
mod containers;
mod crash;
mod diskfull;
mod explain;
mod frontend_cli;
mod fuzz_smoke;
mod habits;
mod hostile;
mod images;
mod platforms;
mod registry;
mod registry_build;
mod rootless;
mod run;
mod run_errors;
mod run_isolation;
mod seccomp;
mod store_security;
mod stored_once;
mod why_miss;
