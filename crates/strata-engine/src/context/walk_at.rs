//! The build context walk used for digests: entries `lstat`ed relative to
//! their directory's fd (`openat`/`fstatat`), because a full-path `statx`
//! per file made the kernel resolve every path from `/` again, which was
//! most of a no-change rebuild on a 20,000-file context.

use std::ffi::CStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, Stat};

use super::{BuildContext, ContextError};

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::CLOEXEC);
pub(super) const NOFOLLOW: OFlags = OFlags::NOFOLLOW.union(OFlags::CLOEXEC);

/// One entry met by [`BuildContext::walk_at`]: its directory, its name
/// there and its `lstat`.
pub(super) struct AtEntry<'a> {
    /// For matching, messages and the stat cache (lossy when not UTF-8).
    pub rel: &'a str,
    /// The exact relative path.
    pub rel_bytes: &'a [u8],
    pub dir: BorrowedFd<'a>,
    pub name: &'a CStr,
    pub stat: &'a Stat,
}

impl BuildContext {
    pub(super) fn at_err(&self, rel: &str) -> impl FnOnce(rustix::io::Errno) -> ContextError {
        let path = self.root.join(rel);
        move |e| ContextError::Io {
            path,
            source: e.into(),
        }
    }

    /// [`BuildContext::walk`] for digests: the same entries in the same
    /// order, each stat'ed relative to its directory's fd (no path walk
    /// from `/` per file, no absolute path built).
    pub(super) fn walk_at(
        &self,
        rel_path: &std::path::Path,
        f: &mut dyn FnMut(&AtEntry<'_>) -> Result<(), ContextError>,
    ) -> Result<(), ContextError> {
        use std::os::unix::ffi::OsStrExt;
        let rel_bytes = rel_path.as_os_str().as_bytes();
        let shown = rel_path.to_string_lossy();
        let rel: &str = &shown;
        let root =
            rustix::fs::open(&self.root, DIR_FLAGS, Mode::empty()).map_err(self.at_err(""))?;
        let name = std::ffi::CString::new(if rel_bytes.is_empty() {
            &b"."[..]
        } else {
            rel_bytes
        })
        .map_err(|_| ContextError::NotFound(rel.to_string()))?;
        let stat = rustix::fs::statat(&root, &name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(self.at_err(rel))?;
        f(&AtEntry {
            rel,
            rel_bytes,
            dir: root.as_fd(),
            name: &name,
            stat: &stat,
        })?;
        if FileType::from_raw_mode(stat.st_mode) == FileType::Directory {
            let fd = rustix::fs::openat(&root, &name, DIR_FLAGS | NOFOLLOW, Mode::empty())
                .map_err(self.at_err(rel))?;
            self.walk_dir_at(rel, rel_bytes, fd, f)?;
        }
        Ok(())
    }

    fn walk_dir_at(
        &self,
        rel: &str,
        rel_bytes: &[u8],
        fd: OwnedFd,
        f: &mut dyn FnMut(&AtEntry<'_>) -> Result<(), ContextError>,
    ) -> Result<(), ContextError> {
        let mut dir = Dir::new(fd).map_err(self.at_err(rel))?;
        let mut names = Vec::new();
        for ent in &mut dir {
            let ent = ent.map_err(self.at_err(rel))?;
            let n = ent.file_name();
            if n != c"." && n != c".." {
                names.push(n.to_owned());
            }
        }
        // Bytewise, as `walk` sorts its OsStrings.
        names.sort();
        let dfd = dir.fd().map_err(self.at_err(rel))?;
        for name in names {
            let lossy = name.to_string_lossy();
            let child_rel = if rel.is_empty() {
                lossy.into_owned()
            } else {
                format!("{rel}/{lossy}")
            };
            let mut child_bytes = rel_bytes.to_vec();
            if !child_bytes.is_empty() {
                child_bytes.push(b'/');
            }
            child_bytes.extend_from_slice(name.to_bytes());
            let stat = rustix::fs::statat(dfd, &name, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(self.at_err(&child_rel))?;
            let is_dir = FileType::from_raw_mode(stat.st_mode) == FileType::Directory;
            let open_dir = || {
                rustix::fs::openat(dfd, &name, DIR_FLAGS | NOFOLLOW, Mode::empty())
                    .map_err(self.at_err(&child_rel))
            };
            if self.ignore.ignored(&child_rel) {
                if is_dir && !self.ignore.can_skip_dir(&child_rel) {
                    // An exception may re-include something below.
                    self.walk_dir_at(&child_rel, &child_bytes, open_dir()?, f)?;
                }
                continue;
            }
            f(&AtEntry {
                rel: &child_rel,
                rel_bytes: &child_bytes,
                dir: dfd,
                name: &name,
                stat: &stat,
            })?;
            if is_dir {
                self.walk_dir_at(&child_rel, &child_bytes, open_dir()?, f)?;
            }
        }
        Ok(())
    }
}
