//! Hostile input through the real binary, each test with its own temp
//! store: crafted layers loaded with `strata load` and then run (so the
//! snapshotter applies them), hostile build contexts, and RUN steps that
//! try to reach the host. Every case must give a clear error or a safe
//! result, leave `system check` clean, and never touch the canary file
//! that sits outside the store (content and mtime are compared).

use strata_test_support as support;

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use strata_test_support::hostile_tar::{raw_tar, Entry as E};
use support::*;

// ---------------------------------------------------------------------
// Canary: a file outside every store, with an old mtime, that hostile
// input aims at. Any write (even of the same bytes) changes its mtime.

struct Canary {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    file: PathBuf,
}

const CANARY_TEXT: &[u8] = b"host canary: must never change\n";

fn canary() -> Canary {
    let dir = tempfile::Builder::new()
        .prefix("strata-canary-")
        .tempdir()
        .unwrap();
    let d = dir.path().to_path_buf();
    let file = d.join("canary");
    fs::write(&file, CANARY_TEXT).unwrap();
    // A fixed old mtime: a rewrite cannot go unnoticed within a second.
    let st = std::process::Command::new("touch")
        .args(["-d", "2001-02-03 04:05:06"])
        .arg(&file)
        .status()
        .unwrap();
    assert!(st.success());
    Canary {
        _dir: dir,
        dir: d,
        file,
    }
}

impl Canary {
    /// Content, mtime, and that nothing new appeared beside it.
    fn assert_untouched(&self) {
        assert_eq!(fs::read(&self.file).unwrap(), CANARY_TEXT, "canary changed");
        let md = fs::metadata(&self.file).unwrap();
        assert_eq!(md.mtime(), 981173106, "canary mtime changed");
        let names: Vec<_> = fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["canary"], "something was created beside the canary");
        for p in ["/canary", "/pwned", "/tmp/pwned", "/etc/pwned"] {
            assert!(!Path::new(p).exists(), "{p} was created on the host");
        }
    }

    /// The canary path without its leading '/', for relative tricks.
    fn rel(&self) -> String {
        self.file
            .to_string_lossy()
            .trim_start_matches('/')
            .to_string()
    }
}

// ---------------------------------------------------------------------
// A busybox base layer for the hostile ones (strata_test_support::hostile_tar).

/// A busybox base layer: the static binary, its applets, passwd, /tmp.
fn base_layer() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let dir = |b: &mut tar::Builder<Vec<u8>>, p: &str, mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(mode);
        h.set_size(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        b.append_data(&mut h, p, &[][..]).unwrap();
    };
    for d in ["bin", "etc", "root"] {
        dir(&mut b, d, 0o755);
    }
    dir(&mut b, "tmp", 0o1777);
    b.append_path_with_name("/bin/busybox", "bin/busybox")
        .unwrap();
    for applet in busybox_applets() {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        b.append_link(&mut h, format!("bin/{applet}"), "busybox")
            .unwrap();
    }
    let passwd = b"root:x:0:0:root:/root:/bin/sh\n";
    let mut h = tar::Header::new_gnu();
    h.set_size(passwd.len() as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    b.append_data(&mut h, "etc/passwd", &passwd[..]).unwrap();
    b.into_inner().unwrap()
}

/// Loads an image `hostile:1` made of the busybox base plus `entries`.
/// Returns the load's output (a load only verifies digests: layers are
/// applied when a container or a build needs them).
fn load_hostile(root: &Path, entries: &[E<'_>]) -> Output {
    let t = tempfile::tempdir().unwrap();
    let archive = t.path().join("hostile.tar");
    fs::write(
        &archive,
        docker_archive(&["hostile:1".into()], &[base_layer(), raw_tar(entries)]),
    )
    .unwrap();
    strata(root, &["load", "-i", &path_str(&archive)])
}

/// `system check` exits 0 and reports no corruption.
fn assert_check_clean(root: &Path) {
    let o = strata(root, &["system", "check"]);
    assert!(
        o.status.success(),
        "system check found problems:\n{}{}",
        stdout(&o),
        stderr(&o)
    );
}

/// The canary, or None (the test is skipped) when the host cannot run
/// these tests.
fn setup() -> Option<Canary> {
    can_run().then(canary)
}

/// [`load_and_run`] that must succeed; returns the run's stdout.
fn run_ok(c: &Canary, entries: &[E<'_>], script: &str) -> String {
    let (_t, o) = load_and_run(c, entries, script);
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o)
}

/// Loads the hostile image, then runs `script` in it. Returns the run.
fn load_and_run(c: &Canary, entries: &[E<'_>], script: &str) -> (tempfile::TempDir, Output) {
    let (t, root) = root_dir();
    let o = load_hostile(&root, entries);
    assert!(o.status.success(), "load: {}", stderr(&o));
    let o = strata(&root, &["run", "--rm", "hostile:1", "sh", "-c", script]);
    c.assert_untouched();
    assert_check_clean(&root);
    (t, o)
}

/// A refused layer: the run fails, saying which entry and why.
fn assert_refused(o: &Output, what: &str) {
    assert!(!o.status.success(), "a hostile layer was accepted");
    let err = stderr(o);
    eprintln!("refused as expected: {}", err.trim());
    assert!(
        err.contains(what),
        "the error should name {what:?}, got:\n{err}"
    );
}

// ---------------------------------------------------------------------
// Crafted layers.

#[test]
fn layer_dot_dot_to_the_canary_is_refused() {
    let Some(c) = setup() else {
        return;
    };
    let name = format!("../../../../../../../../{}", c.rel());
    let (_t, o) = load_and_run(
        &c,
        &[E::File(name.as_bytes(), b"pwned")],
        "echo should not run",
    );
    assert_refused(&o, "..");
}

#[test]
fn layer_absolute_path_lands_inside_the_rootfs() {
    let Some(c) = setup() else {
        return;
    };
    let name = c.file.as_os_str().as_bytes().to_vec();
    let (_t, o) = load_and_run(
        &c,
        &[E::File(&name, b"inside\n")],
        &format!("cat {}", c.file.display()),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "inside\n");
}

#[test]
fn layer_symlink_then_write_through_it_stays_inside() {
    let Some(c) = setup() else {
        return;
    };
    // `d` points at the canary's directory on the host (absolute), and `up`
    // climbs out with `..`; both writes must land inside the rootfs.
    let dir = c.dir.as_os_str().as_bytes().to_vec();
    let out = run_ok(
        &c,
        &[
            E::Symlink(b"d", &dir),
            E::File(b"d/canary", b"via-abs\n"),
            E::Symlink(b"up", b"../../../../../../.."),
            E::File(format!("up/{}", c.rel()).as_bytes(), b"via-up\n"),
        ],
        &format!("cat {}", c.file.display()),
    );
    assert_eq!(out, "via-up\n");
}

#[test]
fn layer_symlink_over_existing_file_then_overwrite_by_name() {
    let Some(c) = setup() else {
        return;
    };
    // The second entry replaces the symlink itself; it never writes the
    // host file the link points at.
    let target = c.file.as_os_str().as_bytes().to_vec();
    let out = run_ok(
        &c,
        &[E::Symlink(b"c", &target), E::File(b"c", b"replaced\n")],
        "cat /c; test -L /c && echo still-a-link; true",
    );
    assert_eq!(out, "replaced\n");
}

#[test]
fn layer_hardlink_to_a_file_outside_is_refused() {
    let Some(c) = setup() else {
        return;
    };
    let target = c.file.as_os_str().as_bytes().to_vec();
    let (_t, o) = load_and_run(&c, &[E::Hardlink(b"h", &target)], "cat /h");
    assert_refused(&o, "hard link");
    let up = format!("../../../../../../../{}", c.rel());
    let (_t, o) = load_and_run(&c, &[E::Hardlink(b"h", up.as_bytes())], "cat /h");
    assert_refused(&o, "..");
}

#[test]
fn layer_huge_declared_size_errors_cleanly() {
    let Some(c) = setup() else {
        return;
    };
    // 1 TiB declared, five bytes present: a truncated layer, not an
    // allocation or a 1 TiB file.
    let (_t, o) = load_and_run(&c, &[E::Liar(b"big", 1 << 40)], "ls -l /big");
    eprintln!("huge size: {}", stderr(&o));
    assert!(!o.status.success(), "a truncated layer was accepted");
    assert!(!stderr(&o).is_empty());
}

#[test]
fn layer_deep_nesting_5000_levels_errors_cleanly() {
    let Some(c) = setup() else {
        return;
    };
    let deep = "d/".repeat(5000);
    let name = format!("{deep}f").into_bytes();
    // A 10,001-byte path no filesystem can hold: refused by `load`
    // (naming the image and the path), not first by `run`.
    let (_t, root) = root_dir();
    let o = load_hostile(&root, &[E::LongFile(name, b"deep")]);
    assert!(o.status.code().is_some(), "strata died: {:?}", o.status);
    assert!(!o.status.success(), "an unpackable layer was loaded");
    let err = stderr(&o);
    assert!(err.contains("hostile:1") && err.contains("d/d/d/"), "{err}");
    assert!(err.contains("longer than 4096 bytes"), "{err}");
    c.assert_untouched();
    assert_check_clean(&root);
}

#[test]
fn layer_names_with_newlines_and_invalid_utf8_work() {
    let Some(c) = setup() else {
        return;
    };
    let (t, o) = load_and_run(
        &c,
        &[
            E::File(b"new\nline", b"nl\n"),
            E::File(b"bad\xff\xfeutf8", b"bad\n"),
            E::Dir(b"dir\n\xff"),
            E::File(b"dir\n\xff/f", b"inner\n"),
        ],
        "cat /new*line /bad*utf8 /dir*/f",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "nl\nbad\ninner\n");
    // The image's other commands cope with such names too.
    let root = t.path().join("store");
    let ctx = context(&[(
        "Dockerfile",
        "FROM hostile:1\nRUN ls / > /listing && rm /bad*utf8\n",
    )]);
    let o = strata(&root, &["build", "-q", "-t", "h2", &path_str(ctx.path())]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = t.path().join("out.tar");
    let o = strata(&root, &["save", "-o", &path_str(&out), "h2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_check_clean(&root);
    c.assert_untouched();
}

#[test]
fn layer_duplicate_entries_last_one_wins() {
    let Some(c) = setup() else {
        return;
    };
    let out = run_ok(
        &c,
        &[
            E::File(b"x", b"first\n"),
            E::Dir(b"x"),
            E::File(b"x/y", b"in-dir\n"),
            E::File(b"x", b"last\n"),
            E::Dir(b"d"),
            E::Dir(b"d"),
            E::File(b"d/f", b"1\n"),
            E::File(b"d/f", b"2\n"),
        ],
        "cat /x /d/f",
    );
    assert_eq!(out, "last\n2\n");
}

#[test]
fn archive_with_escaping_member_names_is_refused() {
    let Some(c) = setup() else {
        return;
    };
    let (_t, root) = root_dir();
    // The archive itself (not a layer) names a member outside: the reader
    // must never create files from archive member names.
    let mut tar = raw_tar(&[E::File(
        format!("../../../../../../{}", c.rel()).as_bytes(),
        b"pwned",
    )]);
    tar.truncate(tar.len() - 1024);
    tar.extend_from_slice(&docker_archive(&["ok:1".into()], &[base_layer()]));
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("a.tar");
    fs::write(&p, tar).unwrap();
    let o = strata(&root, &["load", "-i", &path_str(&p)]);
    c.assert_untouched();
    // Either refused or the stray member is ignored; the store stays sound.
    if o.status.success() {
        let o = strata(&root, &["run", "--rm", "ok:1", "true"]);
        assert!(o.status.success(), "{}", stderr(&o));
    } else {
        assert!(!stderr(&o).trim().is_empty());
    }
    assert_check_clean(&root);
}

#[test]
fn archive_layer_not_matching_its_diff_id_is_refused() {
    if !can_run() {
        return;
    }
    let (_t, root) = root_dir();
    // Claim diff_ids of the base for a different layer: digests are checked
    // before anything is used.
    let base = base_layer();
    let mut a = docker_archive(&["liar:1".into()], std::slice::from_ref(&base));
    let wrong = raw_tar(&[E::File(b"evil", b"x")]);
    // Swap the layer body for another of the same length in place.
    let pos = a
        .windows(base.len().min(4096))
        .position(|w| w == &base[..base.len().min(4096)])
        .unwrap();
    let mut other = wrong.clone();
    other.resize(base.len(), 0);
    a[pos..pos + base.len()].copy_from_slice(&other);
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("a.tar");
    fs::write(&p, a).unwrap();
    let o = strata(&root, &["load", "-i", &path_str(&p)]);
    if o.status.success() {
        let o = strata(&root, &["run", "--rm", "liar:1", "true"]);
        assert!(
            !o.status.success(),
            "a layer with the wrong diff ID was used"
        );
    }
    let o = strata(&root, &["image", "ls"]);
    assert!(!stdout(&o).contains("liar"), "{}", stdout(&o));
    assert_check_clean(&root);
}

// ---------------------------------------------------------------------
// Hostile build contexts.

fn build_in(root: &Path, ctx: &Path, tag: &str) -> Output {
    strata(
        root,
        &["build", "--progress", "plain", "-t", tag, &path_str(ctx)],
    )
}

#[test]
fn context_copy_dot_dot_is_refused_or_stays_inside() {
    let Some(c) = setup() else {
        return;
    };
    let (_t, root) = root_dir();
    make_busybox(&root);
    // The canary sits beside the context dir: `../canary` would reach it.
    let ctx = c.dir.join("ctx");
    fs::create_dir(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox:1.35\nCOPY ../canary /x\n",
    )
    .unwrap();
    let o = build_in(&root, &ctx, "dd");
    eprintln!("COPY ../canary: {}", stderr(&o));
    fs::remove_dir_all(&ctx).unwrap();
    c.assert_untouched();
    // Docker cleans `../canary` to `canary` inside the context: not found.
    assert!(!o.status.success(), "COPY ../canary reached outside");
    assert!(!stderr(&o).trim().is_empty());
    assert_check_clean(&root);
}

#[test]
fn context_symlink_to_a_host_file_never_copies_the_host_file() {
    let Some(c) = setup() else {
        return;
    };
    let (_t, root) = root_dir();
    make_busybox(&root);
    let ctx = context(&[("Dockerfile", "FROM busybox:1.35\nCOPY x y /dst/\n")]);
    std::os::unix::fs::symlink(&c.file, ctx.path().join("x")).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", ctx.path().join("y")).unwrap();
    let o = build_in(&root, ctx.path(), "sl");
    eprintln!("build with symlinks out: {:?}\n{}", o.status, stderr(&o));
    c.assert_untouched();
    if o.status.success() {
        // Copied as symlinks (or resolved inside the context): never the
        // host's bytes.
        let o = strata(
            &root,
            &[
                "run",
                "--rm",
                "sl",
                "sh",
                "-c",
                "cat /dst/x /dst/y 2>/dev/null; ls -la /dst",
            ],
        );
        let out = stdout(&o);
        assert!(!out.contains("host canary"), "host file copied: {out}");
        assert!(!out.contains("root:"), "/etc/shadow copied: {out}");
    } else {
        assert!(!stderr(&o).trim().is_empty());
    }
    assert_check_clean(&root);
}

#[test]
fn copy_from_a_stage_path_that_is_a_symlink_to_root_resolves_in_the_stage() {
    let Some(c) = setup() else {
        return;
    };
    let (_t, root) = root_dir();
    make_busybox(&root);
    let df = format!(
        "FROM busybox:1.35 AS s\nRUN mkdir -p {dir} && echo stage > {file} && ln -s / /evil\n\
         FROM busybox:1.35\nCOPY --from=s /evil{file} /got\nCOPY --from=s /evil/etc/passwd /passwd\n\
         CMD cat /got /passwd\n",
        dir = c.dir.display(),
        file = c.file.display()
    );
    let ctx = context(&[("Dockerfile", &df)]);
    let o = build_in(&root, ctx.path(), "cf");
    assert!(o.status.success(), "{}", stderr(&o));
    let o = strata(&root, &["run", "--rm", "cf"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with("stage\n"),
        "resolved outside the stage: {out}"
    );
    // The stage's passwd (busybox base), not the host's.
    assert!(out.contains("app:x:1000"), "{out}");
    c.assert_untouched();
    assert_check_clean(&root);
}

// ---------------------------------------------------------------------
// RUN and `run` trying to reach the host. One shell script probes many
// ways out and prints one verdict per probe; every probe must be denied.

const PROBES: &str = r#"
p() { name=$1; shift; if "$@" >/dev/null 2>&1; then echo "ESCAPED:$name"; else echo "denied:$name"; fi; }
p mount mount -t tmpfs none /mnt
p remount-proc mount -o remount,rw /proc/sys
p sysctl-write sh -c 'echo 1 > /proc/sys/kernel/sysrq'
p sysrq-trigger sh -c 'echo h > /proc/sysrq-trigger'
p sys-write sh -c 'echo 1 > /sys/kernel/profiling'
p kcore head -c 1 /proc/kcore
p mknod-vda sh -c 'mknod /tmp/vda b 254 0 && head -c 512 /tmp/vda'
p mknod-sda sh -c 'mknod /tmp/sda b 8 0 && head -c 512 /tmp/sda'
p dev-mem head -c 1 /dev/mem
p block-dev-visible sh -c 'ls -l /dev | grep -q "^b"'
p host-pids sh -c 'test $(ls /proc | grep -c "^[0-9]") -gt 20'
p host-root-via-proc test -e /proc/1/root/CANARY_FILE
p chroot-escape test -e CANARY_FILE
p cgroup-write mkdir /sys/fs/cgroup/memory/pwned
p same-pidns sh -c 'test "$(readlink /proc/self/ns/pid)" = "HOST_PIDNS"'
p same-mntns sh -c 'test "$(readlink /proc/self/ns/mnt)" = "HOST_MNTNS"'
p same-ipcns sh -c 'test "$(readlink /proc/self/ns/ipc)" = "HOST_IPCNS"'
p same-utsns sh -c 'test "$(readlink /proc/self/ns/uts)" = "HOST_UTSNS"'
p cap-beyond-docker sh -c 'c=$(grep CapEff /proc/self/status | cut -f2); test $(( 0x$c & ~0xa80425fb )) -ne 0'
p no-new-privs sh -c 'grep -q "NoNewPrivs:[[:space:]]*0" /proc/self/status'
echo probes-done
"#;

/// The probe script with the canary path and the host's namespaces filled in.
fn probes(c: &Canary) -> String {
    let ns = |n: &str| {
        fs::read_link(format!("/proc/self/ns/{n}"))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    PROBES
        .replace("CANARY_FILE", &c.file.to_string_lossy())
        .replace("HOST_PIDNS", &ns("pid"))
        .replace("HOST_MNTNS", &ns("mnt"))
        .replace("HOST_IPCNS", &ns("ipc"))
        .replace("HOST_UTSNS", &ns("uts"))
}

fn assert_all_denied(out: &str) {
    assert!(out.contains("probes-done"), "probes did not finish:\n{out}");
    let escaped: Vec<&str> = out.lines().filter(|l| l.starts_with("ESCAPED:")).collect();
    assert!(escaped.is_empty(), "reached the host: {escaped:?}\n{out}");
    assert!(out.matches("denied:").count() >= 20, "{out}");
}

#[test]
fn run_step_cannot_reach_the_host() {
    let Some(c) = setup() else {
        return;
    };
    let (_t, root) = root_dir();
    make_busybox(&root);
    let ctx = context(&[
        ("probes.sh", &probes(&c)),
        (
            "Dockerfile",
            "FROM busybox:1.35\nCOPY probes.sh /\nRUN sh /probes.sh\n",
        ),
    ]);
    let o = build_in(&root, ctx.path(), "probe");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_all_denied(&stderr(&o));
    // The same probes through `strata run`.
    let o = strata(&root, &["run", "--rm", "probe", "sh", "/probes.sh"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_all_denied(&stdout(&o));
    c.assert_untouched();
    assert_check_clean(&root);
}

// ---------------------------------------------------------------------
// Build outputs.

/// `-o type=local` into a directory that already holds the user's files,
/// from an image whose second layer opens with an opaque whiteout at its
/// root (and a symlink and a file aimed at the canary): the opaque marker
/// only hides the base layer, the user's files stay, nothing lands
/// outside the destination.
#[test]
fn local_output_keeps_the_destinations_files_through_an_opaque_root_layer() {
    let Some(c) = setup() else {
        return;
    };
    let (_t, root) = root_dir();
    let canary_dir = c.dir.to_string_lossy().into_owned();
    let layer = [
        E::File(b".wh..wh..opq", b""),
        E::Dir(b"bin"),
        E::Symlink(b"bin/sh", b"/bin/busybox"),
        E::File(b"img.txt", b"from the image\n"),
        E::Symlink(b"out", canary_dir.as_bytes()),
        E::File(b"out/pwned", b"through the link\n"),
    ];
    let o = load_hostile(&root, &layer);
    assert!(o.status.success(), "load: {}", stderr(&o));
    let ctx = context(&[
        ("Dockerfile", "FROM hostile:1\nCOPY added.txt /added.txt\n"),
        ("added.txt", "added\n"),
    ]);
    let dest = tempfile::tempdir().unwrap();
    let d = dest.path();
    fs::write(d.join("mine.txt"), "the user's file\n").unwrap();
    fs::create_dir_all(d.join("keep/sub")).unwrap();
    fs::write(d.join("keep/sub/y"), "y\n").unwrap();
    fs::write(d.join("img.txt"), "old\n").unwrap();
    let out = format!("type=local,dest={}", d.display());
    let o = strata(
        &root,
        &[
            "build",
            "--progress",
            "plain",
            "-o",
            &out,
            &path_str(ctx.path()),
        ],
    );
    assert!(o.status.success(), "build: {}", stderr(&o));
    c.assert_untouched();
    assert_eq!(
        fs::read_to_string(d.join("mine.txt")).unwrap(),
        "the user's file\n"
    );
    assert_eq!(fs::read_to_string(d.join("keep/sub/y")).unwrap(), "y\n");
    assert_eq!(
        fs::read_to_string(d.join("img.txt")).unwrap(),
        "from the image\n"
    );
    assert_eq!(fs::read_to_string(d.join("added.txt")).unwrap(), "added\n");
    // The opaque marker hid the base layer's files, and is not a file.
    assert!(!d.join("bin/busybox").exists());
    assert!(!d.join("etc/passwd").exists());
    assert!(!d.join(".wh..wh..opq").exists());
    // No scratch directory left beside the destination.
    let parent = d.parent().unwrap();
    let leftovers: Vec<_> = fs::read_dir(parent)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".strata-output-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // type=tar: a failed export leaves nothing under the final name.
    let tar_path = d.join("out.tar");
    let o = strata(
        &root,
        &[
            "build",
            "--progress",
            "plain",
            "-o",
            &format!("type=tar,dest={}", tar_path.display()),
            &path_str(ctx.path()),
        ],
    );
    assert!(o.status.success(), "build: {}", stderr(&o));
    let names: Vec<String> = tar::Archive::new(fs::File::open(&tar_path).unwrap())
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().any(|n| n.ends_with("img.txt")), "{names:?}");
    assert!(!names.iter().any(|n| n.contains("busybox")), "{names:?}");
    assert_eq!(
        fs::read_to_string(d.join("mine.txt")).unwrap(),
        "the user's file\n"
    );
    c.assert_untouched();
}

// ---------------------------------------------------------------------
// FIFOs: strata never opens one for reading (a FIFO nobody writes to would
// block it forever). In a context they are copied as FIFOs (BuildKit's
// fsutil sends a FIFO as its metadata and the receiver mknods it).

#[test]
fn context_fifos_are_copied_as_fifos_and_never_read() {
    let Some((_t, root)) = setup_busybox() else {
        return;
    };
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM busybox:1.35\n\
             COPY . /ctx/\n\
             COPY pipe /single\n\
             ADD sub/p2 /added\n\
             RUN test -p /ctx/pipe && test -p /single && test -p /ctx/sub/p2 \
                 && test -p /added && cat /ctx/sub/a && echo fifos-ok\n",
        ),
        ("sub/a", "plain file\n"),
    ]);
    mkfifo(&ctx.path().join("pipe"));
    mkfifo(&ctx.path().join("sub/p2"));
    let dir = path_str(ctx.path());
    let args = ["build", "--progress", "plain", "-t", "fifo", dir.as_str()];
    let o = strata_timeout(&root, 120, &args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("fifos-ok"), "{}", stderr(&o));
    // Again, from the cache (the context is hashed a second time).
    let o = strata_timeout(&root, 60, &args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_check_clean(&root);
}

#[test]
fn a_fifo_dockerfile_is_read_when_written_and_refused_when_nothing_writes() {
    if !can_run() {
        return;
    }
    let (_t, root) = root_dir();
    let ctx = context(&[("a", "from the context\n")]);
    let df = ctx.path().join("Dockerfile");
    mkfifo(&df);
    let dir = path_str(ctx.path());
    let dfs = path_str(&df);
    // Nobody writes: refused after a short wait, not a hang.
    let start = std::time::Instant::now();
    let o = strata_timeout(&root, 60, &["build", "-f", &dfs, "-t", "x", &dir]);
    let e = stderr(&o);
    assert!(!o.status.success());
    assert_ne!(o.status.code(), Some(124), "strata hung on the FIFO");
    assert!(e.contains("FIFO") && e.contains("nothing wrote"), "{e}");
    assert!(start.elapsed() < std::time::Duration::from_secs(30));
    // Without -f too (the context's own Dockerfile is the FIFO).
    let o = strata_timeout(&root, 60, &["build", "-t", "x", &dir]);
    assert!(!o.status.success());
    assert_ne!(o.status.code(), Some(124), "strata hung on the FIFO");
    assert!(stderr(&o).contains("FIFO"), "{}", stderr(&o));
    // With a writer (a named FIFO fed by another process, like -f <(...)):
    // read.
    let mut writer = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "printf 'FROM scratch\\nCOPY a /a\\n' > '{}'",
            df.display()
        ))
        .spawn()
        .unwrap();
    let o = strata_timeout(&root, 60, &["build", "-f", &dfs, "-t", "piped", &dir]);
    let _ = writer.wait();
    assert!(o.status.success(), "{}", stderr(&o));
    // Something that is neither a file nor a pipe: refused at once.
    let o = strata_timeout(&root, 60, &["build", "-f", "/dev/zero", "-t", "x", &dir]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("character device"), "{}", stderr(&o));
}

#[test]
fn a_fifo_dockerignore_or_secret_source_is_refused_not_read() {
    let Some((_t, root)) = setup_busybox() else {
        return;
    };
    // .dockerignore as a FIFO: refused (skipping it would send what it
    // excludes; reading it would hang).
    let ctx = context(&[("Dockerfile", "FROM busybox:1.35\nCOPY . /ctx/\n")]);
    mkfifo(&ctx.path().join(".dockerignore"));
    let dir = path_str(ctx.path());
    let o = strata_timeout(&root, 60, &["build", "-t", "x", &dir]);
    let e = stderr(&o);
    assert!(!o.status.success(), "a FIFO .dockerignore was ignored");
    assert_ne!(o.status.code(), Some(124), "strata hung on the FIFO");
    assert!(e.contains(".dockerignore") && e.contains("FIFO"), "{e}");

    // --secret src=FIFO: refused when the step needs it, with its id.
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox:1.35\nRUN --mount=type=secret,id=tok cat /run/secrets/tok\n",
    )]);
    let fifo = ctx.path().join("tok");
    mkfifo(&fifo);
    let dir = path_str(ctx.path());
    let secret = format!("id=tok,src={}", fifo.display());
    let o = strata_timeout(&root, 60, &["build", "--secret", &secret, "-t", "x", &dir]);
    let e = stderr(&o);
    assert!(!o.status.success());
    assert_ne!(o.status.code(), Some(124), "strata hung on the FIFO");
    assert!(e.contains("secret tok") && e.contains("FIFO"), "{e}");
    assert_check_clean(&root);
}
