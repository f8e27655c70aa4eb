//! Containers as Docker users run them: argument pass-through, detached
//! and named containers, their life cycle, networks and limits. Real runc
//! (and pasta for the private network).

use strata_test_support as support;

use support::*;

#[test]
fn words_after_the_image_belong_to_the_container() {
    let Some((_t, root)) = setup_busybox() else {
        return;
    };
    // `--help` after the image reaches the container (busybox echo prints it).
    let o = strata(&root, &["run", "--rm", "busybox:1.35", "echo", "--help"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "--help\n");
    // A bare `--help` as the command: the container's, not strata's help.
    let o = strata(&root, &["run", "--rm", "busybox:1.35", "--help"]);
    assert!(
        !stdout(&o).contains("Run a command in a new container"),
        "{}",
        stdout(&o)
    );
    // `-e` after the image is the command's argument, not strata's flag.
    let o = strata(&root, &["run", "--rm", "busybox:1.35", "echo", "-e", "X=1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "X=1\n");
    let o = strata(
        &root,
        &[
            "run",
            "--rm",
            "-e",
            "Y=2",
            "busybox:1.35",
            "sh",
            "-c",
            "echo $Y",
            "-e",
        ],
    );
    assert_eq!(stdout(&o), "2\n", "{}", stderr(&o));
    // `--` after the image is the container's word too, as in Docker.
    let o = strata(&root, &["run", "--rm", "busybox:1.35", "echo", "--", "-v"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "-- -v\n");
    // strata's own help still works before the image.
    let o = strata(&root, &["run", "--help"]);
    assert!(stdout(&o).contains("Run a command in a new container"));
}

/// `strata run -d --name NAME --network none FLAGS busybox:1.35 CMD...`,
/// asserting success; returns its stdout (the container ID).
fn detach_offline(root: &std::path::Path, name: &str, flags: &[&str], cmd: &[&str]) -> String {
    let mut args = vec!["run", "-d", "--name", name, "--network", "none"];
    args.extend_from_slice(flags);
    args.push("busybox:1.35");
    args.extend_from_slice(cmd);
    ok(root, &args)
}

fn inspect(root: &std::path::Path, name: &str) -> serde_json::Value {
    let out = ok(root, &["inspect", name]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v[0].clone()
}

/// A free TCP port on 127.0.0.1 (bound and released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// Processes whose command line contains `needle`.
fn processes_with(needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if !e
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        if let Ok(c) = std::fs::read(e.path().join("cmdline")) {
            let c = String::from_utf8_lossy(&c).replace('\0', " ");
            if c.contains(needle) {
                out.push(format!("{}: {c}", e.file_name().to_string_lossy()));
            }
        }
    }
    out
}

fn ppid(pid: u64) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    rest.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_detached_web_server_serves_logs_execs_stops_and_goes() {
    if !can_run() || !have_pasta() {
        return;
    }
    let (t, root) = root_dir();
    make_busybox(&root);
    let www = t.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "hello from the host's file\n").unwrap();
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    let vol = format!("{}:/www:ro", www.display());
    let id = ok(
        &root,
        &[
            "run",
            "-d",
            "--name",
            "web",
            "-p",
            &publish,
            "-v",
            &vol,
            "busybox:1.35",
            "sh",
            "-c",
            "echo web-starting; exec httpd -f -v -p 80 -h /www",
        ],
    );
    let id = id.trim().to_string();
    assert_eq!(id.len(), 64, "{id}");
    // Served through pasta's port forward.
    let mut body = String::new();
    for _ in 0..100 {
        match http_get(port, "/index.html") {
            Ok(b) if b.contains("200") => {
                body = b;
                break;
            }
            _ => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    }
    assert!(body.contains("hello from the host's file"), "{body}");
    let ps = ok(&root, &["ps"]);
    assert!(
        ps.contains("web") && ps.contains(&format!("127.0.0.1:{port}->80/tcp")),
        "{ps}"
    );
    assert!(ps.contains(&id[..12]), "{ps}");
    assert_eq!(ok(&root, &["ps", "-q"]).trim(), &id[..12]);
    assert_eq!(
        ok(&root, &["ps", "--format", "{{.Names}} {{.State}}"]).trim(),
        "web running"
    );
    let logs = ok(&root, &["logs", "web"]);
    assert!(logs.contains("web-starting"), "{logs}");
    let logs = strata(&root, &["logs", "-t", "--tail", "1", "web"]);
    let all = format!("{}{}", stdout(&logs), stderr(&logs));
    assert!(all.starts_with("20"), "timestamps: {all}");
    assert_eq!(
        ok(&root, &["exec", "web", "cat", "/etc/hostname"]).trim(),
        &id[..12]
    );
    let o = strata(
        &root,
        &[
            "exec",
            "-e",
            "X=42",
            "-w",
            "/tmp",
            "-u",
            "nobody",
            "web",
            "sh",
            "-c",
            "echo $X $(pwd) $(id -u)",
        ],
    );
    assert_eq!(stdout(&o), "42 /tmp 65534\n", "{}", stderr(&o));
    let v = inspect(&root, "web");
    assert_eq!(v["Id"], id.as_str());
    assert_eq!(v["Name"], "/web");
    assert_eq!(v["State"]["Status"], "running");
    assert_eq!(v["State"]["Running"], true);
    assert_eq!(
        v["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"],
        port.to_string()
    );
    assert_eq!(v["Mounts"][0]["Destination"], "/www");
    // The monitor owns the container (subreaper) and its pasta.
    let pid = v["State"]["Pid"].as_u64().unwrap();
    let monitor = ppid(pid);
    let netns_needle = format!("/netns/{monitor}-");
    assert_eq!(
        processes_with(&netns_needle).len(),
        1,
        "one pasta for the container"
    );
    // A second container cannot take the name.
    let o = strata(&root, &["create", "--name", "web", "busybox:1.35", "true"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("is already in use"), "{}", stderr(&o));
    // The image is in use.
    let o = strata(&root, &["rmi", "busybox:1.35"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("conflict: unable to remove repository reference \"busybox:1.35\" (must force) - container"),
        "{}",
        stderr(&o)
    );
    // rm of a running container needs -f.
    assert!(!strata(&root, &["rm", "web"]).status.success());
    // httpd as PID 1 ignores SIGTERM: SIGKILL after the timeout.
    let t0 = std::time::Instant::now();
    ok(&root, &["stop", "-t", "1", "web"]);
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(8),
        "{:?}",
        t0.elapsed()
    );
    let v = inspect(&root, "web");
    assert_eq!(v["State"]["Status"], "exited");
    assert_eq!(v["State"]["ExitCode"], 137);
    assert!(ok(&root, &["ps"]).lines().count() == 1);
    assert!(ok(&root, &["ps", "-a"]).contains("Exited (137)"));
    assert!(
        processes_with(&netns_needle).is_empty(),
        "pasta left running"
    );
    assert!(processes_with(&id).is_empty(), "runc left running");
    // A stopped container keeps its writable layer; start brings it back.
    ok(&root, &["start", "web"]);
    ok(&root, &["exec", "web", "sh", "-c", "echo kept > /kept"]);
    ok(&root, &["restart", "-t", "1", "web"]);
    assert_eq!(ok(&root, &["exec", "web", "cat", "/kept"]), "kept\n");
    ok(&root, &["rm", "-f", "web"]);
    assert!(ok(&root, &["ps", "-a"]).lines().count() == 1);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&path_str(&root)),
        "a mount is left:\n{mounts}"
    );
    assert!(processes_with(&id).is_empty(), "runc left running");
    assert!(http_get(port, "/").is_err(), "the port is still published");
    // Now the image can go.
    ok(&root, &["rmi", "busybox:1.35"]);
}

#[test]
#[allow(unsafe_code)] // libc calls, each with its SAFETY comment
fn a_detached_container_outlives_a_strata_killed_with_sigkill() {
    let Some((_t, root)) = setup_busybox() else {
        return;
    };
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("--root")
        .arg(&root)
        .args([
            "run",
            "-d",
            "--name",
            "survivor",
            "--network",
            "none",
            "busybox:1.35",
            "sleep",
            "300",
        ])
        .process_group(0)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // strata and its whole process group, as a closed terminal would.
    // SAFETY: kill on our own child's process group.
    unsafe {
        kill(-(child.id() as i32), 9);
    }
    let _ = child.wait();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let v = inspect(&root, "survivor");
    assert_eq!(v["State"]["Running"], true, "{v}");
    assert_eq!(ok(&root, &["exec", "survivor", "echo", "alive"]), "alive\n");
    ok(&root, &["kill", "survivor"]);
    assert_eq!(ok(&root, &["wait", "survivor"]).trim(), "137");
    ok(&root, &["rm", "survivor"]);
}

extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

#[test]
fn memory_limit_kills_with_137_and_oomkilled() {
    let Some((_t, root)) = setup_busybox() else {
        return;
    };
    detach_offline(
        &root,
        "hog",
        &["--memory", "32m"],
        &[
            "sh",
            "-c",
            "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived",
        ],
    );
    assert_eq!(ok(&root, &["wait", "hog"]).trim(), "137");
    let v = inspect(&root, "hog");
    assert_eq!(v["State"]["OOMKilled"], true, "{v}");
    assert_eq!(v["State"]["ExitCode"], 137);
    assert_eq!(v["HostConfig"]["Memory"], 32 << 20);
    // The foreground run reports 137 too.
    let o = run_offline(
        &root,
        &["-m", "32m"],
        &[
            "sh",
            "-c",
            "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived",
        ],
    );
    assert_eq!(o.status.code(), Some(137), "{}", stderr(&o));
    ok(&root, &["container", "prune", "-f"]);
    assert_eq!(ok(&root, &["ps", "-aq"]), "");
}

#[test]
fn pids_limit_read_only_tmpfs_caps_and_init() {
    let Some((_t, root)) = setup_busybox() else {
        return;
    };
    let forks = "for i in $(seq 1 40); do sleep 5 & done; echo all-forked";
    let o = run_offline(&root, &["--pids-limit", "20"], &["sh", "-c", forks]);
    assert!(!stdout(&o).contains("all-forked"), "{}", stdout(&o));
    assert!(stderr(&o).contains("can't fork"), "{}", stderr(&o));
    let o = run_offline(&root, &["--read-only"], &["touch", "/x"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("Read-only file system"),
        "{}",
        stderr(&o)
    );
    // Capabilities: chown needs CAP_CHOWN.
    let chown = ["chown", "nobody", "/tmp"];
    let o = run_offline(&root, &["--cap-drop", "chown"], &chown);
    assert_ne!(o.status.code(), Some(0), "chown without CAP_CHOWN worked");
    let o = run_offline(&root, &["--cap-drop", "ALL", "--cap-add", "CHOWN"], &chown);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Flags whose effect a shell line prints: (flags, script, its stdout).
    let t = tempfile::tempdir().unwrap();
    let envf = t.path().join("env");
    std::fs::write(&envf, "# comment\nFROM_FILE=yes\n").unwrap();
    let envf = path_str(&envf);
    // Masked and read-only /proc paths show as mounts of their own.
    let masked = "cut -d' ' -f5 /proc/self/mountinfo | grep -cE '^/proc/(keys|sys)$'";
    let cases: [(&[&str], &str, &str); 6] = [
        // /proc/keys is masked and /proc/sys read-only unless system
        // paths are unconfined (Docker's flag, for a nested runtime).
        (&[], masked, "2\n"),
        (&["--security-opt", "systempaths=unconfined"], masked, "0\n"),
        (
            &["--read-only", "--tmpfs", "/scratch"],
            "touch /scratch/x && echo tmpfs-ok",
            "tmpfs-ok\n",
        ),
        (&["--ulimit", "nofile=123:456"], "ulimit -n", "123\n"),
        (&["--env-file", &envf], "echo $FROM_FILE", "yes\n"),
        (
            &["--shm-size", "16m"],
            "df -k /dev/shm | tail -1 | grep -c 16384",
            "1\n",
        ),
    ];
    for (flags, script, want) in cases {
        let o = run_offline(&root, flags, &["sh", "-c", script]);
        assert_eq!(stdout(&o), want, "{flags:?}: {}", stderr(&o));
    }
    // --init: the command is not PID 1, its exit code comes through, and
    // a forwarded SIGTERM stops `sleep` at once.
    let o = run_offline(&root, &["--init"], &["sh", "-c", "echo $$; exit 3"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_ne!(stdout(&o).trim(), "1");
    detach_offline(&root, "i", &["--init"], &["sleep", "300"]);
    let t0 = std::time::Instant::now();
    ok(&root, &["stop", "i"]);
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(inspect(&root, "i")["State"]["ExitCode"], 143);
    ok(&root, &["rm", "i"]);
    // --rm of a detached container.
    detach_offline(&root, "gone", &["--rm"], &["true"]);
    for _ in 0..100 {
        if ok(&root, &["ps", "-aq"]).is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(ok(&root, &["ps", "-aq"]), "", "--rm left the container");
    // --pull never on a missing image.
    let o = strata(
        &root,
        &["run", "--rm", "--pull", "never", "nosuch:1", "true"],
    );
    assert!(stderr(&o).contains("--pull never"), "{}", stderr(&o));
}

#[test]
fn private_network_reaches_the_host_loopback_and_hides_host_interfaces() {
    let Some((_t, root)) = setup_with_pasta() else {
        return;
    };
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut c in l.incoming().flatten() {
            let mut buf = [0u8; 1024];
            let _ = c.read(&mut buf);
            let _ = write!(
                c,
                "HTTP/1.0 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\nhost-says"
            );
        }
    });
    let script = format!(
        "gw=$(ip route | awk '/^default/ {{print $3}}'); timeout 20 wget -q -O - http://$gw:{port}/; echo; ip -o link | wc -l"
    );
    // The default network is private; bridge is its alias.
    for net in [None, Some("bridge"), Some("private")] {
        let mut args = vec![
            "run",
            "--rm",
            "--add-host",
            "extra.example:10.1.2.3",
            "--hostname",
            "box",
        ];
        if let Some(n) = net {
            args.extend(["--network", n]);
        }
        args.extend(["busybox:1.35", "sh", "-c", &script]);
        let o = strata(&root, &args);
        assert_eq!(stdout(&o), "host-says\n2\n", "{net:?}: {}", stderr(&o));
    }
    let o = strata(
        &root,
        &[
            "run",
            "--rm",
            "--add-host",
            "extra.example:10.1.2.3",
            "--hostname",
            "box",
            "--dns",
            "10.9.9.9",
            "busybox:1.35",
            "sh",
            "-c",
            "hostname; grep extra /etc/hosts; cat /etc/resolv.conf",
        ],
    );
    assert_eq!(
        stdout(&o),
        "box\n10.1.2.3\textra.example\nnameserver 10.9.9.9\n",
        "{}",
        stderr(&o)
    );
    let o = run_offline(&root, &[], &["sh", "-c", "ip -o link | awk '{print $2}'"]);
    assert_eq!(stdout(&o), "lo:\n", "{}", stderr(&o));
    let o = strata(
        &root,
        &["run", "--rm", "--network", "nosuch", "busybox:1.35", "true"],
    );
    assert!(stderr(&o).contains("invalid --network"), "{}", stderr(&o));
    let o = strata(
        &root,
        &[
            "run",
            "--rm",
            "--network",
            "host",
            "-p",
            "8080:80",
            "busybox:1.35",
            "true",
        ],
    );
    assert!(stderr(&o).contains("--network private"), "{}", stderr(&o));
}

#[test]
fn create_start_attach_follow_and_failed_starts() {
    let Some((_t, root)) = setup_with_pasta() else {
        return;
    };
    let id = ok(
        &root,
        &[
            "create",
            "--name",
            "c1",
            "busybox:1.35",
            "sh",
            "-c",
            "echo one; sleep 0.5; echo two >&2; exit 7",
        ],
    );
    let id = id.trim();
    assert!(ok(&root, &["ps"]).lines().count() == 1);
    assert!(ok(&root, &["ps", "-a"]).contains("Created"));
    assert_eq!(inspect(&root, id)["State"]["Status"], "created");
    // start -a: the output, then the exit code.
    let o = strata(&root, &["start", "-a", "c1"]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert_eq!(stdout(&o), "one\n");
    assert_eq!(stderr(&o), "two\n");
    // logs -f of a running container ends when it exits.
    ok(&root, &["start", "c1"]);
    let o = strata(&root, &["logs", "-f", "c1"]);
    assert_eq!(stdout(&o), "one\none\n", "{}", stderr(&o));
    assert_eq!(stderr(&o), "two\ntwo\n");
    assert_eq!(ok(&root, &["logs", "--tail", "1", &id[..8]]), "");
    // A command that does not exist: 127, the error, no pasta left, and
    // the container stays (exited) as in Docker.
    let o = strata(
        &root,
        &["run", "-d", "--name", "bad", "busybox:1.35", "/no/such/cmd"],
    );
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    assert!(stderr(&o).contains("/no/such/cmd"), "{}", stderr(&o));
    let v = inspect(&root, "bad");
    assert_eq!(v["State"]["Status"], "exited");
    assert_eq!(v["State"]["ExitCode"], 127);
    assert!(processes_with(v["Id"].as_str().unwrap()).is_empty());
    ok(&root, &["rm", "bad", "c1"]);
    let o = strata(&root, &["rm", "c1"]);
    assert!(
        stderr(&o).contains("No such container: c1"),
        "{}",
        stderr(&o)
    );
}

#[test]
#[allow(unsafe_code)] // libc calls, each with its SAFETY comment
fn a_container_whose_monitor_was_killed_is_exited_and_cleaned() {
    let Some((_t, root)) = setup_with_pasta() else {
        return;
    };
    let id = ok(
        &root,
        &[
            "run",
            "-d",
            "--name",
            "orphan",
            "busybox:1.35",
            "sleep",
            "300",
        ],
    );
    let id = id.trim().to_string();
    let pid = inspect(&root, "orphan")["State"]["Pid"].as_u64().unwrap();
    let monitor = ppid(pid);
    let pasta = format!("/netns/{monitor}-");
    assert_eq!(processes_with(&pasta).len(), 1);
    // SAFETY: kill on the monitor's pid, found above.
    unsafe {
        kill(monitor as i32, 9);
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    // pasta died with its monitor (death signal).
    assert!(
        processes_with(&pasta).is_empty(),
        "pasta outlived its monitor"
    );
    let v = inspect(&root, "orphan");
    assert_eq!(v["State"]["Status"], "exited");
    assert_eq!(v["State"]["ExitCode"], 137);
    assert!(
        v["State"]["Error"].as_str().unwrap().contains("monitor"),
        "{v}"
    );
    // Looking at it killed what was left of the container.
    let gone = || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        stat.is_empty() || stat[stat.rfind(')').unwrap() + 2..].starts_with('Z')
    };
    for _ in 0..50 {
        if gone() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(gone(), "the container still runs");
    assert!(processes_with(&id).is_empty());
    ok(&root, &["rm", "orphan"]);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&path_str(&root)),
        "a mount is left:\n{mounts}"
    );
}

#[test]
fn cp_both_ways_on_stopped_and_running_containers_stays_inside() {
    if !can_run() {
        return;
    }
    let (t, root) = root_dir();
    make_busybox(&root);
    let host = t.path().join("host");
    std::fs::create_dir_all(host.join("tree/sub")).unwrap();
    std::fs::write(host.join("in.txt"), "hello in\n").unwrap();
    std::fs::write(host.join("tree/sub/deep"), "deep\n").unwrap();
    std::os::unix::fs::symlink("/", host.join("esc")).unwrap();
    let h = |p: &str| path_str(&host.join(p));
    // Into a created (never started) container, then read by its command.
    ok(
        &root,
        &[
            "create",
            "--name",
            "c",
            "--network",
            "none",
            "busybox:1.35",
            "sh",
            "-c",
            "cat /tmp/in.txt /tmp/tree/sub/deep /etc/planted-by-cp; readlink /tmp/esc",
        ],
    );
    ok(&root, &["cp", &h("in.txt"), "c:/tmp/in.txt"]);
    ok(&root, &["cp", &h("tree"), "c:/tmp/"]);
    // A host symlink is copied as a link; writing through it stays in the
    // container's root.
    ok(&root, &["cp", &h("esc"), "c:/tmp/esc"]);
    ok(&root, &["cp", &h("in.txt"), "c:/tmp/esc/etc/planted-by-cp"]);
    assert!(!std::path::Path::new("/etc/planted-by-cp").exists());
    let o = strata(&root, &["start", "-a", "c"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "hello in\ndeep\nhello in\n/\n");
    // Out of the stopped container: a file, a directory, a link as a link,
    // and reading through the link stays in the container's root.
    let out = t.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let o_ = |p: &str| path_str(&out.join(p));
    ok(&root, &["cp", "c:/tmp/in.txt", &o_("a.txt")]);
    assert_eq!(
        std::fs::read_to_string(out.join("a.txt")).unwrap(),
        "hello in\n"
    );
    ok(&root, &["cp", "c:/tmp/tree", &o_("")]);
    assert_eq!(
        std::fs::read_to_string(out.join("tree/sub/deep")).unwrap(),
        "deep\n"
    );
    ok(&root, &["cp", "c:/tmp/esc", &o_("esc")]);
    assert_eq!(
        std::fs::read_link(out.join("esc")).unwrap(),
        std::path::Path::new("/")
    );
    ok(&root, &["cp", "c:/tmp/esc/etc/planted-by-cp", &o_("p")]);
    assert_eq!(
        std::fs::read_to_string(out.join("p")).unwrap(),
        "hello in\n"
    );
    let o = strata(&root, &["cp", "c:/no/such", &o_("x")]);
    assert!(!o.status.success());
    // A running container: both ways, seen by exec.
    detach_offline(
        &root,
        "r",
        &[],
        &["sh", "-c", "echo made > /made; sleep 300"],
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    ok(&root, &["cp", &h("in.txt"), "r:/"]);
    assert_eq!(ok(&root, &["exec", "r", "cat", "/in.txt"]), "hello in\n");
    ok(&root, &["cp", "r:/made", &o_("made")]);
    assert_eq!(std::fs::read_to_string(out.join("made")).unwrap(), "made\n");
    ok(&root, &["rm", "-f", "r", "c"]);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&path_str(&root)),
        "a mount is left:\n{mounts}"
    );
}

#[test]
fn top_lists_the_container_processes_in_ps_ef_columns() {
    let Some((_t, root)) = setup_busybox() else {
        return;
    };
    detach_offline(&root, "t", &[], &["sh", "-c", "sleep 301 & sleep 302"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let pid = inspect(&root, "t")["State"]["Pid"].as_u64().unwrap();
    let out = ok(&root, &["top", "t"]);
    // `container top` is the same command.
    let again = ok(&root, &["container", "top", "t"]);
    assert_eq!(again.lines().count(), out.lines().count(), "{again}");
    let lines: Vec<&str> = out.lines().collect();
    let head: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        head,
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    );
    assert!(lines.iter().any(|l| l.ends_with("sleep 301")), "{out}");
    assert!(lines.iter().any(|l| l.ends_with("sleep 302")), "{out}");
    assert!(
        lines[1..]
            .iter()
            .any(|l| l.split_whitespace().nth(1) == Some(&pid.to_string())),
        "{out}"
    );
    // Only the container's: no host process (this test's own pid).
    let me = std::process::id().to_string();
    assert!(
        !lines
            .iter()
            .any(|l| l.split_whitespace().nth(1) == Some(&me)),
        "{out}"
    );
    ok(&root, &["stop", "-t", "0", "t"]);
    let o = strata(&root, &["top", "t"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("is not running"), "{}", stderr(&o));
    ok(&root, &["rm", "t"]);
}

#[test]
fn commit_adds_the_writable_layer_and_export_flattens() {
    if !can_run() {
        return;
    }
    let (t, root) = root_dir();
    make_busybox(&root);
    ok(
        &root,
        &[
            "run",
            "--name",
            "c",
            "--network",
            "none",
            "-e",
            "MARK=1",
            "busybox:1.35",
            "sh",
            "-c",
            "echo hi > /committed; ln /committed /hard; rm /etc/group",
        ],
    );
    let id = ok(&root, &["commit", "-m", "my change", "c", "mine:v1"]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    let o = strata(
        &root,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "mine:v1",
            "sh",
            "-c",
            "cat /committed; test -e /etc/group || echo gone; echo $MARK",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "hi\ngone\n1\n");
    let h = ok(&root, &["history", "--no-trunc", "mine:v1"]);
    assert!(h.contains("my change"), "{h}");
    // The image's command is the container's (its `rm` now fails).
    let o = strata(&root, &["run", "--rm", "--network", "none", "mine:v1"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("/etc/group"), "{}", stderr(&o));
    // export: the flattened filesystem.
    let file = t.path().join("c.tar");
    ok(&root, &["export", "c", "-o", &path_str(&file)]);
    let mut ar = tar::Archive::new(std::fs::File::open(&file).unwrap());
    let mut hard = None;
    let names: Vec<String> = ar
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let p = e.path().unwrap().to_string_lossy().to_string();
            if e.header().entry_type() == tar::EntryType::Link {
                hard = Some((p.clone(), e.link_name().unwrap().unwrap().into_owned()));
            }
            p
        })
        .collect();
    // A hard link is stored once, then as a link (as Docker does).
    assert_eq!(
        hard,
        Some(("hard".to_string(), std::path::PathBuf::from("committed"))),
        "{names:?}"
    );
    assert!(names.iter().any(|n| n == "committed"), "{names:?}");
    assert!(names.iter().any(|n| n == "bin/busybox"), "{names:?}");
    assert!(names.iter().any(|n| n == "etc/passwd"), "{names:?}");
    assert!(!names.iter().any(|n| n == "etc/group"), "{names:?}");
    ok(&root, &["rm", "c"]);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&path_str(&root)),
        "a mount is left:\n{mounts}"
    );
}

/// What a container sees, normalised where Docker and strata may only
/// agree on the shape: the hostname (12 hex digits), `HOSTNAME` in env.
fn container_view(out: &str, what: &str) -> String {
    match what {
        "hostname" => {
            let h = out.trim();
            format!(
                "len {} hex {}",
                h.len(),
                h.chars().all(|c| c.is_ascii_hexdigit())
            )
        }
        "env" => {
            let mut v: Vec<String> = out
                .lines()
                .map(|l| {
                    if let Some(h) = l.strip_prefix("HOSTNAME=") {
                        format!("HOSTNAME={}", container_view(h, "hostname"))
                    } else {
                        l.to_string()
                    }
                })
                .collect();
            v.sort();
            v.join("\n")
        }
        "mounts" => {
            let mut v: Vec<String> = out
                .lines()
                .filter_map(|l| {
                    let f: Vec<&str> = l.split(' ').collect();
                    let (path, fstype) = (f.get(1)?, f.get(2)?);
                    [
                        "/proc",
                        "/dev",
                        "/sys",
                        "/dev/pts",
                        "/dev/shm",
                        "/dev/mqueue",
                    ]
                    .contains(path)
                    .then(|| format!("{path} {fstype}"))
                })
                .collect();
            v.sort();
            v.join("\n")
        }
        _ => out.to_string(),
    }
}

/// The container's view (`id`, `env`, `pwd`, capabilities, hostname
/// shape, the /proc, /dev, /sys mounts) is Docker's for the same image.
/// Skipped loudly without dockerd unless CI or STRATA_REQUIRE_DOCKER is
/// set (as in compat.rs).
#[test]
fn the_container_view_matches_docker_run() {
    if !can_run() {
        return;
    }
    let docker_ok = std::process::Command::new("docker")
        .arg("info")
        .output()
        .is_ok_and(|o| o.status.success());
    if !docker_ok {
        let required = ["CI", "STRATA_REQUIRE_DOCKER"]
            .iter()
            .any(|v| std::env::var(v).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false"));
        assert!(
            !required,
            "dockerd is not reachable (CI or STRATA_REQUIRE_DOCKER is set)"
        );
        eprintln!("\n!!! SKIPPED: the docker run comparison: dockerd is not reachable\n");
        return;
    }
    let (t, root) = root_dir();
    make_busybox(&root);
    // A tag of its own: dockerd is shared (compat.rs loads busybox:1.35).
    let tag = format!("strata-ctr-view-{}:1", std::process::id());
    ok(&root, &["tag", "busybox:1.35", &tag]);
    let archive = t.path().join("base.tar");
    ok(&root, &["save", "-o", &path_str(&archive), &tag]);
    let load = std::process::Command::new("docker")
        .args(["load", "-q", "-i"])
        .arg(&archive)
        .output()
        .unwrap();
    assert!(load.status.success(), "{}", stderr(&load));
    struct Rmi(String);
    impl Drop for Rmi {
        fn drop(&mut self) {
            let _ = std::process::Command::new("docker")
                .args(["rmi", "-f", &self.0])
                .output();
        }
    }
    let _rmi = Rmi(tag.clone());
    let cases: &[(&[&str], &str, &str)] = &[
        (&[], "id", "id"),
        (&["-u", "1000:1000"], "id", "id"),
        (&["-e", "FOO=bar"], "env", "env"),
        (&[], "pwd", "pwd"),
        (&["-w", "/tmp"], "pwd", "pwd"),
        (&[], "grep ^Cap /proc/self/status", "caps"),
        (&["-u", "1000"], "grep ^Cap /proc/self/status", "caps"),
        (&[], "hostname", "hostname"),
        (&[], "cat /proc/mounts", "mounts"),
    ];
    let mut diffs = Vec::new();
    for (flags, cmd, what) in cases {
        let mut d = vec!["run", "--rm", "--network", "none"];
        d.extend_from_slice(flags);
        d.extend([tag.as_str(), "sh", "-c", cmd]);
        let docker = std::process::Command::new("docker")
            .args(&d)
            .output()
            .unwrap();
        assert!(docker.status.success(), "docker {d:?}: {}", stderr(&docker));
        let s = strata(&root, &d);
        assert!(s.status.success(), "strata {d:?}: {}", stderr(&s));
        let (dv, sv) = (
            container_view(&stdout(&docker), what),
            container_view(&stdout(&s), what),
        );
        // Nothing vacuous: each view has its substance.
        let expect = match *what {
            "mounts" => "/proc proc",
            "caps" => "CapEff:",
            "id" => "uid=",
            "env" => "PATH=",
            "hostname" => "len 12 hex true",
            _ => "/",
        };
        assert!(dv.contains(expect), "docker {d:?}: {dv}");
        if dv != sv {
            diffs.push(format!(
                "{flags:?} {cmd}:\n docker: {dv:?}\n strata: {sv:?}"
            ));
        }
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}

/// `strata ARGS` in a mount namespace of its own where `/dev/net` is
/// `prepare` (a shell command run first, as root).
fn strata_without_tun(
    root: &std::path::Path,
    prepare: &str,
    args: &[&str],
) -> std::process::Output {
    std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-euc"])
        .arg(format!("{prepare}\nexec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_strata"))
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .expect("run unshare")
}

/// When `/dev/net/tun` cannot be opened, `--network private` fails before
/// anything starts, saying what failed and the commands that fix it for
/// that cause; no pasta is left behind.
#[test]
fn private_network_without_a_usable_tun_device_says_how_to_fix_it() {
    if !can_run() || !have_pasta() {
        return;
    }
    let (_t, root) = root_dir();
    make_busybox(&root);
    let run = [
        "run",
        "--rm",
        "--network",
        "private",
        "busybox:1.35",
        "true",
    ];
    // No device at all (a minimal host without the tun module's node).
    let o = strata_without_tun(&root, "mount -t tmpfs none /dev/net", &run);
    let e = stderr(&o);
    assert!(!o.status.success(), "{e}");
    assert!(
        e.contains("--network private cannot be set up: /dev/net/tun cannot be opened")
            && e.contains("No such file or directory")
            && e.contains("modprobe tun; mkdir -p /dev/net && mknod -m 0666 /dev/net/tun c 10 200")
            && e.contains("--network host or --network none"),
        "{e}"
    );
    // Something else at its place (here a directory).
    let prepare = "mount -t tmpfs none /dev/net && mkdir /dev/net/tun";
    let o = strata_without_tun(&root, prepare, &run);
    let e = stderr(&o);
    assert!(!o.status.success(), "{e}");
    assert!(
        e.contains("/dev/net/tun cannot be opened")
            && e.contains("must be the tun character device (10, 200)")
            && e.contains("mknod -m 0666 /dev/net/tun c 10 200"),
        "{e}"
    );
    // A detached container says the same through its monitor.
    let detached = [
        "run",
        "-d",
        "--name",
        "notun",
        "--network",
        "private",
        "busybox:1.35",
        "sleep",
        "100",
    ];
    let o = strata_without_tun(&root, "mount -t tmpfs none /dev/net", &detached);
    let e = stderr(&o);
    assert!(!o.status.success(), "{e}");
    assert!(e.contains("modprobe tun"), "{e}");
    ok(&root, &["rm", "-f", "notun"]);
    assert!(
        processes_with(&root.display().to_string()).is_empty(),
        "left running: {:?}",
        processes_with(&root.display().to_string())
    );
}
