//! Helpers for the CLI tests: a temp store root, a busybox base image
//! created directly through the store API (no registry or import needed,
//! feature `image`), runs of the `strata` binary (built on
//! [`crate::runner::Strata`]), build contexts, and the local HTTP and git
//! servers some builds read from.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[cfg(feature = "image")]
use strata_store::{LayerOptions, LayerWriter, Store};

use crate::runner::strata_bin;

/// `strata --root ROOT ARGS`, stdin closed.
pub fn strata(root: &Path, args: &[&str]) -> Output {
    Command::new(strata_bin())
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .expect("run strata")
}

/// Stdout, lossily decoded.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Stderr, lossily decoded.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// True when the host can run these tests (root, a static busybox);
/// otherwise says so on stderr.
pub fn can_run() -> bool {
    let root = rustix::process::geteuid().is_root();
    let ok = root && Path::new("/bin/busybox").exists();
    if !ok {
        eprintln!("SKIPPED: needs root and /bin/busybox (busybox-static)");
    }
    ok
}

/// True when pasta (the private network's user-mode stack) is installed;
/// otherwise says so on stderr.
pub fn have_pasta() -> bool {
    let ok = ["/usr/bin/pasta", "/usr/sbin/pasta", "/usr/local/bin/pasta"]
        .iter()
        .any(|p| Path::new(p).exists());
    if !ok {
        eprintln!("SKIPPED: needs pasta (apt-get install passt)");
    }
    ok
}

/// Creates `busybox:1.35` (one layer: busybox, its applets, passwd with
/// root, nobody and app(1000), /tmp 1777) in the store at `root`.
#[cfg(feature = "image")]
pub fn make_busybox(root: &Path) {
    make_busybox_with(root, None)
}

/// Like [`make_busybox`]; with `clamp`, every file time in the layer is
/// set to that instant, so two stores get the same base image ID.
#[cfg(feature = "image")]
pub fn make_busybox_with(root: &Path, clamp: Option<i64>) {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    for d in ["bin", "etc", "root", "tmp", "usr/bin"] {
        std::fs::create_dir_all(r.join(d)).unwrap();
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(r.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::copy("/bin/busybox", r.join("bin/busybox")).unwrap();
    for applet in busybox_applets() {
        let _ = std::os::unix::fs::symlink("busybox", r.join("bin").join(applet));
    }
    std::fs::write(
        r.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    std::fs::write(
        r.join("etc/group"),
        "root:x:0:\napp:x:1000:\nnogroup:x:65534:\n",
    )
    .unwrap();
    let store = Store::open(root).unwrap();
    let opts = LayerOptions {
        mtime_clamp: clamp,
        ..LayerOptions::default()
    };
    let info = LayerWriter::new(store.blobs(), opts)
        .write_dir(r, None)
        .unwrap();
    let mut cfg = strata_engine::config::scratch();
    if clamp.is_some() {
        cfg.created = Some("2000-01-01T00:00:00Z".into());
    }
    cfg.runtime_mut().cmd = Some(vec!["sh".into()]);
    let layer = strata_engine::cache::LayerRef {
        digest: info.digest.clone(),
        diff_id: info.diff_id.clone(),
        size: info.size,
        uncompressed_size: info.uncompressed_size,
        media_type: info.media_type.clone(),
    };
    let id = strata_engine::images::commit_image(&store, &cfg, &[layer], None).unwrap();
    strata_engine::images::tag_image(&store, &id, &["busybox:1.35".into()]).unwrap();
}

/// The applets of /bin/busybox (`busybox --list`), but busybox itself.
pub fn busybox_applets() -> Vec<String> {
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    String::from_utf8_lossy(&list.stdout)
        .lines()
        .filter(|a| *a != "busybox")
        .map(String::from)
        .collect()
}

/// A temp dir with the given files (path, contents).
pub fn context(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (p, c) in files {
        let path = d.path().join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, c).unwrap();
    }
    d
}

/// The path as a string (lossily), for argument lists.
pub fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// A temp dir and the store root `store` inside it (not created: strata
/// creates it on first use).
pub fn root_dir() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("store");
    (d, p)
}

/// Runs `cmd` in `image` (`strata run --rm`) and returns its stdout,
/// asserting success.
pub fn run_in(root: &Path, image: &str, cmd: &[&str]) -> String {
    let mut args = vec!["run", "--rm", image];
    args.extend_from_slice(cmd);
    let o = strata(root, &args);
    assert!(o.status.success(), "run {cmd:?}: {}", stderr(&o));
    stdout(&o)
}

/// `strata run --rm --network none FLAGS busybox:1.35 CMD...`: a
/// throw-away container of the base image with no network (not asserted).
pub fn run_offline(root: &Path, flags: &[&str], cmd: &[&str]) -> Output {
    let mut args = vec!["run", "--rm", "--network", "none"];
    args.extend_from_slice(flags);
    args.push("busybox:1.35");
    args.extend_from_slice(cmd);
    strata(root, &args)
}

/// Builds the context at `ctx` tagged `tag` with extra arguments; returns
/// the output (not asserted).
pub fn build_with(root: &Path, ctx: &Path, tag: &str, extra: &[&str]) -> Output {
    let ctx = path_str(ctx);
    let mut args = vec!["build", "-t", tag];
    if !extra.contains(&"--progress") && !extra.contains(&"-q") {
        args.extend(["--progress", "plain"]);
    }
    args.extend_from_slice(extra);
    args.push(&ctx);
    strata(root, &args)
}

/// Builds and asserts success.
pub fn build_ok(root: &Path, ctx: &Path, tag: &str, extra: &[&str]) -> Output {
    let o = build_with(root, ctx, tag, extra);
    assert!(o.status.success(), "build {tag}: {}", stderr(&o));
    o
}

/// A directory for this test process's shared fixtures (those kept in a
/// `static`), under `base`, cargo's temp dir for integration tests (pass
/// `env!("CARGO_TARGET_TMPDIR")`). A `TempDir` in a static is never
/// dropped, so it leaked at every run (hundreds of MB each); instead, dirs
/// that earlier, finished runs left are deleted here.
pub fn process_scratch_dir(base: &Path, name: &str) -> PathBuf {
    let prefix = format!("{name}-");
    if let Ok(entries) = std::fs::read_dir(base) {
        for e in entries.flatten() {
            let file_name = e.file_name().to_string_lossy().into_owned();
            let pid = file_name
                .strip_prefix(&prefix)
                .and_then(|p| p.parse::<u32>().ok());
            if pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let dir = base.join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the fixture dir");
    dir
}

/// strata under `timeout` (a hang fails the test instead of blocking it),
/// stdin closed.
pub fn strata_timeout(root: &Path, secs: u32, args: &[&str]) -> Output {
    Command::new("timeout")
        .arg(secs.to_string())
        .arg(strata_bin())
        .arg("--root")
        .arg(root)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run timeout strata")
}

/// `mkfifo path`.
pub fn mkfifo(path: &Path) {
    let st = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(st.success(), "mkfifo {}", path.display());
}

/// Runs strata and insists on success; returns stdout.
pub fn ok(root: &Path, args: &[&str]) -> String {
    let o = strata(root, args);
    assert!(
        o.status.success(),
        "strata {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// `strata --root ROOT ARGS` with `input` on stdin.
pub fn strata_stdin(root: &Path, args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut c = Command::new(strata_bin())
        .arg("--root")
        .arg(root)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = c.stdin.take().unwrap();
    let input = input.to_vec();
    let w = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let o = c.wait_with_output().unwrap();
    w.join().unwrap();
    o
}

/// A temp store root holding `busybox:1.35`, or None (skipped) when the
/// host cannot run these tests ([`can_run`]).
#[cfg(feature = "image")]
pub fn setup_busybox() -> Option<(tempfile::TempDir, PathBuf)> {
    if !can_run() {
        return None;
    }
    let (t, root) = root_dir();
    make_busybox(&root);
    Some((t, root))
}

/// [`setup_busybox`] where pasta is installed too ([`have_pasta`]).
#[cfg(feature = "image")]
pub fn setup_with_pasta() -> Option<(tempfile::TempDir, PathBuf)> {
    if !can_run() || !have_pasta() {
        return None;
    }
    setup_busybox()
}

/// The JSON lines (`--progress rawjson` events) of `out`; every line that
/// starts with `{` must parse.
pub fn events(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// An HTTP server on 127.0.0.1 answering `requests` requests (one at a
/// time, any path) with 200 and `body`; `headers` (each ending `\r\n`) go
/// after Content-Length. Returns the port.
pub fn serve_http(body: Vec<u8>, requests: usize, headers: &'static str) -> u16 {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().take(requests) {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 4096];
            let mut req = Vec::new();
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n{headers}Connection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
    port
}

/// `git -C DIR ARGS` (author and committer `t <t@t>`), asserting success;
/// returns stdout, trimmed.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let o = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .output()
        .expect("git");
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// A git daemon serving the repositories under `base` (export-all) on a
/// free loopback port, up (or given five seconds) when this returns. It
/// is git-daemon itself (not the `git daemon` wrapper), so that kill()
/// stops the server. Returns it and the port.
pub fn git_daemon(base: &Path) -> (std::process::Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let exec_path = git(base, &["--exec-path"]);
    let daemon = Command::new(Path::new(&exec_path).join("git-daemon"))
        .arg("--export-all")
        .arg("--reuseaddr")
        .arg(format!("--base-path={}", base.display()))
        .arg(format!("--port={port}"))
        .arg("--listen=127.0.0.1")
        .arg(base)
        .spawn()
        .expect("git daemon (Debian package git-daemon-run or git)");
    for _ in 0..50 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    (daemon, port)
}

/// Serializes the tests that create users and their namespaces or watch
/// host-wide state (`/run/strata/netns`, processes by name): the rootless
/// suite and the kill-and-reap checks. They were separate test binaries,
/// which cargo runs one at a time; in one binary they would overlap.
pub fn host_state_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}
