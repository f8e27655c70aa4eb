//! The file steps of a stage: COPY and ADD (sources from the context, a
//! stage, an image, a named context, heredocs, URLs or git repositories;
//! `--link` layers cached independently of their parent) and WORKDIR.
//!
//! A COPY mounts the stage's rootfs to see which destination directories
//! exist (and to read /etc/passwd for `--chown`). On a big base this
//! unpacks every layer, but only once per store: snapshots persist, and a
//! stage's RUN needs them anyway (measured with the golang base, 460 MB:
//! 3.8 s the first time, then nothing). `--link` without a named
//! `--chown` mounts nothing at all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::json;
use strata_frontend::{FromRef, Heredoc, IgnoreMatcher, Resolved};
use strata_store::LayerBuilder;

use crate::build::{Builder, TempDir};
use crate::cache::{CacheKey, LayerRef, StepRecord};
use crate::config::ConfigEditor as _;
use crate::context::{BuildContext, NoIgnore};
use crate::copy::{copy_into_layer, Chmod, CopyParams, Source};
use crate::mounts::MountedRootfs;
use crate::named::Named;
use crate::rootfs::resolve_in_root;
use crate::run_step::layer_options;
use crate::sources::{git, http, is_git_url, is_http_url, is_remote};
use crate::stage::StageState;

/// A COPY or ADD with its flags.
pub(crate) struct FileStep<'a> {
    pub instruction: &'static str,
    pub srcs: &'a [String],
    pub dest: &'a str,
    pub from: Option<&'a FromRef>,
    pub chown: Option<&'a str>,
    pub chmod: Option<&'a str>,
    pub link: bool,
    pub parents: bool,
    pub exclude: &'a [String],
    pub heredocs: &'a [Heredoc],
    pub checksum: Option<&'a str>,
    pub keep_git_dir: bool,
    pub unpack: bool,
}

impl<'a> FileStep<'a> {
    pub fn of(r: &'a Resolved) -> Option<FileStep<'a>> {
        match r {
            Resolved::Copy {
                srcs,
                dest,
                from,
                chown,
                chmod,
                link,
                parents,
                exclude,
                heredocs,
            } => Some(FileStep {
                instruction: "COPY",
                srcs,
                dest,
                from: from.as_ref(),
                chown: chown.as_deref(),
                chmod: chmod.as_deref(),
                link: *link,
                parents: *parents,
                exclude,
                heredocs,
                checksum: None,
                keep_git_dir: false,
                unpack: false,
            }),
            Resolved::Add {
                srcs,
                dest,
                chown,
                chmod,
                link,
                exclude,
                checksum,
                keep_git_dir,
                unpack,
                heredocs,
            } => Some(FileStep {
                instruction: "ADD",
                srcs,
                dest,
                from: None,
                chown: chown.as_deref(),
                chmod: chmod.as_deref(),
                link: *link,
                parents: false,
                exclude,
                heredocs,
                checksum: checksum.as_deref(),
                keep_git_dir: *keep_git_dir,
                unpack: unpack.unwrap_or(true),
            }),
            _ => None,
        }
    }
}

/// Where a file step reads, once its sources are fetched.
enum Origin {
    Context,
    Stage(usize),
    Image(String),
    /// A named context directory.
    NamedDir(BuildContext),
    /// A temp dir the step filled (heredocs, downloads, clones).
    Fetched(TempDir),
}

/// A file step's sources, ready: where they are, their digest (for the
/// cache key), and the source paths to copy.
pub(crate) struct Prepared {
    pub digest: String,
    /// What it reads, for a cache-miss reason (`context`, `stage build`...).
    pub label: String,
    /// Its files, when they come from a context directory.
    pub files: Option<crate::whymiss::FileSet>,
    origin: Origin,
    srcs: Vec<String>,
    extract: bool,
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(data))
}

impl Builder<'_> {
    /// SOURCE_DATE_EPOCH or the current time, in seconds.
    pub(crate) fn now_secs(&self) -> i64 {
        self.req.source_date_epoch.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0)
        })
    }

    /// Fetches what a file step needs and digests it.
    pub(crate) fn prepare_files(
        &self,
        f: &FileStep<'_>,
        deps: &BTreeMap<usize, StageState>,
    ) -> Result<Prepared, String> {
        let heredoc_srcs = f.srcs.iter().filter(|s| s.starts_with("<<")).count();
        if heredoc_srcs > 0 {
            if heredoc_srcs != f.srcs.len() || f.heredocs.len() != f.srcs.len() {
                return Err(format!(
                    "{}: mixing heredocs and other sources is not supported: split the instruction",
                    f.instruction
                ));
            }
            return self.prepare_heredocs(f.heredocs);
        }
        if f.instruction == "ADD" && f.srcs.iter().any(|s| is_remote(s)) {
            if !f.srcs.iter().all(|s| is_remote(s)) {
                return Err(
                    "ADD: mixing URLs or git repositories with local sources is not supported: use one ADD for each"
                        .into(),
                );
            }
            return self.prepare_remote(f);
        }
        if f.checksum.is_some() {
            return Err(
                "ADD --checksum only applies to URL and git sources: remove it or use a URL".into(),
            );
        }
        let extract = f.instruction == "ADD" && f.unpack;
        let mut files = None;
        let (origin, digest, label) = match f.from {
            None => {
                let (d, l) = self.context_digest_listed(self.context, f.srcs)?;
                files = Some(l);
                (Origin::Context, d, "context".to_string())
            }
            Some(FromRef::Stage(i)) => {
                let d = deps
                    .get(i)
                    .ok_or_else(|| format!("stage {i} was not built"))?;
                let label = format!("stage {}", crate::stage::stage_label(&self.plan.stages[*i]));
                (Origin::Stage(*i), d.key.0.clone(), label)
            }
            Some(FromRef::Image(name)) => match self.named.get(&name.to_ascii_lowercase()) {
                Some(Named::Dir(dir)) => {
                    let ctx = BuildContext::open(dir, Box::new(NoIgnore), None)
                        .map_err(|e| e.to_string())?;
                    let (d, l) = self.context_digest_listed(&ctx, f.srcs)?;
                    files = Some(l);
                    (Origin::NamedDir(ctx), d, format!("context {name}"))
                }
                Some(Named::Image(id)) => (
                    Origin::Image(id.clone()),
                    id.clone(),
                    format!("image {name}"),
                ),
                None => {
                    let id = self
                        .images
                        .resolve_for(name, &self.platform, self.events)?
                        .to_string();
                    (Origin::Image(id.clone()), id, format!("image {name}"))
                }
            },
        };
        Ok(Prepared {
            digest,
            label,
            files,
            origin,
            srcs: f.srcs.to_vec(),
            extract,
        })
    }

    /// The digest of `srcs` in `ctx` (for a step's cache key), with the
    /// list of the files it hashed (to explain a later cache miss).
    pub(crate) fn context_digest_listed(
        &self,
        ctx: &BuildContext,
        srcs: &[String],
    ) -> Result<(String, crate::whymiss::FileSet), String> {
        let rels: Vec<PathBuf> = ctx
            .resolve_sources(srcs)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        let mut list = crate::whymiss::FileSet::default();
        let d = ctx
            .digest_sources_listed(&rels, Some(&mut list))
            .map_err(|e| e.to_string())?;
        Ok((d, list))
    }

    /// `COPY <<EOF /path`: each heredoc becomes a file named after its
    /// delimiter (0644), its body already expanded by the frontend.
    fn prepare_heredocs(&self, docs: &[Heredoc]) -> Result<Prepared, String> {
        let tmp = TempDir::new(self.store, "heredoc").map_err(|e| e.to_string())?;
        let mut srcs = Vec::new();
        let mut all = Vec::new();
        for h in docs {
            let p = tmp.0.join(&h.name);
            std::fs::write(&p, &h.content).map_err(|e| format!("heredoc {}: {e}", h.name))?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644))
                .map_err(|e| e.to_string())?;
            set_mtime(&p, self.now_secs());
            srcs.push(format!("/{}", h.name));
            all.extend_from_slice(h.name.as_bytes());
            all.push(0);
            all.extend_from_slice(h.content.as_bytes());
            all.push(0);
        }
        Ok(Prepared {
            digest: format!("heredoc:sha256:{}", sha256_hex(&all)),
            label: "the heredoc".into(),
            files: None,
            origin: Origin::Fetched(tmp),
            srcs,
            extract: false,
        })
    }

    /// ADD of URLs (downloaded, never extracted) and git repositories
    /// (cloned; their contents are copied).
    fn prepare_remote(&self, f: &FileStep<'_>) -> Result<Prepared, String> {
        if f.checksum.is_some() && f.srcs.len() > 1 {
            return Err("ADD --checksum needs exactly one source".into());
        }
        let tmp = TempDir::new(self.store, "fetch").map_err(|e| e.to_string())?;
        let mut srcs = Vec::new();
        let mut digests = Vec::new();
        for (i, url) in f.srcs.iter().enumerate() {
            if is_http_url(url) {
                let sub = tmp.0.join(format!("u{i}"));
                std::fs::create_dir_all(&sub).map_err(|e| e.to_string())?;
                let name = http::file_name(url);
                let d = http::download(url, &sub, &name, f.checksum)?;
                srcs.push(format!("/u{i}/{name}"));
                digests.push(format!("{name}\0{}\0{:?}", d.digest, d.mtime));
            } else if is_git_url(url) {
                let src = git::GitSource::parse(url);
                let dir = tmp.0.join(format!("g{i}"));
                let co = git::fetch(&src, &dir, f.keep_git_dir)
                    .map_err(|e| format!("ADD {url}: {e}"))?;
                if let Some(want) = f.checksum {
                    if !co.commit.starts_with(want) {
                        return Err(format!(
                            "checksum mismatch for {url}: expected commit {want}, got {}",
                            co.commit
                        ));
                    }
                }
                srcs.push(crate::rootfs::container_path(&tmp.0, &co.root));
                // The .git dir is not reproducible (pack files): key by
                // commit and the flag.
                digests.push(format!("git\0{}\0{}", co.commit, f.keep_git_dir));
                if let Some(t) = self.req.source_date_epoch {
                    clamp_tree_mtimes(&co.root, t);
                }
            }
        }
        Ok(Prepared {
            digest: format!(
                "remote:sha256:{}",
                sha256_hex(digests.join("\n").as_bytes())
            ),
            label: format!("the remote source {}", f.srcs.join(" ")),
            files: None,
            origin: Origin::Fetched(tmp),
            srcs,
            extract: false,
        })
    }

    /// Writes the layer of a file step on the stage state `st`. With
    /// `--link`, the step sees an empty filesystem (its layer does not
    /// depend on the parent).
    pub(crate) fn copy_step(
        &self,
        st: &StageState,
        f: &FileStep<'_>,
        p: &Prepared,
        deps: &BTreeMap<usize, StageState>,
    ) -> Result<LayerRef, String> {
        let e = |x: &dyn std::fmt::Display| x.to_string();
        let needs_passwd = f
            .chown
            .is_some_and(|c| c.split(':').any(|part| part.parse::<u64>().is_err()));
        let empty;
        let stage_mount;
        let stage_root: &Path = if f.link && !needs_passwd {
            empty = TempDir::new(self.store, "empty").map_err(|x| e(&x))?;
            &empty.0
        } else {
            stage_mount = MountedRootfs::mount(self.store, &st.layers, &[], Some(self.lease))
                .map_err(|x| e(&x))?;
            stage_mount.root()
        };
        let chown = match f.chown {
            None => None,
            Some(spec) => Some(
                crate::stage::resolve_chown(stage_root, spec)
                    .map_err(|m| format!("{} --chown={spec}: {m}", f.instruction))?,
            ),
        };
        // Docker keeps owners only when copying from a stage or an image.
        let keep_owner = matches!(p.origin, Origin::Stage(_) | Origin::Image(_));
        let chmod = f.chmod.map(Chmod::parse).transpose()?;
        let exclude = if f.exclude.is_empty() {
            None
        } else {
            Some(IgnoreMatcher::new(f.exclude).map_err(|x| format!("--exclude: {x}"))?)
        };
        let source_mount;
        let source = match &p.origin {
            Origin::Context => Source::Context(self.context),
            Origin::NamedDir(ctx) => Source::Context(ctx),
            Origin::Fetched(t) => Source::Rootfs(&t.0),
            Origin::Stage(i) => {
                let dep = deps
                    .get(i)
                    .ok_or_else(|| format!("stage {i} was not built"))?;
                source_mount = MountedRootfs::mount(self.store, &dep.layers, &[], Some(self.lease))
                    .map_err(|x| e(&x))?;
                Source::Rootfs(source_mount.root())
            }
            Origin::Image(name) => {
                let img = crate::images::load_image(self.store, name).map_err(|x| e(&x))?;
                self.lease.add_image(&img.id).map_err(|x| e(&x))?;
                source_mount = MountedRootfs::mount(self.store, &img.layers, &[], Some(self.lease))
                    .map_err(|x| e(&x))?;
                Source::Rootfs(source_mount.root())
            }
        };
        // --link: the parent is not consulted, so the destination's
        // directories are created (not taken from the parent).
        let link_root;
        let stage_root = if f.link && needs_passwd {
            link_root = TempDir::new(self.store, "empty").map_err(|x| e(&x))?;
            link_root.0.as_path()
        } else {
            stage_root
        };
        let mut layer = LayerBuilder::new(
            self.store.blobs(),
            layer_options(self.req.source_date_epoch),
        )
        .map_err(|x| e(&x))?;
        copy_into_layer(
            &mut layer,
            &source,
            stage_root,
            &CopyParams {
                srcs: &p.srcs,
                dest: f.dest,
                workdir: st.config.workdir(),
                chown,
                keep_owner,
                chmod: chmod.as_ref(),
                instruction: f.instruction,
                extract_archives: p.extract,
                exclude: exclude.as_ref(),
                parents: f.parents,
                now: self.now_secs(),
            },
        )
        .map_err(|x| e(&x))?;
        let info = layer.finish_leased(Some(self.lease)).map_err(|x| e(&x))?;
        Ok(info.to_record())
    }

    /// `COPY --link`: the layer is keyed without the parent (only the step
    /// definition and its inputs), looked up and recorded on its own.
    /// Returns the layer and whether it came from the cache.
    pub(crate) fn link_layer(
        &self,
        st: &StageState,
        f: &FileStep<'_>,
        p: &Prepared,
        def: &serde_json::Value,
        deps: &BTreeMap<usize, StageState>,
    ) -> Result<(LayerRef, bool), String> {
        let key = CacheKey::derive(None, &json!({ "link": def }));
        if !self.no_cache {
            if let Some(rec) = self.cache_lookup(&key) {
                if let Some(l) = rec.layers.into_iter().next() {
                    return Ok((l, true));
                }
            }
        }
        let layer = self.copy_step(st, f, p, deps)?;
        let rec = StepRecord {
            config: crate::config::scratch(),
            layers: vec![layer.clone()],
            cmd_set: false,
        };
        self.cache_put_record(&key, &rec);
        Ok((layer, false))
    }
    /// WORKDIR: creates the directory (owned by the current USER, as
    /// BuildKit) when missing; a layer only when something was created.
    pub(crate) fn workdir_step(
        &self,
        st: &StageState,
        wd: &str,
        user: &str,
    ) -> Result<Option<LayerRef>, String> {
        let e = |x: &dyn std::fmt::Display| x.to_string();
        let root = MountedRootfs::mount(self.store, &st.layers, &[], Some(self.lease))
            .map_err(|x| e(&x))?;
        let exists = resolve_in_root(root.root(), wd, true)
            .ok()
            .and_then(|h| std::fs::metadata(h).ok())
            .is_some_and(|m| m.is_dir());
        if exists {
            return Ok(None);
        }
        let (uid, gid) = if user.is_empty() {
            (0, 0)
        } else {
            let u = strata_runtime::resolve_user(root.root(), user).map_err(|x| e(&x))?;
            (u.uid as u64, u.gid as u64)
        };
        let mut layer = LayerBuilder::new(
            self.store.blobs(),
            layer_options(self.req.source_date_epoch),
        )
        .map_err(|x| e(&x))?;
        let mut cur = String::new();
        let now = self.now_secs();
        // Symlinks on the way are followed inside the rootfs, as Docker's
        // MkdirAll: the directories are created where the links lead.
        let host = resolve_in_root(root.root(), wd, true).map_err(|x| e(&x))?;
        let real = crate::rootfs::container_path(root.root(), &host);
        for comp in real.split('/').filter(|c| !c.is_empty()) {
            cur.push('/');
            cur.push_str(comp);
            let host = resolve_in_root(root.root(), &cur, false).map_err(|x| e(&x))?;
            let meta = std::fs::symlink_metadata(&host).ok();
            let entry = match meta {
                Some(m) if m.is_dir() => {
                    use std::os::unix::fs::MetadataExt;
                    strata_store::EntryMeta {
                        mode: m.mode() & 0o7777,
                        uid: m.uid() as u64,
                        gid: m.gid() as u64,
                        mtime: m.mtime(),
                        xattrs: Vec::new(),
                    }
                }
                Some(_) => {
                    return Err(format!("WORKDIR {wd}: {cur} exists and is not a directory"))
                }
                None => strata_store::EntryMeta {
                    mode: 0o755,
                    uid,
                    gid,
                    mtime: now,
                    xattrs: Vec::new(),
                },
            };
            layer
                .add_dir(std::path::Path::new(&cur), &entry)
                .map_err(|x| e(&x))?;
        }
        let info = layer.finish_leased(Some(self.lease)).map_err(|x| e(&x))?;
        Ok(Some(info.to_record()))
    }
}

fn set_mtime(p: &Path, t: i64) {
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64);
    if let Ok(f) = std::fs::File::options().write(true).open(p) {
        let _ = f.set_modified(when);
    }
}

/// Clamps the mtimes of a fetched tree's regular files to `t` (git sets
/// checkout times to now).
fn clamp_tree_mtimes(root: &Path, t: i64) {
    let mut stack: Vec<PathBuf> = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for ent in rd.flatten() {
            let p = ent.path();
            match ent.file_type() {
                Ok(ft) if ft.is_dir() => stack.push(p),
                Ok(ft) if ft.is_file() => set_mtime(&p, t),
                _ => {}
            }
        }
    }
}
