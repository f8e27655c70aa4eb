//! strata-store's integration tests: one binary, a module per area
//! (`cargo test -p strata-store --test it overlay::`). Some need root
//! (overlay mounts, whiteout devices) and skip without it.

mod blobs_meta;
mod built_layers;
mod common;
mod differ;
mod gc_check;
mod hostile;
mod load_unpack;
mod overlay;
