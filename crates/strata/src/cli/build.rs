//! `strata build`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context as _;
use strata_engine::cache_io::{self, CacheSpec};
use strata_engine::{BuildRequest, NamedContext, SecretSource};
use strata_runtime::Runc;
use strata_store::Store;

use super::Global;

#[path = "progress.rs"]
mod progress;

#[path = "build_habits.rs"]
mod habits;

#[derive(clap::Args, Debug)]
pub(crate) struct BuildArgs {
    /// Name and optionally a tag (name:tag); may be repeated
    #[arg(short = 't', long = "tag")]
    pub tags: Vec<String>,
    /// Name of the Dockerfile (default: CONTEXT/Dockerfile)
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// Set the target build stage
    #[arg(long)]
    pub target: Option<String>,
    /// Set build-time variables (K=V, or K to take it from the environment)
    #[arg(long = "build-arg")]
    pub build_args: Vec<String>,
    /// Do not use the cache
    #[arg(long)]
    pub no_cache: bool,
    /// Progress output: auto, plain, tty, rawjson
    #[arg(long, default_value = "auto")]
    pub progress: String,
    /// Print only the image ID
    #[arg(short, long)]
    pub quiet: bool,
    /// Print the plan and stop
    #[arg(long)]
    pub dry_run: bool,
    /// Run the build checks only (no build); non-zero exit on errors or with # check=error=true
    #[arg(long)]
    pub check: bool,
    /// Secret for RUN --mount=type=secret: id=ID,src=FILE or id=ID,env=VAR
    #[arg(long = "secret")]
    pub secrets: Vec<String>,
    /// SSH agent for RUN --mount=type=ssh: default (SSH_AUTH_SOCK) or ID=SOCKET
    #[arg(long = "ssh")]
    pub ssh: Vec<String>,
    /// Named context: NAME=DIR, NAME=docker-image://REF, NAME=oci-layout://PATH
    #[arg(long = "build-context")]
    pub build_contexts: Vec<String>,
    /// Output: type=local,dest=DIR | type=tar,dest=FILE | type=oci,dest=FILE | type=docker,dest=FILE
    #[arg(short = 'o', long = "output")]
    pub outputs: Vec<String>,
    /// Always pull the base images (re-resolve their tags) instead of using the store's copies
    #[arg(long)]
    pub pull: bool,
    /// Registry (HOST:PORT) spoken to over plain http for base images and caches
    #[arg(long = "insecure-registry", value_name = "HOST:PORT")]
    pub insecure_registry: Vec<String>,
    /// Export the build cache: type=registry,ref=REF | type=local,dest=DIR [,mode=min|max]
    #[arg(long = "cache-to")]
    pub cache_to: Vec<String>,
    /// Import a build cache: type=registry,ref=REF | type=local,src=DIR | NAME of a local image (its layers reused for matching RUN steps)
    #[arg(long = "cache-from")]
    pub cache_from: Vec<String>,
    /// After the build, print why each step that ran missed the cache (one line per step)
    #[arg(long)]
    pub why_miss: bool,
    /// Set metadata (a label) on the image: K=V; may be repeated
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Add an annotation to the image manifest: [manifest:]K=V; may be repeated
    #[arg(long = "annotation")]
    pub annotations: Vec<String>,
    /// Write the image ID to the file
    #[arg(long)]
    pub iidfile: Option<PathBuf>,
    /// Write the build result metadata (buildx's JSON keys) to the file
    #[arg(long = "metadata-file")]
    pub metadata_file: Option<PathBuf>,
    /// Add a custom host-to-IP mapping for RUN (HOST:IP)
    #[arg(long = "add-host")]
    pub add_hosts: Vec<String>,
    /// Size of /dev/shm for RUN (e.g. 128m)
    #[arg(long = "shm-size")]
    pub shm_size: Option<String>,
    /// Ulimit options for RUN (NAME=SOFT[:HARD])
    #[arg(long = "ulimit")]
    pub ulimits: Vec<String>,
    /// Subrequest instead of a build: build (default), check, outline, targets
    #[arg(long = "call")]
    pub call: Option<String>,
    /// Network of RUN steps: default (a private network with outbound access, one per
    /// build), none, or host (needs --allow network.host)
    #[arg(long, default_value = "default", value_name = "default|none|host")]
    pub network: String,
    /// Extra privileges: network.host (RUN --network=host and --network host)
    #[arg(long = "allow", value_name = "ENTITLEMENT")]
    pub allow: Vec<String>,
    /// Target platforms, comma-separated or repeated: linux/amd64,linux/arm64 (default: the host's)
    #[arg(long = "platform", value_delimiter = ',')]
    pub platforms: Vec<String>,
    /// Build context: a directory, `-` (a tar or a Dockerfile on stdin), a git URL or an http(s) tarball URL
    pub context: PathBuf,
}

pub(crate) fn run(g: &Global, mut a: BuildArgs) -> anyhow::Result<u8> {
    // Docker's habits: names checked and inputs prepared before anything runs.
    habits::validate_tags(&a.tags)?;
    let _inputs = habits::prepare_inputs(g, &mut a)?;
    if let Some(code) = habits::call(g, &a)? {
        return Ok(code);
    }
    let labels = habits::key_values("--label", &a.labels)?;
    let annotations = habits::annotations(&a.annotations)?;
    let run_extra = habits::run_extra(&a)?;
    if a.dry_run {
        return super::dryrun::run(g, &a);
    }
    if a.check {
        return super::check::run_for_build(g, &a);
    }
    let mode = progress::Mode::parse(&a.progress, a.quiet)?;
    let dockerfile_text =
        super::check::warn_before_build(g, &a, matches!(mode, progress::Mode::Quiet))?;
    let build_args = parse_build_args(&a.build_args);
    // SOURCE_DATE_EPOCH: the engine decides (a build arg wins over the
    // environment); checked here so a bad value stops before anything runs.
    let source_date_epoch_env = std::env::var("SOURCE_DATE_EPOCH").ok();
    strata_engine::epoch::source_date_epoch(&build_args, source_date_epoch_env.as_deref())?;
    let outputs = a
        .outputs
        .iter()
        .map(|o| strata_engine::output::OutputSpec::parse(o).map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let cache_to = a
        .cache_to
        .iter()
        .map(|s| CacheSpec::parse("--cache-to", s))
        .collect::<Result<Vec<_>, _>>()?;
    let (cache_from_images, cache_from_specs) = habits::split_cache_from(g, &a.cache_from)?;
    let cache_from = cache_from_specs
        .iter()
        .map(|s| CacheSpec::parse("--cache-from", s))
        .collect::<Result<Vec<_>, _>>()?;
    let network = strata_engine::NetworkMode::parse(&a.network)
        .map_err(|e| anyhow::anyhow!("--network: {e}"))?;
    let mut allow_network_host = false;
    for e in a.allow.iter().flat_map(|s| s.split(',')) {
        match e.trim() {
            "network.host" => allow_network_host = true,
            "security.insecure" => {
                anyhow::bail!("--allow security.insecure is not supported by strata")
            }
            other => anyhow::bail!("--allow {other:?}: unknown entitlement (use network.host)"),
        }
    }
    if network == strata_engine::NetworkMode::Host && !allow_network_host {
        anyhow::bail!(
            "{}",
            strata_engine::network::host_network_denied("--network host")
        );
    }
    let client = super::registry::client_options(&a.insecure_registry);
    let store = Store::open(&g.store_root())
        .with_context(|| format!("opening the store at {}", g.store_root().display()))?;
    // The reaper kills the build's RUN containers if strata is killed.
    let runc = Runc::locate()?.with_reaper(true);
    let quiet = matches!(mode, progress::Mode::Quiet | progress::Mode::RawJson);
    import_caches(&store, &cache_from, &client, quiet);
    let req = BuildRequest {
        dockerfile: a.file.clone(),
        dockerfile_text,
        context: a.context.clone(),
        build_args,
        target: a.target.clone(),
        tags: a.tags.clone(),
        no_cache: a.no_cache,
        parallelism: None,
        secrets: parse_secrets(&a.secrets)?,
        ssh: parse_ssh(&a.ssh)?,
        build_contexts: parse_contexts(&a.build_contexts)?,
        source_date_epoch: None,
        source_date_epoch_env,
        pull: if a.pull {
            strata_engine::PullPolicy::Always
        } else {
            strata_engine::PullPolicy::Missing
        },
        registry: strata_engine::PullOptions {
            client: client.clone(),
            ..Default::default()
        },
        labels,
        annotations,
        run_extra,
        cache_from_images,
        network,
        allow_network_host,
        platforms: a
            .platforms
            .iter()
            .filter(|p| !p.trim().is_empty())
            .map(|p| strata_oci::Platform::parse(p).map_err(|e| anyhow::anyhow!("--platform: {e}")))
            .collect::<anyhow::Result<Vec<_>>>()?,
    };
    let renderer = progress::Renderer::new(mode);
    let sink = |ev: strata_engine::Event| renderer.handle(ev);
    let result = strata_engine::build(&store, &runc, &req, &sink);
    renderer.finish();
    if a.why_miss {
        print_why_miss(&renderer.misses(), a.no_cache);
    }
    match result {
        Ok(out) => {
            export_caches(&store, &cache_to, &out, &client, quiet)?;
            habits::write_result_files(&store, &a, &out)?;
            cache_io::write_outputs(&store, &out, &outputs)
                .map_err(|e| anyhow::Error::new(e).context("--output"))?;
            match mode {
                progress::Mode::Quiet => match &out.index {
                    Some((d, _)) => println!("{d}"),
                    None => println!("{}", out.image_id),
                },
                progress::Mode::RawJson => {}
                _ => {
                    let mut line = match &out.index {
                        Some((d, images)) => format!(
                            "built index {d} ({})",
                            images
                                .iter()
                                .map(|(p, id)| format!("{p}: {id}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        None => format!("built image {}", out.image_id),
                    };
                    if !out.tags.is_empty() {
                        line.push_str(&format!(", tagged {}", out.tags.join(", ")));
                    }
                    eprintln!("{line}");
                    if let Some(summary) = super::explain::build_summary(&store, &out.image_id) {
                        eprintln!("{summary}");
                    }
                }
            }
            Ok(0)
        }
        // Ctrl-C: the RUN it stopped exits 130, which is no failure.
        Err(_) if renderer.cancelled() => {
            eprintln!("build cancelled");
            Ok(130)
        }
        Err(e) => Err(anyhow::Error::new(e).context("build failed")),
    }
}

/// Imports every `--cache-from` into the store. A cache that cannot be read
/// is a warning, not a failure (BuildKit's behaviour): the build just runs.
fn import_caches(
    store: &Store,
    specs: &[CacheSpec],
    client: &strata_registry::ClientOptions,
    quiet: bool,
) {
    for spec in specs {
        match cache_io::import(store, spec, client) {
            Ok(n) if !quiet => eprintln!("imported {n} build cache entries from {}", spec.where_()),
            Ok(_) => {}
            Err(e) => eprintln!(
                "warning: --cache-from {}: {:#}; building without it",
                spec.where_(),
                anyhow::Error::from(e)
            ),
        }
    }
}

/// Exports the keys the build used to every `--cache-to`.
fn export_caches(
    store: &Store,
    specs: &[CacheSpec],
    out: &strata_engine::BuildOutput,
    client: &strata_registry::ClientOptions,
    quiet: bool,
) -> anyhow::Result<()> {
    for spec in specs {
        let (keys, digest) = cache_io::export(store, spec, out, client)?;
        if !quiet {
            eprintln!(
                "exported {keys} build cache entries to {} ({digest})",
                spec.where_()
            );
        }
    }
    Ok(())
}

/// `--why-miss`: one line per step that ran, with the reason it missed
/// the cache (on stderr, after the progress output).
fn print_why_miss(misses: &[(usize, String, Option<String>)], no_cache: bool) {
    if no_cache {
        eprintln!("why-miss: the cache was not used (--no-cache)");
        return;
    }
    if misses.is_empty() {
        eprintln!("why-miss: no cache misses");
        return;
    }
    eprintln!("why-miss: {} step(s) ran:", misses.len());
    for (step, name, reason) in misses {
        let reason = reason
            .as_deref()
            .unwrap_or("not built before (no earlier record of this step)");
        eprintln!("#{step} {name}: {reason}");
    }
}

/// `--build-arg K=V`, or `K` alone to take the value from the environment
/// (skipped when unset); a later K wins.
pub(crate) fn parse_build_args(raw: &[String]) -> BTreeMap<String, String> {
    raw.iter()
        .filter_map(|a| super::key_value_or_env(a))
        .collect()
}

impl BuildArgs {
    /// `-f FILE`, or CONTEXT/Dockerfile.
    pub(crate) fn dockerfile(&self) -> PathBuf {
        self.file
            .clone()
            .unwrap_or_else(|| strata_engine::build::default_dockerfile(&self.context))
    }

    /// The build's options as far as planning needs them (the dry run and
    /// the checks): build args, target, and the first --platform (the checks
    /// and the plan show one).
    pub(crate) fn plan_options(&self) -> strata_frontend::BuildOptions {
        strata_frontend::BuildOptions {
            build_args: parse_build_args(&self.build_args),
            target: self.target.clone(),
            target_platform: self
                .platforms
                .iter()
                .find_map(|p| strata_oci::Platform::parse(p).ok())
                .unwrap_or_else(strata_oci::Platform::host)
                .to_string(),
            build_platform: strata_oci::Platform::host().to_string(),
        }
    }
}

/// `--secret id=ID,src=FILE` / `id=ID,env=VAR` (`source=`, `type=file|env`
/// accepted as BuildKit; a bare `id=ID` reads the environment variable ID).
fn parse_secrets(raw: &[String]) -> anyhow::Result<BTreeMap<String, SecretSource>> {
    let mut out = BTreeMap::new();
    for s in raw {
        let mut id = None;
        let mut src = None;
        let mut env = None;
        for kv in s.split(',') {
            match kv.split_once('=') {
                Some(("id", v)) => id = Some(v.to_string()),
                Some(("src" | "source", v)) => src = Some(PathBuf::from(v)),
                Some(("env", v)) => env = Some(v.to_string()),
                Some(("type", _)) => {}
                _ => anyhow::bail!("--secret {s}: expected id=ID,src=FILE or id=ID,env=VAR"),
            }
        }
        let id = id.ok_or_else(|| anyhow::anyhow!("--secret {s}: id= is required"))?;
        let source = match (src, env) {
            (Some(p), _) => SecretSource::File(p),
            (None, Some(e)) => SecretSource::Env(e),
            (None, None) => SecretSource::Env(id.clone()),
        };
        out.insert(id, source);
    }
    Ok(out)
}

/// `--ssh default` (SSH_AUTH_SOCK) or `--ssh ID=SOCKET`.
fn parse_ssh(raw: &[String]) -> anyhow::Result<BTreeMap<String, PathBuf>> {
    let mut out = BTreeMap::new();
    for s in raw {
        let (id, path) = match s.split_once('=') {
            Some((id, p)) => (id.to_string(), PathBuf::from(p)),
            None => {
                let sock = std::env::var_os("SSH_AUTH_SOCK").ok_or_else(|| {
                    anyhow::anyhow!("--ssh {s}: SSH_AUTH_SOCK is not set (start an agent, or pass --ssh {s}=SOCKET)")
                })?;
                (s.clone(), PathBuf::from(sock))
            }
        };
        out.insert(id, path);
    }
    Ok(out)
}

/// `--build-context NAME=DIR|docker-image://REF|oci-layout://PATH[:TAG|@DIGEST]`.
fn parse_contexts(raw: &[String]) -> anyhow::Result<BTreeMap<String, NamedContext>> {
    let mut out = BTreeMap::new();
    for s in raw {
        let (name, v) = s
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--build-context {s}: expected NAME=VALUE"))?;
        let c = if let Some(r) = v.strip_prefix("docker-image://") {
            NamedContext::Image(r.to_string())
        } else if let Some(p) = v.strip_prefix("oci-layout://") {
            match p.rsplit_once('@') {
                Some((path, d)) => {
                    NamedContext::OciLayout(PathBuf::from(path), Some(d.to_string()))
                }
                None => match p.rsplit_once(':') {
                    Some((path, tag)) if !tag.contains('/') => {
                        NamedContext::OciLayout(PathBuf::from(path), Some(tag.to_string()))
                    }
                    _ => NamedContext::OciLayout(PathBuf::from(p), None),
                },
            }
        } else if v.contains("://") {
            anyhow::bail!("--build-context {s}: unsupported source (use a directory, docker-image:// or oci-layout://)");
        } else {
            NamedContext::Dir(PathBuf::from(v))
        };
        out.insert(name.to_string(), c);
    }
    Ok(out)
}
