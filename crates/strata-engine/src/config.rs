//! Docker's edit rules over the image config, instruction by instruction
//! (ENV replaces in place, ENTRYPOINT resets an inherited CMD, shell forms
//! go through SHELL, WORKDIR joins relative paths...) and BuildKit's
//! history entries.
//!
//! The model is strata-oci's [`ImageConfig`]; this module only edits it
//! ([`ConfigEditor`]). How a build writes it (the bytes whose sha256 is the
//! image ID) is in [`crate::config_json`].

use std::collections::BTreeMap;

use strata_frontend::{Command, HealthcheckSpec};
use strata_oci::Digest;

pub use strata_oci::{Healthcheck, History, ImageConfig, RootFs, RuntimeConfig};

/// The comment BuildKit puts on every history entry of a Dockerfile build.
pub const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";

/// Docker's default SHELL.
pub fn default_shell() -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into()]
}

/// An instruction's command: shell form (one string) or exec form.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum CommandForm {
    /// `CMD echo hi`: run through SHELL.
    Shell(String),
    /// `CMD ["echo", "hi"]`: run as given.
    Exec(Vec<String>),
}

impl From<&Command> for CommandForm {
    fn from(c: &Command) -> CommandForm {
        match c {
            Command::Shell(s) => CommandForm::Shell(s.clone()),
            Command::Exec(v) => CommandForm::Exec(v.clone()),
        }
    }
}

/// An instruction's value the config cannot take (a bad EXPOSE port, a
/// VOLUME that is no path).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// A config for `FROM scratch`: the host's platform and Docker's default PATH.
pub fn scratch() -> ImageConfig {
    let mut c = ImageConfig::new_scratch();
    c.architecture = host_architecture().into();
    c.runtime_mut().env = Some(vec![
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
    ]);
    c
}

/// Reads a config (any producer's; unknown fields are kept).
pub fn from_json(bytes: &[u8]) -> Result<ImageConfig, serde_json::Error> {
    serde_json::from_slice(bytes)
}

/// The HEALTHCHECK of a Dockerfile (or `--change`) in the config's terms:
/// durations in nanoseconds, 0 for "inherit".
pub fn healthcheck(h: &HealthcheckSpec) -> Healthcheck {
    let ns = |d: Option<std::time::Duration>| d.map_or(0, |d| d.as_nanos() as i64);
    Healthcheck {
        test: (!h.test.is_empty()).then(|| h.test.clone()),
        interval: ns(h.interval),
        timeout: ns(h.timeout),
        start_period: ns(h.start_period),
        start_interval: ns(h.start_interval),
        retries: h.retries.unwrap_or(0) as i64,
        extra: Default::default(),
    }
}

/// Docker's rules for editing a config, as the Dockerfile instructions
/// (and `import`/`commit --change`) apply them.
pub trait ConfigEditor {
    /// The config a stage starts from on a base image. As BuildKit, which
    /// reads the base's config into the OCI image struct: top-level fields
    /// outside it (Docker's `comment` such as "Imported from -",
    /// `container`, `container_config`, `docker_version`) are dropped;
    /// `author` (an OCI field) is kept until a MAINTAINER replaces it.
    fn into_build_base(self) -> Self;
    /// The canonical bytes a build writes (their sha256 is the image ID).
    fn to_json(&self) -> Vec<u8>;
    /// The Env as (key, value) pairs.
    fn env_pairs(&self) -> Vec<(String, String)>;
    /// The SHELL in force.
    fn shell(&self) -> Vec<String>;
    /// Turns a command form into argv: shell form through SHELL.
    fn argv(&self, cmd: &CommandForm) -> Vec<String>;
    /// The working directory for RUN and COPY destinations (`/` when unset).
    fn workdir(&self) -> &str;
    /// ENV: each key replaces an existing one in place, or is appended.
    fn set_env(&mut self, pairs: &[(String, String)]);
    /// LABEL: each key set (a later one wins).
    fn add_labels(&mut self, pairs: &[(String, String)]);
    /// EXPOSE: `80`, `80/udp`, `8000-8002/tcp`.
    fn expose(&mut self, ports: &[String]) -> Result<(), ConfigError>;
    /// VOLUME: paths added to the set.
    fn add_volumes(&mut self, paths: &[String]) -> Result<(), ConfigError>;
    /// USER.
    fn set_user(&mut self, user: &str);
    /// WORKDIR: a relative path is joined to the current one. Returns the
    /// new working directory.
    fn set_workdir(&mut self, path: &str) -> String;
    /// CMD.
    fn set_cmd(&mut self, cmd: &CommandForm);
    /// ENTRYPOINT: `cmd_set_in_stage` is whether a CMD came earlier in this
    /// stage; if not, the inherited CMD is cleared (Docker's rule).
    fn set_entrypoint(&mut self, ep: &CommandForm, cmd_set_in_stage: bool);
    /// SHELL.
    fn set_shell(&mut self, shell: &[String]);
    /// STOPSIGNAL.
    fn set_stop_signal(&mut self, sig: &str);
    /// HEALTHCHECK; `None` is `HEALTHCHECK NONE`.
    fn set_healthcheck(&mut self, hc: Option<&HealthcheckSpec>);
    /// ONBUILD: a trigger appended, as written.
    fn add_onbuild(&mut self, trigger: &str);
    /// MAINTAINER.
    fn set_author(&mut self, author: &str);
    /// Records a history entry (BuildKit's comment), and for a layer step
    /// the layer's diff ID.
    fn push_history(&mut self, created: &str, created_by: String, layer_diff_id: Option<Digest>);
}

impl ConfigEditor for ImageConfig {
    fn into_build_base(mut self) -> ImageConfig {
        self.comment = None;
        self.container = None;
        self.container_config = None;
        self.docker_version = None;
        self.extra.clear();
        self
    }

    fn to_json(&self) -> Vec<u8> {
        crate::config_json::to_json(self)
    }

    fn env_pairs(&self) -> Vec<(String, String)> {
        self.runtime()
            .env
            .iter()
            .flatten()
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (kv.clone(), String::new()),
            })
            .collect()
    }

    fn shell(&self) -> Vec<String> {
        self.runtime().shell.clone().unwrap_or_else(default_shell)
    }

    fn argv(&self, cmd: &CommandForm) -> Vec<String> {
        match cmd {
            CommandForm::Exec(v) => v.clone(),
            CommandForm::Shell(s) => {
                let mut v = self.shell();
                v.push(s.clone());
                v
            }
        }
    }

    fn workdir(&self) -> &str {
        match self.runtime().working_dir.as_str() {
            "" => "/",
            wd => wd,
        }
    }

    fn set_env(&mut self, pairs: &[(String, String)]) {
        let env = self.runtime_mut().env.get_or_insert_with(Vec::new);
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

    fn add_labels(&mut self, pairs: &[(String, String)]) {
        let labels = self.runtime_mut().labels.get_or_insert_with(BTreeMap::new);
        for (k, v) in pairs {
            labels.insert(k.clone(), v.clone());
        }
    }

    fn expose(&mut self, ports: &[String]) -> Result<(), ConfigError> {
        let set = self
            .runtime_mut()
            .exposed_ports
            .get_or_insert_with(BTreeMap::new);
        for spec in ports {
            for port in port_range(spec)? {
                set.insert(port, Default::default());
            }
        }
        Ok(())
    }

    fn add_volumes(&mut self, paths: &[String]) -> Result<(), ConfigError> {
        let set = self.runtime_mut().volumes.get_or_insert_with(BTreeMap::new);
        for p in paths {
            if p.trim().is_empty() {
                return Err(ConfigError(
                    "VOLUME specified can not be an empty string".into(),
                ));
            }
            set.insert(p.clone(), Default::default());
        }
        Ok(())
    }

    fn set_user(&mut self, user: &str) {
        self.runtime_mut().user = user.to_string();
    }

    fn set_workdir(&mut self, path: &str) -> String {
        let wd = if path.starts_with('/') {
            path.to_string()
        } else {
            clean_path(&format!("/{}/{path}", self.workdir()))
        };
        self.runtime_mut().working_dir = wd.clone();
        wd
    }

    fn set_cmd(&mut self, cmd: &CommandForm) {
        self.runtime_mut().cmd = Some(self.argv(cmd));
    }

    fn set_entrypoint(&mut self, ep: &CommandForm, cmd_set_in_stage: bool) {
        let argv = match ep {
            // `ENTRYPOINT []` clears it.
            CommandForm::Exec(v) if v.is_empty() => None,
            _ => Some(self.argv(ep)),
        };
        let rc = self.runtime_mut();
        rc.entrypoint = argv;
        if !cmd_set_in_stage {
            rc.cmd = None;
        }
    }

    fn set_shell(&mut self, shell: &[String]) {
        self.runtime_mut().shell = Some(shell.to_vec());
    }

    fn set_stop_signal(&mut self, sig: &str) {
        // An empty STOPSIGNAL leaves the field out, as if never set.
        self.runtime_mut().stop_signal = (!sig.is_empty()).then(|| sig.to_string());
    }

    fn set_healthcheck(&mut self, hc: Option<&HealthcheckSpec>) {
        self.runtime_mut().healthcheck = Some(match hc {
            Some(h) => healthcheck(h),
            None => Healthcheck {
                test: Some(vec!["NONE".into()]),
                ..Healthcheck::default()
            },
        });
    }

    fn add_onbuild(&mut self, trigger: &str) {
        self.runtime_mut()
            .on_build
            .get_or_insert_with(Vec::new)
            .push(trigger.to_string());
    }

    fn set_author(&mut self, author: &str) {
        self.author = Some(author.to_string());
    }

    fn push_history(&mut self, created: &str, created_by: String, layer_diff_id: Option<Digest>) {
        let empty_layer = layer_diff_id.is_none();
        if let Some(d) = layer_diff_id {
            self.rootfs.diff_ids.push(d);
        }
        self.history.push(History {
            created: Some(created.to_string()),
            created_by: Some(created_by),
            comment: Some(HISTORY_COMMENT.into()),
            empty_layer,
            ..History::default()
        });
        self.created = Some(created.to_string());
    }
}

/// The ports of one EXPOSE word (`80`, `80/udp`, `8000-8002/tcp`) as the
/// config's keys (`80/tcp`).
fn port_range(spec: &str) -> Result<Vec<String>, ConfigError> {
    let (range, proto) = match spec.split_once('/') {
        Some((r, p)) => (r, p.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
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
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
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
        let mut c = scratch();
        c.set_env(&[("A".into(), "1".into()), ("B".into(), "2".into())]);
        c.set_env(&[("A".into(), "3".into())]);
        assert_eq!(
            c.runtime().env.as_ref().unwrap()[1..],
            ["A=3".to_string(), "B=2".to_string()]
        );
    }

    #[test]
    fn entrypoint_resets_inherited_cmd_only() {
        let mut c = scratch();
        c.set_cmd(&CommandForm::Exec(vec!["sh".into()]));
        c.set_entrypoint(&CommandForm::Shell("/app/app".into()), false);
        assert_eq!(c.runtime().cmd, None);
        assert_eq!(
            c.runtime().entrypoint,
            Some(vec!["/bin/sh".into(), "-c".into(), "/app/app".into()])
        );
        c.set_cmd(&CommandForm::Shell("./app".into()));
        c.set_entrypoint(&CommandForm::Exec(vec!["x".into()]), true);
        assert_eq!(
            c.runtime().cmd,
            Some(vec!["/bin/sh".into(), "-c".into(), "./app".into()])
        );
    }

    #[test]
    fn workdir_and_ports() {
        let mut c = scratch();
        assert_eq!(c.set_workdir("/a"), "/a");
        assert_eq!(c.set_workdir("b/../c"), "/a/c");
        c.expose(&["80".into(), "53/udp".into(), "8000-8001".into()])
            .unwrap();
        let ports: Vec<_> = c
            .runtime()
            .exposed_ports
            .clone()
            .unwrap()
            .into_keys()
            .collect();
        assert_eq!(ports, ["53/udp", "80/tcp", "8000/tcp", "8001/tcp"]);
        assert!(scratch().expose(&["x".into()]).is_err());
    }

    #[test]
    fn round_trips_unknown_fields() {
        let json = br#"{"architecture":"amd64","os":"linux","os.version":"x","config":{"Hostname":"h","Env":["A=b"]},"rootfs":{"type":"layers","diff_ids":[]}}"#;
        let c = from_json(json).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&c.to_json()).unwrap();
        assert_eq!(v["os.version"], "x");
        assert_eq!(v["config"]["Hostname"], "h");
        assert_eq!(c.env_pairs(), vec![("A".to_string(), "b".to_string())]);
    }
}
