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
    /// A loopback address (`localhost`, `127.0.0.1`, `::1`).
    Loopback,
    /// Listed in the insecure registries.
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

/// True when `registry` names a loopback host.
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
        // Redirects are followed by `call_following`, which refuses any
        // scheme but http(s): ureq took `file:///x` for a relative path,
        // looped, and said "too many redirects".
        .max_redirects(0)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(300)))
        .timeout_per_read(Some(Duration::from_secs(120)))
        .timeout_per_write(Some(Duration::from_secs(120)))
        .max_idle_connections_per_host(8)
        .build();
    ureq::Agent::new_with_config(config)
}

/// How many redirects one request follows.
pub const MAX_REDIRECTS: u32 = 8;

/// Why a request that followed redirects failed.
#[derive(Debug)]
pub enum FollowError {
    /// The request to `url` failed.
    Transport {
        /// The URL whose request failed (the one asked for or a redirect's).
        url: String,
        /// ureq's error.
        source: ureq::Error,
    },
    /// A redirect that is not followed (the caller names the URL asked for).
    Redirect(RedirectError),
}

/// A redirect that is not followed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectError {
    /// A `Location` with a scheme other than http or https.
    #[error(
        "redirect to unsupported scheme {scheme}://… refused (Location: {location}; \
         only http and https redirects are followed)"
    )]
    UnsupportedScheme {
        /// The scheme, lowercased.
        scheme: String,
        /// The `Location` header, shortened to 200 bytes.
        location: String,
    },
    /// A relative `Location` against a base URL without a scheme.
    #[error("{base}: cannot resolve redirect to {location:?}")]
    Unresolvable {
        /// The URL redirected from.
        base: String,
        /// The `Location` header.
        location: String,
    },
    /// More than [`MAX_REDIRECTS`] redirects.
    #[error("too many redirects (more than {MAX_REDIRECTS})")]
    TooMany,
}

impl std::fmt::Display for FollowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FollowError::Transport { url, source } => write!(f, "{url}: {source}"),
            FollowError::Redirect(why) => write!(f, "{why}"),
        }
    }
}

/// Whether `status` is a redirect with a `Location` to follow.
fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// The URL a redirect from `base` to `location` leads to. Only http and
/// https are followed: anything else is refused, naming the scheme.
pub fn redirect_target(base: &str, location: &str) -> Result<String, RedirectError> {
    let location = location.trim();
    let scheme_end = location.find(':').filter(|&i| {
        i > 0
            && location[..i]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
            && location.as_bytes()[0].is_ascii_alphabetic()
    });
    if let Some(i) = scheme_end {
        let scheme = location[..i].to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(RedirectError::UnsupportedScheme {
                scheme,
                location: ellipsis(location, 200),
            });
        }
        return Ok(location.to_string());
    }
    let (scheme, rest) = base
        .split_once("://")
        .ok_or_else(|| RedirectError::Unresolvable {
            base: base.to_string(),
            location: location.to_string(),
        })?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let origin = format!("{scheme}://{}", &rest[..authority_end]);
    if let Some(net) = location.strip_prefix("//") {
        return Ok(format!("{scheme}://{net}"));
    }
    if location.starts_with('/') {
        return Ok(format!("{origin}{location}"));
    }
    // Relative to the base's directory.
    let path = &rest[authority_end..];
    let path = path.split(['?', '#']).next().unwrap_or("");
    let dir = match path.rfind('/') {
        Some(i) => &path[..=i],
        None => "/",
    };
    Ok(format!("{origin}{dir}{location}"))
}

fn ellipsis(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// A body-less request (`GET`, `HEAD`, `DELETE`) to `url`, following up
/// to [`MAX_REDIRECTS`] redirects itself (agents made here follow none).
/// `make` builds the request for a URL; `first` says whether it is the
/// URL asked for (credentials go there only, as ureq's own redirects
/// never forwarded `Authorization`). Returns the last response, which is
/// not a redirect, and the URL it came from.
pub fn call_following(
    url: &str,
    mut make: impl FnMut(&str, bool) -> ureq::RequestBuilder<ureq::typestate::WithoutBody>,
) -> Result<(ureq::http::Response<ureq::Body>, String), FollowError> {
    let mut current = url.to_string();
    for hop in 0..=MAX_REDIRECTS {
        let resp = make(&current, hop == 0)
            .call()
            .map_err(|source| FollowError::Transport {
                url: current.clone(),
                source,
            })?;
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        match location {
            Some(loc) if is_redirect(status) => {
                current = redirect_target(&current, &loc).map_err(FollowError::Redirect)?;
            }
            _ => return Ok((resp, current)),
        }
    }
    Err(FollowError::Redirect(RedirectError::TooMany))
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

    #[test]
    fn redirect_targets() {
        let b = "https://r.example/v2/x/blobs/sha256:ab?q=1";
        assert_eq!(
            redirect_target(b, "https://s3.example/bucket/o?sig=1").unwrap(),
            "https://s3.example/bucket/o?sig=1"
        );
        assert_eq!(
            redirect_target(b, "/other").unwrap(),
            "https://r.example/other"
        );
        assert_eq!(
            redirect_target(b, "//cdn.example/p").unwrap(),
            "https://cdn.example/p"
        );
        assert_eq!(
            redirect_target(b, "sib").unwrap(),
            "https://r.example/v2/x/blobs/sib"
        );
        for loc in [
            "file:///etc/passwd",
            "FILE:/etc/shadow",
            "ftp://h/x",
            "gopher://h",
        ] {
            let e = redirect_target(b, loc).unwrap_err();
            assert!(matches!(&e, RedirectError::UnsupportedScheme { .. }), "{e}");
            let e = e.to_string();
            assert!(e.contains("redirect to unsupported scheme"), "{e}");
            assert!(e.contains("refused"), "{e}");
        }
        let e = redirect_target(b, "file:///etc/passwd")
            .unwrap_err()
            .to_string();
        assert!(e.contains("file://… refused"), "{e}");
    }
}
