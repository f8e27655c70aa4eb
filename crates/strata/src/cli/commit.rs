//! `strata commit CONTAINER [NAME]` (the container's writable layer as a
//! new layer on its image) and `strata export CONTAINER -o FILE` (its
//! flattened filesystem as a tar).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use strata_engine::config::History;
use strata_engine::images;
use strata_store::Store;

use super::ctr;
use super::Global;

#[derive(clap::Args, Debug)]
pub(crate) struct CommitArgs {
    /// The container
    pub container: String,
    /// REPOSITORY[:TAG] for the new image
    pub name: Option<String>,
    /// Commit message (the history entry's comment)
    #[arg(short, long)]
    pub message: Option<String>,
    /// Author
    #[arg(short, long)]
    pub author: Option<String>,
}

pub(crate) fn commit(g: &Global, a: CommitArgs) -> anyhow::Result<u8> {
    let root = g.store_root();
    let s = ctr::find_container(&root, &a.container)?;
    let store = Store::open(&root)?;
    let image = images::load_image(&store, &s.config.image_id).with_context(|| {
        format!(
            "the image {} ({}) of container {} is gone",
            s.config.image, s.config.image_id, s.name
        )
    })?;
    let upper = ctr::ctr_dir(&root, &s.id).join("upper");
    std::fs::create_dir_all(&upper)?;
    let lease = store.lease("commit")?;
    let mut layers = image.layers.clone();
    layers.push(strata_engine::container::commit_layer(
        &store, &upper, &lease,
    )?);
    let mut config = image.config.clone();
    let c = &s.config;
    let now = strata_oci::rfc3339_nano(time::OffsetDateTime::now_utc());
    config.created = Some(now.clone());
    if let Some(au) = &a.author {
        config.author = Some(au.clone());
    }
    let rc = config.runtime_mut();
    rc.env = Some(c.env.clone());
    rc.entrypoint = (!c.entrypoint.is_empty()).then(|| c.entrypoint.clone());
    rc.cmd = (!c.cmd.is_empty()).then(|| c.cmd.clone());
    rc.working_dir = c.working_dir.clone();
    rc.user = c.user.clone();
    let command: Vec<String> = c.entrypoint.iter().chain(&c.cmd).cloned().collect();
    config.history.push(History {
        created: Some(now),
        created_by: Some(command.join(" ")),
        author: a.author.clone(),
        comment: a.message.clone(),
        ..History::default()
    });
    let id = images::commit_image(&store, &config, &layers, Some(&lease))?;
    if let Some(n) = &a.name {
        images::tag_image(&store, &id, std::slice::from_ref(n))?;
    }
    println!("{id}");
    Ok(0)
}

#[derive(clap::Args, Debug)]
pub(crate) struct ExportArgs {
    /// The container
    pub container: String,
    /// Write to this file (required: strata does not write a tar to a terminal)
    #[arg(short, long)]
    pub output: Option<std::path::PathBuf>,
}

pub(crate) fn export(g: &Global, a: ExportArgs) -> anyhow::Result<u8> {
    let root = g.store_root();
    let s = ctr::find_container(&root, &a.container)?;
    let out: Box<dyn std::io::Write> = match &a.output {
        Some(p) if p.as_os_str() != "-" => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        _ => {
            use std::io::IsTerminal as _;
            if std::io::stdout().is_terminal() {
                bail!("cowardly refusing to write a tar to a terminal: use -o FILE or redirect");
            }
            Box::new(std::io::BufWriter::new(std::io::stdout().lock()))
        }
    };
    let fs = super::cp::open_rootfs(&root, &s)?;
    let mut tar = tar::Builder::new(out);
    let mut seen = std::collections::HashMap::new();
    append_tree(&mut tar, &fs.path, Path::new(""), &mut seen)
        .with_context(|| format!("exporting {}", s.name))?;
    tar.into_inner()?.flush()?;
    Ok(0)
}

/// Appends what is under `base/rel`, sorted by name, never following a
/// link; hard links after the first are stored as links, as Docker does.
fn append_tree<W: std::io::Write>(
    tar: &mut tar::Builder<W>,
    base: &Path,
    rel: &Path,
    seen: &mut std::collections::HashMap<(u64, u64), PathBuf>,
) -> anyhow::Result<()> {
    use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
    let mut names: Vec<_> = std::fs::read_dir(base.join(rel))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    names.sort();
    for n in names {
        let name = rel.join(&n);
        let p = base.join(&name);
        let m = p.symlink_metadata()?;
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(&m, tar::HeaderMode::Complete);
        let ft = m.file_type();
        if ft.is_file() && m.nlink() > 1 {
            if let Some(first) = seen.get(&(m.dev(), m.ino())) {
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                tar.append_link(&mut h, &name, first)?;
                continue;
            }
            seen.insert((m.dev(), m.ino()), name.clone());
        }
        if ft.is_dir() {
            tar.append_data(&mut h, &name, std::io::empty())?;
            append_tree(tar, base, &name, seen)?;
        } else if ft.is_file() {
            let f = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&p)?;
            tar.append_data(&mut h, &name, f)?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&p)?;
            tar.append_link(&mut h, &name, target)?;
        } else {
            h.set_size(0);
            tar.append_data(&mut h, &name, std::io::empty())?;
        }
    }
    Ok(())
}
