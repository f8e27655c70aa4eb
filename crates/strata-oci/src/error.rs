//! The crate's error type. Every variant says what, where (archive entry,
//! digest, path) and, where it helps, what to do.

use std::path::PathBuf;

use crate::digest::{Digest, DigestError};
use crate::reference::ReferenceError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Digest(#[from] DigestError),

    #[error(transparent)]
    Reference(#[from] ReferenceError),

    #[error("invalid JSON in {what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "invalid duration {input:?}: {why} (expected a Go duration such as \"30s\" or \"1m30s\")"
    )]
    Duration { input: String, why: &'static str },

    #[error("archive entry {entry:?} is unsafe: {why}; refusing to read this archive")]
    UnsafeEntry { entry: String, why: &'static str },

    #[error("archive entry {entry:?} appears twice; refusing an ambiguous archive")]
    DuplicateEntry { entry: String },

    #[error("archive entry {entry:?} is larger than {limit} bytes, too large for {what}")]
    TooLarge {
        entry: String,
        what: &'static str,
        limit: u64,
    },

    #[error("{what} {digest} is named by the archive but not present in it (the archive is incomplete; re-export it)")]
    MissingBlob { what: String, digest: Digest },

    #[error("{what} {path:?} is named by manifest.json but not present in the archive (the archive is incomplete; re-export it)")]
    MissingEntry { what: &'static str, path: String },

    #[error("content of {entry:?} has digest {actual}, but {expected} was expected: the archive is corrupt")]
    DigestMismatch {
        entry: String,
        expected: Digest,
        actual: Digest,
    },

    #[error("blob {digest} has {actual} bytes, but {expected} were declared")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },

    #[error("archive entry {entry:?} declares {declared} bytes but the archive ends after {actual}: the archive is truncated")]
    Truncated {
        entry: String,
        declared: u64,
        actual: u64,
    },

    #[error("not an image archive: {why}")]
    NotAnArchive { why: String },

    #[error("invalid image archive: {why}")]
    Invalid { why: String },

    #[error("output directory {path:?} {why}")]
    Output { path: PathBuf, why: &'static str },

    /// An error from outside this crate (a store behind a `BlobSink` or
    /// `BlobSource`), with what was being done.
    #[error("{context}: {source}")]
    External {
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

#[allow(dead_code)]
impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn json(what: impl Into<String>, source: serde_json::Error) -> Error {
        Error::Json {
            what: what.into(),
            source,
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
            source: source.into(),
        }
    }
}
