//! Per-layer progress for pulls and pushes: an indicatif bar per blob on a
//! terminal, Docker-like `ID: Pull complete` lines otherwise, or nothing.

use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use strata_oci::Digest;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProgressMode {
    /// Nothing (libraries, `-q`).
    #[default]
    Quiet,
    /// One line per finished blob on stdout, as Docker prints when not on a terminal.
    Lines,
    /// A bar per blob on stderr.
    Bars,
}

impl ProgressMode {
    /// Bars on a terminal, lines otherwise; `quiet` wins.
    pub fn auto(quiet: bool) -> ProgressMode {
        if quiet {
            ProgressMode::Quiet
        } else if std::io::stderr().is_terminal() {
            ProgressMode::Bars
        } else {
            ProgressMode::Lines
        }
    }
}

pub(crate) struct Reporter {
    mode: ProgressMode,
    multi: MultiProgress,
}

pub(crate) struct BlobProgress {
    mode: ProgressMode,
    short: String,
    bar: Option<ProgressBar>,
}

impl Reporter {
    pub(crate) fn new(mode: ProgressMode) -> Reporter {
        let multi = if mode == ProgressMode::Bars {
            MultiProgress::with_draw_target(ProgressDrawTarget::stderr())
        } else {
            MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
        };
        Reporter { mode, multi }
    }

    /// Prints a line above the bars (or plainly).
    pub(crate) fn line(&self, text: &str) {
        match self.mode {
            ProgressMode::Quiet => {}
            ProgressMode::Lines => println!("{text}"),
            ProgressMode::Bars => {
                let _ = self.multi.println(text);
            }
        }
    }

    pub(crate) fn blob(&self, digest: &Digest, size: u64, verb: &str) -> BlobProgress {
        let short = digest.hex()[..12].to_string();
        let bar = (self.mode == ProgressMode::Bars).then(|| {
            let b = self.multi.add(ProgressBar::new(size));
            b.set_style(
                ProgressStyle::with_template("{prefix}: {msg:12} [{bar:30}] {bytes}/{total_bytes}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            b.set_prefix(short.clone());
            b.set_message(verb.to_string());
            b
        });
        BlobProgress {
            mode: self.mode,
            short,
            bar,
        }
    }
}

impl BlobProgress {
    pub(crate) fn set(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.set_position(n);
        }
    }

    pub(crate) fn finish(&self, msg: &str) {
        match (&self.bar, self.mode) {
            (Some(b), _) => {
                b.set_message(msg.to_string());
                b.finish();
            }
            (None, ProgressMode::Lines) => println!("{}: {msg}", self.short),
            _ => {}
        }
    }

    pub(crate) fn abandon(&self, msg: &str) {
        if let Some(b) = &self.bar {
            b.abandon_with_message(msg.to_string());
        }
    }
}
