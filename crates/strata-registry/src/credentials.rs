//! Credentials as Docker keeps them: `$DOCKER_CONFIG/config.json` (default
//! `~/.docker/config.json`) with `auths` entries (base64 `user:password` in
//! `auth`; Docker Hub under `https://index.docker.io/v1/`), `credsStore`
//! (one helper for everything) and `credHelpers` (a helper per registry),
//! helpers being `docker-credential-NAME get|store|erase` speaking JSON.
//!
//! The file is rewritten atomically (temp file created mode 0600 in the same
//! directory, fsync, rename), keeping every entry and field we do not own.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Map, Value};

use crate::error::Error;

/// Docker Hub's key in `auths` and for helpers.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// A user name and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// The user name.
    pub username: String,
    /// The password or token.
    pub password: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credential({}, <redacted>)", self.username)
    }
}

/// The Docker client configuration directory: `$DOCKER_CONFIG`, else `~/.docker`.
pub fn config_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"));
    home.join(".docker")
}

/// The key under which Docker files a registry (`docker.io` → the Hub URL).
pub fn config_key(registry: &str) -> String {
    match normalize_host(registry).as_str() {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB_KEY.to_string(),
        h => h.to_string(),
    }
}

/// `https://host:port/v1/` → `host:port` (as Docker's `ConvertToHostname`).
fn normalize_host(s: &str) -> String {
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    s.split('/').next().unwrap_or(s).to_string()
}

/// The credentials file and helpers of one configuration directory.
#[derive(Debug, Clone)]
pub struct CredentialStore {
    dir: PathBuf,
}

impl Default for CredentialStore {
    fn default() -> Self {
        CredentialStore::new(config_dir())
    }
}

impl CredentialStore {
    /// A store in the Docker config directory `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> CredentialStore {
        CredentialStore { dir: dir.into() }
    }

    /// The `config.json` it reads and writes.
    pub fn path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    fn load(&self) -> Result<Map<String, Value>, Error> {
        let path = self.path();
        match fs::read(&path) {
            Ok(b) if b.iter().all(|c| c.is_ascii_whitespace()) => Ok(Map::new()),
            Ok(b) => match serde_json::from_slice::<Value>(&b) {
                Ok(Value::Object(m)) => Ok(m),
                Ok(_) => Err(Error::Credentials(format!(
                    "{}: not a JSON object",
                    path.display()
                ))),
                Err(e) => Err(Error::Credentials(format!("{}: {e}", path.display()))),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
            Err(e) => Err(Error::io(format!("read {}", path.display()), e)),
        }
    }

    fn helper_for(cfg: &Map<String, Value>, key: &str) -> Option<String> {
        let host = normalize_host(key);
        if let Some(Value::Object(h)) = cfg.get("credHelpers") {
            for (k, v) in h {
                if (k == key || normalize_host(k) == host)
                    && v.as_str().is_some_and(|s| !s.is_empty())
                {
                    return v.as_str().map(str::to_string);
                }
            }
        }
        cfg.get("credsStore")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    /// The credentials for `registry` (`docker.io`, `127.0.0.1:5000`...), if any.
    pub fn get(&self, registry: &str) -> Result<Option<Credential>, Error> {
        let cfg = self.load()?;
        let key = config_key(registry);
        if let Some(helper) = Self::helper_for(&cfg, &key) {
            if let Some(c) = helper_get(&helper, &key)? {
                return Ok(Some(c));
            }
        }
        let Some(Value::Object(auths)) = cfg.get("auths") else {
            return Ok(None);
        };
        let host = normalize_host(&key);
        let entry = auths.get(&key).or_else(|| {
            auths
                .iter()
                .find(|(k, _)| config_key(&normalize_host(k)) == key || normalize_host(k) == host)
                .map(|(_, v)| v)
        });
        let Some(Value::Object(e)) = entry else {
            return Ok(None);
        };
        if let Some(auth) = e
            .get("auth")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            let raw = base64_decode(auth).ok_or_else(|| {
                Error::Credentials(format!(
                    "{}: auths[{key:?}].auth is not base64",
                    self.path().display()
                ))
            })?;
            let text = String::from_utf8_lossy(&raw).into_owned();
            let (u, p) = text.split_once(':').ok_or_else(|| {
                Error::Credentials(format!(
                    "{}: auths[{key:?}].auth is not user:password",
                    self.path().display()
                ))
            })?;
            return Ok(Some(Credential {
                username: u.to_string(),
                password: p.trim_end_matches('\n').to_string(),
            }));
        }
        match (
            e.get("username").and_then(Value::as_str),
            e.get("password").and_then(Value::as_str),
        ) {
            (Some(u), Some(p)) => Ok(Some(Credential {
                username: u.into(),
                password: p.into(),
            })),
            _ => Ok(None),
        }
    }

    /// Saves credentials (through the helper when one is configured).
    /// Returns where they went, for the user.
    pub fn store(&self, registry: &str, cred: &Credential) -> Result<String, Error> {
        let mut cfg = self.load()?;
        let key = config_key(registry);
        let auths = cfg
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        let where_;
        if let Some(helper) = Self::helper_for(&cfg, &key) {
            let input =
                json!({"ServerURL": key, "Username": cred.username, "Secret": cred.password});
            run_helper(&helper, "store", input.to_string().as_bytes())?;
            // As Docker: an empty entry says "credentials live in the helper".
            let auths = cfg["auths"].as_object_mut().expect("object");
            auths.insert(key.clone(), json!({}));
            where_ = format!("the credential helper docker-credential-{helper}");
        } else {
            let auths = cfg["auths"].as_object_mut().expect("object");
            let mut entry = match auths.remove(&key) {
                Some(Value::Object(m)) => m,
                _ => Map::new(),
            };
            entry.remove("username");
            entry.remove("password");
            entry.insert(
                "auth".into(),
                Value::String(base64_encode(
                    format!("{}:{}", cred.username, cred.password).as_bytes(),
                )),
            );
            auths.insert(key.clone(), Value::Object(entry));
            where_ = self.path().display().to_string();
        }
        self.save(&cfg)?;
        Ok(where_)
    }

    /// Removes credentials; returns false when there were none.
    pub fn erase(&self, registry: &str) -> Result<bool, Error> {
        let mut cfg = self.load()?;
        let key = config_key(registry);
        let mut found = false;
        if let Some(helper) = Self::helper_for(&cfg, &key) {
            found |= run_helper(&helper, "erase", key.as_bytes()).is_ok();
        }
        if let Some(Value::Object(auths)) = cfg.get_mut("auths") {
            let keys: Vec<String> = auths
                .keys()
                .filter(|k| config_key(&normalize_host(k)) == key)
                .cloned()
                .collect();
            for k in keys {
                auths.remove(&k);
                found = true;
            }
        }
        if found {
            self.save(&cfg)?;
        }
        Ok(found)
    }

    /// Atomic rewrite; the file is created 0600 and never readable by others.
    fn save(&self, cfg: &Map<String, Value>) -> Result<(), Error> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| Error::io(format!("create {}", self.dir.display()), e))?;
        let path = self.path();
        let tmp = self
            .dir
            .join(format!(".config.json.{}.tmp", std::process::id()));
        let _ = fs::remove_file(&tmp);
        let write = |tmp: &Path| -> std::io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(tmp)?;
            let mut text = serde_json::to_vec_pretty(cfg).map_err(std::io::Error::other)?;
            text.push(b'\n');
            f.write_all(&text)?;
            f.sync_all()?;
            fs::rename(tmp, &path)
        };
        write(&tmp).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            Error::io(format!("write {}", path.display()), e)
        })
    }
}

fn helper_get(helper: &str, key: &str) -> Result<Option<Credential>, Error> {
    let out = match run_helper(helper, "get", key.as_bytes()) {
        Ok(o) => o,
        Err(HelperError::NotFound) => return Ok(None),
        Err(HelperError::Failed(msg)) => return Err(Error::Credentials(msg)),
    };
    let v: Value = serde_json::from_slice(&out).map_err(|e| {
        Error::Credentials(format!(
            "docker-credential-{helper} get: bad JSON output: {e}"
        ))
    })?;
    let user = v
        .get("Username")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let secret = v.get("Secret").and_then(Value::as_str).unwrap_or_default();
    if secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credential {
        username: user.to_string(),
        password: secret.to_string(),
    }))
}

enum HelperError {
    NotFound,
    Failed(String),
}

impl From<HelperError> for Error {
    fn from(e: HelperError) -> Error {
        match e {
            HelperError::NotFound => Error::Credentials("credentials not found".into()),
            HelperError::Failed(m) => Error::Credentials(m),
        }
    }
}

fn run_helper(helper: &str, verb: &str, input: &[u8]) -> Result<Vec<u8>, HelperError> {
    let prog = format!("docker-credential-{helper}");
    let mut child = Command::new(&prog)
        .arg(verb)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            HelperError::Failed(format!(
                "cannot run {prog} (from config.json credsStore/credHelpers): {e}"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    let out = child
        .wait_with_output()
        .map_err(|e| HelperError::Failed(format!("{prog} {verb}: {e}")))?;
    if out.status.success() {
        return Ok(out.stdout);
    }
    let msg = String::from_utf8_lossy(&out.stdout).trim().to_string()
        + String::from_utf8_lossy(&out.stderr).trim();
    if msg.contains("credentials not found") {
        return Err(HelperError::NotFound);
    }
    Err(HelperError::Failed(format!(
        "{prog} {verb} failed ({}): {msg}",
        out.status
    )))
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard or URL-safe base64, padding optional. `None` on bad input.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.trim().bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn base64_round_trip() {
        for s in [
            "",
            "a",
            "ab",
            "abc",
            "user:pässword",
            "testuser:testpassword",
        ] {
            assert_eq!(
                base64_decode(&base64_encode(s.as_bytes())).unwrap(),
                s.as_bytes()
            );
        }
        assert_eq!(base64_encode(b"user:pass"), "dXNlcjpwYXNz");
    }

    #[test]
    fn keys_like_docker() {
        assert_eq!(config_key("docker.io"), DOCKER_HUB_KEY);
        assert_eq!(config_key("https://index.docker.io/v1/"), DOCKER_HUB_KEY);
        assert_eq!(config_key("127.0.0.1:5000"), "127.0.0.1:5000");
    }

    #[test]
    fn store_get_erase_keeps_other_entries() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config.json");
        fs::write(
            &cfg,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpwYXNz"},"http://other:5000/v2/":{"auth":"YTpi"}},"psFormat":"x"}"#,
        )
        .unwrap();
        let cs = CredentialStore::new(dir.path());
        assert_eq!(cs.get("docker.io").unwrap().unwrap().password, "pass");
        assert_eq!(cs.get("other:5000").unwrap().unwrap().username, "a");
        cs.store(
            "127.0.0.1:5000",
            &Credential {
                username: "u".into(),
                password: "p:q".into(),
            },
        )
        .unwrap();
        assert_eq!(
            fs::metadata(&cfg).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(cs.get("127.0.0.1:5000").unwrap().unwrap().password, "p:q");
        assert!(cs.erase("docker.io").unwrap());
        assert!(cs.get("docker.io").unwrap().is_none());
        let v: Value = serde_json::from_slice(&fs::read(&cfg).unwrap()).unwrap();
        assert_eq!(v["psFormat"], "x");
        assert!(v["auths"]["http://other:5000/v2/"].is_object());
    }
}
