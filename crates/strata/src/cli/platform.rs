//! `strata manifest create|add|inspect` (multi-platform tags in the store)
//! and `strata binfmt install|ls` (emulation of foreign platforms).

use anyhow::Context as _;
use strata_oci::{Platform, Reference};
use strata_runtime::binfmt;
use strata_store::transfer::{image_platform, index_entries, tag_index, IndexEntry};
use strata_store::Store;

use super::images::{find, open_store};
use super::Global;

#[derive(clap::Subcommand, Debug)]
pub(crate) enum ManifestCommand {
    /// Tag NAME with an index of IMAGEs (one per platform, read from each image's config)
    Create {
        name: String,
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Add IMAGE to NAME's index (replacing the entry of the same platform)
    Add { name: String, image: String },
    /// Print NAME's index (or, for a single image, its manifest)
    Inspect { name: String },
}

#[derive(clap::Subcommand, Debug)]
pub(crate) enum BinfmtCommand {
    /// Register Debian's qemu-user-static emulators (/usr/lib/binfmt.d/qemu-*.conf) with the F flag; as root
    Install,
    /// List the binfmt_misc registrations and which platforms can run here
    Ls,
}

fn full(name: &str) -> anyhow::Result<String> {
    Ok(Reference::parse(name)
        .with_context(|| format!("invalid image name {name:?}"))?
        .to_string())
}

/// The entries `image` contributes: every entry of a multi-platform tag,
/// else the image with the platform its config states.
fn entries_of(store: &Store, image: &str) -> anyhow::Result<Vec<IndexEntry>> {
    if let Some((_, e)) = index_entries(store, image)? {
        return Ok(e);
    }
    let id = find(store, image)?;
    let platform = image_platform(store, &id)?;
    Ok(vec![IndexEntry {
        platform,
        image: id,
    }])
}

pub(crate) fn manifest(g: &Global, c: ManifestCommand) -> anyhow::Result<u8> {
    let store = open_store(g)?;
    match c {
        ManifestCommand::Create { name, images } => {
            let mut entries = Vec::new();
            for i in &images {
                entries.extend(entries_of(&store, i)?);
            }
            let d = tag_index(&store, &full(&name)?, &entries, None)?;
            println!("{d}");
        }
        ManifestCommand::Add { name, image } => {
            let mut entries = entries_of(&store, &name)?;
            entries.extend(entries_of(&store, &image)?);
            let d = tag_index(&store, &full(&name)?, &entries, None)?;
            println!("{d}");
        }
        ManifestCommand::Inspect { name } => {
            let bytes = match index_entries(&store, &name)? {
                Some((d, _)) => store.blobs().read(&d)?,
                None => {
                    let id = find(&store, &name)?;
                    let info = store
                        .meta()
                        .image(&id)?
                        .with_context(|| format!("image {id} vanished"))?;
                    store.blobs().read(&info.manifest_digest)?
                }
            };
            let v: serde_json::Value = serde_json::from_slice(&bytes)?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
    }
    Ok(0)
}

pub(crate) fn binfmt_cmd(c: BinfmtCommand) -> anyhow::Result<u8> {
    match c {
        BinfmtCommand::Install => {
            let done = binfmt::install(
                std::path::Path::new(binfmt::BINFMT_MISC),
                std::path::Path::new(binfmt::BINFMT_D),
            )
            .map_err(anyhow::Error::msg)?;
            for d in &done {
                match d {
                    binfmt::Installed::Registered(n) => println!("registered {n}"),
                    binfmt::Installed::Replaced(n) => println!("re-registered {n} with the F flag"),
                    binfmt::Installed::Present(n) => println!("{n}: already registered"),
                }
            }
            if done.is_empty() {
                anyhow::bail!("no qemu emulator found to register: {}", binfmt::fix_hint());
            }
        }
        BinfmtCommand::Ls => {
            if !binfmt::mounted() {
                println!(
                    "binfmt_misc is not mounted at {} ({})",
                    binfmt::BINFMT_MISC,
                    binfmt::fix_hint()
                );
            }
            println!("{:<24} {:<8} {:<6} INTERPRETER", "NAME", "ENABLED", "FLAGS");
            for e in binfmt::list() {
                println!(
                    "{:<24} {:<8} {:<6} {}",
                    e.name,
                    if e.enabled { "yes" } else { "no" },
                    e.flags,
                    e.interpreter
                );
            }
            let host = Platform::host();
            let runnable: Vec<String> = [
                "amd64", "386", "arm64", "arm", "ppc64le", "s390x", "riscv64", "mips64le",
            ]
            .iter()
            .filter(|a| binfmt::check_can_run("linux", a, None).is_ok())
            .map(|a| Platform::parse(&format!("linux/{a}")).map(|p| p.to_string()))
            .collect::<Result<_, _>>()
            .map_err(anyhow::Error::msg)?;
            println!("host platform: {host}; can run: {}", runnable.join(", "));
        }
    }
    Ok(0)
}
