//! Content descriptors and platforms, as OCI image-spec defines them (Docker
//! v2 schema 2 uses the same JSON). Unknown fields round-trip in `extra`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

/// Points at a blob: its media type, digest and size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Descriptor {
    /// The media type of the referenced content.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// The content's digest.
    pub digest: Digest,
    /// The content's size in bytes.
    pub size: u64,
    /// Where else the content can be fetched (foreign layers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    /// Free-form annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// The content itself, base64 (embedded small blobs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// The platform of the referenced manifest (in an index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// The artifact type of the referenced manifest (in an index).
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
    /// Fields this model does not name, kept for the round trip.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Descriptor {
    /// A descriptor with only media type, digest and size.
    pub fn new(media_type: impl Into<String>, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            digest,
            size,
            urls: None,
            annotations: None,
            data: None,
            platform: None,
            artifact_type: None,
            extra: Default::default(),
        }
    }

    /// One annotation's value.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }
}

/// The platform an image runs on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// The CPU architecture (`amd64`, `arm64`, ...).
    pub architecture: String,
    /// The operating system (`linux`).
    pub os: String,
    /// The OS version (`os.version`, Windows images).
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    /// Required OS features (`os.features`).
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    /// The CPU variant (`v7`, `v8`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Fields this model does not name, kept for the round trip.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A platform string that is not `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid platform {input:?}: expected os/arch[/variant], e.g. linux/amd64, linux/arm64 or linux/arm/v7")]
pub struct PlatformError {
    /// The text given.
    pub input: String,
}

impl Platform {
    /// A platform from its parts, without normalizing them.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            architecture: architecture.to_string(),
            os: os.to_string(),
            os_version: None,
            os_features: None,
            variant: variant.map(str::to_string),
            extra: Default::default(),
        }
    }

    /// linux/amd64.
    pub fn linux_amd64() -> Platform {
        Platform::new("linux", "amd64", None)
    }

    /// Parses `os/arch[/variant]` (or a bare `arch`, taken as linux) and
    /// normalizes it as containerd's `platforms` package does: `aarch64` →
    /// `arm64` (its `v8` variant dropped), `x86_64`/`x86-64` → `amd64`,
    /// `armhf` → `arm/v7`, `armel` → `arm/v6`, `arm` → `arm/v7`,
    /// `i386`/`i686` → `386`; lower-cased.
    pub fn parse(s: &str) -> Result<Platform, PlatformError> {
        let lower = s.trim().to_ascii_lowercase();
        let parts: Vec<&str> = lower.split('/').collect();
        let bad = || PlatformError {
            input: s.to_string(),
        };
        let (os, arch, variant) = match parts.as_slice() {
            // A bare architecture means linux (a bare OS is refused).
            [arch] if KNOWN_ARCHES.contains(arch) => ("linux", *arch, None),
            [os, arch] if !os.is_empty() && !arch.is_empty() => (*os, *arch, None),
            [os, arch, v] if !os.is_empty() && !arch.is_empty() && !v.is_empty() => {
                (*os, *arch, Some(*v))
            }
            _ => return Err(bad()),
        };
        if !(os
            .chars()
            .chain(arch.chars())
            .chain(variant.unwrap_or("").chars()))
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        {
            return Err(bad());
        }
        let os = if os == "macos" { "darwin" } else { os };
        let (arch, variant) = normalize_arch(arch, variant);
        Ok(Platform::new(os, &arch, variant.as_deref()))
    }

    /// This platform, normalized (see [`Platform::parse`]).
    pub fn normalized(&self) -> Platform {
        let (arch, variant) = normalize_arch(
            &self.architecture.to_ascii_lowercase(),
            self.variant.as_deref(),
        );
        Platform {
            os: self.os.to_ascii_lowercase(),
            architecture: arch,
            variant,
            ..self.clone()
        }
    }

    /// The platform of this process: linux and the architecture it was
    /// compiled for.
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        let variant = (arch == "arm").then_some("v7");
        Platform::new("linux", arch, variant)
    }

    /// Whether `other` names the same platform (after normalizing both; a
    /// missing variant matches the architecture's default one).
    pub fn matches(&self, other: &Platform) -> bool {
        let a = self.normalized();
        let b = other.normalized();
        a.os == b.os && a.architecture == b.architecture && a.variant == b.variant
    }
}

/// Architectures `Platform::parse` takes alone (as linux).
const KNOWN_ARCHES: &[&str] = &[
    "amd64", "x86_64", "x86-64", "arm64", "aarch64", "arm", "armhf", "armel", "386", "i386",
    "i686", "ppc64le", "ppc64", "s390x", "riscv64", "mips64le", "mips64", "loong64",
];

/// containerd's architecture/variant normalization.
fn normalize_arch(arch: &str, variant: Option<&str>) -> (String, Option<String>) {
    let variant = variant.map(str::to_ascii_lowercase);
    match arch {
        "i386" | "i486" | "i586" | "i686" | "x86" => ("386".into(), None),
        "x86_64" | "x86-64" | "amd64" => (
            "amd64".into(),
            // amd64/v1 is the default and dropped.
            variant.filter(|v| v != "v1"),
        ),
        "aarch64" | "arm64" => ("arm64".into(), variant.filter(|v| v != "8" && v != "v8")),
        "armhf" => ("arm".into(), Some("v7".into())),
        "armel" => ("arm".into(), Some("v6".into())),
        "arm" => {
            let v = match variant.as_deref() {
                None | Some("7") | Some("v7") => "v7".to_string(),
                Some("5") | Some("6") | Some("8") => format!("v{}", variant.unwrap()),
                Some(v) => v.to_string(),
            };
            ("arm".into(), Some(v))
        }
        other => (other.to_string(), variant),
    }
}

impl std::fmt::Display for Platform {
    /// `os/arch[/variant]`, as Docker's `--platform` flag spells it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// Annotation keys the archive codecs read and write.
pub mod annotations {
    /// OCI: the reference (often only the tag) an index entry is known by.
    pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
    /// containerd and Docker 25+: the full image name of an index entry.
    pub const CONTAINERD_IMAGE_NAME: &str = "io.containerd.image.name";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_parse_and_normalize_like_containerd() {
        let p = |s: &str| Platform::parse(s).unwrap().to_string();
        assert_eq!(p("linux/amd64"), "linux/amd64");
        assert_eq!(p("linux/x86_64"), "linux/amd64");
        assert_eq!(p("Linux/AARCH64"), "linux/arm64");
        assert_eq!(p("linux/arm64/v8"), "linux/arm64");
        assert_eq!(p("arm64"), "linux/arm64");
        assert_eq!(p("linux/arm"), "linux/arm/v7");
        assert_eq!(p("linux/armhf"), "linux/arm/v7");
        assert_eq!(p("linux/arm/v6"), "linux/arm/v6");
        assert_eq!(p("linux/i386"), "linux/386");
        assert_eq!(p("linux/s390x"), "linux/s390x");
        for bad in [
            "",
            "/",
            "linux",
            "linux/",
            "a/b/c/d",
            "linux/am d64",
            "linux/arm64/",
        ] {
            assert!(Platform::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Platform::new("linux", "arm64", Some("v8"))
            .matches(&Platform::parse("linux/aarch64").unwrap()));
        assert!(!Platform::linux_amd64().matches(&Platform::parse("linux/arm64").unwrap()));
    }

    #[test]
    fn round_trips_unknown_fields() {
        let text = r#"{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0,"platform":{"architecture":"arm64","os":"linux","variant":"v8","x-future":1},"x-other":[1,2]}"#;
        let d: Descriptor = serde_json::from_str(text).unwrap();
        assert_eq!(d.platform.as_ref().unwrap().to_string(), "linux/arm64/v8");
        assert_eq!(serde_json::to_string(&d).unwrap(), text);
    }
}
