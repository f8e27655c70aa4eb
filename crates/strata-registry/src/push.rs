//! `push`: upload an image's blobs (config and layers, several at once),
//! skipping those the registry has (HEAD), mounting those another repository
//! of the same registry has (`?mount=&from=`), uploading the rest in chunks
//! (PATCH, then PUT with the digest) with a monolithic PUT as the fallback;
//! the manifest goes last, byte for byte as stored, so the image keeps its
//! media types and digest — unless a layer is stored uncompressed, which is
//! gzip-compressed for the wire first (see `wire`).

use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use strata_oci::{Digest, ImageManifest, Reference};
use strata_store::Store;
use ureq::http::Response;

use crate::auth::Scope;
use crate::client::{error_detail, header, Body, Client, ClientOptions};
use crate::error::Error;
use crate::progress::{BlobProgress, ProgressMode, Reporter};
use crate::transport;

/// How to push.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// How to reach the registry.
    pub client: ClientOptions,
    /// How to show progress.
    pub progress: ProgressMode,
    /// Blobs uploaded at once (default 3).
    pub jobs: usize,
    /// Chunk size of PATCH uploads (default 16 MiB).
    pub chunk_size: u64,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            client: ClientOptions::default(),
            progress: ProgressMode::Quiet,
            jobs: 3,
            chunk_size: 16 << 20,
        }
    }
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedImage {
    /// The manifest digest (what `docker push` prints).
    pub digest: Digest,
    /// The manifest's size in bytes.
    pub size: u64,
    /// The tag (or digest) the manifest was put under.
    pub reference: String,
    /// Blobs uploaded.
    pub uploaded: usize,
    /// Blobs mounted from another repository.
    pub mounted: usize,
    /// Blobs the registry already had.
    pub existed: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Existed,
    Mounted,
    Uploaded,
}

/// Pushes the image `reference` names in `store` to its registry.
pub fn push(
    store: &Store,
    reference: &Reference,
    options: &PushOptions,
) -> Result<PushedImage, Error> {
    let client = Client::new(reference.registry(), &options.client)?;
    push_with(&client, store, reference, options)
}

/// [`push`] with an existing client.
pub fn push_with(
    client: &Client,
    store: &Store,
    reference: &Reference,
    options: &PushOptions,
) -> Result<PushedImage, Error> {
    let meta = store.meta();
    let local = reference.to_string();
    let id = meta.resolve_tag(&local)?.ok_or_else(|| {
        Error::Invalid(format!(
            "image {} is not in the store (tag an image with `strata tag IMAGE {}` first)",
            reference.familiar(),
            reference.familiar()
        ))
    })?;
    // A multi-platform tag: every platform's manifest (by digest), then
    // the index under the tag.
    let entries =
        strata_store::transfer::index_entries(store, &local).map_err(|cause| Error::Transfer {
            what: local.clone(),
            cause: Box::new(cause),
        })?;
    if let Some((_, entries)) = entries {
        let mut descs = Vec::new();
        let (mut uploaded, mut mounted, mut existed) = (0, 0, 0);
        let mut all_docker = true;
        for e in &entries {
            let info = meta.image(&e.image)?.ok_or_else(|| {
                Error::Invalid(format!("image {} vanished from the store", e.image))
            })?;
            let p = push_one(client, store, reference, &info, None, options)?;
            uploaded += p.uploaded;
            mounted += p.mounted;
            existed += p.existed;
            all_docker &= info.manifest_media_type == strata_oci::media_types::DOCKER_MANIFEST;
            let mut d = strata_oci::Descriptor::new(&info.manifest_media_type, p.digest, p.size);
            d.platform = Some(e.platform.clone());
            descs.push(d);
        }
        let index = if all_docker {
            strata_oci::ImageIndex::docker(descs)
        } else {
            strata_oci::ImageIndex::oci(descs)
        };
        let bytes = serde_json::to_vec(&index).expect("index serializes");
        let media_type = index.media_type.clone().unwrap_or_default();
        let target = tag_of(reference);
        let digest = client.put_manifest(reference.repository(), &target, &media_type, &bytes)?;
        return Ok(PushedImage {
            digest,
            size: bytes.len() as u64,
            reference: target,
            uploaded,
            mounted,
            existed,
        });
    }
    let info = meta
        .image(&id)?
        .ok_or_else(|| Error::Invalid(format!("image {id} vanished from the store")))?;
    let target = tag_of(reference);
    push_one(client, store, reference, &info, Some(&target), options)
}

fn tag_of(reference: &Reference) -> String {
    match (reference.tag(), reference.digest()) {
        (Some(t), _) => t.to_string(),
        (None, Some(d)) => d.to_string(),
        (None, None) => "latest".to_string(),
    }
}

/// Pushes one image's blobs and manifest, under `target` (a tag), else
/// under its own digest.
fn push_one(
    client: &Client,
    store: &Store,
    reference: &Reference,
    info: &strata_store::ImageInfo,
    target: Option<&str>,
    options: &PushOptions,
) -> Result<PushedImage, Error> {
    let local = reference.to_string();
    let manifest_bytes = store.blobs().read(&info.manifest_digest)?;
    let manifest: ImageManifest = serde_json::from_slice(&manifest_bytes).map_err(|e| {
        Error::Invalid(format!(
            "stored manifest {} of {local}: {e}",
            info.manifest_digest
        ))
    })?;
    let lease = store.lease(&format!("push {local}"))?;
    let (manifest, manifest_bytes) =
        crate::wire::wire_manifest(store, info, manifest, manifest_bytes, options.jobs, &lease)?;
    let repo = reference.repository();
    let reporter = Reporter::new(options.progress);
    reporter.line(&format!(
        "The push refers to repository [{}]",
        reference.name()
    ));

    let mut blobs: Vec<(Digest, u64)> = manifest
        .layers
        .iter()
        .map(|l| (l.digest.clone(), l.size))
        .collect();
    blobs.push((manifest.config.digest.clone(), manifest.config.size));
    let sources = mount_sources(store, reference)?;

    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<Outcome, Error>>>> =
        Mutex::new((0..blobs.len()).map(|_| None).collect());
    let bars: Vec<_> = blobs
        .iter()
        .map(|(d, s)| reporter.blob(d, *s, "Preparing"))
        .collect();
    std::thread::scope(|s| {
        for _ in 0..options.jobs.clamp(1, 8).min(blobs.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= blobs.len() || stop.load(Ordering::SeqCst) {
                    break;
                }
                let (digest, size) = &blobs[i];
                let from = sources.get(digest).map(Vec::as_slice).unwrap_or(&[]);
                let r = push_blob(
                    client,
                    store,
                    repo,
                    digest,
                    *size,
                    from,
                    options.chunk_size,
                    &bars[i],
                );
                match &r {
                    Ok(Outcome::Existed) => bars[i].finish("Layer already exists"),
                    Ok(Outcome::Mounted) => bars[i].finish(&format!(
                        "Mounted from {}",
                        from.first().map(String::as_str).unwrap_or("")
                    )),
                    Ok(Outcome::Uploaded) => bars[i].finish("Pushed"),
                    Err(_) => {
                        bars[i].abandon("Failed");
                        stop.store(true, Ordering::SeqCst);
                    }
                }
                results.lock().unwrap()[i] = Some(r);
            });
        }
    });
    let (mut uploaded, mut mounted, mut existed) = (0, 0, 0);
    for r in results.into_inner().unwrap().into_iter().flatten() {
        match r? {
            Outcome::Existed => existed += 1,
            Outcome::Mounted => mounted += 1,
            Outcome::Uploaded => uploaded += 1,
        }
    }
    let target = match target {
        Some(t) => t.to_string(),
        None => Digest::sha256_of(&manifest_bytes).to_string(),
    };
    let digest = client.put_manifest(repo, &target, &info.manifest_media_type, &manifest_bytes)?;
    store
        .meta()
        .add_repo_digest(&format!("{}@{digest}", reference.name()), &info.id)?;
    Ok(PushedImage {
        digest,
        size: manifest_bytes.len() as u64,
        reference: target,
        uploaded,
        mounted,
        existed,
    })
}

/// Blob → other repositories of the same registry that (as far as the local
/// store knows, from the tags of images holding the blob) already have it.
fn mount_sources(store: &Store, target: &Reference) -> Result<HashMap<Digest, Vec<String>>, Error> {
    let mut out: HashMap<Digest, Vec<String>> = HashMap::new();
    for img in store.meta().images()? {
        let repos: Vec<String> = img
            .tags
            .iter()
            .filter_map(|t| Reference::parse(t).ok())
            .filter(|r| r.registry() == target.registry() && r.repository() != target.repository())
            .map(|r| r.repository().to_string())
            .collect();
        if repos.is_empty() {
            continue;
        }
        let digests = img
            .layers
            .iter()
            .map(|l| &l.digest)
            .chain([&img.config_digest]);
        for d in digests {
            let e = out.entry(d.clone()).or_default();
            for r in &repos {
                if !e.contains(r) {
                    e.push(r.clone());
                }
            }
        }
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn push_blob(
    client: &Client,
    store: &Store,
    repo: &str,
    digest: &Digest,
    size: u64,
    from: &[String],
    chunk: u64,
    bar: &BlobProgress,
) -> Result<Outcome, Error> {
    let scope = Scope::push(repo);
    if client.blob_exists(repo, digest, &scope)?.is_some() {
        return Ok(Outcome::Existed);
    }
    let mut attempt = 0;
    loop {
        attempt += 1;
        let r = upload_once(client, store, repo, digest, size, from, chunk, bar);
        match r {
            Err(e) if e.is_transient() && attempt <= 3 => {
                tracing::info!("upload of {digest}: {e}; starting over (attempt {attempt})");
                std::thread::sleep(transport::backoff(attempt));
            }
            r => return r,
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn upload_once(
    client: &Client,
    store: &Store,
    repo: &str,
    digest: &Digest,
    size: u64,
    from: &[String],
    chunk: u64,
    bar: &BlobProgress,
) -> Result<Outcome, Error> {
    let path = format!("/v2/{repo}/blobs/uploads/");
    let what = format!("upload of blob {digest} to {repo}");
    if let Some(src) = from.first() {
        let scope = Scope::push(repo).and_pull(src);
        let mount_path = format!("{path}?mount={digest}&from={src}");
        let resp = client.send("POST", &mount_path, &[], Body::Empty, &scope)?;
        if resp.status().as_u16() == 201 {
            return Ok(Outcome::Mounted);
        }
        // 202: the registry opened an ordinary upload instead; use it.
        if resp.status().as_u16() == 202 {
            if let Some(loc) = header(&resp, "location") {
                return upload_to(client, store, repo, digest, size, loc, chunk, bar, &what);
            }
        }
    }
    let scope = Scope::push(repo);
    let resp = client.send("POST", &path, &[], Body::Empty, &scope)?;
    let resp = client.check("POST", &what, resp)?;
    let loc = header(&resp, "location").ok_or_else(|| {
        Error::protocol(
            client.registry(),
            &what,
            "no Location in the upload response",
        )
    })?;
    upload_to(client, store, repo, digest, size, loc, chunk, bar, &what)
}

#[allow(clippy::too_many_arguments)]
fn upload_to(
    client: &Client,
    store: &Store,
    repo: &str,
    digest: &Digest,
    size: u64,
    mut loc: String,
    chunk: u64,
    bar: &BlobProgress,
    what: &str,
) -> Result<Outcome, Error> {
    let scope = Scope::push(repo);
    // A built layer pushed as it is (a cache export) has no blob: its tar
    // is made again from its snapshot.
    let mut file = store.open_layer(digest)?;
    let mut offset = 0u64;
    let mut chunked = true;
    while offset < size && chunked {
        let n = chunk.max(1).min(size - offset);
        let section = (&mut file).take(n);
        let resp = stream(
            client,
            "PATCH",
            &loc,
            &scope,
            section,
            n,
            Some((offset, offset + n - 1)),
        )?;
        let status = resp.status().as_u16();
        if status == 202 || status == 204 {
            loc = header(&resp, "location").unwrap_or(loc);
            offset += n;
            bar.set(offset);
        } else if offset == 0 && (400..500).contains(&status) && status != 401 && status != 403 {
            tracing::info!(
                "{what}: chunked upload refused (HTTP {status}); uploading in one piece"
            );
            chunked = false;
        } else {
            return Err(client.check("PATCH", what, resp).err().unwrap_or_else(|| {
                Error::protocol(
                    client.registry(),
                    what,
                    format!("PATCH answered HTTP {status}"),
                )
            }));
        }
    }
    let put_url = with_query(&loc, &format!("digest={digest}"));
    let resp = if chunked {
        stream(client, "PUT", &put_url, &scope, std::io::empty(), 0, None)?
    } else {
        // Monolithic fallback: a fresh session and the whole blob in the PUT.
        let resp = client.send(
            "POST",
            &format!("/v2/{repo}/blobs/uploads/"),
            &[],
            Body::Empty,
            &scope,
        )?;
        let resp = client.check("POST", what, resp)?;
        let loc = header(&resp, "location").ok_or_else(|| {
            Error::protocol(
                client.registry(),
                what,
                "no Location in the upload response",
            )
        })?;
        // From the start again (a built layer's tar is made again).
        drop(file);
        let mut file = store.open_layer(digest)?;
        let r = stream(
            client,
            "PUT",
            &with_query(&loc, &format!("digest={digest}")),
            &scope,
            (&mut file).take(size),
            size,
            None,
        )?;
        bar.set(size);
        r
    };
    client.check("PUT", what, resp)?;
    Ok(Outcome::Uploaded)
}

/// Sends a streamed body (not replayable: auth must already be settled by
/// the POST that opened the session).
fn stream(
    client: &Client,
    method: &'static str,
    location: &str,
    scope: &Scope,
    mut body: impl Read,
    len: u64,
    range: Option<(u64, u64)>,
) -> Result<Response<ureq::Body>, Error> {
    let url = client.absolute(location);
    let agent = client.agent();
    let mut req = if method == "PATCH" {
        agent.patch(&url)
    } else {
        agent.put(&url)
    };
    req = req
        .header("Content-Type", "application/octet-stream")
        .header("Content-Length", len.to_string());
    if let Some((a, b)) = range {
        req = req.header("Content-Range", format!("{a}-{b}"));
    }
    if let Some(h) = client.auth_header(scope)? {
        req = req.header("Authorization", h);
    }
    let resp = req
        .send(ureq::SendBody::from_reader(&mut body))
        .map_err(|e| client.transport_error(method, &url, e))?;
    if resp.status().as_u16() == 401 {
        return Err(Error::Unauthorized {
            registry: client.registry().to_string(),
            detail: error_detail(resp),
        });
    }
    if resp.status().as_u16() >= 500 {
        let status = resp.status().as_u16();
        return Err(Error::Http {
            registry: client.registry().to_string(),
            method,
            url,
            status,
            detail: error_detail(resp),
        });
    }
    Ok(resp)
}

fn with_query(url: &str, q: &str) -> String {
    if url.contains('?') {
        format!("{url}&{q}")
    } else {
        format!("{url}?{q}")
    }
}
