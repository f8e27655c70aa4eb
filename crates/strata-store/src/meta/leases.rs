//! Leases: GC roots for work in progress (a build, a pull, a load).
//!
//! Why leases and not only a grace period: a grace period is a guess about
//! how long a build takes between writing a blob and registering the image
//! that refers to it; a lease is exact. A lease is a row in `leases` plus a
//! lock file `ROOT/leases/<id>.lock` that its owner holds (flock) for the
//! lease's whole life. The lock is taken before the row is written, and GC
//! treats a lease as live exactly while its lock is held, so a lease whose
//! process crashed is recognised and dropped, and a live one is never
//! mistaken for dead. Blobs are added to a lease before they are renamed
//! into place (see `blobs.rs`), so there is no window in which a fresh blob
//! is visible to GC but unprotected.

use std::path::PathBuf;

use rusqlite::params;
use strata_oci::Digest;

use super::Meta;
use crate::error::Result;
use crate::fsutil::{self, now_secs, FileLock};

/// A live lease; everything added to it survives GC until it is dropped.
#[derive(Debug)]
pub struct Lease {
    id: String,
    meta: Meta,
    lock: Option<FileLock>,
}

/// A lease as recorded in the db.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseInfo {
    /// The lease's ID.
    pub id: String,
    /// What the lease is for.
    pub label: String,
    /// The process that holds it.
    pub pid: u32,
    /// When it was taken (seconds since the epoch).
    pub created: i64,
}

impl Meta {
    /// Starts a lease; `label` says what it is for (shown by diagnostics).
    pub fn lease(&self, label: &str) -> Result<Lease> {
        let id = fsutil::unique_name("lease");
        let lock = FileLock::exclusive_at(&self.lease_lock_path(&id))?;
        self.write("create lease", |tx| {
            tx.execute(
                "INSERT INTO leases (id, label, pid, created) VALUES (?1, ?2, ?3, ?4)",
                params![id, label, std::process::id(), now_secs()],
            )
        })?;
        Ok(Lease {
            id,
            meta: self.clone(),
            lock: Some(lock),
        })
    }

    pub(crate) fn lease_lock_path(&self, id: &str) -> PathBuf {
        self.leases_dir().join(format!("{id}.lock"))
    }

    /// Every lease, oldest first.
    pub fn leases(&self) -> Result<Vec<LeaseInfo>> {
        self.with_conn("list leases", |c| {
            c.prepare("SELECT id, label, pid, created FROM leases ORDER BY created, id")?
                .query_map([], |r| {
                    Ok(LeaseInfo {
                        id: r.get(0)?,
                        label: r.get(1)?,
                        pid: r.get::<_, i64>(2)? as u32,
                        created: r.get(3)?,
                    })
                })?
                .collect()
        })
    }

    pub(crate) fn delete_lease(&self, id: &str) -> Result<()> {
        self.write("delete lease", |tx| {
            tx.execute("DELETE FROM leases WHERE id = ?1", [id])
        })?;
        Ok(())
    }
}

impl Lease {
    /// The lease's ID.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn add(&self, kind: &str, key: &str) -> Result<()> {
        self.meta.write("add to lease", |tx| {
            tx.execute(
                "INSERT OR IGNORE INTO lease_refs (lease_id, kind, ref) VALUES (?1, ?2, ?3)",
                params![self.id, kind, key],
            )
        })?;
        Ok(())
    }

    /// Protects a blob (call before it becomes visible, or use
    /// `BlobStore::ingest_leased` / `BlobWriter::commit_leased`).
    pub fn add_blob(&self, digest: &Digest) -> Result<()> {
        self.add("blob", &digest.to_string())
    }

    /// Protects an image record (and so its blobs), e.g. an untagged
    /// intermediate stage during a build.
    pub fn add_image(&self, id: &Digest) -> Result<()> {
        self.add("image", &id.to_string())
    }

    /// Protects an unpacked snapshot, by chain ID.
    pub fn add_snapshot(&self, chain_id: &Digest) -> Result<()> {
        self.add("snapshot", &chain_id.to_string())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Err(e) = self.meta.delete_lease(&self.id) {
            tracing::warn!("could not end lease {}: {e} (GC will drop it)", self.id);
        }
        let path = self.meta.lease_lock_path(&self.id);
        let _ = std::fs::remove_file(&path);
        self.lock = None;
    }
}
