//! strata-oci: the OCI and Docker image formats. Digests, descriptors,
//! manifests, indexes, image configs (with Docker's extra fields), image
//! references normalised as Docker does, and the docker-archive and
//! OCI-layout codecs. Anything that is hashed keeps its raw bytes.
//!
//! It depends on nothing else of strata's and never knows about a store.

pub mod archive;
pub mod config;
pub mod descriptor;
pub mod digest;
pub mod duration;
pub mod error;
pub mod manifest;
pub mod media_types;
pub mod raw;
pub mod reference;
pub mod timefmt;

pub use config::{chain_ids, Healthcheck, History, ImageConfig, RootFs, RuntimeConfig};
pub use descriptor::{annotations, Descriptor, Platform, PlatformError};
pub use digest::{Digest, DigestError, DigestWriter};
pub use duration::{format_go_duration, parse_go_duration};
pub use error::Error;
pub use manifest::{ImageIndex, ImageManifest};
pub use raw::{to_go_json, CanonicalJson, Raw};
pub use reference::{Reference, ReferenceError};
pub use timefmt::{rfc3339_fixed_nanos, rfc3339_nano, rfc3339_unix};

pub use archive::{
    read_archive, read_oci_layout_dir, write_docker_archive, write_oci_archive,
    write_oci_archive_with_indexes, write_oci_layout_dir, ArchiveContents, ArchiveImage, BlobSink,
    BlobSource, ImageToSave, IndexToSave,
};
