//! Helpers shared by the runtime's integration tests: a busybox rootfs and a
//! runc with private state and bundle dirs.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use strata_runtime::*;

/// False (after saying so loudly) when the tests cannot run here.
pub(crate) fn can_run() -> bool {
    if !rustix::process::geteuid().is_root() {
        eprintln!("!!! SKIPPED: strata-runtime container tests need root (runc creates namespaces and cgroups); CI runs them as root");
        return false;
    }
    if !Path::new("/usr/bin/busybox").exists() {
        eprintln!("!!! SKIPPED: /usr/bin/busybox is missing: apt-get install busybox-static");
        return false;
    }
    if Runc::locate().is_err() {
        eprintln!("!!! SKIPPED: runc is missing: apt-get install runc");
        return false;
    }
    true
}

/// A container with a fresh ID running `process` in `rootfs`: no network,
/// no mounts, a writable rootfs, nothing else set.
pub(crate) fn spec(rootfs: &Path, process: ProcessSpec) -> ContainerSpec {
    ContainerSpec {
        id: new_container_id(),
        rootfs: rootfs.to_path_buf(),
        process,
        network: Network::None,
        mounts: vec![],
        hostname: None,
        readonly_rootfs: false,
        extra: Default::default(),
    }
}

/// A temp dir holding `rootfs/`, `state/` and `bundles/`.
pub(crate) struct Env {
    pub dir: tempfile::TempDir,
    pub runc: Runc,
}

impl Env {
    pub(crate) fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }
    pub(crate) fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }
    pub(crate) fn bundles(&self) -> PathBuf {
        self.dir.path().join("bundles")
    }

    /// A container of `args` as root in this rootfs ([`spec`]).
    pub(crate) fn spec(&self, args: &[&str]) -> ContainerSpec {
        spec(
            &self.rootfs(),
            ProcessSpec {
                args: args.iter().map(|s| s.to_string()).collect(),
                user: resolve_user(&self.rootfs(), "").unwrap(),
                ..Default::default()
            },
        )
    }

    /// Runs `spec`, returning (status, stdout, stderr).
    pub(crate) fn run(&self, spec: &ContainerSpec) -> (ExitStatus, String, String) {
        let out = Arc::new(Mutex::new(Vec::new()));
        let err = Arc::new(Mutex::new(Vec::new()));
        let (o, e) = (out.clone(), err.clone());
        let status = self
            .runc
            .run(
                spec,
                StdioConfig::Piped {
                    stdout: Box::new(move |b| o.lock().unwrap().extend_from_slice(b)),
                    stderr: Box::new(move |b| e.lock().unwrap().extend_from_slice(b)),
                },
            )
            .unwrap_or_else(|e| panic!("running {:?}: {e}", spec.process.args));
        let out = String::from_utf8_lossy(&out.lock().unwrap()).into_owned();
        let err = String::from_utf8_lossy(&err.lock().unwrap()).into_owned();
        self.assert_clean(&spec.id);
        (status, out, err)
    }

    /// Runs `sh -c script` as root.
    pub(crate) fn sh(&self, script: &str) -> (ExitStatus, String, String) {
        self.run(&self.spec(&["sh", "-c", script]))
    }

    /// No runc state, bundle or cgroup left for `id`.
    pub(crate) fn assert_clean(&self, id: &str) {
        assert!(
            !self.state().join(id).exists(),
            "runc state for {id} left behind"
        );
        assert!(
            !self.bundles().join(id).exists(),
            "bundle for {id} left behind"
        );
        assert!(
            !Path::new("/sys/fs/cgroup/pids/strata").join(id).exists()
                && !Path::new("/sys/fs/cgroup/strata").join(id).exists(),
            "cgroup for {id} left behind"
        );
    }
}

/// A busybox rootfs with root, nobody and app (1000), groups root, wheel
/// (root), nogroup, app and staff (app).
pub(crate) fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    make_busybox_rootfs(&dir.path().join("rootfs"));
    let runc = Runc::locate()
        .unwrap()
        .with_state_root(dir.path().join("state"))
        .with_bundle_root(dir.path().join("bundles"));
    Env { dir, runc }
}

pub(crate) fn make_busybox_rootfs(root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for d in [
        "bin", "etc", "tmp", "root", "home/app", "proc", "sys", "dev",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::copy("/usr/bin/busybox", root.join("bin/busybox")).unwrap();
    let list = std::process::Command::new("/usr/bin/busybox")
        .arg("--list")
        .output()
        .unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let link = root.join("bin").join(applet);
        if applet != "busybox" && !link.exists() {
            std::os::unix::fs::symlink("busybox", link).unwrap();
        }
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\n\
         nobody:x:65534:65534:nobody:/home:/bin/false\n\
         app:x:1000:1000:app:/home/app:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        root.join("etc/group"),
        "root:x:0:\nwheel:x:10:root\nstaff:x:50:app\nnogroup:x:65534:\napp:x:1000:\n",
    )
    .unwrap();
}
