//! The build cache index: cache key -> an opaque JSON value plus the blobs
//! and images the entry keeps alive (GC roots until the entry is pruned).

use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};
use strata_oci::Digest;

use super::{col_digest, Meta};
use crate::error::Result;
use crate::fsutil::now_secs;

/// One cache entry. `value` is opaque to the store (the engine's JSON).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheRecord {
    /// The cached value, opaque to the store.
    pub value: String,
    /// Blobs this entry needs (e.g. the layer it produced).
    pub blobs: Vec<Digest>,
    /// Images this entry needs.
    pub images: Vec<Digest>,
}

impl Meta {
    /// Looks up a cache entry (and marks it used).
    pub fn cache_get(&self, key: &str) -> Result<Option<CacheRecord>> {
        self.write("read cache entry", |tx| {
            let value: Option<String> = tx
                .query_row("SELECT value FROM cache WHERE key = ?1", [key], |r| {
                    r.get(0)
                })
                .optional()?;
            let Some(value) = value else {
                return Ok(None);
            };
            tx.execute(
                "UPDATE cache SET last_used = ?2 WHERE key = ?1",
                params![key, now_secs()],
            )?;
            let mut blobs = Vec::new();
            let mut images = Vec::new();
            let mut stmt =
                tx.prepare("SELECT kind, ref FROM cache_refs WHERE key = ?1 ORDER BY kind, ref")?;
            let rows =
                stmt.query_map([key], |r| Ok((r.get::<_, String>(0)?, col_digest(r, 1)?)))?;
            for row in rows {
                let (kind, d) = row?;
                match kind.as_str() {
                    "image" => images.push(d),
                    _ => blobs.push(d),
                }
            }
            Ok(Some(CacheRecord {
                value,
                blobs,
                images,
            }))
        })
    }

    /// Stores (or replaces) a cache entry.
    pub fn cache_put(&self, key: &str, rec: &CacheRecord) -> Result<()> {
        self.write("write cache entry", |tx| {
            let now = now_secs();
            tx.execute(
                "INSERT INTO cache (key, value, created, last_used) VALUES (?1, ?2, ?3, ?3)
                 ON CONFLICT(key) DO UPDATE SET value = ?2, last_used = ?3",
                params![key, rec.value, now],
            )?;
            tx.execute("DELETE FROM cache_refs WHERE key = ?1", [key])?;
            for (kind, list) in [("blob", &rec.blobs), ("image", &rec.images)] {
                for d in list {
                    tx.execute(
                        "INSERT OR IGNORE INTO cache_refs (key, kind, ref) VALUES (?1, ?2, ?3)",
                        params![key, kind, d.to_string()],
                    )?;
                }
            }
            Ok(())
        })
    }

    /// Removes one entry; true if it existed.
    pub fn cache_remove(&self, key: &str) -> Result<bool> {
        self.write("remove cache entry", |tx| {
            Ok(tx.execute("DELETE FROM cache WHERE key = ?1", [key])? > 0)
        })
    }

    /// Removes every cache entry; returns how many.
    pub fn cache_clear(&self) -> Result<usize> {
        self.write("clear cache", |tx| {
            let n = tx.execute("DELETE FROM cache", [])?;
            Meta::steps_clear(tx)?;
            Ok(n)
        })
    }

    /// Number of cache entries.
    pub fn cache_len(&self) -> Result<usize> {
        self.with_conn("count cache entries", |c| {
            c.query_row("SELECT COUNT(*) FROM cache", [], |r| r.get::<_, i64>(0))
                .map(|n| n as usize)
        })
    }
}
