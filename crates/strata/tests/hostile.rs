//! Hostile input through the real binary, each test with its own temp
//! store: crafted layers loaded with `strata load` and then run (so the
//! snapshotter applies them), hostile build contexts, and RUN steps that
//! try to reach the host. Every case must give a clear error or a safe
//! result, leave `system check` clean, and never touch the canary file
//! that sits outside the store (content and mtime are compared).

mod support;

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use sha2::{Digest as _, Sha256};
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
// Raw tar entries (no validation by the tar crate) and docker archives.

enum E<'a> {
    File(&'a [u8], &'a [u8]),
    Dir(&'a [u8]),
    Symlink(&'a [u8], &'a [u8]),
    Hardlink(&'a [u8], &'a [u8]),
    /// A regular file that declares `size` bytes but carries five.
    Liar(&'a [u8], u64),
    /// A GNU long name (for names over 100 bytes).
    LongFile(Vec<u8>, &'a [u8]),
}

fn push_header(out: &mut Vec<u8>, h: &mut tar::Header, data: &[u8]) {
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

fn raw_tar(entries: &[E<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let (name, typ, link, data, size): (&[u8], tar::EntryType, &[u8], &[u8], u64) = match e {
            E::File(n, d) => (n, tar::EntryType::Regular, b"", d, d.len() as u64),
            E::Dir(n) => (n, tar::EntryType::Directory, b"", b"", 0),
            E::Symlink(n, t) => (n, tar::EntryType::Symlink, t, b"", 0),
            E::Hardlink(n, t) => (n, tar::EntryType::Link, t, b"", 0),
            E::Liar(n, s) => (n, tar::EntryType::Regular, b"", b"short", *s),
            E::LongFile(n, d) => {
                let mut l = tar::Header::new_gnu();
                l.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"././@LongLink");
                l.set_entry_type(tar::EntryType::GNULongName);
                let mut name = n.clone();
                name.push(0);
                l.set_size(name.len() as u64);
                l.set_mode(0o644);
                push_header(&mut out, &mut l, &name);
                (b"long", tar::EntryType::Regular, b"", d, d.len() as u64)
            }
        };
        let mut h = tar::Header::new_gnu();
        let g = h.as_gnu_mut().unwrap();
        g.name[..name.len()].copy_from_slice(name);
        g.linkname[..link.len()].copy_from_slice(link);
        h.set_entry_type(typ);
        h.set_mode(if typ == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_size(size);
        h.set_mtime(0);
        push_header(&mut out, &mut h, data);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

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
    let list = std::process::Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet == "busybox" {
            continue;
        }
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

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// A legacy `docker save` archive of one image `tag` with these layers.
fn docker_archive(tag: &str, layers: &[Vec<u8>]) -> Vec<u8> {
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| format!("sha256:{}", sha256_hex(l)))
        .collect();
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": layers.iter().map(|_| serde_json::json!({"created_by": "hostile"})).collect::<Vec<_>>(),
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_name = format!("{}.json", sha256_hex(&config));
    let layer_names: Vec<String> = (0..layers.len())
        .map(|i| format!("l{i}/layer.tar"))
        .collect();
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": config_name, "RepoTags": [tag], "Layers": layer_names,
    }]))
    .unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, data).unwrap();
    };
    add(&config_name, &config);
    for (n, l) in layer_names.iter().zip(layers) {
        add(n, l);
    }
    add("manifest.json", &manifest);
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
        docker_archive("hostile:1", &[base_layer(), raw_tar(entries)]),
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
    if !can_run() {
        return;
    }
    let c = canary();
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
    if !can_run() {
        return;
    }
    let c = canary();
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
    if !can_run() {
        return;
    }
    let c = canary();
    // `d` points at the canary's directory on the host (absolute), and `up`
    // climbs out with `..`; both writes must land inside the rootfs.
    let dir = c.dir.as_os_str().as_bytes().to_vec();
    let (_t, o) = load_and_run(
        &c,
        &[
            E::Symlink(b"d", &dir),
            E::File(b"d/canary", b"via-abs\n"),
            E::Symlink(b"up", b"../../../../../../.."),
            E::File(format!("up/{}", c.rel()).as_bytes(), b"via-up\n"),
        ],
        &format!("cat {}", c.file.display()),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "via-up\n");
}

#[test]
fn layer_symlink_over_existing_file_then_overwrite_by_name() {
    if !can_run() {
        return;
    }
    let c = canary();
    // The second entry replaces the symlink itself; it never writes the
    // host file the link points at.
    let target = c.file.as_os_str().as_bytes().to_vec();
    let (_t, o) = load_and_run(
        &c,
        &[E::Symlink(b"c", &target), E::File(b"c", b"replaced\n")],
        "cat /c; test -L /c && echo still-a-link; true",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "replaced\n");
}

#[test]
fn layer_hardlink_to_a_file_outside_is_refused() {
    if !can_run() {
        return;
    }
    let c = canary();
    let target = c.file.as_os_str().as_bytes().to_vec();
    let (_t, o) = load_and_run(&c, &[E::Hardlink(b"h", &target)], "cat /h");
    assert_refused(&o, "hard link");
    let up = format!("../../../../../../../{}", c.rel());
    let (_t, o) = load_and_run(&c, &[E::Hardlink(b"h", up.as_bytes())], "cat /h");
    assert_refused(&o, "..");
}

#[test]
fn layer_huge_declared_size_errors_cleanly() {
    if !can_run() {
        return;
    }
    let c = canary();
    // 1 TiB declared, five bytes present: a truncated layer, not an
    // allocation or a 1 TiB file.
    let (_t, o) = load_and_run(&c, &[E::Liar(b"big", 1 << 40)], "ls -l /big");
    eprintln!("huge size: {}", stderr(&o));
    assert!(!o.status.success(), "a truncated layer was accepted");
    assert!(!stderr(&o).is_empty());
}

#[test]
fn layer_deep_nesting_5000_levels_errors_cleanly() {
    if !can_run() {
        return;
    }
    let c = canary();
    let deep = "d/".repeat(5000);
    let mut entries = Vec::new();
    let name = format!("{deep}f").into_bytes();
    entries.push(E::LongFile(name, b"deep"));
    let (_t, o) = load_and_run(&c, &entries, "echo ran");
    eprintln!("deep nesting: {:?} {}", o.status, stderr(&o));
    // Either refused with a message, or applied; never a crash (signal).
    assert!(o.status.code().is_some(), "strata died: {:?}", o.status);
    if !o.status.success() {
        assert!(!stderr(&o).trim().is_empty());
    }
}

#[test]
fn layer_names_with_newlines_and_invalid_utf8_work() {
    if !can_run() {
        return;
    }
    let c = canary();
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
    if !can_run() {
        return;
    }
    let c = canary();
    let (_t, o) = load_and_run(
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
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "last\n2\n");
}

#[test]
fn archive_with_escaping_member_names_is_refused() {
    if !can_run() {
        return;
    }
    let c = canary();
    let (_t, root) = root_dir();
    // The archive itself (not a layer) names a member outside: the reader
    // must never create files from archive member names.
    let mut tar = raw_tar(&[E::File(
        format!("../../../../../../{}", c.rel()).as_bytes(),
        b"pwned",
    )]);
    tar.truncate(tar.len() - 1024);
    tar.extend_from_slice(&docker_archive("ok:1", &[base_layer()]));
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
    let mut a = docker_archive("liar:1", std::slice::from_ref(&base));
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
    if !can_run() {
        return;
    }
    let c = canary();
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
    if !can_run() {
        return;
    }
    let c = canary();
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
    if !can_run() {
        return;
    }
    let c = canary();
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
    if !can_run() {
        return;
    }
    let c = canary();
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
