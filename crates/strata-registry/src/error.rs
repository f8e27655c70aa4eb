//! The registry client's error type. Every variant names the registry (and
//! the repository or blob) it is about, and what the user can do.

use strata_oci::Digest;

/// Every error of the registry client.
///
/// A variant that carries a lower error either is `#[error(transparent)]`
/// or prints that error in its own message and does not also return it
/// from `source()`: callers print the chain (`{:#}`) and must see the
/// cause once, and callers that keep only `to_string()` must still see it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The registry refused the credentials (HTTP 401).
    #[error("{registry}: unauthorized: {detail} (log in with `strata login {registry}`, or check the credentials)")]
    Unauthorized {
        /// The registry host.
        registry: String,
        /// The registry's explanation.
        detail: String,
    },
    /// The registry denied access (HTTP 403).
    #[error("{registry}: access denied to {what}: {detail}")]
    Denied {
        /// The registry host.
        registry: String,
        /// What was asked for.
        what: String,
        /// The registry's explanation.
        detail: String,
    },
    /// The registry has no such repository, manifest or blob (HTTP 404).
    #[error("{registry}: {what} not found{detail}")]
    NotFound {
        /// The registry host.
        registry: String,
        /// What was asked for.
        what: String,
        /// The registry's explanation, with its leading separator (or empty).
        detail: String,
    },
    /// Any other HTTP error status.
    #[error("{registry}: {method} {url}: HTTP {status}: {detail}")]
    Http {
        /// The registry host.
        registry: String,
        /// The HTTP method.
        method: &'static str,
        /// The URL requested.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The registry's explanation.
        detail: String,
    },
    /// The request did not get a response (connection, TLS, timeout).
    #[error("{registry}: {method} {url}: {cause} (is the registry running and reachable?)")]
    Transport {
        /// The registry host.
        registry: String,
        /// The HTTP method.
        method: &'static str,
        /// The URL requested.
        url: String,
        /// The HTTP client's error.
        cause: Box<ureq::Error>,
    },
    /// Reading a response body failed.
    #[error("{registry}: reading {what}: {cause}")]
    Read {
        /// The registry host.
        registry: String,
        /// What was being read.
        what: String,
        /// The cause.
        cause: std::io::Error,
    },
    /// Content that does not match the digest it was asked for by.
    #[error("{registry}: {what} does not match its digest: expected {expected}, got {actual} ({size} bytes); nothing was stored")]
    DigestMismatch {
        /// The registry host.
        registry: String,
        /// What was downloaded.
        what: String,
        /// The digest asked for.
        expected: Digest,
        /// The digest of what arrived.
        actual: Digest,
        /// How many bytes arrived.
        size: u64,
    },
    /// A body whose size is not the descriptor's.
    #[error("{registry}: {what}: the registry sent {got} bytes, the descriptor says {expected}")]
    SizeMismatch {
        /// The registry host.
        registry: String,
        /// What was downloaded.
        what: String,
        /// The descriptor's size.
        expected: u64,
        /// The bytes received.
        got: u64,
    },
    /// A response that breaks the distribution protocol.
    #[error("{registry}: {what}: {why}")]
    Protocol {
        /// The registry host.
        registry: String,
        /// What was being done.
        what: String,
        /// What was wrong with the response.
        why: String,
    },
    /// An index with no manifest for the wanted platform.
    #[error("no manifest for platform {wanted} in {reference} (available: {available})")]
    NoPlatform {
        /// The image reference.
        reference: String,
        /// The platform wanted.
        wanted: String,
        /// The platforms the index has, comma separated.
        available: String,
    },
    /// A request that is not valid (bad reference, bad argument).
    #[error("{0}")]
    Invalid(String),
    /// Credentials could not be read, stored or obtained from a helper.
    #[error("credentials: {0}")]
    Credentials(String),
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] strata_store::StoreError),
    /// A local OCI layout (a cache directory) could not be read.
    #[error("{what}: {cause}")]
    Layout {
        /// What was being read.
        what: String,
        /// The layout reader's error.
        cause: Box<strata_oci::Error>,
    },
    /// Reading an image's records from the local store failed.
    #[error("{what}: {cause}")]
    Transfer {
        /// Which image.
        what: String,
        /// The store's error.
        cause: Box<strata_store::transfer::TransferError>,
    },
    /// A local I/O operation failed.
    #[error("{what}: {cause}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        cause: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            what: what.into(),
            cause: source,
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

#[cfg(test)]
mod tests {
    use super::*;

    use strata_test_support::errors::error_chain as chain;

    #[test]
    fn a_cause_is_printed_once() {
        let denied = || std::io::Error::from_raw_os_error(13);
        let text = denied().to_string();
        let read = Error::Read {
            registry: "r.example".into(),
            what: "blob sha256:ab".into(),
            cause: denied(),
        };
        let store = Error::from(strata_store::StoreError::IoOther {
            what: "write blob".into(),
            cause: denied(),
        });
        let io = Error::io("write /x", denied());
        for e in [read, store, io] {
            let shown = chain(&e);
            assert_eq!(shown.matches(&text).count(), 1, "{shown}");
        }
    }
}
