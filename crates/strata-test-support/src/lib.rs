//! Fixtures shared by the integration tests of strata's crates. Dev-only:
//! every crate names it under `[dev-dependencies]`, and it is never
//! published.
//!
//! Each crate has one integration-test binary, `tests/it/main.rs`, with a
//! module per area (`cargo test -p strata --test it build::` runs one
//! area). What more than one of those binaries needs lives here:
//!
//! - [`runner`]: the `strata` binary as a builder ([`Strata`]): arguments,
//!   environment, stdin, a wrapper command.
//! - [`cli`]: the common runs (`strata`, `ok`, `build_with`, ...), store
//!   roots and build contexts, the busybox base image (feature `image`),
//!   and a one-shot HTTP server and a git daemon for remote contexts.
//! - [`archive`]: layer tars and `docker save` archives made in memory.
//! - [`hostile_tar`]: tar streams with hand-made headers (`..`, absolute
//!   paths, links out, lying sizes, devices, long names).
//! - [`oci`]: a blob sink that only hashes (feature `oci`).
//! - [`registry`] and [`proxy`]: a real local registry (htpasswd or token
//!   auth), images made in a store (feature `registry`), and a TCP proxy
//!   that cuts or stalls connections.
//! - [`errors`]: an error and its causes as the CLI prints them.
//! - [`conformance`]: where the conformance corpus is, and the loud skip
//!   (or, with `STRATA_REQUIRE_CONFORMANCE=1`, the failure) when it is not.
//!
//! The items of `cli`, `runner` and `archive` are re-exported at the root,
//! so a test module starts with `use strata_test_support::*;`.

pub mod archive;
pub mod cli;
pub mod conformance;
pub mod errors;
pub mod hostile_tar;
#[cfg(feature = "oci")]
pub mod oci;
pub mod proxy;
#[cfg(feature = "registry")]
pub mod registry;
pub mod runner;

pub use archive::*;
pub use cli::*;
pub use runner::*;
