//! strata-oci's integration tests: one binary, a module per area
//! (`cargo test -p strata-oci --test it archives::`).

mod archives;
mod common;
mod hostile;
mod streaming;
