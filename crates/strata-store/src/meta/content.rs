//! Layer content sizes: the bytes of a layer's files as Docker counts them
//! (a regular file's size, a symlink's target length, a hard link and a
//! directory nothing), keyed by diff ID. Recorded once per layer, so
//! `image ls` and `history` never read a layer to show its size.

use rusqlite::{params, OptionalExtension};
use strata_oci::Digest;

use super::Meta;
use crate::error::Result;

/// Created on every open (`IF NOT EXISTS`): an older binary ignores it and
/// a store without it simply computes the sizes again.
pub(crate) const CONTENT_SIZES: &str = "
CREATE TABLE IF NOT EXISTS layer_content (
    diff_id TEXT PRIMARY KEY,            -- sha256 of the uncompressed tar
    size INTEGER NOT NULL                -- file bytes, as Docker counts them
);
";

impl Meta {
    /// The recorded content size of the layer with `diff_id`.
    pub fn content_size(&self, diff_id: &Digest) -> Result<Option<u64>> {
        self.with_conn("read a layer content size", |c| {
            c.query_row(
                "SELECT size FROM layer_content WHERE diff_id = ?1",
                [diff_id.to_string()],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map(|o| o.map(|n| n as u64))
        })
    }

    /// Records the content size of the layer with `diff_id`.
    pub fn put_content_size(&self, diff_id: &Digest, size: u64) -> Result<()> {
        self.write("record a layer content size", |tx| {
            tx.execute(
                "INSERT OR REPLACE INTO layer_content (diff_id, size) VALUES (?1, ?2)",
                params![diff_id.to_string(), size as i64],
            )?;
            Ok(())
        })
    }
}
