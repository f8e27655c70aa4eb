//! `apply_layer`: unpack a layer tar (gzip, zstd, bzip2, xz or plain, detected by
//! magic) into a directory, safely, in one of two modes:
//!
//! - [`ApplyMode::OverlayReady`]: for snapshots. `.wh.NAME` becomes an
//!   overlay whiteout (char 0/0), `.wh..wh..opq` sets
//!   `trusted.overlay.opaque=y` on its directory.
//! - [`ApplyMode::Flatten`]: onto a plain directory holding the lower
//!   layers. `.wh.NAME` deletes NAME; `.wh..wh..opq` deletes what the
//!   directory held before this layer.
//!
//! Safety: see `safe_path.rs`. Names are cleaned lexically (`..` above the
//! root is refused, absolute names are made relative), parents are resolved
//! with `RESOLVE_IN_ROOT` (a planted symlink such as `a -> /` leads back
//! into the root), and the final component is always created with `*at`
//! calls that never follow it (an existing entry is removed first, so
//! nothing is ever written through a symlink). Hard links must point at an
//! existing non-directory inside the root. Device nodes are never created
//! (skipped with a warning): a layer is untrusted input. Data is streamed,
//! whatever size an entry declares. setuid/setgid bits and ownership are
//! restored (chown before chmod).

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};
use rustix::io::Errno;
use sha2::{Digest as _, Sha256};
use strata_oci::Digest;

use super::whiteout::{
    is_private_xattr, make_whiteout_at, set_opaque, OPAQUE_MARKER, WHITEOUT_META_PREFIX,
    WHITEOUT_PREFIX,
};
use super::writer::EntryMeta;
use crate::error::{IoCtx, Result, StoreError};
use crate::safe_path::{clean_entry_path, clear_dir, lstat_at, remove_at, RelPath, RootDir};

/// How whiteouts are applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApplyMode {
    /// Whiteouts stay as overlay whiteouts / opaque xattrs (snapshots).
    OverlayReady,
    /// Whiteouts delete from the destination (flattening into one dir).
    Flatten,
}

/// What an apply did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplyStats {
    /// sha256 of the uncompressed tar stream (compare with the diff ID).
    pub diff_id: Digest,
    /// Size of the uncompressed tar stream.
    pub uncompressed_size: u64,
    /// Entries read.
    pub entries: u64,
    /// Entries skipped or attributes not restored, with the reason.
    pub warnings: Vec<String>,
}

struct HashingReader<R> {
    inner: R,
    /// None: not hashed (see [`apply_layer_known`]).
    hasher: Option<Sha256>,
    n: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        self.n += n as u64;
        Ok(n)
    }
}

/// Wraps `data` in the right decompressor, judged by its first bytes.
pub fn decompressed<'a>(data: &'a mut dyn Read) -> Result<Box<dyn Read + 'a>> {
    let mut br = BufReader::with_capacity(256 * 1024, data);
    let magic = br.fill_buf().what(|| "read layer".to_string())?;
    if magic.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(br)))
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let d = ruzstd::decoding::StreamingDecoder::new(br)
            .map_err(|e| StoreError::BadLayer(format!("zstd: {e}")))?;
        Ok(Box::new(d))
    } else if magic.starts_with(b"BZh") {
        // Multi-stream, as `bzip2 -c a b > ab` and pbzip2 write.
        Ok(Box::new(bzip2::read::MultiBzDecoder::new(br)))
    } else if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Ok(Box::new(xz2::read::XzDecoder::new_multi_decoder(br)))
    } else {
        Ok(Box::new(br))
    }
}

const MAX_WARNINGS: usize = 100;

struct Applier<'r> {
    root: &'r RootDir,
    mode: ApplyMode,
    written: HashSet<RelPath>,
    dirs: Vec<(RelPath, EntryMeta)>,
    warnings: Vec<String>,
    buf: Vec<u8>,
}

/// Applies one layer onto `dest` (which must exist). See the module docs.
pub fn apply_layer(data: &mut dyn Read, dest: &Path, mode: ApplyMode) -> Result<ApplyStats> {
    apply(data, dest, mode, None)
}

/// [`apply_layer`] of a tar stream whose sha256 is known to be `diff_id`
/// already (an uncompressed layer blob, whose digest the blob store
/// verified when it was written): the stream is not hashed again (a fifth
/// of an unpack's CPU), and the stats report `diff_id`.
pub fn apply_layer_known(
    data: &mut dyn Read,
    dest: &Path,
    mode: ApplyMode,
    diff_id: &Digest,
) -> Result<ApplyStats> {
    apply(data, dest, mode, Some(diff_id))
}

/// [`apply_layer`] for a caller that learns the stream's digest elsewhere
/// (a load hashes each blob as it reads the archive; a COPY's diff ID
/// comes from its files): the stream is not hashed. Returns the warnings.
pub(crate) fn apply_layer_unhashed(
    data: &mut dyn Read,
    dest: &Path,
    mode: ApplyMode,
) -> Result<Vec<String>> {
    // A stand-in for the digest `apply` would report: never returned.
    let unused = Digest::sha256_of(b"");
    apply(data, dest, mode, Some(&unused)).map(|s| s.warnings)
}

fn apply(
    data: &mut dyn Read,
    dest: &Path,
    mode: ApplyMode,
    known: Option<&Digest>,
) -> Result<ApplyStats> {
    let root = RootDir::open(dest)?;
    let reader = HashingReader {
        inner: decompressed(data)?,
        hasher: known.is_none().then(Sha256::new),
        n: 0,
    };
    let mut archive = tar::Archive::new(reader);
    let mut ap = Applier {
        root: &root,
        mode,
        written: HashSet::new(),
        dirs: Vec::new(),
        warnings: Vec::new(),
        buf: vec![0u8; 256 * 1024],
    };
    let mut entries = 0u64;
    let bad = |e: io::Error| StoreError::BadLayer(format!("reading tar: {e}"));
    for entry in archive.entries().map_err(bad)? {
        let mut e = entry.map_err(bad)?;
        entries += 1;
        ap.entry(&mut e)?;
    }
    ap.finish_dirs()?;
    let mut reader = archive.into_inner();
    io::copy(&mut reader, &mut io::sink()).map_err(bad)?;
    let diff_id = match reader.hasher {
        Some(h) => {
            Digest::from_sha256_hex(&hex::encode(h.finalize())).expect("sha256 hex is valid")
        }
        None => known.expect("known when not hashed").clone(),
    };
    Ok(ApplyStats {
        diff_id,
        uncompressed_size: reader.n,
        entries,
        warnings: ap.warnings,
    })
}

fn entry_meta<R: Read>(e: &mut tar::Entry<'_, R>) -> Result<EntryMeta> {
    let h = e.header();
    let bad = |what: &str, err: io::Error| StoreError::BadLayer(format!("{what}: {err}"));
    let mut meta = EntryMeta {
        mode: h.mode().map_err(|x| bad("mode", x))? & 0o7777,
        uid: h.uid().map_err(|x| bad("uid", x))?,
        gid: h.gid().map_err(|x| bad("gid", x))?,
        mtime: h.mtime().unwrap_or(0) as i64,
        xattrs: Vec::new(),
    };
    if let Some(pax) = e.pax_extensions().map_err(|x| bad("pax header", x))? {
        for ext in pax {
            let ext = ext.map_err(|x| bad("pax record", x))?;
            let Ok(key) = ext.key() else { continue };
            if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                meta.xattrs
                    .push((name.to_string(), ext.value_bytes().to_vec()));
            } else if key == "mtime" {
                if let Some(secs) = ext
                    .value()
                    .ok()
                    .and_then(|v| v.split('.').next())
                    .and_then(|v| v.parse::<i64>().ok())
                {
                    meta.mtime = secs;
                }
            }
        }
    }
    Ok(meta)
}

fn times(mtime: i64) -> Timestamps {
    let t = Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

impl Applier<'_> {
    fn warn(&mut self, msg: String) {
        tracing::warn!("{msg}");
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(msg);
        }
    }

    fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> Result<()> {
        let raw = e.path_bytes().into_owned();
        let rel = clean_entry_path(&raw)?;
        let Some(name) = rel.file_name().map(|n| n.to_os_string()) else {
            return Ok(()); // the root itself: its attributes are not ours to set
        };
        let nb = name.as_bytes();
        if nb.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            return self.whiteout(&rel, &name);
        }
        let kind = e.header().entry_type();
        let meta = entry_meta(e)?;
        let parent_rel = rel.parent();
        let parent = self.root.mkdir_all(&parent_rel)?;
        let shown = self.root.display(&rel);
        use tar::EntryType as T;
        match kind {
            T::Regular | T::Continuous | T::GNUSparse => {
                self.clear_slot(&parent, &name, false, &rel)?;
                let fd = rfs::openat(
                    &parent,
                    &name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .ctx("create file", &shown)?;
                let mut f = File::from(fd);
                self.copy(e, &mut f).ctx("write file", &shown)?;
                self.set_fd_meta(f.as_fd(), &meta, &rel, true)?;
            }
            T::Directory => {
                if !self.clear_slot(&parent, &name, true, &rel)? {
                    match rfs::mkdirat(&parent, &name, Mode::from_raw_mode(0o700)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(e).ctx("create directory", &shown),
                    }
                }
                let fd = rfs::openat(
                    &parent,
                    &name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .ctx("open directory", &shown)?;
                self.set_fd_meta(fd.as_fd(), &meta, &rel, false)?;
                self.dirs.push((rel.clone(), meta));
            }
            T::Symlink => {
                let target = e
                    .link_name_bytes()
                    .ok_or_else(|| {
                        StoreError::BadLayer(format!("symlink {shown:?} has no target"))
                    })?
                    .into_owned();
                if target.contains(&0) {
                    return Err(StoreError::UnsafeEntry {
                        path: rel.to_string(),
                        why: "symlink target contains NUL".into(),
                    });
                }
                self.clear_slot(&parent, &name, false, &rel)?;
                rfs::symlinkat(OsStr::from_bytes(&target), &parent, &name)
                    .ctx("create symlink", &shown)?;
                self.chown_at(&parent, &name, &meta, &rel);
                if let Err(err) = rfs::utimensat(
                    &parent,
                    &name,
                    &times(meta.mtime),
                    AtFlags::SYMLINK_NOFOLLOW,
                ) {
                    self.warn(format!("{rel}: cannot set symlink time: {err}"));
                }
            }
            T::Link => {
                let target_raw = e
                    .link_name_bytes()
                    .ok_or_else(|| {
                        StoreError::BadLayer(format!("hard link {shown:?} has no target"))
                    })?
                    .into_owned();
                let target = clean_entry_path(&target_raw)?;
                let Some(tname) = target.file_name() else {
                    return Err(StoreError::UnsafeEntry {
                        path: rel.to_string(),
                        why: "hard link to the root".into(),
                    });
                };
                let tparent =
                    self.root
                        .open_dir(&target.parent())
                        .map_err(|_| StoreError::UnsafeEntry {
                            path: rel.to_string(),
                            why: format!("hard link target {target} is not in the layer"),
                        })?;
                match lstat_at(&tparent, tname).ctx("stat", &self.root.display(&target))? {
                    Some(st) if FileType::from_raw_mode(st.st_mode) != FileType::Directory => {}
                    _ => {
                        return Err(StoreError::UnsafeEntry {
                            path: rel.to_string(),
                            why: format!("hard link target {target} is missing or a directory"),
                        })
                    }
                }
                if target == rel {
                    return Ok(());
                }
                self.clear_slot(&parent, &name, false, &rel)?;
                rfs::linkat(&tparent, tname, &parent, &name, AtFlags::empty())
                    .ctx("create hard link", &shown)?;
            }
            T::Fifo => {
                self.clear_slot(&parent, &name, false, &rel)?;
                rfs::mknodat(
                    &parent,
                    &name,
                    FileType::Fifo,
                    Mode::from_raw_mode(0o600),
                    0,
                )
                .ctx("create fifo", &shown)?;
                self.chown_at(&parent, &name, &meta, &rel);
                rfs::chmodat(
                    &parent,
                    &name,
                    Mode::from_raw_mode(meta.mode),
                    AtFlags::empty(),
                )
                .ctx("chmod fifo", &shown)?;
                let _ = rfs::utimensat(
                    &parent,
                    &name,
                    &times(meta.mtime),
                    AtFlags::SYMLINK_NOFOLLOW,
                );
            }
            T::Char | T::Block => {
                self.warn(format!(
                    "{rel}: device node not created (layers are untrusted)"
                ));
                return Ok(());
            }
            other => {
                self.warn(format!(
                    "{rel}: unsupported tar entry type {other:?}, skipped"
                ));
                return Ok(());
            }
        }
        if self.mode == ApplyMode::Flatten {
            self.written.insert(rel);
        }
        Ok(())
    }

    /// Makes room for a new entry `name` in `parent`. Returns true when an
    /// existing directory is kept (a directory entry over a directory).
    fn clear_slot(
        &self,
        parent: &OwnedFd,
        name: &OsStr,
        is_dir: bool,
        rel: &RelPath,
    ) -> Result<bool> {
        let shown = self.root.display(rel);
        match lstat_at(parent, name).ctx("stat", &shown)? {
            None => Ok(false),
            Some(st) if is_dir && FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                Ok(true)
            }
            Some(_) => {
                remove_at(parent, name).ctx("replace", &shown)?;
                Ok(false)
            }
        }
    }

    fn whiteout(&mut self, rel: &RelPath, name: &OsString) -> Result<()> {
        let nb = name.as_bytes();
        let parent_rel = rel.parent();
        if nb == OPAQUE_MARKER.as_bytes() {
            let dir = self.root.mkdir_all(&parent_rel)?;
            let shown = self.root.display(&parent_rel);
            match self.mode {
                ApplyMode::OverlayReady => set_opaque(&dir).ctx("mark opaque", &shown)?,
                ApplyMode::Flatten => {
                    let written = &self.written;
                    clear_dir(&dir, |child| written.contains(&parent_rel.join(child)))
                        .ctx("clear opaque directory", &shown)?;
                }
            }
            return Ok(());
        }
        if nb.starts_with(WHITEOUT_META_PREFIX.as_bytes()) {
            self.warn(format!("{rel}: unsupported whiteout meta entry, skipped"));
            return Ok(());
        }
        let target = OsStr::from_bytes(&nb[WHITEOUT_PREFIX.len()..]);
        if target.is_empty() || target == "." || target == ".." || target.as_bytes().contains(&b'/')
        {
            return Err(StoreError::UnsafeEntry {
                path: rel.to_string(),
                why: "whiteout of an invalid name".into(),
            });
        }
        let target_rel = parent_rel.join(target);
        let shown = self.root.display(&target_rel);
        match self.mode {
            ApplyMode::OverlayReady => {
                let dir = self.root.mkdir_all(&parent_rel)?;
                remove_at(&dir, target).ctx("replace with whiteout", &shown)?;
                make_whiteout_at(&dir, target).ctx("create whiteout", &shown)?;
            }
            ApplyMode::Flatten => {
                let dir = match self
                    .root
                    .open_in_root(&parent_rel, OFlags::RDONLY | OFlags::DIRECTORY)
                {
                    Ok(d) => d,
                    Err(Errno::NOENT) | Err(Errno::NOTDIR) => return Ok(()),
                    Err(e) => return Err(e).ctx("open directory", &shown),
                };
                remove_at(&dir, target).ctx("delete whited-out path", &shown)?;
            }
        }
        Ok(())
    }

    fn copy(&mut self, from: &mut dyn Read, to: &mut File) -> io::Result<()> {
        loop {
            let n = match from.read(&mut self.buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            to.write_all(&self.buf[..n])?;
        }
    }

    fn chown_at(&mut self, parent: &OwnedFd, name: &OsStr, meta: &EntryMeta, rel: &RelPath) {
        let (u, g) = ids(meta);
        if let Err(e) = rfs::chownat(parent, name, Some(u), Some(g), AtFlags::SYMLINK_NOFOLLOW) {
            self.warn(format!(
                "{rel}: cannot chown to {}:{}: {e}",
                meta.uid, meta.gid
            ));
        }
    }

    /// Ownership, xattrs and (for files) mode and times, on an open fd.
    fn set_fd_meta(
        &mut self,
        fd: std::os::fd::BorrowedFd<'_>,
        meta: &EntryMeta,
        rel: &RelPath,
        mode_and_time: bool,
    ) -> Result<()> {
        let (u, g) = ids(meta);
        if let Err(e) = rfs::fchown(fd, Some(u), Some(g)) {
            self.warn(format!(
                "{rel}: cannot chown to {}:{}: {e}",
                meta.uid, meta.gid
            ));
        }
        for (k, v) in &meta.xattrs {
            if is_private_xattr(k) {
                continue;
            }
            if let Err(e) = rfs::fsetxattr(fd, k.as_str(), v, rfs::XattrFlags::empty()) {
                let msg = format!("{rel}: cannot set xattr {k}: {e}");
                self.warn(msg);
            }
        }
        if mode_and_time {
            rfs::fchmod(fd, Mode::from_raw_mode(meta.mode))
                .ctx("chmod", &self.root.display(rel))?;
            rfs::futimens(fd, &times(meta.mtime)).ctx("set times", &self.root.display(rel))?;
        }
        Ok(())
    }

    /// Directory modes and times, deepest first, once their contents exist.
    fn finish_dirs(&mut self) -> Result<()> {
        let dirs = std::mem::take(&mut self.dirs);
        for (rel, meta) in dirs.iter().rev() {
            let Some(name) = rel.file_name() else {
                continue;
            };
            let Ok(parent) = self.root.open_dir(&rel.parent()) else {
                continue;
            };
            let fd = match rfs::openat(
                &parent,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => fd,
                Err(_) => continue, // replaced or deleted by a later entry
            };
            let shown = self.root.display(rel);
            rfs::fchmod(&fd, Mode::from_raw_mode(meta.mode)).ctx("chmod", &shown)?;
            rfs::futimens(&fd, &times(meta.mtime)).ctx("set times", &shown)?;
        }
        Ok(())
    }
}

fn ids(meta: &EntryMeta) -> (rfs::Uid, rfs::Gid) {
    // SAFETY-free: ids are plain numbers; out-of-range ids map to nobody.
    let u = u32::try_from(meta.uid).unwrap_or(65534);
    let g = u32::try_from(meta.gid).unwrap_or(65534);
    (rfs::Uid::from_raw(u), rfs::Gid::from_raw(g))
}
