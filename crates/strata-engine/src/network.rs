//! The network of a build's RUN steps.
//!
//! By default every RUN of a build joins one private network namespace
//! ([`strata_runtime::PrivateNetwork`]: outbound access through pasta, none
//! of the host's interfaces, packets or abstract unix sockets). It is
//! created lazily by the first RUN that actually executes (a fully cached
//! build creates none), shared by every later RUN of the build, and torn
//! down (pasta killed, namespace unmounted) when the build ends, on every
//! path out, since `BuildNetwork` lives as long as the `build` call.
//!
//! `RUN --network=host` and `strata build --network host` need
//! `--allow network.host` (as buildx); `--network=none` gets a namespace
//! with only `lo`. Rootless on a host where pasta cannot open
//! `/dev/net/tun` (mode 0600 here), RUN steps fall back to the host's
//! network, which an unprivileged user's namespace gives no raw sockets
//! on, with a warning.

use std::sync::{Arc, Mutex};

use strata_runtime::{Network, PrivateNetwork};

/// Why a RUN's network is refused or could not be set up.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkError {
    /// `strata build --network` names no known mode.
    #[error("unsupported network mode {0:?}: use default, none or host")]
    UnsupportedMode(String),
    /// `RUN --network=` names no known mode.
    #[error("unsupported --network={0}: use default, none or host")]
    UnsupportedFlag(String),
    /// Host networking without `--allow network.host`.
    #[error(
        "{what} needs the network.host entitlement: build with `--allow {NETWORK_HOST}` \
         (the step then shares the host's network: every service on the host's loopback \
         and its abstract unix sockets are reachable)"
    )]
    HostDenied {
        /// What asked for it (`RUN --network=host`, `--network host`).
        what: &'static str,
    },
    /// The private network could not be created.
    #[error(transparent)]
    Create(Arc<strata_runtime::Error>),
    /// The thread creating it could not start.
    #[error("starting the network thread")]
    Thread(#[source] Arc<std::io::Error>),
    /// The thread creating it panicked.
    #[error("the network thread panicked")]
    Panicked,
}

/// The build-wide network choice (`strata build --network`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NetworkMode {
    /// A private namespace with outbound access, shared by the build.
    #[default]
    Default,
    /// The host's network (needs `--allow network.host`).
    Host,
    /// No network: only `lo`.
    None,
}

impl NetworkMode {
    /// `default`, `host` or `none` (`bridge` is taken as `default`).
    pub fn parse(s: &str) -> Result<NetworkMode, NetworkError> {
        match s {
            "default" | "bridge" | "" => Ok(NetworkMode::Default),
            "host" => Ok(NetworkMode::Host),
            "none" => Ok(NetworkMode::None),
            o => Err(NetworkError::UnsupportedMode(o.to_string())),
        }
    }
}

/// The entitlement that allows the host's network.
pub(crate) const NETWORK_HOST: &str = "network.host";

/// The message for host networking without the entitlement (`what`
/// asked for it).
pub fn host_network_denied(what: &'static str) -> String {
    NetworkError::HostDenied { what }.to_string()
}

/// What a RUN's `--network` flag asks for, given the build's mode.
pub(crate) fn resolve(
    flag: Option<&str>,
    build: NetworkMode,
    allow_host: bool,
) -> Result<NetworkMode, NetworkError> {
    let mode = match flag {
        None | Some("default") => build,
        Some("host") => NetworkMode::Host,
        Some("none") => NetworkMode::None,
        Some(o) => return Err(NetworkError::UnsupportedFlag(o.to_string())),
    };
    if mode == NetworkMode::Host && !allow_host {
        let what = if flag == Some("host") {
            "RUN --network=host"
        } else {
            "--network host"
        };
        return Err(NetworkError::HostDenied { what });
    }
    Ok(mode)
}

/// The lazily created private network of one build.
#[derive(Default)]
pub(crate) struct BuildNetwork {
    state: Mutex<State>,
    /// The rootless fallback's warning, until one RUN has shown it.
    warning: Mutex<Option<String>>,
}

#[derive(Default)]
enum State {
    #[default]
    NotYet,
    /// Being created in the background (see [`BuildNetwork::prepare`]).
    Pending(std::thread::JoinHandle<Result<PrivateNetwork, strata_runtime::Error>>),
    Private(PrivateNetwork),
    /// Rootless without a usable pasta: the host's network.
    Fallback,
    Failed(NetworkError),
}

/// What [`BuildNetwork::network`] gives a RUN.
pub(crate) struct Joined {
    pub network: Network,
    /// A warning to show once (the rootless fallback).
    pub warning: Option<String>,
}

impl BuildNetwork {
    /// Starts creating the private namespace in the background when `mode`
    /// needs it and nothing exists yet, so that pasta's start overlaps the
    /// first RUN's rootfs preparation (unpacking its base layers).
    /// [`BuildNetwork::network`] waits for it.
    pub(crate) fn prepare(&self, mode: NetworkMode) {
        if mode != NetworkMode::Default {
            return;
        }
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if !matches!(*st, State::NotYet) {
            return;
        }
        *st = match strata_runtime::netns::unavailable() {
            Some(u) if strata_runtime::is_rootless() => {
                *self.warning.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!(
                    "warning: RUN steps use the host's network: no private network for them \
                     as an unprivileged user here ({}); to fix it, {}",
                    u.why, u.fix
                ));
                State::Fallback
            }
            _ => {
                let spawned = std::thread::Builder::new()
                    .name("strata-netns".into())
                    .spawn(|| {
                        strata_runtime::netns::default_dir()
                            .and_then(|dir| PrivateNetwork::create(&dir))
                    });
                match spawned {
                    Ok(h) => State::Pending(h),
                    Err(e) => State::Failed(NetworkError::Thread(Arc::new(e))),
                }
            }
        };
    }

    /// The runtime network for a RUN in `mode`; creates the private
    /// namespace on first use (or waits for [`BuildNetwork::prepare`]'s).
    pub(crate) fn network(&self, mode: NetworkMode) -> Result<Joined, NetworkError> {
        let plain = |network| {
            Ok(Joined {
                network,
                warning: None,
            })
        };
        match mode {
            NetworkMode::Host => return plain(Network::Host),
            NetworkMode::None => return plain(Network::None),
            NetworkMode::Default => {}
        }
        self.prepare(mode);
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if matches!(*st, State::Pending(_)) {
            let State::Pending(h) = std::mem::take(&mut *st) else {
                unreachable!("checked")
            };
            *st = match h.join() {
                Ok(Ok(n)) => {
                    tracing::debug!(
                        path = %n.netns().path.display(),
                        pasta = n.pasta_pid(),
                        setup_ms = n.setup_time().as_secs_f64() * 1e3,
                        "private network for RUN steps"
                    );
                    State::Private(n)
                }
                Ok(Err(e)) => State::Failed(NetworkError::Create(Arc::new(e))),
                Err(_) => State::Failed(NetworkError::Panicked),
            };
        }
        let warning = self
            .warning
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        match &*st {
            State::Private(n) => Ok(Joined {
                network: Network::Join(n.netns().clone()),
                warning,
            }),
            State::Fallback => Ok(Joined {
                network: Network::Host,
                warning,
            }),
            State::Failed(e) => Err(e.clone()),
            State::NotYet | State::Pending(_) => unreachable!("resolved above"),
        }
    }
}

impl Drop for BuildNetwork {
    /// A namespace still being created is waited for, so that it is torn
    /// down before the build returns.
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        if let State::Pending(h) = std::mem::take(st) {
            let _ = h.join();
        }
    }
}

impl BuildNetwork {
    /// How many private namespaces this build created (0 or 1).
    pub(crate) fn created(&self) -> usize {
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        usize::from(matches!(*st, State::Private(_) | State::Pending(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_needs_the_entitlement() {
        let e = resolve(Some("host"), NetworkMode::Default, false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("RUN --network=host") && e.contains("--allow network.host"),
            "{e}"
        );
        let e = resolve(None, NetworkMode::Host, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--allow network.host"), "{e}");
        assert_eq!(
            resolve(Some("host"), NetworkMode::Default, true).ok(),
            Some(NetworkMode::Host)
        );
        assert_eq!(
            resolve(None, NetworkMode::Default, false).ok(),
            Some(NetworkMode::Default)
        );
        assert_eq!(
            resolve(Some("none"), NetworkMode::Host, false).ok(),
            Some(NetworkMode::None)
        );
        assert!(resolve(Some("bridge0"), NetworkMode::Default, false).is_err());
    }
}
