//! `strata system df | prune | check`.

use super::Global;

#[derive(clap::Subcommand, Debug)]
pub enum SystemCommand {
    /// Show store disk usage
    Df,
    /// Remove unused data
    Prune(PruneArgs),
    /// Verify every blob and reference; repair what can be repaired
    Check(CheckStoreArgs),
}

#[derive(clap::Args, Debug)]
pub struct PruneArgs {
    /// Also remove untagged images and the build cache
    #[arg(short, long)]
    pub all: bool,
}

#[derive(clap::Args, Debug)]
pub struct CheckStoreArgs {
    /// Repair what can be repaired (remove leftovers and corrupt blobs)
    #[arg(long)]
    pub repair: bool,
}

pub fn dispatch(_g: &Global, c: SystemCommand) -> anyhow::Result<u8> {
    match c {
        SystemCommand::Df => anyhow::bail!("system df is not implemented yet"),
        SystemCommand::Prune(_) => anyhow::bail!("system prune is not implemented yet"),
        SystemCommand::Check(_) => anyhow::bail!("system check is not implemented yet"),
    }
}
