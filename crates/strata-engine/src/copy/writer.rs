//! The entry writer shared by every COPY/ADD source: emits parents,
//! directories, files, links and archive contents into the layer with the
//! step's ownership and `--chmod`, each path once.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use strata_store::{EntryMeta, LayerBuilder};

use super::chmod::Chmod;
use super::{io_err, join, CopyError};

pub(crate) struct Writer<'a> {
    pub layer: &'a mut LayerBuilder,
    /// The stage's rootfs (existing parents keep their metadata).
    pub stage_root: &'a Path,
    /// `--chown`: the owner of every entry and of the directories the step
    /// creates.
    pub chown: Option<(u64, u64)>,
    /// Without `--chown`, entries keep their source's owner (COPY --from a
    /// stage or an image) instead of becoming 0:0 (the context).
    pub keep_owner: bool,
    pub chmod: Option<&'a Chmod>,
    /// The mtime of directories this step creates.
    pub now: i64,
    pub emitted: HashSet<PathBuf>,
    pub links: HashMap<(u64, u64), PathBuf>,
    /// The first of the two passes: nothing is written, `winners` learns
    /// which source writes each non-directory path last.
    pub dry_run: bool,
    /// The index of the source being copied.
    pub current: usize,
    /// Non-directory target path -> the last source that writes it.
    pub winners: HashMap<PathBuf, usize>,
    /// No file path can come twice (one source, not an archive): files
    /// are not noted in `emitted`, and there is no first pass.
    pub files_unique: bool,
}

impl Writer<'_> {
    fn meta(&self, m: Option<&fs::Metadata>, default_mode: u32) -> EntryMeta {
        let mode = m.map(|m| m.mode() & 0o7777).unwrap_or(default_mode);
        let is_dir = m.is_none_or(|m| m.is_dir());
        let (uid, gid) = match (self.chown, m) {
            (Some(owner), _) => owner,
            (None, Some(m)) if self.keep_owner => (m.uid() as u64, m.gid() as u64),
            (None, _) => (0, 0),
        };
        EntryMeta {
            mode: self.chmod.map_or(mode, |c| c.apply(mode, is_dir)),
            uid,
            gid,
            mtime: m.map(|m| m.mtime()).unwrap_or(self.now),
            xattrs: Vec::new(),
        }
    }

    /// A directory the step creates (a missing parent, a new destination
    /// directory), as BuildKit's `MkdirAll` (fsutil#49, fsutil#228): owned
    /// by `--chown` (else root), with an octal `--chmod`'s mode (else 0755;
    /// a symbolic `--chmod` applies to copied entries only).
    fn created_dir_meta(&self) -> EntryMeta {
        let (uid, gid) = self.chown.unwrap_or((0, 0));
        EntryMeta {
            mode: match self.chmod {
                Some(Chmod::Octal(m)) => *m,
                _ => 0o755,
            },
            uid,
            gid,
            mtime: self.now,
            xattrs: Vec::new(),
        }
    }

    /// Emits the missing parents of `path` (see `created_dir_meta`), and
    /// existing ones with their current metadata so that the layer is
    /// self-contained without changing them.
    pub(super) fn ensure_parents(&mut self, path: &Path) -> Result<(), CopyError> {
        if self.dry_run {
            return Ok(());
        }
        let comps: Vec<_> = path
            .components()
            .filter_map(|c| match c {
                std::path::Component::Normal(n) => Some(n),
                _ => None,
            })
            .collect();
        let mut cur = PathBuf::from("/");
        for c in comps.iter().take(comps.len().saturating_sub(1)) {
            cur.push(c);
            if self.emitted.contains(&cur) {
                continue;
            }
            let existing = crate::rootfs::resolve_in_root_os(self.stage_root, &cur, false)
                .ok()
                .and_then(|h| fs::symlink_metadata(h).ok());
            match existing {
                // A symlinked parent: leave it (the layer entry below it
                // would replace the link otherwise).
                Some(m) if m.file_type().is_symlink() => {}
                Some(m) if m.is_dir() => {
                    self.layer.add_dir(&cur, &existing_meta(&m))?;
                }
                _ => {
                    let meta = self.created_dir_meta();
                    self.layer.add_dir(&cur, &meta)?;
                }
            }
            self.emitted.insert(cur.clone());
        }
        Ok(())
    }

    /// A directory copied from a source (below the destination): its
    /// source mode, and owner per the step's rules.
    fn dir(&mut self, path: &Path, m: &fs::Metadata) -> Result<(), CopyError> {
        if self.dry_run || path == Path::new("/") || !self.emitted.insert(path.to_path_buf()) {
            return Ok(());
        }
        let meta = self.meta(Some(m), 0o755);
        self.layer.add_dir(path, &meta)?;
        Ok(())
    }

    /// The destination directory (`COPY dir /dst`, `COPY f /dst/`): an
    /// existing one is left as it is; a new one is `created_dir_meta`
    /// whatever the source directory's mode (as BuildKit). Its parents are
    /// `ensure_parents`'.
    pub(super) fn dest_dir(&mut self, path: &Path) -> Result<(), CopyError> {
        self.ensure_parents(path)?;
        if self.dry_run || path == Path::new("/") || self.emitted.contains(path) {
            return Ok(());
        }
        let existing = crate::rootfs::resolve_in_root_os(self.stage_root, path, false)
            .ok()
            .and_then(|h| fs::symlink_metadata(h).ok())
            .filter(|m| m.is_dir());
        let meta = match existing {
            Some(m) => existing_meta(&m),
            None => self.created_dir_meta(),
        };
        self.emitted.insert(path.to_path_buf());
        self.layer.add_dir(path, &meta)?;
        Ok(())
    }

    pub(super) fn entry(
        &mut self,
        target: &Path,
        src: &Path,
        m: &fs::Metadata,
    ) -> Result<(), CopyError> {
        let ft = m.file_type();
        if ft.is_dir() {
            return self.dir(target, m);
        }
        if self.dry_run {
            self.winners.insert(target.to_path_buf(), self.current);
            return Ok(());
        }
        // A later source writes this path: it wins, as in Docker.
        if self.winners.get(target).is_some_and(|&w| w != self.current) {
            return Ok(());
        }
        if !self.files_unique && !self.emitted.insert(target.to_path_buf()) {
            return Ok(());
        }
        let meta = self.meta(Some(m), 0o644);
        if ft.is_symlink() {
            let link = fs::read_link(src).map_err(io_err(src))?;
            let meta = EntryMeta {
                mode: 0o777,
                ..meta
            };
            self.layer.add_symlink(target, &link, &meta)?;
        } else if ft.is_file() {
            if m.nlink() > 1 {
                let key = (m.dev(), m.ino());
                if let Some(first) = self.links.get(&key) {
                    self.layer.add_hardlink(target, first, &meta)?;
                    return Ok(());
                }
                self.links.insert(key, target.to_path_buf());
            }
            self.layer.add_file(target, src, &meta)?;
        } else {
            use std::os::unix::fs::FileTypeExt;
            if ft.is_fifo() {
                self.layer.add_fifo(target, &meta)?;
            } else if ft.is_socket() {
                // BuildKit (fsutil) copies a socket as a stub: an empty
                // regular file with the socket's permissions.
                self.layer
                    .add_file_reader(target, &mut io::empty(), 0, &meta)?;
            } else {
                // Devices are not copied (they need privileges we do not
                // assume).
                tracing::debug!("skipping special file {}", src.display());
            }
        }
        Ok(())
    }

    /// ADD of a local archive: its entries go under `dest`.
    pub(super) fn extract(&mut self, archive: &Path, dest: &str) -> Result<(), CopyError> {
        if self.dry_run {
            return Ok(());
        }
        self.dest_dir(Path::new(dest))?;
        let mut f =
            strata_store::safe_path::open_regular(archive, false).map_err(io_err(archive))?;
        let reader = strata_store::diff::decompressed(&mut f)?;
        let mut ar = tar::Archive::new(reader);
        let bad = |e: io::Error| CopyError::Invalid(format!("{}: {e}", archive.display()));
        for entry in ar.entries().map_err(bad)? {
            let mut e = entry.map_err(bad)?;
            let raw = e.path_bytes().into_owned();
            let rel = String::from_utf8_lossy(&raw).into_owned();
            let clean = crate::config::clean_path(&format!("/{rel}"));
            if clean == "/" {
                continue;
            }
            let target = join(dest, clean.trim_start_matches('/'));
            let h = e.header().clone();
            let mut meta = EntryMeta {
                mode: h.mode().unwrap_or(0o644) & 0o7777,
                uid: h.uid().unwrap_or(0),
                gid: h.gid().unwrap_or(0),
                mtime: h.mtime().unwrap_or(0) as i64,
                xattrs: Vec::new(),
            };
            if let Some((uid, gid)) = self.chown {
                meta.uid = uid;
                meta.gid = gid;
            }
            if let Some(c) = self.chmod {
                meta.mode = c.apply(meta.mode, h.entry_type() == tar::EntryType::Directory);
            }
            let tp = Path::new(&target);
            self.ensure_parents(tp)?;
            match h.entry_type() {
                tar::EntryType::Directory if self.emitted.insert(tp.to_path_buf()) => {
                    self.layer.add_dir(tp, &meta)?;
                }
                tar::EntryType::Symlink => {
                    let link = e.link_name().map_err(bad)?.unwrap_or_default().into_owned();
                    self.layer.add_symlink(tp, &link, &meta)?;
                }
                tar::EntryType::Link => {
                    let link = e.link_name().map_err(bad)?.unwrap_or_default().into_owned();
                    let lt = crate::config::clean_path(&format!("/{}", link.to_string_lossy()));
                    let lt = join(dest, lt.trim_start_matches('/'));
                    self.layer.add_hardlink(tp, Path::new(&lt), &meta)?;
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let size = e.size();
                    self.layer.add_file_reader(tp, &mut e, size, &meta)?;
                }
                tar::EntryType::Fifo => self.layer.add_fifo(tp, &meta)?,
                _ => {} // devices, pax/gnu metadata entries
            }
        }
        Ok(())
    }
}

/// An existing directory's metadata, to re-emit it unchanged.
fn existing_meta(m: &fs::Metadata) -> EntryMeta {
    EntryMeta {
        mode: m.mode() & 0o7777,
        uid: m.uid() as u64,
        gid: m.gid() as u64,
        mtime: m.mtime(),
        xattrs: Vec::new(),
    }
}
