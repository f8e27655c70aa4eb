//! Layer tar application (`strata_store::apply_layer`) into a fresh temp
//! dir, in both modes. Besides panics, it checks confinement: the dest's
//! parent must hold nothing but the dest afterwards (a hostile tar that
//! escapes `RESOLVE_IN_ROOT` would leave something there). Runs as root
//! when fuzzing here, so chown/xattr/whiteout paths are all exercised, and
//! so the cell can always be removed whatever modes the layer set.
#![no_main]

use std::io::Cursor;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use strata_store::{apply_layer, ApplyMode};

fn base() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("tempdir")).path()
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, tar)) = data.split_first() else {
        return;
    };
    let mode = if sel & 1 == 0 {
        ApplyMode::Flatten
    } else {
        ApplyMode::OverlayReady
    };
    let cell = tempfile::tempdir_in(base()).expect("cell");
    let dest = cell.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    std::fs::write(cell.path().join("canary"), b"canary").unwrap();
    // Flatten mode applies over existing content: give it some.
    if sel & 2 != 0 {
        std::fs::create_dir_all(dest.join("etc/sub")).unwrap();
        std::fs::write(dest.join("etc/passwd"), b"root:x:0:0::/:/bin/sh\n").unwrap();
        let _ = std::os::unix::fs::symlink("/", dest.join("rootlink"));
        let _ = std::os::unix::fs::symlink("../../..", dest.join("up"));
    }
    let _ = apply_layer(&mut Cursor::new(tar), &dest, mode);
    let mut names: Vec<_> = std::fs::read_dir(cell.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["canary", "dest"], "something escaped the dest dir");
    assert_eq!(std::fs::read(cell.path().join("canary")).unwrap(), b"canary");
    // As root, removal ignores modes a layer set (fuzzing runs as root).
    drop(cell);
});
