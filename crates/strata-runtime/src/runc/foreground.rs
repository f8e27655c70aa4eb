//! `runc run` in the foreground ([`Executor::run`]): the bundle, the wait
//! on a pidfd, signal forwarding, and the guard that cleans up on every
//! path out.

use super::*;

/// Deletes the container and the bundle dir when dropped.
pub(super) struct Cleanup<'a> {
    runc: &'a Runc,
    id: String,
    bundle: PathBuf,
    started: bool,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        // `runc run` in the foreground deletes the container itself when its
        // process exits; its state dir remains only when runc was killed or
        // failed half-way. A stat instead of another runc start.
        if self.started && self.runc.state_root.join(&self.id).exists() {
            self.runc.delete(&self.id);
        }
        if let Err(e) = std::fs::remove_dir_all(&self.bundle) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("removing bundle {}: {e}", self.bundle.display());
            }
        }
    }
}

/// How often the wait for runc looks at forwarded signals when none woke it.
pub(super) const SIGNAL_CHECK: Duration = Duration::from_millis(50);

/// Blocks until the process behind `pidfd` exits, a signal interrupts the
/// wait, or `timeout` passes.
pub(super) fn wait_exit(pidfd: Option<&rustix::fd::OwnedFd>, timeout: Duration) {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let Some(fd) = pidfd else {
        // No pidfd (Linux < 5.3): short naps are the only portable wait
        // that still lets us look at signals.
        std::thread::sleep(timeout.min(Duration::from_millis(2)));
        return;
    };
    let ts = Timespec {
        tv_sec: timeout.as_secs() as _,
        tv_nsec: timeout.subsec_nanos() as _,
    };
    let mut fds = [PollFd::new(fd, PollFlags::IN)];
    // EINTR (a signal) and errors alike: the caller looks again.
    let _ = poll(&mut fds, Some(&ts));
}

impl Executor for Runc {
    #[allow(unsafe_code)] // each unsafe block below has its SAFETY comment
    fn run(&self, spec: &ContainerSpec, io: StdioConfig) -> Result<ExitStatus, Error> {
        if !valid_id(&spec.id) {
            return Err(Error::InvalidSpec(format!(
                "container id {:?} may only contain letters, digits, '_', '-', '.', '+'",
                spec.id
            )));
        }
        let rootfs = std::path::absolute(&spec.rootfs)
            .map_err(|e| Error::io(format!("resolving rootfs {}", spec.rootfs.display()), e))?;
        if !rootfs.is_dir() {
            return Err(Error::InvalidSpec(format!(
                "rootfs {} is not a directory",
                rootfs.display()
            )));
        }
        if spec.process.tty && !stdio::stdin_is_terminal() {
            return Err(Error::NotATerminal);
        }

        let bundle = self.write_bundle(spec, &rootfs)?;
        let mut cleanup = Cleanup {
            runc: self,
            id: spec.id.clone(),
            bundle: bundle.clone(),
            started: false,
        };

        let log = bundle.join("runc.log");
        let mut cmd = self.command();
        cmd.arg("--log")
            .arg(&log)
            .args(["--log-format", "json", "run", "--bundle"])
            .arg(&bundle)
            .arg(&spec.id);
        let sinks = stdio::configure(&mut cmd, io, spec.process.stdin || spec.process.tty);

        let _signals = self.forward_signals.then(signals::Guard::install);
        let mut watch = signals::Watch::new();
        if self.reaper {
            crate::reaper::start(&self.binary, &self.state_root, &self.bundle_root);
        }
        cleanup.started = true;
        let mut child = cmd
            .spawn()
            .map_err(|e| Error::io(format!("starting {}", self.binary.display()), e))?;
        let pumps = sinks.start(child.stdout.take(), child.stderr.take());
        let pumps = match pumps {
            Ok(p) => p,
            Err(e) => {
                self.kill(&spec.id, "KILL");
                let _ = child.wait();
                return Err(e);
            }
        };
        tracing::debug!(id = %spec.id, pid = child.id(), "runc started");

        // A pidfd turns "runc exited" into a poll() wake-up: the exit is
        // seen at once (the old 1, 2, 4, ... 50 ms naps noticed it up to
        // 50 ms late). A forwarded signal interrupts poll() when it lands on
        // this thread; else it is seen at the next SIGNAL_CHECK tick.
        let pidfd = rustix::process::Pid::from_raw(child.id() as i32).and_then(|pid| {
            rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()
        });
        let mut signals_seen = 0u32;
        let mut kill_at: Option<Instant> = None;
        let mut killed = false;
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) => {}
                Err(e) => {
                    self.kill(&spec.id, "KILL");
                    let _ = child.wait();
                    return Err(Error::io("waiting for runc", e));
                }
            }
            if let Some(r) = watch.poll() {
                signals_seen += 1;
                if signals_seen == 1 {
                    if !r.from_terminal {
                        // runc forwards what it receives to the container.
                        // SAFETY: signalling our own child process.
                        unsafe { libc::kill(child.id() as i32, r.signal) };
                    }
                    kill_at = Some(Instant::now() + self.stop_timeout);
                } else if !killed {
                    self.kill(&spec.id, "KILL");
                    killed = true;
                }
            }
            if !killed && kill_at.is_some_and(|t| Instant::now() >= t) {
                self.kill(&spec.id, "KILL");
                killed = true;
            }
            let mut timeout = SIGNAL_CHECK;
            if let Some(t) = kill_at.filter(|_| !killed) {
                timeout = timeout.min(t.saturating_duration_since(Instant::now()));
            }
            wait_exit(pidfd.as_ref(), timeout);
        };
        pumps.join()?;

        use std::os::unix::process::ExitStatusExt;
        let code = match (status.code(), status.signal()) {
            (Some(c), _) => c,
            (None, Some(sig)) => 128 + sig,
            (None, None) => 255,
        };
        if code != 0 && signals_seen == 0 {
            let errors = runc_errors(&log);
            if !errors.is_empty() {
                return Err(Error::Runc {
                    id: spec.id.clone(),
                    message: errors.join("; "),
                });
            }
        }
        drop(cleanup);
        Ok(ExitStatus::from_code(code))
    }
}
