//! Path handling that cannot escape a root directory.
//!
//! Layer entries name paths inside the layer; a hostile tar may use `..`,
//! absolute paths, or symlinks planted by earlier entries (`a -> /etc`, then
//! `a/passwd`) to reach outside. Two defences:
//!
//! 1. [`clean_entry_path`] normalises a name lexically: the leading `/` is
//!    stripped, `.` and empty components dropped, `..` that would climb
//!    above the root is refused, NUL and over-long names are refused.
//! 2. [`RootDir`] resolves every *parent* directory with openat2
//!    `RESOLVE_IN_ROOT` (symlinks are followed as if the root were `/`, so
//!    `a -> /` or `a -> ../../..` lands back inside), and every final
//!    component is created or removed with `*at` calls on that parent fd,
//!    which never follow a final symlink.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::error::{IoCtx, Result, StoreError};

/// Longest entry path accepted (bytes, after cleaning): Linux's PATH_MAX.
pub const MAX_PATH: usize = 4096;
/// Longest single component: NAME_MAX.
pub const MAX_NAME: usize = 255;

/// A path inside a root, as normalised components (empty = the root).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelPath(Vec<OsString>);

impl RelPath {
    /// The root itself.
    pub fn root() -> RelPath {
        RelPath(Vec::new())
    }
    /// True for the root.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
    /// The normalized components.
    pub fn components(&self) -> &[OsString] {
        &self.0
    }
    /// The last component (None for the root).
    pub fn file_name(&self) -> Option<&OsStr> {
        self.0.last().map(|s| s.as_os_str())
    }
    /// The parent (the root's parent is the root).
    pub fn parent(&self) -> RelPath {
        let mut v = self.0.clone();
        v.pop();
        RelPath(v)
    }
    /// This path with `name` appended.
    pub fn join(&self, name: &OsStr) -> RelPath {
        let mut v = self.0.clone();
        v.push(name.to_os_string());
        RelPath(v)
    }
    /// `a/b/c` (or `.` for the root), for openat-style calls.
    pub fn to_path_buf(&self) -> PathBuf {
        if self.0.is_empty() {
            return PathBuf::from(".");
        }
        let mut bytes = Vec::new();
        for (i, c) in self.0.iter().enumerate() {
            if i > 0 {
                bytes.push(b'/');
            }
            bytes.extend_from_slice(c.as_bytes());
        }
        PathBuf::from(OsString::from_vec(bytes))
    }
}

impl std::fmt::Display for RelPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "/{}", self.to_path_buf().display()).map(|_| ())
    }
}

fn unsafe_entry(raw: &[u8], why: impl Into<String>) -> StoreError {
    StoreError::UnsafeEntry {
        path: String::from_utf8_lossy(raw).into_owned(),
        why: why.into(),
    }
}

/// Normalises a layer entry name (see the module docs). Refuses `..` above
/// the root, NUL bytes and names longer than PATH_MAX / NAME_MAX.
pub fn clean_entry_path(raw: &[u8]) -> Result<RelPath> {
    if raw.contains(&0) {
        return Err(unsafe_entry(raw, "name contains a NUL byte"));
    }
    if raw.len() > MAX_PATH * 4 {
        return Err(unsafe_entry(&raw[..64], "name is far too long"));
    }
    let mut out: Vec<OsString> = Vec::new();
    for comp in raw.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                if out.pop().is_none() {
                    return Err(unsafe_entry(raw, "`..` climbs out of the root"));
                }
            }
            c if c.len() > MAX_NAME => {
                return Err(unsafe_entry(raw, "a component is longer than 255 bytes"));
            }
            c => out.push(OsStr::from_bytes(c).to_os_string()),
        }
    }
    let len: usize = out.iter().map(|c| c.len() + 1).sum();
    if len > MAX_PATH {
        return Err(unsafe_entry(raw, "path is longer than 4096 bytes"));
    }
    Ok(RelPath(out))
}

/// Why no filesystem could hold the entry name `raw`, by the length rules
/// of [`clean_entry_path`] (PATH_MAX, NAME_MAX), or `None`. `..` is not
/// judged here (apply refuses one that climbs out, naming it): this is for
/// `load`, which refuses a layer no `run` could ever unpack.
pub fn entry_length_problem(raw: &[u8]) -> Option<&'static str> {
    if raw.len() > MAX_PATH * 4 {
        return Some("path is far longer than 4096 bytes (PATH_MAX)");
    }
    let mut lens: Vec<usize> = Vec::new();
    for comp in raw.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                lens.pop();
            }
            c if c.len() > MAX_NAME => {
                return Some("a path component is longer than 255 bytes (NAME_MAX)")
            }
            c => lens.push(c.len()),
        }
    }
    let len: usize = lens.iter().map(|l| l + 1).sum();
    (len > MAX_PATH).then_some("path is longer than 4096 bytes (PATH_MAX)")
}

/// An open root directory; all lookups below it stay below it.
#[derive(Debug)]
pub struct RootDir {
    fd: OwnedFd,
    path: PathBuf,
}

impl RootDir {
    /// Opens `path` as a directory to resolve paths beneath.
    pub fn open(path: &Path) -> Result<RootDir> {
        let fd = rfs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ctx("open root directory", path)?;
        Ok(RootDir {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open directory.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The host path of `rel`, for messages only (never for opening).
    pub fn display(&self, rel: &RelPath) -> PathBuf {
        self.path.join(rel.to_path_buf())
    }

    /// Opens `rel` with `RESOLVE_IN_ROOT`, following symlinks (including a
    /// final one) only inside the root.
    pub fn open_in_root(&self, rel: &RelPath, flags: OFlags) -> rustix::io::Result<OwnedFd> {
        let p = rel.to_path_buf();
        loop {
            match rfs::openat2(
                &self.fd,
                &p,
                flags | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_XDEV,
            ) {
                Err(Errno::AGAIN) | Err(Errno::INTR) => continue,
                r => return r,
            }
        }
    }

    /// Opens directory `rel` (resolved in the root) for use as a dirfd.
    pub fn open_dir(&self, rel: &RelPath) -> Result<OwnedFd> {
        self.open_in_root(rel, OFlags::RDONLY | OFlags::DIRECTORY)
            .ctx("open directory", &self.display(rel))
    }

    /// Opens directory `rel`, creating missing directories (mode 0755,
    /// owned by the caller) on the way. Every step is resolved in the root;
    /// a dangling symlink on the way is followed (inside the root) and its
    /// target created, as `mkdir -p` in a chroot would.
    pub fn mkdir_all(&self, rel: &RelPath) -> Result<OwnedFd> {
        self.mkdir_all_depth(rel, 0)
    }

    fn mkdir_all_depth(&self, rel: &RelPath, depth: usize) -> Result<OwnedFd> {
        match self.open_in_root(rel, OFlags::RDONLY | OFlags::DIRECTORY) {
            Ok(fd) => return Ok(fd),
            Err(Errno::NOENT) => {}
            Err(e) => return Err(e).ctx("open directory", &self.display(rel)),
        }
        if depth > 40 {
            return Err(Errno::LOOP).ctx("create directory", &self.display(rel));
        }
        let mut cur = self.open_dir(&RelPath::root())?;
        let mut prefix = RelPath::root();
        for (i, comp) in rel.components().iter().enumerate() {
            let parent = prefix.clone();
            prefix = prefix.join(comp);
            match self.open_in_root(&prefix, OFlags::RDONLY | OFlags::DIRECTORY) {
                Ok(fd) => cur = fd,
                Err(Errno::NOENT) => {
                    match rfs::mkdirat(&cur, comp.as_os_str(), Mode::from_raw_mode(0o755)) {
                        Ok(()) => {}
                        Err(Errno::EXIST) => {
                            // A dangling symlink: create its target, inside the root.
                            let target = rfs::readlinkat(&cur, comp.as_os_str(), Vec::new())
                                .ctx("read symlink", &self.display(&prefix))?;
                            let mut resolved = clean_clamped(&parent, target.as_bytes());
                            for rest in &rel.components()[i + 1..] {
                                resolved = resolved.join(rest);
                            }
                            return self.mkdir_all_depth(&resolved, depth + 1);
                        }
                        Err(e) => {
                            return Err(e).ctx("create directory", &self.display(&prefix));
                        }
                    }
                    cur = self.open_dir(&prefix)?;
                }
                Err(e) => return Err(e).ctx("open directory", &self.display(&prefix)),
            }
        }
        Ok(cur)
    }
}

/// Resolves a symlink target lexically as `RESOLVE_IN_ROOT` would: absolute
/// targets start at the root, `..` stops at the root.
pub fn clean_clamped(base: &RelPath, target: &[u8]) -> RelPath {
    let mut out = if target.starts_with(b"/") {
        Vec::new()
    } else {
        base.0.clone()
    };
    for comp in target.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            c => out.push(OsStr::from_bytes(c).to_os_string()),
        }
    }
    RelPath(out)
}

/// What kind of file a `st_mode` names, for error messages.
pub fn file_kind(mode: u32) -> &'static str {
    match rfs::FileType::from_raw_mode(mode as _) {
        rfs::FileType::RegularFile => "a regular file",
        rfs::FileType::Directory => "a directory",
        rfs::FileType::Symlink => "a symbolic link",
        rfs::FileType::Fifo => "a FIFO (named pipe)",
        rfs::FileType::Socket => "a socket",
        rfs::FileType::CharacterDevice => "a character device",
        rfs::FileType::BlockDevice => "a block device",
        _ => "a special file",
    }
}

/// Opens `path` for reading only if it is a regular file, and never
/// blocks doing so: the open is `O_NONBLOCK` (opening a FIFO nobody
/// writes to returns at once instead of waiting for a writer; a device's
/// open has no side effect worth the name), then `fstat` on the open file
/// decides. Anything but a regular file is refused with an
/// `InvalidInput` error naming its kind, before a byte is read. With
/// `follow` false a final symlink is refused too (`O_NOFOLLOW`), so a
/// path checked with `lstat` cannot be swapped for a link or a FIFO in
/// between. Every input strata reads whole from a user's files (context
/// files, secrets, the Dockerfile) goes through this or
/// [`open_regular_at`].
pub fn open_regular(path: &Path, follow: bool) -> std::io::Result<std::fs::File> {
    let mut flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    if !follow {
        flags |= OFlags::NOFOLLOW;
    }
    let fd = rfs::open(path, flags, Mode::empty()).map_err(|e| {
        if e == Errno::LOOP && !follow {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "is a symbolic link (not followed here)",
            )
        } else {
            e.into()
        }
    })?;
    regular_or_refuse(fd)
}

/// [`open_regular`] of `name` in the directory `dir`, never following a
/// final symlink.
pub fn open_regular_at(
    dir: impl AsFd,
    name: impl rustix::path::Arg,
) -> std::io::Result<std::fs::File> {
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    let fd = rfs::openat(dir, name, flags | OFlags::NOFOLLOW, Mode::empty())?;
    regular_or_refuse(fd)
}

fn regular_or_refuse(fd: OwnedFd) -> std::io::Result<std::fs::File> {
    let st = rfs::fstat(&fd)?;
    if rfs::FileType::from_raw_mode(st.st_mode) != rfs::FileType::RegularFile {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "is {}, not a regular file (strata never reads from one)",
                file_kind(st.st_mode as u32)
            ),
        ));
    }
    // Back to blocking reads (no effect on a regular file, but nothing
    // downstream should see a non-blocking descriptor).
    rfs::fcntl_setfl(&fd, rfs::fcntl_getfl(&fd)? - OFlags::NONBLOCK)?;
    Ok(std::fs::File::from(fd))
}

/// `lstat` of `name` in `dir` (None when missing).
pub fn lstat_at(dir: impl AsFd, name: &OsStr) -> rustix::io::Result<Option<rfs::Stat>> {
    match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes `name` in `dir` and, if it is a directory, everything below it,
/// never following symlinks. Missing is fine.
pub fn remove_at(dir: impl AsFd, name: &OsStr) -> rustix::io::Result<()> {
    let dir = dir.as_fd();
    let Some(st) = lstat_at(dir, name)? else {
        return Ok(());
    };
    if rfs::FileType::from_raw_mode(st.st_mode) != rfs::FileType::Directory {
        return match rfs::unlinkat(dir, name, AtFlags::empty()) {
            Err(Errno::NOENT) => Ok(()),
            r => r,
        };
    }
    let sub = rfs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    clear_dir(&sub, |_| false)?;
    match rfs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
        Err(Errno::NOENT) => Ok(()),
        r => r,
    }
}

/// Removes every entry of the open directory `dir` for which `keep` is false.
pub fn clear_dir(dir: &OwnedFd, keep: impl Fn(&OsStr) -> bool) -> rustix::io::Result<()> {
    let mut names = Vec::new();
    for ent in rfs::Dir::read_from(dir)? {
        let ent = ent?;
        let name = OsStr::from_bytes(ent.file_name().to_bytes());
        if name == "." || name == ".." || keep(name) {
            continue;
        }
        names.push(name.to_os_string());
    }
    for n in names {
        remove_at(dir, &n)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(s: &str) -> Result<String> {
        clean_entry_path(s.as_bytes()).map(|p| p.to_path_buf().display().to_string())
    }

    #[test]
    fn cleans_names() {
        assert_eq!(clean("./a/b/").unwrap(), "a/b");
        assert_eq!(clean("/etc/passwd").unwrap(), "etc/passwd");
        assert_eq!(clean("a/../b").unwrap(), "b");
        assert_eq!(clean("./").unwrap(), ".");
        assert!(clean("../x").is_err());
        assert!(clean("a/../../x").is_err());
        assert!(clean_entry_path(b"a\0b").is_err());
        assert!(clean(&"x".repeat(300)).is_err());
        assert!(clean(&"d/".repeat(3000)).is_err());
    }

    #[test]
    fn open_regular_refuses_fifos_devices_dirs_without_blocking() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("f");
        std::fs::write(&f, b"data").unwrap();
        let fifo = t.path().join("fifo");
        rfs::mknodat(
            rfs::CWD,
            &fifo,
            rfs::FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let link = t.path().join("link");
        std::os::unix::fs::symlink("f", &link).unwrap();
        let fifo_link = t.path().join("fifo-link");
        std::os::unix::fs::symlink("fifo", &fifo_link).unwrap();

        let mut s = String::new();
        std::io::Read::read_to_string(&mut open_regular(&f, false).unwrap(), &mut s).unwrap();
        assert_eq!(s, "data");
        assert!(open_regular(&link, true).is_ok());
        // A FIFO nobody writes to: refused at once (a plain open would
        // wait for a writer forever), also through a symlink.
        for (p, follow) in [(&fifo, false), (&fifo, true), (&fifo_link, true)] {
            let e = open_regular(p, follow).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
            assert!(e.to_string().contains("FIFO"), "{e}");
        }
        let e = open_regular(&link, false).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        let e = open_regular(Path::new("/dev/zero"), true).unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
        assert!(open_regular(t.path(), true).is_err());
        let dir = rfs::open(t.path(), OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
        assert!(open_regular_at(&dir, "fifo").is_err());
        assert!(open_regular_at(&dir, "link").is_err());
        assert!(open_regular_at(&dir, "f").is_ok());
    }

    #[test]
    fn mkdir_all_stays_inside() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir(&root).unwrap();
        std::os::unix::fs::symlink("/", root.join("up")).unwrap();
        let r = RootDir::open(&root).unwrap();
        r.mkdir_all(&clean_entry_path(b"up/made/here").unwrap())
            .unwrap();
        assert!(root.join("made/here").is_dir());
        assert!(!Path::new("/made").exists());
    }
}
