//! `load` unpacks each layer while it reads the archive: after
//! `load_archive` alone (before any `unpack_images`), the layers of an
//! image of this machine's platform are snapshots already; another
//! platform's are not kept; nothing is left in `ROOT/tmp` either way.

use std::fs;

use strata_store::transfer::load_archive;
use strata_store::{chain_ids, Digest, Store};
use strata_test_support::archive::{diff_ids, docker_archive_of, layer_tar};

use crate::common::temp_snapshots;

fn config(architecture: &str, layers: &[Vec<u8>]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": architecture,
        "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids(layers)},
    }))
    .unwrap()
}

fn layers() -> Vec<Vec<u8>> {
    vec![
        layer_tar(&[("a", b"one")]),
        layer_tar(&[("b/c", b"two"), ("b/d", &[9u8; 300_000])]),
    ]
}

fn chains(layers: &[Vec<u8>]) -> Vec<Digest> {
    let ids: Vec<Digest> = diff_ids(layers)
        .iter()
        .map(|d| d.parse().unwrap())
        .collect();
    chain_ids(&ids)
}

#[test]
fn a_host_images_layers_are_unpacked_as_the_archive_is_read() {
    let root = tempfile::tempdir().unwrap();
    let store = Store::open(root.path()).unwrap();
    let layers = layers();
    let host = strata_oci::Platform::host().architecture;
    let archive = docker_archive_of(&config(&host, &layers), &["x:1".into()], &layers);
    load_archive(&store, &archive[..]).unwrap();
    let chains = chains(&layers);
    for c in &chains {
        assert!(store.snapshotter().exists(c), "layer {c} not unpacked");
    }
    let top = store.snapshotter().path(&chains[1]);
    assert_eq!(fs::read(top.join("b/c")).unwrap(), b"two");
    assert_eq!(fs::read(top.join("b/d")).unwrap().len(), 300_000);
    assert_eq!(
        fs::read(store.snapshotter().path(&chains[0]).join("a")).unwrap(),
        b"one"
    );
    assert!(temp_snapshots(root.path()).is_empty());
}

#[test]
fn another_platforms_layers_are_not_kept() {
    let root = tempfile::tempdir().unwrap();
    let store = Store::open(root.path()).unwrap();
    let layers = layers();
    let host = strata_oci::Platform::host().architecture;
    let other = if host == "arm64" { "amd64" } else { "arm64" };
    let archive = docker_archive_of(&config(other, &layers), &["x:1".into()], &layers);
    load_archive(&store, &archive[..]).unwrap();
    for c in &chains(&layers) {
        assert!(!store.snapshotter().exists(c), "layer {c} of {other} kept");
    }
    assert!(temp_snapshots(root.path()).is_empty());
}
