//! Hostile layer tars: nothing outside the destination is ever touched.
//! Each case either errors or is neutralised (written inside the root).

use std::fs;
use std::path::{Path, PathBuf};

use strata_store::{apply_layer, ApplyMode};
use strata_test_support::hostile_tar::{raw_tar, Entry as E};

struct Arena {
    _t: tempfile::TempDir,
    top: PathBuf,
    dest: PathBuf,
}

fn arena() -> Arena {
    let t = tempfile::tempdir().unwrap();
    let top = t.path().to_path_buf();
    let dest = top.join("a/b/dest");
    fs::create_dir_all(&dest).unwrap();
    fs::write(top.join("canary"), b"untouched").unwrap();
    fs::write(top.join("a/canary"), b"untouched").unwrap();
    fs::write(top.join("a/b/canary"), b"untouched").unwrap();
    Arena { _t: t, top, dest }
}

/// Every file outside `dest`, with its contents.
fn outside(top: &Path, dest: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![top.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p == dest {
                continue;
            }
            let md = fs::symlink_metadata(&p).unwrap();
            if md.is_dir() {
                stack.push(p.clone());
                out.push((p, b"<dir>".to_vec()));
            } else {
                let data = fs::read(&p).unwrap_or_default();
                out.push((p, data));
            }
        }
    }
    out.sort();
    out
}

/// Applies `tar` in both modes; checks nothing outside changed; returns the
/// results (Ok = neutralised).
fn attempt(entries: &[E<'_>]) -> Vec<(Arena, strata_store::Result<strata_store::ApplyStats>)> {
    let tar = raw_tar(entries);
    let mut results = Vec::new();
    for mode in [ApplyMode::OverlayReady, ApplyMode::Flatten] {
        let a = arena();
        let before = outside(&a.top, &a.dest);
        let r = apply_layer(&mut &tar[..], &a.dest, mode);
        assert_eq!(
            outside(&a.top, &a.dest),
            before,
            "something outside changed"
        );
        assert!(!Path::new("/canary").exists());
        assert!(!Path::new("/tmp/canary").exists());
        results.push((a, r));
    }
    results
}

#[test]
fn dot_dot_is_refused() {
    for (_, r) in attempt(&[E::File(b"../../canary", b"pwned")]) {
        assert!(r.is_err());
    }
    for (_, r) in attempt(&[E::File(b"x/../../../canary", b"pwned")]) {
        assert!(r.is_err());
    }
}

#[test]
fn absolute_path_lands_inside() {
    for (a, r) in attempt(&[E::File(b"/canary", b"inside")]) {
        r.unwrap();
        assert_eq!(fs::read(a.dest.join("canary")).unwrap(), b"inside");
    }
}

#[test]
fn symlink_to_parent_then_write_through_it() {
    for (a, r) in attempt(&[
        E::Symlink(b"a", b"../../.."),
        E::File(b"a/canary", b"inside"),
    ]) {
        r.unwrap();
        assert_eq!(fs::read(a.dest.join("canary")).unwrap(), b"inside");
    }
}

#[test]
fn symlink_to_root_then_write_through_it() {
    for (a, r) in attempt(&[E::Symlink(b"a", b"/"), E::File(b"a/tmp/canary", b"inside")]) {
        r.unwrap();
        assert_eq!(fs::read(a.dest.join("tmp/canary")).unwrap(), b"inside");
    }
}

#[test]
fn symlink_to_absolute_file_then_overwrite_by_name() {
    let canary = arena().top.join("canary");
    let target = canary.to_str().unwrap().as_bytes().to_vec();
    for (a, r) in attempt(&[E::Symlink(b"c", &target), E::File(b"c", b"replaced")]) {
        r.unwrap();
        assert_eq!(fs::read(a.dest.join("c")).unwrap(), b"replaced");
    }
}

#[test]
fn hardlinks_out_of_the_root_are_refused() {
    for (_, r) in attempt(&[E::Hardlink(b"pw", b"/etc/passwd")]) {
        assert!(r.is_err());
    }
    for (_, r) in attempt(&[E::Hardlink(b"c", b"../../canary")]) {
        assert!(r.is_err());
    }
    // through a symlink planted first
    for (_, r) in attempt(&[E::Symlink(b"up", b"../.."), E::Hardlink(b"c", b"up/canary")]) {
        assert!(r.is_err());
    }
}

#[test]
fn hardlink_inside_works_and_write_after_does_not_leak() {
    for (a, r) in attempt(&[
        E::File(b"f", b"one"),
        E::Hardlink(b"g", b"f"),
        E::Symlink(b"s", b"/etc"),
        E::Dir(b"s/x"),
    ]) {
        r.unwrap();
        assert_eq!(fs::read(a.dest.join("g")).unwrap(), b"one");
        assert!(a.dest.join("etc/x").is_dir());
    }
}

#[test]
fn devices_are_not_created() {
    for (a, r) in attempt(&[E::Char(b"mem", 1, 1)]) {
        let stats = r.unwrap();
        assert!(!a.dest.join("mem").exists());
        assert_eq!(stats.warnings.len(), 1);
    }
}

#[test]
fn nul_in_pax_name_is_refused() {
    for (_, r) in attempt(&[E::PaxPath(b"ok\0/../../../canary", b"x")]) {
        assert!(r.is_err());
    }
}

#[test]
fn huge_declared_size_errors_without_allocating() {
    for (_, r) in attempt(&[E::Liar(b"big", 1 << 40)]) {
        assert!(r.is_err());
    }
}

#[test]
fn whiteout_of_dot_dot_is_refused() {
    for (_, r) in attempt(&[E::Dir(b"d"), E::File(b"d/.wh..", b"")]) {
        assert!(r.is_err());
    }
}

#[test]
fn deep_nesting_is_refused_not_crashing() {
    let deep = "d/".repeat(2100);
    let tar = {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(1);
        h.set_mode(0o644);
        b.append_data(&mut h, format!("{deep}f"), &b"x"[..])
            .unwrap();
        b.into_inner().unwrap()
    };
    let a = arena();
    assert!(apply_layer(&mut &tar[..], &a.dest, ApplyMode::Flatten).is_err());
}
