//! strata-registry: the OCI distribution client. It owns talking to
//! registries: resolving references to manifests (OCI and Docker schema 2,
//! indexes and manifest lists with platform selection), pulling blobs
//! straight into the store with digest verification, pushing images
//! (existence checks, cross-repository mounts, chunked uploads), auth
//! (anonymous, basic, bearer tokens cached per scope) and Docker's
//! credential configuration (`config.json`, credential helpers).
//!
//! It must never: keep a whole layer in memory, store a blob that does not
//! match its digest, register an image whose layers are not all present and
//! verified, fall back from https to http, or use plain http for a registry
//! that is neither loopback nor named insecure by the user. It does not
//! parse Dockerfiles or run anything; it knows the store only through the
//! store's public API.

pub mod auth;
pub mod cache;
pub mod client;
pub mod credentials;
pub mod error;
pub mod progress;
pub mod pull;
pub mod push;
pub mod transport;
mod wire;
pub mod www_authenticate;

pub use auth::Scope;
pub use client::{Client, ClientOptions};
pub use credentials::{config_key, Credential, CredentialStore};
pub use error::Error;
pub use progress::ProgressMode;
pub use pull::{
    index_platforms, parse_platform, pick_platform, pull, pull_with, PullOptions, PulledImage,
};
pub use push::{push, push_with, PushOptions, PushedImage};
pub use transport::{is_loopback, PlainHttp, INSECURE_ENV};
