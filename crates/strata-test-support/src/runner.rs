//! The `strata` binary as a builder: arguments, environment, stdin, a
//! wrapper command (`timeout`, `prlimit`), then run it or spawn it. The
//! helpers in [`crate::cli`] are the common cases.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::cli::{stderr, stdout};

/// The `strata` binary cargo built for this test run. An integration test
/// runs from `target/<profile>/deps/`, and cargo puts the package's
/// binaries one level up (the path `CARGO_BIN_EXE_strata` names; that
/// variable is only set when compiling the package's own tests).
pub fn strata_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let bin = dir.join("strata");
    assert!(
        bin.exists(),
        "{} is missing: cargo builds it only for the strata package's tests",
        bin.display()
    );
    bin
}

/// One run of `strata`: the binary, its arguments, environment and stdin.
/// Every helper below is one of these; a test that needs something more
/// (a wrapper command, an environment) builds its own.
pub struct Strata {
    cmd: Command,
    stdin: Option<Vec<u8>>,
}

impl Strata {
    /// `strata --root ROOT`.
    pub fn new(root: &Path) -> Self {
        let mut s = Self::bare();
        s.cmd.arg("--root").arg(root);
        s
    }

    /// `strata` with no `--root` (the default store, or one the arguments
    /// name).
    pub fn bare() -> Self {
        Self::wrapped(&[])
    }

    /// `WRAPPER... strata`, e.g. `timeout 60` or `prlimit --as=N --`.
    pub fn wrapped(wrapper: &[&str]) -> Self {
        let mut cmd = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(strata_bin());
                c
            }
            None => Command::new(strata_bin()),
        };
        cmd.stdin(Stdio::null());
        Self { cmd, stdin: None }
    }

    /// `--root ROOT` (after [`Strata::wrapped`]).
    pub fn root(mut self, root: &Path) -> Self {
        self.cmd.arg("--root").arg(root);
        self
    }

    /// More arguments.
    pub fn args<S: AsRef<std::ffi::OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.cmd.args(args);
        self
    }

    /// One environment variable.
    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.env(key, value);
        self
    }

    /// Without this environment variable.
    pub fn env_remove(mut self, key: &str) -> Self {
        self.cmd.env_remove(key);
        self
    }

    /// `input` on stdin (closed after it); by default stdin is closed.
    pub fn stdin(mut self, input: &[u8]) -> Self {
        self.stdin = Some(input.to_vec());
        self
    }

    /// The command, to spawn and watch (stdin closed unless set with
    /// [`Strata::stdin`], which this cannot carry).
    pub fn command(self) -> Command {
        self.cmd
    }

    /// Runs to the end; stdout and stderr captured.
    pub fn output(mut self) -> Output {
        let Some(input) = self.stdin else {
            return self.cmd.output().expect("run strata");
        };
        let mut c = self
            .cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run strata");
        let mut stdin = c.stdin.take().expect("a piped stdin");
        // Written from a thread: a large input must not block while the
        // child fills its output pipes.
        let w = std::thread::spawn(move || {
            use std::io::Write;
            let _ = stdin.write_all(&input);
        });
        let o = c.wait_with_output().expect("wait for strata");
        w.join().expect("the stdin writer");
        o
    }

    /// Runs to the end and insists on success; returns stdout.
    pub fn ok(self) -> String {
        let shown = format!("{:?}", self.cmd);
        let o = self.output();
        assert!(
            o.status.success(),
            "{shown} failed: {}\n{}",
            stderr(&o),
            stdout(&o)
        );
        stdout(&o)
    }
}
