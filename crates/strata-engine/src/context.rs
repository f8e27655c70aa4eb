//! The build context: the directory a build reads COPY/ADD sources from.
//!
//! - Walks it in sorted order, never following symlinks, leaving out what
//!   `.dockerignore` excludes (through an `Ignore`).
//! - Digests sources by content and metadata (type, mode, uid, gid, size,
//!   symlink target, file contents), never by mtime.
//! - Keeps a stat cache (relative path, size, mtime_ns, ctime_ns, inode ->
//!   content digest) in a small append-only file under the store root
//!   (`stat_cache.rs`), so a no-op rebuild re-reads no file. A content change always changes ctime (and
//!   usually size or mtime); `touch -d` resets mtime but not ctime. The
//!   residual risk is a write that keeps size, mtime and ctime identical,
//!   which needs two writes within the filesystem's timestamp granularity;
//!   like git's "racy" check, an entry whose mtime or ctime is within 2 s of
//!   the moment it was hashed is never trusted, so that case is re-hashed.
//! - Streams file contents: nothing is ever loaded whole in memory.
//! - Digests walk with `openat`/`fstatat` relative to each directory's fd:
//!   a full-path `statx` per file made the kernel resolve every path from
//!   the root again, most of a rebuild's time on a 20,000-file context.

use std::fmt::Write as _;
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use rustix::fs::{FileType, Stat};
use sha2::{Digest as _, Sha256};

use crate::stat_cache::{StatCache, StatEntry};

mod walk_at;

/// What `.dockerignore` excludes. Paths are relative to the context root,
/// slash-separated, without a leading `./`.
pub(crate) trait Ignore: Send + Sync {
    fn ignored(&self, rel: &str) -> bool;
    /// True when nothing under `rel_dir` can be re-included by an exception
    /// pattern, so the walk may skip the directory entirely.
    fn can_skip_dir(&self, rel_dir: &str) -> bool;
    /// True when nothing at all is excluded (no patterns).
    fn is_empty(&self) -> bool {
        false
    }
}

/// Ignores nothing.
pub(crate) struct NoIgnore;

impl Ignore for NoIgnore {
    fn ignored(&self, _: &str) -> bool {
        false
    }
    fn can_skip_dir(&self, _: &str) -> bool {
        false
    }
    fn is_empty(&self) -> bool {
        true
    }
}

#[derive(Debug, thiserror::Error)]
/// Why the build context could not be read.
pub enum ContextError {
    #[error("forbidden path outside the build context: {0}")]
    /// A source leads out of the context.
    OutsideContext(String),
    #[error("{0}: not found in the build context")]
    /// A source matches nothing in the context.
    NotFound(String),
    #[error("{}", path.display())]
    /// A file of the context could not be read.
    Io {
        /// The file.
        path: PathBuf,
        #[source]
        /// Why.
        source: io::Error,
    },
    #[error(transparent)]
    /// A wildcard source is malformed or could not be expanded.
    Glob(#[from] crate::glob::GlobError),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ContextError + '_ {
    move |source| ContextError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Nanoseconds a file's timestamps must predate its hashing for the cached
/// digest to be trusted.
const RACY_WINDOW_NS: i64 = 2_000_000_000;

/// What the stat cache compares: a file is re-hashed when any differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StatKey {
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    ino: u64,
    dev: u64,
}

impl StatKey {
    #[cfg(test)]
    fn of_meta(m: &Metadata) -> StatKey {
        StatKey {
            size: m.size(),
            mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
            ctime_ns: m.ctime() * 1_000_000_000 + m.ctime_nsec(),
            ino: m.ino(),
            dev: m.dev(),
        }
    }

    // `struct stat` field types differ between architectures.
    #[allow(clippy::unnecessary_cast)]
    fn of_stat(st: &Stat) -> StatKey {
        StatKey {
            size: st.st_size as u64,
            mtime_ns: st.st_mtime as i64 * 1_000_000_000 + st.st_mtime_nsec as i64,
            ctime_ns: st.st_ctime as i64 * 1_000_000_000 + st.st_ctime_nsec as i64,
            ino: st.st_ino as u64,
            dev: st.st_dev as u64,
        }
    }
}

/// The build context directory with its ignore rules and stat cache.
pub(crate) struct BuildContext {
    root: PathBuf,
    ignore: Box<dyn Ignore>,
    cache_file: Option<PathBuf>,
    stat_cache: Mutex<StatCache>,
    /// Files whose content was actually read and hashed (for tests).
    hashed: Mutex<u64>,
}

/// One entry met while walking a source.
#[derive(Debug, Clone)]
pub(crate) struct WalkEntry {
    /// Path relative to the walked source's parent root (context-relative),
    /// for matching and messages (a name that is not UTF-8 is shown lossily).
    pub rel: String,
    /// The same path, exactly (any bytes).
    pub rel_os: PathBuf,
    pub abs: PathBuf,
    pub meta: Metadata,
}

impl BuildContext {
    /// Opens `root`; `cache_dir` (in the store root) holds the stat cache.
    pub(crate) fn open(
        root: &Path,
        ignore: Box<dyn Ignore>,
        cache_dir: Option<&Path>,
    ) -> Result<BuildContext, ContextError> {
        let root = fs::canonicalize(root).map_err(io_err(root))?;
        if !fs::metadata(&root).map_err(io_err(&root))?.is_dir() {
            return Err(ContextError::Io {
                path: root,
                source: io::Error::other("the build context must be a directory"),
            });
        }
        let cache_file = cache_dir.map(|d| {
            let name = hex::encode(Sha256::digest(root.as_os_str().as_encoded_bytes()));
            d.join(format!("{}.bin", &name[..32]))
        });
        let stat_cache = cache_file
            .as_deref()
            .map(StatCache::load)
            .unwrap_or_default();
        Ok(BuildContext {
            root,
            ignore,
            cache_file,
            stat_cache: Mutex::new(stat_cache),
            hashed: Mutex::new(0),
        })
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// True when `.dockerignore` excludes nothing (no patterns).
    pub(crate) fn ignores_nothing(&self) -> bool {
        self.ignore.is_empty()
    }

    /// Copies the context-relative source `rel` (a file or a directory
    /// tree) to `dst` as the build sees it: without what `.dockerignore`
    /// excludes, symlinks copied as links, modes and owners kept. Files are
    /// copied, never hard-linked: a link would change the user's inode
    /// (its ctime, which the stat cache watches).
    pub(crate) fn materialize(&self, rel: &Path, dst: &Path) -> Result<(), ContextError> {
        use std::os::unix::fs::PermissionsExt;
        let mut first = true;
        self.walk(rel, &mut |e| {
            let to = if std::mem::take(&mut first) {
                dst.to_path_buf()
            } else {
                dst.join(e.rel_os.strip_prefix(rel).unwrap_or(&e.rel_os))
            };
            let err = io_err(&e.abs);
            let ft = e.meta.file_type();
            if ft.is_dir() {
                fs::create_dir(&to).map_err(err)?;
                fs::set_permissions(&to, fs::Permissions::from_mode(e.meta.mode() & 0o7777))
                    .map_err(io_err(&to))?;
            } else if ft.is_symlink() {
                let target = fs::read_link(&e.abs).map_err(err)?;
                std::os::unix::fs::symlink(target, &to).map_err(io_err(&to))?;
            } else if ft.is_file() {
                fs::copy(&e.abs, &to).map_err(err)?;
            } else {
                return Ok(()); // sockets, fifos, devices: not shown
            }
            let _ = std::os::unix::fs::lchown(&to, Some(e.meta.uid()), Some(e.meta.gid()));
            Ok(())
        })
    }

    /// How many files were read and hashed so far (stat cache misses).
    pub(crate) fn files_hashed(&self) -> u64 {
        *self.hashed.lock().unwrap()
    }

    /// Writes what this build re-hashed into the stat cache (nothing when
    /// nothing changed). Errors are ignored: the cache is an optimisation.
    pub(crate) fn save(&self) {
        let Some(file) = &self.cache_file else { return };
        self.stat_cache.lock().unwrap().save(file);
    }

    /// Cleans a source path and checks it stays inside the context.
    /// Returns the context-relative path ("" for the root).
    pub(crate) fn clean_source(&self, src: &str) -> Result<String, ContextError> {
        let mut out: Vec<&str> = Vec::new();
        for seg in src.split('/') {
            match seg {
                "" | "." => {}
                ".." => {
                    if out.pop().is_none() {
                        return Err(ContextError::OutsideContext(src.to_string()));
                    }
                }
                s => out.push(s),
            }
        }
        Ok(out.join("/"))
    }

    /// Expands one COPY source (wildcards allowed) into context-relative
    /// paths (exact names: a wildcard may match names that are not UTF-8).
    /// A source that matches nothing is an error naming it.
    pub(crate) fn resolve_source(&self, src: &str) -> Result<Vec<PathBuf>, ContextError> {
        let rel = self.clean_source(src)?;
        if rel.is_empty() {
            return Ok(vec![PathBuf::new()]);
        }
        let ignore = &*self.ignore;
        if crate::glob::has_wildcards(&rel) {
            let found = crate::glob::expand(&self.root, &rel, &|r| ignore.ignored(r))?;
            if found.is_empty() {
                return Err(ContextError::NotFound(src.to_string()));
            }
            return Ok(found);
        }
        // Symlinked directories on the way are followed, inside the
        // context (a link leading out resolves as if the context were `/`),
        // as BuildKit: `COPY link/foo` with `link -> sub`, `d/up/d` with
        // `up -> ..`. The last component is `follow`'s.
        let host = crate::rootfs::resolve_in_root(&self.root, &rel, false)
            .map_err(|_| ContextError::NotFound(src.to_string()))?;
        if fs::symlink_metadata(&host).is_err() || self.ignore.ignored(&rel) {
            return Err(ContextError::NotFound(src.to_string()));
        }
        Ok(vec![PathBuf::from(rel)])
    }

    /// Expands all the sources of one COPY/ADD, each with its index in
    /// `srcs`. As BuildKit (AllowEmptyWildcard): a wildcard that matches
    /// nothing is no error as long as some source matched; when none did,
    /// the first source is reported not found.
    pub(crate) fn resolve_sources(
        &self,
        srcs: &[String],
    ) -> Result<Vec<(usize, PathBuf)>, ContextError> {
        let mut out = Vec::new();
        let mut first_missing = None;
        for (i, s) in srcs.iter().enumerate() {
            match self.resolve_source(s) {
                Ok(found) => out.extend(found.into_iter().map(|r| (i, r))),
                Err(ContextError::NotFound(m)) if crate::glob::has_wildcards(s) => {
                    first_missing.get_or_insert(ContextError::NotFound(m));
                }
                Err(e) => return Err(e),
            }
        }
        match first_missing {
            Some(e) if out.is_empty() => Err(e),
            _ => Ok(out),
        }
    }

    /// Follows a source that is a symlink (or lies below a symlinked
    /// directory) to what it points to, resolved inside the context (an
    /// absolute target or `..` never leaves it), as Docker does for a
    /// top-level COPY source. Returns the context-relative
    /// path of the target (`rel` itself when it is not a link). A dangling
    /// link, or one to an ignored path, is not found.
    pub(crate) fn follow(&self, src: &str, rel: &Path) -> Result<PathBuf, ContextError> {
        if rel.as_os_str().is_empty() {
            return Ok(PathBuf::new());
        }
        // Never `self.root.join(rel)` here: the host would follow a
        // symlinked directory on the way, out of the context.
        let host = crate::rootfs::resolve_in_root_os(&self.root, rel, true).map_err(|e| {
            ContextError::Io {
                path: self.root.join(rel),
                source: e,
            }
        })?;
        let target = host.strip_prefix(&self.root).unwrap_or(&host).to_path_buf();
        if target == rel {
            return Ok(target); // no symlink on the way
        }
        let shown = target.to_string_lossy();
        if fs::symlink_metadata(&host).is_err() || self.ignore.ignored(&shown) {
            return Err(ContextError::NotFound(format!(
                "{src} (a symbolic link to {shown}, which is missing or excluded)"
            )));
        }
        Ok(target)
    }

    /// Walks a context-relative source (file, symlink or directory) in
    /// sorted order, parents before children, ignored entries left out.
    /// The source itself is the first entry.
    pub(crate) fn walk(
        &self,
        rel: &Path,
        f: &mut dyn FnMut(&WalkEntry) -> Result<(), ContextError>,
    ) -> Result<(), ContextError> {
        let abs = if rel.as_os_str().is_empty() {
            self.root.clone()
        } else {
            self.root.join(rel)
        };
        let meta = fs::symlink_metadata(&abs).map_err(io_err(&abs))?;
        let is_dir = meta.is_dir();
        let shown = rel.to_string_lossy().into_owned();
        f(&WalkEntry {
            rel: shown.clone(),
            rel_os: rel.to_path_buf(),
            abs: abs.clone(),
            meta,
        })?;
        if is_dir {
            self.walk_dir(&shown, rel, &abs, f)?;
        }
        Ok(())
    }

    fn walk_dir(
        &self,
        rel: &str,
        rel_os: &Path,
        abs: &Path,
        f: &mut dyn FnMut(&WalkEntry) -> Result<(), ContextError>,
    ) -> Result<(), ContextError> {
        let mut names: Vec<_> = fs::read_dir(abs)
            .map_err(io_err(abs))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(io_err(abs))?;
        names.sort();
        for name in names {
            // Paths are built from the exact name; the lossy text is only
            // for .dockerignore matching and messages.
            let lossy = name.to_string_lossy();
            let child_rel = if rel.is_empty() {
                lossy.into_owned()
            } else {
                format!("{rel}/{lossy}")
            };
            let child_rel_os = rel_os.join(&name);
            let child_abs = abs.join(&name);
            let meta = fs::symlink_metadata(&child_abs).map_err(io_err(&child_abs))?;
            let is_dir = meta.is_dir();
            if self.ignore.ignored(&child_rel) {
                if is_dir && !self.ignore.can_skip_dir(&child_rel) {
                    // An exception may re-include something below.
                    self.walk_dir(&child_rel, &child_rel_os, &child_abs, f)?;
                }
                continue;
            }
            f(&WalkEntry {
                rel: child_rel.clone(),
                rel_os: child_rel_os.clone(),
                abs: child_abs.clone(),
                meta,
            })?;
            if is_dir {
                self.walk_dir(&child_rel, &child_rel_os, &child_abs, f)?;
            }
        }
        Ok(())
    }

    #[cfg(test)]
    /// The content digest of a regular file, from the stat cache when its
    /// metadata is unchanged (and not racy), else by reading it.
    pub(crate) fn file_digest(
        &self,
        rel: &str,
        abs: &Path,
        meta: &Metadata,
    ) -> Result<String, ContextError> {
        self.cached_digest(rel, StatKey::of_meta(meta), || {
            strata_store::safe_path::open_regular(abs, false).map_err(io_err(abs))
        })
    }

    fn cached_digest(
        &self,
        rel: &str,
        key: StatKey,
        open: impl FnOnce() -> Result<File, ContextError>,
    ) -> Result<String, ContextError> {
        {
            let cache = self.stat_cache.lock().unwrap();
            if let Some(e) = cache.entries.get(rel) {
                if e.size == key.size
                    && e.mtime_ns == key.mtime_ns
                    && e.ctime_ns == key.ctime_ns
                    && e.ino == key.ino
                    && e.dev == key.dev
                    && key.mtime_ns.max(key.ctime_ns) + RACY_WINDOW_NS < e.hashed_at_ns
                {
                    return Ok(format!("sha256:{}", hex::encode(e.sha256)));
                }
            }
        }
        let hashed_at_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0);
        let sha256 = hash_reader(open()?).map_err(io_err(&self.root.join(rel)))?;
        *self.hashed.lock().unwrap() += 1;
        self.stat_cache.lock().unwrap().insert(
            rel,
            StatEntry {
                size: key.size,
                mtime_ns: key.mtime_ns,
                ctime_ns: key.ctime_ns,
                ino: key.ino,
                dev: key.dev,
                hashed_at_ns,
                sha256,
            },
        );
        Ok(format!("sha256:{}", hex::encode(sha256)))
    }

    #[cfg(test)]
    /// The digest of a set of context-relative sources: every entry's
    /// relative path, type, mode, size, link target and content. Nothing
    /// local to this machine goes in (so another store computes the same
    /// cache keys from a copy of the context elsewhere): not the owners
    /// (COPY makes context files 0:0), not the mode of a top-level
    /// directory (the destination is created 0755 whatever it is), never
    /// the absolute path or mtimes.
    pub(crate) fn digest_sources(&self, rels: &[PathBuf]) -> Result<String, ContextError> {
        self.digest_sources_listed(rels, None)
    }

    /// The digest of `srcs` (for a step's cache key), with the list of the
    /// files it hashed (to explain a later cache miss).
    pub(crate) fn digest_listed(
        &self,
        srcs: &[String],
    ) -> Result<(String, crate::whymiss::FileSet), ContextError> {
        let rels: Vec<PathBuf> = self
            .resolve_sources(srcs)?
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        let mut list = crate::whymiss::FileSet::default();
        let d = self.digest_sources_listed(&rels, Some(&mut list))?;
        Ok((d, list))
    }

    /// [`digest_sources`](Self::digest_sources), also listing every entry
    /// hashed (context-relative path, mode as hashed, content digest or
    /// link target) into `list`, to explain a later cache miss.
    pub(crate) fn digest_sources_listed(
        &self,
        rels: &[PathBuf],
        mut list: Option<&mut crate::whymiss::FileSet>,
    ) -> Result<String, ContextError> {
        use std::os::unix::ffi::OsStrExt;
        let mut h = Sha256::new();
        let mut line = String::new();
        for name in rels {
            h.update(b"source\0");
            h.update(name.as_os_str().as_bytes());
            h.update(b"\0");
            let rel = &self.follow(&name.to_string_lossy(), name)?;
            self.walk_at(rel, &mut |e| {
                let st = e.stat;
                let mut ft = FileType::from_raw_mode(st.st_mode);
                let sub = e
                    .rel_bytes
                    .strip_prefix(rel.as_os_str().as_bytes())
                    .unwrap_or(e.rel_bytes);
                let mut mode = if sub.is_empty() && ft == FileType::Directory {
                    0o040000
                } else {
                    st.st_mode
                };
                if ft == FileType::Socket {
                    // Copied as an empty regular file (BuildKit's stub):
                    // keyed as one.
                    ft = FileType::RegularFile;
                    mode = (mode & 0o7777) | 0o100000;
                }
                let size = if ft == FileType::RegularFile {
                    st.st_size as u64
                } else {
                    0
                };
                h.update(sub);
                line.clear();
                let _ = write!(line, "\0{mode:o}\0{size}\0");
                h.update(line.as_bytes());
                let mut listed = String::new();
                if ft == FileType::Symlink {
                    let target = rustix::fs::readlinkat(e.dir, e.name, Vec::new())
                        .map_err(self.at_err(e.rel))?;
                    h.update(target.as_bytes());
                    if list.is_some() {
                        listed = target.to_string_lossy().into_owned();
                    }
                } else if ft == FileType::RegularFile && size == 0 {
                    // Empty (or a socket's stub): nothing to read.
                    h.update(EMPTY_SHA256.as_bytes());
                    listed = EMPTY_SHA256.to_string();
                } else if ft == FileType::RegularFile {
                    let digest = self.cached_digest(e.rel, StatKey::of_stat(st), || {
                        // Never blocks: a FIFO swapped in since the
                        // walk's stat is refused, not read.
                        strata_store::safe_path::open_regular_at(e.dir, e.name).map_err(|source| {
                            ContextError::Io {
                                path: self.root.join(e.rel),
                                source,
                            }
                        })
                    })?;
                    h.update(digest.as_bytes());
                    listed = digest;
                } else if ft != FileType::Directory {
                    #[allow(clippy::unnecessary_cast)] // c_ulong on some targets
                    let rdev = st.st_rdev as u64;
                    h.update(rdev.to_string().as_bytes());
                    listed = format!("rdev:{rdev}");
                }
                h.update(b"\n");
                if let Some(l) = list.as_deref_mut() {
                    let path = if e.rel.is_empty() { "." } else { e.rel };
                    l.push(path.to_string(), mode, listed);
                }
                Ok(())
            })?;
        }
        Ok(format!("sha256:{}", hex::encode(h.finalize())))
    }
}

/// The digest of no bytes.
const EMPTY_SHA256: &str =
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

#[cfg(test)]
/// Streams a file through sha256.
pub(crate) fn hash_file(path: &Path) -> Result<String, ContextError> {
    let f = strata_store::safe_path::open_regular(path, true).map_err(io_err(path))?;
    let sha = hash_reader(f).map_err(io_err(path))?;
    Ok(format!("sha256:{}", hex::encode(sha)))
}

fn hash_reader(mut f: File) -> io::Result<[u8; 32]> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
}

#[cfg(test)]
mod tests;
