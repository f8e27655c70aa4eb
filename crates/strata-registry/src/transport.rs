//! How strata reaches a registry: the HTTP agent (rustls), the choice of
//! scheme, and retry pacing.
//!
//! Plain http is used only for loopback registries (127.0.0.0/8, ::1,
//! `localhost`) and for registries the user named as insecure
//! (`--insecure-registry`, or `STRATA_INSECURE_REGISTRIES=host:port,...`).
//! Everything else is https, and an https failure is an error: there is no
//! fallback to http.

use std::net::IpAddr;
use std::time::Duration;

/// The environment variable listing extra insecure (plain http) registries.
pub const INSECURE_ENV: &str = "STRATA_INSECURE_REGISTRIES";

/// Why a registry is spoken to over plain http (None: https).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlainHttp {
    Loopback,
    Insecure,
}

/// `host`, `host:port`, `[v6]:port` → the host part.
pub fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match registry.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => registry,
    }
}

pub fn is_loopback(registry: &str) -> bool {
    let host = host_of(registry);
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Decides http or https for `api_host` (the registry API host, with port).
pub fn plain_http(api_host: &str, insecure: &[String]) -> Option<PlainHttp> {
    if is_loopback(api_host) {
        return Some(PlainHttp::Loopback);
    }
    let env = std::env::var(INSECURE_ENV).unwrap_or_default();
    let listed = insecure
        .iter()
        .map(String::as_str)
        .chain(env.split(',').map(str::trim))
        .filter(|s| !s.is_empty())
        .any(|s| {
            let s = s
                .strip_prefix("http://")
                .or_else(|| s.strip_prefix("https://"))
                .unwrap_or(s)
                .trim_end_matches('/');
            s.eq_ignore_ascii_case(api_host)
        });
    listed.then_some(PlainHttp::Insecure)
}

pub(crate) fn agent(user_agent: &str) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .user_agent(user_agent)
        .max_redirects(8)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(300)))
        .timeout_per_read(Some(Duration::from_secs(120)))
        .timeout_per_write(Some(Duration::from_secs(120)))
        .max_idle_connections_per_host(8)
        .build();
    ureq::Agent::new_with_config(config)
}

/// Backoff before retry `attempt` (1-based): 250 ms, 500 ms, 1 s, 2 s...
pub(crate) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(250u64 << (attempt.saturating_sub(1)).min(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes() {
        assert_eq!(plain_http("127.0.0.1:5000", &[]), Some(PlainHttp::Loopback));
        assert_eq!(plain_http("127.8.9.1", &[]), Some(PlainHttp::Loopback));
        assert_eq!(plain_http("localhost:5000", &[]), Some(PlainHttp::Loopback));
        assert_eq!(plain_http("[::1]:5000", &[]), Some(PlainHttp::Loopback));
        assert_eq!(plain_http("registry-1.docker.io", &[]), None);
        assert_eq!(plain_http("10.0.0.1:5000", &[]), None);
        assert_eq!(plain_http("localhost.evil.com", &[]), None);
        assert_eq!(
            plain_http("reg.lan:5000", &["reg.lan:5000".into()]),
            Some(PlainHttp::Insecure)
        );
        assert_eq!(plain_http("reg.lan:5001", &["reg.lan:5000".into()]), None);
    }
}
