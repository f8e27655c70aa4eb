//! Registry commands: pull, push, login, logout.

use super::Global;

#[derive(clap::Args, Debug)]
pub struct PullArgs {
    pub name: String,
    /// Platform to pick from a manifest list (default linux/amd64)
    #[arg(long)]
    pub platform: Option<String>,
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(clap::Args, Debug)]
pub struct PushArgs {
    pub name: String,
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(clap::Args, Debug)]
pub struct LoginArgs {
    pub registry: Option<String>,
    #[arg(short, long)]
    pub username: Option<String>,
    #[arg(short, long)]
    pub password: Option<String>,
    /// Take the password from stdin
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(clap::Args, Debug)]
pub struct LogoutArgs {
    pub registry: Option<String>,
}

pub fn pull(_g: &Global, _a: PullArgs) -> anyhow::Result<u8> {
    anyhow::bail!("pull is not implemented yet")
}
pub fn push(_g: &Global, _a: PushArgs) -> anyhow::Result<u8> {
    anyhow::bail!("push is not implemented yet")
}
pub fn login(_g: &Global, _a: LoginArgs) -> anyhow::Result<u8> {
    anyhow::bail!("login is not implemented yet")
}
pub fn logout(_g: &Global, _a: LogoutArgs) -> anyhow::Result<u8> {
    anyhow::bail!("logout is not implemented yet")
}
