//! Test support: a real `docker-registry` (Debian's distribution 2.8) on
//! 127.0.0.1 with its own storage dir and config, optionally with htpasswd
//! or token auth; a token server issuing RS256 JWTs signed with a key made
//! by `openssl` at test time; and an image made through the store API.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use strata_oci::{media_types, Descriptor, Digest, ImageManifest};
use strata_store::{ImageRecord, LayerRecord, Store};

/// A free TCP port on 127.0.0.1 (free when this returns).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How the registry authenticates clients.
pub enum Auth {
    /// Anonymous access.
    None,
    /// Basic auth against one htpasswd user.
    Htpasswd {
        /// The user name.
        user: String,
        /// Its password.
        password: String,
    },
    /// Bearer tokens from a [`TokenServer`].
    Token(TokenConfig),
}

impl Auth {
    /// Basic auth for one user.
    pub fn htpasswd(user: &str, password: &str) -> Auth {
        Auth::Htpasswd {
            user: user.into(),
            password: password.into(),
        }
    }
}

/// Where the registry sends clients for tokens, and how it checks them.
pub struct TokenConfig {
    /// The token endpoint URL.
    pub realm: String,
    /// The `service` the tokens are for.
    pub service: String,
    /// The `iss` the tokens carry.
    pub issuer: String,
    /// The certificate whose key signs the tokens.
    pub cert: PathBuf,
}

/// A running registry; killed on drop.
pub struct Registry {
    /// The `docker-registry` process.
    pub child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its config and storage (removed on drop).
    pub dir: tempfile::TempDir,
}

impl Registry {
    /// Starts a registry with its own storage; waits until it answers.
    pub fn start(auth: Auth) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage).unwrap();
        let auth_yaml = match &auth {
            Auth::None => String::new(),
            Auth::Htpasswd { user, password } => {
                let out = Command::new("htpasswd").args(["-Bbn", user, password]).output().expect("htpasswd (apache2-utils)");
                assert!(out.status.success());
                let path = dir.path().join("htpasswd");
                std::fs::write(&path, &out.stdout).unwrap();
                format!("auth:\n  htpasswd:\n    realm: strata-test\n    path: {}\n", path.display())
            }
            Auth::Token(t) => format!(
                "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                t.realm, t.service, t.issuer, t.cert.display()
            ),
        };
        let mut last_err = String::new();
        for _ in 0..5 {
            let port = free_port();
            let config = format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth_yaml}",
                storage.display()
            );
            let cfg = dir.path().join("config.yml");
            std::fs::write(&cfg, config).unwrap();
            let mut child = Command::new("/usr/bin/docker-registry")
                .arg("serve")
                .arg(&cfg)
                .stdout(Stdio::null())
                .stderr(Stdio::from(
                    std::fs::File::create(dir.path().join("registry.log")).unwrap(),
                ))
                .spawn()
                .expect("start /usr/bin/docker-registry");
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Some(st) = child.try_wait().unwrap() {
                    last_err = format!(
                        "registry exited {st}: {}",
                        std::fs::read_to_string(dir.path().join("registry.log"))
                            .unwrap_or_default()
                    );
                    break;
                }
                if let Some(status) = http_status(port, "/v2/") {
                    assert!(status == 200 || status == 401, "/v2/ answered {status}");
                    return Registry { child, port, dir };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("could not start docker-registry: {last_err}");
    }

    /// `127.0.0.1:PORT`, for references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Its storage root directory.
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// The registry's data file for a blob.
    pub fn blob_data(&self, d: &Digest) -> PathBuf {
        self.storage().join(format!(
            "docker/registry/v2/blobs/sha256/{}/{}/data",
            &d.hex()[..2],
            d.hex()
        ))
    }

    /// Stops it (as if it crashed); also done on drop.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The status of a plain GET, None when nothing answers.
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).ok()?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A token server: GET /token?service=&scope=... → `{"token": JWT}`,
/// RS256-signed with a fresh key whose self-signed certificate the
/// registry trusts. Checks basic credentials when given.
pub struct TokenServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The request lines it got, in order.
    pub requests: Arc<Mutex<Vec<String>>>,
    /// `expires_in` of the tokens issued from now on (seconds).
    pub expires_in: Arc<std::sync::atomic::AtomicU64>,
    /// The registry side of it (see [`TokenServer::registry_auth`]).
    pub config: TokenConfig,
    stop: Arc<AtomicBool>,
    _dir: tempfile::TempDir,
}

impl TokenServer {
    /// Starts it; with `credentials`, a token needs those basic credentials.
    pub fn start(credentials: Option<(&str, &str)>) -> TokenServer {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        let cert = dir.path().join("cert.pem");
        let st = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=strata-test-token",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "openssl req");
        let der = Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert)
            .output()
            .unwrap()
            .stdout;
        let x5c = b64(&der, false);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let expires_in = Arc::new(std::sync::atomic::AtomicU64::new(300));
        let expires2 = expires_in.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let config = TokenConfig {
            realm: format!("http://127.0.0.1:{port}/token"),
            service: "strata-test-registry".into(),
            issuer: "strata-test-issuer".into(),
            cert: cert.clone(),
        };
        let expected = credentials
            .map(|(u, p)| format!("Basic {}", b64(format!("{u}:{p}").as_bytes(), false)));
        let (reqs, stop2, key2, service, issuer) = (
            requests.clone(),
            stop.clone(),
            key.clone(),
            config.service.clone(),
            config.issuer.clone(),
        );
        listener.set_nonblocking(false).unwrap();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut first = String::new();
                if r.read_line(&mut first).is_err() {
                    continue;
                }
                let mut auth = None;
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).is_err() || h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        if k.eq_ignore_ascii_case("authorization") {
                            auth = Some(v.trim().to_string());
                        }
                    }
                }
                let target = first.split_whitespace().nth(1).unwrap_or("").to_string();
                let query = target.split_once('?').map(|x| x.1).unwrap_or("");
                let mut scopes = Vec::new();
                for kv in query.split('&') {
                    if let Some(v) = kv.strip_prefix("scope=") {
                        scopes.push(pct_decode(v));
                    }
                }
                reqs.lock().unwrap().push(scopes.join(" "));
                if let Some(exp) = &expected {
                    if auth.as_deref() != Some(exp.as_str()) {
                        let body = r#"{"details":"incorrect username or password"}"#;
                        let _ = write!(conn, "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                        continue;
                    }
                }
                let access: Vec<serde_json::Value> = scopes
                    .iter()
                    .flat_map(|s| s.split(' ').map(str::to_string).collect::<Vec<_>>())
                    .filter_map(|s| {
                        let mut p = s.splitn(3, ':');
                        let (t, n, a) = (p.next()?, p.next()?, p.next()?);
                        Some(serde_json::json!({"type": t, "name": n, "actions": a.split(',').collect::<Vec<_>>()}))
                    })
                    .collect();
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [x5c]});
                let claims = serde_json::json!({
                    "iss": issuer, "sub": "tester", "aud": service, "exp": now + 300, "nbf": now - 10,
                    "iat": now, "jti": format!("{now}-{}", reqs.lock().unwrap().len()), "access": access,
                });
                let signing_input = format!(
                    "{}.{}",
                    b64(header.to_string().as_bytes(), true),
                    b64(claims.to_string().as_bytes(), true)
                );
                let sig = openssl_sign(&key2, signing_input.as_bytes());
                let jwt = format!("{signing_input}.{}", b64(&sig, true));
                let body =
                    serde_json::json!({"token": jwt, "access_token": jwt, "expires_in": expires2.load(Ordering::SeqCst)})
                        .to_string();
                let _ = write!(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
            }
        });
        TokenServer {
            port,
            requests,
            expires_in,
            config,
            stop,
            _dir: dir,
        }
    }

    /// The [`Auth`] for a [`Registry`] that trusts this server.
    pub fn registry_auth(&self) -> Auth {
        Auth::Token(TokenConfig {
            realm: self.config.realm.clone(),
            service: self.config.service.clone(),
            issuer: self.config.issuer.clone(),
            cert: self.config.cert.clone(),
        })
    }

    /// How many token requests it has answered.
    pub fn request_count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn openssl_sign(key: &Path, data: &[u8]) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    out.stdout
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Base64 of `data`; with `url`, the unpadded URL-safe alphabet (JWT).
pub fn b64(data: &[u8], url: bool) -> String {
    let s = strata_registry::credentials::base64_encode(data);
    if url {
        s.trim_end_matches('=').replace('+', "-").replace('/', "_")
    } else {
        s
    }
}

/// A gzip'd layer tar with the given files.
pub fn layer(files: &[(&str, &[u8])]) -> (Vec<u8>, Digest) {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        tar.append_data(&mut h, name, *data).unwrap();
    }
    let raw = tar.into_inner().unwrap();
    let diff_id = Digest::sha256_of(&raw);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    (gz.finish().unwrap(), diff_id)
}

/// Makes an image (layers of the given files, Docker or OCI media types)
/// in `store`, tags it `name`, returns its ID.
pub fn make_image(store: &Store, name: &str, layers: &[Vec<(&str, &[u8])>], oci: bool) -> Digest {
    make_image_with(store, name, layers, oci, true)
}

/// [`make_image`] with the layers stored gzip'd or as plain tars.
pub fn make_image_with(
    store: &Store,
    name: &str,
    layers: &[Vec<(&str, &[u8])>],
    oci: bool,
    gzip: bool,
) -> Digest {
    let mut records = Vec::new();
    let mut diff_ids = Vec::new();
    let mut descs = Vec::new();
    for files in layers {
        let (gz, diff_id) = layer(files);
        let raw_len = {
            let mut d = flate2::read::GzDecoder::new(&gz[..]);
            let mut v = Vec::new();
            d.read_to_end(&mut v).unwrap();
            v.len() as u64
        };
        let (digest, size, mt) = if gzip {
            let (d, s) = store.blobs().put(None, &gz).unwrap();
            let mt = if oci {
                media_types::OCI_LAYER_TAR_GZIP
            } else {
                media_types::DOCKER_LAYER_TAR_GZIP
            };
            (d, s, mt)
        } else {
            let mut raw = Vec::new();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_end(&mut raw)
                .unwrap();
            let (d, s) = store.blobs().put(None, &raw).unwrap();
            let mt = if oci {
                media_types::OCI_LAYER_TAR
            } else {
                media_types::DOCKER_LAYER_TAR
            };
            (d, s, mt)
        };
        descs.push(Descriptor::new(mt, digest.clone(), size));
        records.push(LayerRecord {
            digest,
            diff_id: diff_id.clone(),
            size,
            uncompressed_size: raw_len,
            media_type: mt.into(),
        });
        diff_ids.push(diff_id);
    }
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05Z",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"], "Labels": {"name": name}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2024-01-02T03:04:05Z", "created_by": "test"}],
    });
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let (config_digest, config_size) = store.blobs().put(None, &config_bytes).unwrap();
    let (cmt, mmt) = if oci {
        (media_types::OCI_CONFIG, media_types::OCI_MANIFEST)
    } else {
        (media_types::DOCKER_CONFIG, media_types::DOCKER_MANIFEST)
    };
    let cdesc = Descriptor::new(cmt, config_digest.clone(), config_size);
    let manifest = if oci {
        ImageManifest::oci(cdesc, descs)
    } else {
        ImageManifest::docker(cdesc, descs)
    };
    let mbytes = serde_json::to_vec_pretty(&manifest).unwrap();
    let (mdigest, _) = store.blobs().put(None, &mbytes).unwrap();
    store
        .meta()
        .put_image(&ImageRecord {
            id: config_digest.clone(),
            manifest_digest: mdigest,
            manifest_media_type: mmt.into(),
            config_digest: config_digest.clone(),
            layers: records,
            created: "2024-01-02T03:04:05Z".into(),
        })
        .unwrap();
    let r = strata_oci::Reference::parse(name).unwrap();
    store.meta().tag(&r.to_string(), &config_digest).unwrap();
    config_digest
}
