//! Docker's image habits: `--format` Go templates and JSON, filters,
//! `--digests`, `--no-trunc`, `history -H=false -q`, `inspect -f`,
//! `image prune`, sizes that count file bytes (not tar bytes), `system df`
//! counting a hard-linked file once, prompts before pruning, `--version`,
//! completion scripts and the examples under `--help`.
//!
//! The side-by-side test loads one hand-made docker-archive into Docker
//! and into strata and compares what both print. It skips loudly when
//! `docker info` does not answer (set STRATA_REQUIRE_DOCKER=1 to fail
//! instead), as the compat suite does.

use std::collections::HashSet;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use strata_test_support as support;
use support::{ok, sha256_hex, strata};

const BIN: &str = env!("CARGO_BIN_EXE_strata");

/// The big file's size: hard-linked four times in the first layer.
const BIG: usize = 200_000;

/// Layer 1: `app/hello` (6 bytes), `app/again` (a hard link to it),
/// `app/link` (symlink to `hello`, 5 bytes), `app/big` (BIG bytes) and
/// three hard links to it. Layer 2: only a directory (a WORKDIR: 0B).
fn layers(salt: &[u8]) -> Vec<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    let dir = |b: &mut tar::Builder<Vec<u8>>, name: &str| {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_mtime(1_577_836_800);
        h.set_uid(0);
        h.set_gid(0);
        b.append_data(&mut h, name, std::io::empty()).unwrap();
    };
    dir(&mut b, "app/");
    let file = |b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_mtime(1_577_836_800);
        h.set_uid(0);
        h.set_gid(0);
        b.append_data(&mut h, name, data).unwrap();
    };
    file(&mut b, "app/hello", b"hello\n");
    file(&mut b, "app/big", &vec![7u8; BIG]);
    if !salt.is_empty() {
        file(&mut b, "app/salt", salt);
    }
    let link = |b: &mut tar::Builder<Vec<u8>>, kind, name: &str, target: &str| {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(0o777);
        h.set_size(0);
        h.set_mtime(1_577_836_800);
        h.set_uid(0);
        h.set_gid(0);
        b.append_link(&mut h, name, target).unwrap();
    };
    link(&mut b, tar::EntryType::Link, "app/again", "app/hello");
    link(&mut b, tar::EntryType::Symlink, "app/link", "hello");
    for n in 1..=3 {
        link(
            &mut b,
            tar::EntryType::Link,
            &format!("app/big{n}"),
            "app/big",
        );
    }
    let l1 = b.into_inner().unwrap();
    let mut b = tar::Builder::new(Vec::new());
    dir(&mut b, "work/");
    vec![l1, b.into_inner().unwrap()]
}

/// A docker-archive of a two-layer image tagged `name`; returns its path
/// and the image ID (sha256:...).
fn make_archive(dir: &Path, name: &str, labels: serde_json::Value) -> (PathBuf, String) {
    make_archive_salted(dir, name, labels, b"")
}

/// Like [`make_archive`]; a non-empty `salt` is one more file in layer 1,
/// so the image has layers of its own.
fn make_archive_salted(
    dir: &Path,
    name: &str,
    labels: serde_json::Value,
    salt: &[u8],
) -> (PathBuf, String) {
    let layers = layers(salt);
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| format!("sha256:{}", sha256_hex(l)))
        .collect();
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2020-01-01T00:00:00Z",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["sh", "-c", "echo a > b"],
            "WorkingDir": "/work",
            "Labels": labels,
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [
            {"created": "2020-01-01T00:00:00Z", "created_by": "/bin/sh -c #(nop) COPY dir:0123456789abcdef0123456789abcdef in /app "},
            {"created": "2020-01-01T00:00:00Z", "created_by": "/bin/sh -c #(nop) WORKDIR /work"},
            {"created": "2020-01-01T00:00:00Z", "created_by": "/bin/sh -c #(nop)  CMD [\"sh\" \"-c\" \"echo a > b\"]", "empty_layer": true},
        ],
    });
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_hex = sha256_hex(&config_bytes);
    let path = dir.join(format!("{}.tar", name.replace([':', '/'], "_")));
    let mut ar = tar::Builder::new(std::fs::File::create(&path).unwrap());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        ar.append_data(&mut h, name, data).unwrap();
    };
    add(&format!("{config_hex}.json"), &config_bytes);
    let mut names = Vec::new();
    for l in &layers {
        let n = format!("{}/layer.tar", sha256_hex(l));
        add(&n, l);
        names.push(n);
    }
    let manifest = serde_json::json!([{
        "Config": format!("{config_hex}.json"),
        "RepoTags": [name],
        "Layers": names,
    }]);
    add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    ar.into_inner().unwrap().flush().unwrap();
    (path, format!("sha256:{config_hex}"))
}

/// Content size of layer 1 as Docker counts it: hello (6) + link target
/// (5) + big once.
const LAYER1: u64 = 6 + 5 + BIG as u64;

fn docker_up() -> bool {
    let up = Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !up {
        assert!(
            std::env::var_os("STRATA_REQUIRE_DOCKER").is_none(),
            "STRATA_REQUIRE_DOCKER is set but `docker info` does not answer"
        );
        eprintln!("SKIPPED: docker is not available (`docker info` failed); the side-by-side test did not run");
    }
    up
}

fn docker(args: &[&str]) -> String {
    let o = Command::new("docker")
        .args(args)
        .output()
        .expect("run docker");
    assert!(
        o.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// Same image in Docker and in strata: the same lines from `images
/// --format`, `history`, `history -H=false`, `inspect -f`.
#[test]
fn side_by_side_with_docker() {
    if !docker_up() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let name = format!("strata-habits-sbs-{}:1", std::process::id());
    let (archive, _id) = make_archive(tmp.path(), &name, serde_json::json!({"b": "2", "a": "1"}));
    docker(&["load", "-i", archive.to_str().unwrap()]);
    ok(&root, &["load", "-i", archive.to_str().unwrap()]);
    struct Cleanup(String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = Command::new("docker").args(["rmi", "-f", &self.0]).output();
        }
    }
    let _cleanup = Cleanup(name.clone());
    let repo = name.split(':').next().unwrap();
    // Only this run's image: others of an earlier run may still be there.
    let reference = format!("reference={repo}:*");
    let cases: Vec<Vec<&str>> = vec![
        vec!["images", "--format", "{{.Repository}}:{{.Tag}} {{.Size}}", repo],
        vec!["images", "--format", "table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}\\t{{.Size}}", repo],
        vec!["images", repo],
        vec!["history", &name],
        vec!["history", "--no-trunc", "--format", "{{.ID}} {{.Size}} {{.CreatedBy}}", &name],
        vec!["history", "-H=false", "--format", "{{.Size}}\\t{{.CreatedAt}}", &name],
        vec!["history", "-q", &name],
        vec!["history", "-H=false", &name],
        vec!["history", "--no-trunc", &name],
        vec!["history", "-q", "--no-trunc", &name],
        vec!["images", "--digests", repo],
        vec!["images", "--no-trunc", repo],
        vec!["images", "-q", repo],
        vec!["images", "--filter", "dangling=false", "--filter", &reference, "--format", "{{.Tag}}"],
        vec!["images", "--filter", "label=a=1", "--format", "{{.Repository}}", repo],
        vec!["inspect", "-f", "{{.Config.Cmd}}", &name],
        vec![
            "inspect",
            "-f",
            "{{json .Config.Cmd}} {{.Config.Entrypoint}} {{.Config.Labels}} {{.Config.WorkingDir}} {{len .RootFS.Layers}}",
            &name,
        ],
        vec!["inspect", "-f", "{{range .Config.Env}}{{.}};{{end}} {{.Os}}/{{.Architecture}}", &name],
        vec!["inspect", "-f", "{{json .Config}}", &name],
        // A field Docker's typed Config lacks: the raw JSON answers, and
        // there a null prints `<no value>`.
        vec!["inspect", "-f", "{{.Config.Hostname}}|{{.Config.Entrypoint}}|{{.Config.Labels}}", &name],
        vec!["inspect", "-f", "{{.Config.User}}|{{.Config.OnBuild}}|{{.Config.Volumes}}|{{json .Config.Labels}}", &name],
        vec!["inspect", "-f", "{{json .RootFS}} {{index .Config.Labels \"a\"}}", &name],
        vec!["images", "--format", "json", repo],
        vec!["history", "--format", "json", &name],
    ];
    for args in cases {
        let theirs = docker(&args);
        let ours = ok(&root, &args);
        assert_eq!(ours, theirs, "strata and docker differ on {args:?}");
    }
    // Sizes that tell the truth: layer 1's file bytes, the WORKDIR layer 0B.
    let sizes = ok(
        &root,
        &["history", "-H=false", "--format", "{{.Size}}", &name],
    );
    assert_eq!(sizes, format!("0\n0\n{LAYER1}\n"));
}

#[test]
fn images_format_json_and_table() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let (archive, id) = make_archive(
        tmp.path(),
        "habits/one:1.0",
        serde_json::json!({"tier": "web"}),
    );
    ok(&root, &["load", "-i", archive.to_str().unwrap()]);
    let line = ok(&root, &["images", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "Containers",
            "CreatedAt",
            "CreatedSince",
            "Digest",
            "ID",
            "Repository",
            "SharedSize",
            "Size",
            "Tag",
            "UniqueSize",
            "VirtualSize"
        ]
    );
    assert_eq!(v["Size"], "200kB", "{line}");
    assert_eq!(v["VirtualSize"], "200kB");
    assert_eq!(v["Repository"], "habits/one");
    assert_eq!(v["Tag"], "1.0");
    assert_eq!(v["ID"], &id[7..19]);
    assert_eq!(v["CreatedAt"], "2020-01-01 00:00:00 +0000 UTC");
    // Go's encoder escapes < and >: the line is what `docker` prints.
    assert!(line.contains(r#""Digest":"\u003cnone\u003e""#), "{line}");

    let t = ok(
        &root,
        &[
            "images",
            "--format",
            "table {{.Repository}}:{{.Tag}}\\t{{.Size}}",
        ],
    );
    assert_eq!(t, "REPOSITORY:TAG   SIZE\nhabits/one:1.0   200kB\n");
    let t = ok(
        &root,
        &["images", "--format", "{{.Repository}} {{json .Tag}}"],
    );
    assert_eq!(t, "habits/one \"1.0\"\n");
    let t = ok(&root, &["images", "--no-trunc", "--format", "{{.ID}}"]);
    assert_eq!(t.trim(), id);
    assert_eq!(ok(&root, &["images", "-q", "--no-trunc"]).trim(), id);
    // Recorded when loaded: listing reads no layer (even one gone).
    let mut removed = 0;
    for l in layers(b"") {
        let blob = root.join("blobs/sha256").join(sha256_hex(&l));
        if blob.exists() {
            std::fs::remove_file(&blob).unwrap();
            removed += 1;
        }
    }
    assert_eq!(removed, 2, "the layers are stored as loaded");
    assert_eq!(ok(&root, &["images", "--format", "{{.Size}}"]), "200kB\n");
    // A field that does not exist is an error, as on Docker's struct.
    let o = strata(&root, &["images", "--format", "{{.Nope}}"]);
    assert!(!o.status.success());
    let o = strata(&root, &["images", "--format", "{{.Tag"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("template"));
}

#[test]
fn images_filters_reference_and_digests() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let (a, _) = make_archive(
        tmp.path(),
        "habits/web:1",
        serde_json::json!({"tier": "web"}),
    );
    ok(&root, &["load", "-i", a.to_str().unwrap()]);
    ok(&root, &["tag", "habits/web:1", "habits/web:2"]);
    ok(&root, &["tag", "habits/web:1", "other/db:1"]);
    let f = |args: &[&str]| -> Vec<String> {
        let mut full = vec!["images", "--format", "{{.Repository}}:{{.Tag}}"];
        full.extend_from_slice(args);
        let mut v: Vec<String> = ok(&root, &full).lines().map(str::to_string).collect();
        v.sort();
        v
    };
    assert_eq!(f(&["habits/web"]), ["habits/web:1", "habits/web:2"]);
    assert_eq!(f(&["habits/web:2"]), ["habits/web:2"]);
    assert_eq!(
        f(&["--filter", "reference=habits/*"]),
        ["habits/web:1", "habits/web:2"]
    );
    assert_eq!(f(&["--filter", "reference=*/db:*"]), ["other/db:1"]);
    assert_eq!(f(&["--filter", "reference=habits/*:2"]), ["habits/web:2"]);
    // `*` stops at `/`, as Go's path.Match.
    assert!(f(&["--filter", "reference=*:2"]).is_empty());
    assert_eq!(f(&["--filter", "label=tier=web"]).len(), 3);
    assert_eq!(f(&["--filter", "label=tier"]).len(), 3);
    assert!(f(&["--filter", "label=tier=db"]).is_empty());
    assert!(f(&["--filter", "dangling=true"]).is_empty());
    assert_eq!(f(&["--filter", "dangling=false"]).len(), 3);
    assert!(f(&["--filter", "before=habits/web:1"]).is_empty());
    assert!(f(&["--filter", "since=habits/web:1"]).is_empty());
    let o = strata(&root, &["images", "--filter", "colour=red"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("invalid filter"));

    // An image whose tag moved to another is dangling.
    let (b, _) = make_archive(tmp.path(), "habits/old:1", serde_json::json!({"x": "y"}));
    ok(&root, &["load", "-i", b.to_str().unwrap()]);
    let (c, _) = make_archive(tmp.path(), "habits/old:1", serde_json::json!({"x": "z"}));
    ok(&root, &["load", "-i", c.to_str().unwrap()]);
    assert_eq!(f(&["--filter", "dangling=true"]), ["<none>:<none>"]);

    let t = ok(&root, &["images", "--digests", "habits/web:1"]);
    let head = t.lines().next().unwrap();
    assert!(
        head.starts_with("REPOSITORY   TAG       DIGEST    IMAGE ID"),
        "{t}"
    );
    assert!(t.lines().nth(1).unwrap().contains("<none>"), "{t}");
}

#[test]
fn history_flags_and_inspect_format() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let (a, id) = make_archive(tmp.path(), "habits/h:1", serde_json::Value::Null);
    ok(&root, &["load", "-i", a.to_str().unwrap()]);
    let h = ok(&root, &["history", "-H=false", "habits/h:1"]);
    let lines: Vec<&str> = h.lines().collect();
    assert!(
        lines[0].starts_with("IMAGE          CREATED AT             CREATED BY"),
        "{h}"
    );
    assert!(lines[1].contains("2020-01-01T00:00:00Z"), "{h}");
    assert!(lines[3].contains(&format!("   {LAYER1}   ")), "{h}");
    assert!(
        lines[2].contains("WORKDIR /work") && lines[2].contains("   0   "),
        "{h}"
    );
    let h = ok(&root, &["history", "habits/h:1"]);
    assert!(h.contains("200kB"), "{h}");
    assert!(h.contains("0B"), "{h}");
    assert!(h.contains("…"), "{h}");
    let h = ok(&root, &["history", "--no-trunc", "habits/h:1"]);
    assert!(h.contains(&id), "{h}");
    assert!(
        h.contains("dir:0123456789abcdef0123456789abcdef in /app"),
        "{h}"
    );
    assert_eq!(
        ok(&root, &["history", "-q", "habits/h:1"]),
        format!("{}\n<missing>\n<missing>\n", &id[7..19])
    );
    let j = ok(&root, &["history", "--format", "json", "habits/h:1"]);
    let first: serde_json::Value = serde_json::from_str(j.lines().next().unwrap()).unwrap();
    assert_eq!(first["Size"], "0B");
    assert_eq!(first["CreatedAt"], "2020-01-01T00:00:00Z");

    // inspect: templates, several objects, Docker's empties (null).
    assert_eq!(
        ok(&root, &["inspect", "-f", "{{.Config.Cmd}}", "habits/h:1"]),
        "[sh -c echo a > b]\n"
    );
    assert_eq!(
        ok(
            &root,
            &["inspect", "--format", "{{json .Config.Cmd}}", "habits/h:1"]
        ),
        "[\"sh\",\"-c\",\"echo a > b\"]\n"
    );
    assert_eq!(
        ok(
            &root,
            &[
                "inspect",
                "-f",
                "{{.Config.Entrypoint}} {{.Config.Labels}}",
                "habits/h:1"
            ]
        ),
        "[] map[]\n"
    );
    let two = ok(&root, &["inspect", "-f", "{{.Id}}", "habits/h:1", &id]);
    assert_eq!(two, format!("{id}\n{id}\n"));
    let all: serde_json::Value =
        serde_json::from_str(&ok(&root, &["inspect", "habits/h:1", &id])).unwrap();
    assert_eq!(all.as_array().unwrap().len(), 2);
    assert!(all[0]["Config"]["Entrypoint"].is_null());
    assert!(all[0]["Config"]["Labels"].is_null());
    assert!(all[0]["Config"]["OnBuild"].is_null());
    assert_eq!(all[0]["Config"]["Hostname"], "");
    assert_eq!(all[0]["Size"], LAYER1);
    let o = strata(&root, &["inspect", "habits/h:1", "nope:1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("No such image: nope:1"));
}

#[test]
fn image_prune_removes_dangling_then_all() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let (a, _) = make_archive(tmp.path(), "habits/keep:1", serde_json::json!({"k": "1"}));
    std::fs::rename(&a, tmp.path().join("a.tar")).unwrap();
    let a = tmp.path().join("a.tar");
    let (b, old) = make_archive(tmp.path(), "habits/keep:1", serde_json::json!({"k": "2"}));
    // b first, then a takes its tag: b is dangling.
    ok(&root, &["load", "-i", b.to_str().unwrap()]);
    ok(&root, &["load", "-i", a.to_str().unwrap()]);
    assert_eq!(ok(&root, &["images", "-q"]).lines().count(), 2);
    // Without -f and without a terminal: refused, nothing removed.
    let o = strata(&root, &["image", "prune"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("WARNING! This will remove all dangling images."),
        "{err}"
    );
    assert!(err.contains("--force"), "{err}");
    let out = ok(&root, &["image", "prune", "-f"]);
    assert!(out.starts_with("Deleted Images:\n"), "{out}");
    assert!(out.contains(&format!("deleted: {old}")), "{out}");
    assert!(out.contains("Total reclaimed space:"), "{out}");
    assert_eq!(ok(&root, &["images", "-q"]).lines().count(), 1);
    let out = ok(&root, &["image", "prune", "-a", "-f"]);
    assert!(out.contains("untagged: habits/keep:1"), "{out}");
    assert!(ok(&root, &["images", "-q"]).is_empty());
}

/// Bytes under `dir`, each inode once (files and symlinks): `du`'s
/// accounting in bytes; and the naive sum that counts every link.
fn du_once(dir: &Path, seen: &mut HashSet<(u64, u64)>, naive: &mut u64) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let m = std::fs::symlink_metadata(e.path()).unwrap();
        if m.is_dir() {
            total += du_once(&e.path(), seen, naive);
        } else if m.is_file() || m.file_type().is_symlink() {
            *naive += m.len();
            if seen.insert((m.dev(), m.ino())) {
                total += m.len();
            }
        }
    }
    total
}

fn df_row<'a>(df: &'a str, kind: &str) -> Vec<&'a str> {
    let line = df.lines().find(|l| l.starts_with(kind)).unwrap();
    line[kind.len()..].split_whitespace().collect()
}

/// Unpacks an image's layers as `run` would.
fn unpack(root: &Path, id: &str) {
    let store = strata_store::Store::open(root).unwrap();
    let id: strata_oci::Digest = id.parse().unwrap();
    let info = store.meta().image(&id).unwrap().unwrap();
    let chain: Vec<_> = info
        .layers
        .iter()
        .map(|l| (l.diff_id.clone(), l.digest.clone()))
        .collect();
    store.snapshotter().prepare(&chain).unwrap();
}

fn reclaimable(df: &str) -> String {
    let total = df.lines().find(|l| l.starts_with("Total:")).unwrap();
    total
        .split("reclaimable: ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn system_df_counts_hard_links_once_and_prune_frees_what_it_said() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let (a, old) = make_archive(tmp.path(), "habits/df:1", serde_json::json!({"k": "1"}));
    ok(&root, &["load", "-i", a.to_str().unwrap()]);
    unpack(&root, &old);
    let mut seen = HashSet::new();
    let mut naive = 0;
    let du = du_once(&root.join("snapshots"), &mut seen, &mut naive);
    assert_eq!(du, LAYER1);
    assert!(naive > 3 * BIG as u64, "the links are there: {naive}");
    let df = ok(&root, &["system", "df"]);
    let row = df_row(&df, "Unpacked layers");
    assert_eq!(row[..4], ["2", "2", "200kB", "0B"], "{df}");

    // The tag moves to an image with layers of its own: the old image,
    // its blobs and its unpacked layers become reclaimable.
    let (b, new) = make_archive_salted(
        tmp.path(),
        "habits/df:1",
        serde_json::json!({"k": "2"}),
        &vec![1u8; 50_000],
    );
    std::fs::rename(&b, tmp.path().join("b.tar")).unwrap();
    ok(
        &root,
        &["load", "-i", tmp.path().join("b.tar").to_str().unwrap()],
    );
    unpack(&root, &new);
    let mut seen = HashSet::new();
    let du = du_once(&root.join("snapshots"), &mut seen, &mut 0);
    assert_eq!(du, 2 * LAYER1 + 50_000);
    let df = ok(&root, &["system", "df"]);
    let row = df_row(&df, "Unpacked layers");
    assert_eq!(row[..4], ["4", "2", "450kB", "200kB"], "{df}");
    let reclaim = reclaimable(&df);

    let o = strata(&root, &["system", "prune", "-a"]);
    assert!(!o.status.success(), "no terminal, no -f: refused");
    assert!(String::from_utf8_lossy(&o.stderr).contains("WARNING! This will remove:"));
    let out = ok(&root, &["system", "prune", "-a", "-f"]);
    assert!(out.contains(&format!("deleted: {old}")), "{out}");
    assert!(
        out.ends_with(&format!("Total reclaimed space: {reclaim}\n")),
        "df said {reclaim} reclaimable:\n{df}\nprune said:\n{out}"
    );
    let df = ok(&root, &["system", "df"]);
    assert_eq!(reclaimable(&df), "0B", "{df}");
}

#[test]
fn version_completion_and_help_examples() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let v = ok(root, &["--version"]);
    assert!(v.starts_with("strata "), "{v}");
    let build = v.trim().rsplit(", build ").next().unwrap();
    assert!(
        build == "unknown" || (build.len() >= 7 && build.bytes().all(|b| b.is_ascii_hexdigit())),
        "{v}"
    );
    for shell in ["bash", "zsh", "fish"] {
        let s = ok(root, &["completion", shell]);
        assert!(s.contains("strata"), "{shell}: {s}");
        assert!(s.contains("images"), "{shell}");
    }
    assert!(!strata(root, &["completion", "tcsh"]).status.success());
    for cmd in [
        vec!["images", "--help"],
        vec!["history", "--help"],
        vec!["image", "prune", "--help"],
        vec!["system", "df", "--help"],
        vec!["build", "--help"],
    ] {
        let h = ok(root, &cmd);
        assert!(h.contains("Example:\n  strata "), "{cmd:?}: {h}");
    }
}

/// On a terminal (`script`'s pseudo-terminal) prune asks, as Docker does:
/// `N` (or nothing) keeps everything, `y` goes ahead.
#[test]
fn prune_asks_on_a_terminal() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("SKIPPED: needs `script` (util-linux) for a pseudo-terminal");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let (b, old) = make_archive(tmp.path(), "habits/p:1", serde_json::json!({"k": "2"}));
    std::fs::rename(&b, tmp.path().join("b.tar")).unwrap();
    let (a, _) = make_archive(tmp.path(), "habits/p:1", serde_json::json!({"k": "1"}));
    ok(
        &root,
        &["load", "-i", tmp.path().join("b.tar").to_str().unwrap()],
    );
    ok(&root, &["load", "-i", a.to_str().unwrap()]);
    let ask = |answer: &str| -> String {
        let cmd = format!("{BIN} --root {} image prune", root.display());
        let mut child = Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        child
            .stdin
            .as_mut()
            .unwrap()
            .write_all(answer.as_bytes())
            .unwrap();
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let out = ask("n\n");
    assert!(
        out.contains("WARNING! This will remove all dangling images.\r\nAre you sure you want to continue? [y/N] "),
        "{out:?}"
    );
    assert!(!out.contains("deleted:"), "{out:?}");
    assert_eq!(ok(&root, &["images", "-q"]).lines().count(), 2);
    let out = ask("y\n");
    assert!(out.contains(&format!("deleted: {old}")), "{out:?}");
    assert_eq!(ok(&root, &["images", "-q"]).lines().count(), 1);
}

/// A built image's sizes are file bytes: a 6-byte COPY is 6B, a WORKDIR
/// 0B, a RUN that hard-links a file and makes a symlink counts the copied
/// file once plus the link's target, as Docker's `history` shows them.
#[test]
fn built_layers_count_file_bytes() {
    let Some((_t, root)) = support::setup_busybox() else {
        return;
    };
    let ctx = support::context(&[
        ("six", "hello\n"),
        (
            "Dockerfile",
            "FROM busybox:1.35\nCOPY six /six\nWORKDIR /w\nRUN ln /six /six2 && ln -s six /link\n",
        ),
    ]);
    support::build_ok(&root, ctx.path(), "sizes:1", &["-q"]);
    let sizes = ok(
        &root,
        &["history", "-H=false", "--format", "{{.Size}}", "sizes:1"],
    );
    let h = ok(&root, &["history", "--no-trunc", "sizes:1"]);
    let sizes: Vec<&str> = sizes.lines().take(3).collect();
    assert_eq!(sizes, ["9", "0", "6"], "{h}");
    let h = ok(&root, &["history", "sizes:1"]);
    assert!(h.lines().nth(3).unwrap().contains("   6B   "), "{h}");
    assert!(h.lines().nth(2).unwrap().contains("   0B   "), "{h}");
}
