//! The db schema, versioned with `PRAGMA user_version` and created on first
//! open. Migrations run inside one immediate transaction, so two processes
//! opening a fresh store at once do not both create it.

use std::path::Path;

use rusqlite::Connection;

use crate::error::{Result, StoreError};

/// The schema version this code writes.
pub(super) const SCHEMA_VERSION: i64 = 5;

const V1: &str = "
CREATE TABLE images (
    id TEXT PRIMARY KEY,                 -- config digest
    manifest_digest TEXT NOT NULL,
    manifest_media_type TEXT NOT NULL,
    config_digest TEXT NOT NULL,
    created TEXT NOT NULL,
    size INTEGER NOT NULL,               -- sum of uncompressed layer sizes
    registered INTEGER NOT NULL          -- unix seconds
);
CREATE TABLE image_layers (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    digest TEXT NOT NULL,
    diff_id TEXT NOT NULL,
    size INTEGER NOT NULL,
    uncompressed_size INTEGER NOT NULL,
    media_type TEXT NOT NULL,
    PRIMARY KEY (image_id, position)
);
CREATE INDEX image_layers_digest ON image_layers(digest);
CREATE TABLE tags (
    name TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
);
CREATE INDEX tags_image ON tags(image_id);
CREATE TABLE layers (
    diff_id TEXT NOT NULL,
    media_type TEXT NOT NULL,
    digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    uncompressed_size INTEGER NOT NULL,
    PRIMARY KEY (diff_id, media_type)
);
CREATE INDEX layers_digest ON layers(digest);
CREATE TABLE cache (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created INTEGER NOT NULL,
    last_used INTEGER NOT NULL
);
CREATE TABLE cache_refs (
    key TEXT NOT NULL REFERENCES cache(key) ON DELETE CASCADE,
    kind TEXT NOT NULL,                  -- 'blob' | 'image'
    ref TEXT NOT NULL,
    PRIMARY KEY (key, kind, ref)
);
CREATE TABLE leases (
    id TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    pid INTEGER NOT NULL,
    created INTEGER NOT NULL
);
CREATE TABLE lease_refs (
    lease_id TEXT NOT NULL REFERENCES leases(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,                  -- 'blob' | 'image' | 'snapshot'
    ref TEXT NOT NULL,
    PRIMARY KEY (lease_id, kind, ref)
);
";

/// v2: the digests an image is known by in registries (Docker's
/// RepoDigests: `REPOSITORY@sha256:...`, from pulls and pushes).
const V2: &str = "
CREATE TABLE repo_digests (
    name TEXT NOT NULL,                  -- full repository @ manifest digest
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    PRIMARY KEY (name, image_id)
);
CREATE INDEX repo_digests_image ON repo_digests(image_id);
";

/// v3: what keyed each build step (its definition, parent and instruction
/// text, plus a compact per-file list of its inputs), and the key each step
/// of a Dockerfile had last time, to explain cache misses. Both are only
/// explanations: losing them never changes a build. A cache entry's step
/// row goes with the entry.
const V3: &str = "
CREATE TABLE IF NOT EXISTS cache_steps (
    key TEXT PRIMARY KEY,                -- the step's cache key
    parent TEXT,                         -- its parent's key (NULL for a base)
    instruction TEXT NOT NULL,           -- the instruction as written
    def TEXT NOT NULL,                   -- the engine's JSON (opaque here)
    files TEXT,                          -- per-file input list (opaque), read only on a miss
    created INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS cache_steps_parent ON cache_steps(parent, instruction);
CREATE TRIGGER IF NOT EXISTS cache_steps_follow_cache AFTER DELETE ON cache BEGIN
    DELETE FROM cache_steps WHERE key = old.key;
END;
CREATE TABLE IF NOT EXISTS step_history (
    scope TEXT NOT NULL,                 -- which build (context, Dockerfile)
    step TEXT NOT NULL,                  -- which step of it (stage, instruction, occurrence)
    key TEXT NOT NULL,                   -- its key at the last build
    updated INTEGER NOT NULL,
    PRIMARY KEY (scope, step)
);
";

/// v4: small JSON notes about an image, kept beside it (not in its config,
/// so the image ID does not change), e.g. the build record `image explain`
/// reads. Removed with the image.
const V4: &str = "
CREATE TABLE IF NOT EXISTS image_notes (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,                  -- e.g. 'build'
    value TEXT NOT NULL,                 -- JSON
    PRIMARY KEY (image_id, kind)
);
";

/// v5: multi-platform tags. A tag whose target is an OCI index keeps the
/// index blob and one row per platform here; `tags` points the same name
/// at the default platform's image (the host's when present), so every
/// single-image reader keeps working. Writing or removing the plain tag
/// drops the index rows (triggers), so a later single-platform tag wins.
const V5: &str = "
CREATE TABLE IF NOT EXISTS index_tags (
    name TEXT NOT NULL,                  -- full reference
    platform TEXT NOT NULL,              -- os/arch[/variant], normalized
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    index_digest TEXT NOT NULL,          -- the index blob
    position INTEGER NOT NULL,           -- order in the index
    PRIMARY KEY (name, platform)
);
CREATE INDEX IF NOT EXISTS index_tags_image ON index_tags(image_id);
CREATE TRIGGER IF NOT EXISTS index_tags_follow_insert AFTER INSERT ON tags BEGIN
    DELETE FROM index_tags WHERE name = new.name;
END;
CREATE TRIGGER IF NOT EXISTS index_tags_follow_update AFTER UPDATE ON tags BEGIN
    DELETE FROM index_tags WHERE name = old.name;
END;
CREATE TRIGGER IF NOT EXISTS index_tags_follow_delete AFTER DELETE ON tags BEGIN
    DELETE FROM index_tags WHERE name = old.name;
END;
";

pub(crate) fn migrate(conn: &Connection, path: &Path) -> Result<()> {
    let err = |what| {
        move |cause| StoreError::Db {
            path: path.to_path_buf(),
            what,
            cause,
        }
    };
    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(err("begin schema migration"))?;
    let result = (|| {
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(err("read schema version"))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                path: path.to_path_buf(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if version < 1 {
            conn.execute_batch(V1).map_err(err("create schema v1"))?;
        }
        if version < 2 {
            conn.execute_batch(V2)
                .map_err(err("migrate schema to v2"))?;
        }
        if version < 3 {
            conn.execute_batch(V3)
                .map_err(err("migrate schema to v3"))?;
        }
        if version < 4 {
            conn.execute_batch(V4)
                .map_err(err("migrate schema to v4"))?;
        }
        if version < 5 {
            conn.execute_batch(V5)
                .map_err(err("migrate schema to v5"))?;
        }
        conn.execute_batch(super::content::CONTENT_SIZES)
            .map_err(err("create the layer content size table"))?;
        if version < SCHEMA_VERSION {
            conn.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(err("write schema version"))?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT").map_err(err("commit schema")),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}
