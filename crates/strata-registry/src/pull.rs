//! `pull`: resolve a reference to a manifest (picking a platform from an
//! index), fetch the config and the missing layers (several at once, each
//! streamed into the store and verified), check every layer against the
//! config's diff IDs, then register and tag the image.
//!
//! Every blob is written under a lease, so a concurrent GC cannot remove it
//! before the image record protects it; a failure leaves no image record
//! and no unverified blob.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use strata_oci::media_types::{self, Compression};
use strata_oci::{Descriptor, Digest, ImageConfig, ImageIndex, ImageManifest, Platform, Reference};
use strata_store::transfer::{scan_layer, LayerScan};
use strata_store::{ImageRecord, LayerRecord, Lease, Store};

use crate::client::{Client, ClientOptions};
use crate::error::Error;
use crate::progress::{ProgressMode, Reporter};

/// How to pull.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// The platform to pick from an index (default: the host's).
    pub platform: Option<Platform>,
    /// How to reach the registry.
    pub client: ClientOptions,
    /// How to show progress.
    pub progress: ProgressMode,
    /// Layers downloaded at once (default 3).
    pub jobs: usize,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            platform: None,
            client: ClientOptions::default(),
            progress: ProgressMode::Quiet,
            jobs: 3,
        }
    }
}

/// What a pull produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledImage {
    /// The image ID (config digest).
    pub id: Digest,
    /// The platform manifest the image was made from.
    pub manifest_digest: Digest,
    /// What the reference resolved to (the index for a multi-platform
    /// image): Docker's RepoDigest and the `Digest:` line of `docker pull`.
    pub repo_digest: Digest,
    /// The tag the image was given (None when pulled by digest only).
    pub tagged: Option<String>,
    /// The image the tag pointed at before the pull.
    pub previous: Option<Digest>,
    /// Layers downloaded (the others were already in the store).
    pub downloaded: usize,
    /// The image was in the store before the pull.
    pub existed: bool,
}

impl PulledImage {
    /// True when the pull changed nothing (Docker's "Image is up to date").
    pub fn up_to_date(&self) -> bool {
        // By digest there is no tag to move: the image being there is all.
        self.downloaded == 0
            && match &self.tagged {
                Some(_) => self.previous.as_ref() == Some(&self.id),
                None => self.existed,
            }
    }
}

/// Parses `os/arch[/variant]`, normalized as containerd does
/// ([`Platform::parse`]: `linux/aarch64` is `linux/arm64`).
pub fn parse_platform(s: &str) -> Result<Platform, Error> {
    Platform::parse(s).map_err(|e| Error::Invalid(e.to_string()))
}

/// Pulls `reference` into `store`, registers and tags it.
pub fn pull(
    store: &Store,
    reference: &Reference,
    options: &PullOptions,
) -> Result<PulledImage, Error> {
    let client = Client::new(reference.registry(), &options.client)?;
    pull_with(&client, store, reference, options)
}

/// [`pull`] with an existing client (reuses its auth tokens).
pub fn pull_with(
    client: &Client,
    store: &Store,
    reference: &Reference,
    options: &PullOptions,
) -> Result<PulledImage, Error> {
    let repo = reference.repository();
    let registry = reference.registry();
    // What an earlier pull killed with SIGKILL left (SIGINT and SIGTERM
    // clean up on their way out; see the CLI): best effort.
    let _ = store.remove_dead_temp_blobs();
    let wanted = options.platform.clone().unwrap_or_else(Platform::host);
    let reporter = Reporter::new(options.progress);
    let top_ref = match (reference.digest(), reference.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => "latest".to_string(),
    };
    if let Some(t) = reference.tag() {
        reporter.line(&format!("{t}: Pulling from {repo}"));
    }
    let (mut bytes, mut media_type, repo_digest) = client.get_manifest(repo, &top_ref)?;
    let mut manifest_digest = repo_digest.clone();
    if media_types::is_index(&media_type) {
        let index: ImageIndex = serde_json::from_slice(&bytes).map_err(|e| {
            Error::protocol(
                registry,
                format!("index {reference}"),
                format!("bad JSON: {e}"),
            )
        })?;
        let desc = pick_platform(&index, &wanted).ok_or_else(|| Error::NoPlatform {
            reference: reference.to_string(),
            wanted: wanted.to_string(),
            available: available(&index),
        })?;
        let (b, mt, d) = client.get_manifest(repo, &desc.digest.to_string())?;
        (bytes, media_type, manifest_digest) = (b, mt, d);
    }
    if !media_types::is_manifest(&media_type) {
        return Err(Error::protocol(
            registry,
            format!("manifest {reference}"),
            format!("unsupported media type {media_type:?} (strata reads OCI and Docker schema 2 images)"),
        ));
    }
    let manifest: ImageManifest = serde_json::from_slice(&bytes).map_err(|e| {
        Error::protocol(
            registry,
            format!("manifest {reference}"),
            format!("bad JSON: {e}"),
        )
    })?;

    let lease = store.lease(&format!("pull {reference}"))?;
    let config_digest = manifest.config.digest.clone();
    let config_bytes = if store.blobs().exists(&config_digest) {
        store.blobs().read(&config_digest)?
    } else {
        client.get_blob_bytes(repo, &config_digest, 32 << 20)?
    };
    let config: ImageConfig = serde_json::from_slice(&config_bytes).map_err(|e| {
        Error::protocol(
            registry,
            format!("config {config_digest}"),
            format!("bad JSON: {e}"),
        )
    })?;
    let diff_ids = config.diff_ids().to_vec();
    if diff_ids.len() != manifest.layers.len() {
        return Err(Error::protocol(
            registry,
            format!("image {reference}"),
            format!(
                "the manifest has {} layers but the config lists {} diff IDs",
                manifest.layers.len(),
                diff_ids.len()
            ),
        ));
    }

    let (layers, downloaded) = fetch_layers(
        client,
        store,
        repo,
        &manifest.layers,
        &diff_ids,
        &lease,
        &reporter,
        options.jobs,
    )?;

    store
        .blobs()
        .ingest_leased(Some(&config_digest), &mut &config_bytes[..], Some(&lease))?;
    store
        .blobs()
        .ingest_leased(Some(&manifest_digest), &mut &bytes[..], Some(&lease))?;
    let record = ImageRecord {
        id: config_digest.clone(),
        manifest_digest: manifest_digest.clone(),
        manifest_media_type: media_type,
        config_digest: config_digest.clone(),
        layers,
        created: config.created.clone().unwrap_or_default(),
    };
    let meta = store.meta();
    let existed = meta.image(&config_digest)?.is_some();
    let tagged = reference.tag().map(|t| {
        reference
            .with_tag(t)
            .map(|r| r.to_string())
            .unwrap_or_else(|_| reference.to_string())
    });
    let names: Vec<String> = tagged.iter().cloned().collect();
    let previous = store
        .register_image(&record, Some(&lease), &names)?
        .into_iter()
        .next()
        .flatten();
    meta.add_repo_digest(
        &format!("{}@{repo_digest}", reference.name()),
        &config_digest,
    )?;
    drop(lease);
    Ok(PulledImage {
        id: config_digest,
        manifest_digest,
        repo_digest,
        tagged,
        previous,
        downloaded,
        existed,
    })
}

/// The platforms of the images `reference` names, in the index's order
/// (Docker's `pull --all-platforms`): empty when it names one image, not
/// an index. Entries that are not images (attestations, `unknown/unknown`)
/// and repeated platforms are left out.
pub fn index_platforms(
    reference: &Reference,
    options: &ClientOptions,
) -> Result<Vec<Platform>, Error> {
    let client = Client::new(reference.registry(), options)?;
    let top_ref = match (reference.digest(), reference.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => "latest".to_string(),
    };
    let (bytes, media_type, _) = client.get_manifest(reference.repository(), &top_ref)?;
    if !media_types::is_index(&media_type) {
        return Ok(Vec::new());
    }
    let index: ImageIndex = serde_json::from_slice(&bytes).map_err(|e| {
        Error::protocol(
            reference.registry(),
            format!("index {reference}"),
            format!("bad JSON: {e}"),
        )
    })?;
    let mut out: Vec<Platform> = Vec::new();
    for d in &index.manifests {
        let Some(p) = d.platform.as_ref() else {
            continue;
        };
        if !media_types::is_manifest(&d.media_type) || p.os == "unknown" || out.contains(p) {
            continue;
        }
        out.push(p.clone());
    }
    Ok(out)
}

/// Picks the manifest for `wanted` from an index: same os and architecture,
/// and the same variant when one is asked for (arm64's `v8` is its default).
pub fn pick_platform<'a>(index: &'a ImageIndex, wanted: &Platform) -> Option<&'a Descriptor> {
    let norm = |p: &Platform| {
        let v = p
            .variant
            .clone()
            .filter(|v| !(p.architecture == "arm64" && v == "v8"));
        (p.os.clone(), p.architecture.clone(), v)
    };
    let (wos, warch, wvar) = norm(wanted);
    let candidates = index.manifests.iter().filter(|d| {
        media_types::is_manifest(&d.media_type)
            && d.platform.as_ref().is_some_and(|p| {
                let (os, arch, var) = norm(p);
                os == wos && arch == warch && (wvar.is_none() || var == wvar)
            })
    });
    let mut best = None;
    for d in candidates {
        let var = d.platform.as_ref().and_then(|p| p.variant.clone());
        // Without a wanted variant, prefer an entry without one.
        if best.is_none() || (wvar.is_none() && var.is_none()) {
            best = Some(d);
        }
    }
    best
}

fn available(index: &ImageIndex) -> String {
    let v: Vec<String> = index
        .manifests
        .iter()
        .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
        .collect();
    if v.is_empty() {
        "none named".into()
    } else {
        v.join(", ")
    }
}

/// One layer's record, and whether it was downloaded.
type LayerResult = Result<(LayerRecord, bool), Error>;

#[allow(clippy::too_many_arguments)]
fn fetch_layers(
    client: &Client,
    store: &Store,
    repo: &str,
    descs: &[Descriptor],
    diff_ids: &[Digest],
    lease: &Lease,
    reporter: &Reporter,
    jobs: usize,
) -> Result<(Vec<LayerRecord>, usize), Error> {
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let results: Mutex<Vec<Option<LayerResult>>> =
        Mutex::new((0..descs.len()).map(|_| None).collect());
    let bars: Vec<_> = descs
        .iter()
        .map(|d| reporter.blob(&d.digest, d.size, "Waiting"))
        .collect();
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, 8).min(descs.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= descs.len() || stop.load(Ordering::SeqCst) {
                    break;
                }
                let r = fetch_layer(
                    client,
                    store,
                    repo,
                    &descs[i],
                    &diff_ids[i],
                    lease,
                    &bars[i],
                );
                if r.is_err() {
                    stop.store(true, Ordering::SeqCst);
                }
                results.lock().unwrap()[i] = Some(r);
            });
        }
    });
    let mut layers = Vec::with_capacity(descs.len());
    let mut downloaded = 0;
    let mut first_err = None;
    for r in results.into_inner().unwrap() {
        match r {
            Some(Ok((l, fetched))) => {
                downloaded += usize::from(fetched);
                layers.push(l);
            }
            Some(Err(e)) => {
                first_err.get_or_insert(e);
            }
            None => {}
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok((layers, downloaded)),
    }
}

fn fetch_layer(
    client: &Client,
    store: &Store,
    repo: &str,
    desc: &Descriptor,
    diff_id: &Digest,
    lease: &Lease,
    bar: &crate::progress::BlobProgress,
) -> Result<(LayerRecord, bool), Error> {
    let blobs = store.blobs();
    let mut fetched = false;
    // Claim an existing blob for the lease (ingest returns without reading).
    let existing = blobs.exists(&desc.digest)
        && blobs
            .ingest_leased(Some(&desc.digest), &mut io::empty(), Some(lease))
            .is_ok();
    if existing {
        bar.finish("Already exists");
    } else {
        bar.set(0);
        let r = client.fetch_blob(repo, &desc.digest, desc.size, blobs, Some(lease), &|n| {
            bar.set(n)
        });
        if let Err(e) = r {
            bar.abandon("Failed");
            return Err(e);
        }
        fetched = true;
    }
    let compression = media_types::layer_compression(&desc.media_type).unwrap_or_else(|| {
        let mut head = [0u8; 4];
        let n = blobs
            .open(&desc.digest)
            .ok()
            .and_then(|mut f| f.read(&mut head).ok())
            .unwrap_or(0);
        Compression::sniff(&head[..n])
    });
    let uncompressed_size = match store
        .meta()
        .layer_by_diff_id(diff_id, Some(&desc.media_type))?
    {
        Some(l) if l.digest == desc.digest => l.uncompressed_size,
        _ => {
            let scan = scan_stored_layer(store, &desc.digest, compression)?;
            let (actual, n) = (scan.diff_id.expect("hashed"), scan.size);
            if let Some((entry, why)) = scan.bad_entry {
                // As `load` and `import`: an image that can never be
                // unpacked is refused when it comes in.
                bar.abandon("Bad layer");
                return Err(Error::Invalid(format!(
                    "{}/{repo}: layer {} can never be unpacked: entry {entry:?}: {why}; \
                     refusing to pull it",
                    client.registry(),
                    desc.digest
                )));
            }
            if let Some(c) = scan.content_size.filter(|_| &actual == diff_id) {
                strata_store::note_content_size(diff_id, c);
            }
            if &actual != diff_id {
                bar.abandon("Bad layer");
                return Err(Error::protocol(
                    client.registry(),
                    format!("layer {}", desc.digest),
                    format!(
                        "uncompressed content hashes to {actual}, the image config says {diff_id}"
                    ),
                ));
            }
            n
        }
    };
    if fetched {
        bar.finish("Pull complete");
    }
    Ok((
        LayerRecord {
            digest: desc.digest.clone(),
            diff_id: diff_id.clone(),
            size: desc.size,
            uncompressed_size,
            media_type: desc.media_type.clone(),
        },
        fetched,
    ))
}

/// Decompresses a stored layer blob in one pass: its diff ID, its
/// uncompressed size and its first entry no filesystem could unpack
/// ([`strata_store::transfer::scan_layer`], shared with `load`).
pub(crate) fn scan_stored_layer(
    store: &Store,
    digest: &Digest,
    c: Compression,
) -> Result<LayerScan, Error> {
    let f = io::BufReader::with_capacity(256 * 1024, store.blobs().open(digest)?);
    let what = || format!("decompress layer {digest}");
    let scan = match c {
        Compression::None => {
            let mut f = f;
            scan_layer(&mut f, true)
        }
        Compression::Gzip => scan_layer(&mut flate2::read::MultiGzDecoder::new(f), true),
        Compression::Zstd => {
            let mut d = ruzstd::decoding::StreamingDecoder::new(f)
                .map_err(|e| Error::io(what(), io::Error::other(e.to_string())))?;
            scan_layer(&mut d, true)
        }
    };
    scan.map_err(|e| Error::io(what(), e))
}
