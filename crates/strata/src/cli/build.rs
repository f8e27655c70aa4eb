//! `strata build`.

use std::path::PathBuf;

use super::Global;

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

pub fn run(_g: &Global, _a: BuildArgs) -> anyhow::Result<u8> {
    anyhow::bail!("build is not implemented yet")
}
