//! Build progress renderers: `plain` (BuildKit-like lines, for logs),
//! `tty` (one live line per step with its state, CACHED marks, elapsed
//! time and the last lines of RUN output), `rawjson` (one JSON event per
//! line) and quiet (nothing).

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use strata_engine::{Event, EventKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Plain,
    Tty,
    RawJson,
    Quiet,
}

impl Mode {
    /// From `--progress` (and `-q`); `auto` is tty on a terminal, else plain.
    pub fn parse(s: &str, quiet: bool) -> anyhow::Result<Mode> {
        if quiet {
            return Ok(Mode::Quiet);
        }
        Ok(match s {
            "plain" => Mode::Plain,
            "tty" => Mode::Tty,
            "rawjson" => Mode::RawJson,
            "quiet" => Mode::Quiet,
            "auto" => {
                use std::io::IsTerminal;
                if std::io::stderr().is_terminal() {
                    Mode::Tty
                } else {
                    Mode::Plain
                }
            }
            other => anyhow::bail!("invalid --progress {other:?}: use auto, plain, tty or rawjson"),
        })
    }
}

/// Lines of RUN output kept under a running step in tty mode.
const TAIL: usize = 5;

struct TtyStep {
    bar: ProgressBar,
    name: String,
    tail: Vec<String>,
}

struct State {
    start: Instant,
    tty: Option<MultiProgress>,
    steps: HashMap<usize, TtyStep>,
    names: HashMap<usize, String>,
    /// Steps whose unpack was announced (plain mode).
    unpacking: HashSet<usize>,
}

/// Receives engine events (from any thread) and renders them.
pub struct Renderer {
    mode: Mode,
    state: Mutex<State>,
}

impl Renderer {
    pub fn new(mode: Mode) -> Renderer {
        let tty = (mode == Mode::Tty)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Renderer {
            mode,
            state: Mutex::new(State {
                start: Instant::now(),
                tty,
                steps: HashMap::new(),
                names: HashMap::new(),
                unpacking: HashSet::new(),
            }),
        }
    }

    pub fn handle(&self, ev: Event) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match self.mode {
            Mode::Quiet => {}
            Mode::RawJson => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{}", ev.to_json_line());
                let _ = out.flush();
            }
            Mode::Plain => plain(&mut st, &ev),
            Mode::Tty => tty(&mut st, &ev),
        }
    }

    /// Clears live lines (tty) before the final message.
    pub fn finish(&self) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        for (_, s) in st.steps.drain() {
            s.bar.abandon();
        }
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

fn plain(st: &mut State, ev: &Event) {
    let elapsed = st.start.elapsed().as_secs_f64();
    let mut err = std::io::stderr().lock();
    let _ = match &ev.kind {
        EventKind::StepStarted { step, name, .. } => {
            st.names.insert(*step, name.clone());
            writeln!(err, "#{step} {name}")
        }
        EventKind::Log { step, line, .. } => writeln!(err, "#{step} {elapsed:.3} {line}"),
        EventKind::Cached { step } => writeln!(err, "#{step} CACHED"),
        EventKind::StepDone { step, duration } => writeln!(err, "#{step} DONE {}", secs(*duration)),
        EventKind::Error {
            step: Some(step),
            message,
        } => writeln!(err, "#{step} ERROR: {message}"),
        EventKind::Error {
            step: None,
            message,
        } => writeln!(err, "ERROR: {message}"),
        EventKind::ImagePulled {
            reference,
            downloaded,
            ..
        } => writeln!(
            err,
            "#0 pulled {reference} ({downloaded} layers downloaded)"
        ),
        EventKind::StageSkipped { stage } => {
            writeln!(err, "#0 skipping stage {stage} (not needed by the target)")
        }
        // One line when the unpack starts and one per layer done; the
        // byte counts in between are for the tty bar.
        EventKind::Unpack {
            step,
            layers_done,
            layers_total,
            bytes_total,
            layer,
            layer_size,
            ..
        } => {
            if st.unpacking.insert(*step) {
                let _ = writeln!(
                    err,
                    "#{step} {elapsed:.3} unpacking {layers_total} layers ({})",
                    human_bytes(*bytes_total)
                );
            }
            match (layer, layer_size) {
                (Some(layer), Some(size)) => writeln!(
                    err,
                    "#{step} {elapsed:.3} unpacked layer {layers_done}/{layers_total} {} ({})",
                    short_digest(layer),
                    human_bytes(*size)
                ),
                _ => Ok(()),
            }
        }
        EventKind::BuildDone { .. } => Ok(()),
    };
}

/// `sha256:0123456789ab` (the first 12 hex digits).
fn short_digest(d: &str) -> &str {
    let end = d.find(':').map_or(0, |i| i + 1) + 12;
    d.get(..end).unwrap_or(d)
}

/// Bytes as Docker shows sizes (decimal units, `12.3MB`).
fn human_bytes(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < units.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n}B")
    } else {
        format!("{v:.1}{}", units[u])
    }
}

fn tty(st: &mut State, ev: &Event) {
    let Some(mp) = st.tty.clone() else { return };
    let style = ProgressStyle::with_template("{spinner} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    match &ev.kind {
        EventKind::StepStarted { step, name, .. } => {
            let bar = mp.add(ProgressBar::new_spinner());
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(120));
            bar.set_message(name.clone());
            st.steps.insert(
                *step,
                TtyStep {
                    bar,
                    name: name.clone(),
                    tail: Vec::new(),
                },
            );
        }
        EventKind::Log { step, line, .. } => {
            if let Some(s) = st.steps.get_mut(step) {
                s.tail.push(line.clone());
                if s.tail.len() > TAIL {
                    s.tail.remove(0);
                }
                let tail: Vec<String> = s.tail.iter().map(|l| format!("\n    > {l}")).collect();
                s.bar.set_message(format!("{}{}", s.name, tail.concat()));
            }
        }
        EventKind::Cached { step } => {
            if let Some(s) = st.steps.remove(step) {
                s.bar.set_style(
                    ProgressStyle::with_template("  {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                s.bar.finish_with_message(format!("CACHED {}", s.name));
            }
        }
        EventKind::StepDone { step, duration } => {
            if let Some(s) = st.steps.remove(step) {
                s.bar.set_style(
                    ProgressStyle::with_template("  {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                s.bar
                    .finish_with_message(format!("{} {}", s.name, secs(*duration)));
            }
        }
        EventKind::Error { step, message } => {
            let s = step.and_then(|n| st.steps.remove(&n));
            match s {
                Some(s) => {
                    s.bar.set_style(
                        ProgressStyle::with_template("  {msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    let tail: Vec<String> = s.tail.iter().map(|l| format!("\n    > {l}")).collect();
                    s.bar.finish_with_message(format!(
                        "ERROR {}{}\n    {message}",
                        s.name,
                        tail.concat()
                    ));
                }
                None => {
                    let _ = mp.println(format!("ERROR: {message}"));
                }
            }
        }
        EventKind::ImagePulled {
            reference,
            downloaded,
            ..
        } => {
            let _ = mp.println(format!(
                "pulled {reference} ({downloaded} layers downloaded)"
            ));
        }
        EventKind::Unpack {
            step,
            layers_done,
            layers_total,
            bytes_done,
            bytes_total,
            ..
        } => {
            if let Some(s) = st.steps.get_mut(step) {
                if s.bar.length().is_none() {
                    s.bar.set_style(
                        ProgressStyle::with_template(
                            "{spinner} {msg}\n    unpacking [{bar:30}] {decimal_bytes}/{decimal_total_bytes} {prefix}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                    s.bar.set_length(*bytes_total);
                }
                s.bar.set_position(*bytes_done);
                s.bar
                    .set_prefix(format!("({layers_done}/{layers_total} layers)"));
            }
        }
        EventKind::StageSkipped { .. } | EventKind::BuildDone { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpack_lines_show_short_digests_and_decimal_sizes() {
        assert_eq!(
            short_digest("sha256:c12edac5c75e67555d90858a932dd47d121640f1084e36c7ff523816979b92f5"),
            "sha256:c12edac5c75e"
        );
        assert_eq!(short_digest("sha256:abc"), "sha256:abc");
        assert_eq!(human_bytes(999), "999B");
        assert_eq!(human_bytes(10_200), "10.2kB");
        assert_eq!(human_bytes(994_600_000), "994.6MB");
        assert_eq!(human_bytes(1_500_000_000), "1.5GB");
    }
}
