//! The bytes a build writes for an image config (their sha256 is the image
//! ID), and the form cache records keep it in.
//!
//! BuildKit's layout, as strata has always written it: the OCI fields in
//! the OCI struct's order, Docker's extensions after them, every empty
//! field left out; the fields of other producers that a base image carried
//! (Docker's `Hostname`, `Image`... and unknown ones) follow in the order
//! Docker marshals them. This is not strata-oci's canonical form (Docker's
//! classic builder: sorted keys, `null`s), which `import`/`commit`-style
//! configs use.

use serde::ser::{Serialize, SerializeMap, Serializer};
use strata_oci::{Healthcheck, History, ImageConfig, RuntimeConfig};

/// The canonical bytes of a built image's config.
pub fn to_json(c: &ImageConfig) -> Vec<u8> {
    serde_json::to_vec(&BuildForm(c)).expect("config serializes")
}

/// `#[serde(with)]` for a config kept in a cache record: written as
/// [`to_json`] writes it, read as any config.
pub mod record {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use strata_oci::ImageConfig;

    /// Writes `c` in the build's byte form.
    pub fn serialize<S: Serializer>(c: &ImageConfig, s: S) -> Result<S::Ok, S::Error> {
        super::BuildForm(c).serialize(s)
    }

    /// Reads any config.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ImageConfig, D::Error> {
        ImageConfig::deserialize(d)
    }
}

/// Writes `key: value` when `value` is `Some`.
fn opt<M: SerializeMap, T: Serialize + ?Sized>(
    m: &mut M,
    key: &str,
    value: Option<&T>,
) -> Result<(), M::Error> {
    match value {
        Some(v) => m.serialize_entry(key, v),
        None => Ok(()),
    }
}

/// Writes `key: value` unless the string is empty.
fn non_empty<M: SerializeMap>(m: &mut M, key: &str, value: &str) -> Result<(), M::Error> {
    opt(m, key, (!value.is_empty()).then_some(value))
}

struct BuildForm<'a>(&'a ImageConfig);

impl Serialize for BuildForm<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.0;
        let mut m = s.serialize_map(None)?;
        opt(&mut m, "created", c.created.as_ref())?;
        opt(&mut m, "author", c.author.as_ref())?;
        m.serialize_entry("architecture", &c.architecture)?;
        m.serialize_entry("os", &c.os)?;
        opt(&mut m, "variant", c.variant.as_ref())?;
        match &c.config {
            Some(rc) => m.serialize_entry("config", &RuntimeForm(rc))?,
            None => m.serialize_entry("config", &RuntimeForm(&RuntimeConfig::default()))?,
        }
        m.serialize_entry("rootfs", &RootFsForm(c))?;
        if !c.history.is_empty() {
            let h: Vec<HistoryForm<'_>> = c.history.iter().map(HistoryForm).collect();
            m.serialize_entry("history", &h)?;
        }
        // Other producers' top-level fields, in Docker's (sorted) order.
        opt(&mut m, "comment", c.comment.as_ref())?;
        opt(&mut m, "container", c.container.as_ref())?;
        opt(&mut m, "container_config", c.container_config.as_ref())?;
        opt(&mut m, "docker_version", c.docker_version.as_ref())?;
        opt(&mut m, "os.version", c.os_version.as_ref())?;
        opt(&mut m, "os.features", c.os_features.as_ref())?;
        for (k, v) in &c.extra {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

struct RuntimeForm<'a>(&'a RuntimeConfig);

impl Serialize for RuntimeForm<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.0;
        let mut m = s.serialize_map(None)?;
        non_empty(&mut m, "User", &c.user)?;
        opt(&mut m, "ExposedPorts", c.exposed_ports.as_ref())?;
        opt(&mut m, "Env", c.env.as_ref())?;
        opt(&mut m, "Entrypoint", c.entrypoint.as_ref())?;
        opt(&mut m, "Cmd", c.cmd.as_ref())?;
        opt(
            &mut m,
            "Healthcheck",
            c.healthcheck.as_ref().map(HealthcheckForm).as_ref(),
        )?;
        opt(&mut m, "ArgsEscaped", c.args_escaped.then_some(&true))?;
        opt(&mut m, "Volumes", c.volumes.as_ref())?;
        non_empty(&mut m, "WorkingDir", &c.working_dir)?;
        opt(&mut m, "Labels", c.labels.as_ref())?;
        opt(&mut m, "OnBuild", c.on_build.as_ref())?;
        non_empty(&mut m, "StopSignal", c.stop_signal.as_deref().unwrap_or(""))?;
        opt(&mut m, "Shell", c.shell.as_ref())?;
        // Docker's container fields a base image carried, in Docker's order.
        opt(&mut m, "Hostname", c.hostname.as_ref())?;
        opt(&mut m, "Domainname", c.domainname.as_ref())?;
        opt(&mut m, "AttachStdin", c.attach_stdin.as_ref())?;
        opt(&mut m, "AttachStdout", c.attach_stdout.as_ref())?;
        opt(&mut m, "AttachStderr", c.attach_stderr.as_ref())?;
        opt(&mut m, "Tty", c.tty.as_ref())?;
        opt(&mut m, "OpenStdin", c.open_stdin.as_ref())?;
        opt(&mut m, "StdinOnce", c.stdin_once.as_ref())?;
        opt(&mut m, "Image", c.image.as_ref())?;
        opt(&mut m, "NetworkDisabled", c.network_disabled.as_ref())?;
        opt(&mut m, "MacAddress", c.mac_address.as_ref())?;
        opt(&mut m, "StopTimeout", c.stop_timeout.as_ref())?;
        for (k, v) in &c.extra {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

struct HealthcheckForm<'a>(&'a Healthcheck);

impl Serialize for HealthcheckForm<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let h = self.0;
        let nonzero = |n: &i64| (*n != 0).then_some(*n);
        let mut m = s.serialize_map(None)?;
        opt(&mut m, "Test", h.test.as_ref().filter(|t| !t.is_empty()))?;
        opt(&mut m, "Interval", nonzero(&h.interval).as_ref())?;
        opt(&mut m, "Timeout", nonzero(&h.timeout).as_ref())?;
        opt(&mut m, "StartPeriod", nonzero(&h.start_period).as_ref())?;
        opt(&mut m, "StartInterval", nonzero(&h.start_interval).as_ref())?;
        opt(&mut m, "Retries", nonzero(&h.retries).as_ref())?;
        m.end()
    }
}

struct RootFsForm<'a>(&'a ImageConfig);

impl Serialize for RootFsForm<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("type", &self.0.rootfs.kind)?;
        m.serialize_entry("diff_ids", &self.0.rootfs.diff_ids)?;
        m.end()
    }
}

struct HistoryForm<'a>(&'a History);

impl Serialize for HistoryForm<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let h = self.0;
        let mut m = s.serialize_map(None)?;
        opt(&mut m, "created", h.created.as_ref())?;
        opt(&mut m, "created_by", h.created_by.as_ref())?;
        opt(&mut m, "author", h.author.as_ref())?;
        opt(&mut m, "comment", h.comment.as_ref())?;
        opt(&mut m, "empty_layer", h.empty_layer.then_some(&true))?;
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{from_json, scratch, CommandForm, ConfigEditor};

    // A base config as Docker's classic builder writes it, with an unknown
    // runtime field and an unknown top-level one.
    const DOCKER: &str = r##"{"architecture":"amd64","config":{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"],"Image":"sha256:9b2e2e1a8dd5b6ab5b4f67f8dfbe0f2fb4e0a1c0c6c3a0b0d0e0f0a0b0c0d0e0","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null,"XFuture":[1]},"container":"e1c1","container_config":{"Hostname":"e1c1","Cmd":["/bin/sh","-c","#(nop) ","CMD [\"sh\"]"]},"created":"2023-05-19T20:19:24.343045654Z","docker_version":"20.10.23","history":[{"created":"2023-05-19T20:19:24.13Z","created_by":"/bin/sh -c #(nop) ADD file:d1 in / "},{"created":"2023-05-19T20:19:24.343045654Z","created_by":"/bin/sh -c #(nop)  CMD [\"sh\"]","empty_layer":true}],"os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]},"zz_unknown":{"a":1}}"##;

    // What strata wrote for these before the config model moved to
    // strata-oci (image IDs depend on every byte).
    const DOCKER_AS_IS: &str = r##"{"created":"2023-05-19T20:19:24.343045654Z","architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"],"Hostname":"","Domainname":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Image":"sha256:9b2e2e1a8dd5b6ab5b4f67f8dfbe0f2fb4e0a1c0c6c3a0b0d0e0f0a0b0c0d0e0","XFuture":[1]},"rootfs":{"type":"layers","diff_ids":["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]},"history":[{"created":"2023-05-19T20:19:24.13Z","created_by":"/bin/sh -c #(nop) ADD file:d1 in / "},{"created":"2023-05-19T20:19:24.343045654Z","created_by":"/bin/sh -c #(nop)  CMD [\"sh\"]","empty_layer":true}],"container":"e1c1","container_config":{"Hostname":"e1c1","Cmd":["/bin/sh","-c","#(nop) ","CMD [\"sh\"]"]},"docker_version":"20.10.23","zz_unknown":{"a":1}}"##;
    const DOCKER_AS_BASE: &str = r##"{"created":"2023-05-19T20:19:24.343045654Z","architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"],"Hostname":"","Domainname":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Image":"sha256:9b2e2e1a8dd5b6ab5b4f67f8dfbe0f2fb4e0a1c0c6c3a0b0d0e0f0a0b0c0d0e0","XFuture":[1]},"rootfs":{"type":"layers","diff_ids":["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]},"history":[{"created":"2023-05-19T20:19:24.13Z","created_by":"/bin/sh -c #(nop) ADD file:d1 in / "},{"created":"2023-05-19T20:19:24.343045654Z","created_by":"/bin/sh -c #(nop)  CMD [\"sh\"]","empty_layer":true}]}"##;
    const DOCKER_EDITED: &str = r##"{"created":"2024-02-02T00:00:01Z","author":"someone","architecture":"amd64","os":"linux","config":{"User":"app","ExposedPorts":{"53/udp":{},"8080/tcp":{}},"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","A=2","B=x y"],"Entrypoint":["/bin/e"],"Cmd":["/bin/sh","-c","run it"],"Healthcheck":{"Test":["CMD-SHELL","true"],"Interval":1,"Retries":3},"Volumes":{"/data":{}},"WorkingDir":"/dir","Labels":{"k":"v"},"OnBuild":["RUN echo"],"StopSignal":"SIGINT","Shell":["/bin/ash","-eo"],"Hostname":"","Domainname":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Image":"sha256:9b2e2e1a8dd5b6ab5b4f67f8dfbe0f2fb4e0a1c0c6c3a0b0d0e0f0a0b0c0d0e0","XFuture":[1]},"rootfs":{"type":"layers","diff_ids":["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4"]},"history":[{"created":"2023-05-19T20:19:24.13Z","created_by":"/bin/sh -c #(nop) ADD file:d1 in / "},{"created":"2023-05-19T20:19:24.343045654Z","created_by":"/bin/sh -c #(nop)  CMD [\"sh\"]","empty_layer":true},{"created":"2024-02-02T00:00:00Z","created_by":"ENV A=2","comment":"buildkit.dockerfile.v0","empty_layer":true},{"created":"2024-02-02T00:00:01Z","created_by":"RUN x","comment":"buildkit.dockerfile.v0"}]}"##;
    const RECORD: &str = r##"{"config":{"created":"2024-02-02T00:00:01Z","author":"someone","architecture":"amd64","os":"linux","config":{"User":"app","ExposedPorts":{"53/udp":{},"8080/tcp":{}},"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","A=2","B=x y"],"Entrypoint":["/bin/e"],"Cmd":["/bin/sh","-c","run it"],"Healthcheck":{"Test":["CMD-SHELL","true"],"Interval":1,"Retries":3},"Volumes":{"/data":{}},"WorkingDir":"/dir","Labels":{"k":"v"},"OnBuild":["RUN echo"],"StopSignal":"SIGINT","Shell":["/bin/ash","-eo"],"Hostname":"","Domainname":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Image":"sha256:9b2e2e1a8dd5b6ab5b4f67f8dfbe0f2fb4e0a1c0c6c3a0b0d0e0f0a0b0c0d0e0","XFuture":[1]},"rootfs":{"type":"layers","diff_ids":["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4"]},"history":[{"created":"2023-05-19T20:19:24.13Z","created_by":"/bin/sh -c #(nop) ADD file:d1 in / "},{"created":"2023-05-19T20:19:24.343045654Z","created_by":"/bin/sh -c #(nop)  CMD [\"sh\"]","empty_layer":true},{"created":"2024-02-02T00:00:00Z","created_by":"ENV A=2","comment":"buildkit.dockerfile.v0","empty_layer":true},{"created":"2024-02-02T00:00:01Z","created_by":"RUN x","comment":"buildkit.dockerfile.v0"}]},"layers":[],"cmd_set":true}"##;
    const SCRATCH: &str = r##"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},"rootfs":{"type":"layers","diff_ids":[]}}"##;
    const SCRATCH_EDITED: &str = r##"{"created":"2024-02-02T00:00:01Z","author":"someone","architecture":"amd64","os":"linux","config":{"User":"app","ExposedPorts":{"53/udp":{},"8080/tcp":{}},"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","A=2","B=x y"],"Entrypoint":["/bin/e"],"Cmd":["/bin/sh","-c","run it"],"Healthcheck":{"Test":["CMD-SHELL","true"],"Interval":1,"Retries":3},"Volumes":{"/data":{}},"WorkingDir":"/dir","Labels":{"k":"v"},"OnBuild":["RUN echo"],"StopSignal":"SIGINT","Shell":["/bin/ash","-eo"]},"rootfs":{"type":"layers","diff_ids":["sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4"]},"history":[{"created":"2024-02-02T00:00:00Z","created_by":"ENV A=2","comment":"buildkit.dockerfile.v0","empty_layer":true},{"created":"2024-02-02T00:00:01Z","created_by":"RUN x","comment":"buildkit.dockerfile.v0"}]}"##;

    fn edit(c: &mut ImageConfig) {
        c.set_env(&[("A".into(), "2".into()), ("B".into(), "x y".into())]);
        c.add_labels(&[("k".into(), "v".into())]);
        c.expose(&["8080".into(), "53/udp".into()]).unwrap();
        c.add_volumes(&["/data".into()]).unwrap();
        c.set_user("app");
        c.set_workdir("sub/../dir");
        c.set_cmd(&CommandForm::Shell("run it".into()));
        c.set_entrypoint(&CommandForm::Exec(vec!["/bin/e".into()]), true);
        c.set_shell(&["/bin/ash".into(), "-eo".into()]);
        c.set_stop_signal("SIGINT");
        c.set_healthcheck(Some(&strata_frontend::HealthcheckSpec {
            test: vec!["CMD-SHELL".into(), "true".into()],
            interval: Some(std::time::Duration::from_nanos(1)),
            timeout: None,
            start_period: None,
            start_interval: None,
            retries: Some(3),
        }));
        c.add_onbuild("RUN echo");
        c.set_author("someone");
        c.push_history("2024-02-02T00:00:00Z", "ENV A=2".into(), None);
        let layer = "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4";
        c.push_history(
            "2024-02-02T00:00:01Z",
            "RUN x".into(),
            Some(layer.parse().unwrap()),
        );
    }

    fn text(c: &ImageConfig) -> String {
        String::from_utf8(to_json(c)).unwrap()
    }

    #[test]
    fn a_docker_base_is_written_as_before() {
        let c = from_json(DOCKER.as_bytes()).unwrap();
        assert_eq!(text(&c), DOCKER_AS_IS);
        let mut b = c.into_build_base();
        assert_eq!(text(&b), DOCKER_AS_BASE);
        edit(&mut b);
        assert_eq!(text(&b), DOCKER_EDITED);
    }

    #[test]
    fn scratch_is_written_as_before() {
        let mut c = scratch();
        assert_eq!(text(&c), SCRATCH);
        edit(&mut c);
        assert_eq!(text(&c), SCRATCH_EDITED);
    }

    #[test]
    fn cache_records_keep_their_form_and_read_back() {
        let mut b = from_json(DOCKER.as_bytes()).unwrap().into_build_base();
        edit(&mut b);
        let rec = crate::cache::StepRecord {
            config: b.clone(),
            layers: vec![],
            cmd_set: true,
        };
        assert_eq!(serde_json::to_string(&rec).unwrap(), RECORD);
        let back: crate::cache::StepRecord = serde_json::from_str(RECORD).unwrap();
        assert_eq!(back.config, b);
    }
}
