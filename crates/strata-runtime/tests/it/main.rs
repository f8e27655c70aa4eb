//! strata-runtime's integration tests: one binary, a module per area
//! (`cargo test -p strata-runtime --test it signals::`). They start real
//! containers with runc, so they need root and a static busybox, and skip
//! (saying so) without them.

mod common;
mod golang;
mod run;
mod signals;
