//! Small filesystem helpers: unique temp names, directory fsync, clocks,
//! and flock-style file locks (`std::fs::File::lock`).

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{IoCtx, Result};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name unique across processes and threads: `<prefix>-<pid>-<nanos>-<n>`.
pub(crate) fn unique_name(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{nanos:x}-{n}", std::process::id())
}

/// Seconds since the epoch.
pub(crate) fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// fsyncs a directory so a rename inside it is durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .ctx("fsync directory", dir)
}

/// Whether `path` exists and was last modified more than `age` ago.
pub(crate) fn older_than(path: &Path, age: std::time::Duration) -> bool {
    fs::symlink_metadata(path).is_ok_and(|md| modified_before(&md, age))
}

/// Whether `md` was last modified more than `age` ago.
pub(crate) fn modified_before(md: &fs::Metadata, age: std::time::Duration) -> bool {
    md.modified()
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|elapsed| elapsed > age)
}

pub(crate) fn create_dir_all(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).ctx("create directory", dir)
}

/// Removes a file or a whole tree, without following symlinks; missing is fine.
pub(crate) fn remove_any(path: &Path) -> Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).ctx("stat", path),
    };
    let r = if meta.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    match r {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).ctx("remove", path),
        _ => Ok(()),
    }
}

/// A held flock on a lock file; released on drop (or when the process dies,
/// which is what makes these locks safe against crashes).
#[derive(Debug)]
pub struct FileLock {
    _file: File,
    path: PathBuf,
}

impl FileLock {
    fn open(path: &Path) -> Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .ctx("open lock file", path)
    }

    /// Blocks until a shared lock is held.
    pub fn shared(path: &Path) -> Result<FileLock> {
        let file = Self::open(path)?;
        file.lock_shared().ctx("lock (shared)", path)?;
        Ok(FileLock {
            _file: file,
            path: path.to_path_buf(),
        })
    }

    /// Blocks until an exclusive lock is held.
    pub fn exclusive(path: &Path) -> Result<FileLock> {
        let file = Self::open(path)?;
        file.lock().ctx("lock (exclusive)", path)?;
        Ok(FileLock {
            _file: file,
            path: path.to_path_buf(),
        })
    }

    /// A new lock file at `path` that is locked from the moment it is
    /// visible: it is locked under a temp name and renamed into place, so
    /// a scan that finds `path` unlocked knows its owner is gone.
    pub fn exclusive_at(path: &Path) -> Result<FileLock> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let tmp = dir.join(format!(".{}", unique_name("lock")));
            let lock = Self::exclusive(&tmp)?;
            match fs::rename(&tmp, path) {
                Ok(()) => {
                    return Ok(FileLock {
                        _file: lock._file,
                        path: path.to_path_buf(),
                    })
                }
                // An old store's GC may have removed the temp file between
                // its creation and its lock: make another.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempt < 5 => {}
                Err(e) => {
                    let _ = fs::remove_file(&tmp);
                    return Err(e).ctx("rename lock file", path);
                }
            }
        }
    }

    /// An exclusive lock if nobody holds one, else `None`.
    pub fn try_exclusive(path: &Path) -> Result<Option<FileLock>> {
        let file = Self::open(path)?;
        try_lock_file(&file, path).map(|ok| {
            ok.then(|| FileLock {
                _file: file,
                path: path.to_path_buf(),
            })
        })
    }

    /// Like [`FileLock::try_exclusive`] but never creates the file: a scan
    /// must not recreate a lock file inside a directory its owner is
    /// deleting (that would make the owner's removal fail). `Ok(None)` when
    /// the file does not exist.
    pub fn probe_exclusive(path: &Path) -> Result<Option<Option<FileLock>>> {
        let file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).ctx("open lock file", path),
        };
        try_lock_file(&file, path).map(|ok| {
            Some(ok.then(|| FileLock {
                _file: file,
                path: path.to_path_buf(),
            }))
        })
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The locked file.
    pub(crate) fn file(&self) -> &File {
        &self._file
    }
}

/// A directory under the store's `ROOT/tmp` owned by this process for its
/// whole life: named `<prefix>-<pid>-<nanos>-<n>` (so a scan knows a young
/// one's creator) and flocked from right after its creation until it is
/// removed on drop. GC and `check --repair` remove a temp entry only when
/// nobody holds its lock (and, within the grace period, only when its
/// creator pid is gone), so work in progress is never pulled from under
/// its owner, however long it runs.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
    lock: Option<File>,
}

impl TempDir {
    /// Creates and locks a new directory in `tmp` (the store's `ROOT/tmp`).
    pub(crate) fn create_in(tmp: &Path, prefix: &str) -> Result<TempDir> {
        // The pid must be the second `-`-separated field (gc::creator_pid).
        debug_assert!(!prefix.contains('-'), "temp prefix {prefix:?}");
        let path = tmp.join(unique_name(prefix));
        fs::create_dir(&path).ctx("create temp dir", &path)?;
        let mut dir = TempDir { path, lock: None };
        let f = File::open(&dir.path).ctx("open temp dir", &dir.path)?;
        f.lock().ctx("lock temp dir", &dir.path)?;
        dir.lock = Some(f);
        Ok(dir)
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Removed while still locked, so a GC never sees it half-deleted
        // and unowned.
        let _ = remove_any(&self.path);
        self.lock.take();
    }
}

/// `try_lock` on an open file (or directory): Ok(true) when acquired.
pub(crate) fn try_lock_file(file: &File, path: &Path) -> Result<bool> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(std::fs::TryLockError::WouldBlock) => Ok(false),
        Err(std::fs::TryLockError::Error(e)) => Err(e).ctx("try lock", path),
    }
}

/// A named point where the crash tests can kill the process on purpose:
/// with `STRATA_CRASH_AT=<name>` in the environment, reaching `name`
/// SIGKILLs this process (no unwinding, no cleanup), so a test can stop a
/// store operation exactly between two of its steps. Unset, this is one
/// cached environment lookup.
pub(crate) fn crash_point(name: &str) {
    static AT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let at = AT.get_or_init(|| std::env::var("STRATA_CRASH_AT").ok());
    if at.as_deref() == Some(name) {
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
    }
}
