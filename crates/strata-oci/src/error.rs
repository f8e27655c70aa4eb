//! The crate's error type. Every variant says what, where (archive entry,
//! digest, path) and, where it helps, what to do.
//!
//! A variant that carries a lower error either is `#[error(transparent)]`
//! or prints that error in its own message and does not also return it
//! from `source()`: callers print the chain (`{:#}`) and must see the
//! cause once, and callers that keep only `to_string()` must still see it.

use std::path::PathBuf;

use crate::digest::{Digest, DigestError};
use crate::reference::ReferenceError;

/// Every error of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A malformed digest.
    #[error(transparent)]
    Digest(#[from] DigestError),

    /// A malformed image reference.
    #[error(transparent)]
    Reference(#[from] ReferenceError),

    /// A malformed platform.
    #[error(transparent)]
    Platform(#[from] crate::descriptor::PlatformError),

    /// A JSON document that does not parse as what it should be.
    #[error("invalid JSON in {what}: {cause}")]
    Json {
        /// Which document (file name or blob).
        what: String,
        /// The parser's error.
        cause: serde_json::Error,
    },

    /// A file system operation failed.
    #[error("{context}: {cause}")]
    Io {
        /// What was being done, naming the path.
        context: String,
        /// The cause.
        cause: std::io::Error,
    },

    /// A duration that is not a Go duration.
    #[error(
        "invalid duration {input:?}: {why} (expected a Go duration such as \"30s\" or \"1m30s\")"
    )]
    Duration {
        /// The text given.
        input: String,
        /// What is wrong with it.
        why: &'static str,
    },

    /// An archive entry that would leave the archive or is otherwise unsafe.
    #[error("archive entry {entry:?} is unsafe: {why}; refusing to read this archive")]
    UnsafeEntry {
        /// The entry's name.
        entry: String,
        /// What is unsafe about it.
        why: &'static str,
    },

    /// An archive entry name that appears twice.
    #[error("archive entry {entry:?} appears twice; refusing an ambiguous archive")]
    DuplicateEntry {
        /// The entry's name.
        entry: String,
    },

    /// An archive entry larger than what is read into memory.
    #[error("archive entry {entry:?} is larger than {limit} bytes, too large for {what}")]
    TooLarge {
        /// The entry's name.
        entry: String,
        /// What the entry was read as.
        what: &'static str,
        /// The limit in bytes.
        limit: u64,
    },

    /// A blob the archive's documents name but the archive lacks.
    #[error("{what} {digest} is named by the archive but not present in it (the archive is incomplete; re-export it)")]
    MissingBlob {
        /// What the blob is (manifest, config, layer).
        what: String,
        /// Its digest.
        digest: Digest,
    },

    /// A file `manifest.json` names but the archive lacks.
    #[error("{what} {path:?} is named by manifest.json but not present in the archive (the archive is incomplete; re-export it)")]
    MissingEntry {
        /// What the file is (config, layer).
        what: &'static str,
        /// Its path in the archive.
        path: String,
    },

    /// Content whose digest is not the one it is named by.
    #[error("content of {entry:?} has digest {actual}, but {expected} was expected: the archive is corrupt")]
    DigestMismatch {
        /// The entry's name.
        entry: String,
        /// The digest it is named by.
        expected: Digest,
        /// The digest of its content.
        actual: Digest,
    },

    /// A blob whose size is not the declared one.
    #[error("blob {digest} has {actual} bytes, but {expected} were declared")]
    SizeMismatch {
        /// The blob.
        digest: Digest,
        /// The declared size.
        expected: u64,
        /// The size read.
        actual: u64,
    },

    /// An archive that ends inside an entry.
    #[error("archive entry {entry:?} declares {declared} bytes but the archive ends after {actual}: the archive is truncated")]
    Truncated {
        /// The entry's name.
        entry: String,
        /// The size its header declares.
        declared: u64,
        /// The bytes present.
        actual: u64,
    },

    /// Input that is no image archive at all.
    #[error("not an image archive: {why}")]
    NotAnArchive {
        /// Why it is not one.
        why: String,
    },

    /// An image archive whose contents are inconsistent.
    #[error("invalid image archive: {why}")]
    Invalid {
        /// What is wrong.
        why: String,
    },

    /// An output directory that cannot be written to.
    #[error("output directory {path:?} {why}")]
    Output {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        why: &'static str,
    },

    /// An error from outside this crate (a store behind a `BlobSink` or
    /// `BlobSource`), with what was being done.
    #[error("{context}: {cause}")]
    External {
        /// What was being done.
        context: String,
        /// The outside error.
        cause: Box<dyn std::error::Error + Send + Sync>,
    },
}

#[allow(dead_code)]
impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            cause: source,
        }
    }

    pub(crate) fn json(what: impl Into<String>, source: serde_json::Error) -> Error {
        Error::Json {
            what: what.into(),
            cause: source,
        }
    }

    pub(crate) fn invalid(why: impl Into<String>) -> Error {
        Error::Invalid { why: why.into() }
    }

    /// Wraps an error from a store or another outside component.
    pub fn external(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Error {
        Error::External {
            context: context.into(),
            cause: source.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use strata_test_support::errors::error_chain as chain;

    #[test]
    fn a_cause_is_printed_once() {
        // EACCES: "Permission denied (os error 13)".
        let denied = || std::io::Error::from_raw_os_error(13);
        let text = denied().to_string();
        let io = Error::io("open blobs/sha256/ab", denied());
        let external = Error::external("writing a blob", Error::io("open x", denied()));
        for e in [io, external] {
            let shown = chain(&e);
            assert_eq!(shown.matches(&text).count(), 1, "{shown}");
        }
        let json = serde_json::from_str::<u8>("{").unwrap_err();
        let json_text = json.to_string();
        let e = Error::json("manifest.json", json);
        assert_eq!(chain(&e).matches(&json_text).count(), 1, "{}", chain(&e));
    }
}
