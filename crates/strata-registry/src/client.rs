//! The distribution API client for one registry: manifests, blobs (streamed
//! into the store with digest verification, resumed with `Range`), uploads
//! (chunked, with a monolithic fallback), retries with backoff, and the
//! auth flow of [`crate::auth`].

use std::io::{self, Read, Write};
use std::sync::Arc;

use strata_oci::{media_types, Digest};
use strata_store::{BlobStore, Lease, StoreError};
use ureq::http::Response;

use crate::auth::{Auth, Scope};
use crate::credentials::{Credential, CredentialStore};
use crate::error::Error;
use crate::transport::{self, PlainHttp};

/// What every request to a registry is configured with.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// Registries (`host:port`) spoken to over plain http.
    pub insecure_registries: Vec<String>,
    /// Credentials to use instead of the Docker config's.
    pub credential: Option<Credential>,
    /// Where Docker's config.json lives (None: `$DOCKER_CONFIG` or `~/.docker`).
    pub credential_store: Option<CredentialStore>,
    /// Retries of a failed request (transient errors only); default 4.
    pub retries: Option<u32>,
}

/// A request body that can be sent more than once (for auth and retries).
#[derive(Clone, Copy)]
pub(crate) enum Body<'a> {
    Empty,
    Bytes(&'a [u8], &'a str),
}

/// A client for one registry. `Send + Sync`; share it between threads.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    registry: String,
    base: String,
    plain_http: Option<PlainHttp>,
    agent: ureq::Agent,
    auth: Auth,
    retries: u32,
}

const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";
const MANIFEST_LIMIT: u64 = 4 << 20;

impl Client {
    /// `registry` as in a reference (`docker.io`, `127.0.0.1:5000`).
    pub fn new(registry: &str, options: &ClientOptions) -> Result<Client, Error> {
        let api_host = if registry == "docker.io" {
            "registry-1.docker.io"
        } else {
            registry
        };
        let plain_http = transport::plain_http(api_host, &options.insecure_registries);
        let scheme = if plain_http.is_some() {
            "http"
        } else {
            "https"
        };
        if plain_http == Some(PlainHttp::Insecure) {
            tracing::warn!("{registry}: using plain http (named as an insecure registry)");
        }
        let credential = match &options.credential {
            Some(c) => Some(c.clone()),
            None => options
                .credential_store
                .clone()
                .unwrap_or_default()
                .get(registry)?,
        };
        Ok(Client {
            inner: Arc::new(Inner {
                registry: registry.to_string(),
                base: format!("{scheme}://{api_host}"),
                plain_http,
                agent: transport::agent(concat!("strata/", env!("CARGO_PKG_VERSION"))),
                auth: Auth::new(registry, credential),
                retries: options.retries.unwrap_or(4),
            }),
        })
    }

    /// The registry host the client speaks to.
    pub fn registry(&self) -> &str {
        &self.inner.registry
    }

    /// `https://host` or `http://host`.
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// Why plain http is used, if it is.
    pub fn plain_http(&self) -> Option<PlainHttp> {
        self.inner.plain_http
    }

    /// How many tokens this client has requested from a token server.
    pub fn token_requests(&self) -> u64 {
        self.inner.auth.token_requests()
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{}", self.inner.base, path)
        }
    }

    /// Sends a request with auth (one re-try after a 401 challenge) and
    /// retries with backoff on transient failures.
    pub(crate) fn send(
        &self,
        method: &'static str,
        path: &str,
        headers: &[(&str, String)],
        body: Body<'_>,
        scope: &Scope,
    ) -> Result<Response<ureq::Body>, Error> {
        let url = self.url(path);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.send_authed(method, &url, headers, body, scope) {
                Ok(r)
                    if attempt <= self.inner.retries
                        && is_transient_status(r.status().as_u16()) =>
                {
                    tracing::debug!("{method} {url}: HTTP {}; retrying", r.status());
                }
                Ok(r) => return Ok(r),
                Err(e) if attempt <= self.inner.retries && e.is_transient() => {
                    tracing::debug!("{method} {url}: {e}; retrying");
                }
                Err(e) => return Err(e),
            }
            std::thread::sleep(transport::backoff(attempt));
        }
    }

    fn send_authed(
        &self,
        method: &'static str,
        url: &str,
        headers: &[(&str, String)],
        body: Body<'_>,
        scope: &Scope,
    ) -> Result<Response<ureq::Body>, Error> {
        let mut reauthed = false;
        loop {
            let auth = self.inner.auth.header(&self.inner.agent, scope)?;
            let resp = self.send_once(method, url, headers, body, auth.as_deref())?;
            if resp.status().as_u16() != 401 || reauthed {
                if resp.status().as_u16() == 401 {
                    return Err(self.unauthorized(resp));
                }
                return Ok(resp);
            }
            let challenge = header(&resp, "www-authenticate");
            if !self
                .inner
                .auth
                .on_unauthorized(challenge.as_deref(), scope, auth.as_deref())
            {
                return Err(self.unauthorized(resp));
            }
            reauthed = true;
        }
    }

    fn unauthorized(&self, resp: Response<ureq::Body>) -> Error {
        let detail = error_detail(resp);
        Error::Unauthorized {
            registry: self.inner.registry.clone(),
            detail: if self.inner.auth.has_credential() {
                format!("the registry rejected the credentials ({detail})")
            } else {
                format!("authentication required ({detail})")
            },
        }
    }

    fn send_once(
        &self,
        method: &'static str,
        url: &str,
        headers: &[(&str, String)],
        body: Body<'_>,
        auth: Option<&str>,
    ) -> Result<Response<ureq::Body>, Error> {
        let a = &self.inner.agent;
        let r = match method {
            "GET" | "HEAD" | "DELETE" => {
                // Redirects (blob GETs go to object storage) are followed
                // here, http(s) only; credentials go to `url` alone.
                let followed = transport::call_following(url, |u, first| {
                    let mut req = match method {
                        "GET" => a.get(u),
                        "HEAD" => a.head(u),
                        _ => a.delete(u),
                    };
                    for (k, v) in headers {
                        req = req.header(*k, v);
                    }
                    if let (Some(h), true) = (auth, first) {
                        req = req.header("Authorization", h);
                    }
                    req
                });
                return match followed {
                    Ok((resp, _)) => Ok(resp),
                    Err(transport::FollowError::Transport { url, source }) => {
                        Err(self.transport_err(method, &url, source))
                    }
                    Err(transport::FollowError::Redirect(why)) => Err(Error::protocol(
                        &self.inner.registry,
                        format!("{method} {url}"),
                        why.to_string(),
                    )),
                };
            }
            _ => {
                let mut req = match method {
                    "POST" => a.post(url),
                    "PUT" => a.put(url),
                    _ => a.patch(url),
                };
                for (k, v) in headers {
                    req = req.header(*k, v);
                }
                if let Some(h) = auth {
                    req = req.header("Authorization", h);
                }
                match body {
                    Body::Empty => req.header("Content-Length", "0").send_empty(),
                    Body::Bytes(b, ct) => req.header("Content-Type", ct).send(b),
                }
            }
        };
        r.map_err(|e| self.transport_err(method, url, e))
    }

    fn transport_err(&self, method: &'static str, url: &str, e: ureq::Error) -> Error {
        Error::Transport {
            registry: self.inner.registry.clone(),
            method,
            url: url.to_string(),
            cause: Box::new(e),
        }
    }

    /// Maps a non-2xx response to an error.
    pub(crate) fn check(
        &self,
        method: &'static str,
        what: &str,
        resp: Response<ureq::Body>,
    ) -> Result<Response<ureq::Body>, Error> {
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(resp);
        }
        let registry = self.inner.registry.clone();
        let detail = error_detail(resp);
        Err(match status {
            404 => Error::NotFound {
                registry,
                what: what.to_string(),
                detail: format!(" ({detail})"),
            },
            403 => Error::Denied {
                registry,
                what: what.to_string(),
                detail,
            },
            _ => Error::Http {
                registry,
                method,
                url: what.to_string(),
                status,
                detail,
            },
        })
    }

    /// GET `/v2/` with the auth flow: proves the registry speaks the API and
    /// (for login) that the credentials are accepted.
    pub fn ping(&self) -> Result<(), Error> {
        let resp = self.send("GET", "/v2/", &[], Body::Empty, &Scope::none())?;
        self.check("GET", "/v2/", resp).map(|_| ())
    }

    /// Fetches a manifest or index by tag or digest. Returns its bytes, its
    /// media type and its digest (computed, and checked when `reference` is
    /// a digest).
    pub fn get_manifest(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<(Vec<u8>, String, Digest), Error> {
        let path = format!("/v2/{repo}/manifests/{reference}");
        let what = format!("manifest {repo}:{reference}");
        let resp = self.send(
            "GET",
            &path,
            &[("Accept", MANIFEST_ACCEPT.to_string())],
            Body::Empty,
            &Scope::pull(repo),
        )?;
        let mut resp = self.check("GET", &what, resp)?;
        let ct = header(&resp, "content-type").unwrap_or_default();
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(MANIFEST_LIMIT)
            .read_to_vec()
            .map_err(|e| self.transport_err("GET", &path, e))?;
        let digest = Digest::sha256_of(&bytes);
        if let Ok(expected) = reference.parse::<Digest>() {
            if expected != digest {
                return Err(Error::DigestMismatch {
                    registry: self.inner.registry.clone(),
                    what,
                    expected,
                    actual: digest,
                    size: bytes.len() as u64,
                });
            }
        }
        let media_type = manifest_media_type(&ct, &bytes);
        Ok((bytes, media_type, digest))
    }

    /// The blob's size if the repository has it.
    pub fn blob_exists(
        &self,
        repo: &str,
        digest: &Digest,
        scope: &Scope,
    ) -> Result<Option<u64>, Error> {
        let path = format!("/v2/{repo}/blobs/{digest}");
        let resp = self.send("HEAD", &path, &[], Body::Empty, scope)?;
        match resp.status().as_u16() {
            404 => Ok(None),
            _ => {
                let resp = self.check("HEAD", &format!("blob {digest} in {repo}"), resp)?;
                Ok(Some(
                    header(&resp, "content-length")
                        .and_then(|l| l.parse().ok())
                        .unwrap_or(0),
                ))
            }
        }
    }

    /// Reads a small blob (a config) into memory, verified.
    pub fn get_blob_bytes(
        &self,
        repo: &str,
        digest: &Digest,
        limit: u64,
    ) -> Result<Vec<u8>, Error> {
        let path = format!("/v2/{repo}/blobs/{digest}");
        let what = format!("blob {digest}");
        let resp = self.send("GET", &path, &[], Body::Empty, &Scope::pull(repo))?;
        let mut resp = self.check("GET", &what, resp)?;
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(|e| self.transport_err("GET", &path, e))?;
        let actual = Digest::sha256_of(&bytes);
        if &actual != digest {
            return Err(Error::DigestMismatch {
                registry: self.inner.registry.clone(),
                what,
                expected: digest.clone(),
                actual,
                size: bytes.len() as u64,
            });
        }
        Ok(bytes)
    }

    /// Streams a blob straight into the store, verifying its digest and
    /// size. A broken transfer is resumed with `Range` (the writer keeps the
    /// hasher state, so nothing is re-read); a registry that ignores ranges
    /// restarts from zero. Nothing is stored unless the digest matches.
    pub fn fetch_blob(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        blobs: &BlobStore,
        lease: Option<&Lease>,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<u64, Error> {
        let path = format!("/v2/{repo}/blobs/{digest}");
        let what = format!("blob {digest}");
        let scope = Scope::pull(repo);
        let mut w = blobs.writer()?;
        let mut attempt = 0;
        loop {
            let offset = w.written();
            let mut headers = Vec::new();
            if offset > 0 {
                headers.push(("Range", format!("bytes={offset}-")));
            }
            let result = (|| -> Result<(), Error> {
                let resp = self.send("GET", &path, &headers, Body::Empty, &scope)?;
                let resp = self.check("GET", &what, resp)?;
                let status = resp.status().as_u16();
                if offset > 0 && status == 200 {
                    // No range support: start over.
                    tracing::debug!("{path}: the registry ignored Range; restarting");
                    w = blobs.writer()?;
                    progress(0);
                } else if offset > 0 && status == 206 {
                    let cr = header(&resp, "content-range").unwrap_or_default();
                    let start = cr
                        .strip_prefix("bytes ")
                        .and_then(|r| r.split('-').next())
                        .and_then(|s| s.trim().parse::<u64>().ok());
                    if start != Some(offset) {
                        return Err(Error::protocol(
                            &self.inner.registry,
                            &what,
                            format!("asked for bytes {offset}-, got Content-Range {cr:?}"),
                        ));
                    }
                }
                let mut reader = resp.into_body().into_reader();
                let mut buf = vec![0u8; 128 * 1024];
                loop {
                    let n = match reader.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            return Err(Error::Read {
                                registry: self.inner.registry.clone(),
                                what: what.clone(),
                                cause: e,
                            })
                        }
                    };
                    if w.written() + n as u64 > size {
                        return Err(Error::SizeMismatch {
                            registry: self.inner.registry.clone(),
                            what: what.clone(),
                            expected: size,
                            got: w.written() + n as u64,
                        });
                    }
                    w.write_all(&buf[..n])
                        .map_err(|e| Error::io(format!("write {what} into the store"), e))?;
                    progress(w.written());
                }
                if w.written() != size {
                    return Err(Error::SizeMismatch {
                        registry: self.inner.registry.clone(),
                        what: what.clone(),
                        expected: size,
                        got: w.written(),
                    });
                }
                Ok(())
            })();
            match result {
                Ok(()) => break,
                Err(e) if e.is_transient() && attempt < self.inner.retries => {
                    attempt += 1;
                    tracing::info!(
                        "{what}: {e}; resuming at byte {} (attempt {attempt})",
                        w.written()
                    );
                    std::thread::sleep(transport::backoff(attempt));
                }
                Err(e) => return Err(e),
            }
        }
        match w.commit_leased(Some(digest), lease) {
            Ok((_, n)) => Ok(n),
            Err(StoreError::DigestMismatch {
                expected,
                actual,
                size,
            }) => Err(Error::DigestMismatch {
                registry: self.inner.registry.clone(),
                what,
                expected,
                actual,
                size,
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Uploads a manifest; returns the digest the registry computed (or ours).
    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest, Error> {
        let path = format!("/v2/{repo}/manifests/{reference}");
        let resp = self.send(
            "PUT",
            &path,
            &[],
            Body::Bytes(bytes, media_type),
            &Scope::push(repo),
        )?;
        let resp = self.check("PUT", &format!("manifest {repo}:{reference}"), resp)?;
        let ours = Digest::sha256_of(bytes);
        if let Some(theirs) =
            header(&resp, "docker-content-digest").and_then(|d| d.parse::<Digest>().ok())
        {
            if theirs != ours {
                tracing::warn!(
                    "{repo}: the registry reports manifest digest {theirs}, ours is {ours}"
                );
            }
        }
        Ok(ours)
    }

    pub(crate) fn agent(&self) -> &ureq::Agent {
        &self.inner.agent
    }

    pub(crate) fn auth_header(&self, scope: &Scope) -> Result<Option<String>, Error> {
        self.inner.auth.header(&self.inner.agent, scope)
    }

    pub(crate) fn absolute(&self, location: &str) -> String {
        self.url(location)
    }

    pub(crate) fn transport_error(&self, method: &'static str, url: &str, e: ureq::Error) -> Error {
        self.transport_err(method, url, e)
    }
}

fn is_transient_status(status: u16) -> bool {
    status >= 500 || status == 429 || status == 408
}

pub(crate) fn header(resp: &Response<ureq::Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The registry's error message (`{"errors":[{"code","message"}]}`) or the
/// start of the body.
pub(crate) fn error_detail(mut resp: Response<ureq::Body>) -> String {
    let status = resp.status();
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_vec()
        .unwrap_or_default();
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
        if let Some(errs) = v.get("errors").and_then(|e| e.as_array()) {
            let msgs: Vec<String> = errs
                .iter()
                .map(|e| {
                    let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
                    let msg = e.get("message").and_then(|c| c.as_str()).unwrap_or("");
                    format!("{code}: {msg}")
                })
                .collect();
            if !msgs.is_empty() {
                return msgs.join("; ");
            }
        }
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(300)])
        .trim()
        .to_string();
    if text.is_empty() {
        format!("HTTP {status}")
    } else {
        text
    }
}

/// The manifest's media type: its `mediaType` field, else the Content-Type,
/// else guessed from its shape.
fn manifest_media_type(content_type: &str, bytes: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
    if let Some(mt) = v.get("mediaType").and_then(|m| m.as_str()) {
        return mt.to_string();
    }
    let ct = content_type.split(';').next().unwrap_or("").trim();
    if media_types::is_manifest(ct) || media_types::is_index(ct) {
        return ct.to_string();
    }
    if v.get("manifests").is_some() {
        media_types::OCI_INDEX.to_string()
    } else {
        media_types::OCI_MANIFEST.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A registry whose `/v2/` redirects to `file:///etc/passwd`.
    fn redirecting_registry() -> String {
        use std::io::BufRead;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for c in l.incoming().flatten() {
                let mut r = std::io::BufReader::new(c);
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                }
                let _ = r.get_mut().write_all(
                    b"HTTP/1.1 302 Found\r\nLocation: file:///etc/passwd\r\n\
                      Content-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        addr.to_string()
    }

    #[test]
    fn a_redirect_to_a_file_url_is_refused_by_name() {
        let reg = redirecting_registry();
        let c = Client::new(
            &reg,
            &ClientOptions {
                retries: Some(0),
                ..ClientOptions::default()
            },
        )
        .unwrap();
        let e = c.ping().unwrap_err().to_string();
        assert!(
            e.contains("redirect to unsupported scheme file://… refused"),
            "{e}"
        );
        assert!(!e.contains("too many redirects"), "{e}");
    }
}
