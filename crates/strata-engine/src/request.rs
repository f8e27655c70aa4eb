//! What a build is asked for ([`BuildRequest`]) and what it produced
//! ([`BuildOutput`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use strata_oci::{Digest, Platform};

/// What to build.
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    /// The Dockerfile (default: CONTEXT/Dockerfile).
    pub dockerfile: Option<PathBuf>,
    /// The Dockerfile text, when given directly (then `dockerfile` only names it).
    pub dockerfile_text: Option<String>,
    /// The build context directory.
    pub context: PathBuf,
    /// `--build-arg K=V`.
    pub build_args: BTreeMap<String, String>,
    /// `--target`: the stage to build (default: the last).
    pub target: Option<String>,
    /// `--tag`: the names to tag the image with.
    pub tags: Vec<String>,
    /// `--no-cache`: execute every step.
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
    /// A file's content (`src=FILE`).
    File(PathBuf),
    /// An environment variable's value (`env=VAR`).
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
    /// Steps restored from the cache.
    pub cached: usize,
    /// Context files read and hashed (stat cache misses).
    pub files_hashed: u64,
    /// The cache keys of the target stage's steps (`--cache-to mode=min`).
    pub target_cache_keys: Vec<String>,
    /// The cache keys of every stage that ran (`--cache-to mode=max`).
    pub all_cache_keys: Vec<String>,
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
