//! strata-registry's integration tests against a real local registry
//! (Debian's docker-registry): one binary, a module per area
//! (`cargo test -p strata-registry --test it cache::`).

mod cache;
mod registry;
