//! Helpers shared by the integration tests: building trees and comparing them.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use strata_store::diff::whiteout::read_xattrs;

pub(crate) fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

pub(crate) fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    rustix::fs::lsetxattr(path, name, value, rustix::fs::XattrFlags::empty()).unwrap();
}

pub(crate) fn get_xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    rustix::fs::lgetxattr(path, name, &mut buf[..])
        .ok()
        .map(|n| buf[..n].to_vec())
}

pub(crate) fn mknod_whiteout(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::empty(),
        0,
    )
    .unwrap();
}

pub(crate) fn set_mtime(path: &Path, secs: i64) {
    let t = rustix::fs::Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        path,
        &rustix::fs::Timestamps {
            last_access: t,
            last_modification: t,
        },
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

/// A description of every entry below `root`: type, mode, owner, size,
/// contents hash, link target, xattrs (incl. trusted.overlay.opaque), and
/// mtime for non-directories.
pub(crate) fn describe(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    let mut names: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    for n in names {
        let p = dir.join(&n);
        let rel = p.strip_prefix(root).unwrap().display().to_string();
        let md = fs::symlink_metadata(&p).unwrap();
        let ft = md.file_type();
        let mut xattrs = read_xattrs(&p).unwrap();
        if let Some(v) = get_xattr(&p, "trusted.overlay.opaque") {
            xattrs.push(("trusted.overlay.opaque".into(), v));
        }
        let kind = if ft.is_dir() {
            "dir".to_string()
        } else if ft.is_symlink() {
            format!("symlink->{}", fs::read_link(&p).unwrap().display())
        } else if ft.is_file() {
            let data = fs::read(&p).unwrap();
            format!(
                "file:{}:{} mtime={}",
                data.len(),
                strata_store::Digest::sha256_of(&data).short(),
                md.mtime()
            )
        } else if ft.is_char_device() {
            format!("char:{}", md.rdev())
        } else if ft.is_fifo() {
            "fifo".into()
        } else {
            "other".into()
        };
        out.insert(
            rel,
            format!(
                "{kind} mode={:o} {}:{} xattrs={:?}",
                md.permissions().mode() & 0o7777,
                md.uid(),
                md.gid(),
                xattrs
            ),
        );
        if ft.is_dir() {
            walk(root, &p, out);
        }
    }
}

/// Snapshot temp dirs (`snap-*`) left in a store's `ROOT/tmp`.
pub(crate) fn temp_snapshots(root: &Path) -> Vec<String> {
    fs::read_dir(root.join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("snap-"))
        .collect()
}
