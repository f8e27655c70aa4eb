//! COPY and ADD (typed as `def::FileStep`, told apart by `def::FileKind`):
//! their execution, the layer written from its prepared sources (see
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

use strata_frontend::IgnoreMatcher;
use strata_store::{LayerBuilder, LayerInfo, LayerOptions};

use super::copy_sources::{Origin, Prepared};
use super::def::FileStep;
use crate::cache::{CacheKey, LayerRef, StepRecord};
use crate::config::ConfigEditor as _;
use crate::copy::{copy_into_layer, resolve_chown, Chmod, CopyError, CopyParams, Source};
use crate::error::StepError;
use crate::mounts::MountedRootfs;
use crate::run_step::layer_options;
use crate::state::StageState;
use crate::step_env::StepEnv;

/// Executes a file step: its layer, from the `--link` cache when keyed so
/// and present there. Returns the layer and whether it came from the cache.
pub(crate) fn execute(
    env: &StepEnv<'_>,
    st: &StageState,
    f: &FileStep<'_>,
    p: &Prepared,
    link_key: Option<&CacheKey>,
    into_snapshot: bool,
) -> Result<(LayerRef, bool), StepError> {
    let Some(link_key) = link_key else {
        return Ok((write_layer(env, st, f, p, into_snapshot)?, false));
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
    let layer = write_layer(env, st, f, p, into_snapshot)?;
    let rec = StepRecord {
        config: crate::config::scratch(),
        layers: vec![layer.clone()],
        cmd_set: false,
    };
    session.cache_put(link_key, &rec);
    Ok((layer, false))
}

/// Writes the layer of a file step on the stage state `st`: applied into
/// its snapshot (`into_snapshot`, when the build mounts it later), else as
/// a blob. With `--link`, the step sees an empty filesystem (its layer does
/// not depend on the parent).
fn write_layer(
    env: &StepEnv<'_>,
    st: &StageState,
    f: &FileStep<'_>,
    p: &Prepared,
    into_snapshot: bool,
) -> Result<LayerRef, StepError> {
    let session = env.session;
    let (store, lease) = (session.store, session.lease);
    let tmp = |prefix| session.temp_dir(prefix).map_err(StepError::Fs);
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
    let chown = match f.chown {
        None => None,
        Some(spec) => Some(
            resolve_chown(stage_root, spec).map_err(|e| CopyError::Chown {
                instruction: f.kind.name(),
                spec: spec.to_string(),
                source: e,
            })?,
        ),
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
    let params = CopyParams {
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
    };
    let opts = layer_options(env.inputs.epoch());
    if into_snapshot {
        // Stored once: the entries are applied into the layer's snapshot
        // as they are written, as a RUN's upper dir is kept (times clamped
        // to SOURCE_DATE_EPOCH as they are written, so the files give the
        // tar). None: an entry the snapshot cannot hold as the layer has it
        // (an owner this user may not set): the blob below instead.
        if let Some(info) = write_into_snapshot(env, st, &source, stage_root, &params, &opts)? {
            return Ok(info.to_record());
        }
    }
    let mut layer = LayerBuilder::new(store.blobs(), opts)?;
    copy_into_layer(&mut layer, &source, stage_root, &params)?;
    let info = layer.finish_leased(Some(lease))?;
    Ok(info.to_record())
}

/// The layer of a file step applied into its snapshot on `st`'s layers, or
/// None when the snapshot cannot hold it (see `EntriesLayer::finish`).
fn write_into_snapshot(
    env: &StepEnv<'_>,
    st: &StageState,
    source: &Source<'_>,
    stage_root: &Path,
    params: &CopyParams<'_>,
    opts: &LayerOptions,
) -> Result<Option<LayerInfo>, StepError> {
    let (store, lease) = (env.session.store, env.session.lease);
    let mut layer = store.snapshotter().entries_layer(opts.clone())?;
    if let Err(e) = copy_into_layer(layer.builder(), source, stage_root, params) {
        return Err(match layer.apply_error() {
            Some(cause) => cause.into(),
            None => e.into(),
        });
    }
    let parents: Vec<_> = st.layers.iter().map(|l| l.diff_id.clone()).collect();
    Ok(layer.finish(store.snapshotter(), &parents, Some(lease))?)
}
