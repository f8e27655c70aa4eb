//! Rootless: the tutorial (examples/tutorial/Second_Try: Go build stage,
//! binary on busybox) builds and runs as an unprivileged user who types
//! plain `strata build` / `strata run`: strata enters a user namespace by
//! itself (crates/strata-runtime/src/rootless.rs), with the user's
//! /etc/subuid and /etc/subgid range mapped by newuidmap/newgidmap (Debian
//! `uidmap`), and keeps its store in that user's XDG data directory. A file
//! chowned to 1000:1000 in a RUN keeps its owner through build, save, load
//! and run, which only a range mapping allows.
//!
//! The single-uid paths are covered too, on a small busybox build: a second
//! user without a subordinate range (strata maps only its own uid, warns,
//! and other owners collapse to root), and the old `unshare --user
//! --map-root-user --mount` wrapper (strata, already "root", does nothing).
//!
//! The test creates the users (`strata-rootless-test`, a system user
//! `strata-rootless-test2`) and the range, and skips loudly when the host
//! cannot do this at all. Not covered: fuse-overlayfs (not implemented; a
//! kernel older than 5.11 gets a warning, see docs/security.md).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const USER: &str = "strata-rootless-test";
/// A system user: `useradd -r` gives it no subordinate range.
const USER2: &str = "strata-rootless-test2";

fn sh(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"))
}

/// Why this host cannot run the test, if it cannot.
fn unsupported() -> Option<String> {
    if rustix::process::geteuid().as_raw() != 0 {
        return Some("needs root to create the test user".into());
    }
    for tool in [
        "useradd",
        "usermod",
        "runuser",
        "unshare",
        "newuidmap",
        "newgidmap",
        "/bin/busybox",
        "runc",
    ] {
        let found = if tool.starts_with('/') {
            Path::new(tool).exists()
        } else {
            sh(Command::new("sh").args(["-c", &format!("command -v {tool}")]))
                .status
                .success()
        };
        if !found {
            return Some(format!(
                "{tool} is missing (scripts/setup-host.sh installs uidmap)"
            ));
        }
    }
    None
}

/// Creates `user` when missing (`system`: with `-r`, so no subid range).
fn ensure_user(user: &str, system: bool) -> PathBuf {
    let exists = sh(Command::new("id").arg(user)).status.success();
    if !exists {
        let mut c = Command::new("useradd");
        c.args(["-m", "-s", "/bin/sh"]);
        if system {
            c.arg("-r");
        }
        let o = sh(c.arg(user));
        assert!(
            o.status.success(),
            "useradd: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    PathBuf::from(format!("/home/{user}"))
}

/// `user`'s range in a subid file: (start, count).
fn subid(file: &str, user: &str) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() == 3 && f[0] == user).then(|| (f[1].parse().unwrap(), f[2].parse().unwrap()))
    })
}

/// Gives USER a 65536-id range in /etc/subuid and /etc/subgid (after every
/// existing range) unless it has one; returns the uid range.
fn ensure_range() -> (u64, u64) {
    if let (Some(r), Some(_)) = (subid("/etc/subuid", USER), subid("/etc/subgid", USER)) {
        return r;
    }
    let end = |file: &str| {
        std::fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                Some(f.get(1)?.parse::<u64>().ok()? + f.get(2)?.parse::<u64>().ok()?)
            })
            .max()
            .unwrap_or(0)
    };
    let start = end("/etc/subuid").max(end("/etc/subgid")).max(100_000);
    let range = format!("{start}-{}", start + 65535);
    let o =
        sh(Command::new("usermod").args(["--add-subuids", &range, "--add-subgids", &range, USER]));
    assert!(o.status.success(), "usermod: {}", text(&o));
    subid("/etc/subuid", USER).expect("range added")
}

/// Runs `script` as `user` with a clean environment.
fn as_user(user: &str, home: &Path, script: &str) -> Output {
    sh(Command::new("runuser")
        .args(["-u", user, "--", "env", "-i"])
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

/// Owners (uid and gid, numeric) of everything under `dir`, seen from the host.
fn owners(dir: &Path) -> Vec<u64> {
    let o = sh(Command::new("find").arg(dir).args(["-printf", "%U\n%G\n"]));
    let mut ids: Vec<u64> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

#[test]
fn tutorial_builds_and_runs_as_an_unprivileged_user() {
    let _host = strata_test_support::host_state_lock();
    if let Some(why) = unsupported() {
        eprintln!("SKIPPED rootless test: {why}");
        return;
    }
    let home = ensure_user(USER, false);
    let home2 = ensure_user(USER2, true);
    let (sub_start, sub_count) = ensure_range();
    assert!(
        subid("/etc/subuid", USER2).is_none(),
        "{USER2} must have no subuid range"
    );
    // Everything the users need, in a dir they can read: the binary, base
    // rootfs tars (scripts/make-base-rootfs.sh), the Dockerfiles.
    let work = users_workdir("strata-rootless-");
    let w = work.path();
    let repo = repo_root();
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
    // Files of a non-root owner: made by root, and by that user itself.
    std::fs::create_dir(w.join("own")).unwrap();
    std::fs::write(
        w.join("own/Dockerfile"),
        "FROM busybox:1.35\nRUN mkdir /x && chown 1000:1000 /x\n\
         USER 1000:1000\nRUN touch /x/mine\n",
    )
    .unwrap();
    let o = sh(Command::new("chmod").args(["-R", "a+rwX"]).arg(w));
    assert!(o.status.success());
    // Stores of earlier runs hold files of the users' subordinate ids,
    // which the users themselves cannot remove outside a namespace.
    for h in [&home, &home2] {
        let _ = std::fs::remove_dir_all(h.join(".local/share/strata"));
        let _ = std::fs::remove_dir_all(h.join(".local/share-single"));
    }

    // Can this kernel mount overlay in a user namespace at all?
    let probe = as_user(
        USER,
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
    let bb = changes("busybox");
    let w = w.display();
    // Plain commands, no unshare: strata maps the user's range by itself.
    // The store is the default one for an unprivileged user (no --root, no
    // STRATA_ROOT): $XDG_DATA_HOME/strata.
    let script = format!(
        "S={w}/strata\n\
         $S import {w}/busybox.tar busybox:1.35 {bb} >/dev/null\n\
         $S import {w}/golang.tar golang:1.19 {go} >/dev/null\n\
         $S build -q -t tutorial {w}/tutorial >/dev/null\n\
         $S run --rm tutorial\n\
         $S images --format json | grep -c tutorial\n\
         $S build -q -t opq {w}/opq >/dev/null\n\
         $S build -q -t own {w}/own >/dev/null\n\
         $S run --rm own stat -c 'built %u:%g %n' /x /x/mine\n\
         $S save -o {w}/imgs.tar opq own && $S rmi opq own >/dev/null\n\
         $S system prune -a -f >/dev/null && $S load -q -i {w}/imgs.tar\n\
         $S run --rm opq ls /d\n\
         $S run --rm own stat -c 'loaded %u:%g %n' /x /x/mine\n\
         $S run --rm -u 1000 own id -u\n\
         $S unshare cat /proc/self/uid_map\n\
         $S system check\n\
         test -d \"$XDG_DATA_HOME/strata/blobs\" && echo store-in-xdg\n",
        go = changes("golang"),
    );
    let o = as_user(USER, &home, &script);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        o.status.success(),
        "rootless tutorial failed:\n{}",
        text(&o)
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "DevOps is the \u{1F410}", "{out}");
    // The range mapping must not warn. (Where /dev/net/tun is 0600, as on
    // these VMs, containers fall back to the host's network with a warning
    // of their own: that one is expected here.)
    let other_warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("warning") && !l.contains("no private network"))
        .collect();
    assert!(other_warnings.is_empty(), "range mapping warned:\n{err}");
    for stage in ["built", "loaded"] {
        for line in [
            format!("{stage} 1000:1000 /x"),
            format!("{stage} 1000:1000 /x/mine"),
        ] {
            assert!(out.lines().any(|l| l == line), "{line}?\n{out}\n{err}");
        }
    }
    assert!(out.lines().any(|l| l == "1000"), "run -u 1000: {out}");
    let map: Vec<&str> = out
        .lines()
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() == 3 && f.iter().all(|x| x.parse::<u64>().is_ok())
        })
        .collect();
    assert_eq!(map.len(), 2, "uid_map: {out}");
    assert_eq!(
        map[1].split_whitespace().collect::<Vec<_>>(),
        ["1", &sub_start.to_string(), &sub_count.to_string()]
    );
    assert!(out.contains("no problems"), "{out}");
    assert!(out.lines().any(|l| l == "new"), "opaque dir lost: {out}");
    assert!(!out.lines().any(|l| l == "old"), "opaque dir leaked: {out}");
    assert!(out.contains("store-in-xdg"), "{out}");
    // On the host, the store belongs to the user and its subordinate ids
    // only; uid 1000 inside is sub_start + 999 outside.
    let store = home.join(".local/share/strata");
    let uid = sh(Command::new("id").args(["-u", USER]));
    let uid: u64 = String::from_utf8_lossy(&uid.stdout).trim().parse().unwrap();
    let ids = owners(&store);
    assert!(
        ids.iter()
            .all(|&i| i == uid || (sub_start..sub_start + sub_count).contains(&i)),
        "store ids outside the user's range: {ids:?}"
    );
    assert!(
        ids.contains(&(sub_start + 999)),
        "no file of uid 1000: {ids:?}"
    );
    // Nothing was left mounted in the host's mount namespace.
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(!mounts.contains(&format!("{}/.local/share/strata", home.display())));

    // Single uid, automatic: a user without a range gets a warning, builds
    // all the same (no chown to other ids in RUN, though), and the files of
    // uid 1000 in the archive saved above collapse to root when loaded.
    let single = format!(
        "S={w}/strata\n\
         $S import {w}/busybox.tar busybox:1.35 {bb} >/dev/null\n\
         $S build -q -t opq2 {w}/opq >/dev/null\n\
         $S run --rm opq2 ls /d\n\
         $S load -q -i {w}/imgs.tar >/dev/null\n\
         $S run --rm -u 0 own stat -c 'single %u:%g %n' /x\n",
    );
    let o = as_user(USER2, &home2, &single);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "single-uid build failed:\n{}", text(&o));
    assert!(out.lines().any(|l| l == "single 0:0 /x"), "{out}");
    assert!(out.lines().any(|l| l == "new"), "{out}");
    assert!(
        err.contains("only your own uid is mapped")
            && err.contains(&format!("no range for {USER2} in /etc/subuid"))
            && err.contains("usermod --add-subuids"),
        "no single-uid warning:\n{err}"
    );

    // Single uid, by hand (the old way): under `unshare --map-root-user`
    // strata is already root and uses that namespace as it is.
    let wrapped = format!(
        "U='unshare --user --map-root-user --mount'\n\
         export XDG_DATA_HOME=$HOME/.local/share-single\n\
         $U {w}/strata import {w}/busybox.tar busybox:1.35 {bb} >/dev/null\n\
         $U {w}/strata build -q -t opq {w}/opq >/dev/null\n\
         $U {w}/strata run --rm opq ls /d\n\
         $U cat /proc/self/uid_map\n\
         $U {w}/strata system check\n",
    );
    let o = as_user(USER, &home, &wrapped);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "unshare-wrapped build failed:\n{}",
        text(&o)
    );
    assert!(out.lines().any(|l| l == "new"), "{out}");
    assert!(out.contains("no problems"), "{out}");
    assert_eq!(
        owners(&home.join(".local/share-single/strata")),
        [uid],
        "single-uid store has other owners"
    );
}

/// Rootless without XDG_RUNTIME_DIR, runc state and bundles go to
/// `/tmp/strata-run-<uid>`. Someone who creates that name first (another
/// user, or a wide-open or symlinked dir) is refused with a clear error
/// instead of being trusted; without a squatter strata creates it 0700.
#[test]
fn a_squatted_rootless_run_dir_is_refused() {
    let _host = strata_test_support::host_state_lock();
    if let Some(why) = unsupported() {
        eprintln!("SKIPPED rootless test: {why}");
        return;
    }
    let home = ensure_user(USER2, true);
    let uid = sh(Command::new("id").args(["-u", USER2]));
    let uid: u32 = String::from_utf8_lossy(&uid.stdout).trim().parse().unwrap();
    let work = tempfile::Builder::new()
        .prefix("strata-rundir-")
        .tempdir()
        .unwrap();
    let w = work.path();
    std::fs::copy(env!("CARGO_BIN_EXE_strata"), w.join("strata")).unwrap();
    std::fs::create_dir(w.join("ctx")).unwrap();
    std::fs::write(w.join("ctx/Dockerfile"), "FROM scratch\nCOPY a /a\n").unwrap();
    std::fs::write(w.join("ctx/a"), "a\n").unwrap();
    let o = sh(Command::new("chmod").args(["-R", "a+rwX"]).arg(w));
    assert!(o.status.success());
    let run_dir = PathBuf::from(format!("/tmp/strata-run-{uid}"));
    let reset = || {
        let _ = std::fs::remove_file(&run_dir);
        let _ = std::fs::remove_dir_all(&run_dir);
    };
    let script = format!(
        "export XDG_DATA_HOME={w}/data\n{w}/strata build -q -t x {w}/ctx >/dev/null\n",
        w = w.display()
    );
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    // Another user's dir (here root's, mode 0777: anyone could plant in it).
    reset();
    std::fs::create_dir(&run_dir).unwrap();
    std::fs::set_permissions(&run_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let o = as_user(USER2, &home, &script);
    let e = text(&o);
    assert!(!o.status.success(), "a squatted run dir was used:\n{e}");
    assert!(
        e.contains(&run_dir.display().to_string()) && e.contains("belongs to someone else"),
        "{e}"
    );
    assert!(
        std::fs::read_dir(&run_dir).unwrap().next().is_none(),
        "strata wrote into the squatted dir"
    );
    // The user's own, but open to others.
    std::os::unix::fs::chown(&run_dir, Some(uid), None).unwrap();
    let o = as_user(USER2, &home, &script);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("mode 0777 lets other users in"),
        "{}",
        text(&o)
    );
    // A symlink to a dir elsewhere.
    reset();
    std::os::unix::fs::symlink(w, &run_dir).unwrap();
    let o = as_user(USER2, &home, &script);
    assert!(!o.status.success());
    assert!(text(&o).contains("symbolic link"), "{}", text(&o));
    // Nobody there first: created private and used.
    reset();
    let o = as_user(USER2, &home, &script);
    assert!(o.status.success(), "{}", text(&o));
    let md = std::fs::symlink_metadata(&run_dir).unwrap();
    assert!(md.is_dir());
    assert_eq!(md.uid(), uid);
    assert_eq!(md.mode() & 0o777, 0o700);
    reset();
    let _ = sh(Command::new("rm").arg("-rf").arg(w.join("data")));
}

/// A detached container of an unprivileged user: `exec` (with -e, -u, -w,
/// an exit code, and -it on a pseudo-terminal), `cp` into it and `top`
/// work from later strata processes, which join the user and mount
/// namespaces of the container's monitor (crates/strata/src/cli/
/// ctr_userns.rs); from another user namespace, exec says why it cannot.
/// Limits are applied only through a delegated cgroup v2 subtree, else
/// refused with the reason (this host's state decides which is asserted),
/// and the host-network fallback names the /dev/net/tun fix.
#[test]
fn detached_containers_exec_and_limits_as_an_unprivileged_user() {
    let _host = strata_test_support::host_state_lock();
    if let Some(why) = unsupported() {
        eprintln!("SKIPPED rootless test: {why}");
        return;
    }
    let home = ensure_user(USER, false);
    ensure_range();
    let work = users_workdir("strata-rootless-exec-");
    let w = work.path();
    let o = sh(Command::new("chmod").args(["-R", "a+rwX"]).arg(w));
    assert!(o.status.success());
    let tty = sh(Command::new("sh").args(["-c", "command -v script"]))
        .status
        .success();
    let script = format!(
        "S={w}/strata\n\
         export XDG_DATA_HOME={w}/data\n\
         cd {w}\n\
         $S import {w}/busybox.tar busybox:1.35 --change 'CMD [\"sh\"]' >/dev/null\n\
         id=$($S run -d --name c busybox:1.35 sleep 1000 2>{w}/net.err)\n\
         echo \"id=$id\"\n\
         echo \"hostname=$($S exec c cat /etc/hostname)\"\n\
         echo \"env=$($S exec -e FOO=bar -u 1000 -w /tmp c sh -c 'echo $FOO $(id -u) $(pwd)')\"\n\
         rc=0; $S exec c sh -c 'exit 7' || rc=$?; echo \"exit=$rc\"\n\
         echo hi > hi.txt\n\
         $S cp ./hi.txt c:/hi.txt && echo \"cp=$($S exec c cat /hi.txt)\"\n\
         $S top c | grep -q 'sleep 1000' && echo top=ok\n\
         if {tty}; then\n\
           rc=0; echo 'tty; echo ok-$((6*7)); exit 3' | script -qec \"$S exec -it c sh\" /dev/null \
             >{w}/tty.out || rc=$?; echo \"tty-exit=$rc\"\n\
         fi\n\
         rc=0; $S unshare $S exec c true 2>{w}/other-ns.err || rc=$?; echo \"other-ns=$rc\"\n\
         $S stop -t 1 c >/dev/null && $S rm c >/dev/null\n\
         rc=0; $S run --rm --network none --memory 32m --pids-limit 20 busybox:1.35 \
           sh -c 'cat /sys/fs/cgroup$(cut -d: -f3 /proc/self/cgroup | tail -n1)/memory.max' \
           >{w}/limits.out 2>{w}/limits.err || rc=$?; echo \"limits=$rc\"\n\
         echo \"left=$($S ps -aq | wc -l)\"\n",
        w = w.display()
    );
    let o = as_user(USER, &home, &script);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "rootless exec script failed:\n{}",
        text(&o)
    );
    let read = |f: &str| std::fs::read_to_string(w.join(f)).unwrap_or_default();
    let field = |k: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("no {k}= in:\n{out}"))
            .to_string()
    };
    let id = field("id");
    assert_eq!(id.len(), 64, "{out}");
    assert_eq!(field("hostname"), id[..12], "{out}");
    assert_eq!(field("env"), "bar 1000 /tmp", "{out}");
    assert_eq!(field("exit"), "7", "{out}");
    assert_eq!(field("cp"), "hi", "{out}");
    assert_eq!(field("top"), "ok", "{out}");
    if tty {
        assert_eq!(field("tty-exit"), "3", "{out}");
        let t = read("tty.out");
        assert!(t.contains("/dev/pts/") && t.contains("ok-42"), "{t}");
    }
    assert_ne!(field("other-ns"), "0", "{out}");
    let e = read("other-ns.err");
    assert!(
        e.contains("cannot exec in container c") && e.contains("another one"),
        "{e}"
    );
    assert_eq!(field("left"), "0", "{out}");

    // Limits, by this host's cgroup state.
    let (code, lout, lerr) = (field("limits"), read("limits.out"), read("limits.err"));
    if !Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        assert_eq!(code, "125", "{lout}{lerr}");
        assert!(
            lerr.contains("cannot apply --memory, --pids-limit")
                && lerr.contains("cgroup v1")
                && lerr.contains("run strata as root"),
            "{lerr}"
        );
    } else if code == "0" {
        assert_eq!(lout.trim(), (32u64 << 20).to_string(), "{lerr}");
    } else {
        assert_eq!(code, "125", "{lout}{lerr}");
        assert!(lerr.contains("no cgroup delegated to you"), "{lerr}");
    }

    // The default network: where the user cannot open /dev/net/tun (0600
    // here), the host's, with a warning that names the fix.
    use std::os::unix::fs::PermissionsExt;
    let tun = std::fs::metadata("/dev/net/tun").map(|m| m.permissions().mode());
    let e = read("net.err");
    if tun.is_ok_and(|m| m & 0o006 != 0o006) {
        assert!(
            e.contains("uses the host's network")
                && e.contains("/dev/net/tun cannot be opened")
                && e.contains("chmod 0666 /dev/net/tun"),
            "{e}"
        );
    }
}

/// The repository's root (scripts, examples).
fn repo_root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A temp dir (named `prefix*`) holding what the test users run: a copy of
/// the strata binary and the base rootfs tars of
/// scripts/make-base-rootfs.sh.
fn users_workdir(prefix: &str) -> tempfile::TempDir {
    let work = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
    let w = work.path();
    std::fs::copy(env!("CARGO_BIN_EXE_strata"), w.join("strata")).unwrap();
    let o = sh(Command::new(repo_root().join("scripts/make-base-rootfs.sh")).arg(w));
    assert!(o.status.success(), "make-base-rootfs: {}", text(&o));
    work
}
