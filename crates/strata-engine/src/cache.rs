//! Build cache keys and records.
//!
//! A step's key is `H(parent key, step definition, input digests)`: the
//! parent key chains every earlier step of the stage back to its base image
//! ID; the definition is the resolved instruction (expanded command, env,
//! build args in scope, user, workdir, shell...); inputs are content digests
//! (COPY sources, the `--from` stage's final key or image ID). Keys are
//! hashed from canonical JSON, so adding a field changes every key (bump
//! `KEY_VERSION` when the meaning of a field changes).
//!
//! A record holds the stage's whole state after the step (config document
//! and layer list), so a hit replaces the state without reading anything
//! else.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use strata_oci::ImageConfig;

/// Bumped when the key derivation changes meaning, or when what a step
/// produces for the same key changes (2: COPY's last source wins, created
/// directories take --chmod/--chown, sockets become stubs, base configs
/// drop Docker's comment, proxy args leave RUN's key), so that entries
/// recorded by an older strata are not reused with the old results.
pub(crate) const KEY_VERSION: u32 = 2;

/// A cache key: `sha256:` + hex.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct CacheKey(pub String);

impl CacheKey {
    /// The key of a step: its parent's key and its definition (any JSON).
    pub(crate) fn derive(parent: Option<&CacheKey>, definition: &serde_json::Value) -> CacheKey {
        let doc = serde_json::json!({
            "v": KEY_VERSION,
            "parent": parent.map(|k| k.0.as_str()),
            "def": definition,
        });
        let bytes = serde_json::to_vec(&doc).expect("json");
        CacheKey(format!("sha256:{}", hex::encode(Sha256::digest(bytes))))
    }

    /// The root of a stage's key chain: its base (an image ID, another
    /// stage's final key, or scratch) and platform.
    pub(crate) fn base(base: &str, platform: &str) -> CacheKey {
        CacheKey::derive(
            None,
            &serde_json::json!({ "base": base, "platform": platform }),
        )
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One layer of an image, as the engine tracks it: the store's record
/// (blob digest, diff ID, sizes, media type), kept in cache records in the
/// same JSON form.
pub use strata_store::LayerRecord as LayerRef;

/// What a cache hit restores: the stage's state after the step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StepRecord {
    #[serde(with = "crate::config_json::record")]
    /// The stage's config after the step.
    pub config: ImageConfig,
    pub layers: Vec<LayerRef>,
    /// Whether a CMD was set earlier in this stage (ENTRYPOINT's reset rule
    /// depends on it).
    #[serde(default)]
    pub cmd_set: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_chain_and_differ() {
        let base = CacheKey::base("sha256:abc", "linux/amd64");
        let a = CacheKey::derive(Some(&base), &serde_json::json!({"run": "echo a"}));
        let b = CacheKey::derive(Some(&base), &serde_json::json!({"run": "echo b"}));
        let a2 = CacheKey::derive(Some(&base), &serde_json::json!({"run": "echo a"}));
        assert_ne!(a, b);
        assert_eq!(a, a2);
        assert!(a.as_str().starts_with("sha256:"));
        let other_base = CacheKey::base("sha256:def", "linux/amd64");
        assert_ne!(
            a,
            CacheKey::derive(Some(&other_base), &serde_json::json!({"run": "echo a"}))
        );
    }
}
