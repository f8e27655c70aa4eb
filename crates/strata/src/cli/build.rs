//! `strata build`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context as _;
use strata_engine::BuildRequest;
use strata_runtime::Runc;
use strata_store::Store;

use super::Global;

#[path = "progress.rs"]
mod progress;

#[derive(clap::Args, Debug)]
pub struct BuildArgs {
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
    /// Build context directory
    pub context: PathBuf,
}

pub fn run(g: &Global, a: BuildArgs) -> anyhow::Result<u8> {
    if a.dry_run {
        return super::dryrun::run(g, &a);
    }
    let mode = progress::Mode::parse(&a.progress, a.quiet)?;
    let mut build_args = BTreeMap::new();
    for kv in &a.build_args {
        match kv.split_once('=') {
            Some((k, v)) => {
                build_args.insert(k.to_string(), v.to_string());
            }
            // `--build-arg K` takes K from the environment (skipped when unset).
            None => {
                if let Ok(v) = std::env::var(kv) {
                    build_args.insert(kv.clone(), v);
                }
            }
        }
    }
    let store = Store::open(&g.store_root())
        .with_context(|| format!("opening the store at {}", g.store_root().display()))?;
    let runc = Runc::locate()?;
    let req = BuildRequest {
        dockerfile: a.file.clone(),
        dockerfile_text: None,
        context: a.context.clone(),
        build_args,
        target: a.target.clone(),
        tags: a.tags.clone(),
        no_cache: a.no_cache,
        parallelism: None,
    };
    let renderer = progress::Renderer::new(mode);
    let sink = |ev: strata_engine::Event| renderer.handle(ev);
    let result = strata_engine::build(&store, &runc, &req, &sink);
    renderer.finish();
    match result {
        Ok(out) => {
            match mode {
                progress::Mode::Quiet => println!("{}", out.image_id),
                progress::Mode::RawJson => {}
                _ => {
                    let mut line = format!("built image {}", out.image_id);
                    if !out.tags.is_empty() {
                        line.push_str(&format!(", tagged {}", out.tags.join(", ")));
                    }
                    eprintln!("{line}");
                }
            }
            Ok(0)
        }
        Err(e) => Err(anyhow::anyhow!("build failed: {e}")),
    }
}
