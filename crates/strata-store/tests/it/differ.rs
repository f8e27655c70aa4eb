//! The differ: directory -> layer -> directory round trips, whiteouts,
//! determinism, and flat memory on a big file.

use crate::common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use common::*;
use strata_store::{
    apply_layer, ApplyMode, EntryMeta, LayerBuilder, LayerOptions, LayerWriter, Store,
};

/// A tree with files, modes, a setuid binary, symlinks, hard links, xattrs,
/// a whiteout and an opaque directory.
fn make_tree(dir: &Path) {
    fs::create_dir_all(dir.join("etc/sub")).unwrap();
    fs::create_dir_all(dir.join("opaque/inner")).unwrap();
    fs::create_dir_all(dir.join("bin")).unwrap();
    fs::write(dir.join("etc/hosts"), b"127.0.0.1 localhost\n").unwrap();
    fs::write(dir.join("etc/sub/deep"), vec![b'x'; 70_000]).unwrap();
    fs::write(dir.join("bin/su"), b"#!setuid").unwrap();
    fs::set_permissions(dir.join("bin/su"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::write(dir.join("opaque/inner/new"), b"new").unwrap();
    fs::hard_link(dir.join("etc/hosts"), dir.join("bin/hosts-link")).unwrap();
    std::os::unix::fs::symlink("../etc/hosts", dir.join("bin/rel-link")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.join("bin/abs-link")).unwrap();
    let long = "n".repeat(120);
    fs::write(dir.join("etc/sub").join(&long), b"long name").unwrap();
    set_xattr(&dir.join("etc/hosts"), "user.note", b"hello\0binary");
    if is_root() {
        mknod_whiteout(&dir.join("etc/gone"));
        set_xattr(&dir.join("opaque"), "trusted.overlay.opaque", b"y");
        rustix::fs::chown(
            dir.join("etc/sub/deep"),
            Some(rustix::fs::Uid::from_raw(1234)),
            Some(rustix::fs::Gid::from_raw(5678)),
        )
        .unwrap();
    }
    for p in ["etc/hosts", "etc/sub/deep", "bin/su", "opaque/inner/new"] {
        set_mtime(&dir.join(p), 1_600_000_000);
    }
}

#[test]
fn round_trip_overlay_ready_and_flatten() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(&t.path().join("root")).unwrap();
    let src = t.path().join("src");
    make_tree(&src);
    let info = LayerWriter::new(store.blobs(), LayerOptions::default())
        .write_dir(&src, None)
        .unwrap();
    assert!(store.blobs().exists(&info.digest));
    assert_eq!(store.blobs().size(&info.digest).unwrap(), info.size);

    // OverlayReady: the same tree comes back, whiteouts and opaque included.
    let out = t.path().join("overlay");
    fs::create_dir(&out).unwrap();
    let stats = apply_layer(
        &mut store.blobs().open(&info.digest).unwrap(),
        &out,
        ApplyMode::OverlayReady,
    )
    .unwrap();
    assert_eq!(stats.diff_id, info.diff_id);
    assert_eq!(stats.uncompressed_size, info.uncompressed_size);
    assert_eq!(describe(&src), describe(&out));
    let a = fs::metadata(out.join("etc/hosts")).unwrap();
    let b = fs::metadata(out.join("bin/hosts-link")).unwrap();
    assert_eq!(a.ino(), b.ino(), "hard link preserved");
    assert_eq!(
        fs::metadata(out.join("bin/su"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o4755
    );

    // Flatten onto a lower layer: whiteout deletes, opaque clears the old.
    let flat = t.path().join("flat");
    fs::create_dir_all(flat.join("etc")).unwrap();
    fs::create_dir_all(flat.join("opaque/old")).unwrap();
    fs::write(flat.join("etc/gone"), b"lower").unwrap();
    fs::write(flat.join("opaque/old/file"), b"lower").unwrap();
    fs::write(flat.join("etc/kept"), b"lower").unwrap();
    apply_layer(
        &mut store.blobs().open(&info.digest).unwrap(),
        &flat,
        ApplyMode::Flatten,
    )
    .unwrap();
    assert!(flat.join("etc/kept").exists());
    assert_eq!(
        fs::read(flat.join("etc/hosts")).unwrap(),
        b"127.0.0.1 localhost\n"
    );
    if is_root() {
        assert!(!flat.join("etc/gone").exists());
        assert!(!flat.join("opaque/old").exists());
        assert!(flat.join("opaque/inner/new").exists());
        assert_eq!(
            get_xattr(&flat.join("opaque"), "trusted.overlay.opaque"),
            None
        );
    }
}

#[test]
fn same_tree_same_digests() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(&t.path().join("root")).unwrap();
    let mut digests = Vec::new();
    for i in 0..2 {
        let src = t.path().join(format!("src{i}"));
        make_tree(&src);
        let info = LayerWriter::new(store.blobs(), LayerOptions::default())
            .write_dir(&src, None)
            .unwrap();
        digests.push((info.diff_id, info.digest));
    }
    assert_eq!(digests[0], digests[1]);
}

#[test]
fn mtime_clamp_applies() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(&t.path().join("root")).unwrap();
    let mut b = LayerBuilder::new(
        store.blobs(),
        LayerOptions {
            mtime_clamp: Some(1000),
            ..Default::default()
        },
    )
    .unwrap();
    let meta = EntryMeta {
        mode: 0o644,
        mtime: 2_000_000_000,
        ..Default::default()
    };
    b.add_dir(
        Path::new("/app"),
        &EntryMeta {
            mode: 0o755,
            ..meta.clone()
        },
    )
    .unwrap();
    b.add_file_reader(Path::new("/app/a"), &mut &b"abc"[..], 3, &meta)
        .unwrap();
    let old = EntryMeta {
        mtime: 500,
        ..meta.clone()
    };
    b.add_file_reader(Path::new("app/b"), &mut &b"x"[..], 1, &old)
        .unwrap();
    let info = b.finish().unwrap();
    let out = t.path().join("out");
    fs::create_dir(&out).unwrap();
    apply_layer(
        &mut store.blobs().open(&info.digest).unwrap(),
        &out,
        ApplyMode::Flatten,
    )
    .unwrap();
    assert_eq!(fs::metadata(out.join("app/a")).unwrap().mtime(), 1000);
    assert_eq!(fs::metadata(out.join("app/b")).unwrap().mtime(), 500);
    assert_eq!(fs::metadata(out.join("app")).unwrap().mtime(), 1000);
}

#[test]
fn short_reader_is_an_error_and_leaves_nothing() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(&t.path().join("root")).unwrap();
    let mut b = LayerBuilder::new(store.blobs(), LayerOptions::default()).unwrap();
    let r = b.add_file_reader(Path::new("f"), &mut &b"ab"[..], 10, &EntryMeta::default());
    assert!(r.is_err());
    drop(b);
    assert_eq!(fs::read_dir(store.root().join("tmp")).unwrap().count(), 0);
    assert!(store.blobs().list().unwrap().is_empty());
}

fn vm_hwm_kb() -> u64 {
    let s = fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[test]
fn one_gib_file_streams_with_flat_memory() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(&t.path().join("root")).unwrap();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    let f = fs::File::create(src.join("big")).unwrap();
    f.set_len(1 << 30).unwrap(); // sparse: reads as zeros
    drop(f);
    fs::write(src.join("small"), b"tail").unwrap();
    let before = vm_hwm_kb();
    let info = LayerWriter::new(store.blobs(), LayerOptions::default())
        .write_dir(&src, None)
        .unwrap();
    let grown_mb = (vm_hwm_kb().saturating_sub(before)) / 1024;
    assert!(info.uncompressed_size > 1 << 30);
    assert!(info.size < 10 << 20, "zeros compress well: {}", info.size);
    assert!(grown_mb < 100, "peak RSS grew by {grown_mb} MB");
}
