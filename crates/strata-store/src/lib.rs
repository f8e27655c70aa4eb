//! strata-store: the local content-addressed store. Blobs by digest, the
//! SQLite metadata db (images, tags, cache, references), locks, garbage
//! collection, the snapshotter (unpacked layers, overlay mounts) and the
//! differ (layer tar <-> directory, with whiteouts).
//!
//! It never knows about Dockerfiles and never writes outside its root: the
//! only paths it writes are under the store root, plus the destination
//! directory a caller explicitly hands to [`diff::apply_layer`], and layer
//! extraction resolves every entry inside that destination (openat2
//! `RESOLVE_IN_ROOT`), so a hostile tar cannot reach anything else. It does
//! not parse manifests or configs either: callers register images with the
//! digests they refer to ([`ImageRecord`]).
//!
//! Entry point: [`Store::open`].

pub mod blobs;
pub mod check;
pub mod containers;
pub mod diff;
pub mod error;
mod fsutil;
pub mod gc;
pub mod meta;
pub mod mount;
pub mod perms;
mod pipe;
pub mod safe_path;
pub mod snapshot;
mod store;
pub mod transfer;

pub use blobs::{BlobStore, BlobWriter};
pub use check::{CheckReport, Problem};
pub use containers::{ContainerDir, Containers};
pub use diff::{
    apply_layer, digest_dir, gzip_blob, tar_dir, ApplyMode, ApplyStats, EntryMeta, LayerBuilder,
    LayerInfo, LayerOptions, LayerWriter,
};
pub use error::{Result, StoreError};
pub use fsutil::{FileLock, TempDir};
pub use gc::PruneReport;
pub use meta::{
    CacheRecord, ImageInfo, ImageRecord, LayerRecord, Lease, LeaseInfo, Meta, StepInfo,
};
pub use mount::RootfsMount;
pub use snapshot::{chain_ids, Snapshotter, UnpackProgress};
pub use store::{content_size_of_tar, note_content_size, Store};
pub use strata_oci::Digest;
