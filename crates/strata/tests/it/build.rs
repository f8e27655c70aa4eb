//! `strata build` end to end against a temp store with a busybox base.

use strata_test_support as support;

use support::*;

#[test]
fn multi_stage_build_runs_and_prints() {
    let Some((_t, root)) = setup_busybox() else {
        return;
    };
    let ctx = context(&[
        ("hello.txt", "hello from strata\n"),
        (
            "Dockerfile",
            "FROM busybox:1.35 AS build\nWORKDIR /src\nCOPY hello.txt .\nRUN cat hello.txt > out.txt && echo built\n\nFROM busybox:1.35\nWORKDIR /root/\nCOPY --from=build /src/out.txt .\nCMD cat /root/out.txt\n",
        ),
    ]);
    let o = strata(
        &root,
        &[
            "build",
            "-t",
            "hello",
            "--progress",
            "plain",
            &path_str(ctx.path()),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("built"), "{}", stderr(&o));
    let o = strata(&root, &["run", "hello"]);
    assert_eq!(stdout(&o), "hello from strata\n", "{}", stderr(&o));
}

/// No container dir and no mount left under the store root.
fn assert_store_clean(root: &std::path::Path) {
    let containers: Vec<_> = std::fs::read_dir(root.join("containers"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(containers.is_empty(), "left behind: {containers:?}");
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let canon = std::fs::canonicalize(root).unwrap();
    assert!(
        !mounts.contains(&*canon.to_string_lossy()),
        "a mount is left under {}",
        canon.display()
    );
}

#[test]
fn noop_rebuild_executes_nothing_and_changed_content_misses() {
    let Some((_t, root)) = setup_busybox() else {
        return;
    };
    let ctx = context(&[
        ("a.txt", "version-1\n"),
        (
            "Dockerfile",
            "FROM busybox:1.35 AS build\nCOPY a.txt /a.txt\nRUN cp /a.txt /b.txt\n\nFROM busybox:1.35\nWORKDIR /app\nCOPY --from=build /b.txt .\nENV X=1\nCMD cat /app/b.txt\n",
        ),
    ]);
    let dir = path_str(ctx.path());
    let build = |extra: &[&str]| {
        let mut args = vec!["build", "-t", "noop", "--progress", "rawjson"];
        args.extend_from_slice(extra);
        args.push(&dir);
        let o = strata(&root, &args);
        assert!(o.status.success(), "{}", stderr(&o));
        events(&stdout(&o))
    };
    let first = build(&[]);
    let id1 = first.iter().find(|e| e["type"] == "build_done").unwrap()["image_id"].clone();
    let second = build(&[]);
    let steps: Vec<_> = second
        .iter()
        .filter(|e| e["type"] == "step_started" && !e["name"].as_str().unwrap().contains("] FROM "))
        .map(|e| e["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps.len(), 6);
    for s in &steps {
        assert!(
            second
                .iter()
                .any(|e| e["type"] == "cached" && e["step"] == *s),
            "step {s} not cached: {second:?}"
        );
    }
    assert!(!second.iter().any(|e| e["type"] == "log"), "something ran");
    let id2 = second.iter().find(|e| e["type"] == "build_done").unwrap()["image_id"].clone();
    assert_eq!(id1, id2, "a no-op rebuild gives the same image");

    // Same size, same mtime (forced back), different content: must miss.
    let a = ctx.path().join("a.txt");
    let mtime = std::process::Command::new("stat")
        .args(["-c", "%y"])
        .arg(&a)
        .output()
        .unwrap();
    let mtime = String::from_utf8(mtime.stdout).unwrap();
    std::fs::write(&a, "version-2\n").unwrap();
    let st = std::process::Command::new("touch")
        .arg("-d")
        .arg(mtime.trim())
        .arg(&a)
        .status()
        .unwrap();
    assert!(st.success());
    let third = build(&[]);
    let copy_step = third
        .iter()
        .find(|e| e["type"] == "step_started" && e["name"].as_str().unwrap().contains("COPY a.txt"))
        .unwrap()["step"]
        .clone();
    assert!(
        !third
            .iter()
            .any(|e| e["type"] == "cached" && e["step"] == copy_step),
        "changed content hit the cache"
    );
    let o = strata(&root, &["run", "noop"]);
    assert_eq!(stdout(&o), "version-2\n", "{}", stderr(&o));

    // --no-cache runs everything again.
    let fourth = build(&["--no-cache"]);
    assert!(!fourth.iter().any(|e| e["type"] == "cached"));
    assert_store_clean(&root);
}

#[test]
fn independent_stages_overlap_and_unneeded_stages_are_skipped() {
    let Some((_t, root)) = setup_busybox() else {
        return;
    };
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox:1.35 AS a\nRUN sleep 2 && echo a > /a\n\nFROM busybox:1.35 AS b\nRUN sleep 2 && echo b > /b\n\nFROM busybox:1.35 AS broken\nRUN exit 1\n\nFROM busybox:1.35\nCOPY --from=a /a /a\nCOPY --from=b /b /b\nCMD cat /a /b\n",
    )]);
    let o = strata(
        &root,
        &[
            "build",
            "-t",
            "par",
            "--progress",
            "rawjson",
            &path_str(ctx.path()),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let ev = events(&stdout(&o));
    let span = |needle: &str| {
        let step = ev
            .iter()
            .find(|e| e["type"] == "step_started" && e["name"].as_str().unwrap().contains(needle))
            .unwrap_or_else(|| panic!("no step {needle}: {ev:?}"));
        let n = step["step"].clone();
        let done = ev
            .iter()
            .find(|e| e["type"] == "step_done" && e["step"] == n)
            .unwrap();
        (
            step["time"].as_str().unwrap().to_string(),
            done["time"].as_str().unwrap().to_string(),
        )
    };
    let (a0, a1) = span("echo a");
    let (b0, b1) = span("echo b");
    assert!(a0 < b1 && b0 < a1, "no overlap: a {a0}..{a1}, b {b0}..{b1}");
    assert!(ev
        .iter()
        .any(|e| e["type"] == "stage_skipped" && e["stage"] == "broken"));
    let o = strata(&root, &["run", "par"]);
    assert_eq!(stdout(&o), "a\nb\n", "{}", stderr(&o));
}

/// Builds `dockerfile` in a context with `files` and returns the failure's stderr.
fn build_fails(dockerfile: &str, files: &[(&str, &str)]) -> String {
    let (_t, root) = root_dir();
    make_busybox(&root);
    let mut all = files.to_vec();
    all.push(("Dockerfile", dockerfile));
    let ctx = context(&all);
    let o = strata(
        &root,
        &["build", "--progress", "plain", &path_str(ctx.path())],
    );
    assert!(!o.status.success(), "the build should fail");
    assert_store_clean(&root);
    stderr(&o)
}

#[test]
fn failing_run_names_the_line_command_and_exit_code() {
    if !can_run() {
        return;
    }
    let err = build_fails(
        "FROM busybox:1.35 AS app\nRUN echo ok\nRUN echo failing; exit 7\n",
        &[],
    );
    assert!(err.contains("Dockerfile:3"), "{err}");
    assert!(err.contains("[app]"), "{err}");
    assert!(err.contains("echo failing; exit 7"), "{err}");
    assert!(err.contains("exit code: 7"), "{err}");
}

#[test]
fn missing_base_image_is_a_clear_error() {
    if !can_run() {
        return;
    }
    let err = build_fails(
        "FROM busybox:1.35\nRUN true\n\nFROM nosuch:2.0\nRUN true\n",
        &[],
    );
    assert!(err.contains("Dockerfile:4"), "{err}");
    // Missing from the store: a pull is tried (no registry is reachable
    // here, or it has no such image), and the error says both.
    assert!(
        err.contains(
            "image nosuch:2.0 is not in the store and pulling docker.io/library/nosuch:2.0 failed"
        ),
        "{err}"
    );
    assert!(err.contains("strata load"), "{err}");
}

#[test]
fn copy_of_a_missing_file_names_the_line() {
    if !can_run() {
        return;
    }
    let err = build_fails(
        "FROM busybox:1.35\nCOPY here.txt /\nCOPY missing.txt /x\n",
        &[("here.txt", "x")],
    );
    assert!(err.contains("Dockerfile:3"), "{err}");
    assert!(
        err.contains("missing.txt: not found in the build context"),
        "{err}"
    );
}

#[test]
fn unknown_chown_user_names_the_line() {
    if !can_run() {
        return;
    }
    let err = build_fails("FROM busybox:1.35\nCOPY --chown=bob f /f\n", &[("f", "x")]);
    assert!(err.contains("Dockerfile:2"), "{err}");
    assert!(err.contains("unable to find user bob"), "{err}");
}

#[test]
fn copy_outside_the_context_is_refused() {
    if !can_run() {
        return;
    }
    let err = build_fails("FROM busybox:1.35\nCOPY ../etc/passwd /x\n", &[]);
    assert!(err.contains("Dockerfile:2"), "{err}");
    assert!(err.contains("outside the build context"), "{err}");
}

#[test]
fn copy_follows_top_level_links_inside_the_context_and_creates_dest_0755() {
    let Some((_t, root)) = setup_busybox() else {
        return;
    };
    let ctx = context(&[
        ("inside.txt", "inside\n"),
        ("d/sub/f", "f\n"),
        (
            "Dockerfile",
            "FROM busybox:1.35\nCOPY abs-link /abs\nCOPY d /dst\nCOPY d/up-link /up\n",
        ),
    ]);
    use std::os::unix::fs::{symlink, PermissionsExt};
    // An absolute link resolves inside the context, never on the host.
    symlink("/inside.txt", ctx.path().join("abs-link")).unwrap();
    // `..` cannot climb out of the context either.
    symlink("../../../../inside.txt", ctx.path().join("d/up-link")).unwrap();
    for d in ["d", "d/sub"] {
        std::fs::set_permissions(ctx.path().join(d), std::fs::Permissions::from_mode(0o775))
            .unwrap();
    }
    build_ok(&root, ctx.path(), "links", &[]);
    let out = run_in(
        &root,
        "links",
        &[
            "sh",
            "-c",
            "cat /abs /up; stat -c '%n %a %F' /abs /dst /dst/sub /dst/up-link",
        ],
    );
    assert_eq!(
        out,
        "inside\ninside\n/abs 644 regular file\n/dst 755 directory\n/dst/sub 775 directory\n/dst/up-link 777 symbolic link\n"
    );

    // A link to a host file that the context does not hold: not found.
    let ctx = context(&[("Dockerfile", "FROM busybox:1.35\nCOPY host-link /x\n")]);
    symlink("/etc/hostname", ctx.path().join("host-link")).unwrap();
    let o = build_with(&root, ctx.path(), "host", &[]);
    assert!(!o.status.success(), "the build should fail");
    let err = stderr(&o);
    assert!(err.contains("Dockerfile:2"), "{err}");
    assert!(err.contains("not found"), "{err}");
}

/// A base whose config carries Docker's top-level `comment` (as `docker
/// import` writes "Imported from -") and an author: a built image keeps
/// the author (BuildKit's OCI config has the field) and drops the comment.
#[test]
fn built_images_drop_the_base_comment_and_keep_its_author() {
    let Some((_t, root)) = setup_busybox() else {
        return;
    };
    {
        let store = strata_store::Store::open(&root).unwrap();
        let base = strata_engine::images::load_image(&store, "busybox:1.35").unwrap();
        let mut cfg = base.config.clone();
        cfg.author = Some("Base Author".into());
        cfg.extra
            .insert("comment".into(), serde_json::json!("Imported from -"));
        cfg.extra
            .insert("docker_version".into(), serde_json::json!("20.10.24"));
        let id = strata_engine::images::commit_image(&store, &cfg, &base.layers, None).unwrap();
        strata_engine::images::tag_image(&store, &id, &["commented:1".into()]).unwrap();
    }
    let ctx = context(&[
        ("Dockerfile", "FROM commented:1\nENV X=1\n"),
        ("m/Dockerfile", "FROM commented:1\nMAINTAINER someone\n"),
    ]);
    build_ok(&root, ctx.path(), "nocomment", &[]);
    let m = ctx.path().join("m/Dockerfile");
    build_ok(&root, ctx.path(), "maint", &["-f", &path_str(&m)]);
    let store = strata_store::Store::open(&root).unwrap();
    let img = strata_engine::images::load_image(&store, "nocomment").unwrap();
    assert!(
        !img.config.extra.contains_key("comment"),
        "{:?}",
        img.config.extra
    );
    assert!(!img.config.extra.contains_key("docker_version"));
    assert_eq!(img.config.author.as_deref(), Some("Base Author"));
    let img = strata_engine::images::load_image(&store, "maint").unwrap();
    assert_eq!(img.config.author.as_deref(), Some("someone"));
}

/// The `unpack` events of a rawjson event list.
fn unpack_events(evs: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    evs.iter().filter(|e| e["type"] == "unpack").collect()
}

/// A store holding only `base` (4 layers, one with a whiteout) as `strata
/// load` leaves it: blobs and image, no snapshot.
/// A new store holding the base of `archive` with none of its layers
/// unpacked, as after a pull: `load` unpacks them (as `docker load` does),
/// so that is checked, then the snapshots are removed.
fn freshly_loaded_base(archive: &std::path::Path) -> (tempfile::TempDir, std::path::PathBuf) {
    let (t, root) = root_dir();
    let o = strata(&root, &["load", "-i", &path_str(archive)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(snapshot_count(&root), 4, "load unpacks the base's 4 layers");
    for e in std::fs::read_dir(root.join("snapshots")).unwrap() {
        std::fs::remove_dir_all(e.unwrap().path()).unwrap();
    }
    (t, root)
}

fn snapshot_count(root: &std::path::Path) -> usize {
    std::fs::read_dir(root.join("snapshots"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn first_build_on_a_freshly_loaded_base_unpacks_under_from() {
    if !can_run() {
        return;
    }
    // The base: busybox + 3 layers, saved and loaded into fresh stores.
    let (_t, src) = root_dir();
    make_busybox(&src);
    let base_ctx = context(&[
        ("b.txt", "bee\n"),
        (
            "Dockerfile",
            "FROM busybox:1.35\nRUN mkdir /data && echo one > /data/a\nCOPY b.txt /data/\nRUN rm /data/a && echo two > /data/c\n",
        ),
    ]);
    build_ok(&src, base_ctx.path(), "base", &[]);
    let archive = _t.path().join("base.tar");
    let o = strata(&src, &["save", "-o", &path_str(&archive), "base"]);
    assert!(o.status.success(), "{}", stderr(&o));

    let ctx = context(&[(
        "Dockerfile",
        "FROM base\nENV X=1\nRUN cat /data/b.txt /data/c && test ! -e /data/a\n",
    )]);
    let dir = path_str(ctx.path());
    let (_r, root) = freshly_loaded_base(&archive);
    assert_eq!(snapshot_count(&root), 0);
    let build = |root: &std::path::Path| {
        let o = strata(root, &["build", "-t", "app", "--progress", "rawjson", &dir]);
        assert!(o.status.success(), "{}", stderr(&o));
        events(&stdout(&o))
    };
    let first = build(&root);
    let unpacks = unpack_events(&first);
    assert!(!unpacks.is_empty(), "no unpack events: {first:?}");
    assert!(unpacks.iter().all(|e| e["step"] == 1), "{unpacks:?}");
    let done: Vec<_> = unpacks.iter().filter(|e| e["layer"].is_string()).collect();
    assert_eq!(done.len(), 4, "one event per layer: {unpacks:?}");
    let last = done
        .iter()
        .max_by_key(|e| e["layers_done"].as_u64())
        .unwrap();
    assert_eq!(last["layers_done"], 4);
    assert_eq!(last["layers_total"], 4);
    assert_eq!(last["bytes_done"], last["bytes_total"]);
    // All of it between FROM's start and FROM's end.
    let pos = |pred: &dyn Fn(&serde_json::Value) -> bool| first.iter().position(pred).unwrap();
    let from_start = pos(&|e| e["type"] == "step_started" && e["step"] == 1);
    let from_done = pos(&|e| e["type"] == "step_done" && e["step"] == 1);
    let unpack_positions: Vec<_> = first
        .iter()
        .enumerate()
        .filter(|(_, e)| e["type"] == "unpack")
        .map(|(i, _)| i)
        .collect();
    assert!(unpack_positions
        .iter()
        .all(|&i| i > from_start && i < from_done));
    assert_eq!(snapshot_count(&root), 5, "4 base layers + the RUN's");

    // A second build unpacks nothing, and neither does a fully cached one
    // whose unpacked snapshots are gone: no step will mount anything. (The
    // RUN's own snapshot is its layer's only copy, not an unpack: it
    // stays, marked by its `layer` file.)
    let second = build(&root);
    assert!(unpack_events(&second).is_empty(), "{second:?}");
    for e in std::fs::read_dir(root.join("snapshots")).unwrap() {
        let p = e.unwrap().path();
        if !p.join("layer").exists() {
            std::fs::remove_dir_all(p).unwrap();
        }
    }
    assert_eq!(snapshot_count(&root), 1, "the RUN's built snapshot");
    let third = build(&root);
    assert!(unpack_events(&third).is_empty(), "{third:?}");
    assert!(third.iter().any(|e| e["type"] == "cached"));
    assert_eq!(
        snapshot_count(&root),
        1,
        "a cached build unpacked something"
    );

    // A stage that mounts nothing (metadata only) unpacks nothing.
    let (_r2, root2) = freshly_loaded_base(&archive);
    let meta = context(&[("Dockerfile", "FROM base\nENV A=1\nLABEL l=v\nCMD [\"x\"]\n")]);
    let o = strata(
        &root2,
        &[
            "build",
            "-t",
            "meta",
            "--progress",
            "rawjson",
            &path_str(meta.path()),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(unpack_events(&events(&stdout(&o))).is_empty());
    assert_eq!(snapshot_count(&root2), 0);

    // Plain progress: one line when the unpack starts, one per layer, all
    // under FROM (#1) and before its DONE.
    let (_r3, root3) = freshly_loaded_base(&archive);
    let o = build_ok(&root3, ctx.path(), "app", &[]);
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    let at = |pat: &str| lines.iter().position(|l| l.contains(pat));
    let start = at("unpacking 4 layers").unwrap_or_else(|| panic!("{err}"));
    assert!(lines[start].starts_with("#1 "), "{err}");
    let per_layer: Vec<_> = lines
        .iter()
        .filter(|l| l.starts_with("#1 ") && l.contains(" unpacked layer "))
        .collect();
    assert_eq!(per_layer.len(), 4, "{err}");
    assert!(per_layer
        .iter()
        .any(|l| l.contains("unpacked layer 4/4 sha256:")));
    assert!(at("#1 DONE").unwrap() > start, "{err}");
    assert!(lines
        .iter()
        .skip(at("#1 DONE").unwrap())
        .all(|l| !l.contains("unpack")));
}
