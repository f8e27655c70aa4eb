//! The store's error type. Every variant names what failed and where.

use std::io;
use std::path::{Path, PathBuf};

use strata_oci::Digest;

/// Every error of the store.
///
/// A variant that carries a lower error prints it in its own message and
/// does not also return it from `source()`: callers print the chain
/// (`{:#}`) and must see the cause once, and callers that keep only
/// `to_string()` must still see it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file system operation on a known path failed.
    #[error("{op} {path}: {cause}")]
    Io {
        /// The operation ("open", "rename", ...).
        op: &'static str,
        /// The path operated on.
        path: PathBuf,
        /// The cause.
        cause: io::Error,
    },
    /// An I/O operation failed that is best described in words.
    #[error("{what}: {cause}")]
    IoOther {
        /// What was being done.
        what: String,
        /// The cause.
        cause: io::Error,
    },
    /// Content whose digest is not the one expected.
    #[error(
        "digest mismatch: expected {expected}, got {actual} ({size} bytes); the data was discarded"
    )]
    DigestMismatch {
        /// The digest the content was named by.
        expected: Digest,
        /// The digest of what arrived.
        actual: Digest,
        /// How many bytes arrived.
        size: u64,
    },
    /// A layer whose uncompressed tar is not the declared diff ID.
    #[error(
        "layer diff ID mismatch: expected {expected}, the uncompressed tar hashes to {actual}"
    )]
    DiffIdMismatch {
        /// The diff ID the image config declares.
        expected: Digest,
        /// The digest of the uncompressed tar.
        actual: Digest,
    },
    /// A blob the store does not have.
    #[error("blob {0} is not in the store")]
    BlobNotFound(Digest),
    /// An image (name, ID or prefix) the store does not have.
    #[error("image {0} is not in the store")]
    ImageNotFound(String),
    /// An ID prefix that matches more than one image.
    #[error("image reference {prefix:?} is ambiguous: it matches {count} images")]
    AmbiguousImage {
        /// The prefix given.
        prefix: String,
        /// How many images it matches.
        count: usize,
    },
    /// An image that is still tagged and so not removed.
    #[error("image {id} is tagged as {tags}: untag it first (or force the removal)")]
    ImageTagged {
        /// The image ID.
        id: Digest,
        /// Its tags, comma separated.
        tags: String,
    },
    /// A metadata database operation failed.
    #[error("metadata db {path}: {what}: {cause}")]
    Db {
        /// The database file.
        path: PathBuf,
        /// The operation.
        what: &'static str,
        /// SQLite's error.
        cause: rusqlite::Error,
    },
    /// A metadata database written by a newer strata.
    #[error("metadata db {path}: schema version {found} is newer than this strata ({supported}); upgrade strata")]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// The version found in it.
        found: i64,
        /// The newest version this strata knows.
        supported: i64,
    },
    /// Metadata that contradicts itself or the blobs.
    #[error("corrupt metadata: {0}")]
    Corrupt(String),
    /// A layer entry that would leave the layer or is otherwise unsafe.
    #[error("unsafe layer entry {path:?}: {why}")]
    UnsafeEntry {
        /// The entry's name in the tar.
        path: String,
        /// What is unsafe about it.
        why: String,
    },
    /// A layer that is not a valid tar (or compressed tar).
    #[error("bad layer archive: {0}")]
    BadLayer(String),
    /// A mount that could not be made.
    #[error("mount {target}: {why}")]
    Mount {
        /// The mount point.
        target: PathBuf,
        /// Why it failed.
        why: String,
    },
    /// A request the store refuses (bad argument, wrong state).
    #[error("{0}")]
    Invalid(String),
}

/// The store's result type.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Attaches an operation and a path to an `io::Error`.
pub(crate) trait IoCtx<T> {
    fn ctx(self, op: &'static str, path: &Path) -> Result<T>;
    fn what(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoCtx<T> for io::Result<T> {
    fn ctx(self, op: &'static str, path: &Path) -> Result<T> {
        self.map_err(|cause| StoreError::Io {
            op,
            path: path.to_path_buf(),
            cause,
        })
    }
    fn what(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|cause| StoreError::IoOther {
            what: what(),
            cause,
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
            StoreError::Io { cause, .. } | StoreError::IoOther { cause, .. } => {
                cause.kind() == io::ErrorKind::NotFound
            }
            StoreError::BlobNotFound(_) | StoreError::ImageNotFound(_) => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transfer::TransferError;

    use strata_test_support::errors::error_chain as chain;

    #[test]
    fn a_cause_is_printed_once() {
        let denied = || io::Error::from(rustix::io::Errno::ACCESS);
        let text = denied().to_string();
        let io = Err::<(), _>(denied())
            .ctx("open", Path::new("/store/blobs"))
            .unwrap_err();
        let other = Err::<(), _>(denied())
            .what(|| "read layer".into())
            .unwrap_err();
        let wrapped = TransferError::from(
            Err::<(), _>(denied())
                .ctx("open", Path::new("/x"))
                .unwrap_err(),
        );
        let archive = TransferError::from(strata_oci::Error::external(
            "staging a blob",
            Err::<(), _>(denied())
                .ctx("create", Path::new("/tmp/x"))
                .unwrap_err(),
        ));
        let shown: Vec<String> = [
            &io as &(dyn std::error::Error + 'static),
            &other,
            &wrapped,
            &archive,
        ]
        .into_iter()
        .map(chain)
        .collect();
        for s in shown {
            assert_eq!(s.matches(&text).count(), 1, "{s}");
        }
        assert!(!io.is_not_found() && chain(&io).starts_with("open /store/blobs: "));
    }
}
