//! A layer a build made (RUN, COPY) is stored once: as its snapshot (and
//! its diff ID), not also as a blob. `save` and `push` make its tar again, the same bytes
//! every time and after `system check`; a snapshot whose files were changed
//! is reported by `system check` and never saved or pushed.

use std::path::{Path, PathBuf};
use std::process::Output;

use strata_test_support::registry::{Auth, Registry};
use strata_test_support::{build_ok, context, setup_busybox, stderr, strata};

const DOCKERFILE: &str = "FROM busybox:1.35\n\
    COPY app /app\n\
    COPY --chown=7:8 app/x /owned/x\n\
    RUN mkdir -p /data/a /data/b && for i in 1 2 3 4 5 6 7 8; do echo file $i > /data/a/f$i; done \
    && ln /data/a/f1 /data/b/hard && ln -s ../a/f2 /data/b/soft && rm /bin/vi\n";

/// The Dockerfile and the files its COPY steps take.
fn built_context() -> tempfile::TempDir {
    context(&[
        ("Dockerfile", DOCKERFILE),
        ("app/x", "copied\n"),
        ("app/sub/y", "also copied\n"),
    ])
}

fn ok(o: &Output, what: &str) -> String {
    assert!(o.status.success(), "{what} failed: {}", stderr(o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn blob_count(root: &Path) -> usize {
    std::fs::read_dir(root.join("blobs/sha256"))
        .unwrap()
        .count()
}

/// The snapshot directory of the image's top layer (via the diff-ID index).
fn top_snapshot(root: &Path, name: &str) -> PathBuf {
    let o = strata(root, &["inspect", name]);
    let v: serde_json::Value = serde_json::from_slice(ok(&o, "inspect").as_bytes()).unwrap();
    let layers = v[0]["RootFS"]["Layers"].as_array().unwrap();
    let top = layers.last().unwrap().as_str().unwrap();
    let hex = top.strip_prefix("sha256:").unwrap();
    let chain = std::fs::read_link(root.join("built").join(hex)).expect("the top layer is built");
    root.join("snapshots").join(chain).join("fs")
}

fn save(root: &Path, name: &str, out: &Path) -> Vec<u8> {
    ok(
        &strata(root, &["save", "-o", out.to_str().unwrap(), name]),
        "save",
    );
    std::fs::read(out).unwrap()
}

#[test]
fn a_run_layer_is_stored_once_and_saved_and_pushed_the_same_every_time() {
    let Some((tmp, root)) = setup_busybox() else {
        return;
    };
    let before = blob_count(&root);
    let ctx = built_context();
    build_ok(&root, ctx.path(), "once:1", &[]);
    // The image's config and manifest, and no blob for the RUN's layer
    // or the COPY steps'.
    assert_eq!(blob_count(&root), before + 2);
    let snap = top_snapshot(&root, "once:1");
    assert!(snap.join("data/a/f3").is_file());

    let a = save(&root, "once:1", &tmp.path().join("a.tar"));
    let b = save(&root, "once:1", &tmp.path().join("b.tar"));
    assert!(a == b, "two saves of one image differ");
    let check = strata(&root, &["system", "check"]);
    let report = ok(&check, "system check");
    assert!(report.contains("3 built layers"), "{report}");
    let c = save(&root, "once:1", &tmp.path().join("c.tar"));
    assert!(a == c, "a save after system check differs");

    // The saved image loads into another store and runs.
    let other = tmp.path().join("other");
    ok(
        &strata(
            &other,
            &["load", "-i", tmp.path().join("a.tar").to_str().unwrap()],
        ),
        "load",
    );
    let out = ok(
        &strata(
            &other,
            &[
                "run",
                "--rm",
                "once:1",
                "sh",
                "-c",
                "cat /data/b/hard /data/b/soft /app/x /app/sub/y; stat -c %u:%g /owned/x",
            ],
        ),
        "run",
    );
    assert_eq!(out, "file 1\nfile 2\ncopied\nalso copied\n7:8\n");

    // Two pushes of it give the same manifest (the same gzip bytes).
    let reg = Registry::start(Auth::None);
    let mut digests = Vec::new();
    for repo in ["one", "two"] {
        let name = format!("{}/{repo}:1", reg.host());
        ok(&strata(&root, &["tag", "once:1", &name]), "tag");
        let pushed = ok(&strata(&root, &["push", &name]), "push");
        let digest = pushed
            .split_whitespace()
            .find(|w| w.starts_with("sha256:"))
            .unwrap_or_else(|| panic!("no digest in {pushed}"))
            .to_string();
        digests.push(digest);
    }
    assert_eq!(digests[0], digests[1]);
}

#[test]
fn a_changed_built_layer_is_reported_and_never_saved_or_pushed() {
    let Some((tmp, root)) = setup_busybox() else {
        return;
    };
    let ctx = built_context();
    build_ok(&root, ctx.path(), "once:1", &[]);
    let snap = top_snapshot(&root, "once:1");
    std::fs::write(snap.join("data/a/f4"), "not what was built\n").unwrap();

    let check = strata(&root, &["system", "check"]);
    assert_eq!(check.status.code(), Some(1), "{}", stderr(&check));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        stderr(&check)
    );
    assert!(said.contains("was changed"), "{said}");

    let out = tmp.path().join("x.tar");
    let saved = strata(&root, &["save", "-o", out.to_str().unwrap(), "once:1"]);
    assert!(!saved.status.success(), "a changed layer was saved");
    assert!(
        stderr(&saved).contains("were changed"),
        "{}",
        stderr(&saved)
    );

    let reg = Registry::start(Auth::None);
    let name = format!("{}/changed:1", reg.host());
    ok(&strata(&root, &["tag", "once:1", &name]), "tag");
    let pushed = strata(&root, &["push", &name]);
    assert!(!pushed.status.success(), "a changed layer was pushed");
    assert!(
        stderr(&pushed).contains("were changed"),
        "{}",
        stderr(&pushed)
    );
    let manifest = reg
        .storage()
        .join("docker/registry/v2/repositories/changed/_manifests");
    assert!(!manifest.exists(), "the registry got a manifest");
}

/// The layers of image `name` (diff IDs, base first).
fn layers(root: &Path, name: &str) -> Vec<String> {
    let o = strata(root, &["inspect", name]);
    let v: serde_json::Value = serde_json::from_slice(ok(&o, "inspect").as_bytes()).unwrap();
    v[0]["RootFS"]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect()
}

fn is_built(root: &Path, diff_id: &str) -> bool {
    let hex = diff_id.strip_prefix("sha256:").unwrap();
    // The index entry is a symlink naming the chain (not a path).
    std::fs::symlink_metadata(root.join("built").join(hex)).is_ok()
}

#[test]
fn a_copy_something_mounts_later_is_its_snapshot_and_a_last_copy_is_a_blob() {
    let Some((_tmp, root)) = setup_busybox() else {
        return;
    };
    let before = blob_count(&root);
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM busybox:1.35\nCOPY app /a\nRUN cat /a/x > /ran\nCOPY app /b\n",
        ),
        ("app/x", "copied\n"),
    ]);
    build_ok(&root, ctx.path(), "last:1", &[]);
    let l = layers(&root, "last:1");
    let (first_copy, run, last_copy) = (&l[l.len() - 3], &l[l.len() - 2], &l[l.len() - 1]);
    // The RUN mounted the first COPY's result: applied into its snapshot.
    assert!(is_built(&root, first_copy), "the first COPY is not built");
    assert!(is_built(&root, run));
    // Nothing mounts the last COPY's: a gzip blob, no snapshot made.
    assert!(!is_built(&root, last_copy), "the last COPY was applied");
    assert_eq!(blob_count(&root), before + 3, "config, manifest, last COPY");
    let out = ok(
        &strata(&root, &["run", "--rm", "last:1", "cat", "/ran", "/b/x"]),
        "run",
    );
    assert_eq!(out, "copied\ncopied\n");
}
