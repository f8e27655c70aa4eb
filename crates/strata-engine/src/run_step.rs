//! RUN: the command runs (through the runtime) on an overlay of the stage's
//! layers plus the runtime's init layer (mount points and the placeholder
//! files for /etc/resolv.conf, /etc/hosts, /etc/hostname, so they never
//! land in the upper dir), with a fresh upper dir; the new layer is the
//! upper dir, written by the store's `LayerWriter` (no walk of the whole
//! rootfs). Like Docker, every RUN adds a layer, even an empty one.

use std::path::Path;
use std::sync::mpsc;

use strata_runtime::{resolve_user, ContainerSpec, Executor, Network, ProcessSpec, StdioConfig};
use strata_store::{LayerOptions, LayerWriter, Lease, Store};

use crate::cache::LayerRef;
use crate::events::{Event, EventKind, EventSink, Stream};
use crate::mounts::MountedRootfs;

/// What to run.
pub(crate) struct RunParams<'a> {
    pub argv: Vec<String>,
    /// `K=V`, image Env then build args not overridden by it.
    pub env: Vec<String>,
    pub user: &'a str,
    pub workdir: &'a str,
    /// The network, asked for once the rootfs is mounted (so a private
    /// network being created meanwhile has had that time).
    pub network: &'a (dyn Fn() -> Result<Network, crate::network::NetworkError> + 'a),
    /// Progress step number for log events.
    pub step: usize,
    /// `RUN --mount`s: runtime mounts, and extra lowers (the mount points)
    /// stacked above the init layer.
    pub mounts: Vec<strata_runtime::MountSpec>,
    pub extra_lowers: Vec<std::path::PathBuf>,
    /// Extra environment not recorded anywhere (secrets, SSH_AUTH_SOCK).
    pub extra_env: Vec<String>,
    /// SOURCE_DATE_EPOCH.
    pub epoch: Option<i64>,
    /// `build --add-host`, `--shm-size`, `--ulimit`.
    pub extra: strata_runtime::ContainerExtras,
}

/// How a RUN failed. Wrapped errors are `transparent`: their message is
/// not repeated by a `source()` that says the same (`{:#}` printed causes
/// twice).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// `command` is the command line, quoted and shortened by
    /// `shown_command` (a long heredoc script is not echoed whole).
    #[error("process {command} did not complete successfully: exit code: {code}")]
    Failed {
        /// The command line as shown.
        command: String,
        /// Its exit status.
        code: i32,
    },
    #[error(transparent)]
    /// The runtime failed.
    Runtime(#[from] strata_runtime::Error),
    #[error(transparent)]
    /// The layer could not be written.
    Store(#[from] strata_store::StoreError),
    #[error(transparent)]
    /// The root filesystem could not be mounted.
    Mount(#[from] crate::mounts::MountError),
    /// The RUN's network could not be set up.
    #[error(transparent)]
    Network(#[from] crate::network::NetworkError),
}

/// At most this many characters of a command line appear in an error.
pub(crate) const SHOWN_COMMAND_CHARS: usize = 200;

/// The command line as an error shows it: quoted like BuildKit's
/// (`"/bin/sh -c ..."`, newlines escaped), cut after
/// [`SHOWN_COMMAND_CHARS`] characters with the number left out. The full
/// script is in the Dockerfile; the step's output is above the error.
pub(crate) fn shown_command(command: &str) -> String {
    let total = command.chars().count();
    if total <= SHOWN_COMMAND_CHARS {
        return format!("{command:?}");
    }
    let head: String = command.chars().take(SHOWN_COMMAND_CHARS).collect();
    let quoted = format!("{head:?}");
    format!(
        "{}...\" ({} more characters)",
        &quoted[..quoted.len() - 1],
        total - SHOWN_COMMAND_CHARS
    )
}

/// The layer options the engine writes with: gzip, Docker media type,
/// file times clamped to SOURCE_DATE_EPOCH when set.
pub fn layer_options(epoch: Option<i64>) -> LayerOptions {
    LayerOptions {
        media_type: strata_oci::media_types::DOCKER_LAYER_TAR_GZIP.to_string(),
        mtime_clamp: epoch,
        ..LayerOptions::default()
    }
}

/// Runs one RUN on `layers` and returns the new layer.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run(
    store: &Store,
    executor: &dyn Executor,
    init_layer: &Path,
    layers: &[LayerRef],
    p: &RunParams<'_>,
    events: EventSink<'_>,
    lease: &Lease,
) -> Result<LayerRef, RunError> {
    let mut lowers = vec![init_layer.to_path_buf()];
    lowers.extend(p.extra_lowers.iter().cloned());
    let rootfs = MountedRootfs::mount(store, layers, &lowers, Some(lease))?;
    let user = resolve_user(rootfs.root(), p.user)?;
    let network = (p.network)()?;
    let spec = ContainerSpec {
        id: rootfs.id(),
        rootfs: rootfs.root().to_path_buf(),
        process: ProcessSpec {
            args: p.argv.clone(),
            env: p.env.iter().chain(&p.extra_env).cloned().collect(),
            cwd: p.workdir.to_string(),
            user,
            tty: false,
            stdin: false,
        },
        network,
        mounts: p.mounts.clone(),
        hostname: None,
        readonly_rootfs: false,
        extra: p.extra.clone(),
    };
    let (tx, rx) = mpsc::channel::<(Stream, Vec<u8>)>();
    let step = p.step;
    let status = std::thread::scope(|s| {
        s.spawn(move || forward_lines(rx, step, events));
        let tx2 = tx.clone();
        let io = StdioConfig::Piped {
            stdout: Box::new(move |b: &[u8]| {
                let _ = tx.send((Stream::Stdout, b.to_vec()));
            }),
            stderr: Box::new(move |b: &[u8]| {
                let _ = tx2.send((Stream::Stderr, b.to_vec()));
            }),
        };
        executor.run(&spec, io)
        // The sinks are dropped with `io` inside run: the forwarder ends.
    })?;
    if !status.success() {
        return Err(RunError::Failed {
            command: shown_command(&p.argv.join(" ")),
            code: status.code,
        });
    }
    if p.epoch.is_some() {
        // The layer's times are clamped: the upper dir does not give its
        // tar again, so it is written as a blob and the snapshotter
        // unpacks it when needed.
        let info = LayerWriter::new(store.blobs(), layer_options(p.epoch))
            .write_dir(&rootfs.upper(), Some(lease))?;
        rootfs.release()?;
        return Ok(info.to_record());
    }
    // The upper dir is the layer, overlay-ready: it is kept as the
    // snapshot, the layer's only copy; its tar is only hashed here (the
    // diff ID), and made again from the snapshot when it is needed.
    let info = strata_store::digest_dir(&rootfs.upper(), layer_options(None))?;
    let mut diff_ids = Vec::with_capacity(layers.len() + 1);
    for l in layers {
        diff_ids.push(l.diff_id.clone());
    }
    diff_ids.push(info.diff_id.clone());
    let chain = strata_store::chain_ids(&diff_ids);
    let kept =
        rootfs.release_adopting(store, chain.last().expect("one layer"), &info, Some(lease))?;
    Ok(kept.to_record())
}

/// Splits output chunks into lines (per stream) and emits Log events.
fn forward_lines(rx: mpsc::Receiver<(Stream, Vec<u8>)>, step: usize, events: EventSink<'_>) {
    let mut pending: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let emit = |stream: Stream, line: &[u8]| {
        let line = String::from_utf8_lossy(line);
        let line = line.trim_end_matches('\r').to_string();
        events(Event::now(EventKind::Log { step, stream, line }));
    };
    for (stream, chunk) in rx {
        let buf = &mut pending[stream as usize];
        buf.extend_from_slice(&chunk);
        while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            emit(stream, &line[..line.len() - 1]);
        }
    }
    for (i, buf) in pending.iter().enumerate() {
        if !buf.is_empty() {
            emit(
                if i == 0 {
                    Stream::Stdout
                } else {
                    Stream::Stderr
                },
                buf,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_commands_are_cut_in_errors() {
        assert_eq!(
            shown_command("/bin/sh -c echo hi"),
            "\"/bin/sh -c echo hi\""
        );
        let script: String = (0..100).map(|i| format!("echo line {i}\n")).collect();
        let e = RunError::Failed {
            command: shown_command(&format!("/bin/sh -c {script}")),
            code: 7,
        }
        .to_string();
        assert!(
            e.starts_with("process \"/bin/sh -c echo line 0\\necho line 1"),
            "{e}"
        );
        assert!(!e.contains("line 99"), "{e}");
        assert!(e.contains("...\" ("), "{e}");
        assert!(e.ends_with("more characters) did not complete successfully: exit code: 7"));
        assert!(e.len() < SHOWN_COMMAND_CHARS + 150, "{}", e.len());
    }

    #[test]
    fn wrapped_errors_do_not_repeat_their_cause() {
        let io = std::io::Error::from_raw_os_error(2);
        let text = io.to_string();
        let e = RunError::from(strata_runtime::Error::Io {
            context: "reading /x".into(),
            cause: io,
        });
        let mut chain = String::new();
        let mut cur: Option<&dyn std::error::Error> = Some(&e);
        while let Some(c) = cur {
            chain.push_str(&c.to_string());
            chain.push('|');
            cur = c.source();
        }
        assert_eq!(chain.matches(&text).count(), 1, "{chain}");
        assert!(chain.starts_with("reading /x: "), "{chain}");
    }
}
