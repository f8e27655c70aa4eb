//! The store's error type. Every variant names what failed and where.

use std::io;
use std::path::{Path, PathBuf};

use strata_oci::Digest;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{what}: {source}")]
    IoOther {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "digest mismatch: expected {expected}, got {actual} ({size} bytes); the data was discarded"
    )]
    DigestMismatch {
        expected: Digest,
        actual: Digest,
        size: u64,
    },
    #[error(
        "layer diff ID mismatch: expected {expected}, the uncompressed tar hashes to {actual}"
    )]
    DiffIdMismatch { expected: Digest, actual: Digest },
    #[error("blob {0} is not in the store")]
    BlobNotFound(Digest),
    #[error("image {0} is not in the store")]
    ImageNotFound(String),
    #[error("image reference {prefix:?} is ambiguous: it matches {count} images")]
    AmbiguousImage { prefix: String, count: usize },
    #[error("image {id} is tagged as {tags}: untag it first (or force the removal)")]
    ImageTagged { id: Digest, tags: String },
    #[error("metadata db {path}: {what}: {source}")]
    Db {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("metadata db {path}: schema version {found} is newer than this strata ({supported}); upgrade strata")]
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("corrupt metadata: {0}")]
    Corrupt(String),
    #[error("unsafe layer entry {path:?}: {why}")]
    UnsafeEntry { path: String, why: String },
    #[error("bad layer archive: {0}")]
    BadLayer(String),
    #[error("mount {target}: {why}")]
    Mount { target: PathBuf, why: String },
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Attaches an operation and a path to an `io::Error`.
pub(crate) trait IoCtx<T> {
    fn ctx(self, op: &'static str, path: &Path) -> Result<T>;
    fn what(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoCtx<T> for io::Result<T> {
    fn ctx(self, op: &'static str, path: &Path) -> Result<T> {
        self.map_err(|source| StoreError::Io {
            op,
            path: path.to_path_buf(),
            source,
        })
    }
    fn what(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| StoreError::IoOther {
            what: what(),
            source,
        })
    }
}

impl<T> IoCtx<T> for rustix::io::Result<T> {
    fn ctx(self, op: &'static str, path: &Path) -> Result<T> {
        self.map_err(io::Error::from).ctx(op, path)
    }
    fn what(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(io::Error::from).what(what)
    }
}

impl StoreError {
    /// True when the error is "not found" on the filesystem.
    pub fn is_not_found(&self) -> bool {
        match self {
            StoreError::Io { source, .. } | StoreError::IoOther { source, .. } => {
                source.kind() == io::ErrorKind::NotFound
            }
            StoreError::BlobNotFound(_) | StoreError::ImageNotFound(_) => true,
            _ => false,
        }
    }
}
