//! Cache-miss reasons: after one input changes, the rebuild names exactly
//! that input (under the step in `--progress plain`, in the step's rawjson
//! events, and in the `--why-miss` summary); the steps below only say that
//! the step above changed. A fully cached rebuild gives no reason.

use strata_test_support as support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use support::*;

const DOCKERFILE: &str =
    "FROM busybox:1.35\nRUN echo top > /top\nCOPY a.txt run.sh /app/\nARG V=1\nRUN echo $V > /v\n";

/// The `#N cache miss: REASON` lines of a plain build, as (N, REASON).
fn reasons(err: &str) -> Vec<(usize, String)> {
    err.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix('#')?;
            let (n, reason) = rest.split_once(" cache miss: ")?;
            Some((n.parse().ok()?, reason.to_string()))
        })
        .collect()
}

/// Builds `ctx` (plain progress, `--why-miss`) and returns the reasons.
fn rebuild(root: &Path, ctx: &Path, extra: &[&str]) -> (Vec<(usize, String)>, String) {
    let mut args = vec!["--why-miss"];
    args.extend_from_slice(extra);
    let o = build_ok(root, ctx, "wm", &args);
    let err = stderr(&o);
    (reasons(&err), err)
}

/// The build context of [`DOCKERFILE`]: `a.txt`, and `run.sh` with the
/// mode the umask gives it.
fn wm_context() -> tempfile::TempDir {
    context(&[
        ("a.txt", "one\n"),
        ("run.sh", "echo hi\n"),
        ("Dockerfile", DOCKERFILE),
    ])
}

/// Writes `dockerfile` into `ctx` and rebuilds it with `V=2`.
fn rebuild_with_dockerfile(
    root: &Path,
    ctx: &Path,
    dockerfile: &str,
) -> (Vec<(usize, String)>, String) {
    std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    rebuild(root, ctx, &["--build-arg", "V=2"])
}

/// Every reason but the first names the step above (derived misses).
fn assert_only_cause(r: &[(usize, String)], step: usize, cause: &str, err: &str) {
    assert!(!r.is_empty(), "no reason given:\n{err}");
    assert_eq!(r[0], (step, cause.to_string()), "{err}");
    for (_, reason) in &r[1..] {
        assert!(
            reason.starts_with("the step above changed: "),
            "another input named: {reason}\n{err}"
        );
    }
    // The summary has one line per step that ran, with the same reasons.
    let summary: Vec<&str> = err
        .lines()
        .skip_while(|l| !l.starts_with("why-miss: "))
        .skip(1)
        .filter(|l| l.starts_with('#'))
        .collect();
    assert_eq!(summary.len(), r.len(), "{err}");
    assert!(summary[0].ends_with(&format!(": {cause}")), "{err}");
}

#[test]
fn each_changed_input_is_named_alone() {
    let Some((_t, root)) = setup_busybox() else {
        return;
    };
    let ctx = wm_context();
    let dir = ctx.path();
    std::fs::set_permissions(dir.join("run.sh"), std::fs::Permissions::from_mode(0o644)).unwrap();

    // First build: nothing to compare with, so no reason (but the summary
    // lists the steps that ran).
    let (r, err) = rebuild(&root, dir, &[]);
    assert!(r.is_empty(), "{err}");
    assert!(err.contains("no earlier record of this step"), "{err}");

    // Fully cached: no reason at all.
    let (r, err) = rebuild(&root, dir, &[]);
    assert!(r.is_empty(), "{err}");
    assert!(err.contains("why-miss: no cache misses"), "{err}");
    assert!(!err.contains(" cache miss: "), "{err}");

    // A context file's content.
    std::fs::write(dir.join("a.txt"), "two\n").unwrap();
    let (r, err) = rebuild(&root, dir, &[]);
    assert_only_cause(&r, 3, "a.txt changed (content)", &err);
    assert_eq!(r.len(), 3, "{err}");

    // A file's mode.
    std::fs::set_permissions(dir.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (r, err) = rebuild(&root, dir, &[]);
    assert_only_cause(&r, 3, "run.sh changed (mode 0644 -> 0755)", &err);

    // A build arg: the ARG step and the RUN that uses it; the build arg is
    // the only input named.
    let (r, err) = rebuild(&root, dir, &["--build-arg", "V=2"]);
    assert_only_cause(&r, 4, "build arg V changed (1 -> 2)", &err);
    assert_eq!(r.len(), 2, "{err}");

    // Same arguments again: all cached.
    let (r, err) = rebuild(&root, dir, &["--build-arg", "V=2"]);
    assert!(r.is_empty(), "{err}");

    // A step above: the edited step says what it was; the steps below name it.
    let edited = DOCKERFILE.replace("echo top", "echo TOP");
    let (r, err) = rebuild_with_dockerfile(&root, dir, &edited);
    assert_eq!(
        r[..2],
        [
            (
                2,
                "the instruction changed (was: RUN echo top > /top)".to_string()
            ),
            (
                3,
                "the step above changed: RUN echo TOP > /top (was: RUN echo top > /top)"
                    .to_string()
            ),
        ],
        "{err}"
    );
    assert!(
        r[2..]
            .iter()
            .all(|(_, x)| x.starts_with("the step above changed: ")),
        "{err}"
    );

    // A step removed: the step now below FROM says what was above it.
    let removed = DOCKERFILE.replace("RUN echo top > /top\n", "");
    let (r, err) = rebuild_with_dockerfile(&root, dir, &removed);
    assert_eq!(
        r.first().map(|(n, x)| (*n, x.as_str())),
        Some((
            2,
            "the step above changed: FROM busybox:1.35 (was: RUN echo TOP > /top)"
        )),
        "{err}"
    );
    assert_eq!(r.len(), 3, "{err}");
}

#[test]
fn a_retagged_base_image_is_named() {
    let Some((_t, root)) = setup_busybox() else {
        return;
    };
    let ctx = wm_context();
    build_ok(&root, ctx.path(), "wm", &[]);
    // Another image under the same name.
    let other = context(&[("Dockerfile", "FROM busybox:1.35\nRUN touch /other\n")]);
    build_ok(&root, other.path(), "busybox:1.35", &[]);
    let (r, err) = rebuild(&root, ctx.path(), &[]);
    assert_eq!(r.len(), 4, "{err}");
    assert_eq!(r[0].0, 2, "{err}");
    assert!(
        r[0].1
            .starts_with("the base image busybox:1.35 changed (sha256:"),
        "{err}"
    );
    assert_only_cause(&r, 2, &r[0].1.clone(), &err);
}

#[test]
fn rawjson_carries_the_reason_in_the_step_events() {
    let Some((_t, root)) = setup_busybox() else {
        return;
    };
    let ctx = wm_context();
    build_ok(&root, ctx.path(), "wm", &[]);
    std::fs::write(ctx.path().join("a.txt"), "two\n").unwrap();
    let o = build_ok(&root, ctx.path(), "wm", &["--progress", "rawjson"]);
    let events = events(&stdout(&o));
    let miss = events
        .iter()
        .find(|e| e["type"] == "cache_miss" && e["step"] == 3)
        .expect("a cache_miss event for step 3");
    assert_eq!(miss["reason"], "a.txt changed (content)");
    let done = events
        .iter()
        .find(|e| e["type"] == "step_done" && e["step"] == 3)
        .expect("step_done for step 3");
    assert_eq!(done["cache_miss"], "a.txt changed (content)");
    // Cached steps carry no reason.
    assert!(events
        .iter()
        .filter(|e| e["type"] == "cache_miss")
        .all(|e| e["step"].as_u64().unwrap() >= 3));
}

#[test]
fn stages_and_bind_mounts_are_named() {
    let Some((_t, root)) = setup_busybox() else {
        return;
    };
    let ctx = context(&[
        ("src/x", "1\n"),
        ("y", "y1\n"),
        (
            "Dockerfile",
            "FROM busybox:1.35 AS build\nCOPY src /src\nRUN cat /src/x > /out\n\nFROM busybox:1.35\nCOPY --from=build /out /out\nRUN --mount=type=bind,source=y,target=/y cat /y > /y.copy\n",
        ),
    ]);
    let dir = ctx.path();
    build_ok(&root, dir, "wm", &[]);
    // The bind mount's file alone.
    std::fs::write(dir.join("y"), "y2\n").unwrap();
    let (r, err) = rebuild(&root, dir, &[]);
    assert_eq!(
        r,
        vec![(6, "bind mount source=y: y changed (content)".to_string())],
        "{err}"
    );
    // A file of the stage copied from: the other stage names the stage.
    std::fs::write(dir.join("src/x"), "2\n").unwrap();
    let (r, err) = rebuild(&root, dir, &[]);
    let named: Vec<&str> = r.iter().map(|(_, x)| x.as_str()).collect();
    assert_eq!(
        named,
        [
            "src/x changed (content)",
            "the step above changed: COPY src /src",
            "stage build changed",
            "the step above changed: COPY --from=build /out /out",
        ],
        "{err}"
    );
}
