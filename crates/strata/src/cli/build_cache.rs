//! `build --cache-to` / `--cache-from`: the build cache shared through a
//! registry (`type=registry,ref=REF`) or a directory (`type=local,dest=DIR`
//! / `src=DIR`), BuildKit's flag syntax.

use std::path::PathBuf;

use anyhow::Context as _;
use strata_oci::Reference;
use strata_registry::{Client, ClientOptions};
use strata_store::Store;

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
    Registry(Reference),
    Local(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSpec {
    pub location: CacheLocation,
    pub mode: CacheMode,
}

impl CacheSpec {
    /// Parses `type=registry,ref=REF[,mode=min|max]` or
    /// `type=local,dest=DIR|src=DIR[,mode=...]`; `flag` names the option
    /// in errors. A bare `REF` means `type=registry,ref=REF`, as in BuildKit.
    pub fn parse(flag: &str, s: &str) -> anyhow::Result<CacheSpec> {
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
                Some(("mode", v)) => anyhow::bail!("{flag} {s}: mode={v}: use mode=min or mode=max"),
                // BuildKit options strata accepts and does not need.
                Some(("compression" | "oci-mediatype" | "ignore-error" | "image-manifest", _)) => {}
                _ => anyhow::bail!(
                    "{flag} {s}: unknown option {kv:?} (expected type=registry,ref=REF or type=local,dest=DIR|src=DIR, and mode=min|max)"
                ),
            }
        }
        let location = match (kind.as_deref(), reference, dir) {
            (Some("registry") | None, Some(r), None) => {
                CacheLocation::Registry(parse_ref(flag, &r)?)
            }
            (Some("local"), None, Some(d)) => CacheLocation::Local(d),
            (Some("registry"), _, _) => anyhow::bail!("{flag} {s}: type=registry needs ref=REF"),
            (Some("local"), _, _) => anyhow::bail!(
                "{flag} {s}: type=local needs {}=DIR",
                if flag == "--cache-to" { "dest" } else { "src" }
            ),
            (Some(t), _, _) => {
                anyhow::bail!("{flag} {s}: unsupported cache type {t:?} (use registry or local)")
            }
            (None, _, _) => anyhow::bail!("{flag} {s}: type= is required"),
        };
        Ok(CacheSpec { location, mode })
    }

    /// Where the cache is, for messages.
    fn where_(&self) -> String {
        match &self.location {
            CacheLocation::Registry(r) => r.to_string(),
            CacheLocation::Local(d) => d.display().to_string(),
        }
    }
}

fn parse_ref(flag: &str, r: &str) -> anyhow::Result<Reference> {
    Reference::parse(r).with_context(|| format!("{flag}: invalid reference {r:?}"))
}

fn client(reference: &Reference, opts: &ClientOptions) -> anyhow::Result<Client> {
    Client::new(reference.registry(), opts)
        .with_context(|| format!("connect to {}", reference.registry()))
}

/// Imports every `--cache-from` into the store. A cache that cannot be read
/// is a warning, not a failure (BuildKit's behaviour): the build just runs.
pub fn import(store: &Store, specs: &[CacheSpec], opts: &ClientOptions, quiet: bool) {
    for spec in specs {
        let result = match &spec.location {
            CacheLocation::Registry(r) => client(r, opts).and_then(|c| {
                strata_registry::cache::import_from_registry(&c, store, r)
                    .with_context(|| format!("import the build cache {r}"))
            }),
            CacheLocation::Local(d) => strata_registry::cache::import_from_dir(store, d)
                .with_context(|| format!("import the build cache from {}", d.display())),
        };
        match result {
            Ok(n) if !quiet => eprintln!("imported {n} build cache entries from {}", spec.where_()),
            Ok(_) => {}
            Err(e) => eprintln!(
                "warning: --cache-from {}: {e:#}; building without it",
                spec.where_()
            ),
        }
    }
}

/// Exports the keys the build used to every `--cache-to`.
pub fn export(
    store: &Store,
    specs: &[CacheSpec],
    out: &strata_engine::BuildOutput,
    opts: &ClientOptions,
    quiet: bool,
) -> anyhow::Result<()> {
    for spec in specs {
        let keys = match spec.mode {
            CacheMode::Min => &out.target_cache_keys,
            CacheMode::Max => &out.all_cache_keys,
        };
        let digest = match &spec.location {
            CacheLocation::Registry(r) => {
                let c = client(r, opts)?;
                strata_registry::cache::export_to_registry(&c, store, r, keys)
                    .with_context(|| format!("--cache-to: export the build cache to {r}"))?
            }
            CacheLocation::Local(d) => strata_registry::cache::export_to_dir(store, d, keys)
                .with_context(|| {
                    format!("--cache-to: export the build cache to {}", d.display())
                })?,
        };
        if !quiet {
            eprintln!(
                "exported {} build cache entries to {} ({digest})",
                keys.len(),
                spec.where_()
            );
        }
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
            assert!(e.contains("--cache-to"), "{bad}: {e}");
        }
    }
}
