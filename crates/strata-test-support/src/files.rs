//! Files and directories for tests: build contexts, store roots, per-run
//! fixture dirs, FIFOs.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A temp dir with the given files (path, contents).
pub fn context(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (p, c) in files {
        let path = d.path().join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, c).unwrap();
    }
    d
}

/// The path as a string (lossily), for argument lists.
pub fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// A temp dir and the store root `store` inside it (not created: strata
/// creates it on first use).
pub fn root_dir() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("store");
    (d, p)
}

/// A directory for this test process's shared fixtures (those kept in a
/// `static`), under `base` (cargo's temp dir for integration tests:
/// pass `env!("CARGO_TARGET_TMPDIR")`). A `TempDir` in
/// a static is never dropped, so it leaked at every run (hundreds of MB
/// each); instead, dirs that earlier, finished runs left are deleted here.
pub fn process_scratch_dir(base: &Path, name: &str) -> PathBuf {
    let prefix = format!("{name}-");
    if let Ok(entries) = std::fs::read_dir(base) {
        for e in entries.flatten() {
            let file_name = e.file_name().to_string_lossy().into_owned();
            let pid = file_name
                .strip_prefix(&prefix)
                .and_then(|p| p.parse::<u32>().ok());
            if pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let dir = base.join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the fixture dir");
    dir
}

/// `mkfifo path`.
pub fn mkfifo(path: &Path) {
    let st = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(st.success(), "mkfifo {}", path.display());
}
