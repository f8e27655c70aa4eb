//! A TCP proxy in front of the registry that cuts connections, to test
//! broken downloads.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What the proxy does once a connection has sent `cut_after` response bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Cut that connection once; later connections pass.
    CutOnce,
    /// Cut it, and refuse every later connection (the registry "died").
    CutThenDie,
    /// Never cut; answer every PATCH (chunked upload) with 405 itself, as
    /// registries without chunked uploads do.
    RefusePatch,
    /// Stop forwarding that connection's response (the client waits for
    /// more, as from a stalled download) and hold it open; other
    /// connections pass.
    Stall,
}

pub(crate) struct Proxy {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<String>>>,
    pub cuts: Arc<AtomicUsize>,
}

pub(crate) fn start(upstream: u16, cut_after: usize, mode: Mode) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let cuts = Arc::new(AtomicUsize::new(0));
    let dead = Arc::new(AtomicBool::new(false));
    let (reqs, cuts2) = (requests.clone(), cuts.clone());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(client) = conn else { continue };
            if dead.load(Ordering::SeqCst) {
                drop(client);
                continue;
            }
            let Ok(up) = TcpStream::connect(("127.0.0.1", upstream)) else {
                continue;
            };
            let (reqs, cuts, dead) = (reqs.clone(), cuts2.clone(), dead.clone());
            let dead_up = dead.clone();
            let (mut c_read, mut u_write) = (client.try_clone().unwrap(), up.try_clone().unwrap());
            let mut c_answer = client.try_clone().unwrap();
            // client -> upstream, logging request heads
            std::thread::spawn(move || {
                let mut buf = [0u8; 16384];
                loop {
                    let n = match c_read.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if dead_up.load(Ordering::SeqCst) {
                        break;
                    }
                    let text = String::from_utf8_lossy(&buf[..n]);
                    if text.starts_with("GET")
                        || text.starts_with("HEAD")
                        || text.starts_with("PUT")
                        || text.starts_with("POST")
                        || text.starts_with("PATCH")
                    {
                        let head: String = text.split("\r\n\r\n").next().unwrap_or("").to_string();
                        reqs.lock().unwrap().push(head);
                    }
                    if mode == Mode::RefusePatch && text.starts_with("PATCH") {
                        let _ = c_answer.write_all(
                            b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        );
                        let _ = c_answer.shutdown(Shutdown::Both);
                        let _ = u_write.shutdown(Shutdown::Both);
                        break;
                    }
                    if u_write.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = u_write.shutdown(Shutdown::Write);
            });
            let (mut u_read, mut c_write) = (up, client);
            std::thread::spawn(move || {
                let mut buf = [0u8; 16384];
                let mut sent = 0usize;
                loop {
                    let n = match u_read.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if dead.load(Ordering::SeqCst) {
                        break;
                    }
                    if mode == Mode::Stall && sent + n > cut_after {
                        let _ = c_write.write_all(&buf[..cut_after - sent]);
                        cuts.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_secs(600));
                        return;
                    }
                    let cut_now = !matches!(mode, Mode::RefusePatch | Mode::Stall)
                        && cuts.load(Ordering::SeqCst) == 0
                        && sent + n > cut_after;
                    if cut_now {
                        let keep = cut_after - sent;
                        let _ = c_write.write_all(&buf[..keep]);
                        cuts.fetch_add(1, Ordering::SeqCst);
                        if mode == Mode::CutThenDie {
                            dead.store(true, Ordering::SeqCst);
                        }
                        let _ = c_write.shutdown(Shutdown::Both);
                        let _ = u_read.shutdown(Shutdown::Both);
                        return;
                    }
                    if c_write.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    sent += n;
                }
                let _ = c_write.shutdown(Shutdown::Both);
            });
        }
    });
    Proxy {
        port,
        requests,
        cuts,
    }
}
