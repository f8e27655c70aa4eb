//! What a build exchanges with the outside besides its image: the build
//! cache imported before it (`--cache-from`) and exported after it
//! (`--cache-to`), through a registry (`type=registry,ref=REF`) or a
//! directory (`type=local,dest=DIR` / `src=DIR`) in BuildKit's flag
//! syntax, and its `--output`s ([`write_outputs`]).
//!
//! A caller parses the flags with [`CacheSpec::parse`], calls
//! [`import`] before [`crate::build`] and [`export`] and
//! [`write_outputs`] with its [`BuildOutput`]; it only renders the
//! reports these return.

use std::path::PathBuf;

use strata_oci::{Digest, Reference, ReferenceError};
use strata_registry::{Client, ClientOptions};
use strata_store::Store;

use crate::output::OutputSpec;
use crate::BuildOutput;

/// Which keys `--cache-to` exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheMode {
    /// The target stage's steps (BuildKit's default).
    Min,
    /// Every stage's steps, intermediate stages included.
    Max,
}

/// Where a cache goes to or comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheLocation {
    /// A registry repository (`type=registry,ref=REF`).
    Registry(Reference),
    /// A directory (`type=local,dest=DIR` or `src=DIR`).
    Local(PathBuf),
}

/// One `--cache-to` or `--cache-from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSpec {
    /// Where the cache is.
    pub location: CacheLocation,
    /// Which keys go (for `--cache-to`).
    pub mode: CacheMode,
}

/// What is wrong with a cache flag's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecProblem {
    /// `mode=` other than `min` or `max`.
    Mode(String),
    /// An option strata does not know.
    UnknownOption(String),
    /// `type=registry` without `ref=`.
    RegistryNeedsRef,
    /// `type=local` without the directory (`dest=` or `src=`, named).
    LocalNeedsDir(&'static str),
    /// A `type=` other than `registry` or `local`.
    UnsupportedType(String),
    /// No `type=` where one is needed.
    MissingType,
}

impl std::fmt::Display for SpecProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpecProblem::Mode(v) => write!(f, "mode={v}: use mode=min or mode=max"),
            SpecProblem::UnknownOption(kv) => write!(
                f,
                "unknown option {kv:?} (expected type=registry,ref=REF or type=local,dest=DIR|src=DIR, and mode=min|max)"
            ),
            SpecProblem::RegistryNeedsRef => write!(f, "type=registry needs ref=REF"),
            SpecProblem::LocalNeedsDir(key) => write!(f, "type=local needs {key}=DIR"),
            SpecProblem::UnsupportedType(t) => {
                write!(f, "unsupported cache type {t:?} (use registry or local)")
            }
            SpecProblem::MissingType => write!(f, "type= is required"),
        }
    }
}

/// Why a cache could not be parsed, imported or exported.
#[derive(Debug, thiserror::Error)]
pub enum CacheIoError {
    /// The flag's value is not understood.
    #[error("{flag} {spec}: {problem}")]
    Spec {
        /// `--cache-to` or `--cache-from`.
        flag: String,
        /// The value given.
        spec: String,
        /// What is wrong with it.
        problem: SpecProblem,
    },
    /// `ref=` is no image reference.
    #[error("{flag}: invalid reference {reference:?}")]
    Reference {
        /// `--cache-to` or `--cache-from`.
        flag: String,
        /// The reference given.
        reference: String,
        /// Why it does not parse.
        #[source]
        source: ReferenceError,
    },
    /// The registry could not be reached.
    #[error("connect to {registry}")]
    Connect {
        /// The registry host.
        registry: String,
        /// The client's error (boxed: it is large).
        #[source]
        source: Box<strata_registry::error::Error>,
    },
    /// Reading a cache into the store failed.
    #[error("import the build cache {0}")]
    Import(String, #[source] Box<strata_registry::error::Error>),
    /// Writing a cache failed.
    #[error("--cache-to: export the build cache to {0}")]
    Export(String, #[source] Box<strata_registry::error::Error>),
}

impl CacheSpec {
    /// Parses `type=registry,ref=REF[,mode=min|max]` or
    /// `type=local,dest=DIR|src=DIR[,mode=...]`; `flag` names the option
    /// in errors. A bare `REF` means `type=registry,ref=REF`, as in BuildKit.
    pub fn parse(flag: &str, s: &str) -> Result<CacheSpec, CacheIoError> {
        let problem = |problem| CacheIoError::Spec {
            flag: flag.to_string(),
            spec: s.to_string(),
            problem,
        };
        if !s.contains('=') {
            return Ok(CacheSpec {
                location: CacheLocation::Registry(parse_ref(flag, s)?),
                mode: CacheMode::Min,
            });
        }
        let mut kind = None;
        let mut reference = None;
        let mut dir = None;
        let mut mode = CacheMode::Min;
        for kv in s.split(',') {
            match kv.split_once('=') {
                Some(("type", v)) => kind = Some(v.to_string()),
                Some(("ref", v)) => reference = Some(v.to_string()),
                Some(("dest" | "src", v)) => dir = Some(PathBuf::from(v)),
                Some(("mode", "min")) => mode = CacheMode::Min,
                Some(("mode", "max")) => mode = CacheMode::Max,
                Some(("mode", v)) => return Err(problem(SpecProblem::Mode(v.to_string()))),
                // BuildKit options strata accepts and does not need.
                Some(("compression" | "oci-mediatype" | "ignore-error" | "image-manifest", _)) => {}
                _ => return Err(problem(SpecProblem::UnknownOption(kv.to_string()))),
            }
        }
        let location = match (kind.as_deref(), reference, dir) {
            (Some("registry") | None, Some(r), None) => {
                CacheLocation::Registry(parse_ref(flag, &r)?)
            }
            (Some("local"), None, Some(d)) => CacheLocation::Local(d),
            (Some("registry"), _, _) => return Err(problem(SpecProblem::RegistryNeedsRef)),
            (Some("local"), _, _) => {
                let key = if flag == "--cache-to" { "dest" } else { "src" };
                return Err(problem(SpecProblem::LocalNeedsDir(key)));
            }
            (Some(t), _, _) => return Err(problem(SpecProblem::UnsupportedType(t.to_string()))),
            (None, _, _) => return Err(problem(SpecProblem::MissingType)),
        };
        Ok(CacheSpec { location, mode })
    }

    /// Where the cache is, for messages.
    pub fn where_(&self) -> String {
        match &self.location {
            CacheLocation::Registry(r) => r.to_string(),
            CacheLocation::Local(d) => d.display().to_string(),
        }
    }
}

fn parse_ref(flag: &str, r: &str) -> Result<Reference, CacheIoError> {
    Reference::parse(r).map_err(|source| CacheIoError::Reference {
        flag: flag.to_string(),
        reference: r.to_string(),
        source,
    })
}

fn client(reference: &Reference, opts: &ClientOptions) -> Result<Client, CacheIoError> {
    Client::new(reference.registry(), opts).map_err(|source| CacheIoError::Connect {
        registry: reference.registry().to_string(),
        source: Box::new(source),
    })
}

/// Imports one `--cache-from` into the store; returns how many cache
/// entries it registered. BuildKit treats a failure as a warning (the
/// build runs without that cache): the caller decides.
pub fn import(
    store: &Store,
    spec: &CacheSpec,
    opts: &ClientOptions,
) -> Result<usize, CacheIoError> {
    match &spec.location {
        CacheLocation::Registry(r) => {
            let c = client(r, opts)?;
            strata_registry::cache::import_from_registry(&c, store, r)
                .map_err(|e| CacheIoError::Import(r.to_string(), Box::new(e)))
        }
        CacheLocation::Local(d) => strata_registry::cache::import_from_dir(store, d)
            .map_err(|e| CacheIoError::Import(format!("from {}", d.display()), Box::new(e))),
    }
}

/// Exports the keys `out` used (all stages' for [`CacheMode::Max`]) to
/// `spec`; returns how many keys went and the digest of the cache's
/// manifest.
pub fn export(
    store: &Store,
    spec: &CacheSpec,
    out: &BuildOutput,
    opts: &ClientOptions,
) -> Result<(usize, Digest), CacheIoError> {
    let keys = match spec.mode {
        CacheMode::Min => &out.target_cache_keys,
        CacheMode::Max => &out.all_cache_keys,
    };
    let digest = match &spec.location {
        CacheLocation::Registry(r) => {
            let c = client(r, opts)?;
            strata_registry::cache::export_to_registry(&c, store, r, keys)
                .map_err(|e| CacheIoError::Export(r.to_string(), Box::new(e)))?
        }
        CacheLocation::Local(d) => strata_registry::cache::export_to_dir(store, d, keys)
            .map_err(|e| CacheIoError::Export(d.display().to_string(), Box::new(e)))?,
    };
    Ok((keys.len(), digest))
}

/// An `--output` that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct OutputError {
    /// What failed, naming the path.
    pub message: String,
}

/// Writes the build's result to each `--output`: the image, or for a
/// multi-platform build one directory per platform (or the index), as
/// [`crate::output`] describes.
pub fn write_outputs(
    store: &Store,
    out: &BuildOutput,
    specs: &[OutputSpec],
) -> Result<(), OutputError> {
    for spec in specs {
        match &out.index {
            Some((index, images)) => {
                crate::output::export_index(store, index, images, &out.tags, spec)
            }
            None => crate::output::export(store, &out.image_id, &out.tags, spec),
        }
        .map_err(|e| OutputError {
            message: e.to_string(),
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_buildkit_cache_flags() {
        let s = CacheSpec::parse(
            "--cache-to",
            "type=registry,ref=127.0.0.1:5000/c:x,mode=max",
        )
        .unwrap();
        assert_eq!(s.mode, CacheMode::Max);
        assert!(
            matches!(s.location, CacheLocation::Registry(ref r) if r.to_string() == "127.0.0.1:5000/c:x")
        );
        let s = CacheSpec::parse("--cache-from", "type=local,src=/tmp/c").unwrap();
        assert_eq!(s.location, CacheLocation::Local("/tmp/c".into()));
        assert_eq!(s.mode, CacheMode::Min);
        let bare = CacheSpec::parse("--cache-from", "example.com/app:cache").unwrap();
        assert!(matches!(bare.location, CacheLocation::Registry(_)));
        for bad in [
            "type=s3,ref=x",
            "type=local",
            "type=registry",
            "type=local,dest=/x,mode=all",
            "ref=x,color=red",
        ] {
            let e = CacheSpec::parse("--cache-to", bad).unwrap_err().to_string();
            assert!(e.starts_with(&format!("--cache-to {bad}: ")), "{bad}: {e}");
        }
    }

    #[test]
    fn local_cache_names_the_missing_key_per_flag() {
        let e = |flag| {
            CacheSpec::parse(flag, "type=local")
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            e("--cache-to"),
            "--cache-to type=local: type=local needs dest=DIR"
        );
        assert_eq!(
            e("--cache-from"),
            "--cache-from type=local: type=local needs src=DIR"
        );
    }
}
