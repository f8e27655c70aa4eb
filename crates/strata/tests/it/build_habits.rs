//! Docker's and buildx's `build` habits: the flags CI scripts use, the
//! inputs besides a directory (stdin, git and http contexts), names checked
//! before any step runs, `--cache-from` a local image.

use strata_test_support as support;

use std::io::Write;
use std::path::Path;
use std::process::Command;

use support::*;

fn run_in(root: &Path, image: &str, args: &[&str]) -> String {
    let mut a = vec!["run", "--rm", image];
    a.extend_from_slice(args);
    let o = strata(root, &a);
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o)
}

fn inspect(root: &Path, image: &str) -> serde_json::Value {
    let o = strata(root, &["inspect", image]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    match v {
        serde_json::Value::Array(mut a) => a.remove(0),
        v => v,
    }
}

#[test]
fn label_annotation_iidfile_and_metadata_file() {
    let Some((t, root)) = setup_busybox() else {
        return;
    };
    let ctx = context(&[("Dockerfile", "FROM busybox:1.35\nLABEL from.file=1\n")]);
    let iid = t.path().join("iid");
    let meta = t.path().join("meta.json");
    let o = strata(
        &root,
        &[
            "build",
            "-t",
            "habits/a:1",
            "-t",
            "habits/b",
            "--label",
            "org.opencontainers.image.source=https://example.com/x",
            "--label",
            "from.file=cli",
            "--annotation",
            "org.opencontainers.image.description=hello",
            "--annotation",
            "manifest:com.example.k=v",
            "--iidfile",
            &path_str(&iid),
            "--metadata-file",
            &path_str(&meta),
            "--progress",
            "plain",
            &path_str(ctx.path()),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let id = std::fs::read_to_string(&iid).unwrap();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id:?}");
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&meta).unwrap()).unwrap();
    assert_eq!(m["containerimage.config.digest"], id.as_str());
    assert_eq!(
        m["image.name"],
        "docker.io/habits/a:1,docker.io/habits/b:latest"
    );
    let manifest_digest = m["containerimage.digest"].as_str().unwrap().to_string();
    assert!(manifest_digest.starts_with("sha256:"), "{m}");
    assert_ne!(manifest_digest, id);
    // Labels: the CLI's win over the Dockerfile's.
    let i = inspect(&root, "habits/a:1");
    let labels = &i["Config"]["Labels"];
    assert_eq!(
        labels["org.opencontainers.image.source"], "https://example.com/x",
        "{i}"
    );
    assert_eq!(labels["from.file"], "cli", "{i}");
    // Annotations in the manifest the metadata file names.
    let store = strata_store::Store::open(&root).unwrap();
    let bytes = store
        .blobs()
        .read(&manifest_digest.parse().unwrap())
        .unwrap();
    let man: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        man["annotations"]["org.opencontainers.image.description"],
        "hello"
    );
    assert_eq!(man["annotations"]["com.example.k"], "v");
}

#[test]
fn run_steps_see_add_host_shm_size_and_ulimit() {
    let Some((_t, root)) = setup_busybox() else {
        return;
    };
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox:1.35\nRUN grep db.internal /etc/hosts > /hosts.txt; df -k /dev/shm | tail -1 | awk '{print $2}' > /shm.txt; ulimit -n > /nofile.txt; ulimit -Hn >> /nofile.txt\n",
    )]);
    let o = strata(
        &root,
        &[
            "build",
            "-t",
            "extras",
            "--add-host",
            "db.internal:10.11.12.13",
            "--shm-size",
            "128m",
            "--ulimit",
            "nofile=1024:2048",
            "--progress",
            "plain",
            &path_str(ctx.path()),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        run_in(&root, "extras", &["cat", "/hosts.txt"]),
        "10.11.12.13\tdb.internal\n"
    );
    assert_eq!(run_in(&root, "extras", &["cat", "/shm.txt"]), "131072\n");
    assert_eq!(
        run_in(&root, "extras", &["cat", "/nofile.txt"]),
        "1024\n2048\n"
    );
    // They key the RUN (as in BuildKit): without them it runs again.
    let o = strata(
        &root,
        &[
            "build",
            "-t",
            "plain",
            "--progress",
            "rawjson",
            &path_str(ctx.path()),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let r = step_results(&events(&stdout(&o)));
    assert!(r.iter().all(|(_, c)| !c), "{r:?}");
    assert_eq!(run_in(&root, "plain", &["cat", "/hosts.txt"]), "");
    // Bad values are refused before anything runs.
    for (flag, v) in [
        ("--add-host", "nocolon"),
        ("--ulimit", "nofiles=1"),
        ("--shm-size", "lots"),
    ] {
        let o = strata(&root, &["build", flag, v, &path_str(ctx.path())]);
        assert!(!o.status.success(), "{flag} {v}");
        assert!(!stderr(&o).contains("#1"), "{}", stderr(&o));
    }
}

const CALL_DOCKERFILE: &str = "\
# GO_VERSION sets the toolchain version
ARG GO_VERSION=1.21
# base is where everything starts
FROM busybox:1.35 AS base
# build compiles the program
FROM base AS build
# MODE picks the build mode
ARG MODE=release
RUN --mount=type=secret,id=token --mount=type=ssh true
FROM base AS unnamed-doc
";

#[test]
fn call_targets_outline_and_check() {
    let Some((_t, root)) = setup_busybox() else {
        return;
    };
    let ctx = context(&[("Dockerfile", CALL_DOCKERFILE)]);
    let dir = path_str(ctx.path());
    let o = strata(&root, &["build", "--call", "targets", &dir]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("TARGET") && lines[0].contains("DESCRIPTION"));
    assert!(
        lines[1].starts_with("base") && lines[1].ends_with("is where everything starts"),
        "{out}"
    );
    assert!(
        lines[2].starts_with("build") && lines[2].ends_with("compiles the program"),
        "{out}"
    );
    assert_eq!(lines[3].trim(), "unnamed-doc (default)", "{out}");

    let o = strata(
        &root,
        &["build", "--call", "outline", "--target", "build", &dir],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("TARGET:      build"), "{out}");
    assert!(out.contains("DESCRIPTION: compiles the program"), "{out}");
    let row = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name}: {out}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        row("GO_VERSION"),
        "GO_VERSION 1.21 sets the toolchain version"
    );
    assert_eq!(row("MODE"), "MODE release picks the build mode");
    assert_eq!(row("token"), "token false");
    assert_eq!(row("default"), "default false");

    // --call check is --check.
    let bad = context(&[("Dockerfile", "FROM busybox:1.35 as base\nFROM base\n")]);
    let a = strata(&root, &["build", "--check", &path_str(bad.path())]);
    let b = strata(&root, &["build", "--call", "check", &path_str(bad.path())]);
    assert_eq!(a.status.code(), b.status.code());
    assert_eq!(stdout(&a), stdout(&b));
    assert!(stdout(&b).contains("FromAsCasing"), "{}", stdout(&b));
}

#[test]
fn names_and_context_are_checked_before_any_step() {
    let Some((_t, root)) = setup_busybox() else {
        return;
    };
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox:1.35 AS builder\nRUN echo should-not-run\nFROM busybox:1.35\nCOPY --from=biulder /x /y\n",
    )]);
    let dir = path_str(ctx.path());
    let o = strata(&root, &["build", "-t", "Foo:bar", &dir]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("invalid reference format: repository name must be lowercase"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("should-not-run"));
    let o = strata(&root, &["build", "--progress", "plain", "-t", "ok", &dir]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("did you mean stage `builder`?"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("should-not-run"), "{}", stderr(&o));
    let o = strata(&root, &["build", "--target", "biulder", &dir]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("did you mean"), "{}", stderr(&o));
    let missing = ctx.path().join("nope");
    let o = strata(&root, &["build", &path_str(&missing)]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(&format!(
            "unable to prepare context: path {:?} not found",
            path_str(&missing)
        )),
        "{}",
        stderr(&o)
    );
}

/// A tar of text files (path, contents): [`layer_tar`] of their bytes.
fn tar_of(files: &[(&str, &str)]) -> Vec<u8> {
    let files: Vec<(&str, &[u8])> = files.iter().map(|(p, c)| (*p, c.as_bytes())).collect();
    layer_tar(&files)
}

#[test]
fn dockerfile_and_context_from_stdin() {
    let Some((_t, root)) = setup_busybox() else {
        return;
    };
    // -f -: the Dockerfile on stdin, the context a directory.
    let ctx = context(&[("hello.txt", "from the dir\n")]);
    let o = strata_stdin(
        &root,
        &["build", "-t", "stdin-df", "-f", "-", &path_str(ctx.path())],
        b"FROM busybox:1.35\nCOPY hello.txt /\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        run_in(&root, "stdin-df", &["cat", "/hello.txt"]),
        "from the dir\n"
    );
    // `-`: a tar context (gzip too).
    let tar = tar_of(&[
        ("Dockerfile", "FROM busybox:1.35\nCOPY sub/f.txt /f.txt\n"),
        ("sub/f.txt", "from the tar\n"),
    ]);
    let o = strata_stdin(&root, &["build", "-t", "stdin-tar", "-"], &tar);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        run_in(&root, "stdin-tar", &["cat", "/f.txt"]),
        "from the tar\n"
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let o = strata_stdin(
        &root,
        &["build", "-t", "stdin-tgz", "-"],
        &gz.finish().unwrap(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // -f names a file inside the tar.
    let tar2 = tar_of(&[
        ("Dockerfile", "FROM busybox:1.35\nRUN false\n"),
        (
            "sub/alt.Dockerfile",
            "FROM busybox:1.35\nCOPY sub/f.txt /alt.txt\n",
        ),
        ("sub/f.txt", "alt\n"),
    ]);
    let o = strata_stdin(
        &root,
        &["build", "-t", "stdin-alt", "-f", "sub/alt.Dockerfile", "-"],
        &tar2,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(run_in(&root, "stdin-alt", &["cat", "/alt.txt"]), "alt\n");
    // `-`: a Dockerfile alone, an empty context.
    let o = strata_stdin(
        &root,
        &["build", "-t", "stdin-only", "-"],
        b"FROM busybox:1.35\nRUN echo alone > /a\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(run_in(&root, "stdin-only", &["cat", "/a"]), "alone\n");
    // Nothing left in the store's tmp.
    let left: Vec<_> = std::fs::read_dir(root.join("tmp"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    // A tar trying to escape lands inside the temporary context.
    let mut b = tar::Builder::new(Vec::new());
    let hdr = || {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h
    };
    let mut h = hdr();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    b.append_link(&mut h, "esc", "/").unwrap();
    let mut h = hdr();
    h.set_size(2);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "esc/tmp/strata-escape-test", &b"x\n"[..])
        .unwrap();
    let mut h = hdr();
    let df = "FROM busybox:1.35\n";
    h.set_size(df.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "Dockerfile", df.as_bytes()).unwrap();
    let _ = std::fs::remove_file("/tmp/strata-escape-test");
    let _ = strata_stdin(&root, &["build", "-"], &b.into_inner().unwrap());
    assert!(!Path::new("/tmp/strata-escape-test").exists());
}

#[test]
fn http_tarball_context() {
    let Some((_t, root)) = setup_busybox() else {
        return;
    };
    let tar = tar_of(&[
        ("Dockerfile", "FROM busybox:1.35\nCOPY f.txt /f.txt\n"),
        ("f.txt", "over http\n"),
    ]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let port = serve_http(gz.finish().unwrap(), 1, "");
    let url = format!("http://127.0.0.1:{port}/ctx.tar.gz");
    let o = strata(&root, &["build", "-t", "httpctx", &url]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(run_in(&root, "httpctx", &["cat", "/f.txt"]), "over http\n");
    // A plain file at the URL is the Dockerfile.
    let port = serve_http(b"FROM busybox:1.35\nRUN echo df > /d\n".to_vec(), 1, "");
    let url = format!("http://127.0.0.1:{port}/Dockerfile");
    let o = strata(&root, &["build", "-t", "httpdf", &url]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(run_in(&root, "httpdf", &["cat", "/d"]), "df\n");
}

#[test]
fn git_url_context_with_ref_and_subdir() {
    let Some((_t, root)) = setup_busybox() else {
        return;
    };
    if Command::new("git").arg("--version").output().is_err() {
        eprintln!("SKIPPED: needs git");
        return;
    }
    let repos = tempfile::tempdir().unwrap();
    let work = repos.path().join("work");
    let repo = repos.path().join("repo.git");
    std::fs::create_dir_all(work.join("app")).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(
        work.join("app/Dockerfile"),
        "FROM busybox:1.35\nCOPY v.txt /v.txt\n",
    )
    .unwrap();
    std::fs::write(work.join("app/v.txt"), "v1\n").unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "-q", "-m", "one"]);
    git(&work, &["tag", "v1"]);
    std::fs::write(work.join("app/v.txt"), "v2\n").unwrap();
    std::fs::write(
        work.join("app/alt.Dockerfile"),
        "FROM busybox:1.35\nCOPY v.txt /alt.txt\n",
    )
    .unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "-q", "-m", "two"]);
    let st = Command::new("git")
        .args(["clone", "-q", "--bare"])
        .arg(&work)
        .arg(&repo)
        .status()
        .unwrap();
    assert!(st.success());
    let (mut daemon, port) = git_daemon(repos.path());
    let url = format!("git://127.0.0.1:{port}/repo.git");
    let a = strata(
        &root,
        &["build", "-t", "git-main", &format!("{url}#main:app")],
    );
    let b = strata(&root, &["build", "-t", "git-v1", &format!("{url}#v1:app")]);
    let c = strata(
        &root,
        &["build", "-t", "git-x", &format!("{url}#nosuchref")],
    );
    let d = strata(
        &root,
        &[
            "build",
            "-t",
            "git-alt",
            "-f",
            "alt.Dockerfile",
            &format!("{url}#main:app"),
        ],
    );
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert!(a.status.success(), "{}", stderr(&a));
    assert!(b.status.success(), "{}", stderr(&b));
    assert!(!c.status.success());
    assert!(
        stderr(&c).contains("unable to prepare context"),
        "{}",
        stderr(&c)
    );
    assert_eq!(run_in(&root, "git-main", &["cat", "/v.txt"]), "v2\n");
    assert_eq!(run_in(&root, "git-v1", &["cat", "/v.txt"]), "v1\n");
    assert!(d.status.success(), "{}", stderr(&d));
    assert_eq!(run_in(&root, "git-alt", &["cat", "/alt.txt"]), "v2\n");
}

/// (step name, cached) for every step but FROM.
fn step_results(ev: &[serde_json::Value]) -> Vec<(String, bool)> {
    ev.iter()
        .filter(|e| e["type"] == "step_started" && !e["name"].as_str().unwrap().contains("] FROM "))
        .map(|e| {
            let cached = ev
                .iter()
                .any(|c| c["type"] == "cached" && c["step"] == e["step"]);
            (e["name"].as_str().unwrap().to_string(), cached)
        })
        .collect()
}

#[test]
fn cache_from_a_local_image_reuses_matching_run_steps() {
    if !can_run() {
        return;
    }
    let df = "FROM busybox:1.35\nCOPY a.txt /a.txt\nRUN cat /proc/sys/kernel/random/uuid > /stamp\nENV X=1\nRUN cat /proc/sys/kernel/random/uuid > /stamp2\n";
    let ctx = context(&[("a.txt", "one\n"), ("Dockerfile", df)]);
    let dir = path_str(ctx.path());
    // Store A builds the image; it travels to store B as an archive.
    let (_ta, root_a) = root_dir();
    make_busybox_with(&root_a, Some(946684800));
    let o = strata(&root_a, &["build", "-t", "app:v1", "-q", &dir]);
    assert!(o.status.success(), "{}", stderr(&o));
    let stamp = run_in(&root_a, "app:v1", &["cat", "/stamp", "/stamp2"]);
    let (tb, root_b) = root_dir();
    make_busybox_with(&root_b, Some(946684800));
    let archive = tb.path().join("app.tar");
    let o = strata(&root_a, &["save", "-o", &path_str(&archive), "app:v1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = strata(&root_b, &["load", "-i", &path_str(&archive)]);
    assert!(o.status.success(), "{}", stderr(&o));

    // Without --cache-from everything runs; with it, the RUN steps are
    // taken from the image (the COPY runs and gives the same layer).
    let build_b = |extra: &[&str], tag: &str| {
        let mut args = vec!["build", "-t", tag, "--progress", "rawjson"];
        args.extend_from_slice(extra);
        args.push(&dir);
        let o = strata(&root_b, &args);
        assert!(o.status.success(), "{}", stderr(&o));
        step_results(&events(&stdout(&o)))
    };
    let r = build_b(&["--cache-from", "app:v1"], "app:v2");
    let runs: Vec<bool> = r
        .iter()
        .filter(|(n, _)| n.contains("RUN "))
        .map(|(_, c)| *c)
        .collect();
    assert_eq!(runs, [true, true], "{r:?}");
    assert_eq!(
        run_in(&root_b, "app:v2", &["cat", "/stamp", "/stamp2"]),
        stamp
    );

    // Changed context: the COPY's layer differs, so nothing after it is reused.
    std::fs::write(ctx.path().join("a.txt"), "two\n").unwrap();
    let r = build_b(&["--cache-from", "app:v1"], "app:v3");
    assert!(r.iter().all(|(_, c)| !c), "{r:?}");
    assert_ne!(
        run_in(&root_b, "app:v3", &["cat", "/stamp", "/stamp2"]),
        stamp
    );
    // A --cache-from that is no local image stays a registry cache (a
    // warning, and the build goes on).
    let o = strata(
        &root_b,
        &[
            "build",
            "--cache-from",
            "127.0.0.1:1/nope:cache",
            "-q",
            &dir,
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
}
