//! Build-cache export/import through a real registry and a local directory.

use strata_test_support::registry as support;

use strata_oci::Reference;
use strata_registry::cache;
use strata_registry::{Client, ClientOptions, CredentialStore};
use strata_store::{CacheRecord, Store};
use support::{make_image, Auth, Registry};

fn store() -> (tempfile::TempDir, Store) {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(&d.path().join("root")).unwrap();
    (d, s)
}

fn seeded() -> (tempfile::TempDir, Store, Vec<String>) {
    let (d, a) = store();
    let id = make_image(
        &a,
        "cache/src:1",
        &[vec![("one", b"1")], vec![("two", b"22")]],
        false,
    );
    let layers = a.meta().image(&id).unwrap().unwrap().layers;
    let keys = vec!["sha256:aaaa".to_string(), "sha256:bbbb".to_string()];
    a.meta()
        .cache_put(
            &keys[0],
            &CacheRecord {
                value: r#"{"step":1}"#.into(),
                blobs: vec![layers[0].digest.clone()],
                images: vec![],
            },
        )
        .unwrap();
    a.meta()
        .cache_put(
            &keys[1],
            &CacheRecord {
                value: r#"{"step":2}"#.into(),
                blobs: vec![layers[0].digest.clone(), layers[1].digest.clone()],
                images: vec![],
            },
        )
        .unwrap();
    (d, a, keys)
}

#[test]
fn cache_round_trips_through_a_registry() {
    let reg = Registry::start(Auth::None);
    let (_d, a, keys) = seeded();
    let opts = ClientOptions {
        credential_store: Some(CredentialStore::new(empty_docker_config())),
        ..Default::default()
    };
    let client = Client::new(&reg.host(), &opts).unwrap();
    let r = Reference::parse(&format!("{}/cache/app:buildcache", reg.host())).unwrap();
    cache::export_to_registry(&client, &a, &r, &keys).unwrap();
    let (_e, b) = store();
    assert_eq!(cache::import_from_registry(&client, &b, &r).unwrap(), 2);
    for k in &keys {
        let (ra, rb) = (
            a.meta().cache_get(k).unwrap().unwrap(),
            b.meta().cache_get(k).unwrap().unwrap(),
        );
        assert_eq!((ra.value, ra.blobs.clone()), (rb.value, rb.blobs.clone()));
        assert!(rb.blobs.iter().all(|d| b.blobs().exists(d)));
    }
    assert!(b.check(false).unwrap().is_clean());
}

#[test]
fn cache_round_trips_through_a_directory() {
    let (_d, a, keys) = seeded();
    let dir = tempfile::tempdir().unwrap();
    cache::export_to_dir(&a, dir.path(), &keys[..1]).unwrap();
    let (_e, b) = store();
    assert_eq!(cache::import_from_dir(&b, dir.path()).unwrap(), 1);
    assert_eq!(
        b.meta().cache_get(&keys[0]).unwrap().unwrap().value,
        r#"{"step":1}"#
    );
    assert!(b.meta().cache_get(&keys[1]).unwrap().is_none());
}

/// An empty DOCKER_CONFIG dir shared by the tests (never written): the
/// tests never read the user's credentials, and nothing leaks per run.
fn empty_docker_config() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("empty-docker-config");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
