//! A container's private network (pasta) for `run` and `start`: made on a
//! thread while the store is opened and the rootfs mounted, and torn down
//! when the container is.

use std::time::{Duration, Instant};

use anyhow::bail;

/// A container's private network being made on a thread; dropped
/// unwaited (an error before the start), it waits for the thread and
/// tears the network down.
pub(super) struct PendingNetwork {
    thread: Option<std::thread::JoinHandle<anyhow::Result<PastaGuard>>>,
}

impl PendingNetwork {
    /// Starts making the network `mode` asks for (only "private" has one).
    pub(super) fn start(
        mode: &str,
        ports: &[strata_engine::container::network::Port],
    ) -> PendingNetwork {
        let thread = (mode == "private").then(|| {
            let ports = ports.to_vec();
            std::thread::spawn(move || {
                let net = strata_engine::container::network::private_network(&ports)?;
                Ok(PastaGuard {
                    net: Some(net),
                    ports: !ports.is_empty(),
                })
            })
        });
        PendingNetwork { thread }
    }

    /// The network, once pasta configured it (None: no private network).
    pub(super) fn wait(&mut self) -> anyhow::Result<Option<PastaGuard>> {
        match self.thread.take() {
            None => Ok(None),
            Some(t) => match t.join() {
                Ok(r) => r.map(Some),
                Err(_) => bail!("the thread making the container's network panicked"),
            },
        }
    }
}

impl Drop for PendingNetwork {
    fn drop(&mut self) {
        let _ = self.wait();
    }
}

/// A container's private network, whose pasta is gone (its published
/// ports free for the next start) when this is dropped.
pub(super) struct PastaGuard {
    pub(super) net: Option<strata_runtime::PrivateNetwork>,
    /// Ports were published: wait for pasta's exit, which frees them.
    ports: bool,
}

impl Drop for PastaGuard {
    fn drop(&mut self) {
        let Some(net) = self.net.take() else { return };
        let pid = net.pasta_pid();
        if !self.ports {
            // Killed, reaped by its keeper in the background: nothing
            // needs its exit (which waits on the kernel removing its tap
            // device, 5-10 ms).
            drop(net);
            return;
        }
        // Dropping the network kills pasta; the ports are free once the
        // process has exited (a zombie holds no socket).
        drop(net);
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().next());
            if stat.is_empty() || state == Some("Z") {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}
