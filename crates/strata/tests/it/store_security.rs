//! The store is reachable by its owner only (Docker's CVE-2021-41091):
//! layers keep their setuid bits, so a snapshot another host user can
//! reach is a way to root. An unprivileged user made by the test can
//! neither list the store nor run a setuid-root file unpacked in it; a
//! `USER nobody` RUN and `run -u nobody` still work; a store made with wide
//! modes is fixed on open and `system check` says so; a non-root user on
//! root's store gets a clear error instead of SQLite's "readonly database".

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use strata_test_support as support;
use support::*;

/// A system user without a home, removed when dropped.
struct TestUser(&'static str);

impl TestUser {
    fn new(name: &'static str) -> TestUser {
        let _ = Command::new("userdel").arg(name).output();
        let o = Command::new("useradd")
            .args(["-r", "-M", "-s", "/bin/sh", name])
            .output()
            .expect("run useradd");
        assert!(o.status.success(), "useradd: {}", stderr(&o));
        TestUser(name)
    }

    /// Runs `argv` as this user (clean env, cwd /).
    fn run(&self, argv: &[&str], env: &[(&str, &Path)]) -> Output {
        let mut c = Command::new("runuser");
        c.args([
            "-u",
            self.0,
            "--",
            "env",
            "-i",
            "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
        ]);
        for (k, v) in env {
            c.arg(format!("{k}={}", v.display()));
        }
        c.args(argv).current_dir("/").output().expect("run runuser")
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(self.0).output();
    }
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A temp dir every user may traverse (tempdirs are 0700), so only the
/// store's own modes stand between the test user and the store.
fn open_parent() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    t
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

/// Files named `name` under `dir` (find, no links followed).
fn find(dir: &Path, name: &str) -> Vec<PathBuf> {
    let o = Command::new("find")
        .arg(dir)
        .args(["-name", name, "-type", "f"])
        .output()
        .unwrap();
    stdout(&o).lines().map(PathBuf::from).collect()
}

#[test]
fn other_users_cannot_reach_setuid_files_in_the_store_and_non_root_runs_still_work() {
    if !can_run() || !have("useradd") || !have("runuser") {
        eprintln!("SKIPPED: needs root, busybox, useradd and runuser");
        return;
    }
    let user = TestUser::new("strata-store-sec1");
    let parent = open_parent();
    let root = parent.path().join("store");
    make_busybox(&root);
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox:1.35\nRUN cp /bin/busybox /bin/suidbox && chmod 4755 /bin/suidbox\n\
         USER nobody\nRUN id -u > /tmp/uid && cat /tmp/uid\n",
    )]);
    build_ok(&root, ctx.path(), "suid", &[]);
    // The RUN as nobody ran as 65534 and the image works as nobody too.
    assert_eq!(run_in(&root, "suid", &["cat", "/tmp/uid"]), "65534\n");
    assert_eq!(
        run_in(&root, "suid", &["sh", "-c", "id -u; ls -ln /bin/suidbox"])
            .lines()
            .next(),
        Some("65534")
    );
    // `run` unpacked the image: the setuid copy is in a snapshot.
    let suid = find(&root.join("snapshots"), "suidbox");
    assert!(!suid.is_empty(), "no unpacked setuid file under the store");
    for s in &suid {
        assert_eq!(
            mode(s) & 0o4000,
            0o4000,
            "{} lost its setuid bit",
            s.display()
        );
    }
    assert_eq!(mode(&root), 0o710);
    for d in [
        "snapshots",
        "containers",
        "blobs",
        "tmp",
        "locks",
        "leases",
        "cache",
    ] {
        assert_eq!(mode(&root.join(d)), 0o700, "{d}");
    }
    assert_eq!(mode(&root.join("meta.db")) & 0o077, 0, "meta.db");
    // A build left nothing wide for the next open to fix and report.
    let o = strata(&root, &["system", "check"]);
    assert!(stdout(&o).contains("no problems"), "{}", stdout(&o));
    // The user can reach the parent, not the store.
    let o = user.run(&["ls", &path_str(parent.path())], &[]);
    assert!(
        o.status.success(),
        "the test user cannot list the parent: {}",
        stderr(&o)
    );
    let o = user.run(&["ls", &path_str(&root)], &[]);
    assert!(
        !o.status.success(),
        "the test user listed the store: {}",
        stdout(&o)
    );
    assert!(stderr(&o).contains("Permission denied"), "{}", stderr(&o));
    let o = user.run(&[&path_str(&suid[0]), "id", "-u"], &[]);
    assert!(
        !o.status.success(),
        "the test user ran a setuid-root file from the store: {}",
        stdout(&o)
    );
    assert!(stderr(&o).contains("Permission denied"), "{}", stderr(&o));
    // `run -u nobody` as well.
    assert_eq!(
        run_in(&root, "busybox:1.35", &["sh", "-c", "id -u"]).trim(),
        "0"
    );
    let o = strata(&root, &["run", "--rm", "-u", "nobody", "suid", "id", "-u"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "65534\n");
}

#[test]
fn a_wide_store_is_fixed_on_open_and_reported_by_check() {
    if rustix::process::geteuid().as_raw() != 0 {
        eprintln!("SKIPPED: needs root");
        return;
    }
    let parent = open_parent();
    let root = parent.path().join("store");
    let o = strata(&root, &["images"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // As an older strata left it: everything 0755 / 0644.
    let wide = ["", "snapshots", "containers", "blobs", "tmp"];
    for d in wide {
        std::fs::set_permissions(root.join(d), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(root.join("meta.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = strata(&root, &["system", "check"]);
    let out = stdout(&o);
    // Not data damage: exit 0, but said.
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    for d in wide {
        let p = path_str(&std::fs::canonicalize(root.join(d)).unwrap());
        assert!(
            out.lines()
                .any(|l| l.starts_with("problem: ") && l.contains(&format!("{p} had mode 0755"))),
            "{p} not reported:\n{out}"
        );
    }
    assert!(out.contains("meta.db had mode 0644"), "{out}");
    assert!(out.contains("repaired: restricted"), "{out}");
    assert_eq!(mode(&root), 0o710);
    for d in &wide[1..] {
        assert_eq!(mode(&root.join(d)), 0o700, "{d}");
    }
    assert_eq!(mode(&root.join("meta.db")), 0o600);
    // Fixed for good: the next check is clean.
    let o = strata(&root, &["system", "check", "--repair"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("no problems"), "{}", stdout(&o));
    // Any command fixes it, not only check; STRATA_ROOT as well as --root.
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("images")
        .env("STRATA_ROOT", &root)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(mode(&root), 0o710);
}

/// Root with useradd and runuser (to act as a fresh user); says SKIPPED
/// otherwise.
/// A test user `name` and a world-searchable parent dir for stores, or
/// None (skipped) where users cannot be added.
fn user_and_open_parent(name: &'static str) -> Option<(TestUser, tempfile::TempDir)> {
    if !can_add_users() {
        return None;
    }
    Some((TestUser::new(name), open_parent()))
}

fn can_add_users() -> bool {
    let ok = rustix::process::geteuid().as_raw() == 0 && have("useradd") && have("runuser");
    if !ok {
        eprintln!("SKIPPED: needs root, useradd and runuser");
    }
    ok
}

#[test]
fn a_user_on_roots_store_is_told_whose_it_is_and_an_own_store_is_private() {
    let Some((user, parent)) = user_and_open_parent("strata-store-sec2") else {
        return;
    };
    let root = parent.path().join("store");
    let o = strata(&root, &["images"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bin = env!("CARGO_BIN_EXE_strata");
    let o = user.run(&["id", "-u"], &[]);
    let uid = stdout(&o).trim().to_string();
    for args in [
        vec![bin, "--root", &path_str(&root), "images"],
        vec![bin, "--root", &path_str(&root), "tag", "a", "b"],
        vec![bin, "--root", &path_str(&root), "system", "check"],
    ] {
        let o = user.run(&args, &[]);
        let err = stderr(&o);
        assert!(!o.status.success(), "{args:?}: {}", stdout(&o));
        // Checked before strata enters its user namespace (where root's
        // files are unmapped), so the owner is named exactly.
        assert!(err.contains("belongs to root (uid 0)"), "{args:?}: {err}");
        assert!(err.contains(&format!("you are uid {uid}")), "{err}");
        assert!(err.contains("--root DIR"), "{err}");
        assert!(!err.contains("readonly database"), "{err}");
    }
    // Its own store (made by the user under a dir it may write) is private.
    let mine = parent.path().join("user");
    std::fs::create_dir(&mine).unwrap();
    let o = Command::new("chown")
        .args([user.0, &path_str(&mine)])
        .output()
        .unwrap();
    assert!(o.status.success());
    let own = mine.join("store");
    let o = user.run(&[bin, "images"], &[("STRATA_ROOT", &own)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(mode(&own), 0o700);
    assert_eq!(mode(&own.join("snapshots")), 0o700);
}

/// Root on a user's store would leave root-owned files the user cannot
/// remove: refused, naming the owner and how to run as them, and nothing
/// is written.
#[test]
fn root_on_a_users_store_is_refused_and_told_whose_it_is() {
    let Some((user, parent)) = user_and_open_parent("strata-store-sec3") else {
        return;
    };
    let mine = parent.path().join("user");
    std::fs::create_dir(&mine).unwrap();
    let o = Command::new("chown")
        .args([user.0, &path_str(&mine)])
        .output()
        .unwrap();
    assert!(o.status.success());
    let own = mine.join("store");
    let bin = env!("CARGO_BIN_EXE_strata");
    let o = user.run(&[bin, "images"], &[("STRATA_ROOT", &own)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let uid = std::fs::metadata(&own).unwrap().uid();
    let before = Command::new("find").arg(&own).output().unwrap().stdout;
    for args in [
        vec!["images"],
        vec!["tag", "a", "b"],
        vec!["system", "prune", "-f"],
        vec!["system", "check", "--repair"],
    ] {
        let o = strata(&own, &args);
        let err = stderr(&o);
        assert!(!o.status.success(), "{args:?}: {}", stdout(&o));
        assert!(
            err.contains(&format!("belongs to uid {uid} ({})", user.0))
                && err.contains("running as root")
                && err.contains(&format!("runuser -u {}", user.0)),
            "{args:?}: {err}"
        );
    }
    // Nothing of root's was written into it.
    let o = Command::new("find")
        .arg(&own)
        .args(["-uid", "0"])
        .output()
        .unwrap();
    assert_eq!(stdout(&o), "", "root-owned files in the user's store");
    let after = Command::new("find").arg(&own).output().unwrap().stdout;
    assert_eq!(before, after);
    // The user still uses it.
    let o = user.run(&[bin, "system", "check"], &[("STRATA_ROOT", &own)]);
    assert!(o.status.success(), "{}", stderr(&o));
}
