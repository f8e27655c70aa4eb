//! `strata check`: run the frontend only.

use std::path::PathBuf;

use super::Global;

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Name of the Dockerfile (default: CONTEXT/Dockerfile)
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// Build context directory
    #[arg(default_value = ".")]
    pub context: PathBuf,
}

pub fn run(_g: &Global, _a: CheckArgs) -> anyhow::Result<u8> {
    anyhow::bail!("check is not implemented yet")
}
