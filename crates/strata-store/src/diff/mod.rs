//! The differ: directory -> layer tar (with whiteouts, hashed and gzipped
//! in one streaming pass, straight into the blob store) and layer tar ->
//! directory (safely, overlay-ready or flattened).

mod apply;
mod pgzip;
mod tarout;
mod upper;
pub mod whiteout;
mod writer;

pub(crate) use apply::apply_layer_unhashed;
pub use apply::{apply_layer, apply_layer_known, decompressed, ApplyMode, ApplyStats};
pub use upper::{digest_dir, tar_dir, LayerWriter};
pub use writer::{gzip_blob, EntryMeta, LayerBuilder, LayerInfo, LayerOptions, DEFAULT_GZIP_LEVEL};
