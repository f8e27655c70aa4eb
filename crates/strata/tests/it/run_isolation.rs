//! RUN steps are isolated from the host's network: each build's RUNs share
//! one private network namespace (outbound access through pasta), created
//! by the first RUN that executes and removed at the end; host networking
//! needs `--allow network.host` and never comes with CAP_NET_RAW. A build
//! killed with SIGKILL leaves nothing running after `system check --repair`.

use strata_test_support as support;

use std::io::Write;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::*;

/// The JSON events on stdout and stderr (lines that do not parse are skipped).
fn events(o: &std::process::Output) -> Vec<serde_json::Value> {
    stdout(o)
        .lines()
        .chain(stderr(o).lines())
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn build_done(o: &std::process::Output) -> serde_json::Value {
    events(o)
        .into_iter()
        .find(|e| e["type"] == "build_done")
        .unwrap_or_else(|| panic!("no build_done event: {}{}", stdout(o), stderr(o)))
}

/// The lines RUN steps printed (rawjson log events).
fn logs(o: &std::process::Output) -> String {
    events(o)
        .into_iter()
        .filter(|e| e["type"] == "log")
        .map(|e| format!("{}\n", e["line"].as_str().unwrap_or_default()))
        .collect()
}

/// A listening abstract unix socket with a unique name (no leading '@').
fn abstract_listener() -> (UnixListener, String) {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("strata-isolation-test-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    (UnixListener::bind_addr(&addr).unwrap(), name)
}

/// An HTTP server on the host's loopback answering every request with
/// `reply`; returns its port. (A plain "write and close" server with
/// `nc HOST PORT </dev/null` as the client hung once through this pasta
/// build, the client's FIN crossing the reply; HTTP has no half-close.)
fn loopback_server(reply: &'static str) -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            std::thread::spawn(move || {
                use std::io::Read;
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match c.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = write!(
                    c,
                    "HTTP/1.0 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                    reply.len()
                );
            });
        }
    });
    port
}

fn host_netns() -> String {
    std::fs::read_link("/proc/self/ns/net")
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn run_steps_get_a_private_network_without_the_hosts_interfaces_or_sockets() {
    let Some((_t, root)) = setup_with_pasta() else {
        return;
    };
    let (_listener, name) = abstract_listener();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox:1.35\n\
         RUN echo netns=$(readlink /proc/self/ns/net) && cat /proc/net/unix\n\
         RUN echo second=$(readlink /proc/self/ns/net)\n",
    )]);
    let o = build_ok(&root, ctx.path(), "iso", &["--progress", "rawjson"]);
    let out = logs(&o);
    let host = host_netns();
    let first = out
        .lines()
        .find_map(|l| l.strip_prefix("netns="))
        .expect("netns line");
    let second = out
        .lines()
        .find_map(|l| l.strip_prefix("second="))
        .expect("second line");
    assert_ne!(first, host, "the RUN shared the host's network namespace");
    assert_eq!(
        first, second,
        "the build's RUN steps must share one namespace"
    );
    // The host's abstract unix sockets live in the host's namespace only.
    assert!(
        !out.contains(&name),
        "the RUN sees the host's abstract socket @{name}:\n{out}"
    );
    assert_eq!(build_done(&o)["network_namespaces"], 1);
}

#[test]
fn private_network_has_outbound_access_to_the_hosts_loopback_through_the_gateway() {
    let Some((_t, root)) = setup_with_pasta() else {
        return;
    };
    let port = loopback_server("hello-from-the-host\n");
    let ctx = context(&[(
        "Dockerfile",
        &format!(
            "FROM busybox:1.35\n\
             RUN gw=$(ip route | awk '/^default/ {{print $3}}') && echo gw=$gw && \
             timeout 30 wget -q -O - http://$gw:{port}/ && cat /etc/resolv.conf\n"
        ),
    )]);
    let o = build_ok(&root, ctx.path(), "gw", &["--progress", "rawjson"]);
    let out = logs(&o);
    assert!(out.contains("hello-from-the-host"), "{out}");
    // DNS goes to pasta's forwarder, which is reachable in the namespace.
    assert!(out.contains("nameserver 169.254.1.1"), "{out}");
}

#[test]
fn names_resolve_inside_the_private_network_when_they_do_on_the_host() {
    if !can_run() || !have_pasta() {
        return;
    }
    use std::net::ToSocketAddrs;
    let name = "deb.debian.org";
    if (name, 80).to_socket_addrs().is_err() {
        eprintln!("SKIPPED: the host cannot resolve {name}");
        return;
    }
    let (_t, root) = root_dir();
    make_busybox(&root);
    let ctx = context(&[(
        "Dockerfile",
        &format!("FROM busybox:1.35\nRUN nslookup {name} && echo resolved-ok\n"),
    )]);
    let o = build_ok(&root, ctx.path(), "dns", &["--progress", "rawjson"]);
    assert!(logs(&o).contains("resolved-ok"), "{}", logs(&o));
}

#[test]
fn host_network_needs_allow_network_host_and_never_gets_net_raw() {
    let Some((_t, root)) = setup_with_pasta() else {
        return;
    };
    let port = loopback_server("hello-over-host-loopback\n");
    let (_listener, name) = abstract_listener();
    let df = format!(
        "FROM busybox:1.35\n\
         RUN --network=host timeout 30 wget -q -O - http://127.0.0.1:{port}/ && \
         grep CapBnd /proc/self/status && cat /proc/net/unix | grep -c {name}\n"
    );
    let ctx = context(&[("Dockerfile", &df)]);

    let o = build_with(&root, ctx.path(), "h", &[]);
    assert!(
        !o.status.success(),
        "RUN --network=host ran without --allow"
    );
    let err = stderr(&o);
    assert!(
        err.contains("RUN --network=host") && err.contains("--allow network.host"),
        "{err}"
    );

    let plain = context(&[("Dockerfile", "FROM busybox:1.35\nRUN true\n")]);
    let o = build_with(&root, plain.path(), "h2", &["--network", "host"]);
    assert!(!o.status.success(), "--network host ran without --allow");
    assert!(
        stderr(&o).contains("--allow network.host"),
        "{}",
        stderr(&o)
    );

    let o = build_ok(
        &root,
        ctx.path(),
        "h",
        &["--allow", "network.host", "--progress", "rawjson"],
    );
    let out = logs(&o);
    assert!(out.contains("hello-over-host-loopback"), "{out}");
    let bnd = out
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .expect("CapBnd line");
    let caps = u64::from_str_radix(bnd.trim(), 16).unwrap();
    assert_eq!(caps & (1 << 13), 0, "CAP_NET_RAW with the host network");
    assert_ne!(caps, 0);
    // Only host RUNs: no private namespace was made.
    assert_eq!(build_done(&o)["network_namespaces"], 0);
}

/// Namespace files and pasta processes of the strata process `pid`.
fn leftovers_of(pid: u32) -> Vec<String> {
    let prefix = format!("{pid}-");
    let mut out: Vec<String> = std::fs::read_dir("/run/strata/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default();
    let needle = format!("/run/strata/netns/{pid}-");
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmd = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains("pasta") && cmd.contains(&needle) {
            out.push(format!("pasta {}: {cmd}", p.file_name().to_string_lossy()));
        }
    }
    out
}

/// Waits (up to 5 s: a killed pasta takes a moment to exit) until
/// nothing of the strata process `pid` is left.
fn assert_nothing_left_of(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = leftovers_of(pid);
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "left behind: {left:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn build_child(root: &Path, ctx: &Path, extra: &[&str]) -> std::process::Child {
    build_child_env(root, ctx, extra, &[])
}

fn build_child_env(
    root: &Path,
    ctx: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .envs(env.iter().copied())
        .arg("--root")
        .arg(root)
        .args(["build", "-t", "x", "--progress", "rawjson"])
        .args(extra)
        .arg(ctx)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn a_fully_cached_rebuild_creates_no_namespace_and_nothing_is_left() {
    let Some((_t, root)) = setup_with_pasta() else {
        return;
    };
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox:1.35\nRUN echo one > /one\nRUN echo two > /two\n",
    )]);
    let c = build_child(&root, ctx.path(), &[]);
    let pid = c.id();
    let o = c.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(build_done(&o)["network_namespaces"], 1);
    assert_nothing_left_of(pid);

    let c = build_child(&root, ctx.path(), &[]);
    let o = c.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        build_done(&o)["network_namespaces"],
        0,
        "a cached build created a network namespace"
    );

    // A failing RUN tears the namespace down too.
    let bad = context(&[("Dockerfile", "FROM busybox:1.35\nRUN exit 3\n")]);
    let c = build_child(&root, bad.path(), &[]);
    let pid = c.id();
    let o = c.wait_with_output().unwrap();
    assert!(!o.status.success());
    assert_nothing_left_of(pid);
}

/// Pids of processes whose command line is exactly `argv`.
fn pids_running(argv: &[&str]) -> Vec<u32> {
    let want: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|p| {
            let pid = p.file_name().to_string_lossy().parse::<u32>().ok()?;
            (std::fs::read(p.path().join("cmdline")).ok()? == want).then_some(pid)
        })
        .collect()
}

/// The bundle dir (under /run/strata/bundles) of a container owned by `pid`.
fn bundle_owned_by(pid: u32) -> Option<PathBuf> {
    std::fs::read_dir("/run/strata/bundles")
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|b| {
            std::fs::read_to_string(b.join("config.json"))
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .is_some_and(|v| {
                    v["annotations"][strata_runtime::OWNER_ANNOTATION]
                        .as_str()
                        .and_then(|s| s.parse::<u32>().ok())
                        == Some(pid)
                })
        })
}

/// Starts a build whose RUN sleeps (two processes), waits until both
/// sleep, SIGKILLs strata and waits for pasta to die with it. Returns the
/// sleep argument, the strata pid and the container's bundle dir.
fn kill_a_build_mid_run(root: &Path, env: &[(&str, &str)]) -> (String, u32, PathBuf) {
    // Unique durations name this test's processes on a shared machine.
    let secs = format!("{}", 3000 + std::process::id() % 5000 + env.len() as u32);
    let ctx = context(&[(
        "Dockerfile",
        &format!("FROM busybox:1.35\nRUN sleep {secs} & sleep {secs}\n"),
    )]);
    let mut c = build_child_env(root, ctx.path(), &[], env);
    let pid = c.id();
    let deadline = Instant::now() + Duration::from_secs(30);
    let bundle = loop {
        if let Some(b) = bundle_owned_by(pid) {
            if pids_running(&["sleep", &secs]).len() == 2 {
                break b;
            }
        }
        assert!(Instant::now() < deadline, "the RUN never started");
        std::thread::sleep(Duration::from_millis(20));
    };
    c.kill().unwrap(); // SIGKILL
    c.wait().unwrap();
    // pasta dies with strata (PR_SET_PDEATHSIG).
    let deadline = Instant::now() + Duration::from_secs(5);
    while leftovers_of(pid).iter().any(|l| l.starts_with("pasta")) {
        assert!(Instant::now() < deadline, "pasta outlived strata");
        std::thread::sleep(Duration::from_millis(20));
    }
    (secs, pid, bundle)
}

/// Nothing of the killed build's container is left: no process, no runc
/// state, no bundle, no namespace file.
fn assert_container_gone(secs: &str, pid: u32, bundle: &Path, within: Duration) {
    let id = bundle.file_name().unwrap().to_string_lossy().into_owned();
    let deadline = Instant::now() + within;
    while !pids_running(&["sleep", secs]).is_empty()
        || Path::new("/run/strata/runc").join(&id).exists()
        || bundle.exists()
    {
        assert!(
            Instant::now() < deadline,
            "left after {within:?}: processes {:?}, runc state {}, bundle {}",
            pids_running(&["sleep", secs]),
            Path::new("/run/strata/runc").join(&id).exists(),
            bundle.exists()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_nothing_left_of(pid);
}

#[test]
fn a_build_killed_with_sigkill_has_its_run_killed_by_the_reaper() {
    let _host = host_state_lock();
    let Some((_t, root)) = setup_with_pasta() else {
        return;
    };
    let (secs, pid, bundle) = kill_a_build_mid_run(&root, &[]);
    // No strata command runs: the reaper alone cleans up.
    assert_container_gone(&secs, pid, &bundle, Duration::from_secs(10));
    // The killed build's rootfs mount in the store is the next strata's
    // to release (the reaper only kills); without it the temp dir could
    // not be removed and the mount would outlive the test.
    ok(&root, &["system", "check", "--repair"]);
    let root_str = path_str(&root);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&format!(" {root_str}/")),
        "a mount under the store is left after the repair"
    );
}

#[test]
fn repair_kills_the_run_of_a_build_killed_with_sigkill() {
    let _host = host_state_lock();
    let Some((_t, root)) = setup_with_pasta() else {
        return;
    };
    // Without the reaper, so that the repair is what cleans up.
    let (secs, pid, bundle) = kill_a_build_mid_run(&root, &[("STRATA_REAPER", "0")]);
    let id = bundle.file_name().unwrap().to_string_lossy().into_owned();
    std::thread::sleep(Duration::from_millis(300));
    // Another strata on this machine (tests run in parallel) may clean
    // the dead owner's container first, as `Runc::locate` does: then the
    // repair has nothing left to report, but must leave nothing either.
    let still_there = bundle.exists();
    if still_there {
        assert!(
            !pids_running(&["sleep", &secs]).is_empty(),
            "the RUN died without the reaper or a repair"
        );
    }
    let o = strata(&root, &["system", "check", "--repair"]);
    let out = stdout(&o);
    if still_there && !out.contains(&format!("killed and deleted container {id}")) {
        eprintln!("note: another strata cleaned {id} before the repair did: {out}");
    }
    // The repair waits for runc: everything is gone when it returns.
    assert_container_gone(&secs, pid, &bundle, Duration::from_millis(500));
    assert!(
        !root.join("containers").join(&id).exists(),
        "the store's container dir is left"
    );
}
