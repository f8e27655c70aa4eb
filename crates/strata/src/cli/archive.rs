//! `load`, `save`, `import`: thin wrappers over `strata_store::transfer`.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Read, Write};
use std::path::Path;

use anyhow::{bail, Context};
use strata_engine::config::{host_architecture, History};
use strata_oci::{ImageConfig, Raw, Reference};
use strata_store::transfer::{self, ArchiveFormat, ImageToExport, LoadedImage};

use super::images::{find, open_store, ImportArgs, LoadArgs, SaveArgs};
use super::{changes, cleanup_on_signal, Global};

pub(crate) fn load(g: &Global, a: LoadArgs) -> anyhow::Result<u8> {
    let store = open_store(g)?;
    // Stopped by a signal, a load removes its staged blobs before it
    // exits (after SIGKILL, the next load or GC removes them).
    let root = store.root().to_path_buf();
    cleanup_on_signal("load", move || {
        strata_store::gc::remove_own_temp_blobs(&root);
    });
    let loaded = match &a.input {
        Some(p) if p.is_dir() => transfer::load_layout_dir(&store, p)
            .with_context(|| format!("load OCI layout {}", p.display()))?,
        Some(p) => {
            let f = File::open(p).with_context(|| format!("open {}", p.display()))?;
            transfer::load_archive(&store, f).with_context(|| format!("load {}", p.display()))?
        }
        None => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                bail!("requested load from stdin, but stdin is a terminal: use -i FILE or pipe an archive in");
            }
            transfer::load_archive(&store, stdin.lock()).context("load from stdin")?
        }
    };
    // A name several images of the archive carry (an OCI index of several
    // platforms): one multi-platform tag.
    let mut by_name: std::collections::BTreeMap<&str, Vec<&strata_oci::Digest>> =
        Default::default();
    for img in &loaded {
        for n in &img.names {
            let v = by_name.entry(n.as_str()).or_default();
            if !v.contains(&&img.id) {
                v.push(&img.id);
            }
        }
    }
    let mut loaded = loaded.clone();
    for (name, ids) in by_name.iter().filter(|(_, ids)| ids.len() > 1) {
        let entries = ids
            .iter()
            .map(|id| {
                Ok(transfer::IndexEntry {
                    platform: transfer::image_platform(&store, id)?,
                    image: (*id).clone(),
                })
            })
            .collect::<Result<Vec<_>, transfer::TransferError>>()?;
        transfer::tag_index(&store, name, &entries, None)?;
        for img in loaded.iter_mut() {
            img.moved
                .retain(|(n, prev)| n != name || !ids.contains(&prev));
        }
    }
    unpack_for_host(&store, &loaded);
    if !a.quiet {
        print_loaded(&loaded)?;
    }
    Ok(0)
}

/// Unpacks the loaded images of this machine's architecture now, as
/// `docker load` does (the first `run` or build on them then starts at
/// once). Other platforms' images are left packed: they run only under
/// emulation, and unpack when first used. A failure is a warning: the
/// images are loaded, and unpack again when first used.
fn unpack_for_host(store: &strata_store::Store, loaded: &[LoadedImage]) {
    let host = host_architecture();
    let ids: Vec<strata_oci::Digest> = loaded
        .iter()
        .filter(|img| {
            transfer::image_platform(store, &img.id).is_ok_and(|p| p.architecture == host)
        })
        .map(|img| img.id.clone())
        .collect();
    if let Err(e) = transfer::unpack_images(store, &ids) {
        eprintln!(
            "strata: warning: the images are loaded, but unpacking their layers failed ({e:#}); \
             they are unpacked again when first used"
        );
    }
}

fn print_loaded(loaded: &[LoadedImage]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for img in loaded {
        for (name, prev) in &img.moved {
            writeln!(
                out,
                "The image {} already exists, renaming the old one with ID {prev} to empty string",
                familiar(name)
            )?;
        }
        if img.names.is_empty() {
            writeln!(out, "Loaded image ID: {}", img.id)?;
        }
        for n in &img.names {
            writeln!(out, "Loaded image: {}", familiar(n))?;
        }
    }
    Ok(())
}

fn familiar(full: &str) -> String {
    Reference::parse(full).map_or_else(|_| full.to_string(), |r| r.familiar())
}

/// The image and the name to record: a name argument records that name,
/// an ID records none (as `docker save ID`).
fn export_of(store: &strata_store::Store, name: &str) -> anyhow::Result<ImageToExport> {
    let id = find(store, name)?;
    let tagged = Reference::parse(name).ok().filter(|r| {
        r.digest().is_none()
            && store
                .meta()
                .resolve_tag(&r.to_string())
                .ok()
                .flatten()
                .as_ref()
                == Some(&id)
    });
    Ok(ImageToExport {
        id,
        names: tagged.into_iter().collect(),
    })
}

/// `--platform OS/ARCH[/VARIANT]`, when given.
fn platform_flag(p: Option<&str>) -> anyhow::Result<Option<strata_oci::Platform>> {
    p.map(strata_oci::Platform::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--platform: {e}"))
}

pub(crate) fn save(g: &Global, a: SaveArgs) -> anyhow::Result<u8> {
    let format = match a.format.as_str() {
        "docker" | "docker-archive" => ArchiveFormat::Docker,
        "oci" | "oci-archive" => ArchiveFormat::Oci,
        f => bail!("--format {f:?}: use docker or oci"),
    };
    let store = open_store(g)?;
    let platform = platform_flag(a.platform.as_deref())?;
    let mut images: Vec<ImageToExport> = Vec::new();
    let mut indexes: Vec<transfer::IndexToExport> = Vec::new();
    for n in &a.images {
        let entries = transfer::index_entries(&store, n)?;
        match (&platform, entries) {
            // An OCI archive keeps a multi-platform image whole.
            (None, Some((index, entries))) if format == ArchiveFormat::Oci => {
                indexes.push(transfer::IndexToExport {
                    index,
                    members: entries.into_iter().map(|e| e.image).collect(),
                    names: Reference::parse(n).into_iter().collect(),
                })
            }
            (Some(p), Some(_)) => {
                let id = transfer::resolve_image_for(&store, n, p)?
                    .with_context(|| format!("No such image: {n}"))?;
                images.push(ImageToExport {
                    id,
                    names: Reference::parse(n).into_iter().collect(),
                });
            }
            _ => images.push(export_of(&store, n)?),
        }
    }
    match &a.output {
        Some(path) => save_to_file(&store, path, &images, &indexes, format)?,
        None => {
            let stdout = std::io::stdout();
            if stdout.is_terminal() {
                bail!("cowardly refusing to write an image archive to a terminal: use -o FILE or redirect stdout");
            }
            let mut w = BufWriter::with_capacity(256 * 1024, stdout.lock());
            if indexes.is_empty() {
                transfer::save_images(&store, &mut w, &images, format)?;
            } else {
                transfer::save_oci_with_indexes(&store, &mut w, &images, &indexes)?;
            }
            w.flush().context("write the archive to stdout")?;
        }
    }
    Ok(0)
}

/// Writes `FILE.strata-partial` next to `path` and renames, so a failed
/// save leaves no half file. The partial file is flocked while written: a
/// signal removes it before exit, and one left by a killed save (not
/// locked) is taken over and replaced by the next save to the same FILE;
/// a locked one means another save is writing FILE, which is refused.
fn save_to_file(
    store: &strata_store::Store,
    path: &Path,
    images: &[ImageToExport],
    indexes: &[transfer::IndexToExport],
    format: ArchiveFormat,
) -> anyhow::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".strata-partial");
    let tmp = std::path::PathBuf::from(tmp);
    // The handler is in place before the partial file exists (a signal in
    // between killed the save and left the file). It removes the file once
    // this save holds it, or, before that, when nobody holds it (just made
    // by this save, or a killed save's debris); never another save's.
    let ours = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (on_signal, owned) = (tmp.clone(), ours.clone());
    cleanup_on_signal("save", move || {
        let unheld = || std::fs::File::open(&on_signal).is_ok_and(|f| f.try_lock().is_ok());
        if owned.load(std::sync::atomic::Ordering::SeqCst) || unheld() {
            let _ = std::fs::remove_file(&on_signal);
        }
    });
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&tmp)
        .with_context(|| format!("create {}", tmp.display()))?;
    match f.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "{} is being written by another `strata save` to {}: wait for it, or save to another file",
            tmp.display(),
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("lock {}", tmp.display()))
        }
    }
    ours.store(true, std::sync::atomic::Ordering::SeqCst);
    let result = (|| {
        // What a killed save left, or nothing.
        f.set_len(0)
            .with_context(|| format!("truncate {}", tmp.display()))?;
        let mut w = BufWriter::with_capacity(256 * 1024, f);
        if indexes.is_empty() {
            transfer::save_images(store, &mut w, images, format)?;
        } else {
            transfer::save_oci_with_indexes(store, &mut w, images, indexes)?;
        }
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path).with_context(|| format!("rename into {}", path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The config of an imported image: linux/<host arch>, no Env (as
/// `docker import`), the changes applied, one history entry.
fn import_config(
    changes: &[strata_frontend::Resolved],
    message: Option<&str>,
    diff_id: &strata_oci::Digest,
    platform: Option<&strata_oci::Platform>,
) -> anyhow::Result<Raw<ImageConfig>> {
    let mut doc = strata_engine::config::scratch();
    doc.runtime_mut().env = None;
    doc.architecture = host_architecture().to_string();
    if let Some(p) = platform {
        doc.os = p.os.clone();
        doc.architecture = p.architecture.clone();
        doc.variant = p.variant.clone();
    }
    changes::apply(&mut doc, changes)?;
    let now = strata_oci::rfc3339_nano(time::OffsetDateTime::now_utc());
    doc.created = Some(now.clone());
    doc.rootfs.diff_ids = vec![diff_id.clone()];
    doc.history = vec![History {
        created: Some(now),
        comment: Some(message.unwrap_or("Imported from -").to_string()),
        ..History::default()
    }];
    Ok(Raw::from_value(doc))
}

pub(crate) fn import(g: &Global, a: ImportArgs) -> anyhow::Result<u8> {
    let changes = changes::parse(&a.changes)?;
    let platform = platform_flag(a.platform.as_deref())?;
    let name = match &a.name {
        Some(n) => Some(Reference::parse(n).with_context(|| format!("invalid image name {n:?}"))?),
        None => None,
    };
    let store = open_store(g)?;
    let root = store.root().to_path_buf();
    cleanup_on_signal("import", move || {
        strata_store::gc::remove_own_temp_blobs(&root);
    });
    let lease = store.lease("import")?;
    let what = a.file.display().to_string();
    let mut input: Box<dyn Read> = if what == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(File::open(&a.file).with_context(|| format!("open {what}"))?)
    };
    let layer = transfer::import_layer(&store, &mut input, &what, Some(&lease))
        .with_context(|| format!("import {what}"))?;
    let config = import_config(
        &changes,
        a.message.as_deref(),
        &layer.diff_id,
        platform.as_ref(),
    )?;
    let id = transfer::commit_image(&store, &config, &[layer.to_record()], Some(&lease))?;
    if let Some(n) = name {
        store.meta().tag(&n.to_string(), &id)?;
    }
    println!("{id}");
    Ok(0)
}
