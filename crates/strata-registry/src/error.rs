//! The registry client's error type. Every variant names the registry (and
//! the repository or blob) it is about, and what the user can do.

use strata_oci::Digest;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{registry}: unauthorized: {detail} (log in with `strata login {registry}`, or check the credentials)")]
    Unauthorized { registry: String, detail: String },
    #[error("{registry}: access denied to {what}: {detail}")]
    Denied {
        registry: String,
        what: String,
        detail: String,
    },
    #[error("{registry}: {what} not found{detail}")]
    NotFound {
        registry: String,
        what: String,
        detail: String,
    },
    #[error("{registry}: {method} {url}: HTTP {status}: {detail}")]
    Http {
        registry: String,
        method: &'static str,
        url: String,
        status: u16,
        detail: String,
    },
    #[error("{registry}: {method} {url}: {source} (is the registry running and reachable?)")]
    Transport {
        registry: String,
        method: &'static str,
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },
    #[error("{registry}: reading {what}: {source}")]
    Read {
        registry: String,
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{registry}: {what} does not match its digest: expected {expected}, got {actual} ({size} bytes); nothing was stored")]
    DigestMismatch {
        registry: String,
        what: String,
        expected: Digest,
        actual: Digest,
        size: u64,
    },
    #[error("{registry}: {what}: the registry sent {got} bytes, the descriptor says {expected}")]
    SizeMismatch {
        registry: String,
        what: String,
        expected: u64,
        got: u64,
    },
    #[error("{registry}: {what}: {why}")]
    Protocol {
        registry: String,
        what: String,
        why: String,
    },
    #[error("no manifest for platform {wanted} in {reference} (available: {available})")]
    NoPlatform {
        reference: String,
        wanted: String,
        available: String,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("credentials: {0}")]
    Credentials(String),
    #[error("store: {0}")]
    Store(#[from] strata_store::StoreError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn protocol(
        registry: &str,
        what: impl Into<String>,
        why: impl Into<String>,
    ) -> Error {
        Error::Protocol {
            registry: registry.to_string(),
            what: what.into(),
            why: why.into(),
        }
    }

    /// True for failures a retry may cure: 5xx, 429, broken connections.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Http { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            Error::Transport { .. } | Error::Read { .. } => true,
            Error::SizeMismatch { got, expected, .. } => got < expected,
            _ => false,
        }
    }
}
