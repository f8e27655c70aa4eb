//! Disk full: the store root is a 32 MB tmpfs, and a load, a COPY and a
//! RUN each try to put ~40 MB in it. Each must fail with a clear "no space
//! left on device" error that says what was being written, and leave a
//! consistent store: `system check` clean, the space given back, and the
//! next (small) build working.

use strata_test_support as support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::*;

/// A tmpfs of `mb` megabytes mounted on a temp dir; unmounted on drop.
struct Tmpfs {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Tmpfs {
    fn mount(mb: u32) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fs");
        std::fs::create_dir(&path).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mb}m"), "tmpfs"])
            .arg(&path)
            .status()
            .ok()?;
        st.success().then_some(Tmpfs { _dir: dir, path })
    }

    fn used_kb(&self) -> u64 {
        let o = Command::new("df")
            .args(["-k", "--output=used"])
            .arg(&self.path)
            .output()
            .unwrap();
        stdout(&o).lines().nth(1).unwrap().trim().parse().unwrap()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Overlay mounts a failed RUN might have left first, then the tmpfs.
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
        let p = self.path.to_string_lossy().into_owned();
        let mut inner: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(1))
            .filter(|m| m.starts_with(&p) && *m != p)
            .collect();
        inner.reverse();
        for m in inner {
            let _ = Command::new("umount").arg("-l").arg(m).status();
        }
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

fn noise(path: &Path, mb: usize) {
    let mut f = std::fs::File::open("/dev/urandom").unwrap();
    let mut out = std::fs::File::create(path).unwrap();
    std::io::copy(
        &mut std::io::Read::take(&mut f, (mb as u64) << 20),
        &mut out,
    )
    .unwrap();
}

/// The failure is ENOSPC, said plainly, naming something it was writing.
fn assert_enospc(what: &str, o: &std::process::Output) {
    assert!(!o.status.success(), "{what} succeeded on a full disk");
    let err = stderr(o);
    eprintln!("{what}: {}", err.trim());
    assert!(
        err.to_lowercase().contains("no space left on device"),
        "{what}: the error should say the disk is full:\n{err}"
    );
}

fn assert_check_clean(root: &Path) {
    let o = strata(root, &["system", "check"]);
    assert!(
        o.status.success() && stdout(&o).contains("no problems"),
        "store not consistent after a full disk:\n{}{}",
        stdout(&o),
        stderr(&o)
    );
}

#[test]
fn a_full_store_gives_a_clear_error_and_stays_consistent() {
    if !can_run() {
        return;
    }
    let Some(fs) = Tmpfs::mount(32) else {
        eprintln!("SKIPPED diskfull: cannot mount a tmpfs here");
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let ctx = work.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    noise(&ctx.join("big.bin"), 40);
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox:1.35\nCOPY big.bin /\n",
    )
    .unwrap();

    // An archive with a 40 MB layer, made in a store on the normal disk.
    let big_store = work.path().join("big-store");
    make_busybox(&big_store);
    let o = strata(&big_store, &["build", "-q", "-t", "big", &path_str(&ctx)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let big_tar = work.path().join("big.tar");
    let o = strata(&big_store, &["save", "-o", &path_str(&big_tar), "big"]);
    assert!(o.status.success(), "{}", stderr(&o));

    let root = fs.path.join("store");
    make_busybox(&root);
    // Unpack the base once (its snapshot is legitimately kept), so the
    // baseline holds everything a successful operation would leave.
    let o = strata(&root, &["run", "--rm", "busybox:1.35", "true"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let baseline = fs.used_kb();

    // 1. load
    let o = strata(&root, &["load", "-i", &path_str(&big_tar)]);
    assert_enospc("load", &o);
    assert_check_clean(&root);
    let o = strata(&root, &["image", "ls"]);
    assert!(!stdout(&o).contains("big"), "a failed load left an image");

    // 2. COPY from the context
    let o = strata(&root, &["build", "-q", "-t", "big", &path_str(&ctx)]);
    assert_enospc("build with COPY", &o);
    assert_check_clean(&root);

    // 3. RUN filling the disk inside the container (its upper dir is in
    // the store): the step fails with the command's own error, shown in
    // the build log.
    let run_ctx = context(&[(
        "Dockerfile",
        "FROM busybox:1.35\nRUN dd if=/dev/urandom of=/fill bs=1048576 count=40\n",
    )]);
    let o = strata(
        &root,
        &[
            "build",
            "--progress",
            "plain",
            "-t",
            "fill",
            &path_str(run_ctx.path()),
        ],
    );
    assert_enospc("build with RUN filling the disk", &o);
    assert_check_clean(&root);

    // 4. A RUN whose output fits: its layer is stored once (the snapshot,
    // no blob beside it), so it builds where a layer kept twice would not
    // fit; its space comes back when the image and its cache go.
    let run_ctx = context(&[(
        "Dockerfile",
        "FROM busybox:1.35\nRUN dd if=/dev/urandom of=/fill bs=1048576 count=18\n",
    )]);
    let o = strata(
        &root,
        &["build", "-q", "-t", "fill", &path_str(run_ctx.path())],
    );
    assert!(
        o.status.success(),
        "an 18 MB layer stored once fits in 32 MB: {}",
        stderr(&o)
    );
    assert_check_clean(&root);
    let o = strata(&root, &["rmi", "fill"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = strata(&root, &["system", "prune", "-a", "-f"]);
    assert!(o.status.success(), "{}", stderr(&o));

    // The space is given back (within 1 MB: db pages, lock files).
    let used = fs.used_kb();
    assert!(
        used <= baseline + 1024,
        "failed operations left {} kB behind",
        used - baseline
    );
    // And the store still works.
    let small = context(&[("Dockerfile", "FROM busybox:1.35\nRUN echo ok > /ok\n")]);
    let o = strata(
        &root,
        &["build", "-q", "-t", "small", &path_str(small.path())],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = strata(&root, &["run", "--rm", "small", "cat", "/ok"]);
    assert_eq!(stdout(&o), "ok\n", "{}", stderr(&o));
    assert_check_clean(&root);
}
