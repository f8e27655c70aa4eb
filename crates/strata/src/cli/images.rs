//! Image commands: ls, rm, tag, inspect, history, load, save, import.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use serde_json::{json, Value};
use strata_oci::{Digest, ImageConfig, Reference};
use strata_store::transfer::resolve_image;
use strata_store::{ImageInfo, Store};

use super::output::{ellipsis, go_time, human_size, since, table};
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
    /// Explain an image's size: by layer and step, largest paths, wasted bytes, stages
    Explain(super::explain::ExplainArgs),
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
        ImageCommand::Explain(a) => super::explain::run(g, a),
    }
}

#[derive(clap::Args, Debug)]
pub struct LsArgs {
    /// Show all images (Docker's flag; strata keeps no intermediate
    /// images, so every image is listed either way)
    #[arg(short, long)]
    pub all: bool,
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
    /// For multi-platform images: save only this platform's image (default: the host's; with --format oci, the whole index)
    #[arg(long)]
    pub platform: Option<String>,
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
    /// The platform the root filesystem is for, os/arch[/variant] (default: the host's)
    #[arg(long)]
    pub platform: Option<String>,
}

pub use super::archive::{import, load, save};

/// Opens the store at the configured root.
pub fn open_store(g: &Global) -> anyhow::Result<Store> {
    let root = g.store_root();
    Store::open(&root).with_context(|| format!("open the store at {}", root.display()))
}

/// The image `name` refers to (tag, ID or ID prefix).
pub fn find(store: &Store, name: &str) -> anyhow::Result<Digest> {
    resolve_image(store, name)?.with_context(|| {
        format!("No such image: {name} (see `strata images`; load, import, pull or build it)")
    })
}

/// `docker.io/library/busybox:1.35` -> (`busybox`, `1.35`).
fn repo_tag(full: &str) -> (String, String) {
    match Reference::parse(full) {
        Ok(r) => (r.familiar_name(), r.tag().unwrap_or("<none>").to_string()),
        Err(_) => (full.to_string(), "<none>".to_string()),
    }
}

fn familiar(full: &str) -> String {
    Reference::parse(full)
        .map(|r| r.familiar())
        .unwrap_or_else(|_| full.to_string())
}

/// A row of `image ls`: (index into the images, repository, tag).
type LsRow = (usize, String, String);

/// One row of `image ls` per tag, `<none>` rows for untagged images,
/// newest first: (index into the images, repository, tag). Rows refer to
/// their image, never copy it: an image with N tags is N rows, and a
/// copy per row (tags included) made listing quadratic in N.
fn ls_rows(store: &Store) -> anyhow::Result<(Vec<ImageInfo>, Vec<LsRow>)> {
    let mut images = store.meta().images()?;
    images.sort_by_cached_key(|i| {
        (
            std::cmp::Reverse(super::output::parse_time(&i.created)),
            i.id.clone(),
        )
    });
    // A multi-platform tag is shown once (its default platform's image).
    let members = store.meta().index_member_images()?;
    let mut rows = Vec::new();
    for (i, img) in images.iter().enumerate() {
        if img.tags.is_empty() && members.contains(&img.id) {
            continue;
        }
        if img.tags.is_empty() {
            rows.push((i, "<none>".into(), "<none>".into()));
        }
        for t in &img.tags {
            let (r, tag) = repo_tag(t);
            rows.push((i, r, tag));
        }
    }
    Ok((images, rows))
}

pub fn ls(g: &Global, a: LsArgs) -> anyhow::Result<u8> {
    let store = open_store(g)?;
    let (images, rows) = ls_rows(&store)?;
    let rows = rows.iter().map(|(i, repo, tag)| (&images[*i], repo, tag));
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match a.format.as_deref() {
        _ if a.quiet => {
            for (img, _, _) in rows {
                writeln!(out, "{}", img.id.short())?;
            }
        }
        Some("json") | Some("{{json .}}") => {
            for (img, repo, tag) in rows {
                let v = json!({
                    "Containers": "N/A",
                    "CreatedAt": go_time(&img.created),
                    "CreatedSince": since(&img.created),
                    "Digest": "<none>",
                    "ID": img.id.short(),
                    "Repository": repo,
                    "SharedSize": "N/A",
                    "Size": img.size,
                    "Tag": tag,
                    "UniqueSize": "N/A",
                    "VirtualSize": img.size,
                });
                writeln!(out, "{v}")?;
            }
        }
        None | Some("table") => {
            let cells: Vec<Vec<String>> = rows
                .map(|(img, repo, tag)| {
                    vec![
                        repo.clone(),
                        tag.clone(),
                        img.id.short().to_string(),
                        since(&img.created),
                        human_size(img.size),
                    ]
                })
                .collect();
            table(
                &mut out,
                &["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"],
                &cells,
            )?;
        }
        Some(f) => bail!("--format {f:?} is not supported: use table or json"),
    }
    out.flush()?;
    Ok(0)
}

/// What `rmi NAME` removes: one tag (by name) or the image (by ID).
fn rm_one(store: &Store, name: &str, force: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    let id = find(store, name)?;
    let by_tag = Reference::parse(name)
        .ok()
        .map(|r| r.to_string())
        .filter(|full| store.meta().resolve_tag(full).ok().flatten().as_ref() == Some(&id));
    let tags = store.meta().tags_of(&id)?;
    // A multi-platform tag: its other platforms' images go with it.
    let members: Vec<Digest> = match &by_tag {
        Some(full) => strata_store::transfer::index_entries(store, full)?
            .map(|(_, e)| {
                e.into_iter()
                    .map(|e| e.image)
                    .filter(|m| *m != id)
                    .collect()
            })
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let untag: Vec<String> = match by_tag {
        Some(full) if !force => vec![full],
        _ if tags.len() > 1 && !force => bail!(
            "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories ({})",
            id.short(),
            tags.iter().map(|t| familiar(t)).collect::<Vec<_>>().join(", ")
        ),
        _ => tags.clone(),
    };
    store.meta().untag_all(&untag)?;
    for t in &untag {
        writeln!(out, "Untagged: {}", familiar(t))?;
    }
    // An image still listed by a multi-platform tag stays.
    let in_other_index = store.meta().index_member_images()?;
    if store.meta().tags_of(&id)?.is_empty() && !in_other_index.contains(&id) {
        store.meta().remove_image(&id, true)?;
        writeln!(out, "Deleted: {id}")?;
    }
    for m in members {
        if store.meta().tags_of(&m)?.is_empty() && !in_other_index.contains(&m) {
            store.meta().remove_image(&m, true)?;
            writeln!(out, "Deleted: {m}")?;
        }
    }
    Ok(())
}

/// Removes images or tags; the blobs nothing refers to any more are
/// deleted right away (a GC pass), so the space is freed as with Docker.
pub fn rm(g: &Global, a: RmArgs) -> anyhow::Result<u8> {
    let store = open_store(g)?;
    let mut out = std::io::stdout().lock();
    let mut failed = false;
    for name in &a.images {
        if let Err(e) = rm_one(&store, name, a.force, &mut out) {
            eprintln!("strata: error: {e:#}");
            failed = true;
        }
    }
    store.gc().context("free the removed images' blobs (GC)")?;
    Ok(u8::from(failed))
}

pub fn tag(g: &Global, a: TagArgs) -> anyhow::Result<u8> {
    let store = open_store(g)?;
    let id = find(&store, &a.source)?;
    let target = Reference::parse(&a.target)
        .with_context(|| format!("invalid target name {:?}", a.target))?;
    if target.digest().is_some() {
        bail!(
            "refusing to create a tag with a digest reference: {}",
            a.target
        );
    }
    // A multi-platform tag is tagged whole.
    match strata_store::transfer::index_entries(&store, &a.source)? {
        Some((_, entries)) => {
            strata_store::transfer::tag_index(&store, &target.to_string(), &entries, None)?;
        }
        None => {
            store.meta().tag(&target.to_string(), &id)?;
        }
    }
    Ok(0)
}

fn read_config(store: &Store, info: &ImageInfo) -> anyhow::Result<(ImageConfig, Value)> {
    let bytes = store.blobs().read(&info.config_digest)?;
    let cfg: ImageConfig = serde_json::from_slice(&bytes)
        .with_context(|| format!("image {}: config is not valid JSON", info.id))?;
    let raw: Value = serde_json::from_slice(&bytes)?;
    Ok((cfg, raw))
}

/// `inspect` in Docker's shape.
fn inspect_one(store: &Store, id: &Digest) -> anyhow::Result<Value> {
    let info = store.meta().image(id)?.context("image vanished")?;
    let (cfg, raw) = read_config(store, &info)?;
    let s = |k: &str| raw.get(k).cloned().unwrap_or(json!(""));
    Ok(json!({
        "Id": info.id.to_string(),
        "RepoTags": info.tags.iter().map(|t| familiar(t)).collect::<Vec<_>>(),
        "RepoDigests": store
            .meta()
            .repo_digests_of(id)?
            .iter()
            .map(|d| familiar(d))
            .collect::<Vec<_>>(),
        "Parent": "",
        "Comment": cfg.comment.clone().unwrap_or_default(),
        "Created": info.created,
        "DockerVersion": s("docker_version"),
        "Author": s("author"),
        "Config": raw.get("config").cloned().unwrap_or(Value::Null),
        "Architecture": cfg.architecture,
        "Variant": cfg.variant,
        "Os": cfg.os,
        "Size": info.size,
        "RootFS": {
            "Type": cfg.rootfs.kind,
            "Layers": cfg.rootfs.diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        },
        "Metadata": { "LastTagTime": "0001-01-01T00:00:00Z" },
    }))
}

pub fn inspect(g: &Global, a: InspectArgs) -> anyhow::Result<u8> {
    let store = open_store(g)?;
    let mut all = Vec::new();
    let mut missing = Vec::new();
    for name in &a.images {
        match resolve_image(&store, name)? {
            Some(id) => {
                let mut v = inspect_one(&store, &id)?;
                // A multi-platform tag: its index and platforms.
                if let Some((d, entries)) = strata_store::transfer::index_entries(&store, name)? {
                    v["Index"] = json!(d.to_string());
                    v["Platforms"] = json!(entries
                        .iter()
                        .map(|e| json!({"Platform": e.platform.to_string(), "Id": e.image.to_string()}))
                        .collect::<Vec<_>>());
                }
                all.push(v)
            }
            None => missing.push(name.clone()),
        }
    }
    let mut out = std::io::stdout().lock();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut out,
        serde_json::ser::PrettyFormatter::with_indent(b"    "),
    );
    serde::Serialize::serialize(&all, &mut ser)?;
    writeln!(out)?;
    for m in &missing {
        eprintln!("Error: No such image: {m}");
    }
    Ok(u8::from(!missing.is_empty()))
}

pub fn history(g: &Global, a: HistoryArgs) -> anyhow::Result<u8> {
    let store = open_store(g)?;
    let id = find(&store, &a.image)?;
    let info = store.meta().image(&id)?.context("image vanished")?;
    let (cfg, _) = read_config(&store, &info)?;
    let mut layers = info.layers.iter();
    let mut rows = Vec::new();
    for h in &cfg.history {
        let size = if h.empty_layer {
            0
        } else {
            layers.next().map_or(0, |l| l.uncompressed_size)
        };
        let by = h.created_by.clone().unwrap_or_default();
        rows.push(vec![
            "<missing>".to_string(),
            since(h.created.as_deref().unwrap_or("")),
            if a.no_trunc { by } else { ellipsis(&by, 45) },
            human_size(size),
            h.comment.clone().unwrap_or_default(),
        ]);
    }
    rows.reverse();
    if let Some(top) = rows.first_mut() {
        top[0] = if a.no_trunc {
            id.to_string()
        } else {
            id.short().to_string()
        };
    }
    table(
        &mut std::io::stdout().lock(),
        &["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
        &rows,
    )?;
    Ok(0)
}
