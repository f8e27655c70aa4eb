//! Stopping containers: signals to the container process and to the strata
//! process running it. The runner is this test binary re-executed with
//! `STRATA_RUNNER_DIR` set (see `runner_child`). Needs root.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{can_run, env, make_busybox_rootfs};
use strata_runtime::*;

fn runc_at(dir: &Path) -> Runc {
    Runc::locate()
        .unwrap()
        .with_state_root(dir.join("state"))
        .with_bundle_root(dir.join("bundles"))
        .with_stop_timeout(Duration::from_secs(2))
}

/// Not a test on its own: the body of the re-executed runner process.
#[test]
fn runner_child() {
    let Some(dir) = std::env::var_os("STRATA_RUNNER_DIR") else {
        return;
    };
    let dir = Path::new(&dir);
    let script = std::env::var("STRATA_RUNNER_SCRIPT").unwrap();
    let spec = common::spec(
        &dir.join("rootfs"),
        ProcessSpec {
            args: vec!["sh".into(), "-c".into(), script],
            ..Default::default()
        },
    );
    let st = runc_at(dir).run(&spec, StdioConfig::Inherit).unwrap();
    std::fs::write(dir.join("status"), st.code.to_string()).unwrap();
}

/// Polls `runc list` until one container runs; returns its id and host pid.
fn wait_running(runc: &Runc, state: &Path) -> (String, i32) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(id) = runc.list().unwrap().into_iter().next() {
            let out = Command::new(runc.binary())
                .arg("--root")
                .arg(state)
                .args(["state", &id])
                .output()
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            if v["status"] == "running" {
                return (id, v["pid"].as_i64().unwrap() as i32);
            }
        }
        assert!(Instant::now() < deadline, "container never started");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn spawn_runner(dir: &Path, script: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "signals::runner_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("STRATA_RUNNER_DIR", dir)
        .env("STRATA_RUNNER_SCRIPT", script)
        .spawn()
        .unwrap()
}

fn runner_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    make_busybox_rootfs(&dir.path().join("rootfs"));
    dir
}

fn assert_clean(dir: &Path, runc: &Runc, id: &str) {
    assert!(runc.list().unwrap().is_empty(), "runc state left behind");
    let bundles: Vec<_> = std::fs::read_dir(dir.join("bundles")).unwrap().collect();
    assert!(bundles.is_empty(), "bundle left behind: {bundles:?}");
    assert!(!Path::new("/sys/fs/cgroup/pids/strata").join(id).exists());
}

#[test]
fn sigkill_to_container_process_gives_137() {
    if !can_run() {
        return;
    }
    let e = env();
    let spec = e.spec(&["sleep", "30"]);
    let state = e.state();
    let runc = e.runc.clone();
    let killer = std::thread::spawn(move || {
        let (_, pid) = wait_running(&runc, &state);
        kill(pid, 9);
    });
    let t = Instant::now();
    let st = e.runc.run(&spec, StdioConfig::Null).unwrap();
    killer.join().unwrap();
    assert_eq!(
        st,
        ExitStatus {
            code: 137,
            signal: Some(9)
        }
    );
    assert!(t.elapsed() < Duration::from_secs(20));
    e.assert_clean(&spec.id);
}

/// Starts a runner of `script`, waits for its container and `settle` more,
/// then sends the runner SIGTERM. The runner must exit 0 and leave nothing
/// behind; returns the container's exit status (as the runner wrote it)
/// and how long the runner took to stop after the signal.
fn sigterm_a_runner(script: &str, settle: Duration) -> (String, Duration) {
    let dir = runner_dir();
    let runc = runc_at(dir.path());
    let mut child = spawn_runner(dir.path(), script);
    let (id, _) = wait_running(&runc, &dir.path().join("state"));
    std::thread::sleep(settle);
    let t = Instant::now();
    kill(child.id() as i32, 15);
    let st = child.wait().unwrap();
    let took = t.elapsed();
    assert!(st.success(), "runner failed: {st:?}");
    let status = std::fs::read_to_string(dir.path().join("status")).unwrap();
    assert_clean(dir.path(), &runc, &id);
    (status, took)
}

#[test]
fn sigterm_to_runner_stops_container_and_cleans_up() {
    if !can_run() {
        return;
    }
    // `sleep` as PID 1 ignores SIGTERM: killed after the 2 s stop timeout.
    let (status, took) = sigterm_a_runner("sleep 30", Duration::ZERO);
    assert!(took < Duration::from_secs(15), "{took:?}");
    assert_eq!(status, "137");
}

#[test]
fn sigterm_is_forwarded_to_a_trapping_container() {
    if !can_run() {
        return;
    }
    let (status, _) = sigterm_a_runner(
        "trap 'echo got TERM; exit 42' TERM; while true; do sleep 1; done",
        Duration::from_millis(300),
    );
    assert_eq!(status, "42");
}

#[test]
fn containers_of_a_killed_runner_are_cleaned_up_later() {
    if !can_run() {
        return;
    }
    let dir = runner_dir();
    let runc = runc_at(dir.path());
    let mut child = spawn_runner(dir.path(), "sleep 30");
    let (id, _) = wait_running(&runc, &dir.path().join("state"));
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    let removed = runc.cleanup_stale().unwrap();
    assert_eq!(removed, vec![id.clone()]);
    assert_clean(dir.path(), &runc, &id);
}

fn kill(pid: i32, sig: i32) {
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).unwrap(),
        rustix::process::Signal::from_named_raw(sig).unwrap(),
    )
    .unwrap();
}
