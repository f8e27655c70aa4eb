//! COPY and ADD as file operations: the layer is written directly (through
//! the store's `LayerBuilder`) from the build context or from another
//! stage's (or image's) root filesystem, without starting a container.
//!
//! Docker's rules: wildcards (per path segment), a directory source copies
//! its contents, several sources need a directory destination ending in
//! `/`, a relative destination is relative to WORKDIR, a destination ending
//! in `/` (or an existing directory) receives sources by their base name,
//! ownership defaults to 0:0 (`--chown` overrides), `--chmod` sets modes,
//! missing parent directories are created 0755 root:root, ADD extracts
//! local tar archives (detected by magic bytes).

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use strata_store::{EntryMeta, LayerBuilder};

use crate::context::{BuildContext, ContextError};
use crate::rootfs::resolve_in_root;

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("{0}")]
    Context(#[from] ContextError),
    #[error("{0}")]
    Store(#[from] strata_store::StoreError),
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CopyError + '_ {
    move |source| CopyError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Where sources come from.
pub enum Source<'a> {
    /// The build context (with .dockerignore applied).
    Context(&'a BuildContext),
    /// Another stage's or an image's root filesystem, mounted at this path.
    Rootfs(&'a Path),
}

/// One COPY/ADD, already expanded by the frontend.
pub struct CopyParams<'a> {
    pub srcs: &'a [String],
    pub dest: &'a str,
    /// The stage's WORKDIR (absolute).
    pub workdir: &'a str,
    pub uid: u64,
    pub gid: u64,
    pub chmod: Option<u32>,
    /// "COPY" or "ADD" (for messages).
    pub instruction: &'a str,
    /// ADD: extract local tar archives.
    pub extract_archives: bool,
}

/// The destination, absolute and cleaned, and whether it names a directory
/// by its spelling (trailing `/`, `.`).
pub fn resolve_dest(dest: &str, workdir: &str) -> (String, bool) {
    let dir_hint = dest.ends_with('/') || dest == "." || dest.ends_with("/.") || dest == "..";
    let joined = if dest.starts_with('/') {
        dest.to_string()
    } else {
        format!("{workdir}/{dest}")
    };
    (crate::config::clean_path(&joined), dir_hint)
}

/// Writes the layer for one COPY/ADD into `layer`. `stage_root` is the
/// current stage's root filesystem (read-only), used to tell which
/// destination directories exist already.
pub fn copy_into_layer(
    layer: &mut LayerBuilder,
    source: &Source<'_>,
    stage_root: &Path,
    p: &CopyParams<'_>,
) -> Result<(), CopyError> {
    let (dest, dir_hint) = resolve_dest(p.dest, p.workdir);
    if p.srcs.len() > 1 && !dir_hint {
        return Err(CopyError::Invalid(format!(
            "When using {} with more than one source file, the destination must be a directory and end with a /",
            p.instruction
        )));
    }
    // Expand every source first: a missing one fails before anything is written.
    let mut expanded: Vec<(String, PathBuf)> = Vec::new();
    let mut wildcard = false;
    for src in p.srcs {
        wildcard |= crate::glob::has_wildcards(src);
        match source {
            Source::Context(ctx) => {
                for rel in ctx.resolve_source(src)? {
                    let abs = if rel.is_empty() {
                        ctx.root().to_path_buf()
                    } else {
                        ctx.root().join(&rel)
                    };
                    expanded.push((rel, abs));
                }
            }
            Source::Rootfs(root) => {
                for abs in expand_in_rootfs(root, src)? {
                    let rel = crate::rootfs::container_path(root, &abs);
                    expanded.push((rel, abs));
                }
            }
        }
    }
    let dest_is_dir = dir_hint
        || (wildcard && expanded.len() > 1)
        || resolve_in_root(stage_root, &dest, true)
            .ok()
            .and_then(|h| fs::metadata(h).ok())
            .is_some_and(|m| m.is_dir());

    let mut w = Writer {
        layer,
        stage_root,
        uid: p.uid,
        gid: p.gid,
        chmod: p.chmod,
        emitted: HashSet::new(),
        links: HashMap::new(),
    };
    for (rel, abs) in &expanded {
        let meta = fs::symlink_metadata(abs).map_err(io_err(abs))?;
        if meta.is_dir() {
            // A directory copies its contents into dest.
            w.ensure_parents(&dest)?;
            let root_meta = if matches!(source, Source::Context(_)) && rel.is_empty() {
                None // the context root itself: 0755
            } else {
                Some(&meta)
            };
            w.dir(&dest, root_meta)?;
            match source {
                Source::Context(ctx) => {
                    let mut first = true;
                    ctx.walk(rel, &mut |e| {
                        if std::mem::take(&mut first) {
                            return Ok(()); // the directory itself
                        }
                        let sub = e.rel.strip_prefix(rel.as_str()).unwrap_or(&e.rel);
                        let target = join(&dest, sub.trim_start_matches('/'));
                        w.entry(&target, &e.abs, &e.meta)
                            .map_err(|err| ContextError::Io {
                                path: e.abs.clone(),
                                source: io::Error::other(err.to_string()),
                            })
                    })?;
                }
                Source::Rootfs(_) => {
                    walk_host(abs, &mut |sub, path, m| w.entry(&join(&dest, sub), path, m))?
                }
            }
            continue;
        }
        let name = abs
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let target = if dest_is_dir {
            join(&dest, &name)
        } else {
            dest.clone()
        };
        if p.extract_archives && meta.is_file() && is_tar_archive(abs)? {
            w.ensure_parents(&join(&dest, "x"))?;
            w.extract(abs, &dest)?;
            continue;
        }
        w.ensure_parents(&target)?;
        w.entry(&target, abs, &meta)?;
    }
    Ok(())
}

fn join(base: &str, rel: &str) -> String {
    if rel.is_empty() {
        base.to_string()
    } else if base.ends_with('/') {
        format!("{base}{rel}")
    } else {
        format!("{base}/{rel}")
    }
}

/// Expands a source path (wildcards allowed) inside a stage's rootfs.
fn expand_in_rootfs(root: &Path, src: &str) -> Result<Vec<PathBuf>, CopyError> {
    let not_found =
        || CopyError::Invalid(format!("{src}: not found in the source stage's filesystem"));
    if !crate::glob::has_wildcards(src) {
        let host = resolve_in_root(root, src, true).map_err(|_| not_found())?;
        fs::symlink_metadata(&host).map_err(|_| not_found())?;
        return Ok(vec![host]);
    }
    // Resolve the directory part in-root, then match the wildcard segments.
    let rel = src.trim_start_matches('/');
    let found = crate::glob::expand(root, rel, &|_| false)
        .map_err(|e| CopyError::Invalid(e.to_string()))?;
    if found.is_empty() {
        return Err(not_found());
    }
    found
        .iter()
        .map(|r| resolve_in_root(root, r, false).map_err(io_err(Path::new(r))))
        .collect()
}

/// Walks a host directory (not following symlinks), sorted, giving each
/// descendant's path relative to `dir`.
fn walk_host(
    dir: &Path,
    f: &mut dyn FnMut(&str, &Path, &fs::Metadata) -> Result<(), CopyError>,
) -> Result<(), CopyError> {
    fn inner(
        dir: &Path,
        rel: &str,
        f: &mut dyn FnMut(&str, &Path, &fs::Metadata) -> Result<(), CopyError>,
    ) -> Result<(), CopyError> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .map_err(io_err(dir))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(io_err(dir))?;
        names.sort();
        for n in names {
            let n = n.to_string_lossy().into_owned();
            let path = dir.join(&n);
            let sub = if rel.is_empty() {
                n.clone()
            } else {
                format!("{rel}/{n}")
            };
            let m = fs::symlink_metadata(&path).map_err(io_err(&path))?;
            f(&sub, &path, &m)?;
            if m.is_dir() {
                inner(&path, &sub, f)?;
            }
        }
        Ok(())
    }
    inner(dir, "", f)
}

struct Writer<'a> {
    layer: &'a mut LayerBuilder,
    stage_root: &'a Path,
    uid: u64,
    gid: u64,
    chmod: Option<u32>,
    emitted: HashSet<String>,
    links: HashMap<(u64, u64), String>,
}

impl Writer<'_> {
    fn meta(&self, m: Option<&fs::Metadata>, default_mode: u32) -> EntryMeta {
        let mode = self
            .chmod
            .unwrap_or_else(|| m.map(|m| m.mode() & 0o7777).unwrap_or(default_mode));
        EntryMeta {
            mode,
            uid: self.uid,
            gid: self.gid,
            mtime: m.map(|m| m.mtime()).unwrap_or_else(now_secs),
            xattrs: Vec::new(),
        }
    }

    /// Emits the missing parents of `path` (0755 root:root, as Docker), and
    /// existing ones with their current metadata so that the layer is
    /// self-contained without changing them.
    fn ensure_parents(&mut self, path: &str) -> Result<(), CopyError> {
        let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        let mut cur = String::new();
        for c in comps.iter().take(comps.len().saturating_sub(1)) {
            cur.push('/');
            cur.push_str(c);
            if self.emitted.contains(&cur) {
                continue;
            }
            let existing = resolve_in_root(self.stage_root, &cur, false)
                .ok()
                .and_then(|h| fs::symlink_metadata(h).ok());
            match existing {
                // A symlinked parent: leave it (the layer entry below it
                // would replace the link otherwise).
                Some(m) if m.file_type().is_symlink() => {}
                Some(m) if m.is_dir() => {
                    let meta = EntryMeta {
                        mode: m.mode() & 0o7777,
                        uid: m.uid() as u64,
                        gid: m.gid() as u64,
                        mtime: m.mtime(),
                        xattrs: Vec::new(),
                    };
                    self.layer.add_dir(Path::new(&cur), &meta)?;
                }
                _ => {
                    let meta = EntryMeta {
                        mode: 0o755,
                        uid: 0,
                        gid: 0,
                        mtime: now_secs(),
                        xattrs: Vec::new(),
                    };
                    self.layer.add_dir(Path::new(&cur), &meta)?;
                }
            }
            self.emitted.insert(cur.clone());
        }
        Ok(())
    }

    fn dir(&mut self, path: &str, m: Option<&fs::Metadata>) -> Result<(), CopyError> {
        if path == "/" || !self.emitted.insert(path.to_string()) {
            return Ok(());
        }
        let meta = self.meta(m, 0o755);
        self.layer.add_dir(Path::new(path), &meta)?;
        Ok(())
    }

    fn entry(&mut self, target: &str, src: &Path, m: &fs::Metadata) -> Result<(), CopyError> {
        let ft = m.file_type();
        if ft.is_dir() {
            return self.dir(target, Some(m));
        }
        if !self.emitted.insert(target.to_string()) {
            return Ok(());
        }
        let meta = self.meta(Some(m), 0o644);
        if ft.is_symlink() {
            let link = fs::read_link(src).map_err(io_err(src))?;
            let meta = EntryMeta {
                mode: 0o777,
                ..meta
            };
            self.layer.add_symlink(Path::new(target), &link, &meta)?;
        } else if ft.is_file() {
            if m.nlink() > 1 {
                let key = (m.dev(), m.ino());
                if let Some(first) = self.links.get(&key) {
                    self.layer
                        .add_hardlink(Path::new(target), Path::new(first), &meta)?;
                    return Ok(());
                }
                self.links.insert(key, target.to_string());
            }
            self.layer.add_file(Path::new(target), src, &meta)?;
        } else {
            use std::os::unix::fs::FileTypeExt;
            if ft.is_fifo() {
                self.layer.add_fifo(Path::new(target), &meta)?;
            } else {
                // Sockets and devices are not copied (Docker skips sockets;
                // devices need privileges we do not assume).
                tracing::debug!("skipping special file {}", src.display());
            }
        }
        Ok(())
    }

    /// ADD of a local archive: its entries go under `dest`.
    fn extract(&mut self, archive: &Path, dest: &str) -> Result<(), CopyError> {
        self.dir(dest, None)?;
        let mut f = File::open(archive).map_err(io_err(archive))?;
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
            if self.uid != 0 || self.gid != 0 {
                meta.uid = self.uid;
                meta.gid = self.gid;
            }
            if let Some(c) = self.chmod {
                meta.mode = c;
            }
            self.ensure_parents(&target)?;
            let tp = Path::new(&target);
            match h.entry_type() {
                tar::EntryType::Directory if self.emitted.insert(target.clone()) => {
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

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// True when the file is a tar archive, plain or compressed (gzip, zstd,
/// bzip2, xz), judged by its first bytes as Docker does.
pub fn is_tar_archive(path: &Path) -> Result<bool, CopyError> {
    let mut f = File::open(path).map_err(io_err(path))?;
    let mut head = [0u8; 6];
    let n = read_full(&mut f, &mut head).map_err(io_err(path))?;
    let head = &head[..n];
    let compressed = head.starts_with(&[0x1f, 0x8b]) || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]);
    if head.starts_with(b"BZh") || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        // Recognised, but strata cannot decompress these yet: copied as files.
        return Ok(false);
    }
    let mut f = File::open(path).map_err(io_err(path))?;
    let mut block = [0u8; 512];
    let n = if compressed {
        let mut r = strata_store::diff::decompressed(&mut f)?;
        read_full(&mut r, &mut block).unwrap_or(0)
    } else {
        read_full(&mut f, &mut block).unwrap_or(0)
    };
    Ok(n == 512 && &block[257..262] == b"ustar")
}

fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dest_rules() {
        assert_eq!(resolve_dest(".", "/root/"), ("/root".into(), true));
        assert_eq!(resolve_dest("app", "/"), ("/app".into(), false));
        assert_eq!(resolve_dest("/x/", "/w"), ("/x".into(), true));
        assert_eq!(resolve_dest("sub/.", "/w"), ("/w/sub".into(), true));
    }
}
