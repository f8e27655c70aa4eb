//! Where the container's stdin, stdout and stderr go.
//!
//! Without a tty, runc hands its own stdio file descriptors to the container
//! process, so whatever we give runc is what the container gets.

use std::io::Read;
use std::process::{ChildStderr, ChildStdout, Command, Stdio};
use std::thread::JoinHandle;

use crate::Error;

/// A callback receiving output chunks as they arrive (not split into lines).
pub type OutputSink = Box<dyn FnMut(&[u8]) + Send>;

/// How the container's output is delivered.
pub enum StdioConfig {
    /// The container writes to our stdout and stderr (`strata run`).
    Inherit,
    /// Output is read from pipes on two threads and handed to the callbacks
    /// as it arrives, in chunks of up to 8 KiB (the build engine turns them
    /// into progress lines). Both callbacks have returned when
    /// [`crate::Executor::run`] returns.
    Piped {
        /// Receives the container's stdout.
        stdout: OutputSink,
        /// Receives the container's stderr.
        stderr: OutputSink,
    },
    /// Output is discarded.
    Null,
}

impl std::fmt::Debug for StdioConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StdioConfig::Inherit => "Inherit",
            StdioConfig::Piped { .. } => "Piped",
            StdioConfig::Null => "Null",
        })
    }
}

/// Sinks waiting for the child's pipes, taken out of a [`StdioConfig`].
pub(crate) struct PendingSinks {
    sinks: Option<(OutputSink, OutputSink)>,
}

/// Configures the runc command's stdio. `stdin` inherits our stdin when the
/// process keeps stdin open or has a tty, otherwise it is `/dev/null`.
pub(crate) fn configure(cmd: &mut Command, io: StdioConfig, stdin: bool) -> PendingSinks {
    cmd.stdin(if stdin {
        Stdio::inherit()
    } else {
        Stdio::null()
    });
    match io {
        StdioConfig::Inherit => {
            cmd.stdout(Stdio::inherit()).stderr(Stdio::inherit());
            PendingSinks { sinks: None }
        }
        StdioConfig::Null => {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
            PendingSinks { sinks: None }
        }
        StdioConfig::Piped { stdout, stderr } => {
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            PendingSinks {
                sinks: Some((stdout, stderr)),
            }
        }
    }
}

/// Reader threads for a piped child; [`Pumps::join`] waits for end of file.
pub(crate) struct Pumps {
    threads: Vec<JoinHandle<std::io::Result<()>>>,
}

impl PendingSinks {
    /// Starts one reader thread per pipe.
    pub(crate) fn start(
        self,
        out: Option<ChildStdout>,
        err: Option<ChildStderr>,
    ) -> Result<Pumps, Error> {
        let mut threads = Vec::new();
        if let Some((mut on_out, mut on_err)) = self.sinks {
            if let Some(out) = out {
                threads.push(spawn_pump("strata-stdout", out, move |b| on_out(b))?);
            }
            if let Some(err) = err {
                threads.push(spawn_pump("strata-stderr", err, move |b| on_err(b))?);
            }
        }
        Ok(Pumps { threads })
    }
}

fn spawn_pump<R: Read + Send + 'static>(
    name: &str,
    mut reader: R,
    mut sink: impl FnMut(&[u8]) + Send + 'static,
) -> Result<JoinHandle<std::io::Result<()>>, Error> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let mut buf = vec![0u8; 8192];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => return Ok(()),
                    Ok(n) => sink(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        })
        .map_err(|e| Error::io("starting an output reader thread", e))
}

impl Pumps {
    /// Waits until both pipes are closed (all container processes are gone).
    pub(crate) fn join(self) -> Result<(), Error> {
        for t in self.threads {
            match t.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(Error::io("reading container output", e)),
                Err(_) => {
                    return Err(Error::io(
                        "reading container output",
                        std::io::Error::other("an output callback panicked"),
                    ))
                }
            }
        }
        Ok(())
    }
}

/// Whether our stdin is a terminal (required for `tty: true`).
pub(crate) fn stdin_is_terminal() -> bool {
    rustix::termios::isatty(std::io::stdin())
}
