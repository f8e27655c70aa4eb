//! Content store and metadata db: verification, idempotence, images, tags,
//! cache, leases, and many threads at once.

use std::io::Write;
use std::sync::Arc;

use strata_store::{CacheRecord, Digest, ImageRecord, LayerRecord, Store, StoreError};

fn tmp_entries(store: &Store) -> usize {
    std::fs::read_dir(store.root().join("tmp")).unwrap().count()
}

#[test]
fn ingest_verifies_and_is_idempotent() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let data = b"hello blob".to_vec();
    let want = Digest::sha256_of(&data);
    let (d, n) = store.blobs().ingest(Some(&want), &mut &data[..]).unwrap();
    assert_eq!((d.clone(), n), (want.clone(), data.len() as u64));
    assert!(store.blobs().exists(&d));
    assert_eq!(store.blobs().read(&d).unwrap(), data);
    assert_eq!(store.blobs().size(&d).unwrap(), data.len() as u64);
    assert_eq!(
        store.blobs().path(&d),
        store.root().join("blobs/sha256").join(d.hex())
    );
    // again: cheap, same answer, the reader is not even consumed
    let mut r: &[u8] = b"not read";
    assert_eq!(store.blobs().ingest(Some(&want), &mut r).unwrap().0, want);
    assert_eq!(r, b"not read");
    // without an expected digest
    assert_eq!(store.blobs().ingest(None, &mut &data[..]).unwrap().0, want);
    assert_eq!(tmp_entries(&store), 0);
}

#[test]
fn mismatch_leaves_nothing() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let wrong = Digest::sha256_of(b"something else");
    let err = store
        .blobs()
        .ingest(Some(&wrong), &mut &b"actual data"[..])
        .unwrap_err();
    match &err {
        StoreError::DigestMismatch {
            expected, actual, ..
        } => {
            assert_eq!(expected, &wrong);
            assert_eq!(actual, &Digest::sha256_of(b"actual data"));
        }
        e => panic!("unexpected {e}"),
    }
    assert!(err.to_string().contains(&wrong.to_string()));
    assert!(store.blobs().list().unwrap().is_empty());
    assert_eq!(tmp_entries(&store), 0);
}

#[test]
fn writer_commits_and_drop_cleans() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let mut w = store.blobs().writer().unwrap();
    w.write_all(b"streamed").unwrap();
    assert_eq!(tmp_entries(&store), 1);
    let (d, n) = w.commit(None).unwrap();
    assert_eq!(d, Digest::sha256_of(b"streamed"));
    assert_eq!(n, 8);
    let mut w = store.blobs().writer().unwrap();
    w.write_all(b"abandoned").unwrap();
    drop(w);
    assert_eq!(tmp_entries(&store), 0);
    assert_eq!(store.blobs().list().unwrap(), vec![d]);
}

/// Puts the blobs of a one-layer image made from `seed` into the store
/// and returns its record (not registered).
fn sample_image(store: &Store, seed: &str) -> ImageRecord {
    let layer = format!("layer-{seed}");
    let (ld, ln) = store.blobs().put(None, layer.as_bytes()).unwrap();
    let config = format!("{{\"seed\":\"{seed}\"}}");
    let (cd, _) = store.blobs().put(None, config.as_bytes()).unwrap();
    let manifest = format!("{{\"config\":\"{cd}\",\"layer\":\"{ld}\"}}");
    let (md, _) = store.blobs().put(None, manifest.as_bytes()).unwrap();
    ImageRecord {
        id: cd.clone(),
        manifest_digest: md,
        manifest_media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        config_digest: cd,
        layers: vec![LayerRecord {
            digest: ld,
            diff_id: Digest::sha256_of(format!("diff-{seed}").as_bytes()),
            size: ln,
            uncompressed_size: 1000 + ln,
            media_type: strata_oci::media_types::OCI_LAYER_TAR_GZIP.into(),
        }],
        created: "2024-01-01T00:00:00Z".into(),
    }
}

#[test]
fn images_tags_layers_cache() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let meta = store.meta();
    let rec = sample_image(&store, "a");
    meta.put_image(&rec).unwrap();
    meta.put_image(&rec).unwrap(); // idempotent
    let info = meta.image(&rec.id).unwrap().unwrap();
    assert_eq!(info.size, rec.layers[0].uncompressed_size);
    assert_eq!(info.layers, rec.layers);
    assert!(info.tags.is_empty());

    assert_eq!(
        meta.tag("docker.io/library/a:latest", &rec.id).unwrap(),
        None
    );
    assert_eq!(
        meta.resolve_tag("docker.io/library/a:latest").unwrap(),
        Some(rec.id.clone())
    );
    assert_eq!(
        meta.image(&rec.id).unwrap().unwrap().tags,
        vec!["docker.io/library/a:latest".to_string()]
    );
    let missing = Digest::sha256_of(b"nope");
    assert!(matches!(
        meta.tag("x:1", &missing),
        Err(StoreError::ImageNotFound(_))
    ));
    assert!(matches!(
        meta.remove_image(&rec.id, false),
        Err(StoreError::ImageTagged { .. })
    ));
    assert_eq!(
        meta.find_image_by_id_prefix(&rec.id.hex()[..8]).unwrap(),
        Some(rec.id.clone())
    );

    let l = &rec.layers[0];
    assert_eq!(
        meta.layer_by_diff_id(&l.diff_id, None).unwrap().as_ref(),
        Some(l)
    );
    assert_eq!(
        meta.layer_by_diff_id(&l.diff_id, Some("other")).unwrap(),
        None
    );

    let c = CacheRecord {
        value: "{\"k\":1}".into(),
        blobs: vec![l.digest.clone()],
        images: vec![rec.id.clone()],
    };
    meta.cache_put("key1", &c).unwrap();
    assert_eq!(meta.cache_get("key1").unwrap(), Some(c));
    assert_eq!(meta.cache_get("key2").unwrap(), None);

    assert_eq!(
        meta.remove_image(&rec.id, true).unwrap(),
        vec!["docker.io/library/a:latest".to_string()]
    );
    assert!(meta.image(&rec.id).unwrap().is_none());
    assert_eq!(
        meta.resolve_tag("docker.io/library/a:latest").unwrap(),
        None
    );
}

#[test]
fn repo_digests_resolve_and_go_with_their_image() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let meta = store.meta();
    let rec = sample_image(&store, "rd");
    meta.put_image(&rec).unwrap();
    let name = format!("docker.io/library/rd@{}", Digest::sha256_of(b"manifest"));
    meta.add_repo_digest(&name, &rec.id).unwrap();
    meta.add_repo_digest(&name, &rec.id).unwrap(); // idempotent
    assert_eq!(meta.repo_digests_of(&rec.id).unwrap(), vec![name.clone()]);
    assert_eq!(
        meta.resolve_repo_digest(&name).unwrap(),
        Some(rec.id.clone())
    );
    let by_name = strata_store::transfer::resolve_image(
        &store,
        &format!("rd@{}", Digest::sha256_of(b"manifest")),
    );
    assert_eq!(by_name.unwrap(), Some(rec.id.clone()));
    meta.remove_image(&rec.id, true).unwrap();
    assert_eq!(meta.resolve_repo_digest(&name).unwrap(), None);
}

/// A store written by the first schema (no repo_digests table) is migrated
/// when opened, keeping its data.
#[test]
fn a_version_1_store_is_migrated() {
    let t = tempfile::tempdir().unwrap();
    let id = {
        let store = Store::open(t.path()).unwrap();
        let rec = sample_image(&store, "old");
        store.meta().put_image(&rec).unwrap();
        store.meta().tag("old:1", &rec.id).unwrap();
        rec.id
    };
    let db = rusqlite::Connection::open(t.path().join("meta.db")).unwrap();
    db.execute_batch("DROP TABLE repo_digests; PRAGMA user_version = 1;")
        .unwrap();
    drop(db);
    let store = Store::open(t.path()).unwrap();
    assert_eq!(store.meta().resolve_tag("old:1").unwrap(), Some(id.clone()));
    store
        .meta()
        .add_repo_digest("docker.io/library/old@sha256:00", &id)
        .unwrap();
    assert_eq!(store.meta().repo_digests_of(&id).unwrap().len(), 1);
}

#[test]
fn reopen_keeps_data() {
    let t = tempfile::tempdir().unwrap();
    let id = {
        let store = Store::open(t.path()).unwrap();
        let rec = sample_image(&store, "r");
        store.meta().put_image(&rec).unwrap();
        store.meta().tag("r:1", &rec.id).unwrap();
        rec.id
    };
    let store = Store::open(t.path()).unwrap();
    assert_eq!(store.meta().resolve_tag("r:1").unwrap(), Some(id));
}

#[test]
fn eight_threads_at_once() {
    let t = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(t.path()).unwrap());
    let mut handles = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        handles.push(std::thread::spawn(move || {
            for j in 0..10 {
                // shared blob written by everyone + a private image each
                let shared = vec![7u8; 100_000];
                store.blobs().ingest(None, &mut &shared[..]).unwrap();
                let rec = sample_image(&store, &format!("{i}-{j}"));
                store.meta().put_image(&rec).unwrap();
                store.meta().tag(&format!("t{i}:{j}"), &rec.id).unwrap();
                store
                    .meta()
                    .cache_put(&format!("k{i}-{j}"), &Default::default())
                    .unwrap();
            }
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(store.meta().images().unwrap().len(), 80);
    assert_eq!(store.meta().tags().unwrap().len(), 80);
    assert_eq!(store.blobs().list().unwrap().len(), 80 * 3 + 1);
    assert_eq!(tmp_entries(&store), 0);
}

/// An image note (the build record) is kept beside the image, replaced on
/// write, and removed with the image.
#[test]
fn image_notes_follow_their_image() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let rec = sample_image(&store, "noted");
    store.meta().put_image(&rec).unwrap();
    assert_eq!(store.meta().image_note(&rec.id, "build").unwrap(), None);
    store
        .meta()
        .put_image_note(&rec.id, "build", "{\"a\":1}")
        .unwrap();
    store
        .meta()
        .put_image_note(&rec.id, "build", "{\"a\":2}")
        .unwrap();
    assert_eq!(
        store
            .meta()
            .image_note(&rec.id, "build")
            .unwrap()
            .as_deref(),
        Some("{\"a\":2}")
    );
    store.meta().put_image(&rec).unwrap();
    assert!(store.meta().image_note(&rec.id, "build").unwrap().is_some());
    store.meta().remove_image(&rec.id, true).unwrap();
    assert_eq!(store.meta().image_note(&rec.id, "build").unwrap(), None);
}

/// Step rows (what keyed a build step) are kept beside the cache, found by
/// parent and instruction, and go with their cache entry; the step history
/// remembers the last key of a named step.
#[test]
fn build_step_rows_follow_the_cache() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let meta = store.meta();
    meta.cache_put("k1", &Default::default()).unwrap();
    let info = strata_store::StepInfo {
        key: "k1".into(),
        parent: Some("p".into()),
        instruction: "RUN make".into(),
        def: "{}".into(),
    };
    meta.step_put(&info, Some("[files]")).unwrap();
    assert!(meta.step_exists("k1").unwrap());
    assert_eq!(meta.step_get("k1").unwrap(), Some(info.clone()));
    assert_eq!(meta.step_files("k1").unwrap().as_deref(), Some("[files]"));
    assert_eq!(
        meta.step_find("p", "RUN make", "k2").unwrap(),
        Some(info.clone())
    );
    assert_eq!(meta.step_find("p", "RUN make", "k1").unwrap(), None);
    assert_eq!(meta.step_find("p", "RUN other", "k2").unwrap(), None);
    meta.step_set_last_key("ctx", "build/RUN make/0", "k1")
        .unwrap();
    meta.step_set_last_key("ctx", "build/RUN make/0", "k1b")
        .unwrap();
    assert_eq!(
        meta.step_last_key("ctx", "build/RUN make/0")
            .unwrap()
            .as_deref(),
        Some("k1b")
    );
    // A base's row has no cache entry and stays.
    let base = strata_store::StepInfo {
        key: "b".into(),
        parent: None,
        instruction: "FROM busybox".into(),
        def: "{}".into(),
    };
    meta.step_put(&base, None).unwrap();
    assert!(meta.cache_remove("k1").unwrap());
    assert!(!meta.step_exists("k1").unwrap());
    assert!(meta.step_exists("b").unwrap());
    assert_eq!(meta.step_files("b").unwrap(), None);
    meta.cache_clear().unwrap();
    assert!(!meta.step_exists("b").unwrap());
    assert_eq!(meta.step_last_key("ctx", "build/RUN make/0").unwrap(), None);
}

/// A store written before the step tables (schema v2) is migrated.
#[test]
fn a_version_2_store_gets_the_step_tables() {
    let t = tempfile::tempdir().unwrap();
    {
        let store = Store::open(t.path()).unwrap();
        store.meta().cache_put("old", &Default::default()).unwrap();
    }
    let db = rusqlite::Connection::open(t.path().join("meta.db")).unwrap();
    db.execute_batch(
        "DROP TRIGGER cache_steps_follow_cache; DROP TABLE cache_steps; DROP TABLE step_history;
         PRAGMA user_version = 2;",
    )
    .unwrap();
    drop(db);
    let store = Store::open(t.path()).unwrap();
    assert!(store.meta().cache_get("old").unwrap().is_some());
    store.meta().step_set_last_key("s", "x", "old").unwrap();
    assert!(store.meta().cache_remove("old").unwrap());
}
