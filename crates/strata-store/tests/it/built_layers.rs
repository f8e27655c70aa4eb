//! Built layers: a RUN's upper dir, or a COPY's entries applied as they
//! are written, kept as the snapshot alone (no blob), its tar made again
//! on demand, byte for byte, and checked every time.

use std::fs;
use std::io::Read;
use std::os::unix::fs::symlink;
use std::path::Path;

use strata_store::snapshot::built::EntriesLayer;
use strata_store::{
    chain_ids, digest_dir, CacheRecord, Digest, EntryMeta, ImageRecord, LayerInfo, LayerOptions,
    Problem, Store,
};

use crate::common::temp_snapshots;

/// A tree shaped like a RUN's upper dir: nested dirs, files, a symlink, a
/// hard link pair.
fn upper(dir: &Path, seed: &str) {
    fs::create_dir_all(dir.join("usr/lib/pkg")).unwrap();
    for i in 0..50 {
        fs::write(
            dir.join(format!("usr/lib/pkg/f{i}")),
            format!("{seed} {i}\n"),
        )
        .unwrap();
    }
    fs::write(dir.join("usr/big"), vec![7u8; 3 << 20]).unwrap();
    symlink("pkg/f1", dir.join("usr/lib/link")).unwrap();
    fs::hard_link(dir.join("usr/lib/pkg/f2"), dir.join("usr/lib/hard")).unwrap();
}

/// Builds a layer the way a RUN step does: hash the upper dir, then adopt
/// it as the built snapshot on top of no parent.
fn built(store: &Store, seed: &str) -> (LayerInfo, Digest) {
    let dir = store.temp_dir("upper").unwrap();
    let up = dir.path().join("upper");
    upper(&up, seed);
    let info = digest_dir(&up, LayerOptions::default()).unwrap();
    let chain = chain_ids(std::slice::from_ref(&info.diff_id))[0].clone();
    let kept = store
        .snapshotter()
        .adopt_built(&chain, &info, &up, None)
        .unwrap();
    (kept, chain)
}

fn read_all(store: &Store, d: &Digest) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    store.open_layer(d).unwrap().read_to_end(&mut out)?;
    Ok(out)
}

fn register(store: &Store, layer: &LayerInfo, tag: &str) -> ImageRecord {
    let config = format!("{{\"layer\":\"{}\"}}", layer.diff_id);
    let (cd, _) = store.blobs().put(None, config.as_bytes()).unwrap();
    let (md, _) = store.blobs().put(None, b"{\"manifest\":1}").unwrap();
    let rec = ImageRecord {
        id: cd.clone(),
        manifest_digest: md,
        manifest_media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        config_digest: cd,
        layers: vec![layer.to_record()],
        created: String::new(),
    };
    store
        .register_image(&rec, None, &[tag.to_string()])
        .unwrap();
    rec
}

#[test]
fn a_built_layer_has_no_blob_and_its_tar_is_made_again_byte_for_byte() {
    let root = tempfile::tempdir().unwrap();
    let store = Store::open(root.path()).unwrap();
    let (layer, chain) = built(&store, "a");
    assert_eq!(
        layer.digest, layer.diff_id,
        "a built layer is named by its tar"
    );
    assert_eq!(layer.media_type, "application/vnd.oci.image.layer.v1.tar");
    assert!(
        store.blobs().list().unwrap().is_empty(),
        "no blob is written for a built layer"
    );
    assert!(store.snapshotter().exists(&chain));
    assert!(store.has_layer(&layer.digest));
    let first = read_all(&store, &layer.digest).unwrap();
    let second = read_all(&store, &layer.digest).unwrap();
    assert_eq!(first.len() as u64, layer.uncompressed_size);
    assert_eq!(Digest::sha256_of(&first), layer.diff_id);
    assert_eq!(first, second, "the tar is the same every time");
    assert_eq!(
        store.snapshotter().layer_size(&layer.digest).unwrap(),
        layer.uncompressed_size
    );
    // The tar holds what the tree held: hard link and symlink included.
    let mut ar = tar::Archive::new(&first[..]);
    let names: Vec<String> = ar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(names.contains(&"usr/lib/hard".to_string()), "{names:?}");
    assert!(names.contains(&"usr/lib/link".to_string()));
    let report = store.check(false).unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    assert_eq!(report.built_layers_checked, 1);
}

#[test]
fn a_changed_snapshot_is_reported_and_its_tar_never_completes() {
    let root = tempfile::tempdir().unwrap();
    let store = Store::open(root.path()).unwrap();
    let (layer, chain) = built(&store, "b");
    let img = register(&store, &layer, "b:latest");
    let fs_dir = store.snapshotter().path(&chain);
    fs::write(fs_dir.join("usr/lib/pkg/f3"), "changed\n").unwrap();

    let err = read_all(&store, &layer.digest).expect_err("a changed layer must not read");
    assert!(err.to_string().contains("were changed"), "{err}");
    // What was read before the error is never a whole tar: its end (the
    // zero blocks) is held back until the digest is checked.
    let mut partial = Vec::new();
    let mut r = store.open_layer(&layer.digest).unwrap();
    let mut buf = [0u8; 65536];
    while let Ok(n) = r.read(&mut buf) {
        if n == 0 {
            panic!("the stream ended without an error");
        }
        partial.extend_from_slice(&buf[..n]);
    }
    assert!(
        (partial.len() as u64) < layer.uncompressed_size,
        "{} of {} bytes",
        partial.len(),
        layer.uncompressed_size
    );

    let report = store.check(false).unwrap();
    assert!(
        report.problems.iter().any(|p| matches!(
            p,
            Problem::TamperedSnapshot { chain_id, diff_id, .. }
                if *chain_id == chain && *diff_id == layer.diff_id
        )),
        "{:?}",
        report.problems
    );
    assert!(report.has_corruption());
    assert_eq!(report.broken_images, vec![img.id.clone()]);
    let repaired = store.check(true).unwrap();
    assert!(!repaired.repaired.is_empty());
    assert!(
        !store.snapshotter().exists(&chain),
        "the changed snapshot is removed"
    );
    assert!(!store.has_layer(&layer.digest));
}

#[test]
fn gc_keeps_a_built_snapshot_while_an_image_or_cache_entry_names_its_layer() {
    let root = tempfile::tempdir().unwrap();
    let store = Store::open(root.path()).unwrap();
    // Held by the build cache only (an intermediate stage's layer).
    let (cached, cached_chain) = built(&store, "cached");
    store
        .meta()
        .cache_put(
            "key-1",
            &CacheRecord {
                value: "{}".into(),
                blobs: vec![cached.digest.clone()],
                images: Vec::new(),
            },
        )
        .unwrap();
    // Held by nothing.
    let (_, loose_chain) = built(&store, "loose");
    // Held by a tagged image.
    let (tagged, tagged_chain) = built(&store, "tagged");
    register(&store, &tagged, "t:latest");

    let report = store.gc().unwrap();
    assert_eq!(report.snapshots_removed, vec![loose_chain.clone()]);
    assert!(store.snapshotter().exists(&cached_chain));
    assert!(store.snapshotter().exists(&tagged_chain));
    assert!(store.has_layer(&cached.digest));
    assert!(store.has_layer(&tagged.digest));
    // The index only names what is there.
    let links = fs::read_dir(root.path().join("built")).unwrap().count();
    assert_eq!(links, 2);

    // prune -a clears the cache: its layer goes; the tagged one stays.
    store.prune(true).unwrap();
    assert!(!store.snapshotter().exists(&cached_chain));
    assert!(!store.has_layer(&cached.digest));
    assert!(store.has_layer(&tagged.digest));
    let report = store.check(false).unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
}

#[test]
fn a_layer_whose_chain_was_unpacked_from_a_blob_gets_a_blob() {
    let root = tempfile::tempdir().unwrap();
    let store = Store::open(root.path()).unwrap();
    let dir = store.temp_dir("upper").unwrap();
    let up = dir.path().join("upper");
    upper(&up, "same");
    let info = digest_dir(&up, LayerOptions::default()).unwrap();
    let chain = chain_ids(std::slice::from_ref(&info.diff_id))[0].clone();
    // The same layer, unpacked earlier from a blob (a pulled image).
    let blob = strata_store::LayerWriter::new(store.blobs(), LayerOptions::default())
        .write_dir(&up, None)
        .unwrap();
    assert_eq!(blob.diff_id, info.diff_id);
    store
        .snapshotter()
        .prepare(&[(blob.diff_id.clone(), blob.digest.clone())])
        .unwrap();
    assert_eq!(store.snapshotter().built_diff_id(&chain), None);

    let kept = store
        .snapshotter()
        .adopt_built(&chain, &info, &up, None)
        .unwrap();
    assert_eq!(kept.diff_id, info.diff_id);
    assert_ne!(kept.digest, kept.diff_id, "recorded as a gzip blob");
    assert!(store.blobs().exists(&kept.digest));
    assert!(!up.exists(), "the upper dir is consumed");
}

fn meta(mode: u32, uid: u64) -> EntryMeta {
    EntryMeta {
        mode,
        uid,
        gid: uid,
        mtime: 1_600_000_000,
        xattrs: Vec::new(),
    }
}

/// A new store and a layer being written into a snapshot of it.
fn store_with_entries_layer() -> (tempfile::TempDir, Store, EntriesLayer) {
    let root = tempfile::tempdir().unwrap();
    let store = Store::open(root.path()).unwrap();
    let layer = store
        .snapshotter()
        .entries_layer(LayerOptions::default())
        .unwrap();
    (root, store, layer)
}

#[test]
fn a_layer_written_entry_by_entry_is_its_snapshot_alone() {
    let (root, store, mut layer) = store_with_entries_layer();
    let src = tempfile::tempdir().unwrap();
    fs::write(src.path().join("f"), "copied\n").unwrap();
    let b = layer.builder();
    b.add_dir(Path::new("app"), &meta(0o750, 0)).unwrap();
    b.add_file(Path::new("app/f"), &src.path().join("f"), &meta(0o640, 7))
        .unwrap();
    b.add_symlink(Path::new("app/l"), Path::new("f"), &meta(0o777, 0))
        .unwrap();
    b.add_hardlink(Path::new("app/h"), Path::new("app/f"), &meta(0o640, 7))
        .unwrap();
    let info = layer
        .finish(store.snapshotter(), &[], None)
        .unwrap()
        .expect("every entry applies");

    assert_eq!(
        info.digest, info.diff_id,
        "a built layer is named by its tar"
    );
    assert!(store.blobs().list().unwrap().is_empty(), "no blob written");
    let chain = chain_ids(std::slice::from_ref(&info.diff_id))[0].clone();
    let fs_dir = store.snapshotter().path(&chain);
    assert_eq!(
        fs::read_to_string(fs_dir.join("app/h")).unwrap(),
        "copied\n"
    );
    let md = fs::metadata(fs_dir.join("app/f")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((md.mode() & 0o7777, md.uid(), md.nlink()), (0o640, 7, 2));
    // Its tar is made again from the files, and names the layer.
    let tar = read_all(&store, &info.diff_id).unwrap();
    assert_eq!(Digest::sha256_of(&tar), info.diff_id);
    assert_eq!(read_all(&store, &info.diff_id).unwrap(), tar);
    assert!(temp_snapshots(root.path()).is_empty());
}

#[test]
fn an_entry_a_snapshot_cannot_hold_leaves_the_layer_to_a_blob() {
    let (root, store, mut layer) = store_with_entries_layer();
    // A device node is never made by an apply (layers are untrusted).
    layer
        .builder()
        .add_device(Path::new("dev/null"), false, 1, 3, &meta(0o666, 0))
        .unwrap();
    let kept = layer.finish(store.snapshotter(), &[], None).unwrap();
    assert!(kept.is_none(), "the snapshot lacks the device node");
    assert!(store.snapshotter().list().unwrap().is_empty());
    assert!(temp_snapshots(root.path()).is_empty());
}

#[test]
fn a_failed_apply_stops_the_writer_and_is_the_error_reported() {
    let (root, _store, mut layer) = store_with_entries_layer();
    layer
        .builder()
        .add_hardlink(Path::new("h"), Path::new("missing"), &meta(0o644, 0))
        .unwrap();
    let data = vec![1u8; 1 << 20];
    let stopped = (0..64).any(|i| {
        layer
            .builder()
            .add_file_reader(
                Path::new(&format!("f{i}")),
                &mut &data[..],
                data.len() as u64,
                &meta(0o644, 0),
            )
            .is_err()
    });
    assert!(stopped, "the writer went on after its apply failed");
    let cause = layer.apply_error().expect("the apply's error").to_string();
    assert!(cause.contains("hard link target"), "{cause}");
    drop(layer);
    assert!(temp_snapshots(root.path()).is_empty());
}
