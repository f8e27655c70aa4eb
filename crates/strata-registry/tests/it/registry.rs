//! The registry client against a real `docker-registry` on 127.0.0.1.

use strata_test_support::{proxy, registry as support};

use std::process::Command;

use strata_oci::{Digest, Platform, Reference};
use strata_registry::{pull, push, ClientOptions, Credential, Error, PullOptions, PushOptions};
use strata_store::Store;
use support::{make_image, Auth, Registry, TokenServer};

fn store() -> (tempfile::TempDir, Store) {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(&d.path().join("root")).unwrap();
    (d, s)
}

fn r(s: &str) -> Reference {
    Reference::parse(s).unwrap()
}

fn with_cred(user: &str, pass: &str) -> ClientOptions {
    ClientOptions {
        credential: Some(Credential {
            username: user.into(),
            password: pass.into(),
        }),
        ..Default::default()
    }
}

fn anon() -> ClientOptions {
    // An empty DOCKER_CONFIG dir: the tests never read the user's credentials.
    ClientOptions {
        credential_store: Some(strata_registry::CredentialStore::new(empty_docker_config())),
        ..Default::default()
    }
}

/// Pushes the image `name` from `store` without credentials.
fn push_anon(store: &Store, name: &str) -> strata_registry::PushedImage {
    let opts = PushOptions {
        client: anon(),
        ..Default::default()
    };
    push(store, &r(name), &opts).unwrap()
}

/// Pulls `name` into `store` without credentials.
fn pull_anon(store: &Store, name: &str) -> Result<strata_registry::PulledImage, Error> {
    let opts = PullOptions {
        client: anon(),
        ..Default::default()
    };
    pull(store, &r(name), &opts)
}

#[test]
fn anonymous_push_pull_round_trip_and_mount() {
    let reg = Registry::start(Auth::None);
    let (_a, a) = store();
    let name = format!("{}/team/app:1", reg.host());
    let id = make_image(
        &a,
        &name,
        &[
            vec![("etc/hello", b"hi\n")],
            vec![("bin/tool", b"#!/bin/sh\necho tool\n")],
        ],
        false,
    );
    let popts = PushOptions {
        client: anon(),
        chunk_size: 100,
        ..Default::default()
    };
    let pushed = push(&a, &r(&name), &popts).unwrap();
    assert_eq!(pushed.uploaded, 3);
    // Pushing again: everything exists.
    let again = push(&a, &r(&name), &popts).unwrap();
    assert_eq!((again.existed, again.uploaded), (3, 0));
    assert_eq!(again.digest, pushed.digest);

    let (_b, b) = store();
    let pulled = pull_anon(&b, &name).unwrap();
    assert_eq!(pulled.id, id);
    assert_eq!(pulled.repo_digest, pushed.digest);
    assert_eq!(pulled.downloaded, 2);
    let info = b.meta().image(&id).unwrap().unwrap();
    assert_eq!(info.manifest_digest, pushed.digest);
    assert_eq!(info.layers, a.meta().image(&id).unwrap().unwrap().layers);
    assert_eq!(
        b.meta().resolve_tag(&r(&name).to_string()).unwrap(),
        Some(id.clone())
    );
    assert!(b.check(false).unwrap().is_clean());
    // Pulling again is a no-op.
    let again = pull_anon(&b, &name).unwrap();
    assert!(again.up_to_date());
    // By digest: no tag.
    let (_c, c) = store();
    let by_digest = r(&format!("{}/team/app@{}", reg.host(), pushed.digest));
    let p = pull(
        &c,
        &by_digest,
        &PullOptions {
            client: anon(),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!((p.id.clone(), p.tagged.clone()), (id.clone(), None));

    // Cross-repository mount: B pushes the same image to another repo.
    let other = format!("{}/team/other:2", reg.host());
    b.meta().tag(&r(&other).to_string(), &id).unwrap();
    let pushed2 = push(&b, &r(&other), &popts).unwrap();
    assert_eq!(pushed2.mounted, 3, "{pushed2:?}");
    assert_eq!(pushed2.digest, pushed.digest);

    // skopeo reads what strata pushed.
    let out = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", &format!("docker://{name}")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["Digest"], pushed.digest.to_string());
    assert_eq!(v["Architecture"], "amd64");
    assert_eq!(v["Layers"].as_array().unwrap().len(), 2);
}

#[test]
fn oci_media_types_are_kept() {
    let reg = Registry::start(Auth::None);
    let (_a, a) = store();
    let name = format!("{}/oci/img:latest", reg.host());
    let id = make_image(&a, &name, &[vec![("a", b"a")]], true);
    let pushed = push_anon(&a, &name);
    let client = strata_registry::Client::new(&reg.host(), &anon()).unwrap();
    let (_, mt, d) = client.get_manifest("oci/img", "latest").unwrap();
    assert_eq!(mt, strata_oci::media_types::OCI_MANIFEST);
    assert_eq!(d, pushed.digest);
    let (_b, b) = store();
    assert_eq!(
        pull(
            &b,
            &r(&name),
            &PullOptions {
                client: anon(),
                ..Default::default()
            }
        )
        .unwrap()
        .id,
        id
    );
}

#[test]
fn basic_auth_with_htpasswd() {
    let reg = Registry::start(Auth::htpasswd("alice", "s3cret"));
    let (_a, a) = store();
    let name = format!("{}/private/img:1", reg.host());
    let id = make_image(&a, &name, &[vec![("f", b"data")]], false);
    let err = push(
        &a,
        &r(&name),
        &PushOptions {
            client: anon(),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err}");
    let err = push(
        &a,
        &r(&name),
        &PushOptions {
            client: with_cred("alice", "wrong"),
            ..Default::default()
        },
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("unauthorized") && msg.contains(&reg.host()),
        "{msg}"
    );
    push(
        &a,
        &r(&name),
        &PushOptions {
            client: with_cred("alice", "s3cret"),
            ..Default::default()
        },
    )
    .unwrap();
    let (_b, b) = store();
    let p = pull(
        &b,
        &r(&name),
        &PullOptions {
            client: with_cred("alice", "s3cret"),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(p.id, id);
    strata_registry::Client::new(&reg.host(), &with_cred("alice", "s3cret"))
        .unwrap()
        .ping()
        .unwrap();
    assert!(
        strata_registry::Client::new(&reg.host(), &with_cred("alice", "nope"))
            .unwrap()
            .ping()
            .is_err()
    );
}

#[test]
fn bearer_token_flow_with_cached_tokens() {
    let ts = TokenServer::start(Some(("bob", "pw")));
    let reg = Registry::start(ts.registry_auth());
    let (_a, a) = store();
    let name = format!("{}/tok/img:1", reg.host());
    let id = make_image(
        &a,
        &name,
        &[vec![("x", b"1")], vec![("y", b"2")], vec![("z", b"3")]],
        false,
    );
    let client = strata_registry::Client::new(&reg.host(), &with_cred("bob", "pw")).unwrap();
    strata_registry::push_with(
        &client,
        &a,
        &r(&name),
        &PushOptions {
            jobs: 4,
            ..Default::default()
        },
    )
    .unwrap();
    let after_push = ts.request_count();
    // One token for the push scope, however many blobs and threads.
    let reqs = ts.requests.lock().unwrap().clone();
    assert!(
        reqs.iter()
            .filter(|s| s.as_str() == "repository:tok/img:pull,push")
            .count()
            <= 2,
        "{reqs:?}"
    );
    let (_b, b) = store();
    let p = strata_registry::pull_with(&client, &b, &r(&name), &PullOptions::default()).unwrap();
    assert_eq!(p.id, id);
    let after_pull = ts.request_count();
    assert_eq!(
        after_pull - after_push,
        1,
        "one token for the pull scope: {:?}",
        ts.requests.lock().unwrap()
    );
    // Cached: a second pull asks for no token at all.
    let (_c, c) = store();
    strata_registry::pull_with(&client, &c, &r(&name), &PullOptions::default()).unwrap();
    assert_eq!(ts.request_count(), after_pull);
    assert_eq!(client.token_requests() as usize, ts.request_count());
    // Wrong password: a clear error.
    let bad = strata_registry::Client::new(&reg.host(), &with_cred("bob", "bad")).unwrap();
    let (_d, d) = store();
    let err = strata_registry::pull_with(&bad, &d, &r(&name), &PullOptions::default()).unwrap_err();
    assert!(err.to_string().contains("unauthorized"), "{err}");
    assert!(d.meta().images().unwrap().is_empty());
}

/// An OCI layout with an index of two platforms, pushed by `skopeo copy --all`.
#[test]
fn pulls_what_skopeo_pushes_with_a_manifest_list() {
    let reg = Registry::start(Auth::None);
    let (_s, src) = store();
    let amd = make_image(&src, "x/amd:1", &[vec![("arch", b"amd64")]], true);
    let arm = make_image(
        &src,
        "x/arm:1",
        &[vec![("arch", b"arm64")], vec![("more", b"m")]],
        true,
    );
    // Patch the arm64 config's architecture: make_image writes amd64.
    let layout = tempfile::tempdir().unwrap();
    let blobs = layout.path().join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let mut descs = Vec::new();
    for (id, arch) in [(&amd, "amd64"), (&arm, "arm64")] {
        let info = src.meta().image(id).unwrap().unwrap();
        let mut cfg: serde_json::Value =
            serde_json::from_slice(&src.blobs().read(&info.config_digest).unwrap()).unwrap();
        cfg["architecture"] = arch.into();
        let cfg_bytes = serde_json::to_vec(&cfg).unwrap();
        let cfg_d = Digest::sha256_of(&cfg_bytes);
        std::fs::write(blobs.join(cfg_d.hex()), &cfg_bytes).unwrap();
        let mut m: serde_json::Value =
            serde_json::from_slice(&src.blobs().read(&info.manifest_digest).unwrap()).unwrap();
        m["config"]["digest"] = cfg_d.to_string().into();
        m["config"]["size"] = cfg_bytes.len().into();
        for l in &info.layers {
            std::fs::copy(src.blobs().path(&l.digest), blobs.join(l.digest.hex())).unwrap();
        }
        let mb = serde_json::to_vec(&m).unwrap();
        let md = Digest::sha256_of(&mb);
        std::fs::write(blobs.join(md.hex()), &mb).unwrap();
        descs.push(serde_json::json!({"mediaType": strata_oci::media_types::OCI_MANIFEST, "digest": md.to_string(), "size": mb.len(), "platform": {"os": "linux", "architecture": arch}}));
    }
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": strata_oci::media_types::OCI_INDEX, "manifests": descs});
    let ib = serde_json::to_vec(&index).unwrap();
    let id_ = Digest::sha256_of(&ib);
    std::fs::write(blobs.join(id_.hex()), &ib).unwrap();
    let top = serde_json::json!({"schemaVersion": 2, "manifests": [{"mediaType": strata_oci::media_types::OCI_INDEX, "digest": id_.to_string(), "size": ib.len(), "annotations": {"org.opencontainers.image.ref.name": "multi"}}]});
    std::fs::write(
        layout.path().join("index.json"),
        serde_json::to_vec(&top).unwrap(),
    )
    .unwrap();
    std::fs::write(
        layout.path().join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let dest = format!("{}/multi/img:1", reg.host());
    let out = Command::new("skopeo")
        .args(["copy", "--all", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:multi", layout.path().display()))
        .arg(format!("docker://{dest}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (_b, b) = store();
    let p = pull_anon(&b, &dest).unwrap();
    assert_eq!(p.repo_digest, id_, "Digest: is the index digest");
    let info = b.meta().image(&p.id).unwrap().unwrap();
    let cfg: serde_json::Value =
        serde_json::from_slice(&b.blobs().read(&info.config_digest).unwrap()).unwrap();
    assert_eq!(cfg["architecture"], "amd64");
    assert_eq!(info.layers.len(), 1);
    assert_eq!(cfg["config"]["Cmd"][0], "/bin/sh");
    assert!(b.check(false).unwrap().is_clean());

    let (_c, c) = store();
    let arm_opts = PullOptions {
        client: anon(),
        platform: Some(Platform::new("linux", "arm64", None)),
        ..Default::default()
    };
    let p = pull(&c, &r(&dest), &arm_opts).unwrap();
    assert_eq!(c.meta().image(&p.id).unwrap().unwrap().layers.len(), 2);
    let none = PullOptions {
        client: anon(),
        platform: Some(Platform::new("linux", "s390x", None)),
        ..Default::default()
    };
    let err = pull(&c, &r(&dest), &none).unwrap_err();
    assert!(
        err.to_string().contains("linux/amd64, linux/arm64"),
        "{err}"
    );
}

#[test]
fn tampered_blob_is_rejected_and_nothing_is_stored() {
    let reg = Registry::start(Auth::None);
    let (_a, a) = store();
    let name = format!("{}/bad/img:1", reg.host());
    let id = make_image(&a, &name, &[vec![("good", b"good content here")]], false);
    push_anon(&a, &name);
    let layer = a.meta().image(&id).unwrap().unwrap().layers[0]
        .digest
        .clone();
    let data = reg.blob_data(&layer);
    let mut bytes = std::fs::read(&data).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&data, bytes).unwrap();

    let (_b, b) = store();
    let before = b.blobs().list().unwrap().len();
    let err = pull_anon(&b, &name).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(err.to_string().contains(&layer.to_string()), "{err}");
    assert!(!b.blobs().exists(&layer));
    assert!(b.meta().images().unwrap().is_empty());
    assert_eq!(b.blobs().list().unwrap().len(), before, "no blob stored");
    assert_eq!(
        std::fs::read_dir(b.root().join("tmp")).unwrap().count(),
        0,
        "no temp file left"
    );
    assert!(b.check(false).unwrap().is_clean());
}

fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn broken_connection_is_resumed_with_range() {
    let reg = Registry::start(Auth::None);
    let (_a, a) = store();
    let big = noise(3 << 20, 7);
    let name = format!("{}/big/img:1", reg.host());
    let id = make_image(&a, &name, &[vec![("big.bin", &big)]], false);
    push_anon(&a, &name);
    let px = proxy::start(reg.port, 1 << 20, proxy::Mode::CutOnce);
    let via = format!("127.0.0.1:{}/big/img:1", px.port);
    let (_b, b) = store();
    let p = pull_anon(&b, &via).unwrap();
    assert_eq!(p.id, id);
    assert_eq!(px.cuts.load(std::sync::atomic::Ordering::SeqCst), 1);
    let reqs = px.requests.lock().unwrap().clone();
    assert!(
        reqs.iter()
            .any(|h| h.to_ascii_lowercase().contains("range: bytes=")),
        "resumed with Range: {reqs:?}"
    );
    assert!(b.check(false).unwrap().is_clean());
}

#[test]
fn refused_chunked_upload_falls_back_to_one_put() {
    let reg = Registry::start(Auth::None);
    let px = proxy::start(reg.port, usize::MAX, proxy::Mode::RefusePatch);
    let (_a, a) = store();
    let name = format!("127.0.0.1:{}/mono/img:1", px.port);
    let id = make_image(&a, &name, &[vec![("etc/data", &noise(3000, 3))]], false);
    push(
        &a,
        &r(&name),
        &PushOptions {
            client: anon(),
            chunk_size: 1024,
            ..Default::default()
        },
    )
    .unwrap();
    let reqs = px.requests.lock().unwrap().clone();
    assert!(
        reqs.iter().any(|h| h.starts_with("PATCH")),
        "tried chunks: {reqs:?}"
    );
    assert!(
        reqs.iter().any(|h| h.starts_with("PUT")
            && h.contains("/blobs/uploads/")
            && !h.to_ascii_lowercase().contains("content-length: 0")),
        "one PUT with the blob: {reqs:?}"
    );
    // What landed in the registry is whole: pull it straight from it.
    let (_b, b) = store();
    let direct = format!("{}/mono/img:1", reg.host());
    let p = pull_anon(&b, &direct).unwrap();
    assert_eq!(p.id, id);
}

#[test]
fn registry_dying_mid_pull_is_a_clear_error_and_the_store_stays_consistent() {
    let reg = Registry::start(Auth::None);
    let (_a, a) = store();
    let big = noise(3 << 20, 11);
    let name = format!("{}/dies/img:1", reg.host());
    let id = make_image(
        &a,
        &name,
        &[vec![("small", b"s")], vec![("big.bin", &big)]],
        false,
    );
    push_anon(&a, &name);
    let px = proxy::start(reg.port, 1 << 20, proxy::Mode::CutThenDie);
    let via = format!("127.0.0.1:{}/dies/img:1", px.port);
    let (_b, b) = store();
    let opts = PullOptions {
        client: ClientOptions {
            retries: Some(2),
            ..anon()
        },
        ..Default::default()
    };
    let err = pull(&b, &r(&via), &opts).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&format!("127.0.0.1:{}", px.port)), "{msg}");
    assert!(b.meta().image(&id).unwrap().is_none());
    assert!(b.meta().images().unwrap().is_empty());
    let big_layer = &a.meta().image(&id).unwrap().unwrap().layers[1].digest;
    assert!(!b.blobs().exists(big_layer));
    assert_eq!(std::fs::read_dir(b.root().join("tmp")).unwrap().count(), 0);
    let report = b.check(false).unwrap();
    assert!(report.is_clean(), "{report:?}");
    // Killing the real registry: the next pull fails clearly too.
    drop(reg);
    let (_c, c) = store();
    let err = pull(&c, &r(&name), &opts).unwrap_err();
    assert!(err.to_string().contains("reachable"), "{err}");
}

#[test]
fn plain_http_only_for_loopback_or_named_registries() {
    let c = strata_registry::Client::new("registry.example:5000", &anon()).unwrap();
    assert_eq!(c.base_url(), "https://registry.example:5000");
    let c = strata_registry::Client::new("docker.io", &anon()).unwrap();
    assert_eq!(c.base_url(), "https://registry-1.docker.io");
    let opts = ClientOptions {
        insecure_registries: vec!["registry.example:5000".into()],
        ..anon()
    };
    let c = strata_registry::Client::new("registry.example:5000", &opts).unwrap();
    assert_eq!(c.base_url(), "http://registry.example:5000");
    assert_eq!(c.plain_http(), Some(strata_registry::PlainHttp::Insecure));
    let c = strata_registry::Client::new("127.0.0.1:5000", &anon()).unwrap();
    assert_eq!(c.plain_http(), Some(strata_registry::PlainHttp::Loopback));
}

#[test]
fn expired_tokens_are_refreshed() {
    let ts = TokenServer::start(None);
    ts.expires_in.store(1, std::sync::atomic::Ordering::SeqCst);
    let reg = Registry::start(ts.registry_auth());
    let (_a, a) = store();
    let name = format!("{}/exp/img:1", reg.host());
    make_image(&a, &name, &[vec![("e", b"1")]], false);
    let client = strata_registry::Client::new(&reg.host(), &anon()).unwrap();
    strata_registry::push_with(&client, &a, &r(&name), &PushOptions::default()).unwrap();
    let (_b, b) = store();
    strata_registry::pull_with(&client, &b, &r(&name), &PullOptions::default()).unwrap();
    let before = ts.request_count();
    // The client keeps a token at least 10 s minus a 5 s margin.
    std::thread::sleep(std::time::Duration::from_secs(6));
    let (_c, c) = store();
    let t0 = client.token_requests();
    strata_registry::pull_with(&client, &c, &r(&name), &PullOptions::default()).unwrap();
    assert_eq!(
        ts.request_count(),
        before + 1,
        "{:?} client {t0} -> {}",
        ts.requests.lock().unwrap(),
        client.token_requests()
    );
}

/// An empty DOCKER_CONFIG dir shared by the tests (never written): the
/// tests never read the user's credentials, and nothing leaks per run.
fn empty_docker_config() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("empty-docker-config");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
