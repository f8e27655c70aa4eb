//! Image commands: ls, rm, tag, inspect, history, load, save, import.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use serde_json::{json, Value};
use strata_oci::{Digest, ImageConfig, Reference};
use strata_store::transfer::resolve_image;
use strata_store::{ImageInfo, Store};

use super::output::{ellipsis, go_time, human_size, record_table, since};
use super::Global;

#[derive(clap::Subcommand, Debug)]
pub(crate) enum ImageCommand {
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
    /// Remove unused images
    Prune(PruneArgs),
    /// Explain an image's size: by layer and step, largest paths, wasted bytes, stages
    Explain(super::explain::ExplainArgs),
}

#[derive(clap::Args, Debug)]
pub(crate) struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

pub(crate) fn dispatch(g: &Global, c: ImageCommand) -> anyhow::Result<u8> {
    match c {
        ImageCommand::Ls(a) => ls(g, a),
        ImageCommand::Rm(a) => rm(g, a),
        ImageCommand::Inspect(a) => inspect(g, a),
        ImageCommand::History(a) => history(g, a),
        ImageCommand::Tag(a) => tag(g, a),
        ImageCommand::Load(a) => load(g, a),
        ImageCommand::Save(a) => save(g, a),
        ImageCommand::Import(a) => import(g, a),
        ImageCommand::Prune(a) => prune(g, a),
        ImageCommand::Explain(a) => super::explain::run(g, a),
    }
}

#[derive(clap::Args, Debug)]
pub(crate) struct LsArgs {
    /// Show all images (Docker's flag; strata keeps no intermediate
    /// images, so every image is listed either way)
    #[arg(short, long)]
    pub all: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Format output: table, json, or a Go template ('table {{.Repository}}\t{{.Size}}')
    #[arg(long)]
    pub format: Option<String>,
    /// Filter output: dangling=true|false, reference=PATTERN, before=IMAGE, since=IMAGE, label=KEY[=VALUE]
    #[arg(short, long = "filter", value_name = "FILTER")]
    pub filters: Vec<String>,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only images of this repository (and tag)
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

#[derive(clap::Args, Debug)]
pub(crate) struct RmArgs {
    /// Remove even if the image has several tags
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub(crate) struct TagArgs {
    pub source: String,
    pub target: String,
}

#[derive(clap::Args, Debug)]
pub(crate) struct InspectArgs {
    /// Format output: json, or a Go template ('{{.Config.Cmd}}')
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub(crate) struct HistoryArgs {
    pub image: String,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long, default_value = "true", action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub human: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Format output: table, json, or a Go template
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(clap::Args, Debug)]
pub(crate) struct LoadArgs {
    /// Archive file or OCI layout directory
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    /// Suppress the load output
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(clap::Args, Debug)]
pub(crate) struct SaveArgs {
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
pub(crate) struct ImportArgs {
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

pub(crate) use super::archive::{import, load, save};

/// Opens the store at the configured root.
pub(crate) fn open_store(g: &Global) -> anyhow::Result<Store> {
    let root = g.store_root();
    Store::open(&root).with_context(|| format!("open the store at {}", root.display()))
}

/// The image `name` refers to (tag, ID or ID prefix).
pub(crate) fn find(store: &Store, name: &str) -> anyhow::Result<Digest> {
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

/// An `image ls` filter, as Docker's `--filter`.
enum Filter {
    Dangling(bool),
    Reference(String),
    Before(String),
    Since(String),
    Label(String, Option<String>),
}

fn parse_filter(f: &str) -> anyhow::Result<Filter> {
    let (k, v) = f
        .split_once('=')
        .with_context(|| format!("bad format of filter (expected name=value): {f}"))?;
    Ok(match k.to_ascii_lowercase().as_str() {
        "dangling" => match v.to_ascii_lowercase().as_str() {
            "true" | "1" => Filter::Dangling(true),
            "false" | "0" => Filter::Dangling(false),
            _ => bail!("invalid filter 'dangling={v}'"),
        },
        "reference" => Filter::Reference(v.to_string()),
        "before" => Filter::Before(v.to_string()),
        "since" => Filter::Since(v.to_string()),
        "label" => match v.split_once('=') {
            Some((k, v)) => Filter::Label(k.to_string(), Some(v.to_string())),
            None => Filter::Label(v.to_string(), None),
        },
        _ => bail!("invalid filter '{k}' (valid: dangling, reference, before, since, label)"),
    })
}

/// Go's `path.Match` for `reference=`: `*` and `?` stop at `/`.
fn glob(pat: &str, s: &str) -> bool {
    fn m(p: &[char], s: &[char]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some('*') => (0..=s.len())
                .take_while(|&i| i == 0 || s[i - 1] != '/')
                .any(|i| m(&p[1..], &s[i..])),
            Some('?') => s.first().is_some_and(|c| *c != '/') && m(&p[1..], &s[1..]),
            Some(c) => s.first() == Some(c) && m(&p[1..], &s[1..]),
        }
    }
    let p: Vec<char> = pat.chars().collect();
    let s: Vec<char> = s.chars().collect();
    m(&p, &s)
}

/// The content size of an image: its layers' file bytes, as Docker's.
pub(crate) fn image_size(store: &Store, img: &ImageInfo) -> u64 {
    img.layers
        .iter()
        .map(|l| store.layer_content_size(l).unwrap_or(l.uncompressed_size))
        .sum()
}

/// Docker's header names for `image ls --format 'table ...'`.
fn ls_header() -> Value {
    json!({
        "Containers": "CONTAINERS", "CreatedAt": "CREATED AT", "CreatedSince": "CREATED",
        "Digest": "DIGEST", "ID": "IMAGE ID", "Repository": "REPOSITORY",
        "SharedSize": "SHARED SIZE", "Size": "SIZE", "Tag": "TAG",
        "UniqueSize": "UNIQUE SIZE", "VirtualSize": "VIRTUAL SIZE",
    })
}

pub(crate) fn ls(g: &Global, a: LsArgs) -> anyhow::Result<u8> {
    use super::template::{self, Kind};
    let store = open_store(g)?;
    let kind = template::kind(a.format.as_deref())?;
    let filters: Vec<Filter> = a
        .filters
        .iter()
        .map(|f| parse_filter(f))
        .collect::<anyhow::Result<_>>()?;
    let (images, rows) = ls_rows(&store)?;
    let created_of = |name: &str| -> anyhow::Result<Option<time::OffsetDateTime>> {
        let id = find(&store, name)?;
        let info = store.meta().image(&id)?.context("image vanished")?;
        Ok(super::output::parse_time(&info.created))
    };
    let mut bounds = Vec::new();
    for f in &filters {
        match f {
            Filter::Before(n) => bounds.push((true, created_of(n)?)),
            Filter::Since(n) => bounds.push((false, created_of(n)?)),
            _ => {}
        }
    }
    let mut labels_cache: std::collections::HashMap<
        usize,
        Option<std::collections::BTreeMap<String, String>>,
    > = Default::default();
    let mut kept = Vec::new();
    for (i, repo, tag) in rows {
        let img = &images[i];
        if let Some(r) = &a.reference {
            let (want_repo, want_tag) = match r.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
                Some((r, t)) => (r.to_string(), Some(t.to_string())),
                None => (r.clone(), None),
            };
            let want_repo = Reference::parse(&want_repo)
                .map(|r| r.familiar_name())
                .unwrap_or(want_repo);
            if repo != want_repo || want_tag.is_some_and(|t| t != tag) {
                continue;
            }
        }
        let mut keep = true;
        let created = super::output::parse_time(&img.created);
        for f in &filters {
            keep &= match f {
                Filter::Dangling(d) => img.tags.is_empty() == *d,
                Filter::Reference(p) => {
                    !img.tags.is_empty() && (glob(p, &repo) || glob(p, &format!("{repo}:{tag}")))
                }
                Filter::Label(k, v) => {
                    let labels = labels_cache.entry(i).or_insert_with(|| {
                        read_config(&store, img)
                            .ok()
                            .and_then(|(c, _)| c.config.and_then(|c| c.labels))
                    });
                    match labels.as_ref().and_then(|l| l.get(k)) {
                        Some(have) => v.as_ref().is_none_or(|v| v == have),
                        None => false,
                    }
                }
                Filter::Before(_) | Filter::Since(_) => true,
            };
        }
        for (before, bound) in &bounds {
            keep &= match (created, bound) {
                (Some(c), Some(b)) => {
                    if *before {
                        c < *b
                    } else {
                        c > *b
                    }
                }
                _ => false,
            };
        }
        if keep {
            kept.push((i, repo, tag));
        }
    }
    let mut sizes = std::collections::HashMap::new();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if a.quiet {
        let mut seen = std::collections::HashSet::new();
        for (i, _, _) in &kept {
            let id = &images[*i].id;
            if seen.insert(id.clone()) {
                if a.no_trunc {
                    writeln!(out, "{id}")?;
                } else {
                    writeln!(out, "{}", id.short())?;
                }
            }
        }
        out.flush()?;
        return Ok(0);
    }
    let mut records = Vec::new();
    for (i, repo, tag) in &kept {
        let img = &images[*i];
        let size = *sizes.entry(*i).or_insert_with(|| image_size(&store, img));
        let digest = if repo == "<none>" {
            None
        } else {
            store
                .meta()
                .repo_digests_of(&img.id)?
                .iter()
                .filter_map(|d| Reference::parse(d).ok())
                .find(|r| r.familiar_name() == *repo)
                .and_then(|r| r.digest().map(|d| d.to_string()))
        };
        records.push(json!({
            "Containers": "N/A",
            "CreatedAt": go_time(&img.created),
            "CreatedSince": since(&img.created),
            "Digest": digest.unwrap_or_else(|| "<none>".into()),
            "ID": if a.no_trunc { img.id.to_string() } else { img.id.short().to_string() },
            "Repository": repo,
            "SharedSize": "N/A",
            "Size": human_size(size),
            "Tag": tag,
            "UniqueSize": "N/A",
            "VirtualSize": super::output::human_size_prec(size, 4),
        }));
    }
    match kind {
        Kind::Json => template::write_json_lines(&mut out, &records)?,
        Kind::Template(f) => {
            let rows: Vec<_> = records.iter().map(template::record).collect();
            f.write_all(&mut out, &template::record(&ls_header()), &rows)?;
        }
        Kind::Default => {
            let cols: &[&str] = if a.digests {
                &["Repository", "Tag", "Digest", "ID", "CreatedSince", "Size"]
            } else {
                &["Repository", "Tag", "ID", "CreatedSince", "Size"]
            };
            record_table(&mut out, &ls_header(), &records, cols)?;
        }
    }
    out.flush()?;
    Ok(0)
}

/// `image prune`: dangling images (with `-a`, every image), then the
/// blobs only they used.
pub(crate) fn prune(g: &Global, a: PruneArgs) -> anyhow::Result<u8> {
    let warning = if a.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !a.force && !super::output::confirm(warning)? {
        return Ok(0);
    }
    let store = open_store(g)?;
    let (untagged, r) = store.prune_images(a.all).context("prune images")?;
    let mut out = std::io::stdout().lock();
    if !untagged.is_empty() || !r.images_removed.is_empty() {
        writeln!(out, "Deleted Images:")?;
        for t in &untagged {
            writeln!(out, "untagged: {}", familiar(t))?;
        }
        for id in &r.images_removed {
            writeln!(out, "deleted: {id}")?;
        }
        writeln!(out)?;
    }
    writeln!(out, "Total reclaimed space: {}", human_size(r.bytes_freed))?;
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
pub(crate) fn rm(g: &Global, a: RmArgs) -> anyhow::Result<u8> {
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

pub(crate) fn tag(g: &Global, a: TagArgs) -> anyhow::Result<u8> {
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
    let (cfg, _) = read_config(store, &info)?;
    let runtime = serde_json::to_value(cfg.config.clone().unwrap_or_default())?;
    let mut v = json!({
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
        "DockerVersion": cfg.docker_version.clone().unwrap_or_default(),
        "Author": cfg.author.clone().unwrap_or_default(),
        "Config": runtime,
        "Architecture": cfg.architecture,
        "Variant": cfg.variant,
        "Os": cfg.os,
        "Size": image_size(store, &info),
        "RootFS": {
            "Type": cfg.rootfs.kind,
            "Layers": cfg.rootfs.diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        },
        "Metadata": { "LastTagTime": "0001-01-01T00:00:00Z" },
    });
    // `omitempty` in Docker's type.
    if cfg.variant.is_none() {
        if let Some(o) = v.as_object_mut() {
            o.remove("Variant");
        }
    }
    Ok(v)
}

/// The Config a template sees, as Docker's CLI types it (an OCI image
/// config with Docker's extras, every field `omitempty`): a null list is
/// `[]` and a null map `map[]` to `%v`, and `{{json .Config}}` leaves the
/// empty fields out.
fn typed_config(raw: &Value) -> Value {
    const LISTS: [&str; 5] = ["Env", "Entrypoint", "Cmd", "OnBuild", "Shell"];
    const MAPS: [&str; 3] = ["ExposedPorts", "Volumes", "Labels"];
    let mut out = serde_json::Map::new();
    for k in [
        "User",
        "ExposedPorts",
        "Env",
        "Entrypoint",
        "Cmd",
        "Volumes",
        "WorkingDir",
        "Labels",
        "StopSignal",
        "ArgsEscaped",
        "Healthcheck",
        "OnBuild",
        "Shell",
    ] {
        let v = raw.get(k).cloned().unwrap_or(Value::Null);
        let v = match v {
            Value::Null if LISTS.contains(&k) => json!([]),
            Value::Null if MAPS.contains(&k) => json!({}),
            Value::Null if k == "ArgsEscaped" => json!(false),
            Value::Null if k != "Healthcheck" => json!(""),
            v => v,
        };
        out.insert(k.to_string(), v);
    }
    Value::Object(out)
}

/// Renders `--format` for one inspected image as Docker's CLI does: on
/// the typed object first; when that fails (a field the type lacks), on
/// the raw JSON, where a null or missing field prints `<no value>`.
fn render_inspect(f: &super::template::Format, raw: &Value) -> anyhow::Result<String> {
    use super::template;
    let mut typed = raw.clone();
    typed["Config"] = typed_config(&raw["Config"]);
    let mut typed = template::record(&typed);
    if let gtmpl_value::Value::Object(m) = &mut typed {
        if let Some(c) = m.get_mut("Config") {
            template::omit_empty(c);
        }
    }
    f.render(&typed)
        .or_else(|e| f.render(&template::raw(raw)).map_err(|_| e))
}

pub(crate) fn inspect(g: &Global, a: InspectArgs) -> anyhow::Result<u8> {
    use super::template::{self, Kind};
    let kind = template::kind(a.format.as_deref())?;
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
    match kind {
        Kind::Template(f) => {
            for v in all {
                writeln!(out, "{}", render_inspect(&f, &v)?)?;
            }
        }
        Kind::Default | Kind::Json => {
            let mut ser = serde_json::Serializer::with_formatter(
                &mut out,
                serde_json::ser::PrettyFormatter::with_indent(b"    "),
            );
            serde::Serialize::serialize(&all, &mut ser)?;
            writeln!(out)?;
        }
    }
    for m in &missing {
        eprintln!("Error: No such image: {m}");
    }
    Ok(u8::from(!missing.is_empty()))
}

pub(crate) fn history(g: &Global, a: HistoryArgs) -> anyhow::Result<u8> {
    use super::template::{self, Kind};
    let kind = template::kind(a.format.as_deref())?;
    let store = open_store(g)?;
    let id = find(&store, &a.image)?;
    let info = store.meta().image(&id)?.context("image vanished")?;
    let (cfg, _) = read_config(&store, &info)?;
    // Newest history entries go with the newest layers: a base made
    // without history (older layers than entries) leaves its layers
    // unlisted rather than every size shifted by one.
    let non_empty = cfg.history.iter().filter(|h| !h.empty_layer).count();
    let mut layers = info
        .layers
        .iter()
        .skip(info.layers.len().saturating_sub(non_empty));
    let mut records = Vec::new();
    for h in &cfg.history {
        let size = if h.empty_layer {
            0
        } else {
            layers.next().map_or(0, |l| {
                store.layer_content_size(l).unwrap_or(l.uncompressed_size)
            })
        };
        let by = h.created_by.clone().unwrap_or_default().replace('\t', " ");
        let created = h.created.as_deref().unwrap_or("");
        let created_at = super::output::parse_time(created)
            .and_then(|t| {
                t.to_offset(time::UtcOffset::UTC)
                    .replace_nanosecond(0)
                    .ok()
                    .and_then(|t| {
                        t.format(&time::format_description::well_known::Rfc3339)
                            .ok()
                    })
            })
            .unwrap_or_default();
        records.push(json!({
            "Comment": h.comment.clone().unwrap_or_default(),
            "CreatedAt": created_at,
            "CreatedBy": if a.no_trunc { by } else { ellipsis(&by, 45) },
            "CreatedSince": since(created),
            "ID": "<missing>",
            "Size": if a.human { human_size(size) } else { size.to_string() },
        }));
    }
    records.reverse();
    if let Some(top) = records.first_mut() {
        top["ID"] = json!(if a.no_trunc {
            id.to_string()
        } else {
            id.short().to_string()
        });
    }
    let mut out = std::io::stdout().lock();
    if a.quiet {
        for r in &records {
            writeln!(out, "{}", r["ID"].as_str().unwrap_or(""))?;
        }
        return Ok(0);
    }
    let header = json!({
        "Comment": "COMMENT", "CreatedAt": "CREATED AT", "CreatedBy": "CREATED BY",
        "CreatedSince": "CREATED", "ID": "IMAGE", "Size": "SIZE",
    });
    match kind {
        Kind::Json => template::write_json_lines(&mut out, &records)?,
        Kind::Template(f) => {
            let rows: Vec<_> = records.iter().map(template::record).collect();
            f.write_all(&mut out, &template::record(&header), &rows)?;
        }
        Kind::Default => {
            let when = if a.human { "CreatedSince" } else { "CreatedAt" };
            let cols = ["ID", when, "CreatedBy", "Size", "Comment"];
            record_table(&mut out, &header, &records, &cols)?;
        }
    }
    Ok(0)
}
