//! The image config as a build assembles it, instruction by instruction,
//! with Docker's semantics (ENV replaces in place, ENTRYPOINT resets an
//! inherited CMD, shell forms go through SHELL, WORKDIR joins relative
//! paths...) and BuildKit's history entries.
//!
//! The document is kept as Docker's JSON (field names as Docker writes them);
//! fields strata does not know are carried through untouched (`extra`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `{}` in JSON, the value type of Docker's sets (ExposedPorts, Volumes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// Docker's HEALTHCHECK config; durations in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Healthcheck {
    #[serde(rename = "Test", default, skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    #[serde(rename = "Interval", default, skip_serializing_if = "is_zero")]
    pub interval: i64,
    #[serde(rename = "Timeout", default, skip_serializing_if = "is_zero")]
    pub timeout: i64,
    #[serde(rename = "StartPeriod", default, skip_serializing_if = "is_zero")]
    pub start_period: i64,
    #[serde(rename = "StartInterval", default, skip_serializing_if = "is_zero")]
    pub start_interval: i64,
    #[serde(rename = "Retries", default, skip_serializing_if = "is_zero")]
    pub retries: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// The runtime part of the config (`config` in the JSON).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuntimeConfig {
    #[serde(rename = "User", default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(
        rename = "ExposedPorts",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub exposed_ports: Option<BTreeMap<String, Empty>>,
    #[serde(rename = "Env", default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(
        rename = "Entrypoint",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub entrypoint: Option<Vec<String>>,
    #[serde(rename = "Cmd", default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(
        rename = "Healthcheck",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub healthcheck: Option<Healthcheck>,
    #[serde(
        rename = "ArgsEscaped",
        default,
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub args_escaped: bool,
    #[serde(rename = "Volumes", default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, Empty>>,
    #[serde(
        rename = "WorkingDir",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub working_dir: String,
    #[serde(rename = "Labels", default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(rename = "OnBuild", default, skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
    #[serde(
        rename = "StopSignal",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub stop_signal: String,
    #[serde(rename = "Shell", default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// One history entry, as BuildKit writes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<String>,
}

impl Default for RootFs {
    fn default() -> Self {
        RootFs {
            kind: "layers".into(),
            diff_ids: Vec::new(),
        }
    }
}

/// The whole image config document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageConfigDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default)]
    pub config: RuntimeConfig,
    #[serde(default)]
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The comment BuildKit puts on every history entry of a Dockerfile build.
pub const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";

/// Docker's default SHELL.
pub fn default_shell() -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into()]
}

/// An instruction's command: shell form (one string) or exec form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum CommandForm {
    Shell(String),
    Exec(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl ImageConfigDoc {
    /// A config for `FROM scratch`.
    pub fn scratch() -> ImageConfigDoc {
        ImageConfigDoc {
            created: None,
            author: None,
            architecture: host_architecture().into(),
            os: "linux".into(),
            variant: None,
            config: RuntimeConfig {
                env: Some(vec![
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
                ]),
                ..RuntimeConfig::default()
            },
            rootfs: RootFs::default(),
            history: Vec::new(),
            extra: serde_json::Map::new(),
        }
    }

    /// The config a stage starts from on a base image. As BuildKit, which
    /// reads the base's config into the OCI image struct: top-level fields
    /// outside it (Docker's `comment` such as "Imported from -",
    /// `container`, `container_config`, `docker_version`) are dropped;
    /// `author` (an OCI field) is kept until a MAINTAINER replaces it.
    pub fn into_build_base(mut self) -> ImageConfigDoc {
        self.extra
            .retain(|k, _| k == "os.version" || k == "os.features");
        self
    }

    pub fn from_json(bytes: &[u8]) -> Result<ImageConfigDoc, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The canonical bytes (their sha256 is the image ID).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("config serializes")
    }

    /// The Env as (key, value) pairs.
    pub fn env_pairs(&self) -> Vec<(String, String)> {
        self.config
            .env
            .iter()
            .flatten()
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (kv.clone(), String::new()),
            })
            .collect()
    }

    /// The SHELL in force.
    pub fn shell(&self) -> Vec<String> {
        self.config.shell.clone().unwrap_or_else(default_shell)
    }

    /// Turns a command form into argv: shell form through SHELL.
    pub fn argv(&self, cmd: &CommandForm) -> Vec<String> {
        match cmd {
            CommandForm::Exec(v) => v.clone(),
            CommandForm::Shell(s) => {
                let mut v = self.shell();
                v.push(s.clone());
                v
            }
        }
    }

    /// ENV: each key replaces an existing one in place, or is appended.
    pub fn set_env(&mut self, pairs: &[(String, String)]) {
        let env = self.config.env.get_or_insert_with(Vec::new);
        for (k, v) in pairs {
            let entry = format!("{k}={v}");
            match env
                .iter_mut()
                .find(|e| e.split_once('=').map(|(ek, _)| ek).unwrap_or(e) == k)
            {
                Some(slot) => *slot = entry,
                None => env.push(entry),
            }
        }
    }

    pub fn add_labels(&mut self, pairs: &[(String, String)]) {
        let labels = self.config.labels.get_or_insert_with(BTreeMap::new);
        for (k, v) in pairs {
            labels.insert(k.clone(), v.clone());
        }
    }

    /// EXPOSE: `80`, `80/udp`, `8000-8002/tcp`.
    pub fn expose(&mut self, ports: &[String]) -> Result<(), ConfigError> {
        let set = self.config.exposed_ports.get_or_insert_with(BTreeMap::new);
        for spec in ports {
            let (range, proto) = match spec.split_once('/') {
                Some((r, p)) => (r, p.to_ascii_lowercase()),
                None => (spec.as_str(), "tcp".to_string()),
            };
            if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
                return Err(ConfigError(format!("invalid proto: {proto}")));
            }
            let bad = || ConfigError(format!("invalid containerPort: {range}"));
            let (lo, hi) = match range.split_once('-') {
                Some((a, b)) => (
                    a.parse::<u16>().map_err(|_| bad())?,
                    b.parse::<u16>().map_err(|_| bad())?,
                ),
                None => {
                    let p = range.parse::<u16>().map_err(|_| bad())?;
                    (p, p)
                }
            };
            if hi < lo {
                return Err(bad());
            }
            for p in lo..=hi {
                set.insert(format!("{p}/{proto}"), Empty {});
            }
        }
        Ok(())
    }

    pub fn add_volumes(&mut self, paths: &[String]) -> Result<(), ConfigError> {
        let set = self.config.volumes.get_or_insert_with(BTreeMap::new);
        for p in paths {
            if p.trim().is_empty() {
                return Err(ConfigError(
                    "VOLUME specified can not be an empty string".into(),
                ));
            }
            set.insert(p.clone(), Empty {});
        }
        Ok(())
    }

    pub fn set_user(&mut self, user: &str) {
        self.config.user = user.to_string();
    }

    /// WORKDIR: a relative path is joined to the current one. Returns the
    /// new working directory.
    pub fn set_workdir(&mut self, path: &str) -> String {
        let wd = if path.starts_with('/') {
            path.to_string()
        } else {
            let cur = if self.config.working_dir.is_empty() {
                "/"
            } else {
                &self.config.working_dir
            };
            clean_path(&format!("/{cur}/{path}"))
        };
        self.config.working_dir = wd.clone();
        wd
    }

    /// The working directory for RUN and COPY destinations (`/` when unset).
    pub fn workdir(&self) -> &str {
        if self.config.working_dir.is_empty() {
            "/"
        } else {
            &self.config.working_dir
        }
    }

    /// CMD.
    pub fn set_cmd(&mut self, cmd: &CommandForm) {
        self.config.cmd = Some(self.argv(cmd));
    }

    /// ENTRYPOINT: `cmd_set_in_stage` is whether a CMD came earlier in this
    /// stage; if not, the inherited CMD is cleared (Docker's rule).
    pub fn set_entrypoint(&mut self, ep: &CommandForm, cmd_set_in_stage: bool) {
        let argv = match ep {
            // `ENTRYPOINT []` clears it.
            CommandForm::Exec(v) if v.is_empty() => None,
            _ => Some(self.argv(ep)),
        };
        self.config.entrypoint = argv;
        if !cmd_set_in_stage {
            self.config.cmd = None;
        }
    }

    pub fn set_shell(&mut self, shell: &[String]) {
        self.config.shell = Some(shell.to_vec());
    }

    pub fn set_stop_signal(&mut self, sig: &str) {
        self.config.stop_signal = sig.to_string();
    }

    pub fn set_healthcheck(&mut self, hc: Option<Healthcheck>) {
        self.config.healthcheck = Some(hc.unwrap_or(Healthcheck {
            test: vec!["NONE".into()],
            ..Healthcheck::default()
        }));
    }

    pub fn add_onbuild(&mut self, trigger: &str) {
        self.config
            .on_build
            .get_or_insert_with(Vec::new)
            .push(trigger.to_string());
    }

    pub fn set_author(&mut self, author: &str) {
        self.author = Some(author.to_string());
    }

    /// Records a history entry (BuildKit's comment), and for a layer step
    /// the layer's diff ID.
    pub fn push_history(
        &mut self,
        created: &str,
        created_by: String,
        layer_diff_id: Option<String>,
    ) {
        let empty_layer = layer_diff_id.is_none();
        if let Some(d) = layer_diff_id {
            self.rootfs.diff_ids.push(d);
        }
        self.history.push(History {
            created: Some(created.to_string()),
            created_by: Some(created_by),
            author: None,
            comment: Some(HISTORY_COMMENT.into()),
            empty_layer,
        });
        self.created = Some(created.to_string());
    }
}

/// Go's `path.Clean` for absolute slash paths (`p` taken as rooted).
pub fn clean_path(p: &str) -> String {
    strata_frontend::ignore::clean_path(&format!("/{p}"))
}

/// The host's architecture in OCI/Go spelling.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// `CMD ["a" "b"]` as BuildKit writes CMD/ENTRYPOINT in history (Go's %q of a slice).
pub fn go_quoted_list(v: &[String]) -> String {
    let items: Vec<String> = v
        .iter()
        .map(|s| serde_json::to_string(s).unwrap_or_default())
        .collect();
    format!("[{}]", items.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_replaces_in_place() {
        let mut c = ImageConfigDoc::scratch();
        c.set_env(&[("A".into(), "1".into()), ("B".into(), "2".into())]);
        c.set_env(&[("A".into(), "3".into())]);
        assert_eq!(
            c.config.env.as_ref().unwrap()[1..],
            ["A=3".to_string(), "B=2".to_string()]
        );
    }

    #[test]
    fn entrypoint_resets_inherited_cmd_only() {
        let mut c = ImageConfigDoc::scratch();
        c.set_cmd(&CommandForm::Exec(vec!["sh".into()]));
        c.set_entrypoint(&CommandForm::Shell("/app/app".into()), false);
        assert_eq!(c.config.cmd, None);
        assert_eq!(
            c.config.entrypoint,
            Some(vec!["/bin/sh".into(), "-c".into(), "/app/app".into()])
        );
        c.set_cmd(&CommandForm::Shell("./app".into()));
        c.set_entrypoint(&CommandForm::Exec(vec!["x".into()]), true);
        assert_eq!(
            c.config.cmd,
            Some(vec!["/bin/sh".into(), "-c".into(), "./app".into()])
        );
    }

    #[test]
    fn workdir_and_ports() {
        let mut c = ImageConfigDoc::scratch();
        assert_eq!(c.set_workdir("/a"), "/a");
        assert_eq!(c.set_workdir("b/../c"), "/a/c");
        c.expose(&["80".into(), "53/udp".into(), "8000-8001".into()])
            .unwrap();
        let ports: Vec<_> = c.config.exposed_ports.unwrap().into_keys().collect();
        assert_eq!(ports, ["53/udp", "80/tcp", "8000/tcp", "8001/tcp"]);
        assert!(ImageConfigDoc::scratch().expose(&["x".into()]).is_err());
    }

    #[test]
    fn round_trips_unknown_fields() {
        let json = br#"{"architecture":"amd64","os":"linux","os.version":"x","config":{"Hostname":"h","Env":["A=b"]},"rootfs":{"type":"layers","diff_ids":[]}}"#;
        let c = ImageConfigDoc::from_json(json).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&c.to_json()).unwrap();
        assert_eq!(v["os.version"], "x");
        assert_eq!(v["config"]["Hostname"], "h");
        assert_eq!(c.env_pairs(), vec![("A".to_string(), "b".to_string())]);
    }
}
