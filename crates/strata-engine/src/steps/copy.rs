//! COPY and ADD: the typed step ([`FileStep`], told apart by [`FileKind`])
//! and its execution, the layer written from its prepared sources (see
//! `copy_sources.rs`, which the key uses too). `--link` layers are cached
//! by their own key (made with every other key, in `key.rs`), independent
//! of the parent.
//!
//! A COPY mounts the stage's rootfs to see which destination directories
//! exist (and to read /etc/passwd for `--chown`). On a big base this
//! unpacks every layer, but only once per store: snapshots persist, and a
//! stage's RUN needs them anyway (measured with the golang base, 460 MB:
//! 3.8 s the first time, then nothing). `--link` without a named
//! `--chown` mounts nothing at all.

use std::path::Path;

use strata_frontend::{FromRef, Heredoc, IgnoreMatcher, Resolved};
use strata_store::LayerBuilder;

use super::copy_sources::{Origin, Prepared};
use super::{StepEnv, StepKey};
use crate::cache::{LayerRef, StepRecord};
use crate::copy::{copy_into_layer, Chmod, CopyError, CopyParams, Source};
use crate::error::StepError;
use crate::mounts::MountedRootfs;
use crate::run_step::{layer_options, layer_ref};
use crate::sources::is_remote;
use crate::stage::StageState;

/// Which instruction a file step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    Copy,
    Add,
}

impl FileKind {
    /// The instruction's name, for messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            FileKind::Copy => "COPY",
            FileKind::Add => "ADD",
        }
    }
}

impl std::fmt::Display for FileKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A COPY or ADD with its flags.
pub(crate) struct FileStep<'a> {
    pub(crate) resolved: &'a Resolved,
    pub(crate) kind: FileKind,
    pub(crate) srcs: &'a [String],
    pub(crate) dest: &'a str,
    pub(crate) from: Option<&'a FromRef>,
    pub(crate) chown: Option<&'a str>,
    pub(crate) chmod: Option<&'a str>,
    pub(crate) link: bool,
    pub(crate) parents: bool,
    pub(crate) exclude: &'a [String],
    pub(crate) heredocs: &'a [Heredoc],
    pub(crate) checksum: Option<&'a str>,
    pub(crate) keep_git_dir: bool,
    pub(crate) unpack: bool,
}

impl<'a> FileStep<'a> {
    /// `r` as a file step, if it is a COPY or an ADD.
    pub(crate) fn of(r: &'a Resolved) -> Option<FileStep<'a>> {
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
                resolved: r,
                kind: FileKind::Copy,
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
                resolved: r,
                kind: FileKind::Add,
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

    /// Does `--chown` name a user or group (read from /etc/passwd)?
    pub(crate) fn needs_passwd(&self) -> bool {
        self.chown
            .is_some_and(|c| c.split(':').any(|part| part.parse::<u64>().is_err()))
    }

    /// An ADD of URLs or git repositories (downloads or clones to key).
    pub(crate) fn fetches_remote(&self) -> bool {
        self.kind == FileKind::Add && self.srcs.iter().any(|s| is_remote(s))
    }
}

/// Executes a file step: its layer, from the `--link` cache when keyed so
/// and present there. Returns the layer and whether it came from the cache.
pub(crate) fn execute(
    env: &StepEnv<'_>,
    st: &StageState,
    f: &FileStep<'_>,
    key: &StepKey,
) -> Result<(LayerRef, bool), StepError> {
    let p = key
        .prepared
        .as_ref()
        .expect("a file step's key prepares it");
    let Some(link_key) = &key.link_key else {
        return write_layer(env, st, f, p);
    };
    let session = env.session;
    if !env.inputs.req.no_cache {
        if let Some(l) = session
            .cache_lookup(link_key)
            .and_then(|rec| rec.layers.into_iter().next())
        {
            return Ok((l, true));
        }
    }
    let (layer, _) = write_layer(env, st, f, p)?;
    let rec = StepRecord {
        config: crate::config::ImageConfigDoc::scratch(),
        layers: vec![layer.clone()],
        cmd_set: false,
    };
    session.cache_put(link_key, &rec);
    Ok((layer, false))
}

/// Writes the layer of a file step on the stage state `st`. With
/// `--link`, the step sees an empty filesystem (its layer does not depend
/// on the parent).
fn write_layer(
    env: &StepEnv<'_>,
    st: &StageState,
    f: &FileStep<'_>,
    p: &Prepared,
) -> Result<(LayerRef, bool), StepError> {
    let session = env.session;
    let (store, lease) = (session.store, session.lease);
    let tmp = |prefix| {
        session
            .temp_dir(prefix)
            .map_err(StepError::io("creating a temporary directory"))
    };
    let needs_passwd = f.needs_passwd();
    let empty;
    let stage_mount;
    let stage_root: &Path = if f.link && !needs_passwd {
        empty = tmp("empty")?;
        &empty.0
    } else {
        stage_mount = MountedRootfs::mount(store, &st.layers, &[], Some(lease))?;
        stage_mount.root()
    };
    let chown =
        match f.chown {
            None => None,
            Some(spec) => Some(crate::stage::resolve_chown(stage_root, spec).map_err(|e| {
                CopyError::Chown {
                    instruction: f.kind.name(),
                    spec: spec.to_string(),
                    source: e,
                }
            })?),
        };
    // Docker keeps owners only when copying from a stage or an image.
    let keep_owner = matches!(p.origin, Origin::Stage(_) | Origin::Image(_));
    let chmod = f
        .chmod
        .map(Chmod::parse)
        .transpose()
        .map_err(CopyError::from)?;
    let exclude = if f.exclude.is_empty() {
        None
    } else {
        Some(IgnoreMatcher::new(f.exclude).map_err(CopyError::Exclude)?)
    };
    let source_mount;
    let source = match &p.origin {
        Origin::Context => Source::Context(env.inputs.context),
        Origin::NamedDir(ctx) => Source::Context(ctx),
        Origin::Fetched(t) => Source::Rootfs(&t.0),
        Origin::Stage(i) => {
            let dep = env.dep(*i)?;
            source_mount = MountedRootfs::mount(store, &dep.layers, &[], Some(lease))?;
            Source::Rootfs(source_mount.root())
        }
        Origin::Image(name) => {
            let img = crate::images::load_image(store, name)?;
            lease.add_image(&img.id)?;
            source_mount = MountedRootfs::mount(store, &img.layers, &[], Some(lease))?;
            Source::Rootfs(source_mount.root())
        }
    };
    // --link: the parent is not consulted, so the destination's
    // directories are created (not taken from the parent).
    let link_root;
    let stage_root = if f.link && needs_passwd {
        link_root = tmp("empty")?;
        link_root.0.as_path()
    } else {
        stage_root
    };
    let mut layer = LayerBuilder::new(store.blobs(), layer_options(env.inputs.epoch()))?;
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
            instruction: f.kind.name(),
            extract_archives: p.extract,
            exclude: exclude.as_ref(),
            parents: f.parents,
            now: env.inputs.now_secs(),
        },
    )?;
    let info = layer.finish_leased(Some(lease))?;
    Ok((layer_ref(&info), false))
}
