//! strata-oci: the OCI and Docker image formats. Digests, descriptors,
//! manifests, indexes, image configs (with Docker's extra fields), image
//! references normalised as Docker does, and the docker-archive and
//! OCI-layout codecs. Anything that is hashed keeps its raw bytes.
//!
//! It depends on nothing else of strata's and never knows about a store.

pub mod digest;

pub use digest::{Digest, DigestError, DigestWriter};
