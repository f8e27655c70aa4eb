//! `strata run`.

use std::path::PathBuf;

use super::Global;

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Remove the container's files when it exits
    #[arg(long)]
    pub rm: bool,
    /// Keep stdin open
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Set environment variables (K=V, or K to take it from the environment)
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Username or UID (format: name|uid[:group|gid])
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// Network mode: host or none
    #[arg(long, default_value = "host")]
    pub network: String,
    /// Bind mount a volume (SRC:DST[:ro])
    #[arg(short = 'v', long = "volume")]
    pub volumes: Vec<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Image to run
    pub image: String,
    /// Command and arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

pub fn run(_g: &Global, _a: RunArgs) -> anyhow::Result<u8> {
    let _ = PathBuf::new();
    anyhow::bail!("run is not implemented yet")
}
