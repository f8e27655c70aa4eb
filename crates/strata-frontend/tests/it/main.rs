//! strata-frontend's integration tests: one binary, a module per area.
//! The `conformance_*` and `lint_corpus` modules read the conformance
//! corpus (`../shared/conformance` or `STRATA_CONFORMANCE_DIR`); without
//! it they skip with a loud message, or fail with
//! `STRATA_REQUIRE_CONFORMANCE=1` (see `strata_test_support::conformance`).
//!
//!     cargo test -p strata-frontend --test it conformance_parser::

mod conformance_dockerignore;
mod conformance_multistage;
mod conformance_parser;
mod conformance_shell;
mod instructions_and_plan;
mod lint_corpus;
mod proptest_random;
mod robustness;
