//! A fake [`Executor`]: it records every RUN the engine asks for and
//! simulates the command by writing into the container's root filesystem
//! itself (the overlay the engine mounted), so a RUN still produces a real
//! layer, without runc, a shell or a base image with binaries in it.
//!
//! The language is a tiny shell. A RUN's argv `[SHELL, "-c", SCRIPT]`
//! (shell form) runs SCRIPT; any other argv (exec form) is one command.
//! Commands are separated by `&&`, `;` or newlines; words by whitespace
//! (no quoting); a word `$NAME` is the value of NAME in the process
//! environment. Paths are container paths (relative ones from the working
//! directory), joined to the rootfs without following symlinks: the tests
//! control every path they use.
//!
//! | command | effect |
//! |---|---|
//! | `echo WORDS [> FILE \| >> FILE]` | the words and a newline, to stdout or into FILE |
//! | `mkdir -p DIR...` | creates the directories |
//! | `touch FILE...` | creates empty files (keeps existing ones) |
//! | `rm [-f\|-rf] PATH...` | removes files or trees |
//! | `chmod OCTAL PATH` | sets the mode |
//! | `cp SRC DST` | copies a file |
//! | `wait NAME N` | blocks until N RUNs have reached barrier NAME (exit 124 on timeout) |
//! | `exit N`, `true` | exit status |
//!
//! An unknown command exits 127, as a shell's "not found" would. Like
//! runc, a missing working directory is created before the command runs.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use strata_runtime::{ContainerSpec, Error, Executor, ExitStatus, StdioConfig};

/// One RUN as the executor received it.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    /// The full argv (`/bin/sh -c SCRIPT` for the shell form).
    pub(crate) argv: Vec<String>,
    /// What was interpreted: the script of the shell form, else the argv
    /// joined by spaces. Tests find their RUNs by it.
    pub(crate) script: String,
    pub(crate) env: Vec<String>,
    pub(crate) cwd: String,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

impl Call {
    /// The value of `name` in the RUN's environment.
    pub(crate) fn env_var(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
    }
}

/// See the module comment.
pub(crate) struct FakeExecutor {
    calls: Mutex<Vec<Call>>,
    barriers: Mutex<HashMap<String, usize>>,
    arrived: Condvar,
    barrier_timeout: Duration,
}

impl FakeExecutor {
    pub(crate) fn new() -> FakeExecutor {
        FakeExecutor {
            calls: Mutex::new(Vec::new()),
            barriers: Mutex::new(HashMap::new()),
            arrived: Condvar::new(),
            barrier_timeout: Duration::from_secs(30),
        }
    }

    /// How long `wait` blocks before it fails the RUN.
    pub(crate) fn with_barrier_timeout(mut self, t: Duration) -> FakeExecutor {
        self.barrier_timeout = t;
        self
    }

    /// Every RUN received so far, in the order they started.
    pub(crate) fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// Blocks until `n` RUNs arrived at `name`; false on timeout.
    fn barrier(&self, name: &str, n: usize) -> bool {
        let deadline = Instant::now() + self.barrier_timeout;
        let mut b = self.barriers.lock().unwrap();
        *b.entry(name.to_string()).or_default() += 1;
        self.arrived.notify_all();
        while b[name] < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            b = self.arrived.wait_timeout(b, left).unwrap().0;
        }
        true
    }
}

/// Where the fake's output goes: the engine's pipes, or nowhere.
struct Out<'a>(&'a mut StdioConfig);

impl Out<'_> {
    fn stdout(&mut self, text: &str) {
        if let StdioConfig::Piped { stdout, .. } = self.0 {
            stdout(text.as_bytes());
        }
    }
    fn stderr(&mut self, text: &str) {
        if let StdioConfig::Piped { stderr, .. } = self.0 {
            stderr(text.as_bytes());
        }
    }
}

impl Executor for FakeExecutor {
    fn run(&self, spec: &ContainerSpec, mut io: StdioConfig) -> Result<ExitStatus, Error> {
        let argv = spec.process.args.clone();
        let script = match argv.as_slice() {
            [_, c, script] if c == "-c" => script.clone(),
            _ => argv.join(" "),
        };
        self.calls.lock().unwrap().push(Call {
            argv: argv.clone(),
            script: script.clone(),
            env: spec.process.env.clone(),
            cwd: spec.process.cwd.clone(),
            uid: spec.process.user.uid,
            gid: spec.process.user.gid,
        });
        let sh = Shell {
            exec: self,
            root: &spec.rootfs,
            cwd: &spec.process.cwd,
            env: &spec.process.env,
        };
        let mut out = Out(&mut io);
        let code = match sh.host(&spec.process.cwd).and_then(fs::create_dir_all) {
            Err(e) => {
                out.stderr(&format!("fake runc: cwd {}: {e}\n", spec.process.cwd));
                1
            }
            Ok(()) => sh.script(&script, &mut out),
        };
        Ok(ExitStatus { code, signal: None })
    }
}

struct Shell<'a> {
    exec: &'a FakeExecutor,
    root: &'a Path,
    cwd: &'a str,
    env: &'a [String],
}

impl Shell<'_> {
    /// Runs each command; stops at the first that fails (as `&&` would).
    fn script(&self, script: &str, out: &mut Out<'_>) -> i32 {
        for cmd in script.split(['\n', ';']).flat_map(|l| l.split("&&")) {
            let words: Vec<String> = cmd.split_whitespace().map(|w| self.expand(w)).collect();
            if words.is_empty() {
                continue;
            }
            let code = match self.command(&words, out) {
                Ok(code) => code,
                Err(e) => {
                    out.stderr(&format!("fake sh: {}: {e}\n", words.join(" ")));
                    1
                }
            };
            if code != 0 {
                return code;
            }
        }
        0
    }

    fn expand(&self, word: &str) -> String {
        match word.strip_prefix('$') {
            Some(name) => self
                .env
                .iter()
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .unwrap_or("")
                .to_string(),
            None => word.to_string(),
        }
    }

    /// The host path of a container path.
    fn host(&self, path: &str) -> io::Result<PathBuf> {
        let abs = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("{}/{path}", self.cwd)
        };
        if abs.split('/').any(|c| c == "..") {
            return Err(io::Error::other("`..` is not supported by the fake"));
        }
        Ok(self.root.join(abs.trim_start_matches('/')))
    }

    fn command(&self, w: &[String], out: &mut Out<'_>) -> io::Result<i32> {
        let args: Vec<&str> = w[1..].iter().map(String::as_str).collect();
        match (w[0].as_str(), args.as_slice()) {
            ("true", []) => {}
            ("exit", [n]) => return n.parse().map_err(io::Error::other),
            ("echo", _) => self.echo(&args, out)?,
            ("mkdir", ["-p", dirs @ ..]) => {
                for d in dirs {
                    fs::create_dir_all(self.host(d)?)?;
                }
            }
            ("touch", files) => {
                for f in files {
                    fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(self.host(f)?)?;
                }
            }
            ("rm", [flag, paths @ ..]) if flag.starts_with('-') => {
                for p in paths {
                    let p = self.host(p)?;
                    match fs::symlink_metadata(&p) {
                        Ok(m) if m.is_dir() && flag.contains('r') => fs::remove_dir_all(&p)?,
                        Ok(_) => fs::remove_file(&p)?,
                        Err(e) if e.kind() == io::ErrorKind::NotFound && flag.contains('f') => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            ("chmod", [mode, path]) => {
                let mode = u32::from_str_radix(mode, 8).map_err(io::Error::other)?;
                fs::set_permissions(self.host(path)?, fs::Permissions::from_mode(mode))?;
            }
            ("cp", [src, dst]) => {
                fs::copy(self.host(src)?, self.host(dst)?)?;
            }
            ("wait", [name, n]) => {
                let n = n.parse().map_err(io::Error::other)?;
                if !self.exec.barrier(name, n) {
                    out.stderr(&format!("fake sh: barrier {name}: timed out\n"));
                    return Ok(124);
                }
            }
            (cmd, _) => {
                out.stderr(&format!("fake sh: {cmd}: not found\n"));
                return Ok(127);
            }
        }
        Ok(0)
    }

    fn echo(&self, args: &[&str], out: &mut Out<'_>) -> io::Result<()> {
        let (words, target) = match args {
            [words @ .., op, file] if *op == ">" || *op == ">>" => (words, Some((*op, *file))),
            _ => (args, None),
        };
        let text = format!("{}\n", words.join(" "));
        match target {
            None => out.stdout(&text),
            Some((op, file)) => {
                use std::io::Write;
                let mut f = fs::OpenOptions::new()
                    .create(true)
                    .write(true)
                    .append(op == ">>")
                    .truncate(op == ">")
                    .open(self.host(file)?)?;
                f.write_all(text.as_bytes())?;
            }
        }
        Ok(())
    }
}
