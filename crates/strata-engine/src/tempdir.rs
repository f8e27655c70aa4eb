//! Temporary directories in the store.

use std::path::PathBuf;

use strata_store::Store;

/// A directory in the store's `ROOT/tmp`, locked by this process while it
/// lives (so GC and `check --repair` leave it alone however long the step
/// runs) and removed on drop. `.0` is its path.
pub struct TempDir(pub PathBuf, #[allow(dead_code)] strata_store::TempDir);

impl TempDir {
    /// A new empty directory under the store's tmp; `prefix` has no `-`.
    pub fn new(store: &Store, prefix: &str) -> std::io::Result<TempDir> {
        let t = store.temp_dir(prefix).map_err(std::io::Error::other)?;
        Ok(TempDir(t.path().to_path_buf(), t))
    }
}
