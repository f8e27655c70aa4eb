//! `strata cp`: copies files between a container's filesystem and the
//! host, as `docker cp` does. A running container's mounted rootfs is used;
//! a stopped one's overlay is mounted for the copy. Every path inside the
//! container is resolved with `RESOLVE_IN_ROOT` (a symlink such as
//! `/tmp/x -> /` leads back into the container's root, never the host's),
//! and every entry is created or read with `*at` calls that do not follow a
//! final symlink: links are copied as links.

use std::ffi::OsStr;
use std::io::Write as _;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use rustix::fs::{self as rfs, FileType, Mode, OFlags};
use rustix::io::Errno;
use strata_engine::images;
use strata_store::safe_path::{clean_entry_path, lstat_at, remove_at, RelPath, RootDir};
use strata_store::{RootfsMount, Store};

use super::ctr::{self, State};
use super::Global;

#[derive(clap::Args, Debug)]
pub(crate) struct CpArgs {
    /// CONTAINER:SRC_PATH, or a host path
    pub src: String,
    /// A host path, or CONTAINER:DEST_PATH
    pub dest: String,
}

/// `CONTAINER:PATH` (a path starting with `/` or `.` is the host's).
pub(crate) fn split(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return None;
    }
    let (c, p) = arg.split_once(':')?;
    if c.is_empty() || c.contains('/') {
        return None;
    }
    Some((c, p))
}

/// The container's rootfs, mounted for as long as this lives when the
/// container is not running.
pub(crate) struct Rootfs {
    pub(crate) path: PathBuf,
    _mount: Option<RootfsMount>,
    _lease: Option<strata_store::Lease>,
}

fn is_mountpoint(p: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = p.to_string_lossy();
    info.lines()
        .any(|l| l.split(' ').nth(4).is_some_and(|m| m == want))
}

pub(crate) fn open_rootfs(root: &Path, s: &State) -> anyhow::Result<Rootfs> {
    let dir = ctr::ctr_dir(root, &s.id);
    let merged = dir.join("merged");
    if s.status == "running" && is_mountpoint(&merged) {
        return Ok(Rootfs {
            path: merged,
            _mount: None,
            _lease: None,
        });
    }
    let store = Store::open(root)?;
    let image = images::load_image(&store, &s.config.image_id).with_context(|| {
        format!(
            "the image {} ({}) of container {} is gone",
            s.config.image, s.config.image_id, s.name
        )
    })?;
    let lease = store.lease("container-cp")?;
    let mount = strata_engine::container::mount_container_rootfs(&store, &image, &dir, &lease)?;
    Ok(Rootfs {
        path: mount.target().to_path_buf(),
        _mount: Some(mount),
        _lease: Some(lease),
    })
}

/// The path inside the container and whether it asks for the contents of
/// a directory (`dir/.`).
fn container_path(p: &str) -> anyhow::Result<(RelPath, bool)> {
    let contents = p == "." || p.ends_with("/.");
    let rel = clean_entry_path(p.as_bytes()).map_err(|e| anyhow::anyhow!("{p}: {e}"))?;
    Ok((rel, contents))
}

pub(crate) fn cp(g: &Global, a: CpArgs) -> anyhow::Result<u8> {
    let root = g.store_root();
    match (split(&a.src), split(&a.dest)) {
        (Some(_), Some(_)) => bail!("copying between containers is not supported"),
        (None, None) => bail!("must specify at least one container source"),
        (Some((c, p)), None) => {
            let s = ctr::find_container(&root, c)?;
            let fs = open_rootfs(&root, &s)?;
            copy_out(&fs.path, p, Path::new(&a.dest))
                .with_context(|| format!("copying {} out of {}", p, s.name))?;
        }
        (None, Some((c, p))) => {
            let s = ctr::find_container(&root, c)?;
            let fs = open_rootfs(&root, &s)?;
            copy_in(Path::new(&a.src), &fs.path, p)
                .with_context(|| format!("copying {} into {}", a.src, s.name))?;
        }
    }
    Ok(0)
}

fn kind(st: &rfs::Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

fn copy_out(rootfs: &Path, src: &str, dest: &Path) -> anyhow::Result<()> {
    let rd = RootDir::open(rootfs)?;
    let (rel, contents) = container_path(src)?;
    let parent = rd.open_dir(&rel.parent())?;
    let (dirfd, name): (OwnedFd, &OsStr) = match rel.file_name() {
        Some(n) => (parent, n),
        None => (parent, OsStr::new(".")),
    };
    let Some(st) = lstat_at(&dirfd, name)? else {
        bail!("Could not find the file {src} in container");
    };
    if contents {
        if kind(&st) != FileType::Directory {
            bail!("{src}: not a directory");
        }
        let d = open_dir_at(&dirfd, name)?;
        std::fs::create_dir_all(dest)?;
        return copy_dir_out(&d, dest);
    }
    let target = if dest.is_dir() {
        let base = if rel.is_root() {
            OsStr::new("rootfs")
        } else {
            name
        };
        dest.join(base)
    } else {
        if dest.to_string_lossy().ends_with('/') {
            bail!("destination directory {} does not exist", dest.display());
        }
        dest.to_path_buf()
    };
    copy_entry_out(&dirfd, name, &target)
}

fn open_dir_at(dir: impl AsFd, name: &OsStr) -> rustix::io::Result<OwnedFd> {
    rfs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

fn copy_entry_out(dir: &OwnedFd, name: &OsStr, to: &Path) -> anyhow::Result<()> {
    let Some(st) = lstat_at(dir, name)? else {
        return Ok(());
    };
    let mode = st.st_mode & 0o7777;
    match kind(&st) {
        FileType::Directory => {
            let d = open_dir_at(dir, name)?;
            if !to.is_dir() {
                std::fs::create_dir(to).with_context(|| format!("creating {}", to.display()))?;
            }
            copy_dir_out(&d, to)?;
            std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode))?;
        }
        FileType::RegularFile => {
            let mut f = strata_store::safe_path::open_regular_at(dir, name)?;
            if to.symlink_metadata().is_ok_and(|m| !m.is_file()) && !to.is_dir() {
                std::fs::remove_file(to)?;
            }
            let mut out =
                std::fs::File::create(to).with_context(|| format!("creating {}", to.display()))?;
            std::io::copy(&mut f, &mut out)?;
            out.flush()?;
            std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode))?;
        }
        FileType::Symlink => {
            let target = rfs::readlinkat(dir, name, Vec::new())?;
            if to.symlink_metadata().is_ok() {
                std::fs::remove_file(to)?;
            }
            std::os::unix::fs::symlink(OsStr::from_bytes(target.as_bytes()), to)
                .with_context(|| format!("creating {}", to.display()))?;
        }
        _ => eprintln!(
            "strata cp: skipping {} (a {}, not copied)",
            to.display(),
            strata_store::safe_path::file_kind(st.st_mode)
        ),
    }
    Ok(())
}

fn entries(dir: &OwnedFd) -> anyhow::Result<Vec<std::ffi::OsString>> {
    let mut names = Vec::new();
    for e in rfs::Dir::read_from(dir)? {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(OsStr::from_bytes(n).to_os_string());
        }
    }
    Ok(names)
}

fn copy_dir_out(dir: &OwnedFd, to: &Path) -> anyhow::Result<()> {
    for n in entries(dir)? {
        copy_entry_out(dir, &n, &to.join(&n))?;
    }
    Ok(())
}

fn copy_in(src: &Path, rootfs: &Path, dest: &str) -> anyhow::Result<()> {
    let rd = RootDir::open(rootfs)?;
    let meta = src
        .symlink_metadata()
        .with_context(|| format!("{}", src.display()))?;
    let s = src.to_string_lossy();
    let contents = s == "." || s.ends_with("/.");
    let (rel, _) = container_path(dest)?;
    // An existing directory (symlinks followed inside the root): copy into it.
    match rd.open_in_root(&rel, OFlags::RDONLY | OFlags::DIRECTORY) {
        Ok(d) => {
            if contents {
                return copy_dir_in(src, &d);
            }
            let name = src
                .file_name()
                .context("the source has no file name")?
                .to_os_string();
            return copy_entry_in(src, &d, &name);
        }
        Err(Errno::NOENT) | Err(Errno::NOTDIR) => {}
        Err(e) => return Err(e).context(format!("opening {dest} in the container")),
    }
    if dest.ends_with('/') {
        bail!("destination directory {dest} does not exist in the container");
    }
    let name = rel
        .file_name()
        .context("the destination has no file name")?
        .to_os_string();
    let parent = rd
        .open_in_root(&rel.parent(), OFlags::RDONLY | OFlags::DIRECTORY)
        .with_context(|| format!("the parent directory of {dest} in the container"))?;
    if contents && meta.is_dir() {
        make_dir_at(&parent, &name, 0o755)?;
        let d = open_dir_at(&parent, &name)?;
        return copy_dir_in(src, &d);
    }
    copy_entry_in(src, &parent, &name)
}

/// `mkdir` of `name` in `dir`, replacing a non-directory (or a symlink).
fn make_dir_at(dir: &OwnedFd, name: &OsStr, mode: u32) -> anyhow::Result<()> {
    if let Some(st) = lstat_at(dir, name)? {
        if kind(&st) == FileType::Directory {
            return Ok(());
        }
        remove_at(dir, name)?;
    }
    rfs::mkdirat(dir, name, Mode::from_raw_mode(mode))?;
    Ok(())
}

fn copy_dir_in(src: &Path, dir: &OwnedFd) -> anyhow::Result<()> {
    for e in std::fs::read_dir(src)? {
        let e = e?;
        copy_entry_in(&e.path(), dir, &e.file_name())?;
    }
    Ok(())
}

fn copy_entry_in(src: &Path, dir: &OwnedFd, name: &OsStr) -> anyhow::Result<()> {
    let meta = src
        .symlink_metadata()
        .with_context(|| format!("{}", src.display()))?;
    let mode = meta.permissions().mode() & 0o7777;
    let ft = meta.file_type();
    if ft.is_dir() {
        make_dir_at(dir, name, 0o700)?;
        let d = open_dir_at(dir, name)?;
        copy_dir_in(src, &d)?;
        rfs::fchmod(&d, Mode::from_raw_mode(mode))?;
    } else if ft.is_file() {
        if lstat_at(dir, name)?.is_some_and(|st| kind(&st) != FileType::RegularFile) {
            remove_at(dir, name)?;
        }
        let mut input = std::fs::File::open(src)?;
        let fd = rfs::openat(
            dir,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )?;
        let mut out = std::fs::File::from(fd);
        std::io::copy(&mut input, &mut out)?;
        rfs::fchmod(&out, Mode::from_raw_mode(mode))?;
    } else if ft.is_symlink() {
        let target = std::fs::read_link(src)?;
        remove_at(dir, name)?;
        rfs::symlinkat(target.as_os_str(), dir, name)?;
    } else {
        eprintln!(
            "strata cp: skipping {} (not a file, directory or link)",
            src.display()
        );
    }
    Ok(())
}
