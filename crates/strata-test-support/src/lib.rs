//! Fixtures shared by the integration tests of strata's crates. Dev-only:
//! every crate names it under `[dev-dependencies]`, and it is never
//! published.
//!
//! Each crate has one integration-test binary, `tests/it/main.rs`, with a
//! module per area (`cargo test -p strata --test it build::` runs one
//! area). What more than one of those binaries needs lives here:
//!
//! - [`cli`]: running the `strata` binary against a temp store, and the
//!   busybox base image those runs build on (feature `image`).
//! - [`files`]: build contexts, store roots, fixture dirs.
//! - [`net`]: a one-shot HTTP server, git repositories and a git daemon.
//! - [`archive`]: layer tars and `docker save` archives made in memory.
//! - [`hostile_tar`]: tar streams with hand-made headers (`..`, absolute
//!   paths, links out, lying sizes, devices, long names).
//! - [`oci`]: a blob sink that only hashes (feature `oci`).
//! - [`registry`] and [`proxy`]: a real local registry (htpasswd or token
//!   auth), images made in a store (feature `registry`), and a TCP proxy
//!   that cuts or stalls connections.
//! - [`conformance`]: where the conformance corpus is, and the loud skip
//!   (or, with `STRATA_REQUIRE_CONFORMANCE=1`, the failure) when it is not.
//!
//! The items of `cli`, `files`, `net` and `archive` are re-exported at the
//! root, so a test module starts with `use strata_test_support::*;`.

#![warn(missing_docs)]

pub mod archive;
pub mod cli;
pub mod conformance;
pub mod files;
pub mod hostile_tar;
pub mod net;
#[cfg(feature = "oci")]
pub mod oci;
pub mod proxy;
#[cfg(feature = "registry")]
pub mod registry;

pub use archive::*;
pub use cli::*;
pub use files::*;
pub use net::*;
