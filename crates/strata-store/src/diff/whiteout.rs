//! Whiteouts in their two forms, and the xattr plumbing they need.
//!
//! In a layer tar (OCI / Docker): a deleted `dir/NAME` is an empty file
//! `dir/.wh.NAME`; an opaque directory (whose lower contents are hidden)
//! holds an entry `dir/.wh..wh..opq`.
//!
//! On disk, overlay-ready: a deleted name is a character device 0/0; an
//! opaque directory carries the xattr `trusted.overlay.opaque=y` (overlay
//! mounted with `userxattr` uses `user.overlay.opaque`; both are read).

use std::ffi::OsStr;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{self as rfs, FileType, Mode};

/// The prefix of a whiteout file in a layer tar.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The opaque-directory marker in a layer tar.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// Other `.wh..wh.` names (aufs hard-link dirs): ignored.
pub const WHITEOUT_META_PREFIX: &str = ".wh..wh.";
/// The overlayfs xattr marking an opaque directory (as root).
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// The overlayfs xattr marking an opaque directory (rootless, `userxattr`).
pub const OVERLAY_OPAQUE_USER_XATTR: &str = "user.overlay.opaque";

/// True when an xattr must not travel in a layer: overlay's own state, or
/// the host's SELinux label (given to every file a build or an unpack
/// writes on an SELinux host; Docker's layers never carry it, and a label
/// from a layer must not be applied to the host's files).
pub fn is_private_xattr(name: &str) -> bool {
    name.starts_with("trusted.overlay.")
        || name.starts_with("user.overlay.")
        || name == "security.selinux"
}

/// Is this `lstat` result an overlay whiteout (char device 0/0)?
pub fn is_whiteout_stat(mode: u32, rdev: u64) -> bool {
    FileType::from_raw_mode(mode) == FileType::CharacterDevice && rdev == 0
}

/// Creates an overlay whiteout `name` in `dir`.
pub fn make_whiteout_at(dir: impl AsFd, name: &OsStr) -> rustix::io::Result<()> {
    rfs::mknodat(dir, name, FileType::CharacterDevice, Mode::empty(), 0)
}

/// Marks the open directory opaque for overlay.
pub fn set_opaque(dir: impl AsFd) -> rustix::io::Result<()> {
    // Rootless: overlay is mounted with `userxattr` (see mount.rs), and
    // `trusted.*` cannot be set in a user namespace anyway.
    let name = if crate::mount::in_user_namespace() {
        OVERLAY_OPAQUE_USER_XATTR
    } else {
        OVERLAY_OPAQUE_XATTR
    };
    rfs::fsetxattr(dir, name, b"y", rfs::XattrFlags::empty())
}

/// Does this directory (by path, not following a final symlink) carry an
/// opaque marker?
pub fn is_opaque_dir(path: &Path) -> bool {
    [OVERLAY_OPAQUE_XATTR, OVERLAY_OPAQUE_USER_XATTR]
        .iter()
        .any(|name| {
            let mut buf = [0u8; 8];
            matches!(rfs::lgetxattr(path, *name, &mut buf[..]), Ok(n) if &buf[..n] == b"y")
        })
}

/// The xattrs of `path` (not following a final symlink), minus overlay's
/// private ones, sorted by name. Unsupported filesystems yield none.
pub fn read_xattrs(path: &Path) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let mut names = vec![0u8; 4096];
    let n = loop {
        match rfs::llistxattr(path, &mut names[..]) {
            Ok(n) => break n,
            Err(rustix::io::Errno::RANGE) => {
                let len = names.len() * 4;
                names.resize(len, 0);
            }
            Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        }
    };
    let mut out = Vec::new();
    for raw in names[..n].split(|&b| b == 0).filter(|s| !s.is_empty()) {
        let Ok(name) = std::str::from_utf8(raw) else {
            continue;
        };
        if is_private_xattr(name) {
            continue;
        }
        let mut val = vec![0u8; 1024];
        let len = loop {
            match rfs::lgetxattr(path, OsStr::from_bytes(raw), &mut val[..]) {
                Ok(len) => break Some(len),
                Err(rustix::io::Errno::RANGE) => {
                    let l = val.len() * 8;
                    if l > 1 << 20 {
                        break None;
                    }
                    val.resize(l, 0);
                }
                Err(rustix::io::Errno::NODATA) => break None,
                Err(e) => return Err(e.into()),
            }
        };
        if let Some(len) = len {
            val.truncate(len);
            out.push((name.to_string(), val));
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::is_private_xattr;

    #[test]
    fn overlay_state_and_the_host_label_stay_out_of_layers() {
        for name in [
            "trusted.overlay.opaque",
            "user.overlay.redirect",
            "security.selinux",
        ] {
            assert!(is_private_xattr(name), "{name}");
        }
        for name in ["security.capability", "user.mime_type", "trusted.md5"] {
            assert!(!is_private_xattr(name), "{name}");
        }
    }
}
