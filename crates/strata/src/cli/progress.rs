//! Build progress renderers: `plain` (BuildKit-like lines, for logs),
//! `tty` (one live line per step with its state, CACHED marks, a ticking
//! timer while it runs and the last lines of RUN output), `rawjson` (one
//! JSON event per line) and quiet (nothing). Plain and tty end with one
//! line: the total time, steps finished of steps started, and how the
//! build ended (`[+] Building 3.2s (6/6) FINISHED`).
//!
//! Ctrl-C (SIGINT, or SIGTERM): during a RUN the runtime passes it to the
//! container and the step ends, which is shown as CANCELLED, not as the
//! container's exit code 130; outside a RUN nothing can be stopped
//! half-way, so the live lines are replaced by CANCELLED ones, the total
//! line is printed and strata exits with 130 (no stale spinner is left).

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use strata_engine::{Event, EventKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Plain,
    Tty,
    RawJson,
    Quiet,
}

impl Mode {
    /// From `--progress` (and `-q`); `auto` is tty on a terminal, else plain.
    pub(super) fn parse(s: &str, quiet: bool) -> anyhow::Result<Mode> {
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
    /// `\n    cache miss: REASON`, or empty.
    miss: String,
}

struct State {
    start: Instant,
    tty: Option<MultiProgress>,
    steps: HashMap<usize, TtyStep>,
    names: HashMap<usize, String>,
    /// Steps started, and finished (done or cached).
    started: usize,
    finished: usize,
    /// The engine said the image is built.
    done: bool,
    /// The total line was printed.
    ended: bool,
    /// Steps whose unpack was announced (plain mode).
    unpacking: HashSet<usize>,
}

/// Set by the SIGINT/SIGTERM handler the renderer installs.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// The build was interrupted: a signal reached our handler, or the
/// runtime's while a RUN was running.
struct Interrupt {
    runtime_base: u64,
    cancelled: AtomicBool,
    stop: AtomicBool,
    saved: Mutex<Vec<(i32, libc::sigaction)>>,
}

impl Interrupt {
    #[allow(unsafe_code)] // libc calls, each with its SAFETY comment
    fn install() -> Interrupt {
        let mut saved = Vec::new();
        for sig in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: plain sigaction calls with a zeroed, filled-in struct;
            // the handler only stores to an atomic.
            unsafe {
                let mut act: libc::sigaction = std::mem::zeroed();
                act.sa_sigaction = on_interrupt as *const () as usize;
                act.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut act.sa_mask);
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, &act, &mut old) == 0 {
                    saved.push((sig, old));
                }
            }
        }
        Interrupt {
            runtime_base: strata_runtime::signals::received_count(),
            cancelled: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            saved: Mutex::new(saved),
        }
    }

    /// True once the user interrupted the build (sticky).
    fn check(&self) -> bool {
        if INTERRUPTED.load(Ordering::SeqCst)
            || strata_runtime::signals::received_count() != self.runtime_base
        {
            self.cancelled.store(true, Ordering::SeqCst);
        }
        self.cancelled.load(Ordering::SeqCst)
    }

    #[allow(unsafe_code)] // libc calls, each with its SAFETY comment
    fn restore(&self) {
        self.stop.store(true, Ordering::SeqCst);
        for (sig, old) in self
            .saved
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            // SAFETY: restores the action saved by `install`.
            unsafe {
                libc::sigaction(sig, &old, std::ptr::null_mut());
            }
        }
    }
}

/// Receives engine events (from any thread) and renders them.
pub(super) struct Renderer {
    mode: Mode,
    state: Arc<Mutex<State>>,
    interrupt: Arc<Interrupt>,
    /// Steps that missed the cache: (step, name, reason), in event order.
    misses: Mutex<Vec<(usize, String, Option<String>)>>,
    /// Names of the steps started, for `misses`.
    started: Mutex<HashMap<usize, String>>,
}

impl Renderer {
    pub(super) fn new(mode: Mode) -> Renderer {
        let tty = (mode == Mode::Tty)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        let state = Arc::new(Mutex::new(State {
            start: Instant::now(),
            tty,
            steps: HashMap::new(),
            names: HashMap::new(),
            started: 0,
            finished: 0,
            done: false,
            ended: false,
            unpacking: HashSet::new(),
        }));
        let interrupt = Arc::new(Interrupt::install());
        // Outside a RUN nothing else notices the signal: this thread ends
        // the build (the store is crash-safe: leases expire, temp dirs are
        // collected) after putting the display in order. `exit` runs no
        // destructor, so the steps' rootfs mounts are released first: left
        // mounted, they would stay until the next strata on that store.
        let (st, int) = (state.clone(), interrupt.clone());
        let _ = std::thread::Builder::new()
            .name("strata-interrupt".into())
            .spawn(move || {
                while !int.stop.load(Ordering::SeqCst) {
                    if INTERRUPTED.load(Ordering::SeqCst) {
                        int.check();
                        let mut st = st.lock().unwrap_or_else(|p| p.into_inner());
                        end(&mut st, mode, true);
                        strata_engine::live_mounts::release_all();
                        std::process::exit(130);
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            });
        Renderer {
            mode,
            state,
            interrupt,
            misses: Mutex::new(Vec::new()),
            started: Mutex::new(HashMap::new()),
        }
    }

    /// The user interrupted the build (Ctrl-C).
    pub(super) fn cancelled(&self) -> bool {
        self.interrupt.check()
    }

    /// The steps that missed the cache, in order: `(step, name, reason)`
    /// (no reason for a step never built before).
    pub(super) fn misses(&self) -> Vec<(usize, String, Option<String>)> {
        let mut m = self
            .misses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        m.sort_by_key(|(step, _, _)| *step);
        m
    }

    pub(super) fn handle(&self, ev: Event) {
        match &ev.kind {
            EventKind::StepStarted { step, name, .. } => {
                let mut started = self.started.lock().unwrap_or_else(|p| p.into_inner());
                started.insert(*step, name.clone());
            }
            EventKind::CacheMiss { step, reason } => {
                let name = self
                    .started
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(step)
                    .cloned()
                    .unwrap_or_default();
                let mut misses = self.misses.lock().unwrap_or_else(|p| p.into_inner());
                misses.push((*step, name, reason.clone()));
            }
            _ => {}
        }
        let cancelled = matches!(ev.kind, EventKind::Error { .. }) && self.interrupt.check();
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match &ev.kind {
            EventKind::StepStarted { .. } => st.started += 1,
            EventKind::StepDone { .. } | EventKind::Cached { .. } => st.finished += 1,
            EventKind::BuildDone { .. } => st.done = true,
            _ => {}
        }
        match self.mode {
            Mode::Quiet => {}
            Mode::RawJson => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{}", ev.to_json_line());
                let _ = out.flush();
            }
            Mode::Plain => plain(&mut st, &ev, cancelled),
            Mode::Tty => tty(&mut st, &ev, cancelled),
        }
    }

    /// Ends the live lines (tty) and prints the total line, before the
    /// final message.
    pub(super) fn finish(&self) {
        let cancelled = self.interrupt.check();
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        end(&mut st, self.mode, cancelled);
    }
}

impl Drop for Renderer {
    fn drop(&mut self) {
        self.interrupt.restore();
    }
}

/// Steps still running become `CANCELLED` (or are left as they are),
/// then one line sums the build up: `[+] Building 3.2s (6/6) FINISHED`.
fn end(st: &mut State, mode: Mode, cancelled: bool) {
    if st.ended {
        return;
    }
    st.ended = true;
    let mut running: Vec<(usize, TtyStep)> = st.steps.drain().collect();
    running.sort_by_key(|(n, _)| *n);
    for (_, s) in running {
        let took = secs(s.bar.elapsed());
        s.bar.set_style(done_style());
        if cancelled {
            s.bar
                .finish_with_message(format!("CANCELLED {} {took}", s.name));
        } else {
            s.bar
                .abandon_with_message(format!("{} {took}{}", s.name, under(&s)));
        }
    }
    // An error before any step (a Dockerfile that cannot be read) sends
    // no event: only the engine's "built" makes it FINISHED.
    // A RUN that trapped Ctrl-C and went on: the image was built anyway.
    let outcome = if st.done {
        "FINISHED"
    } else if cancelled {
        "CANCELLED"
    } else {
        "ERROR"
    };
    let line = format!(
        "[+] Building {} ({}/{}) {outcome}",
        secs(st.start.elapsed()),
        st.finished,
        st.started
    );
    if matches!(mode, Mode::Tty | Mode::Plain) {
        eprintln!("{line}");
    }
    if cancelled {
        st.tty = None;
    }
}

fn done_style() -> ProgressStyle {
    ProgressStyle::with_template("  {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner())
}

/// A running step: spinner, name, a ticking timer (`3.2s`), then the
/// cache-miss reason and the last lines of output under it.
fn running_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {prefix} {t}{msg}")
        .map(|s| {
            s.with_key("t", |st: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.1}s", st.elapsed().as_secs_f64());
            })
        })
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

fn plain(st: &mut State, ev: &Event, cancelled: bool) {
    let elapsed = st.start.elapsed().as_secs_f64();
    let mut err = std::io::stderr().lock();
    let _ = match &ev.kind {
        EventKind::StepStarted { step, name, .. } => {
            st.names.insert(*step, name.clone());
            writeln!(err, "#{step} {name}")
        }
        EventKind::Log { step, line, .. } => writeln!(err, "#{step} {elapsed:.3} {line}"),
        EventKind::Cached { step } => writeln!(err, "#{step} CACHED"),
        EventKind::CacheMiss {
            step,
            reason: Some(reason),
        } => writeln!(err, "#{step} cache miss: {reason}"),
        EventKind::CacheMiss { reason: None, .. } => Ok(()),
        EventKind::StepDone { step, duration, .. } => {
            writeln!(err, "#{step} DONE {}", secs(*duration))
        }
        EventKind::Error {
            step: Some(step), ..
        } if cancelled => {
            writeln!(err, "#{step} CANCELLED")
        }
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

/// What shows under a step's line: the cache-miss reason, then the last
/// lines of its output.
fn under(s: &TtyStep) -> String {
    let tail: Vec<String> = s.tail.iter().map(|l| format!("\n    > {l}")).collect();
    format!("{}{}", s.miss, tail.concat())
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

fn tty(st: &mut State, ev: &Event, cancelled: bool) {
    let Some(mp) = st.tty.clone() else { return };
    match &ev.kind {
        EventKind::StepStarted { step, name, .. } => {
            let bar = mp.add(ProgressBar::new_spinner());
            bar.set_style(running_style());
            bar.set_prefix(name.clone());
            bar.enable_steady_tick(Duration::from_millis(100));
            st.steps.insert(
                *step,
                TtyStep {
                    bar,
                    name: name.clone(),
                    tail: Vec::new(),
                    miss: String::new(),
                },
            );
        }
        EventKind::Log { step, line, .. } => {
            if let Some(s) = st.steps.get_mut(step) {
                s.tail.push(line.clone());
                if s.tail.len() > TAIL {
                    s.tail.remove(0);
                }
                s.bar.set_message(under(s));
            }
        }
        EventKind::Cached { step } => {
            if let Some(s) = st.steps.remove(step) {
                s.bar.set_style(done_style());
                s.bar.finish_with_message(format!("CACHED {}", s.name));
            }
        }
        EventKind::CacheMiss {
            step,
            reason: Some(reason),
        } => {
            if let Some(s) = st.steps.get_mut(step) {
                s.miss = format!("\n    cache miss: {reason}");
                s.bar.set_message(under(s));
            }
        }
        EventKind::CacheMiss { reason: None, .. } => {}
        EventKind::StepDone { step, duration, .. } => {
            if let Some(s) = st.steps.remove(step) {
                s.bar.set_style(done_style());
                s.bar
                    .finish_with_message(format!("{} {}{}", s.name, secs(*duration), s.miss));
            }
        }
        EventKind::Error { step, message } => {
            let s = step.and_then(|n| st.steps.remove(&n));
            match s {
                Some(s) if cancelled => {
                    let took = secs(s.bar.elapsed());
                    s.bar.set_style(done_style());
                    s.bar
                        .finish_with_message(format!("CANCELLED {} {took}", s.name));
                }
                Some(s) => {
                    s.bar.set_style(done_style());
                    let tail: Vec<String> = s.tail.iter().map(|l| format!("\n    > {l}")).collect();
                    s.bar.finish_with_message(format!(
                        "ERROR {}{}\n    {message}",
                        s.name,
                        tail.concat()
                    ));
                }
                None if cancelled => {}
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
