//! The SQLite metadata db (`ROOT/meta.db`): images, tags, image -> blob
//! references, the layer table, the build cache and leases.
//!
//! The db is opened in WAL mode with a busy timeout so several processes can
//! read and write at once; every write is a short `BEGIN IMMEDIATE`
//! transaction. A [`Meta`] is `Send + Sync`: it keeps a small pool of
//! connections, one per concurrently busy thread.

mod cache;
mod content;
mod images;
mod leases;
mod schema;
mod steps;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::error::{Result, StoreError};

pub use cache::CacheRecord;
pub use images::{ImageInfo, ImageRecord, LayerRecord};
pub use leases::{Lease, LeaseInfo};
pub use steps::StepInfo;

const BUSY_TIMEOUT: Duration = Duration::from_secs(60);
const POOL_MAX: usize = 8;

/// Handle on the metadata db. Cheap to clone.
#[derive(Clone)]
pub struct Meta {
    inner: Arc<MetaInner>,
}

struct MetaInner {
    path: PathBuf,
    leases_dir: PathBuf,
    pool: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for Meta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meta")
            .field("path", &self.inner.path)
            .finish()
    }
}

impl Meta {
    /// Opens (creating and migrating if needed) the db at `path`; lease lock
    /// files live in `leases_dir`.
    pub(crate) fn open(path: &Path, leases_dir: &Path) -> Result<Meta> {
        let meta = Meta {
            inner: Arc::new(MetaInner {
                path: path.to_path_buf(),
                leases_dir: leases_dir.to_path_buf(),
                pool: Mutex::new(Vec::new()),
            }),
        };
        let conn = meta.connect()?;
        schema::migrate(&conn, path)?;
        meta.inner.pool.lock().unwrap().push(conn);
        Ok(meta)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub(crate) fn leases_dir(&self) -> &Path {
        &self.inner.leases_dir
    }

    fn connect(&self) -> Result<Connection> {
        let path = &self.inner.path;
        let err = |what| {
            move |cause| StoreError::Db {
                path: path.clone(),
                what,
                cause,
            }
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(err("open"))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(err("busy_timeout"))?;
        enable_wal(&conn).map_err(err("enable WAL"))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err("set synchronous"))?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(err("enable foreign keys"))?;
        Ok(conn)
    }

    /// Runs `f` with a pooled connection.
    pub(crate) fn with_conn<T>(
        &self,
        what: &'static str,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let pooled = self.inner.pool.lock().unwrap().pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => self.connect()?,
        };
        let r = f(&mut conn);
        {
            let mut pool = self.inner.pool.lock().unwrap();
            if pool.len() < POOL_MAX {
                pool.push(conn);
            }
        }
        r.map_err(|cause| StoreError::Db {
            path: self.inner.path.clone(),
            what,
            cause,
        })
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction (committed if `f` is Ok).
    pub(crate) fn write<T>(
        &self,
        what: &'static str,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T> {
        self.with_conn(what, |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let v = f(&tx)?;
            tx.commit()?;
            Ok(v)
        })
    }

    /// Runs `f` in a deferred (read) transaction, for a consistent snapshot.
    pub(crate) fn read<T>(
        &self,
        what: &'static str,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T> {
        self.with_conn(what, |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
            let v = f(&tx)?;
            tx.commit()?;
            Ok(v)
        })
    }
}

/// Parses a digest column; a malformed one is reported as a conversion error.
pub(crate) fn col_digest(
    row: &rusqlite::Row<'_>,
    idx: usize,
) -> rusqlite::Result<strata_oci::Digest> {
    let s: String = row.get(idx)?;
    s.parse().map_err(|e: strata_oci::DigestError| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// Switches the database to WAL. The mode is stored in the file, so only the
/// first opener really switches; but SQLite does not call the busy handler
/// for a journal-mode change, so several processes opening a fresh store at
/// once get SQLITE_BUSY here: retry until the busy timeout runs out.
fn enable_wal(conn: &Connection) -> rusqlite::Result<()> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        let mode: rusqlite::Result<String> =
            conn.pragma_query_value(None, "journal_mode", |row| row.get(0));
        let result = match mode {
            Ok(m) if m.eq_ignore_ascii_case("wal") => return Ok(()),
            Ok(_) => conn.pragma_update(None, "journal_mode", "WAL"),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => return Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    }
}
