//! ADD of http(s) URLs: the body is streamed into a file (hashed on the
//! way, never held in memory), named from the URL path. As Docker: mode
//! 0600, mtime from `Last-Modified`, plain http allowed for any host, not
//! extracted. `--checksum=sha256:...` is verified before anything uses the
//! file.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use super::SourceError;

/// A downloaded file.
#[derive(Debug)]
pub struct Download {
    /// The downloaded file.
    pub path: PathBuf,
    /// `sha256:<hex>` of the contents.
    pub digest: String,
    /// Its `Last-Modified` time, in Unix seconds.
    pub mtime: Option<i64>,
}

/// The file name Docker gives a URL's download: the last segment of its
/// path (query and fragment dropped), or `download` when empty.
pub fn file_name(url: &str) -> String {
    let no_frag = url.split('#').next().unwrap_or(url);
    let no_query = no_frag.split('?').next().unwrap_or(no_frag);
    let after_scheme = no_query.split_once("://").map(|x| x.1).unwrap_or(no_query);
    let path = after_scheme.split_once('/').map(|x| x.1).unwrap_or("");
    path.rsplit('/')
        .find(|s| !s.is_empty())
        .unwrap_or("download")
        .to_string()
}

/// Downloads `url` into `dir/<name>`; checks `checksum` (`sha256:<hex>`)
/// when given.
pub fn download(
    url: &str,
    dir: &Path,
    name: &str,
    checksum: Option<&str>,
) -> Result<Download, SourceError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_body(Some(Duration::from_secs(600)))
        // Followed by call_following, http(s) only: ureq took a redirect
        // to `file:///x` for a relative path and said "too many redirects".
        .max_redirects(0)
        .build()
        .into();
    let (mut resp, _) = strata_registry::transport::call_following(url, |u, _| {
        agent.get(u).header("User-Agent", "strata")
    })
    .map_err(|e| SourceError::Download {
        url: url.to_string(),
        source: match e {
            // The transport's message would name the URL again.
            strata_registry::transport::FollowError::Transport { url: at, source } if at == url => {
                source.into()
            }
            // Not an `Error` type: its message is the cause.
            e => e.to_string().into(),
        },
    })?;
    let mtime = resp
        .headers()
        .get("last-modified")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_http_date);
    let path = dir.join(name);
    let io = |source| SourceError::Io {
        path: path.clone(),
        source,
    };
    let mut out = File::create(&path).map_err(io)?;
    let mut body = resp.body_mut().as_reader();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = body.read(&mut buf).map_err(|e| SourceError::Download {
            url: url.to_string(),
            source: Box::new(e),
        })?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(io)?;
    }
    drop(out);
    let digest = format!("sha256:{}", hex::encode(h.finalize()));
    if let Some(want) = checksum {
        verify_checksum(url, want, &digest)?;
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    if let Some(t) = mtime {
        let when = std::time::UNIX_EPOCH + Duration::from_secs(t.max(0) as u64);
        let f = File::options().write(true).open(&path).map_err(io)?;
        let _ = f.set_modified(when);
    }
    Ok(Download {
        path,
        digest,
        mtime,
    })
}

/// Compares a `--checksum` with the actual digest.
pub(crate) fn verify_checksum(what: &str, want: &str, actual: &str) -> Result<(), SourceError> {
    let want_norm = if want.contains(':') {
        want.to_ascii_lowercase()
    } else {
        format!("sha256:{}", want.to_ascii_lowercase())
    };
    if !want_norm.starts_with("sha256:") {
        return Err(SourceError::UnsupportedChecksum(want.to_string()));
    }
    if want_norm != actual {
        return Err(SourceError::ChecksumMismatch {
            what: what.to_string(),
            want: want_norm,
            got: actual.to_string(),
        });
    }
    Ok(())
}

/// Parses an HTTP date (`Wed, 21 Oct 2015 07:28:00 GMT`, RFC 7231's
/// preferred form) into Unix seconds.
pub(crate) fn parse_http_date(s: &str) -> Option<i64> {
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(s.trim(), &fmt)
        .ok()
        .map(|t| t.assume_utc().unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_dates() {
        assert_eq!(file_name("https://h/a/b/tool.tar.gz?x=1#f"), "tool.tar.gz");
        assert_eq!(file_name("http://h/"), "download");
        assert_eq!(file_name("http://h"), "download");
        assert_eq!(
            parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(1445412480)
        );
        assert!(verify_checksum("u", "sha256:AB", "sha256:ab").is_ok());
        let e = verify_checksum("u", "sha256:00", "sha256:ab")
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected sha256:00") && e.contains("got sha256:ab"));
    }

    /// A loopback HTTP server: `/to-file` redirects to file:///etc/passwd,
    /// `/hop` to `/data`, `/loop` to itself, `/data` answers "payload".
    fn server() -> String {
        use std::io::BufRead;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for c in l.incoming().flatten() {
                let mut r = std::io::BufReader::new(c);
                let mut line = String::new();
                r.read_line(&mut line).unwrap_or(0);
                let path = line.split(' ').nth(1).unwrap_or("/").to_string();
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                }
                let resp = match path.as_str() {
                    "/to-file" => "HTTP/1.1 302 Found\r\nLocation: file:///etc/passwd\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string(),
                    "/hop" => "HTTP/1.1 301 Moved\r\nLocation: /data\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string(),
                    "/loop" => "HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string(),
                    _ => "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\npayload".to_string(),
                };
                let _ = r.get_mut().write_all(resp.as_bytes());
            }
        });
        format!("http://{addr}")
    }

    #[test]
    fn redirects_to_file_urls_are_refused_by_name_http_ones_followed() {
        let base = server();
        let d = tempfile::tempdir().unwrap();
        let e = download(&format!("{base}/to-file"), d.path(), "x", None).unwrap_err();
        let e = crate::error::chain(&e);
        assert!(
            e.contains("redirect to unsupported scheme file://… refused"),
            "{e}"
        );
        assert!(!e.contains("too many redirects"), "{e}");
        let ok = download(&format!("{base}/hop"), d.path(), "y", None).unwrap();
        assert_eq!(std::fs::read(ok.path).unwrap(), b"payload");
        let e = download(&format!("{base}/loop"), d.path(), "z", None).unwrap_err();
        let e = crate::error::chain(&e);
        assert!(e.contains("too many redirects"), "{e}");
    }
}
