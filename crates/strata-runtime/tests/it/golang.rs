//! The offline golang:1.19 base (scripts/make-base-rootfs.sh) builds the
//! tutorial program through the runtime, and the binary runs on the busybox
//! base, as the multi-stage demo does. Needs root and Debian's golang-go and
//! busybox-static; skipped loudly otherwise. Set STRATA_BASE_DIR to a
//! directory already holding busybox.tar and golang.tar to skip regenerating.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use strata_runtime::*;

const MAIN_GO: &str = "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Println(\"DevOps is the \u{1F410}\")\n}\n";

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/make-base-rootfs.sh")
}

/// The `--change` lines the script recommends for `image`.
fn changes(image: &str) -> Vec<String> {
    let out = Command::new("sh")
        .arg(script())
        .args(["--print-changes", image])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn image_env(image: &str) -> Vec<String> {
    changes(image)
        .iter()
        .filter_map(|c| c.strip_prefix("ENV ").map(String::from))
        .collect()
}

fn extract(tar: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    let st = Command::new("tar")
        .args(["--numeric-owner", "-xpf"])
        .arg(tar)
        .arg("-C")
        .arg(dest)
        .status()
        .unwrap();
    assert!(st.success(), "extracting {}", tar.display());
}

fn run(runc: &Runc, rootfs: &Path, args: &[&str], env: Vec<String>, cwd: &str) -> (i32, String) {
    let out = Arc::new(Mutex::new(Vec::new()));
    let (o, e) = (out.clone(), out.clone());
    let spec = common::spec(
        rootfs,
        ProcessSpec {
            args: args.iter().map(|s| s.to_string()).collect(),
            env,
            cwd: cwd.into(),
            user: resolve_user(rootfs, "").unwrap(),
            ..Default::default()
        },
    );
    let st = runc
        .run(
            &spec,
            StdioConfig::Piped {
                stdout: Box::new(move |b| o.lock().unwrap().extend_from_slice(b)),
                stderr: Box::new(move |b| e.lock().unwrap().extend_from_slice(b)),
            },
        )
        .unwrap();
    let text = String::from_utf8_lossy(&out.lock().unwrap()).into_owned();
    (st.code, text)
}

#[test]
fn golang_base_builds_the_tutorial_program() {
    if !common::can_run() {
        return;
    }
    if !Path::new("/usr/lib/go-1.19/bin/go").exists() {
        eprintln!("!!! SKIPPED: Go is not installed (/usr/lib/go-1.19): apt-get install golang-go");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let bases = match std::env::var_os("STRATA_BASE_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            let st = Command::new("sh")
                .arg(script())
                .arg(tmp.path().join("bases"))
                .status()
                .unwrap();
            assert!(st.success(), "make-base-rootfs.sh failed");
            tmp.path().join("bases")
        }
    };
    let go_root = tmp.path().join("golang");
    extract(&bases.join("golang.tar"), &go_root);
    std::fs::create_dir_all(go_root.join("app")).unwrap();
    std::fs::write(go_root.join("app/main.go"), MAIN_GO).unwrap();
    std::fs::write(go_root.join("app/go.mod"), "module app\n\ngo 1.19\n").unwrap();

    let runc = Runc::locate()
        .unwrap()
        .with_state_root(tmp.path().join("state"))
        .with_bundle_root(tmp.path().join("bundles"));
    let env = image_env("golang");
    assert!(env.contains(&"GOPATH=/go".to_string()), "{env:?}");
    let (code, out) = run(
        &runc,
        &go_root,
        &["go", "build", "-o", "app", "."],
        env.clone(),
        "/app",
    );
    assert_eq!(code, 0, "go build failed:\n{out}");
    assert!(go_root.join("app/app").is_file());
    let (code, out) = run(&runc, &go_root, &["/app/app"], env.clone(), "/go");
    assert_eq!((code, out.as_str()), (0, "DevOps is the \u{1F410}\n"));
    let (_, out) = run(
        &runc,
        &go_root,
        &["sh", "-c", "go version; pwd; echo $HOME"],
        env,
        "/go",
    );
    assert!(out.starts_with("go version go1.19"), "{out}");

    // Multi-stage: the binary alone on the busybox base.
    let bb_root = tmp.path().join("busybox");
    extract(&bases.join("busybox.tar"), &bb_root);
    std::fs::copy(go_root.join("app/app"), bb_root.join("app")).unwrap();
    let (code, out) = run(&runc, &bb_root, &["/app"], image_env("busybox"), "/");
    assert_eq!((code, out.as_str()), (0, "DevOps is the \u{1F410}\n"));
    let (_, out) = run(&runc, &bb_root, &["id"], vec![], "/");
    assert_eq!(out, "uid=0(root) gid=0(root) groups=0(root),10(wheel)\n");
}
