//! Progress events: what the engine tells a renderer while it builds.
//!
//! Every event carries a wall-clock timestamp; serialized (for
//! `--progress rawjson`) it is one flat JSON object with an RFC 3339 `time`
//! with nanoseconds and a `type` tag.

use std::time::Duration;

use serde::{Serialize, Serializer};
use time::OffsetDateTime;

/// Which output stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One progress event.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    #[serde(serialize_with = "rfc3339")]
    pub time: OffsetDateTime,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened. `step` is a build-wide step number (1-based, in plan
/// order), `stage` the stage's display name (`build`, `stage-1`).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// A step begins (also emitted for a step that turns out cached).
    StepStarted {
        step: usize,
        stage: String,
        name: String,
    },
    /// One line of a RUN's output.
    Log {
        step: usize,
        stream: Stream,
        line: String,
    },
    /// The step's result came from the cache: nothing was executed.
    Cached { step: usize },
    /// The step is not in the cache and runs (sent before it runs, when
    /// the cache is in use). `reason` names the input that changed since a
    /// recorded build of the same step (a context file, a build arg, the
    /// base image, the step above...); absent for a step never built.
    CacheMiss {
        step: usize,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The step finished successfully. `cache_miss`: the reason it ran, as
    /// in [`EventKind::CacheMiss`].
    StepDone {
        step: usize,
        #[serde(serialize_with = "secs")]
        duration: Duration,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_miss: Option<String>,
    },
    /// The step failed (or was cancelled); `step` is absent for errors that
    /// belong to no step.
    Error {
        #[serde(skip_serializing_if = "Option::is_none")]
        step: Option<usize>,
        message: String,
    },
    /// A stage the target does not need was not run.
    StageSkipped { stage: String },
    /// A base image was pulled from its registry (missing, or `--pull`).
    ImagePulled {
        reference: String,
        image_id: String,
        /// Layers downloaded (the others were in the store).
        downloaded: usize,
    },
    /// Layers being unpacked into snapshots for `step` (a FROM: its base,
    /// when a later step of the stage needs the root filesystem). Sent as
    /// blob bytes are read and once for each layer done (`layer` set: its
    /// diff ID, and `layer_size` its blob size). Counts cover only the
    /// layers that were not unpacked yet; bytes are compressed blob bytes.
    Unpack {
        step: usize,
        layers_done: usize,
        layers_total: usize,
        bytes_done: u64,
        bytes_total: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        layer: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        layer_size: Option<u64>,
    },
    /// The build finished.
    BuildDone {
        image_id: String,
        tags: Vec<String>,
        /// Private network namespaces the build created for its RUN steps
        /// (0 when none executed, else 1).
        network_namespaces: usize,
    },
}

impl Event {
    pub fn now(kind: EventKind) -> Event {
        Event {
            time: OffsetDateTime::now_utc(),
            kind,
        }
    }

    /// The event as one line of JSON (no trailing newline).
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self)
            .unwrap_or_else(|e| format!("{{\"type\":\"error\",\"message\":\"{e}\"}}"))
    }
}

fn rfc3339<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&strata_oci::rfc3339_fixed_nanos(*t))
}

fn secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Where events go. Must be callable from any build thread.
pub type EventSink<'a> = &'a (dyn Fn(Event) + Send + Sync);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_flat_with_nanosecond_time() {
        let e = Event {
            time: OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap(),
            kind: EventKind::Cached { step: 3 },
        };
        assert_eq!(
            e.to_json_line(),
            r#"{"time":"2023-11-14T22:13:20.123456789Z","type":"cached","step":3}"#
        );
        let e = Event::now(EventKind::StepDone {
            step: 1,
            duration: Duration::from_millis(1500),
            cache_miss: None,
        });
        let v: serde_json::Value = serde_json::from_str(&e.to_json_line()).unwrap();
        assert_eq!(v["type"], "step_done");
        assert_eq!(v["duration"], 1.5);
        assert!(v.get("cache_miss").is_none());
        let e = Event::now(EventKind::CacheMiss {
            step: 4,
            reason: Some("a.txt changed (content)".into()),
        });
        let v: serde_json::Value = serde_json::from_str(&e.to_json_line()).unwrap();
        assert_eq!(v["type"], "cache_miss");
        assert_eq!(v["reason"], "a.txt changed (content)");
    }
}
