//! A container's network and what reaches into it from the host:
//! `--network`, `-p` ([`Port`]), `--add-host`, `--dns` and `-v` bind
//! mounts.

use serde::{Deserialize, Serialize};
use strata_runtime::{BindMount, MountSpec, Network, PastaOptions, PrivateNetwork};

use super::ContainerError;

fn invalid(message: String) -> ContainerError {
    ContainerError::Invalid(message)
}

/// A published port.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// The host address (empty: every address).
    pub host_ip: String,
    /// The port on the host.
    pub host_port: u16,
    /// The port in the container.
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub proto: String,
}

impl Port {
    /// `[IP:]HOST:CONTAINER[/udp|tcp]` (or `CONTAINER`: the same port on
    /// the host).
    pub fn parse(s: &str) -> Result<Port, ContainerError> {
        let (spec, proto) = match s.rsplit_once('/') {
            Some((a, p @ ("tcp" | "udp"))) => (a, p),
            Some(_) => {
                return Err(invalid(format!(
                    "invalid port {s:?}: the protocol must be tcp or udp"
                )))
            }
            None => (s, "tcp"),
        };
        let parts: Vec<&str> = spec.rsplitn(3, ':').collect();
        let num = |p: &str| -> Result<u16, ContainerError> {
            p.parse::<u16>().ok().filter(|&n| n != 0).ok_or_else(|| {
                invalid(format!(
                    "invalid port {p:?} in {s:?} (use [IP:]HOST:CONTAINER[/udp])"
                ))
            })
        };
        let (ip, host, ctr) = match parts.as_slice() {
            [c] => ("", num(c)?, num(c)?),
            [c, h] => ("", num(h)?, num(c)?),
            [c, h, ip] => (*ip, if h.is_empty() { num(c)? } else { num(h)? }, num(c)?),
            _ => return Err(invalid(format!("invalid port {s:?}"))),
        };
        let ip = ip.trim_start_matches('[').trim_end_matches(']');
        if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
            return Err(invalid(format!(
                "invalid port {s:?}: {ip:?} is not an IP address"
            )));
        }
        Ok(Port {
            host_ip: ip.to_string(),
            host_port: host,
            container_port: ctr,
            proto: proto.to_string(),
        })
    }

    /// Docker's `ps` PORTS form: `127.0.0.1:8080->80/tcp`.
    pub fn display(&self) -> String {
        let ip = if self.host_ip.is_empty() {
            "0.0.0.0"
        } else {
            &self.host_ip
        };
        format!(
            "{ip}:{}->{}/{}",
            self.host_port, self.container_port, self.proto
        )
    }
}

/// The network `--network` chose, and a warning to show when the choice
/// was not the one asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkChoice {
    /// `private`, `host` or `none`.
    pub name: String,
    /// Why the default private network was replaced by the host's.
    pub warning: Option<String>,
}

impl NetworkChoice {
    /// `--network`: `private` (also `bridge`, `default`), `host` or `none`.
    /// Not given, it is `private`; an unprivileged user on a host where
    /// pasta cannot work gets the host's network with a warning (as
    /// build's RUN steps do), never silently.
    pub fn parse(n: Option<&str>) -> Result<NetworkChoice, ContainerError> {
        let chosen = |name: &str| NetworkChoice {
            name: name.into(),
            warning: None,
        };
        let Some(n) = n else {
            if strata_runtime::is_rootless() {
                if let Some(u) = strata_runtime::netns::unavailable() {
                    return Ok(NetworkChoice {
                        name: "host".into(),
                        warning: Some(format!(
                            "the container uses the host's network: no private network \
                             for an unprivileged user here ({}); to fix it, {}; or give --network \
                             host or none to silence this",
                            u.why, u.fix
                        )),
                    });
                }
            }
            return Ok(chosen("private"));
        };
        match n {
            "private" | "bridge" | "default" => Ok(chosen("private")),
            "host" => Ok(chosen("host")),
            "none" => Ok(chosen("none")),
            other => Err(invalid(format!(
                "invalid --network {other:?}: use private (or its alias bridge), host or none; \
                 user-defined networks are not supported"
            ))),
        }
    }

    /// Refuses published ports on a network that has none.
    pub fn check_ports(&self, ports: &[Port]) -> Result<(), ContainerError> {
        if !ports.is_empty() && self.name != "private" {
            return Err(invalid(format!(
                "-p publishes ports of a private network; --network {} has none to publish (use --network private)",
                self.name
            )));
        }
        Ok(())
    }
}

/// `-v SRC:DST[:ro|rw]`: the source made absolute (it must exist).
pub fn volume_mounts(volumes: &[String]) -> Result<Vec<MountSpec>, ContainerError> {
    let mut mounts = Vec::new();
    for v in volumes {
        let parts: Vec<&str> = v.split(':').collect();
        let (src, dst, ro) = match parts.as_slice() {
            [s, d] => (*s, *d, false),
            [s, d, "ro"] => (*s, *d, true),
            [s, d, "rw"] => (*s, *d, false),
            _ => return Err(invalid(format!("invalid volume {v:?}: use SRC:DST[:ro]"))),
        };
        if !dst.starts_with('/') {
            return Err(invalid(format!(
                "invalid volume {v:?}: the destination must be an absolute path"
            )));
        }
        let source = std::fs::canonicalize(src).map_err(|source| ContainerError::Io {
            what: format!(
                "volume source {src} (named volumes are not supported; give a host path)"
            ),
            source,
        })?;
        mounts.push(MountSpec::Bind(BindMount {
            source,
            destination: dst.to_string(),
            readonly: ro,
        }));
    }
    Ok(mounts)
}

/// `--add-host HOST:IP` (`host-gateway` is the host as pasta maps it).
pub fn add_hosts(v: &[String]) -> Result<Vec<(String, String)>, ContainerError> {
    v.iter()
        .map(|h| {
            let (host, ip) = h
                .split_once(':')
                .or_else(|| h.split_once('='))
                .ok_or_else(|| invalid(format!("invalid --add-host {h:?}: use HOST:IP")))?;
            let ip = if ip == "host-gateway" {
                gateway().unwrap_or_else(|| "127.0.0.1".into())
            } else {
                ip.to_string()
            };
            if ip.parse::<std::net::IpAddr>().is_err() {
                return Err(invalid(format!(
                    "invalid --add-host {h:?}: {ip:?} is not an IP address"
                )));
            }
            Ok((host.to_string(), ip))
        })
        .collect()
}

/// The host's default gateway (pasta gives the container the same one and
/// maps it to the host's loopback).
fn gateway() -> Option<String> {
    let t = std::fs::read_to_string("/proc/net/route").ok()?;
    t.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(1) == Some(&"00000000")).then(|| {
            let g = u32::from_str_radix(f[2], 16).ok()?;
            Some(std::net::Ipv4Addr::from(g.to_le_bytes()).to_string())
        })?
    })
}

/// A private network for one container, publishing `ports`; refused with
/// how to fix it when pasta cannot work here.
pub fn private_network(ports: &[Port]) -> Result<PrivateNetwork, ContainerError> {
    if let Some(u) = strata_runtime::netns::unavailable() {
        return Err(invalid(format!(
            "--network private cannot be set up: {}. To fix it, {}; or run with --network host \
             or --network none",
            u.why, u.fix
        )));
    }
    let spec = |p: &Port| {
        if p.host_ip.is_empty() {
            format!("{}:{}", p.host_port, p.container_port)
        } else {
            format!("{}/{}:{}", p.host_ip, p.host_port, p.container_port)
        }
    };
    let of = |proto: &str| {
        ports
            .iter()
            .filter(|p| p.proto == proto)
            .map(spec)
            .collect()
    };
    let opts = PastaOptions {
        tcp: of("tcp"),
        udp: of("udp"),
        hint: Some("run with --network host or --network none instead".into()),
    };
    let dir = strata_runtime::netns::default_dir()?;
    Ok(PrivateNetwork::create_with(&dir, &opts)?)
}

/// The runtime's network: joining `private` (with `dns` as its
/// nameservers when given), none, or the host's.
pub fn runtime_network(private: Option<&PrivateNetwork>, name: &str, dns: &[String]) -> Network {
    match (private, name) {
        (Some(p), _) => {
            let mut n = p.netns().clone();
            if !dns.is_empty() {
                n.resolv_conf = Some(dns.iter().map(|d| format!("nameserver {d}\n")).collect());
            }
            Network::Join(n)
        }
        (None, "none") => Network::None,
        _ => Network::Host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_parse_like_docker() {
        let p = Port::parse("127.0.0.1:18080:80").unwrap();
        assert_eq!(
            (p.host_ip.as_str(), p.host_port, p.container_port),
            ("127.0.0.1", 18080, 80)
        );
        assert_eq!(
            Port::parse("8080:80/udp").unwrap().display(),
            "0.0.0.0:8080->80/udp"
        );
        assert_eq!(Port::parse("80").unwrap().host_port, 80);
        for bad in ["x:80", "1.2.3:80:80", "80/sctp"] {
            assert!(Port::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn network_names_and_ports() {
        let n = NetworkChoice::parse(Some("bridge")).unwrap();
        assert_eq!(n.name, "private");
        assert!(n.check_ports(&[Port::parse("80").unwrap()]).is_ok());
        let host = NetworkChoice::parse(Some("host")).unwrap();
        assert!(host.check_ports(&[Port::parse("80").unwrap()]).is_err());
        assert!(NetworkChoice::parse(Some("mynet")).is_err());
    }

    #[test]
    fn volumes_need_an_absolute_destination_and_a_real_source() {
        assert!(volume_mounts(&["/:/host:ro".into()]).is_ok());
        assert!(volume_mounts(&["/:rel".into()]).is_err());
        assert!(volume_mounts(&["/no/such/dir/here:/x".into()]).is_err());
    }
}
