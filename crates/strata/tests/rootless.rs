//! Rootless: the tutorial (examples/tutorial/Second_Try: Go build stage,
//! binary on busybox) builds and runs as an unprivileged user, through a
//! user namespace (`unshare --user --map-root-user --mount`: the user is
//! "root" inside, with one uid mapped), with the store in that user's XDG
//! data directory. The test creates the user (`strata-rootless-test`) and
//! skips loudly when the host cannot do this at all.
//!
//! Not covered yet (see docs/security.md): newuidmap/newgidmap ranges from
//! /etc/subuid (so images with files of other owners keep them), strata
//! entering the namespace by itself, fuse-overlayfs for older kernels.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const USER: &str = "strata-rootless-test";

fn sh(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"))
}

/// Why this host cannot run the test, if it cannot.
fn unsupported() -> Option<String> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc_geteuid() } != 0 {
        return Some("needs root to create the test user".into());
    }
    for tool in ["useradd", "runuser", "unshare", "/bin/busybox", "runc"] {
        let found = if tool.starts_with('/') {
            Path::new(tool).exists()
        } else {
            sh(Command::new("sh").args(["-c", &format!("command -v {tool}")]))
                .status
                .success()
        };
        if !found {
            return Some(format!("{tool} is missing"));
        }
    }
    None
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

fn ensure_user() -> PathBuf {
    let exists = sh(Command::new("id").arg(USER)).status.success();
    if !exists {
        let o = sh(Command::new("useradd").args(["-m", "-s", "/bin/sh", USER]));
        assert!(
            o.status.success(),
            "useradd: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    PathBuf::from(format!("/home/{USER}"))
}

/// Runs `script` as the test user with a clean environment.
fn as_user(home: &Path, script: &str) -> Output {
    sh(Command::new("runuser")
        .args(["-u", USER, "--", "env", "-i"])
        .arg(format!("HOME={}", home.display()))
        .arg(format!("XDG_DATA_HOME={}/.local/share", home.display()))
        .args(["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "sh", "-euc", script]))
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n{}{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn tutorial_builds_and_runs_as_an_unprivileged_user() {
    if let Some(why) = unsupported() {
        eprintln!("SKIPPED rootless test: {why}");
        return;
    }
    let home = ensure_user();
    // Everything the user needs, in a dir it can read: the binary, base
    // rootfs tars (scripts/make-base-rootfs.sh), the tutorial.
    let work = tempfile::Builder::new()
        .prefix("strata-rootless-")
        .tempdir()
        .unwrap();
    let w = work.path();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::copy(env!("CARGO_BIN_EXE_strata"), w.join("strata")).unwrap();
    let o = sh(Command::new(repo.join("scripts/make-base-rootfs.sh")).arg(w));
    assert!(o.status.success(), "make-base-rootfs: {}", text(&o));
    let o = sh(Command::new("cp")
        .arg("-r")
        .arg(repo.join("examples/tutorial/Second_Try"))
        .arg(w.join("tutorial")));
    assert!(o.status.success());
    // A directory deleted and recreated in one RUN: an opaque marker in
    // the layer, which loading and unpacking rootless must handle.
    std::fs::create_dir(w.join("opq")).unwrap();
    std::fs::write(
        w.join("opq/Dockerfile"),
        "FROM busybox:1.35\nRUN mkdir /d && echo old > /d/old\n\
         RUN rm -rf /d && mkdir /d && echo new > /d/new\n",
    )
    .unwrap();
    let o = sh(Command::new("chmod").args(["-R", "a+rwX"]).arg(w));
    assert!(o.status.success());

    // Can this kernel mount overlay in a user namespace at all?
    let probe = as_user(
        &home,
        "d=$(mktemp -d); mkdir $d/l $d/u $d/w $d/m; \
         unshare --user --map-root-user --mount \
         mount -t overlay o -o userxattr,lowerdir=$d/l,upperdir=$d/u,workdir=$d/w $d/m; \
         rm -rf $d",
    );
    if !probe.status.success() {
        eprintln!(
            "SKIPPED rootless test: no overlay in a user namespace here (kernel < 5.11 \
             or user namespaces disabled):\n{}",
            text(&probe)
        );
        return;
    }

    let changes = |img: &str| {
        let o =
            sh(Command::new(repo.join("scripts/make-base-rootfs.sh"))
                .args(["--print-changes", img]));
        String::from_utf8(o.stdout)
            .unwrap()
            .lines()
            .map(|c| format!("--change '{c}'"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let w = w.display();
    // A fresh store each run, in the user's XDG data dir (the default root
    // for "root" inside a user namespace: no --root, no STRATA_ROOT).
    let script = format!(
        "rm -rf \"$XDG_DATA_HOME/strata\"\n\
         S={w}/strata\n\
         U='unshare --user --map-root-user --mount'\n\
         $S import {w}/busybox.tar busybox:1.35 {bb} >/dev/null\n\
         $S import {w}/golang.tar golang:1.19 {go} >/dev/null\n\
         $U $S build -q -t tutorial {w}/tutorial >/dev/null\n\
         $U $S run --rm tutorial\n\
         $U $S images --format json | grep -c tutorial\n\
         $U $S build -q -t opq {w}/opq >/dev/null\n\
         $U $S save -o {w}/opq.tar opq && $U $S rmi opq >/dev/null\n\
         $U $S system prune -a >/dev/null && $U $S load -q -i {w}/opq.tar\n\
         $U $S run --rm opq ls /d\n\
         $U $S system check\n\
         test -d \"$XDG_DATA_HOME/strata/blobs\" && echo store-in-xdg\n\
         find \"$XDG_DATA_HOME/strata\" ! -user {USER} | wc -l\n",
        bb = changes("busybox"),
        go = changes("golang"),
    );
    let o = as_user(&home, &script);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "rootless tutorial failed:\n{}",
        text(&o)
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "DevOps is the \u{1F410}", "{out}");
    assert!(out.contains("no problems"), "{out}");
    assert!(out.lines().any(|l| l == "new"), "opaque dir lost: {out}");
    assert!(!out.lines().any(|l| l == "old"), "opaque dir leaked: {out}");
    assert!(out.contains("store-in-xdg"), "{out}");
    assert_eq!(
        lines.last().unwrap().trim(),
        "0",
        "files in the store not owned by the user:\n{out}"
    );
    // Nothing was left mounted in the host's mount namespace.
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(!mounts.contains(&format!("{}/.local/share/strata", home.display())));
}
