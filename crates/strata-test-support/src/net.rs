//! Network fixtures on the loopback: a one-shot HTTP server, and git
//! repositories served by a git daemon.

use std::path::Path;
use std::process::Command;

/// An HTTP server on 127.0.0.1 answering `requests` requests (one at a
/// time, any path) with 200 and `body`; `headers` (each ending `\r\n`) go
/// after Content-Length. Returns the port.
pub fn serve_http(body: Vec<u8>, requests: usize, headers: &'static str) -> u16 {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().take(requests) {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 4096];
            let mut req = Vec::new();
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n{headers}Connection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
    port
}

/// `git -C DIR ARGS` (author and committer `t <t@t>`), asserting success;
/// returns stdout, trimmed.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let o = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .output()
        .expect("git");
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// A git daemon serving the repositories under `base` (export-all) on a
/// free loopback port, up (or given five seconds) when this returns. It
/// is git-daemon itself (not the `git daemon` wrapper), so that kill()
/// stops the server. Returns it and the port.
pub fn git_daemon(base: &Path) -> (std::process::Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let exec_path = git(base, &["--exec-path"]);
    let daemon = Command::new(Path::new(&exec_path).join("git-daemon"))
        .arg("--export-all")
        .arg("--reuseaddr")
        .arg(format!("--base-path={}", base.display()))
        .arg(format!("--port={port}"))
        .arg("--listen=127.0.0.1")
        .arg(base)
        .spawn()
        .expect("git daemon (Debian package git-daemon-run or git)");
    for _ in 0..50 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    (daemon, port)
}
