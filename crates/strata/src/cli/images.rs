//! Image commands: ls, rm, tag, inspect, history, load, save, import.

use std::path::PathBuf;

use super::Global;

#[derive(clap::Subcommand, Debug)]
pub enum ImageCommand {
    /// List images
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Remove one or more images
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Display detailed information on images
    Inspect(InspectArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Create a tag TARGET that refers to SOURCE
    Tag(TagArgs),
    /// Load an image from an archive
    Load(LoadArgs),
    /// Save images to an archive
    Save(SaveArgs),
    /// Import a rootfs tarball
    Import(ImportArgs),
}

pub fn dispatch(g: &Global, c: ImageCommand) -> anyhow::Result<u8> {
    match c {
        ImageCommand::Ls(a) => ls(g, a),
        ImageCommand::Rm(a) => rm(g, a),
        ImageCommand::Inspect(a) => inspect(g, a),
        ImageCommand::History(a) => history(g, a),
        ImageCommand::Tag(a) => tag(g, a),
        ImageCommand::Load(a) => load(g, a),
        ImageCommand::Save(a) => save(g, a),
        ImageCommand::Import(a) => import(g, a),
    }
}

#[derive(clap::Args, Debug)]
pub struct LsArgs {
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Output format: table (default) or json
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct RmArgs {
    /// Remove even if the image has several tags
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct TagArgs {
    pub source: String,
    pub target: String,
}

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct HistoryArgs {
    pub image: String,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
}

#[derive(clap::Args, Debug)]
pub struct LoadArgs {
    /// Archive file or OCI layout directory
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    /// Suppress the load output
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(clap::Args, Debug)]
pub struct SaveArgs {
    /// Write to a file instead of stdout
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Archive format: docker or oci
    #[arg(long, default_value = "docker")]
    pub format: String,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// Root filesystem tarball (- for stdin)
    pub file: PathBuf,
    /// Name for the image
    pub name: Option<String>,
    /// Apply a Dockerfile instruction to the image (ENV, CMD, ENTRYPOINT, WORKDIR, USER, LABEL, EXPOSE, VOLUME, STOPSIGNAL)
    #[arg(short, long = "change")]
    pub changes: Vec<String>,
    /// Commit message
    #[arg(short, long)]
    pub message: Option<String>,
}

pub fn ls(_g: &Global, _a: LsArgs) -> anyhow::Result<u8> {
    anyhow::bail!("image ls is not implemented yet")
}
pub fn rm(_g: &Global, _a: RmArgs) -> anyhow::Result<u8> {
    anyhow::bail!("image rm is not implemented yet")
}
pub fn tag(_g: &Global, _a: TagArgs) -> anyhow::Result<u8> {
    anyhow::bail!("tag is not implemented yet")
}
pub fn inspect(_g: &Global, _a: InspectArgs) -> anyhow::Result<u8> {
    anyhow::bail!("inspect is not implemented yet")
}
pub fn history(_g: &Global, _a: HistoryArgs) -> anyhow::Result<u8> {
    anyhow::bail!("history is not implemented yet")
}
pub fn load(_g: &Global, _a: LoadArgs) -> anyhow::Result<u8> {
    anyhow::bail!("load is not implemented yet")
}
pub fn save(_g: &Global, _a: SaveArgs) -> anyhow::Result<u8> {
    anyhow::bail!("save is not implemented yet")
}
pub fn import(_g: &Global, _a: ImportArgs) -> anyhow::Result<u8> {
    anyhow::bail!("import is not implemented yet")
}
