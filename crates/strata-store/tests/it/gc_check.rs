//! GC, prune, check/repair, and eight processes working on one store.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use strata_store::{
    CacheRecord, Digest, EntryMeta, ImageRecord, LayerBuilder, LayerOptions, Problem, Store,
};

/// An image with one real layer (so snapshots work too).
fn image(store: &Store, seed: &str, lease: Option<&strata_store::Lease>) -> ImageRecord {
    let mut b = LayerBuilder::new(store.blobs(), LayerOptions::default()).unwrap();
    let m = EntryMeta {
        mode: 0o644,
        ..Default::default()
    };
    b.add_file_reader(Path::new(seed), &mut seed.as_bytes(), seed.len() as u64, &m)
        .unwrap();
    let l = b.finish_leased(lease).unwrap();
    let config = format!("{{\"seed\":\"{seed}\"}}");
    let (cd, _) = store
        .blobs()
        .ingest_leased(None, &mut config.as_bytes(), lease)
        .unwrap();
    let manifest = format!("{{\"config\":\"{cd}\",\"layer\":\"{}\"}}", l.digest);
    let (md, _) = store
        .blobs()
        .ingest_leased(None, &mut manifest.as_bytes(), lease)
        .unwrap();
    ImageRecord {
        id: cd.clone(),
        manifest_digest: md,
        manifest_media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        config_digest: cd,
        layers: vec![l.to_record()],
        created: String::new(),
    }
}

fn all_blobs(r: &ImageRecord) -> Vec<Digest> {
    vec![
        r.manifest_digest.clone(),
        r.config_digest.clone(),
        r.layers[0].digest.clone(),
    ]
}

#[test]
fn gc_keeps_referenced_and_leased_and_removes_the_rest() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let tagged = image(&store, "tagged", None);
    store.meta().put_image(&tagged).unwrap();
    store.meta().tag("tagged:1", &tagged.id).unwrap();
    let untagged = image(&store, "untagged", None);
    store.meta().put_image(&untagged).unwrap();
    let cached = store.blobs().put(None, b"cached").unwrap().0;
    store
        .meta()
        .cache_put(
            "k",
            &CacheRecord {
                value: "{}".into(),
                blobs: vec![cached.clone()],
                images: vec![],
            },
        )
        .unwrap();
    let garbage = store.blobs().put(None, b"garbage").unwrap().0;
    let lease = store.lease("test").unwrap();
    let leased = store
        .blobs()
        .ingest_leased(None, &mut &b"leased"[..], Some(&lease))
        .unwrap()
        .0;
    // a snapshot of the tagged image, and an orphan snapshot
    let chain = vec![(
        tagged.layers[0].diff_id.clone(),
        tagged.layers[0].digest.clone(),
    )];
    store.snapshotter().prepare(&chain).unwrap();
    let orphan = image(&store, "orphan", None);
    let ochain = vec![(
        orphan.layers[0].diff_id.clone(),
        orphan.layers[0].digest.clone(),
    )];
    store.snapshotter().prepare(&ochain).unwrap();
    store.meta().put_layer(&orphan.layers[0]).unwrap();

    let r = store.gc().unwrap();
    for d in all_blobs(&tagged).iter().chain(&all_blobs(&untagged)) {
        assert!(store.blobs().exists(d), "{d} kept");
    }
    assert!(store.blobs().exists(&cached));
    assert!(store.blobs().exists(&leased));
    assert!(!store.blobs().exists(&garbage));
    for d in all_blobs(&orphan) {
        assert!(!store.blobs().exists(&d));
    }
    assert!(r.blobs_removed.contains(&garbage));
    assert!(r.bytes_freed > 0);
    assert_eq!(r.layer_records_removed, 1);
    assert!(store.snapshotter().exists(&tagged.layers[0].diff_id));
    assert!(!store.snapshotter().exists(&orphan.layers[0].diff_id));

    // the lease ends: its blob goes
    drop(lease);
    store.gc().unwrap();
    assert!(!store.blobs().exists(&leased));

    // prune(all): untagged images and the cache go, the tagged image stays
    let r = store.prune(true).unwrap();
    assert_eq!(r.images_removed, vec![untagged.id.clone()]);
    assert_eq!(r.cache_entries_removed, 1);
    assert!(!store.blobs().exists(&cached));
    for d in all_blobs(&untagged) {
        assert!(!store.blobs().exists(&d));
    }
    for d in all_blobs(&tagged) {
        assert!(store.blobs().exists(&d));
    }
    assert!(store.check(false).unwrap().is_clean());
}

#[test]
fn dead_leases_expire() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let lease = store.lease("crashing build").unwrap();
    let d = store
        .blobs()
        .ingest_leased(None, &mut &b"x"[..], Some(&lease))
        .unwrap()
        .0;
    // simulate a crash: the row stays, the lock is released
    std::mem::forget(lease);
    let leases = store.meta().leases().unwrap();
    assert_eq!(leases.len(), 1);
    // our own process still holds the forgotten lock fd: release it by
    // removing the lock file and letting GC find an unheld one.
    let lock = store
        .root()
        .join("leases")
        .join(format!("{}.lock", leases[0].id));
    fs::remove_file(&lock).unwrap();
    let r = store.gc().unwrap();
    assert_eq!(r.leases_expired, 1);
    assert!(!store.blobs().exists(&d));
}

#[test]
fn check_finds_corruption_and_repair_removes_it() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let img = image(&store, "victim", None);
    store.meta().put_image(&img).unwrap();
    store.meta().tag("victim:1", &img.id).unwrap();
    assert!(store.check(false).unwrap().is_clean());

    // flip a byte of the layer blob
    let layer = img.layers[0].digest.clone();
    let p = store.blobs().path(&layer);
    let mut bytes = fs::read(&p).unwrap();
    bytes[10] ^= 0xff;
    fs::write(&p, &bytes).unwrap();
    // a leftover from a dead process and an incomplete snapshot
    fs::write(store.root().join("tmp/blob-999999999-0-0"), b"junk").unwrap();
    fs::create_dir_all(store.root().join("snapshots").join("f".repeat(64))).unwrap();

    let r = store.check(false).unwrap();
    assert!(r.has_corruption());
    assert!(r
        .problems
        .iter()
        .any(|p| matches!(p, Problem::CorruptBlob { digest, .. } if *digest == layer)));
    assert!(r
        .problems
        .iter()
        .any(|p| matches!(p, Problem::Leftover { .. })));
    assert!(r
        .problems
        .iter()
        .any(|p| matches!(p, Problem::IncompleteSnapshot { .. })));
    assert_eq!(r.broken_images, vec![img.id.clone()]);
    assert!(store.blobs().exists(&layer), "check alone changes nothing");

    let r = store.check(true).unwrap();
    assert!(!r.repaired.is_empty());
    assert!(!store.blobs().exists(&layer));
    assert_eq!(fs::read_dir(store.root().join("tmp")).unwrap().count(), 0);
    // the image is left, reported broken
    assert!(store.meta().image(&img.id).unwrap().is_some());
    let again = store.check(false).unwrap();
    assert_eq!(again.broken_images, vec![img.id.clone()]);
    assert!(again.problems.iter().all(|p| matches!(
        p,
        Problem::MissingBlob { .. } | Problem::MissingLayerBlob { .. }
    )));
}

/// Child mode for `eight_processes`: runs only when STRATA_STORE_CHILD is set.
#[test]
fn child_worker() {
    let Ok(root) = std::env::var("STRATA_STORE_CHILD") else {
        return;
    };
    let n: usize = std::env::var("STRATA_STORE_CHILD_N")
        .unwrap()
        .parse()
        .unwrap();
    let store = Store::open(Path::new(&root)).unwrap();
    for j in 0..6 {
        if n == 0 {
            // one process collects garbage over and over while the others work
            store.gc().unwrap();
            continue;
        }
        let lease = store.lease("child").unwrap();
        let shared = vec![42u8; 300_000];
        store
            .blobs()
            .ingest_leased(None, &mut &shared[..], Some(&lease))
            .unwrap();
        let img = image(&store, &format!("p{n}-{j}"), Some(&lease));
        store.meta().put_image(&img).unwrap();
        store.meta().tag(&format!("p{n}:{j}"), &img.id).unwrap();
        let chain = vec![(img.layers[0].diff_id.clone(), img.layers[0].digest.clone())];
        store
            .snapshotter()
            .prepare_leased(&chain, Some(&lease))
            .unwrap();
    }
    std::io::stdout().flush().unwrap();
}

#[test]
fn eight_processes() {
    if std::env::var("STRATA_STORE_CHILD").is_ok() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("store");
    Store::open(&root).unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..8)
        .map(|n| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "gc_check::child_worker",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("STRATA_STORE_CHILD", &root)
                .env("STRATA_STORE_CHILD_N", n.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let store = Store::open(&root).unwrap();
    assert_eq!(store.meta().tags().unwrap().len(), 7 * 6);
    store.gc().unwrap();
    let r = store.check(false).unwrap();
    assert!(r.is_clean(), "{:?}", r.problems);
    assert_eq!(store.meta().leases().unwrap().len(), 0);
    for img in store.meta().images().unwrap() {
        assert!(store.blobs().exists(&img.layers[0].digest));
    }
}

/// A temp dir made with `Store::temp_dir` is locked while held: prune and
/// `check --repair` leave it however old it is; an unlocked old entry of
/// the same shape is removed; dropping the guard removes the dir.
#[test]
fn held_temp_dirs_survive_gc_and_repair_however_old() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let age = |p: &Path| {
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
        fs::File::open(p).unwrap().set_modified(old).unwrap();
    };
    let held = store.temp_dir("mnt").unwrap();
    fs::write(held.path().join("f"), b"x").unwrap();
    age(held.path());
    let name = held
        .path()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        name.starts_with(&format!("mnt-{}-", std::process::id())),
        "{name}"
    );
    let orphan = store.root().join("tmp/mnt-0123abcd");
    fs::create_dir(&orphan).unwrap();
    age(&orphan);

    store.prune_images(false).unwrap();
    assert!(
        held.path().join("f").exists(),
        "prune removed a held temp dir"
    );
    assert!(!orphan.exists(), "prune kept an abandoned temp dir");
    store.check(true).unwrap();
    assert!(
        held.path().join("f").exists(),
        "repair removed a held temp dir"
    );
    assert!(store.check(false).unwrap().is_clean());

    let p = held.path().to_path_buf();
    drop(held);
    assert!(!p.exists());
}

/// A FIFO in ROOT/tmp (strata makes none; anything may have put one
/// there) is removed by GC and repair like any leftover, never opened for
/// reading (that would wait for a writer forever).
#[test]
fn a_fifo_in_the_temp_dir_never_blocks_gc() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let fifo = store.root().join("tmp/blob-999999999-0-0");
    let st = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(st.success());
    let root = store.root().to_path_buf();
    drop(store);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let store = Store::open(&root).unwrap();
        let n = store.remove_dead_temp_blobs().unwrap();
        let r = store.prune(false).unwrap();
        let _ = tx.send((n, r.tmp_removed));
    });
    let (n, removed) = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("GC blocked on a FIFO in ROOT/tmp");
    assert_eq!(n + removed, 1);
    assert!(fs::symlink_metadata(&fifo).is_err());
}

#[test]
fn a_multi_platform_tag_keeps_every_platform_and_its_index_until_retagged() {
    use strata_oci::Platform;
    use strata_store::transfer::{index_entries, resolve_image_for, tag_index, IndexEntry};
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let amd = image(&store, "amd", None);
    let arm = image(&store, "arm", None);
    store.meta().put_image(&amd).unwrap();
    store.meta().put_image(&arm).unwrap();
    let name = "docker.io/library/multi:1";
    let entries = [
        IndexEntry {
            platform: Platform::parse("linux/aarch64").unwrap(),
            image: arm.id.clone(),
        },
        IndexEntry {
            platform: Platform::parse("linux/amd64").unwrap(),
            image: amd.id.clone(),
        },
    ];
    let index = tag_index(&store, name, &entries, None).unwrap();
    // The plain tag is the host's platform; each platform resolves to its own.
    assert_eq!(
        store.meta().resolve_tag(name).unwrap(),
        Some(amd.id.clone())
    );
    let arm64 = Platform::parse("linux/arm64/v8").unwrap();
    assert_eq!(
        resolve_image_for(&store, "multi:1", &arm64).unwrap(),
        Some(arm.id.clone())
    );
    let e = resolve_image_for(&store, "multi:1", &Platform::parse("linux/s390x").unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("linux/s390x") && e.contains("linux/arm64, linux/amd64"),
        "{e}"
    );
    let (d, got) = index_entries(&store, "multi:1").unwrap().unwrap();
    assert_eq!(d, index);
    assert_eq!(got.len(), 2);

    // GC keeps both images and the index blob.
    store.prune_images(false).unwrap();
    for r in [&amd, &arm] {
        for b in all_blobs(r) {
            assert!(store.blobs().exists(&b), "{b}");
        }
    }
    assert!(store.blobs().exists(&index));

    // Tagging the name with one image drops the index: arm64 becomes garbage.
    store.meta().tag(name, &amd.id).unwrap();
    assert!(index_entries(&store, name).unwrap().is_none());
    store.prune_images(false).unwrap();
    assert!(!store.blobs().exists(&index));
    assert!(store.meta().image(&arm.id).unwrap().is_none());
    assert!(store.meta().image(&amd.id).unwrap().is_some());
}

#[test]
fn register_image_leases_then_inserts_then_tags() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let lease = store.lease("test").unwrap();
    let first = image(&store, "first", Some(&lease));
    let prev = store
        .register_image(&first, Some(&lease), &["docker.io/library/x:1".into()])
        .unwrap();
    assert_eq!(prev, vec![None]);
    // Untagged but leased: `image prune` keeps it while the lease lives.
    let second = image(&store, "second", Some(&lease));
    assert!(store
        .register_image(&second, Some(&lease), &[])
        .unwrap()
        .is_empty());
    store.prune_images(false).unwrap();
    assert!(store.meta().image(&second.id).unwrap().is_some());
    // Moving the tag reports the image it pointed at.
    let prev = store
        .register_image(&second, None, &["docker.io/library/x:1".into()])
        .unwrap();
    assert_eq!(prev, vec![Some(first.id.clone())]);
    drop(lease);
    store.prune_images(false).unwrap();
    assert!(store.meta().image(&first.id).unwrap().is_none());
    assert!(store.meta().image(&second.id).unwrap().is_some());
}
