//! The build entry point: parse, plan, run the needed stages (independent
//! ones in parallel) once per target platform, commit the target stage as
//! an image, tag it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use strata_frontend::{BuildOptions, IgnoreMatcher};
use strata_oci::{Digest, Platform};
use strata_runtime::Executor;
use strata_store::Store;

use crate::config::ConfigEditor as _;
use crate::context::{BuildContext, Ignore};
use crate::events::{Event, EventKind, EventSink};
use crate::inputs::BuildInputs;
use crate::network::{BuildNetwork, NetworkError, NetworkMode};
use crate::pass::Pass;
use crate::resolve::ImageResolver;
use crate::scheduler::{default_parallelism, run_dag, Cancel};
use crate::session::Session;
use crate::solve::StepCache;
use crate::state::{stage_label, StageState};

// The paths these had before the request and error types got their own
// modules (`strata_engine::build::BuildRequest`...).
pub use crate::error::BuildError;
pub use crate::request::{
    default_dockerfile, BuildOutput, BuildRequest, NamedContext, SecretSource,
};
pub use crate::tempdir::TempDir;

struct FrontendIgnore(IgnoreMatcher);

impl Ignore for FrontendIgnore {
    fn ignored(&self, rel: &str) -> bool {
        self.0.matches(rel).unwrap_or(false)
    }
    fn can_skip_dir(&self, rel_dir: &str) -> bool {
        self.0.can_skip_dir(rel_dir)
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Builds an image. Events go to `events` (from several threads).
pub fn build(
    store: &Store,
    executor: &(dyn Executor + Sync),
    req: &BuildRequest,
    events: EventSink<'_>,
) -> Result<BuildOutput, BuildError> {
    // SOURCE_DATE_EPOCH decided once, from the build args and the caller's environment.
    let req = crate::epoch::resolve(req)?;
    let req: &BuildRequest = &req;
    let (dockerfile, ast) = parse_dockerfile(req)?;
    if req.network == NetworkMode::Host && !req.allow_network_host {
        return Err(NetworkError::HostDenied {
            what: "--network host",
        }
        .into());
    }
    let context = open_context(store, req, &dockerfile)?;
    let lease = store.lease("build")?;
    let images = ImageResolver::new(store, &lease, req.pull, req.registry.clone());
    let named = resolve_named(store, req, &lease, &images, events)?;
    let init = crate::tempdir::TempDir::new(store, "init").map_err(BuildError::TempDir)?;
    strata_runtime::write_init_layer(&init.0)?;
    let network = BuildNetwork::default();
    let inputs = BuildInputs {
        req,
        context: &context,
        named: &named,
        init_layer: &init.0,
        network: &network,
    };
    let platforms = target_platforms(req);
    // One pass per platform, in order: stages that do not depend on the
    // target platform (e.g. `FROM --platform=$BUILDPLATFORM` without
    // TARGET* args) get the same cache keys, so later passes reuse them.
    let mut outputs = Vec::new();
    let mut result = Ok(());
    for p in &platforms {
        let session = Session {
            store,
            executor,
            events,
            images: &images,
            lease: &lease,
            cancel: Cancel::new(),
        };
        match build_platform(&session, &inputs, &ast, p, platforms.len() > 1) {
            Ok(o) => outputs.push(o),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    // The stat cache is saved whatever the outcome (what was hashed stays
    // hashed).
    context.save();
    result?;
    let (index, tags) = tag_outputs(store, req, &outputs, &lease)?;
    let first = &outputs[0];
    events(Event::now(EventKind::BuildDone {
        image_id: index
            .as_ref()
            .map(|(d, _)| d.to_string())
            .unwrap_or_else(|| first.image_id.to_string()),
        tags: tags.clone(),
        network_namespaces: network.created(),
    }));
    Ok(build_output(&outputs, index, tags, context.files_hashed()))
}

/// Reads (unless given as text) and parses the Dockerfile. Returns its
/// path and its syntax tree.
fn parse_dockerfile(req: &BuildRequest) -> Result<(PathBuf, strata_frontend::Ast), BuildError> {
    let dockerfile = req
        .dockerfile
        .clone()
        .unwrap_or_else(|| default_dockerfile(&req.context));
    let name = dockerfile
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "Dockerfile".into());
    let file = match &req.dockerfile_text {
        Some(text) => crate::dockerfile::Dockerfile {
            name,
            text: text.clone(),
        },
        None => crate::dockerfile::Dockerfile::read(&dockerfile, name).map_err(|source| {
            BuildError::ReadDockerfile {
                path: dockerfile.clone(),
                source,
            }
        })?,
    };
    let ast = file.parse()?;
    Ok((dockerfile, ast))
}

/// The build context with its `.dockerignore` (beside the Dockerfile or
/// in the context) and the store's stat cache.
fn open_context(
    store: &Store,
    req: &BuildRequest,
    dockerfile: &Path,
) -> Result<BuildContext, BuildError> {
    let patterns = strata_frontend::ignore::load(dockerfile, &req.context)?;
    let matcher = IgnoreMatcher::new(&patterns)?;
    Ok(BuildContext::open(
        &req.context,
        Box::new(FrontendIgnore(matcher)),
        Some(&store.root().join("cache/context")),
    )?)
}

/// Every `--build-context NAME=...`, resolved once for the build (by
/// lower-case name).
fn resolve_named(
    store: &Store,
    req: &BuildRequest,
    lease: &strata_store::Lease,
    images: &ImageResolver<'_>,
    events: EventSink<'_>,
) -> Result<BTreeMap<String, crate::named::Named>, BuildError> {
    let mut named = BTreeMap::new();
    for (name, c) in &req.build_contexts {
        let n = crate::named::resolve(store, c, lease, images, events).map_err(|source| {
            BuildError::NamedContext {
                name: name.clone(),
                source: Box::new(source),
            }
        })?;
        named.insert(name.to_ascii_lowercase(), n);
    }
    Ok(named)
}

/// The build's result from its passes' (the first platform's image).
fn build_output(
    outputs: &[PlatformOutput],
    index: Index,
    tags: Vec<String>,
    files_hashed: u64,
) -> BuildOutput {
    let first = &outputs[0];
    BuildOutput {
        target_cache_keys: outputs
            .iter()
            .flat_map(|o| o.target_cache_keys.clone())
            .collect(),
        all_cache_keys: outputs
            .iter()
            .flat_map(|o| o.all_cache_keys.clone())
            .collect(),
        image_id: first.image_id.clone(),
        manifest_digest: index
            .as_ref()
            .map(|(d, _)| d.clone())
            .unwrap_or_else(|| first.manifest_digest.clone()),
        index,
        tags,
        executed: outputs.iter().map(|o| o.executed).sum(),
        cached: outputs.iter().map(|o| o.cached).sum(),
        files_hashed,
    }
}

/// The platforms asked for, normalized and without repeats; the host's
/// when none is.
fn target_platforms(req: &BuildRequest) -> Vec<Platform> {
    let mut platforms: Vec<Platform> = Vec::new();
    for p in &req.platforms {
        let p = p.normalized();
        if !platforms.iter().any(|q| q.matches(&p)) {
            platforms.push(p);
        }
    }
    if platforms.is_empty() {
        platforms.push(Platform::host());
    }
    platforms
}

/// A multi-platform index with each platform's image.
type Index = Option<(Digest, Vec<(Platform, Digest)>)>;

/// Tags the result: the image, or for several platforms an index of them.
/// Returns the index and the full references tagged.
fn tag_outputs(
    store: &Store,
    req: &BuildRequest,
    outputs: &[PlatformOutput],
    lease: &strata_store::Lease,
) -> Result<(Index, Vec<String>), BuildError> {
    if outputs.len() == 1 {
        let tags = crate::images::tag_image(store, &outputs[0].image_id, &req.tags)?;
        return Ok((None, tags));
    }
    let entries: Vec<strata_store::transfer::IndexEntry> = outputs
        .iter()
        .map(|o| strata_store::transfer::IndexEntry {
            platform: o.platform.clone(),
            image: o.image_id.clone(),
        })
        .collect();
    // The index blob, leased like the images until tagged.
    let (digest, _) = strata_store::transfer::write_index(store, &entries, Some(lease))?;
    for t in &req.tags {
        let full = crate::images::normalize(t)?;
        strata_store::transfer::tag_index(store, &full, &entries, Some(lease))?;
    }
    let images = outputs
        .iter()
        .map(|o| (o.platform.clone(), o.image_id.clone()))
        .collect();
    let tags = req
        .tags
        .iter()
        .map(|t| crate::images::normalize(t))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((Some((digest, images)), tags))
}

/// One platform's pass.
struct PlatformOutput {
    platform: Platform,
    image_id: Digest,
    manifest_digest: Digest,
    target_cache_keys: Vec<String>,
    all_cache_keys: Vec<String>,
    executed: usize,
    cached: usize,
}

fn build_platform(
    session: &Session<'_>,
    inputs: &BuildInputs<'_>,
    ast: &strata_frontend::Ast,
    platform: &Platform,
    multi_platform: bool,
) -> Result<PlatformOutput, BuildError> {
    let req = inputs.req;
    let opts = BuildOptions {
        build_args: req.build_args.clone(),
        target: req.target.clone(),
        target_platform: platform.to_string(),
        build_platform: Platform::host().to_string(),
    };
    let plan = strata_frontend::plan(ast, &opts)?;
    let order = plan.build_order();
    let mut step_numbers = BTreeMap::new();
    let mut n = 1;
    for &i in &order {
        step_numbers.insert(i, n);
        n += plan.stages[i].steps.len() + 1;
    }
    for s in plan.stages.iter().filter(|s| !s.needed) {
        session.emit(EventKind::StageSkipped {
            stage: stage_label(s),
        });
    }
    let mut cache_from = Vec::new();
    for id in &req.cache_from_images {
        let _ = session.lease.add_image(id);
        cache_from.push(crate::images::load_image(session.store, &id.to_string())?);
    }
    let pass = Pass {
        session,
        inputs,
        plan: &plan,
        platform: platform.clone(),
        multi_platform,
        step_numbers,
        cache: StepCache {
            no_cache: req.no_cache,
            cache_from,
            ..Default::default()
        },
        why_scope: crate::miss_record::why_scope(req),
    };
    let deps: BTreeMap<usize, Vec<usize>> = order
        .iter()
        .map(|&i| (i, plan.stages[i].depends_on.clone()))
        .collect();
    let parallelism = req.parallelism.unwrap_or_else(default_parallelism);
    let result = run_dag(&order, &deps, parallelism, &session.cancel, |i, inputs| {
        pass.run_stage(i, inputs)
    });
    let states: BTreeMap<usize, StageState> = match result {
        Ok(s) => s,
        Err(e) => {
            if !matches!(e, BuildError::Step { .. }) {
                session.emit(EventKind::Error {
                    step: None,
                    message: crate::error::chain(&e),
                });
            }
            return Err(e);
        }
    };
    let (image_id, manifest_digest) = commit_target(&pass, &states)?;
    crate::explain::record::save_for_build(&pass, &states, &image_id);
    let cache = pass.cache;
    let stage_keys = cache
        .stage_keys
        .into_inner()
        .unwrap_or_else(|p| p.into_inner());
    let keys_of = |list: &Vec<crate::cache::CacheKey>| -> Vec<String> {
        list.iter().map(|k| k.as_str().to_string()).collect()
    };
    Ok(PlatformOutput {
        platform: platform.clone(),
        target_cache_keys: stage_keys
            .get(&plan.target)
            .map(keys_of)
            .unwrap_or_default(),
        all_cache_keys: stage_keys.values().flat_map(keys_of).collect(),
        image_id,
        manifest_digest,
        executed: cache.executed.load(Ordering::Relaxed),
        cached: cache.cached.load(Ordering::Relaxed),
    })
}

/// Commits the target stage as an image (with `--label`s, annotations and
/// SOURCE_DATE_EPOCH's time). Returns its ID and manifest digest.
fn commit_target(
    pass: &Pass<'_>,
    states: &BTreeMap<usize, StageState>,
) -> Result<(Digest, Digest), BuildError> {
    let req = pass.inputs.req;
    let target = states
        .get(&pass.plan.target)
        .ok_or(BuildError::TargetNotBuilt)?;
    let mut config = target.config.clone();
    if let Some(t) = req.source_date_epoch {
        config.created = Some(strata_oci::rfc3339_unix(t));
    }
    if !req.labels.is_empty() {
        let pairs: Vec<(String, String)> = req
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        config.add_labels(&pairs);
    }
    Ok(crate::images::commit_image_annotated(
        pass.session.store,
        &config,
        &target.layers,
        Some(pass.session.lease),
        &req.annotations,
    )?)
}
