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
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One progress event.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// When it happened (UTC).
    #[serde(serialize_with = "rfc3339")]
    pub time: OffsetDateTime,
    /// What happened.
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
        /// The step.
        step: usize,
        /// The stage it belongs to.
        stage: String,
        /// Its progress name (`[stage 2/3] RUN ...`).
        name: String,
    },
    /// One line of a RUN's output.
    Log {
        /// The step.
        step: usize,
        /// The stream.
        stream: Stream,
        /// The line, without its newline.
        line: String,
    },
    /// The step's result came from the cache: nothing was executed.
    Cached {
        /// The step.
        step: usize,
    },
    /// The step is not in the cache and runs (sent before it runs, when
    /// the cache is in use). `reason` names the input that changed since a
    /// recorded build of the same step (a context file, a build arg, the
    /// base image, the step above...); absent for a step never built.
    CacheMiss {
        /// The step.
        step: usize,
        #[serde(skip_serializing_if = "Option::is_none")]
        /// Why it missed.
        reason: Option<String>,
    },
    /// The step finished successfully. `cache_miss`: the reason it ran, as
    /// in [`EventKind::CacheMiss`].
    StepDone {
        /// The step.
        step: usize,
        #[serde(serialize_with = "secs")]
        /// How long it took.
        duration: Duration,
        #[serde(skip_serializing_if = "Option::is_none")]
        /// Why it ran.
        cache_miss: Option<String>,
    },
    /// The step failed (or was cancelled); `step` is absent for errors that
    /// belong to no step.
    Error {
        #[serde(skip_serializing_if = "Option::is_none")]
        /// The failed step.
        step: Option<usize>,
        /// The error and its causes, on one line.
        message: String,
    },
    /// A stage the target does not need was not run.
    StageSkipped {
        /// The stage.
        stage: String,
    },
    /// A base image was pulled from its registry (missing, or `--pull`).
    ImagePulled {
        /// The reference pulled.
        reference: String,
        /// The image ID it gave.
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
        /// The FROM step.
        step: usize,
        /// Layers unpacked so far.
        layers_done: usize,
        /// Layers to unpack.
        layers_total: usize,
        /// Blob bytes read so far.
        bytes_done: u64,
        /// Blob bytes to read.
        bytes_total: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        /// The layer just finished (its diff ID).
        layer: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        /// Its blob size.
        layer_size: Option<u64>,
    },
    /// The build finished.
    BuildDone {
        /// The image (or index) ID.
        image_id: String,
        /// The full references tagged.
        tags: Vec<String>,
        /// Private network namespaces the build created for its RUN steps
        /// (0 when none executed, else 1).
        network_namespaces: usize,
    },
}

impl Event {
    /// An event of `kind`, now.
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

/// Formats a timestamp as RFC 3339 with nanoseconds (`2024-05-01T10:00:00.123456789Z`).
pub(crate) fn format_rfc3339_nanos(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond()
    )
}

fn rfc3339<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_rfc3339_nanos(*t))
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
