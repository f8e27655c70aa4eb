//! Concurrency: 8 builds at once into one store, sharing the base image
//! and the cache (same first steps), while `system prune` and
//! `system prune -a` run in a loop beside them. Every build must succeed,
//! every image must run and hold what its Dockerfile says, and
//! `system check` must be clean afterwards. Leases (crates/strata-store
//! src/meta/leases.rs) are what keeps a build's blobs alive across a
//! prune; this is their end-to-end test.

use strata_test_support as support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use support::*;

const BUILDS: usize = 8;

fn spawn_strata(root: &Path, args: &[String]) -> Output {
    Strata::new(root).args(args).output()
}

/// Dockerfile `i`: shared steps first (one of them a RUN, so the cache is
/// shared and contended), then steps of its own, and a second stage
/// copying from the first.
fn dockerfile(i: usize) -> String {
    format!(
        "FROM busybox:1.35 AS shared\n\
         COPY common.txt /common/\n\
         RUN cat /common/common.txt /common/common.txt > /common/twice\n\
         RUN echo build-{i} > /own && sleep 0.{i}\n\
         FROM busybox:1.35\n\
         COPY --from=shared /common/twice /own /\n\
         CMD cat /own /twice\n"
    )
}

#[test]
fn eight_builds_and_a_prune_loop_share_one_store() {
    let Some((_t, root)) = setup_busybox() else {
        return;
    };
    let common = "shared line\n".repeat(10_000);
    let ctxs: Vec<_> = (0..BUILDS)
        .map(|i| context(&[("Dockerfile", &dockerfile(i)), ("common.txt", &common)]))
        .collect();

    // The pruner: plain and -a prunes alternately until the builds end.
    let done = Arc::new(AtomicBool::new(false));
    let pruner = {
        let (root, done) = (root.clone(), done.clone());
        thread::spawn(move || {
            let mut n = 0;
            while !done.load(Ordering::Relaxed) {
                let mut args = vec!["system".into(), "prune".into(), "-f".to_string()];
                if n % 2 == 1 {
                    args.push("-a".into());
                }
                let o = spawn_strata(&root, &args);
                assert!(o.status.success(), "prune failed: {}", stderr(&o));
                n += 1;
            }
            n
        })
    };
    let builders: Vec<_> = ctxs
        .iter()
        .enumerate()
        .map(|(i, ctx)| {
            let root = root.clone();
            let dir = path_str(ctx.path());
            thread::spawn(move || {
                let args = vec![
                    "build".to_string(),
                    "-q".into(),
                    "-t".into(),
                    format!("c{i}"),
                    dir,
                ];
                spawn_strata(&root, &args)
            })
        })
        .collect();
    let outputs: Vec<Output> = builders.into_iter().map(|h| h.join().unwrap()).collect();
    done.store(true, Ordering::Relaxed);
    let prunes = pruner.join().unwrap();
    eprintln!("{prunes} prunes ran during the builds");
    for (i, o) in outputs.iter().enumerate() {
        assert!(o.status.success(), "build {i} failed:\n{}", stderr(o));
    }
    assert!(prunes >= 2, "the prune loop did not overlap the builds");

    let o = strata(&root, &["system", "check"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("no problems"), "{}", stdout(&o));

    // One more prune after the fact, then every image still runs.
    let o = strata(&root, &["system", "prune", "-f"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let twice = common.repeat(2);
    for i in 0..BUILDS {
        let o = strata(&root, &["run", "--rm", &format!("c{i}")]);
        assert!(o.status.success(), "run c{i}: {}", stderr(&o));
        assert_eq!(stdout(&o), format!("build-{i}\n{twice}"), "image c{i}");
    }
    let o = strata(&root, &["system", "check"]);
    assert!(stdout(&o).contains("no problems"), "{}", stdout(&o));
}

/// A RUN longer than GC's grace period for `ROOT/tmp` (shortened to 1 s
/// here with `STRATA_TMP_GRACE_SECS`) while `system prune` and
/// `system check --repair` run in a loop: the build's own temp dirs (the
/// init layer, the copy behind a writable context bind mount, a heredoc
/// script) are locked by the build, so neither removes them, and the
/// build succeeds. `strata run` of a long container likewise keeps its
/// init dir.
#[test]
fn a_long_run_step_keeps_its_temp_dirs_through_prune_and_repair() {
    let Some((_t, root)) = setup_busybox() else {
        return;
    };
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM busybox:1.35\n\
             RUN --mount=type=bind,target=/ctx,rw sleep 4 && cat /ctx/data > /one\n\
             RUN <<EOT\n\
             sleep 3\n\
             cat /one > /two\n\
             EOT\n\
             RUN cat /two > /three\n",
        ),
        ("data", "context data\n"),
    ]);
    let done = Arc::new(AtomicBool::new(false));
    let gc = {
        let (root, done) = (root.clone(), done.clone());
        thread::spawn(move || {
            let mut n = 0;
            while !done.load(Ordering::Relaxed) {
                let args: &[&str] = if n % 2 == 0 {
                    &["system", "prune", "-f"]
                } else {
                    &["system", "check", "--repair"]
                };
                let o = Command::new(env!("CARGO_BIN_EXE_strata"))
                    .arg("--root")
                    .arg(&root)
                    .args(args)
                    .env("STRATA_TMP_GRACE_SECS", "1")
                    .stdin(Stdio::null())
                    .output()
                    .unwrap();
                assert!(o.status.success(), "{args:?}: {}", stderr(&o));
                n += 1;
                thread::sleep(std::time::Duration::from_millis(200));
            }
            n
        })
    };
    let build = build_with(&root, ctx.path(), "long", &[]);
    let run = strata(
        &root,
        &["run", "--rm", "long", "sh", "-c", "sleep 3; cat /three"],
    );
    done.store(true, Ordering::Relaxed);
    let n = gc.join().unwrap();
    assert!(n >= 10, "the GC loop did not overlap the build ({n} runs)");
    assert!(build.status.success(), "build: {}", stderr(&build));
    assert!(run.status.success(), "run: {}", stderr(&run));
    assert_eq!(stdout(&run), "context data\n");
    // Nothing of the build or the run is left in ROOT/tmp, once the
    // run's remover (which deletes its files after it returned) is done.
    let left = || -> Vec<_> {
        std::fs::read_dir(root.join("tmp"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect()
    };
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !left().is_empty() && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(left().is_empty(), "left in ROOT/tmp: {:?}", left());
}
