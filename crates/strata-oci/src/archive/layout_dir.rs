//! Opening files of a directory someone else made (an OCI layout for
//! `load -i DIR`, `--build-context x=oci-layout://DIR`, a local cache dir):
//! never through a symlink that leads out of the directory, never anything
//! but a regular file.
//!
//! Each file is opened with openat2 `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`
//! relative to the directory's fd (a link inside the layout still works;
//! one that leaves it fails with EXDEV), or, on a kernel without openat2,
//! component by component with `O_NOFOLLOW`. It is opened `O_NONBLOCK`,
//! so a FIFO does not block the open, and refused after `fstat` unless it
//! is a regular file: a FIFO used to hang `load` forever, a device to be
//! read as a blob.

use std::fs::File;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::error::Error;

/// A directory whose files are opened without leaving it.
#[derive(Debug)]
pub struct LayoutDir {
    fd: OwnedFd,
    path: PathBuf,
}

impl LayoutDir {
    /// Opens `path` (a directory; the path itself may be a link: the user
    /// named it).
    pub fn open(path: &Path) -> Result<LayoutDir, Error> {
        let fd = rfs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io(format!("opening directory {}", path.display()), e.into()))?;
        Ok(LayoutDir {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// The directory as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the regular file `rel` (relative, `/`-separated) for reading.
    /// `Ok(None)` when it does not exist; an error naming the path when it
    /// is a link out of the directory or not a regular file.
    pub fn open_file(&self, rel: &str) -> Result<Option<File>, Error> {
        let shown = self.path.join(rel);
        let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        let opened = loop {
            match rfs::openat2(
                &self.fd,
                rel,
                flags,
                Mode::empty(),
                ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
            ) {
                Err(Errno::AGAIN) | Err(Errno::INTR) => continue,
                Err(Errno::NOSYS) => break self.open_nofollow(rel, flags),
                r => break r,
            }
        };
        let fd = match opened {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(Errno::XDEV) => {
                return Err(Error::invalid(format!(
                    "{} is a symbolic link that leads out of {}: refused",
                    shown.display(),
                    self.path.display()
                )))
            }
            Err(Errno::LOOP) => {
                return Err(Error::invalid(format!(
                    "{} is a symbolic link (loop, or a link where none is allowed): refused",
                    shown.display()
                )))
            }
            Err(e) => {
                return Err(Error::io(format!("opening {}", shown.display()), e.into()));
            }
        };
        let st = rfs::fstat(&fd)
            .map_err(|e| Error::io(format!("stat {}", shown.display()), e.into()))?;
        let kind = FileType::from_raw_mode(st.st_mode);
        if kind != FileType::RegularFile {
            return Err(Error::invalid(format!(
                "{} is {}, not a regular file: refused",
                shown.display(),
                describe(kind)
            )));
        }
        // Back to blocking reads (no effect on a regular file, but honest).
        let _ = rfs::fcntl_setfl(&fd, OFlags::empty());
        Ok(Some(File::from(fd)))
    }

    /// Without openat2: every component opened with `O_NOFOLLOW`, so any
    /// symlink on the way is refused (ELOOP, or ENOTDIR for a directory).
    fn open_nofollow(&self, rel: &str, flags: OFlags) -> rustix::io::Result<OwnedFd> {
        let parts: Vec<&str> = rel.split('/').filter(|p| !p.is_empty()).collect();
        let Some((last, dirs)) = parts.split_last() else {
            return Err(Errno::INVAL);
        };
        let mut cur: Option<OwnedFd> = None;
        for d in dirs {
            if *d == ".." {
                return Err(Errno::XDEV);
            }
            let next = rfs::openat(
                cur.as_ref().unwrap_or(&self.fd),
                *d,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            cur = Some(next);
        }
        if *last == ".." {
            return Err(Errno::XDEV);
        }
        rfs::openat(
            cur.as_ref().unwrap_or(&self.fd),
            *last,
            flags | OFlags::NOFOLLOW,
            Mode::empty(),
        )
    }

    /// Whether `rel` is a regular file reachable without leaving the
    /// directory.
    pub fn has_file(&self, rel: &str) -> bool {
        matches!(self.open_file(rel), Ok(Some(_)))
    }

    /// Reads the regular file `rel` whole, refusing one larger than
    /// `limit` bytes. `NotFound` (as `Error::Io`) when missing.
    pub fn read_small(&self, rel: &str, limit: u64) -> Result<Vec<u8>, Error> {
        let shown = self.path.join(rel);
        let ctx = || format!("reading {}", shown.display());
        let f = self.open_file(rel)?.ok_or_else(|| {
            Error::io(
                ctx(),
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            )
        })?;
        let len = f.metadata().map_err(|e| Error::io(ctx(), e))?.len();
        if len > limit {
            return Err(Error::TooLarge {
                entry: shown.display().to_string(),
                what: "a metadata file",
                limit,
            });
        }
        let mut buf = Vec::with_capacity(len as usize);
        f.take(limit)
            .read_to_end(&mut buf)
            .map_err(|e| Error::io(ctx(), e))?;
        Ok(buf)
    }
}

fn describe(kind: FileType) -> &'static str {
    match kind {
        FileType::Fifo => "a FIFO (named pipe)",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symbolic link",
        _ => "not a regular file",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_open_fifos_and_escaping_links_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("layout");
        std::fs::create_dir_all(d.join("blobs/sha256")).unwrap();
        std::fs::write(d.join("blobs/sha256/aa"), b"blob").unwrap();
        std::fs::write(t.path().join("secret"), b"host").unwrap();
        std::os::unix::fs::symlink("../../../secret", d.join("blobs/sha256/out")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.join("blobs/sha256/abs")).unwrap();
        std::os::unix::fs::symlink("aa", d.join("blobs/sha256/in")).unwrap();
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            d.join("blobs/sha256/fifo"),
            Mode::from_raw_mode(0o644),
        )
        .unwrap();
        let l = LayoutDir::open(&d).unwrap();
        let mut s = String::new();
        l.open_file("blobs/sha256/aa")
            .unwrap()
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "blob");
        assert!(l.open_file("blobs/sha256/nope").unwrap().is_none());
        assert!(
            l.has_file("blobs/sha256/in"),
            "a link inside the layout works"
        );
        for (name, want) in [
            ("out", "leads out of"),
            ("abs", "leads out of"),
            ("fifo", "FIFO"),
        ] {
            let e = l.open_file(&format!("blobs/sha256/{name}")).unwrap_err();
            assert!(e.to_string().contains(want), "{name}: {e}");
            assert!(!l.has_file(&format!("blobs/sha256/{name}")));
        }
        let e = l.open_file("blobs").unwrap_err();
        assert!(e.to_string().contains("a directory"), "{e}");
        // The fallback refuses every link.
        let f = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC;
        assert!(l.open_nofollow("blobs/sha256/aa", f).is_ok());
        assert_eq!(
            l.open_nofollow("blobs/sha256/out", f).unwrap_err(),
            Errno::LOOP
        );
        assert_eq!(l.open_nofollow("../x", f).unwrap_err(), Errno::XDEV);
    }
}
