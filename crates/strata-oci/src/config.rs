//! The image config (`application/vnd.oci.image.config.v1+json` /
//! `application/vnd.docker.container.image.v1+json`) with Docker's extra
//! fields. Top-level keys are lowercase; the runtime config inside
//! `"config"` uses Docker's capitalised names. Unknown fields round-trip in
//! `extra`; `container_config` is kept as raw JSON.
//!
//! Canonical form (what `Raw::from_value` writes): compact, Go escaping,
//! top-level keys sorted (Docker marshals the image through a map), the
//! runtime config in Docker's `container.Config` field order with Docker's
//! `null`/absent choices (`"Env":null`, `"Cmd":null` … but no
//! `"Healthcheck"`, `"Shell"`, `"StopSignal"` unless set).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::descriptor::Platform;
use crate::digest::Digest;
use crate::raw::{to_go_json, CanonicalJson};
use crate::timefmt::rfc3339_nano;

type JsonMap = serde_json::Map<String, serde_json::Value>;

/// A set as Go's `map[string]struct{}` (`{"80/tcp":{}}`).
pub type StringSet = BTreeMap<String, JsonMap>;

/// The image config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// The CPU architecture (`amd64`, `arm64`, ...).
    #[serde(default)]
    pub architecture: String,
    /// Who made the image (`MAINTAINER`, `--author`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// A free-form comment (`docker commit -m`, `docker import -m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The runtime config: what a container of the image runs, and how.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<RuntimeConfig>,
    /// The ID of the container the image was committed from (Docker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Docker's legacy copy of the build container's config, kept verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_config: Option<serde_json::Value>,
    /// RFC 3339 (Go's RFC3339Nano) creation time, kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The Docker version that built the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_version: Option<String>,
    /// One entry per build step, bottom first, empty-layer steps included.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    /// The operating system (`linux`).
    #[serde(default)]
    pub os: String,
    /// Required OS features (`os.features`).
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    /// The OS version (`os.version`, Windows images).
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    /// The layers, by diff ID.
    #[serde(default)]
    pub rootfs: RootFs,
    /// The CPU variant (`v7`, `v8`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Fields this model does not name, kept for the round trip.
    #[serde(flatten)]
    pub extra: JsonMap,
}

/// Docker's `container.Config`: what a container of this image runs with.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RuntimeConfig {
    // Docker's legacy fields are optional so that a config read from
    // elsewhere is written back with the fields it had (the canonical
    // form writes them all, absent ones as Docker's zero values).
    /// `Hostname`.
    #[serde(default, serialize_with = "or_zero")]
    pub hostname: Option<String>,
    /// `Domainname`.
    #[serde(default, serialize_with = "or_zero")]
    pub domainname: Option<String>,
    /// `USER`: the user (and group) processes run as.
    #[serde(default)]
    pub user: String,
    /// `AttachStdin`.
    #[serde(default, serialize_with = "or_zero")]
    pub attach_stdin: Option<bool>,
    /// `AttachStdout`.
    #[serde(default, serialize_with = "or_zero")]
    pub attach_stdout: Option<bool>,
    /// `AttachStderr`.
    #[serde(default, serialize_with = "or_zero")]
    pub attach_stderr: Option<bool>,
    /// `EXPOSE`: ports as `port/proto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<StringSet>,
    /// `Tty`.
    #[serde(default, serialize_with = "or_zero")]
    pub tty: Option<bool>,
    /// `OpenStdin`.
    #[serde(default, serialize_with = "or_zero")]
    pub open_stdin: Option<bool>,
    /// `StdinOnce`.
    #[serde(default, serialize_with = "or_zero")]
    pub stdin_once: Option<bool>,
    /// `ENV`: `KEY=value` strings, in order.
    #[serde(default)]
    pub env: Option<Vec<String>>,
    /// `CMD`: the default command (or the entrypoint's default arguments).
    #[serde(default, deserialize_with = "str_slice")]
    pub cmd: Option<Vec<String>>,
    /// `HEALTHCHECK`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    /// `ArgsEscaped` (Windows; kept as written).
    #[serde(default, skip_serializing_if = "is_false")]
    pub args_escaped: bool,
    /// `Image`: the base image Docker recorded.
    #[serde(default, serialize_with = "or_zero")]
    pub image: Option<String>,
    /// `VOLUME`: paths as a set.
    #[serde(default)]
    pub volumes: Option<StringSet>,
    /// `WORKDIR`.
    #[serde(default)]
    pub working_dir: String,
    /// `ENTRYPOINT`.
    #[serde(default, deserialize_with = "str_slice")]
    pub entrypoint: Option<Vec<String>>,
    /// `NetworkDisabled`.
    #[serde(default, skip_serializing_if = "not_true")]
    pub network_disabled: Option<bool>,
    /// `MacAddress`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    /// `ONBUILD` triggers, as written.
    #[serde(default)]
    pub on_build: Option<Vec<String>>,
    /// `LABEL`s.
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    /// `STOPSIGNAL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// `StopTimeout` in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    /// `SHELL`: the shell for shell-form commands.
    #[serde(
        default,
        deserialize_with = "str_slice",
        skip_serializing_if = "Option::is_none"
    )]
    pub shell: Option<Vec<String>>,
    /// Fields this model does not name, kept for the round trip.
    #[serde(flatten)]
    pub extra: JsonMap,
}

/// HEALTHCHECK settings; durations in nanoseconds, 0 meaning "inherit".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    /// `["NONE"]`, `["CMD", args...]` or `["CMD-SHELL", command]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Vec<String>>,
    /// Time between checks.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub interval: i64,
    /// How long one check may take.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeout: i64,
    /// Grace period after start during which failures do not count.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_period: i64,
    /// Time between checks during the start period.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_interval: i64,
    /// Failures in a row that make the container unhealthy.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: i64,
    /// Fields this model does not name, kept for the round trip.
    #[serde(flatten)]
    pub extra: JsonMap,
}

/// The layers' uncompressed digests, bottom first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    /// Always `layers`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The uncompressed digest of each layer, bottom first.
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
    /// Fields this model does not name, kept for the round trip.
    #[serde(flatten)]
    pub extra: JsonMap,
}

impl Default for RootFs {
    fn default() -> RootFs {
        RootFs {
            kind: "layers".into(),
            diff_ids: Vec::new(),
            extra: JsonMap::new(),
        }
    }
}

/// One line of `docker history`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// When the step ran (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Who made the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// The instruction or command of the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// A free-form comment (BuildKit writes `buildkit.dockerfile.v0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The step made no layer.
    #[serde(default, skip_serializing_if = "is_false")]
    pub empty_layer: bool,
    /// Fields this model does not name, kept for the round trip.
    #[serde(flatten)]
    pub extra: JsonMap,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

fn not_true(b: &Option<bool>) -> bool {
    *b != Some(true)
}

/// Writes an absent optional field as its type's zero value (Docker
/// marshals these fields always).
fn or_zero<T: Default + Serialize, S: serde::Serializer>(
    v: &Option<T>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => v.serialize(s),
        None => T::default().serialize(s),
    }
}

/// Docker's `strslice.StrSlice`: a JSON array of strings, a single string, or null.
fn str_slice<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => None,
        Some(OneOrMany::One(s)) => Some(vec![s]),
        Some(OneOrMany::Many(v)) => Some(v),
    })
}

impl ImageConfig {
    /// The config of `FROM scratch`: linux/amd64, no layers, no history,
    /// an empty runtime config.
    pub fn new_scratch() -> ImageConfig {
        ImageConfig {
            architecture: "amd64".into(),
            author: None,
            comment: None,
            config: Some(RuntimeConfig::default()),
            container: None,
            container_config: None,
            created: None,
            docker_version: None,
            history: Vec::new(),
            os: "linux".into(),
            os_features: None,
            os_version: None,
            rootfs: RootFs::default(),
            variant: None,
            extra: JsonMap::new(),
        }
    }

    /// The runtime config (an empty one if absent).
    pub fn runtime(&self) -> &RuntimeConfig {
        static EMPTY: std::sync::OnceLock<RuntimeConfig> = std::sync::OnceLock::new();
        match &self.config {
            Some(c) => c,
            None => EMPTY.get_or_init(RuntimeConfig::default),
        }
    }

    /// The runtime config, created empty if absent.
    pub fn runtime_mut(&mut self) -> &mut RuntimeConfig {
        self.config.get_or_insert_with(RuntimeConfig::default)
    }

    /// The platform the config declares (os, architecture, variant, os version and features).
    pub fn platform(&self) -> Platform {
        let mut p = Platform::new(&self.os, &self.architecture, self.variant.as_deref());
        p.os_version = self.os_version.clone();
        p.os_features = self.os_features.clone();
        p
    }

    /// The layers' diff IDs, bottom first.
    pub fn diff_ids(&self) -> &[Digest] {
        &self.rootfs.diff_ids
    }

    /// The chain IDs of this image's layers (see [`chain_ids`]).
    pub fn chain_ids(&self) -> Vec<Digest> {
        chain_ids(&self.rootfs.diff_ids)
    }

    /// Appends a history entry for a step that made no layer
    /// (`ENV`, `CMD`, ...), stamped `created`.
    pub fn push_empty_history(&mut self, created_by: impl Into<String>, created: Option<String>) {
        self.history.push(History {
            created,
            created_by: Some(created_by.into()),
            empty_layer: true,
            ..History::default()
        });
    }

    /// Appends a layer (its uncompressed digest) and its history entry.
    pub fn push_layer(
        &mut self,
        diff_id: Digest,
        created_by: impl Into<String>,
        created: Option<String>,
    ) {
        self.rootfs.diff_ids.push(diff_id);
        self.history.push(History {
            created,
            created_by: Some(created_by.into()),
            ..History::default()
        });
    }

    /// Sets `created` to `t` in Go's RFC3339Nano form.
    pub fn set_created(&mut self, t: time::OffsetDateTime) {
        self.created = Some(rfc3339_nano(t));
    }
}

impl CanonicalJson for ImageConfig {
    fn to_canonical_json(&self) -> Vec<u8> {
        // Docker marshals the image through a map: top-level keys sorted.
        let value = serde_json::to_value(self).expect("config serialises");
        match value {
            serde_json::Value::Object(map) => {
                let sorted: BTreeMap<String, serde_json::Value> = map.into_iter().collect();
                to_go_json(&sorted)
            }
            other => to_go_json(&other),
        }
    }
}

/// The layer chain IDs for `diff_ids`: chainID(0) = diffID(0),
/// chainID(n) = sha256(chainID(n-1) + " " + diffID(n)), as Docker and
/// containerd compute them.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => Digest::sha256_of(format!("{prev} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Raw;

    // A config as Docker's classic builder writes it (abridged), with an
    // unknown field at both levels.
    const DOCKER_CONFIG: &str = r##"{"architecture":"amd64","config":{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"],"Image":"sha256:9b2e2e1a8dd5b6ab5b4f67f8dfbe0f2fb4e0a1c0c6c3a0b0d0e0f0a0b0c0d0e0","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null,"XFuture":[1]},"container":"e1c1","container_config":{"Hostname":"e1c1","Cmd":["/bin/sh","-c","#(nop) ","CMD [\"sh\"]"]},"created":"2023-05-19T20:19:24.343045654Z","docker_version":"20.10.23","history":[{"created":"2023-05-19T20:19:24.13Z","created_by":"/bin/sh -c #(nop) ADD file:d1 in / "},{"created":"2023-05-19T20:19:24.343045654Z","created_by":"/bin/sh -c #(nop)  CMD [\"sh\"]","empty_layer":true}],"os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]},"zz_unknown":{"a":1}}"##;

    #[test]
    fn docker_config_round_trips_canonically() {
        let raw: Raw<ImageConfig> =
            Raw::from_bytes(DOCKER_CONFIG.as_bytes().to_vec(), "config").unwrap();
        let rc = raw.config.as_ref().unwrap();
        assert_eq!(rc.cmd.as_deref(), Some(&["sh".to_string()][..]));
        assert_eq!(rc.extra["XFuture"], serde_json::json!([1]));
        assert_eq!(raw.extra["zz_unknown"], serde_json::json!({"a": 1}));
        assert!(raw.history[1].empty_layer);
        // Re-serialising gives the same bytes: Docker's order and nulls.
        let again = raw.value().to_canonical_json();
        assert_eq!(String::from_utf8(again).unwrap(), DOCKER_CONFIG);
    }

    #[test]
    fn healthcheck_and_strslice() {
        let text = r#"{"architecture":"arm64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{"Cmd":"echo hi","Healthcheck":{"Test":["CMD-SHELL","true"],"Interval":30000000000,"Retries":3},"Shell":["/bin/bash","-c"]}}"#;
        let c: ImageConfig = serde_json::from_str(text).unwrap();
        let rc = c.config.unwrap();
        assert_eq!(rc.cmd, Some(vec!["echo hi".to_string()]));
        let hc = rc.healthcheck.unwrap();
        assert_eq!(hc.interval, 30_000_000_000);
        assert_eq!(hc.retries, 3);
        assert_eq!(rc.shell.unwrap().len(), 2);
    }

    #[test]
    fn scratch_config_is_docker_shaped() {
        let mut c = ImageConfig::new_scratch();
        c.push_layer(
            Digest::sha256_of(b"layer"),
            "COPY a / # buildkit",
            Some("2024-01-01T00:00:00Z".into()),
        );
        c.push_empty_history("CMD [\"sh\"]", None);
        let text = String::from_utf8(c.to_canonical_json()).unwrap();
        assert!(text.starts_with(r#"{"architecture":"amd64","config":{"Hostname":"","#));
        assert!(text.contains(r#""Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#));
        assert!(text.contains(r#""os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:"#));
        assert!(text.contains(r#"{"created_by":"CMD [\"sh\"]","empty_layer":true}"#));
    }

    #[test]
    fn chain_ids_match_known_values() {
        let a: Digest = "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4"
            .parse()
            .unwrap();
        let b: Digest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            .parse()
            .unwrap();
        let ids = chain_ids(&[a.clone(), b]);
        assert_eq!(ids[0], a);
        // printf 'sha256:a3ed…46d4 sha256:e3b0…b855' | sha256sum
        assert_eq!(ids[1].to_string(), CHAIN_AB);
        assert!(chain_ids(&[]).is_empty());
    }

    const CHAIN_AB: &str =
        "sha256:e735a3dad8470831ba9a0854a72b7af2a5c40e906b4389d69c39790bd3ac26eb";
}
