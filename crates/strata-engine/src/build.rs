//! The build entry point: parse, plan, run the needed stages (independent
//! ones in parallel), commit the target stage as an image, tag it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use strata_frontend::{BuildOptions, IgnoreMatcher, Plan};
use strata_oci::{Digest, Platform};
use strata_runtime::Executor;
use strata_store::{Lease, Store};

use crate::config::ConfigEditor as _;
use crate::context::{BuildContext, Ignore};
use crate::events::{Event, EventKind, EventSink};
use crate::scheduler::{default_parallelism, run_dag, Cancel};
use crate::stage::{stage_label, StageState};

/// What to build.
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    /// The Dockerfile (default: CONTEXT/Dockerfile).
    pub dockerfile: Option<PathBuf>,
    /// The Dockerfile text, when given directly (then `dockerfile` only names it).
    pub dockerfile_text: Option<String>,
    pub context: PathBuf,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub tags: Vec<String>,
    pub no_cache: bool,
    /// Stages run at once (default: available parallelism).
    pub parallelism: Option<usize>,
    /// `--secret id=ID,src=FILE|env=VAR`: what `RUN --mount=type=secret` reads.
    pub secrets: BTreeMap<String, SecretSource>,
    /// `--ssh ID=SOCKET` (`default` = $SSH_AUTH_SOCK): agent sockets for
    /// `RUN --mount=type=ssh`.
    pub ssh: BTreeMap<String, PathBuf>,
    /// `--build-context NAME=...`: replaces the image or stage NAME in FROM
    /// and `COPY --from`.
    pub build_contexts: BTreeMap<String, NamedContext>,
    /// SOURCE_DATE_EPOCH: clamps file times in new layers and sets the
    /// config's and history's times (reproducible images).
    pub source_date_epoch: Option<i64>,
    /// The caller's environment value of SOURCE_DATE_EPOCH, used when
    /// `source_date_epoch` is unset and no build arg names it (see
    /// [`crate::epoch`]).
    pub source_date_epoch_env: Option<String>,
    /// When base images are pulled (missing only, or always with `--pull`).
    pub pull: crate::resolve::PullPolicy,
    /// How to reach registries (insecure hosts, credentials, platform).
    pub registry: strata_registry::PullOptions,
    /// `--label K=V`: added to the image config's labels (they win over
    /// the Dockerfile's LABELs, as Docker's).
    pub labels: BTreeMap<String, String>,
    /// `--annotation K=V`: the image manifest's annotations.
    pub annotations: BTreeMap<String, String>,
    /// `--add-host`, `--shm-size`, `--ulimit`: applied to every RUN.
    pub run_extra: strata_runtime::ContainerExtras,
    /// `--cache-from NAME` where NAME is a local image: its layers are
    /// reused for steps whose history and parent chain match.
    pub cache_from_images: Vec<Digest>,
    /// The network of RUN steps without `--network` (`strata build
    /// --network`); see [`crate::network`].
    pub network: crate::NetworkMode,
    /// `--allow network.host`: RUN steps may use the host's network.
    pub allow_network_host: bool,
    /// `--platform`: the target platforms (empty = the host's). Several
    /// give one image per platform, tagged together as an index.
    pub platforms: Vec<Platform>,
}

/// Where a secret's value comes from. The value is read when a RUN needs
/// it and only ever written to a private tmpfs file outside the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    File(PathBuf),
    Env(String),
}

/// A named build context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedContext {
    /// A local directory (`NAME=DIR`).
    Dir(PathBuf),
    /// An image in the store (`docker-image://REF`).
    Image(String),
    /// An OCI image layout directory (`oci-layout://PATH[:TAG|@DIGEST]`),
    /// loaded into the store.
    OciLayout(PathBuf, Option<String>),
}

/// What a build produced.
#[derive(Debug, Clone)]
pub struct BuildOutput {
    /// The image (of the first platform, for a multi-platform build).
    pub image_id: Digest,
    /// The digest of the image's manifest (of the index, for several
    /// platforms).
    pub manifest_digest: Digest,
    /// A multi-platform build: the index digest and each platform's image.
    pub index: Option<(Digest, Vec<(Platform, Digest)>)>,
    /// Full references tagged.
    pub tags: Vec<String>,
    /// Steps executed / restored from the cache.
    pub executed: usize,
    pub cached: usize,
    /// Context files read and hashed (stat cache misses).
    pub files_hashed: u64,
    /// The cache keys of the target stage's steps (`--cache-to mode=min`).
    pub target_cache_keys: Vec<String>,
    /// The cache keys of every stage that ran (`--cache-to mode=max`).
    pub all_cache_keys: Vec<String>,
}

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The Dockerfile could not be read, parsed or planned.
    #[error("{0}")]
    Dockerfile(String),
    /// A step failed.
    #[error("{location}: [{stage}] {instruction}: {message}")]
    Step {
        location: String,
        stage: String,
        instruction: String,
        message: String,
        /// RUN's exit code.
        exit_code: Option<i32>,
    },
    #[error("{0}")]
    Other(String),
    #[error("build cancelled")]
    Cancelled,
}

#[derive(Default)]
pub(crate) struct Stats {
    pub executed: AtomicUsize,
    pub cached: AtomicUsize,
}

/// Shared state of one build (read by every stage thread).
pub(crate) struct Builder<'a> {
    pub store: &'a Store,
    pub executor: &'a (dyn Executor + Sync),
    pub plan: &'a Plan,
    pub context: &'a BuildContext,
    /// The platform this pass builds for (`TARGETPLATFORM`); a stage's
    /// `FROM --platform` overrides it for that stage.
    pub platform: Platform,
    /// Several target platforms: progress and errors name each stage's.
    pub multi_platform: bool,
    pub events: EventSink<'a>,
    pub no_cache: bool,
    pub lease: &'a Lease,
    pub init_layer: PathBuf,
    pub step_numbers: BTreeMap<usize, usize>,
    pub cancel: Cancel,
    pub stats: Stats,
    pub req: &'a BuildRequest,
    /// Named contexts resolved to image IDs or directories.
    pub named: BTreeMap<String, crate::named::Named>,
    /// Image names to image IDs (pulling what is missing).
    pub images: &'a crate::resolve::ImageResolver<'a>,
    /// `--cache-from` local images (see `image_cache`).
    pub cache_from: Vec<crate::images::BaseImage>,
    /// Cache keys of each stage's steps, in order (for `--cache-to`).
    pub stage_keys: std::sync::Mutex<BTreeMap<usize, Vec<crate::cache::CacheKey>>>,
    /// The RUN steps' private network, created by the first RUN that
    /// executes; torn down when the build ends (it is shared by every
    /// platform's pass).
    pub network: &'a crate::network::BuildNetwork,
}

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

/// A directory in the store's `ROOT/tmp`, locked by this process while it
/// lives (so GC and `check --repair` leave it alone however long the step
/// runs) and removed on drop. `.0` is its path.
pub struct TempDir(pub PathBuf, #[allow(dead_code)] strata_store::TempDir);

impl TempDir {
    /// A new empty directory under the store's tmp; `prefix` has no `-`.
    pub fn new(store: &Store, prefix: &str) -> std::io::Result<TempDir> {
        let t = store.temp_dir(prefix).map_err(std::io::Error::other)?;
        Ok(TempDir(t.path().to_path_buf(), t))
    }
}

fn other(e: impl std::fmt::Display) -> BuildError {
    BuildError::Other(e.to_string())
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
    let dockerfile = req
        .dockerfile
        .clone()
        .unwrap_or_else(|| default_dockerfile(&req.context));
    let file_name = dockerfile
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "Dockerfile".into());
    let df = match &req.dockerfile_text {
        Some(t) => crate::dockerfile::Dockerfile {
            name: file_name,
            text: t.clone(),
        },
        None => crate::dockerfile::Dockerfile::read(&dockerfile, file_name).map_err(|e| {
            BuildError::Dockerfile(format!(
                "cannot read the Dockerfile {}: {e}",
                dockerfile.display()
            ))
        })?,
    };
    let ast = df
        .parse()
        .map_err(|e| BuildError::Dockerfile(e.to_string()))?;
    if req.network == crate::NetworkMode::Host && !req.allow_network_host {
        return Err(BuildError::Other(crate::network::host_network_denied(
            "--network host",
        )));
    }
    let patterns = strata_frontend::ignore::load(&dockerfile, &req.context)
        .map_err(|e| BuildError::Dockerfile(e.to_string()))?;
    let matcher =
        IgnoreMatcher::new(&patterns).map_err(|e| BuildError::Dockerfile(e.to_string()))?;
    let context = BuildContext::open(
        &req.context,
        Box::new(FrontendIgnore(matcher)),
        Some(&store.root().join("cache/context")),
    )
    .map_err(other)?;

    let lease = store.lease("build").map_err(other)?;
    let images = crate::resolve::ImageResolver::new(store, &lease, req.pull, req.registry.clone());
    let named = crate::named::resolve_all(store, &req.build_contexts, &lease, &images, events)?;
    let init = TempDir::new(store, "init").map_err(other)?;
    strata_runtime::write_init_layer(&init.0).map_err(other)?;

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
    let shared = Shared {
        ast: &ast,
        context: &context,
        lease: &lease,
        images: &images,
        named,
        init_layer: init.0.clone(),
        multi_platform: platforms.len() > 1,
        network: Default::default(),
    };
    // One pass per platform, in order: stages that do not depend on the
    // target platform (e.g. `FROM --platform=$BUILDPLATFORM` without
    // TARGET* args) get the same cache keys, so later passes reuse them.
    let mut outputs = Vec::new();
    let mut result = Ok(());
    for p in &platforms {
        match build_platform(store, executor, req, events, &shared, p) {
            Ok(o) => outputs.push(o),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    context.save();
    result?;
    let multi = platforms.len() > 1;
    let index = if multi {
        let entries: Vec<strata_store::transfer::IndexEntry> = outputs
            .iter()
            .map(|o| strata_store::transfer::IndexEntry {
                platform: o.platform.clone(),
                image: o.image_id.clone(),
            })
            .collect();
        // The index blob, leased like the images until tagged.
        let (digest, _) =
            strata_store::transfer::write_index(store, &entries, Some(&lease)).map_err(other)?;
        for t in &req.tags {
            let full = crate::images::normalize(t).map_err(other)?;
            strata_store::transfer::tag_index(store, &full, &entries, Some(&lease))
                .map_err(other)?;
        }
        Some((
            digest,
            outputs
                .iter()
                .map(|o| (o.platform.clone(), o.image_id.clone()))
                .collect(),
        ))
    } else {
        None
    };
    let tags = if multi {
        req.tags
            .iter()
            .map(|t| crate::images::normalize(t).map_err(other))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        crate::images::tag_image(store, &outputs[0].image_id, &req.tags).map_err(other)?
    };
    let first = &outputs[0];
    events(Event::now(EventKind::BuildDone {
        image_id: index
            .as_ref()
            .map(|(d, _)| d.to_string())
            .unwrap_or_else(|| first.image_id.to_string()),
        tags: tags.clone(),
        network_namespaces: shared.network.created(),
    }));
    Ok(BuildOutput {
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
        files_hashed: context.files_hashed(),
    })
}

/// What every platform's pass of one build shares.
struct Shared<'a> {
    ast: &'a strata_frontend::Ast,
    context: &'a BuildContext,
    lease: &'a Lease,
    images: &'a crate::resolve::ImageResolver<'a>,
    named: BTreeMap<String, crate::named::Named>,
    init_layer: PathBuf,
    multi_platform: bool,
    /// The RUN steps' private network: one per build, whatever the number
    /// of platforms (created by the first RUN that executes).
    network: crate::network::BuildNetwork,
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
    store: &Store,
    executor: &(dyn Executor + Sync),
    req: &BuildRequest,
    events: EventSink<'_>,
    shared: &Shared<'_>,
    platform: &Platform,
) -> Result<PlatformOutput, BuildError> {
    let opts = BuildOptions {
        build_args: req.build_args.clone(),
        target: req.target.clone(),
        target_platform: platform.to_string(),
        build_platform: Platform::host().to_string(),
    };
    let plan = strata_frontend::plan(shared.ast, &opts)
        .map_err(|e| BuildError::Dockerfile(e.to_string()))?;

    let order = plan.build_order();
    let mut step_numbers = BTreeMap::new();
    let mut n = 1;
    for &i in &order {
        step_numbers.insert(i, n);
        n += plan.stages[i].steps.len() + 1;
    }
    for s in plan.stages.iter().filter(|s| !s.needed) {
        events(Event::now(EventKind::StageSkipped {
            stage: stage_label(s),
        }));
    }
    let mut cache_from = Vec::new();
    for id in &req.cache_from_images {
        let _ = shared.lease.add_image(id);
        let img = crate::images::load_image(store, &id.to_string()).map_err(other)?;
        cache_from.push(img);
    }
    let builder = Builder {
        store,
        executor,
        plan: &plan,
        context: shared.context,
        platform: platform.clone(),
        multi_platform: shared.multi_platform,
        events,
        no_cache: req.no_cache,
        lease: shared.lease,
        init_layer: shared.init_layer.clone(),
        step_numbers,
        cancel: Cancel::new(),
        stats: Stats::default(),
        req,
        named: shared.named.clone(),
        images: shared.images,
        cache_from,
        stage_keys: Default::default(),
        network: &shared.network,
    };
    let deps: BTreeMap<usize, Vec<usize>> = order
        .iter()
        .map(|&i| (i, plan.stages[i].depends_on.clone()))
        .collect();
    let parallelism = req.parallelism.unwrap_or_else(default_parallelism);
    let result = run_dag(&order, &deps, parallelism, &builder.cancel, |i, inputs| {
        builder.run_stage(i, inputs)
    });
    let states: BTreeMap<usize, StageState> = match result {
        Ok(s) => s,
        Err(e) => {
            if !matches!(e, BuildError::Step { .. }) {
                events(Event::now(EventKind::Error {
                    step: None,
                    message: e.to_string(),
                }));
            }
            return Err(e);
        }
    };
    let target = states
        .get(&plan.target)
        .ok_or_else(|| other("the target stage was not built"))?;
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
    let (image_id, manifest_digest) = crate::images::commit_image_annotated(
        store,
        &config,
        &target.layers,
        Some(shared.lease),
        &req.annotations,
    )
    .map_err(other)?;
    crate::explain::record::save_for_build(&builder, &states, &image_id);
    let stage_keys = builder
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
        executed: builder.stats.executed.load(Ordering::Relaxed),
        cached: builder.stats.cached.load(Ordering::Relaxed),
    })
}

/// The default Dockerfile path for a context: `Dockerfile`, else a
/// lower-case `dockerfile` when only that exists (as BuildKit's dockerui
/// does); `Dockerfile` again when neither exists, for the error message.
pub fn default_dockerfile(context: &Path) -> PathBuf {
    let upper = context.join("Dockerfile");
    if upper.exists() {
        return upper;
    }
    let lower = context.join("dockerfile");
    if lower.is_file() {
        return lower;
    }
    upper
}
