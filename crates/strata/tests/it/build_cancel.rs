//! The end of a build as the user sees it: a one-line total, a ticking
//! timer on the running step (tty), and Ctrl-C shown as "cancelled", never
//! as the RUN's "exit code: 130", with no spinner line left behind.

use strata_test_support as support;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_strata");

/// A RUN that takes long and ends as a program does on Ctrl-C (130).
const SLOW: &str =
    "FROM busybox:1.35\nRUN echo started; trap 'exit 130' INT TERM; sleep 30 & wait\n";

#[test]
fn a_finished_build_ends_with_one_total_line() {
    let Some((_t, root)) = setup_busybox() else {
        return;
    };
    let ctx = context(&[("Dockerfile", "FROM busybox:1.35\nRUN true\nWORKDIR /w\n")]);
    let o = build_ok(&root, ctx.path(), "total:1", &["--progress", "plain"]);
    let err = stderr(&o);
    let totals: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("[+] Building "))
        .collect();
    assert_eq!(totals.len(), 1, "{err}");
    assert!(totals[0].ends_with(" FINISHED"), "{err}");
    assert!(totals[0].contains("(3/3)"), "{err}");

    // A build that fails says so on the same line.
    let ctx = context(&[("Dockerfile", "FROM busybox:1.35\nRUN false\n")]);
    let o = build_with(&root, ctx.path(), "fails:1", &["--progress", "plain"]);
    let err = stderr(&o);
    let total = err
        .lines()
        .find(|l| l.starts_with("[+] Building "))
        .unwrap_or("");
    assert!(total.ends_with(" ERROR"), "{err}");
    let ctx = context(&[("Dockerfile", "FROM busybox:1.35\nNOPE x\n")]);
    let o = build_with(&root, ctx.path(), "fails:1", &["--progress", "plain"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(!err.contains("FINISHED"), "{err}");
}

/// `strata build --progress plain -t TAG CTX` started, its stderr piped.
fn spawn_build(root: &std::path::Path, tag: &str, ctx: &std::path::Path) -> std::process::Child {
    Command::new(BIN)
        .arg("--root")
        .arg(root)
        .args(["build", "--progress", "plain", "-t", tag])
        .arg(ctx)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until `out` (a pipe being read by a thread) shows `what`.
fn wait_for(buf: &std::sync::Arc<std::sync::Mutex<Vec<u8>>>, what: &str, secs: u64) -> bool {
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        if String::from_utf8_lossy(&buf.lock().unwrap()).contains(what) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn collect(mut r: impl Read + Send + 'static) -> std::sync::Arc<std::sync::Mutex<Vec<u8>>> {
    let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let b = buf.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = r.read(&mut chunk) {
            if n == 0 {
                break;
            }
            b.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    buf
}

#[test]
#[allow(unsafe_code)] // libc calls, each with its SAFETY comment
fn sigint_during_run_says_cancelled() {
    let Some((_t, root)) = setup_busybox() else {
        return;
    };
    let ctx = context(&[("Dockerfile", SLOW)]);
    let mut child = spawn_build(&root, "slow:1", ctx.path());
    let err = collect(child.stderr.take().unwrap());
    assert!(wait_for(&err, "started", 60), "the RUN never started");
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill on our own child's pid.
    unsafe { libc_kill(child.id() as i32, 2) };
    let status = child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let err = String::from_utf8_lossy(&err.lock().unwrap()).into_owned();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("CANCELLED"), "{err}");
    assert!(err.contains("build cancelled"), "{err}");
    assert!(!err.contains("exit code: 130"), "{err}");
    let total = err
        .lines()
        .find(|l| l.starts_with("[+] Building "))
        .unwrap_or("");
    assert!(total.ends_with(" CANCELLED"), "{err}");
}

/// Ctrl-C typed on a terminal (through `script`'s pseudo-terminal): the
/// running step ticked its timer, ends CANCELLED, and nothing is drawn
/// after the total line (no stale spinner).
#[test]
fn ctrl_c_on_a_terminal_leaves_no_spinner() {
    if !can_run() {
        return;
    }
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("SKIPPED: needs `script` (util-linux) for a pseudo-terminal");
        return;
    }
    let (_t, root) = root_dir();
    make_busybox(&root);
    let ctx = context(&[("Dockerfile", SLOW)]);
    let cmd = format!(
        "{BIN} --root {} build --progress tty -t slow:1 {}",
        root.display(),
        ctx.path().display()
    );
    let mut child = Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = collect(child.stdout.take().unwrap());
    assert!(wait_for(&out, "started", 60), "the RUN never started");
    // Long enough for the timer to tick past 1s.
    std::thread::sleep(Duration::from_millis(1500));
    child.stdin.as_mut().unwrap().write_all(b"\x03").unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < until, "strata did not stop after Ctrl-C");
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(Duration::from_millis(100));
    let text = String::from_utf8_lossy(&out.lock().unwrap()).into_owned();
    assert_eq!(status.code(), Some(130), "{text}");
    assert!(
        text.contains("1.0s") || text.contains("1.1s") || text.contains("1.2s"),
        "the timer ticked: {text:?}"
    );
    assert!(
        text.contains("CANCELLED [1/1] RUN") || text.contains("CANCELLED"),
        "{text:?}"
    );
    assert!(!text.contains("exit code: 130"), "{text:?}");
    // After the total line only plain text: no spinner redraw.
    if std::env::var_os("STRATA_SHOW_TTY").is_some() {
        eprintln!("{text:?}");
    }
    let at = text.rfind("[+] Building ").expect("a total line");
    let after = &text[at..];
    assert!(after.contains("CANCELLED"), "{after:?}");
    assert!(
        !after.contains("\x1b[") || !after.contains("RUN echo"),
        "redrawn after the end: {after:?}"
    );
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

/// Ctrl-C outside a RUN (a long COPY): nothing stops it half-way, so the
/// display is put in order and strata exits at once, with 130, having
/// released the COPY's rootfs mount (it used to stay mounted until the
/// next strata command on that store).
#[test]
#[allow(unsafe_code)] // libc calls, each with its SAFETY comment
fn sigint_outside_run_exits_cancelled() {
    let Some((_t, root)) = setup_busybox() else {
        return;
    };
    let ctx = context(&[("Dockerfile", "FROM busybox:1.35\nCOPY big /big\n")]);
    // Sparse: cheap on disk, yet hashed and archived byte by byte.
    let f = std::fs::File::create(ctx.path().join("big")).unwrap();
    f.set_len(4 << 30).unwrap();
    let mut child = spawn_build(&root, "big:1", ctx.path());
    let err = collect(child.stderr.take().unwrap());
    assert!(wait_for(&err, "COPY big", 60), "the COPY never started");
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    // SAFETY: kill on our own child's pid.
    unsafe { libc_kill(child.id() as i32, 2) };
    let status = child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let err = String::from_utf8_lossy(&err.lock().unwrap()).into_owned();
    if err.contains("built image") {
        eprintln!("SKIPPED: the COPY finished before the signal; nothing to check");
        return;
    }
    assert!(t0.elapsed() < Duration::from_secs(5), "slow to stop: {err}");
    assert_eq!(status.code(), Some(130), "{err}");
    let total = err
        .lines()
        .find(|l| l.starts_with("[+] Building "))
        .unwrap_or("");
    assert!(total.ends_with(" CANCELLED"), "{err}");
    // No strata command has run since: what is left is the build's own.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let under = format!(" {}/", path_str(&root));
    let left: Vec<&str> = mounts.lines().filter(|l| l.contains(&under)).collect();
    assert!(left.is_empty(), "mounted under the store: {left:#?}");
    let ctrs: Vec<_> = std::fs::read_dir(root.join("containers"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(ctrs.is_empty(), "container dirs left: {ctrs:?}");
}
