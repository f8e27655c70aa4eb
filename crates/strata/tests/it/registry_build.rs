//! Builds that reach a registry (a real `docker-registry` on 127.0.0.1):
//! FROM and `COPY --from` pull a missing image, `--pull` re-resolves a tag,
//! and `--cache-to` / `--cache-from` carry the build cache from one store
//! (one machine) to another, empty one.

use strata_test_support as support;
use strata_test_support::registry as registry_support;

use std::path::Path;
use std::process::Output;

use registry_support::{Auth, Registry};
use support::{build_with, can_run, context, make_busybox, path_str, stderr, strata};

/// A registry holding `HOST/library/busybox:1.35` (pushed from a scratch
/// store); returns it and the base's image ID.
fn registry_with_busybox() -> (Registry, String, tempfile::TempDir) {
    let reg = Registry::start(Auth::None);
    let seed = tempfile::tempdir().unwrap();
    let root = seed.path().join("seed");
    make_busybox(&root);
    let name = format!("{}/library/busybox:1.35", reg.host());
    ok(&strata(&root, &["tag", "busybox:1.35", &name]), "tag");
    ok(&strata(&root, &["push", &name]), "push");
    let id = image_id(&root, &name);
    (reg, id, seed)
}

fn ok(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        stderr(o)
    );
}

fn image_id(root: &Path, name: &str) -> String {
    let o = strata(root, &["inspect", name]);
    ok(&o, "inspect");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("inspect prints JSON");
    v[0]["Id"].as_str().expect("Id").to_string()
}

/// RUN steps that executed (not restored from the cache), from rawjson events.
fn executed_runs(o: &Output) -> Vec<String> {
    let mut names = std::collections::BTreeMap::new();
    let mut executed = Vec::new();
    for line in String::from_utf8_lossy(&o.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&o.stderr).lines())
    {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let step = v["step"].as_u64().unwrap_or(0);
        match v["type"].as_str() {
            Some("step_started") => {
                names.insert(step, v["name"].as_str().unwrap_or("").to_string());
            }
            Some("step_done") => {
                let name = names.get(&step).cloned().unwrap_or_default();
                if name.contains("] RUN ") {
                    executed.push(name);
                }
            }
            _ => {}
        }
    }
    executed
}

#[test]
fn from_and_copy_from_pull_a_missing_image_and_pull_re_resolves() {
    if !can_run() {
        return;
    }
    let (reg, base_id, _seed) = registry_with_busybox();
    let base = format!("{}/library/busybox:1.35", reg.host());
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("a");
    let ctx = context(&[(
        "Dockerfile",
        &format!(
            "FROM scratch AS tools\nCOPY --from={base} /bin/busybox /bb\n\
             FROM {base}\nCOPY --from=tools /bb /bb\nRUN echo built > /hi\n"
        ),
    )]);
    let o = build_with(&root, ctx.path(), "app:1", &[]);
    ok(&o, "build from a registry image");
    assert!(
        stderr(&o).contains(&format!("pulled {base}")),
        "{}",
        stderr(&o)
    );
    // The base was pulled once although two stages named it.
    assert_eq!(stderr(&o).matches("pulled ").count(), 1, "{}", stderr(&o));
    assert_eq!(image_id(&root, &base), base_id);
    // The pull recorded where the image came from (Docker's RepoDigests),
    // and that digest pulls the same image into another store.
    let o = strata(&root, &["inspect", &base]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let repo_digest = v[0]["RepoDigests"][0]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let prefix = format!("{}/library/busybox@sha256:", reg.host());
    assert!(repo_digest.starts_with(&prefix), "{v}");
    let by_digest = tmp.path().join("by-digest");
    ok(
        &strata(&by_digest, &["pull", &repo_digest]),
        "pull by digest",
    );
    assert_eq!(image_id(&by_digest, &repo_digest), base_id);
    let out = strata(
        &root,
        &[
            "run",
            "--rm",
            "app:1",
            "sh",
            "-c",
            "cat /hi; cmp /bb /bin/busybox && echo bb",
        ],
    );
    ok(&out, "run");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "built\nbb\n");

    // A new image under the same tag: a plain build keeps the store's copy,
    // --pull takes the registry's.
    let seed2 = tempfile::tempdir().unwrap();
    let r2 = seed2.path().join("s");
    make_busybox(&r2);
    let newer = context(&[("Dockerfile", "FROM busybox:1.35\nRUN echo newer > /newer\n")]);
    ok(
        &build_with(&r2, newer.path(), &base, &[]),
        "build newer base",
    );
    ok(&strata(&r2, &["push", &base]), "push newer base");
    let new_id = image_id(&r2, &base);
    assert_ne!(new_id, base_id);

    let o = build_with(&root, ctx.path(), "app:2", &[]);
    ok(&o, "rebuild without --pull");
    assert!(!stderr(&o).contains("pulled "), "{}", stderr(&o));
    assert_eq!(image_id(&root, &base), base_id);
    let o = build_with(&root, ctx.path(), "app:3", &["--pull"]);
    ok(&o, "rebuild with --pull");
    assert_eq!(image_id(&root, &base), new_id);
    let out = strata(&root, &["run", "--rm", "app:3", "cat", "/newer"]);
    ok(&out, "run app:3");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "newer\n");
}

#[test]
fn a_missing_image_that_cannot_be_pulled_is_a_clear_error() {
    if !can_run() {
        return;
    }
    let reg = Registry::start(Auth::None);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("a");
    let name = format!("{}/library/nothere:1", reg.host());
    let ctx = context(&[("Dockerfile", &format!("FROM {name}\nRUN true\n"))]);
    let o = build_with(&root, ctx.path(), "x", &[]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("Dockerfile:1"), "{err}");
    assert!(err.contains("is not in the store and pulling"), "{err}");
    assert!(err.contains("nothere"), "{err}");
}

const MULTI_STAGE: &str = "FROM BASE AS build\n\
RUN echo compiled > /app && sleep 0.2\n\
FROM BASE AS unused\n\
RUN false\n\
FROM BASE\n\
COPY --from=build /app /app\n\
COPY input.txt /input.txt\n\
RUN cat /app /input.txt > /result\n";

/// Store A exports its cache; store B, empty, with the same Dockerfile and
/// context copied elsewhere (other path, other times), runs no RUN step and
/// gets the same image ID.
fn cache_round_trip(to: &str, from: &str, reg: &Registry, base: &str, multi: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let dockerfile = if multi {
        MULTI_STAGE.replace("BASE", base)
    } else {
        format!(
            "FROM {base}\nCOPY input.txt /input.txt\nRUN cat /input.txt > /result && sleep 0.2\n"
        )
    };
    let files = [
        ("Dockerfile", dockerfile.as_str()),
        ("input.txt", "hello\n"),
    ];
    let ctx_a = context(&files);
    let root_a = tmp.path().join("a");
    let a = build_with(
        &root_a,
        ctx_a.path(),
        "app:a",
        &["--progress", "rawjson", "--cache-to", to],
    );
    ok(&a, "store A build --cache-to");
    assert!(!executed_runs(&a).is_empty(), "A must run its steps");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let ctx_b = context(&files);
    let root_b = tmp.path().join("b");
    let b = build_with(
        &root_b,
        ctx_b.path(),
        "app:b",
        &["--progress", "rawjson", "--cache-from", from],
    );
    ok(&b, "store B build --cache-from");
    assert_eq!(executed_runs(&b), Vec::<String>::new(), "B ran RUN steps");
    assert_eq!(image_id(&root_a, "app:a"), image_id(&root_b, "app:b"));
    let out = strata(&root_b, &["run", "--rm", "app:b", "cat", "/result"]);
    ok(&out, "run in B");
    let want = if multi {
        "compiled\nhello\n"
    } else {
        "hello\n"
    };
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
    let _ = reg;
}

#[test]
fn registry_cache_mode_max_lets_an_empty_store_skip_every_run() {
    if !can_run() {
        return;
    }
    let (reg, _, _seed) = registry_with_busybox();
    let base = format!("{}/library/busybox:1.35", reg.host());
    let cache = format!("{}/cache/app:buildcache", reg.host());
    cache_round_trip(
        &format!("type=registry,ref={cache},mode=max"),
        &format!("type=registry,ref={cache}"),
        &reg,
        &base,
        true,
    );
}

#[test]
fn local_cache_mode_min_carries_the_final_stage() {
    if !can_run() {
        return;
    }
    let (reg, _, _seed) = registry_with_busybox();
    let base = format!("{}/library/busybox:1.35", reg.host());
    let dir = tempfile::tempdir().unwrap();
    let d = path_str(&dir.path().join("cache"));
    cache_round_trip(
        &format!("type=local,dest={d}"),
        &format!("type=local,src={d}"),
        &reg,
        &base,
        false,
    );
}

#[test]
fn an_unreadable_cache_from_is_a_warning() {
    if !can_run() {
        return;
    }
    let (reg, _, _seed) = registry_with_busybox();
    let base = format!("{}/library/busybox:1.35", reg.host());
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("a");
    let ctx = context(&[("Dockerfile", &format!("FROM {base}\nRUN true\n"))]);
    let cache = format!("type=registry,ref={}/cache/none:x", reg.host());
    let o = build_with(&root, ctx.path(), "x", &["--cache-from", &cache]);
    ok(&o, "build with a missing cache");
    assert!(
        stderr(&o).contains("warning: --cache-from"),
        "{}",
        stderr(&o)
    );
    let bad = build_with(&root, ctx.path(), "x", &["--cache-to", "type=s3,ref=x"]);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("unsupported cache type"),
        "{}",
        stderr(&bad)
    );
}
