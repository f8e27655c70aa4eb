//! Snapshots and overlay mounts (root only: skipped with a message otherwise).

use crate::common;

use std::fs;
use std::path::Path;

use common::*;
use strata_store::{
    chain_ids, EntryMeta, LayerBuilder, LayerInfo, LayerOptions, LayerWriter, Store,
};

fn layer(store: &Store, files: &[(&str, &str)], whiteouts: &[&str]) -> LayerInfo {
    let mut b = LayerBuilder::new(store.blobs(), LayerOptions::default()).unwrap();
    let dir = EntryMeta {
        mode: 0o755,
        ..Default::default()
    };
    let file = EntryMeta {
        mode: 0o644,
        ..Default::default()
    };
    b.add_dir(Path::new("etc"), &dir).unwrap();
    for (p, c) in files {
        b.add_file_reader(Path::new(p), &mut c.as_bytes(), c.len() as u64, &file)
            .unwrap();
    }
    for w in whiteouts {
        b.add_whiteout(Path::new(w)).unwrap();
    }
    b.finish().unwrap()
}

fn skip() -> bool {
    if !is_root() {
        eprintln!("overlay tests need root: skipped");
        return true;
    }
    false
}

#[test]
fn two_snapshots_plus_upper_and_the_diff() {
    if skip() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let l1 = layer(&store, &[("etc/a", "one"), ("etc/b", "bee")], &[]);
    let l2 = layer(&store, &[("etc/a", "two"), ("etc/c", "sea")], &["etc/b"]);
    let chain = vec![
        (l1.diff_id.clone(), l1.digest.clone()),
        (l2.diff_id.clone(), l2.digest.clone()),
    ];
    let lowers = store.snapshotter().prepare(&chain).unwrap();
    assert_eq!(lowers.len(), 2);
    // prepared once: a second prepare is a no-op returning the same dirs
    assert_eq!(store.snapshotter().prepare(&chain).unwrap(), lowers);
    let ids = chain_ids(&[l1.diff_id.clone(), l2.diff_id.clone()]);
    assert!(store.snapshotter().exists(&ids[1]));

    let c = store.containers().create("c1", &ids).unwrap();
    let m = c.mount_rootfs(&lowers).unwrap();
    let root = m.target().to_path_buf();
    assert_eq!(fs::read_to_string(root.join("etc/a")).unwrap(), "two");
    assert_eq!(fs::read_to_string(root.join("etc/c")).unwrap(), "sea");
    assert!(!root.join("etc/b").exists(), "whited out by layer 2");

    // change things in the container
    fs::remove_file(root.join("etc/c")).unwrap();
    fs::write(root.join("etc/new"), "new").unwrap();
    fs::create_dir(root.join("data")).unwrap();
    drop(m);
    assert!(!root.join("etc").exists(), "unmounted on drop");

    // the upper dir has a whiteout for etc/c; the diff carries .wh.c
    let info = LayerWriter::new(store.blobs(), LayerOptions::default())
        .write_dir(&c.upper(), None)
        .unwrap();
    let mut names = Vec::new();
    let blob = store.blobs().open(&info.digest).unwrap();
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(blob));
    for e in ar.entries().unwrap() {
        names.push(String::from_utf8(e.unwrap().path_bytes().into_owned()).unwrap());
    }
    assert_eq!(names, vec!["data/", "etc/", "etc/.wh.c", "etc/new"]);
    c.remove().unwrap();
    assert!(store.containers().list().unwrap().is_empty());
}

#[test]
fn scratch_rootfs_is_upper_only() {
    if skip() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let c = store.containers().create("scratch", &[]).unwrap();
    let m = c.mount_rootfs(&[]).unwrap();
    assert_eq!(fs::read_dir(m.target()).unwrap().count(), 0);
    fs::write(m.target().join("hello"), "x").unwrap();
    m.unmount().unwrap();
    assert!(c.upper().join("hello").exists());
}

#[test]
fn many_layers_exceed_the_page_limit() {
    if skip() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let mut chain = Vec::new();
    for i in 0..60 {
        let name = format!("etc/f{i}");
        let l = layer(&store, &[(&name, "x")], &[]);
        chain.push((l.diff_id, l.digest));
    }
    let lowers = store.snapshotter().prepare(&chain).unwrap();
    let total: usize = lowers.iter().map(|p| p.as_os_str().len() + 1).sum();
    assert!(total > 4096, "the test must exceed one page ({total})");
    let c = store.containers().create("many", &[]).unwrap();
    let m = c.mount_rootfs(&lowers).unwrap();
    assert_eq!(fs::read_dir(m.target().join("etc")).unwrap().count(), 60);
}

#[test]
fn wrong_diff_id_is_refused_and_leaves_no_snapshot() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let l = layer(&store, &[("etc/a", "one")], &[]);
    let wrong = strata_store::Digest::sha256_of(b"wrong");
    let err = store
        .snapshotter()
        .prepare(&[(wrong.clone(), l.digest.clone())])
        .unwrap_err();
    assert!(err.to_string().contains("diff ID mismatch"), "{err}");
    assert!(!store.snapshotter().exists(&wrong));
    assert_eq!(fs::read_dir(store.root().join("tmp")).unwrap().count(), 0);
}

#[test]
fn stale_container_dirs_are_cleaned() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let keep = store.containers().create("live", &[]).unwrap();
    // A crashed owner: its lock file is there and nobody holds it.
    fs::create_dir_all(store.root().join("containers/dead/upper")).unwrap();
    fs::write(store.root().join("containers/dead/lock"), "").unwrap();
    // Lockless: containers are renamed in with their lock, so this is
    // debris (a failed delete, an older strata's crash), removed at once.
    fs::create_dir_all(store.root().join("containers/lockless/upper")).unwrap();
    let mut live = Vec::new();
    let removed = store.containers().cleanup_stale(&mut live).unwrap();
    assert_eq!(removed, vec!["dead".to_string(), "lockless".to_string()]);
    assert_eq!(store.containers().list().unwrap(), vec!["live".to_string()]);
    // A live id is refused; once released, a stale one is taken over.
    let err = store.containers().create("live", &[]).unwrap_err();
    assert!(err.to_string().contains("in use"), "{err}");
    drop(keep);
    let again = store.containers().create("live", &[]).unwrap();
    assert!(again.path().join("lock").is_file());
    again.remove().unwrap();
    assert!(store.containers().list().unwrap().is_empty());
    // Nothing is left in tmp by creation or removal.
    assert_eq!(fs::read_dir(store.root().join("tmp")).unwrap().count(), 0);
}
