//! Images, tags, image -> blob references and the layer table.
//!
//! The store does not parse manifests: the caller registers an image with
//! the digests it refers to, and GC keeps those blobs while the image exists.

use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};
use strata_oci::Digest;

use super::{col_digest, Meta};
use crate::error::{Result, StoreError};
use crate::fsutil::now_secs;

/// One layer of an image (also a row of the layer table).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// Digest of the (compressed) blob.
    pub digest: Digest,
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// Compressed (blob) size.
    pub size: u64,
    /// Size of the uncompressed tar.
    pub uncompressed_size: u64,
    /// The blob's media type (compression).
    pub media_type: String,
}

/// What the caller registers for an image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The image ID: the config digest.
    pub id: Digest,
    /// Digest of the manifest blob.
    pub manifest_digest: Digest,
    /// Media type of the manifest (OCI or Docker).
    pub manifest_media_type: String,
    /// Digest of the config blob.
    pub config_digest: Digest,
    /// Layers, base first.
    pub layers: Vec<LayerRecord>,
    /// The config's `created` (RFC 3339), empty when unknown.
    pub created: String,
}

/// A multi-platform tag: the index blob's digest and its (platform,
/// image) entries in order.
pub(super) type IndexTag = (Digest, Vec<(String, Digest)>);

/// An image as stored, with its tags.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageInfo {
    /// The image ID: the config digest.
    pub id: Digest,
    /// Digest of the manifest blob.
    pub manifest_digest: Digest,
    /// Media type of the manifest (OCI or Docker).
    pub manifest_media_type: String,
    /// Digest of the config blob.
    pub config_digest: Digest,
    /// Layers, base first.
    pub layers: Vec<LayerRecord>,
    /// The config's `created` (RFC 3339), empty when unknown.
    pub created: String,
    /// Sum of the uncompressed layer sizes (what `image ls` shows).
    pub size: u64,
    /// Full references, sorted.
    pub tags: Vec<String>,
}

impl Meta {
    /// Registers (or re-registers) an image and the layer-table rows of its
    /// layers. The blobs should already be in the store.
    pub fn put_image(&self, rec: &ImageRecord) -> Result<()> {
        if rec.id != rec.config_digest {
            return Err(StoreError::Invalid(format!(
                "image id {} must be its config digest {}",
                rec.id, rec.config_digest
            )));
        }
        let size: u64 = rec.layers.iter().map(|l| l.uncompressed_size).sum();
        self.write("register image", |tx| {
            tx.execute(
                "INSERT INTO images (id, manifest_digest, manifest_media_type, config_digest,
                     created, size, registered)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT(id) DO UPDATE SET manifest_digest = ?2,
                     manifest_media_type = ?3, config_digest = ?4, created = ?5, size = ?6",
                params![
                    rec.id.to_string(),
                    rec.manifest_digest.to_string(),
                    rec.manifest_media_type,
                    rec.config_digest.to_string(),
                    rec.created,
                    size as i64,
                    now_secs()
                ],
            )?;
            tx.execute(
                "DELETE FROM image_layers WHERE image_id = ?1",
                [rec.id.to_string()],
            )?;
            for (i, l) in rec.layers.iter().enumerate() {
                tx.execute(
                    "INSERT INTO image_layers (image_id, position, digest, diff_id, size,
                         uncompressed_size, media_type) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        rec.id.to_string(),
                        i as i64,
                        l.digest.to_string(),
                        l.diff_id.to_string(),
                        l.size as i64,
                        l.uncompressed_size as i64,
                        l.media_type
                    ],
                )?;
                put_layer_tx(tx, l)?;
            }
            Ok(())
        })
    }

    /// The image with this exact ID.
    pub fn image(&self, id: &Digest) -> Result<Option<ImageInfo>> {
        self.read("read image", |tx| load_image(tx, &id.to_string()))
    }

    /// All images, newest registration first.
    pub fn images(&self) -> Result<Vec<ImageInfo>> {
        self.read("list images", |tx| {
            let ids: Vec<String> = tx
                .prepare("SELECT id FROM images ORDER BY registered DESC, id")?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(img) = load_image(tx, &id)? {
                    out.push(img);
                }
            }
            Ok(out)
        })
    }

    /// Resolves an image ID or a unique prefix of one (with or without
    /// `sha256:`, at least 4 hex digits) as `docker` does for `IMAGE`.
    pub fn find_image_by_id_prefix(&self, prefix: &str) -> Result<Option<Digest>> {
        let hex = prefix.strip_prefix("sha256:").unwrap_or(prefix);
        if hex.len() < 4 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let pattern = format!("sha256:{}%", hex.to_ascii_lowercase());
        let ids: Vec<Digest> = self.read("find image by prefix", |tx| {
            tx.prepare("SELECT id FROM images WHERE id LIKE ?1 LIMIT 3")?
                .query_map([pattern], |r| col_digest(r, 0))?
                .collect()
        })?;
        match ids.len() {
            0 => Ok(None),
            1 => Ok(ids.into_iter().next()),
            n => Err(StoreError::AmbiguousImage {
                prefix: prefix.to_string(),
                count: n,
            }),
        }
    }

    /// Removes an image record (its blobs go at the next GC). A tagged image
    /// is refused unless `force`, which also removes its tags. Returns the
    /// tags removed; `ImageNotFound` when absent.
    pub fn remove_image(&self, id: &Digest, force: bool) -> Result<Vec<String>> {
        let tags = self.tags_of(id)?;
        if !tags.is_empty() && !force {
            return Err(StoreError::ImageTagged {
                id: id.clone(),
                tags: tags.join(", "),
            });
        }
        let n = self.write("remove image", |tx| {
            tx.execute("DELETE FROM tags WHERE image_id = ?1", [id.to_string()])?;
            tx.execute("DELETE FROM images WHERE id = ?1", [id.to_string()])
        })?;
        if n == 0 {
            return Err(StoreError::ImageNotFound(id.to_string()));
        }
        Ok(tags)
    }

    /// Points `reference` (a full, normalised reference string) at `image`,
    /// moving the tag if it pointed elsewhere. Returns the previous image.
    pub fn tag(&self, reference: &str, image: &Digest) -> Result<Option<Digest>> {
        if reference.is_empty() {
            return Err(StoreError::Invalid("empty tag".into()));
        }
        self.write("tag image", |tx| {
            if !image_exists(tx, image)? {
                return Ok(Err(StoreError::ImageNotFound(image.to_string())));
            }
            let prev = tx
                .query_row(
                    "SELECT image_id FROM tags WHERE name = ?1",
                    [reference],
                    |r| col_digest(r, 0),
                )
                .optional()?;
            tx.execute(
                "INSERT INTO tags (name, image_id) VALUES (?1, ?2)
                 ON CONFLICT(name) DO UPDATE SET image_id = ?2",
                params![reference, image.to_string()],
            )?;
            Ok(Ok(prev))
        })?
    }

    /// Points every one of `references` at `image` in one transaction (a
    /// load may tag one image with thousands of names: one transaction
    /// each was thousands of fsyncs). Returns, in order, the image each
    /// reference pointed at before.
    pub fn tag_all(&self, references: &[String], image: &Digest) -> Result<Vec<Option<Digest>>> {
        if references.iter().any(|r| r.is_empty()) {
            return Err(StoreError::Invalid("empty tag".into()));
        }
        self.write("tag image", |tx| {
            if !image_exists(tx, image)? {
                return Ok(Err(StoreError::ImageNotFound(image.to_string())));
            }
            let mut prev_of = tx.prepare("SELECT image_id FROM tags WHERE name = ?1")?;
            let mut put = tx.prepare(
                "INSERT INTO tags (name, image_id) VALUES (?1, ?2)
                 ON CONFLICT(name) DO UPDATE SET image_id = ?2",
            )?;
            let id = image.to_string();
            let mut out = Vec::with_capacity(references.len());
            for r in references {
                out.push(
                    prev_of
                        .query_row([r], |row| col_digest(row, 0))
                        .optional()?,
                );
                put.execute(params![r, id])?;
            }
            Ok(Ok(out))
        })?
    }

    /// Removes these tags in one transaction.
    pub fn untag_all(&self, references: &[String]) -> Result<()> {
        self.write("untag", |tx| {
            let mut del = tx.prepare("DELETE FROM tags WHERE name = ?1")?;
            for r in references {
                del.execute([r])?;
            }
            Ok(())
        })
    }

    /// Records that `image` is `name` (`REPOSITORY@DIGEST`) in a registry.
    pub fn add_repo_digest(&self, name: &str, image: &Digest) -> Result<()> {
        self.write("record repo digest", |tx| {
            tx.execute(
                "INSERT OR IGNORE INTO repo_digests (name, image_id)
                 SELECT ?1, id FROM images WHERE id = ?2",
                params![name, image.to_string()],
            )
        })?;
        Ok(())
    }

    /// The image recorded under `REPOSITORY@DIGEST`.
    pub fn resolve_repo_digest(&self, name: &str) -> Result<Option<Digest>> {
        self.with_conn("resolve repo digest", |c| {
            c.query_row(
                "SELECT image_id FROM repo_digests WHERE name = ?1",
                [name],
                |r| col_digest(r, 0),
            )
            .optional()
        })
    }

    /// The `REPOSITORY@DIGEST` names of one image, sorted.
    pub fn repo_digests_of(&self, image: &Digest) -> Result<Vec<String>> {
        self.with_conn("list repo digests", |c| {
            c.prepare("SELECT name FROM repo_digests WHERE image_id = ?1 ORDER BY name")?
                .query_map([image.to_string()], |r| r.get(0))?
                .collect()
        })
    }

    /// Removes a tag; returns the image it pointed at.
    pub fn untag(&self, reference: &str) -> Result<Option<Digest>> {
        self.write("untag", |tx| {
            let prev = tx
                .query_row(
                    "SELECT image_id FROM tags WHERE name = ?1",
                    [reference],
                    |r| col_digest(r, 0),
                )
                .optional()?;
            tx.execute("DELETE FROM tags WHERE name = ?1", [reference])?;
            Ok(prev)
        })
    }

    /// Tags `name` with a multi-platform index: `tags` points at
    /// `default_image`, and each `(platform, image)` entry (in index order)
    /// is recorded with the index blob's digest. The images must exist.
    pub fn put_index_tag(
        &self,
        name: &str,
        index_digest: &Digest,
        entries: &[(String, Digest)],
        default_image: &Digest,
    ) -> Result<()> {
        if name.is_empty() {
            return Err(StoreError::Invalid("empty tag".into()));
        }
        self.write("tag index", |tx| {
            for (_, id) in entries.iter().chain([(String::new(), default_image.clone())].iter()) {
                if !image_exists(tx, id)? {
                    return Ok(Err(StoreError::ImageNotFound(id.to_string())));
                }
            }
            // The plain tag first: its triggers clear the old index rows.
            tx.execute(
                "INSERT INTO tags (name, image_id) VALUES (?1, ?2)
                 ON CONFLICT(name) DO UPDATE SET image_id = ?2",
                params![name, default_image.to_string()],
            )?;
            tx.execute("DELETE FROM index_tags WHERE name = ?1", [name])?;
            for (i, (platform, id)) in entries.iter().enumerate() {
                tx.execute(
                    "INSERT OR REPLACE INTO index_tags (name, platform, image_id, index_digest, position)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![name, platform, id.to_string(), index_digest.to_string(), i as i64],
                )?;
            }
            Ok(Ok(()))
        })?
    }

    /// The index a tag stands for, when it is multi-platform: the index
    /// blob's digest and its (platform, image) entries in order.
    pub fn index_tag(&self, name: &str) -> Result<Option<IndexTag>> {
        self.with_conn("resolve index tag", |c| {
            let rows: Vec<(String, Digest, Digest)> = c
                .prepare(
                    "SELECT platform, image_id, index_digest FROM index_tags
                     WHERE name = ?1 ORDER BY position",
                )?
                .query_map([name], |r| {
                    Ok((r.get(0)?, col_digest(r, 1)?, col_digest(r, 2)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows
                .first()
                .map(|(_, _, d)| d.clone())
                .map(|d| (d, rows.into_iter().map(|(p, id, _)| (p, id)).collect())))
        })
    }

    /// Images that are entries of a multi-platform tag (not shown as
    /// untagged images of their own).
    pub fn index_member_images(&self) -> Result<Vec<Digest>> {
        self.with_conn("list index images", |c| {
            c.prepare("SELECT DISTINCT image_id FROM index_tags")?
                .query_map([], |r| col_digest(r, 0))?
                .collect()
        })
    }

    /// The image a tag points at.
    pub fn resolve_tag(&self, reference: &str) -> Result<Option<Digest>> {
        self.with_conn("resolve tag", |c| {
            c.query_row(
                "SELECT image_id FROM tags WHERE name = ?1",
                [reference],
                |r| col_digest(r, 0),
            )
            .optional()
        })
    }

    /// Tags of one image, sorted.
    pub fn tags_of(&self, image: &Digest) -> Result<Vec<String>> {
        self.with_conn("list tags of image", |c| {
            c.prepare("SELECT name FROM tags WHERE image_id = ?1 ORDER BY name")?
                .query_map([image.to_string()], |r| r.get(0))?
                .collect()
        })
    }

    /// All (tag, image) pairs, sorted by tag.
    pub fn tags(&self) -> Result<Vec<(String, Digest)>> {
        self.with_conn("list tags", |c| {
            c.prepare("SELECT name, image_id FROM tags ORDER BY name")?
                .query_map([], |r| Ok((r.get(0)?, col_digest(r, 1)?)))?
                .collect()
        })
    }

    /// Records a layer (diff_id + media type -> blob), so the same diff is not
    /// compressed twice.
    pub fn put_layer(&self, layer: &LayerRecord) -> Result<()> {
        self.write("record layer", |tx| put_layer_tx(tx, layer))?;
        Ok(())
    }

    /// A recorded blob for this diff ID, preferring `media_type` when given.
    pub fn layer_by_diff_id(
        &self,
        diff_id: &Digest,
        media_type: Option<&str>,
    ) -> Result<Option<LayerRecord>> {
        self.with_conn("find layer", |c| {
            c.query_row(
                "SELECT digest, diff_id, size, uncompressed_size, media_type FROM layers
                 WHERE diff_id = ?1 ORDER BY (media_type = ?2) DESC LIMIT 1",
                params![diff_id.to_string(), media_type.unwrap_or("")],
                layer_row,
            )
            .optional()
        })
        .map(|l| match (l, media_type) {
            (Some(l), Some(mt)) if l.media_type != mt => None,
            (l, _) => l,
        })
    }

    /// Every layer-table row.
    pub fn layers(&self) -> Result<Vec<LayerRecord>> {
        self.with_conn("list layers", |c| {
            c.prepare(
                "SELECT digest, diff_id, size, uncompressed_size, media_type FROM layers
                 ORDER BY diff_id",
            )?
            .query_map([], layer_row)?
            .collect()
        })
    }
}

fn put_layer_tx(tx: &rusqlite::Transaction<'_>, l: &LayerRecord) -> rusqlite::Result<usize> {
    tx.execute(
        "INSERT INTO layers (diff_id, media_type, digest, size, uncompressed_size)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(diff_id, media_type) DO UPDATE SET digest = ?3, size = ?4,
             uncompressed_size = ?5",
        params![
            l.diff_id.to_string(),
            l.media_type,
            l.digest.to_string(),
            l.size as i64,
            l.uncompressed_size as i64
        ],
    )
}

fn layer_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LayerRecord> {
    Ok(LayerRecord {
        digest: col_digest(r, 0)?,
        diff_id: col_digest(r, 1)?,
        size: r.get::<_, i64>(2)? as u64,
        uncompressed_size: r.get::<_, i64>(3)? as u64,
        media_type: r.get(4)?,
    })
}

/// One image with its layers and tags. The statements are cached: `image
/// ls` runs them once per image, and parsing them each time was most of
/// its time with 1,000 images.
fn load_image(tx: &rusqlite::Transaction<'_>, id: &str) -> rusqlite::Result<Option<ImageInfo>> {
    let head = tx
        .prepare_cached(
            "SELECT id, manifest_digest, manifest_media_type, config_digest, created, size
             FROM images WHERE id = ?1",
        )?
        .query_row([id], |r| {
            Ok((
                col_digest(r, 0)?,
                col_digest(r, 1)?,
                r.get::<_, String>(2)?,
                col_digest(r, 3)?,
                r.get::<_, String>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })
        .optional()?;
    let Some((id_d, manifest_digest, manifest_media_type, config_digest, created, size)) = head
    else {
        return Ok(None);
    };
    let layers = tx
        .prepare_cached(
            "SELECT digest, diff_id, size, uncompressed_size, media_type FROM image_layers
             WHERE image_id = ?1 ORDER BY position",
        )?
        .query_map([id], layer_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let tags = tx
        .prepare_cached("SELECT name FROM tags WHERE image_id = ?1 ORDER BY name")?
        .query_map([id], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(Some(ImageInfo {
        id: id_d,
        manifest_digest,
        manifest_media_type,
        config_digest,
        layers,
        created,
        size: size as u64,
        tags,
    }))
}

impl Meta {
    /// Stores (replacing) a JSON note of `kind` about an image, such as the
    /// record of the build that made it. The image must be registered.
    pub fn put_image_note(&self, image: &Digest, kind: &str, value: &str) -> Result<()> {
        self.write("write image note", |tx| {
            tx.execute(
                "INSERT INTO image_notes (image_id, kind, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT(image_id, kind) DO UPDATE SET value = ?3",
                params![image.to_string(), kind, value],
            )?;
            Ok(())
        })
    }

    /// The note of `kind` about an image, if one was stored.
    pub fn image_note(&self, image: &Digest, kind: &str) -> Result<Option<String>> {
        self.read("read image note", |tx| {
            tx.query_row(
                "SELECT value FROM image_notes WHERE image_id = ?1 AND kind = ?2",
                params![image.to_string(), kind],
                |r| r.get(0),
            )
            .optional()
        })
    }
}

/// Whether the images table holds `id`.
fn image_exists(tx: &rusqlite::Connection, id: &Digest) -> rusqlite::Result<bool> {
    Ok(tx
        .query_row(
            "SELECT 1 FROM images WHERE id = ?1",
            [id.to_string()],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}
