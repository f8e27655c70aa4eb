//! `strata image explain` and `strata check`'s ToolchainInFinalImage with
//! `--suggest-multistage`, on the Docker tutorial (examples/tutorial): the
//! base images golang:1.19 and busybox:1.35 come from
//! scripts/make-base-rootfs.sh through `strata import`, as the rootless
//! test makes them. Needs root, runc and busybox-static (skips loudly).

use strata_test_support as support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{can_run, root_dir, setup_busybox, stderr, stdout, strata};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn ok(root: &Path, args: &[&str]) -> String {
    let o = strata(root, args);
    assert!(
        o.status.success(),
        "strata {args:?} failed:\n{}\n{}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// Imports busybox:1.35 and golang:1.19 made by make-base-rootfs.sh.
fn import_tutorial_bases(root: &Path) {
    let dir = support::process_scratch_dir(Path::new(env!("CARGO_TARGET_TMPDIR")), "explain-bases");
    let script = repo().join("scripts/make-base-rootfs.sh");
    let o = Command::new(&script).arg(&dir).output().unwrap();
    assert!(o.status.success(), "make-base-rootfs: {}", stderr(&o));
    for (img, tag) in [("busybox", "busybox:1.35"), ("golang", "golang:1.19")] {
        let o = Command::new(&script)
            .args(["--print-changes", img])
            .output()
            .unwrap();
        let changes = stdout(&o);
        let tar = dir.join(format!("{img}.tar")).display().to_string();
        let mut args = vec!["import", tar.as_str(), tag];
        for c in changes.lines() {
            args.push("--change");
            args.push(c);
        }
        ok(root, &args);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The uncompressed size `image ls --format json` reports.
fn image_size(root: &Path, name: &str) -> u64 {
    let out = ok(root, &["image", "explain", "--format", "json", name]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["size"].as_u64().unwrap()
}

#[test]
fn tutorial_toolchain_rule_suggestion_and_explain() {
    if !can_run() {
        return;
    }
    let (_t, root) = root_dir();
    import_tutorial_bases(&root);
    let first = repo().join("examples/tutorial/First_Try");
    let second = repo().join("examples/tutorial/Second_Try");
    let first_s = first.display().to_string();
    let second_s = second.display().to_string();

    // The rule, on the single-stage tutorial only.
    let o = strata(&root, &["check", &first_s]);
    let out = stdout(&o);
    assert!(
        out.contains("Dockerfile:1:1: ToolchainInFinalImage:") && out.contains("golang:1.19"),
        "{out}"
    );
    let o = strata(&root, &["check", &second_s]);
    assert!(
        !stdout(&o).contains("ToolchainInFinalImage"),
        "{}",
        stdout(&o)
    );

    // Build both; the build ends with the summary line.
    let o = strata(
        &root,
        &["build", "--progress", "plain", "-t", "first", &first_s],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let summary = stderr(&o);
    assert!(
        summary.contains("image size 472MB, base golang:1.19 470MB")
            && summary.contains("largest step RUN /bin/sh -c go build"),
        "{summary}"
    );
    let o = strata(&root, &["build", "-q", "-t", "second", &second_s]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        !stderr(&o).contains("image size"),
        "-q keeps quiet: {}",
        stderr(&o)
    );

    // The suggestion, from the built image: the static binary on scratch.
    let suggested = ok(
        &root,
        &[
            "check",
            "--suggest-multistage",
            "--image",
            "first",
            &first_s,
        ],
    );
    eprintln!("suggested:\n{suggested}");
    assert!(
        suggested.starts_with("FROM golang:1.19 AS build\n"),
        "{suggested}"
    );
    assert!(
        suggested.contains(
            "FROM scratch\nCOPY --from=build /app/app /app/app\nWORKDIR /app\nENTRYPOINT [\"/app/app\"]\n"
        ),
        "{suggested}"
    );
    // --build builds the Dockerfile itself first: the same suggestion.
    let built = ok(
        &root,
        &["check", "--suggest-multistage", "--build", &first_s],
    );
    assert_eq!(built, suggested);
    let tmp = tempfile::tempdir().unwrap();
    let df = tmp.path().join("Dockerfile.multistage");
    std::fs::write(&df, &suggested).unwrap();
    let df_s = df.display().to_string();
    ok(
        &root,
        &["build", "-q", "-t", "suggested", "-f", &df_s, &first_s],
    );
    let printed = ok(&root, &["run", "--rm", "suggested"]);
    assert_eq!(printed, "DevOps is the \u{1F410}\n");
    let (big, small) = (image_size(&root, "first"), image_size(&root, "suggested"));
    assert!(
        big >= 50 * small,
        "first {big} bytes vs suggested {small} bytes: not 50x smaller"
    );
    // The rewritten file passes the rule.
    let o = strata(&root, &["check", "-f", &df_s, &first_s]);
    assert!(
        !stdout(&o).contains("ToolchainInFinalImage"),
        "{}",
        stdout(&o)
    );

    // A glibc-linked program (the toolchain's own `go`): its loader and
    // libc go into scratch with it, read from the ELF file (no ldd).
    let dyn_ctx = support::context(&[(
        "Dockerfile",
        "FROM golang:1.19\nWORKDIR /w\nRUN go build fmt\nENV GOROOT=/w\nCMD [\"go\", \"version\"]\n",
    )]);
    let dyn_s = dyn_ctx.path().display().to_string();
    ok(&root, &["build", "-q", "-t", "dyn", &dyn_s]);
    let suggested = ok(
        &root,
        &["check", "--suggest-multistage", "--image", "dyn", &dyn_s],
    );
    let mut expected = vec![
        "FROM scratch\n",
        "COPY --from=build /usr/local/go/bin/go /usr/local/go/bin/go\n",
        "ENV GOROOT=/w\nCMD [\"go\", \"version\"]\n",
    ];
    if cfg!(target_arch = "x86_64") {
        expected.extend([
            "COPY --from=build /lib64/ld-linux-x86-64.so.2 /lib64/ld-linux-x86-64.so.2\n",
            "COPY --from=build /lib/x86_64-linux-gnu/libc.so.6 /lib/x86_64-linux-gnu/libc.so.6\n",
        ]);
    }
    for line in expected {
        assert!(suggested.contains(line), "{line} missing in:\n{suggested}");
    }
    std::fs::write(dyn_ctx.path().join("Dockerfile.multistage"), &suggested).unwrap();
    let dyn_df = dyn_ctx
        .path()
        .join("Dockerfile.multistage")
        .display()
        .to_string();
    ok(
        &root,
        &["build", "-q", "-t", "dyn-small", "-f", &dyn_df, &dyn_s],
    );
    let printed = ok(&root, &["run", "--rm", "dyn-small"]);
    assert!(printed.starts_with("go version go1.19"), "{printed}");

    // explain on Second_Try: ~470 MB left behind in `build`, the binary taken.
    let out = ok(&root, &["image", "explain", "second"]);
    eprintln!("{out}");
    let stages = out.split("Stages (final: stage-1):").nth(1).expect(&out);
    let build_row = stages
        .lines()
        .find(|l| l.starts_with("build "))
        .expect("a row for the build stage");
    let cols: Vec<&str> = build_row.split_whitespace().collect();
    assert_eq!(cols[1], "golang:1.19", "{build_row}");
    assert_eq!(cols[4], "472MB", "total: {build_row}");
    assert_eq!(cols[5], "1.82MB", "taken: {build_row}");
    assert_eq!(cols[6], "471MB", "left behind: {build_row}");
    assert!(
        stages.contains("stage-1 took 1.82MB from build: /app/app -> . (line 8)"),
        "{stages}"
    );
    // The chmod rewrites the copied binary: wasted, and both steps named.
    assert!(
        out.contains("added by layer 2 (COPY --from=build /app/app .), overwritten by layer 3 (RUN /bin/sh -c chmod +x /root/app)"),
        "{out}"
    );
    let v: serde_json::Value = serde_json::from_str(&ok(
        &root,
        &["image", "explain", "--format", "json", "second"],
    ))
    .unwrap();
    let build = &v["stages"]["stages"][0];
    assert_eq!(build["name"], "build");
    assert!(
        build["left_behind"].as_u64().unwrap() > 460_000_000,
        "{build}"
    );
    assert_eq!(v["stages"]["copies"][0]["paths"][0], "/app/app");

    // explain on First_Try: one stage, the final one, the toolchain in it.
    let out = ok(&root, &["image", "explain", "first"]);
    assert!(out.contains("Stages (final: stage-0):"), "{out}");
    assert!(
        out.contains("/usr/local/go 456MB") && out.contains("files: /app/app 1.82MB"),
        "{out}"
    );
}

#[test]
fn explain_names_bytes_a_later_rm_wastes() {
    let Some((_t, root)) = setup_busybox() else {
        return;
    };
    let ctx = support::context(&[(
        "Dockerfile",
        "FROM busybox:1.35\nRUN dd if=/dev/zero of=/big bs=1024 count=3000\nRUN echo small > /small\nRUN rm /big\n",
    )]);
    let ctx_s = ctx.path().display().to_string();
    ok(&root, &["build", "-q", "-t", "wasteful", &ctx_s]);
    let out = ok(&root, &["image", "explain", "wasteful"]);
    eprintln!("{out}");
    assert!(out.contains("wasted 3.07MB"), "{out}");
    assert!(
        out.contains(
            "3.07MB in 1 file(s) added by layer 2 (RUN /bin/sh -c dd if=/dev/zero of=/big bs=1024 count=3000), deleted by layer 4 (RUN /bin/sh -c rm /big)"
        ),
        "{out}"
    );
    assert!(out.contains("    /big 3.07MB"), "{out}");
    let v: serde_json::Value = serde_json::from_str(&ok(
        &root,
        &["image", "explain", "--format", "json", "wasteful"],
    ))
    .unwrap();
    assert_eq!(v["wasted_bytes"], 3_072_000);
    assert_eq!(v["wasted"][0]["how"], "deleted");
    assert_eq!(v["wasted"][0]["added_by_layer"], 2);
    // A single-stage build still records its one stage.
    assert_eq!(v["stages"]["stages"][0]["base"], "busybox:1.35");
}
