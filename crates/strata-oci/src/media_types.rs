//! Media type strings for OCI and Docker (v2 schema 2) manifests, indexes,
//! configs and layers, with small helpers to classify them.

/// An OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// An OCI image index (multi-platform).
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// An OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// An uncompressed OCI layer.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// A gzip-compressed OCI layer.
pub const OCI_LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// A zstd-compressed OCI layer.
pub const OCI_LAYER_TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// An uncompressed OCI non-distributable layer (deprecated by the spec).
pub const OCI_LAYER_NONDIST_TAR: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
/// A gzip-compressed OCI non-distributable layer (deprecated by the spec).
pub const OCI_LAYER_NONDIST_TAR_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
/// A zstd-compressed OCI non-distributable layer (deprecated by the spec).
pub const OCI_LAYER_NONDIST_TAR_ZSTD: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
/// The OCI empty descriptor's `{}` blob.
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// A Docker v2 schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// A Docker manifest list (multi-platform).
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// A Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker's uncompressed layer (what legacy `docker save` archives hold).
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// A gzip-compressed Docker layer.
pub const DOCKER_LAYER_TAR_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// A zstd-compressed Docker layer.
pub const DOCKER_LAYER_TAR_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";
/// A gzip-compressed Docker foreign layer (fetched from its URLs, not the registry).
pub const DOCKER_FOREIGN_LAYER_TAR_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
/// An uncompressed Docker foreign layer.
pub const DOCKER_FOREIGN_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar";

/// How a layer blob is compressed, as its media type says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// An uncompressed tar.
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

impl Compression {
    /// Sniffs the first bytes of a blob: gzip `1f 8b`, zstd `28 b5 2f fd`.
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// True for an image manifest (OCI or Docker v2 schema 2).
pub fn is_manifest(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

/// True for an OCI index or a Docker manifest list.
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// True for any layer media type we know (OCI, Docker, foreign, nondistributable).
pub fn is_layer(media_type: &str) -> bool {
    layer_compression(media_type).is_some()
}

/// True for layers that registries need not hold (Docker foreign, OCI nondistributable).
pub fn is_foreign_layer(media_type: &str) -> bool {
    matches!(
        media_type,
        DOCKER_FOREIGN_LAYER_TAR
            | DOCKER_FOREIGN_LAYER_TAR_GZIP
            | OCI_LAYER_NONDIST_TAR
            | OCI_LAYER_NONDIST_TAR_GZIP
            | OCI_LAYER_NONDIST_TAR_ZSTD
    )
}

/// The compression a layer media type names, `None` if it is not a layer type.
pub fn layer_compression(media_type: &str) -> Option<Compression> {
    match media_type {
        OCI_LAYER_TAR | OCI_LAYER_NONDIST_TAR | DOCKER_LAYER_TAR | DOCKER_FOREIGN_LAYER_TAR => {
            Some(Compression::None)
        }
        OCI_LAYER_TAR_GZIP
        | OCI_LAYER_NONDIST_TAR_GZIP
        | DOCKER_LAYER_TAR_GZIP
        | DOCKER_FOREIGN_LAYER_TAR_GZIP => Some(Compression::Gzip),
        OCI_LAYER_TAR_ZSTD | OCI_LAYER_NONDIST_TAR_ZSTD | DOCKER_LAYER_TAR_ZSTD => {
            Some(Compression::Zstd)
        }
        _ => None,
    }
}

/// The Docker layer media type for a compression.
pub fn docker_layer(c: Compression) -> &'static str {
    match c {
        Compression::None => DOCKER_LAYER_TAR,
        Compression::Gzip => DOCKER_LAYER_TAR_GZIP,
        Compression::Zstd => DOCKER_LAYER_TAR_ZSTD,
    }
}

/// The OCI layer media type for a compression.
pub fn oci_layer(c: Compression) -> &'static str {
    match c {
        Compression::None => OCI_LAYER_TAR,
        Compression::Gzip => OCI_LAYER_TAR_GZIP,
        Compression::Zstd => OCI_LAYER_TAR_ZSTD,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies() {
        assert!(is_manifest(DOCKER_MANIFEST) && is_manifest(OCI_MANIFEST));
        assert!(is_index(DOCKER_MANIFEST_LIST) && !is_index(OCI_MANIFEST));
        assert_eq!(
            layer_compression(DOCKER_LAYER_TAR_GZIP),
            Some(Compression::Gzip)
        );
        assert!(is_foreign_layer(DOCKER_FOREIGN_LAYER_TAR_GZIP));
        assert_eq!(layer_compression(OCI_CONFIG), None);
        assert_eq!(Compression::sniff(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(Compression::sniff(b"etc/"), Compression::None);
    }
}
