//! Containers run through runc with a busybox rootfs. Needs root; skipped
//! loudly otherwise.

use crate::common;

use std::path::PathBuf;

use common::{can_run, env};
use strata_runtime::*;

macro_rules! need_root {
    () => {
        if !can_run() {
            return;
        }
    };
}

#[test]
fn echo_output_is_captured() {
    need_root!();
    let e = env();
    let (st, out, err) = e.run(&e.spec(&["echo", "hello"]));
    assert_eq!((st.code, out.as_str(), err.as_str()), (0, "hello\n", ""));
    let (_, out, err) = e.sh("echo out; echo err >&2");
    assert_eq!((out.as_str(), err.as_str()), ("out\n", "err\n"));
}

#[test]
fn exit_code_is_returned() {
    need_root!();
    let e = env();
    let (st, _, _) = e.sh("exit 3");
    assert_eq!(
        st,
        ExitStatus {
            code: 3,
            signal: None
        }
    );
    let (st, _, _) = e.sh("sh -c 'kill -9 $$'; exit $?");
    assert_eq!(
        st,
        ExitStatus {
            code: 137,
            signal: Some(9)
        }
    );
}

#[test]
fn env_cwd_and_defaults() {
    need_root!();
    let e = env();
    let mut spec = e.spec(&[
        "sh",
        "-c",
        "echo $FOO; pwd; echo $PATH; echo $HOME; echo $HOSTNAME; hostname",
    ]);
    spec.process.env = vec!["FOO=bar baz".into()];
    spec.process.cwd = "/work/dir".into();
    spec.hostname = Some("builder".into());
    let (st, out, err) = e.run(&spec);
    assert_eq!(st.code, 0, "{err}");
    assert_eq!(
        out,
        format!("bar baz\n/work/dir\n{DEFAULT_PATH}\n/root\nbuilder\nbuilder\n")
    );
}

#[test]
fn stdin_is_closed_without_stdin_flag() {
    need_root!();
    let e = env();
    let (st, out, _) = e.run(&e.spec(&["cat"]));
    assert_eq!((st.code, out.as_str()), (0, ""));
}

fn ids(e: &common::Env, user: &str) -> String {
    let mut spec = e.spec(&["sh", "-c", "echo $(id -u) $(id -g) \"$(id -G)\" $HOME"]);
    spec.process.user = resolve_user(&e.rootfs(), user).unwrap();
    let (st, out, err) = e.run(&spec);
    assert_eq!(st.code, 0, "{err}");
    out.trim().to_string()
}

#[test]
fn users_and_groups() {
    need_root!();
    let e = env();
    assert_eq!(ids(&e, ""), "0 0 0 10 /root");
    assert_eq!(ids(&e, "app"), "1000 1000 1000 50 /home/app");
    assert_eq!(ids(&e, "1000:1000"), "1000 1000 1000 /home/app");
    assert_eq!(ids(&e, "nobody"), "65534 65534 65534 /home");
    assert_eq!(ids(&e, "4242"), "4242 0 0 /");
    // BuildKit's expectations for busybox (containerd 3eda46af); the kernel
    // sorts the supplementary groups.
    for (user, expect) in [
        ("", "uid=0(root) gid=0(root) groups=0(root),10(wheel)"),
        ("1234", "uid=1234 gid=0(root) groups=0(root)"),
        ("1234:1234", "uid=1234 gid=1234 groups=1234"),
        (
            "app",
            "uid=1000(app) gid=1000(app) groups=50(staff),1000(app)",
        ),
    ] {
        let mut spec = e.spec(&["id"]);
        spec.process.user = resolve_user(&e.rootfs(), user).unwrap();
        assert_eq!(e.run(&spec).1.trim(), expect, "user {user:?}");
    }
    let err = resolve_user(&e.rootfs(), "ghost").unwrap_err().to_string();
    assert!(
        err.contains("unable to find user ghost: no matching entries in passwd file"),
        "{err}"
    );
}

fn interfaces(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(|s| s.trim().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn network_none_has_only_lo_and_host_sees_host() {
    need_root!();
    let e = env();
    let (_, out, _) = e.sh("cat /proc/net/dev");
    assert_eq!(interfaces(&out), vec!["lo"]);
    let mut spec = e.spec(&["cat", "/proc/net/dev"]);
    spec.network = Network::Host;
    let (_, out, _) = e.run(&spec);
    let host = interfaces(&std::fs::read_to_string("/proc/net/dev").unwrap());
    assert_eq!(interfaces(&out), host);
}

#[test]
fn injected_files_are_read_only() {
    need_root!();
    let e = env();
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let mut spec = e.spec(&[
        "sh",
        "-c",
        "cat /etc/resolv.conf; echo ---; cat /etc/hostname; grep -c myhost /etc/hosts; \
         grep -q localhost /etc/hosts && echo lh; \
         for f in resolv.conf hosts hostname; do echo x >> /etc/$f && echo wrote $f; done; true",
    ]);
    spec.hostname = Some("myhost".into());
    let (_, out, err) = e.run(&spec);
    assert_eq!(out, format!("{host}---\nmyhost\n1\nlh\n"), "{err}");
    assert!(err.contains("Read-only file system"), "{err}");
    // Nothing of ours was written into the rootfs: runc created empty
    // placeholder files as mount points (see INJECTED_PATHS).
    for p in INJECTED_PATHS {
        let meta = std::fs::metadata(e.rootfs().join(&p[1..])).unwrap();
        assert_eq!(meta.len(), 0, "{p}");
    }
}

#[test]
fn capabilities_and_no_new_privs() {
    need_root!();
    let e = env();
    let (_, out, _) = e.sh("grep -E '^(CapEff|CapPrm|CapBnd|CapAmb|NoNewPrivs)' /proc/self/status");
    let expect = "CapPrm:\t00000000a80425fb\nCapEff:\t00000000a80425fb\n\
                  CapBnd:\t00000000a80425fb\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\n";
    assert_eq!(out, expect);
    let mut spec = e.spec(&["grep", "CapEff", "/proc/self/status"]);
    spec.process.user = resolve_user(&e.rootfs(), "app").unwrap();
    let (_, out, _) = e.run(&spec);
    assert_eq!(out, "CapEff:\t0000000000000000\n");
}

#[test]
fn privileged_operations_fail() {
    need_root!();
    let e = env();
    let (_, out, err) = e.sh("mkdir -p /mnt; mount -t tmpfs none /mnt && echo mounted; \
         echo evil > /proc/sys/kernel/hostname && echo wrote-proc; \
         echo 1 > /sys/kernel/profiling && echo wrote-sys; \
         cat /proc/kcore | head -c 1 | wc -c; echo done");
    assert_eq!(out, "0\ndone\n", "{err}");
}

#[test]
fn dev_has_docker_devices() {
    need_root!();
    let e = env();
    let (st, out, err) = e.sh(
        "for d in null zero full random urandom tty; do test -c /dev/$d || echo missing $d; done; \
         test -e /dev/ptmx || echo missing ptmx; \
         grep -E ' /dev/(shm|mqueue|pts) ' /proc/mounts | cut -d' ' -f2,3; \
         head -c 4 /dev/zero | wc -c; echo ok > /dev/null && echo null-ok",
    );
    assert_eq!(st.code, 0, "{err}");
    assert_eq!(
        out,
        "/dev/pts devpts\n/dev/mqueue mqueue\n/dev/shm tmpfs\n4\nnull-ok\n"
    );
}

#[test]
fn bind_and_tmpfs_mounts() {
    need_root!();
    let e = env();
    let ro = e.dir.path().join("ro");
    let rw = e.dir.path().join("rw");
    std::fs::create_dir_all(&ro).unwrap();
    std::fs::create_dir_all(&rw).unwrap();
    std::fs::write(ro.join("file"), "from host\n").unwrap();
    let mut spec = e.spec(&[
        "sh",
        "-c",
        "cat /data/file; echo x > /data/new && echo wrote-ro; echo y > /out/new; \
         echo z > /scratch/f && cat /scratch/f; grep ' /scratch ' /proc/mounts | cut -d' ' -f3; \
         stat -c %a /scratch",
    ]);
    spec.mounts = vec![
        MountSpec::Bind(BindMount {
            source: ro.clone(),
            destination: "/data".into(),
            readonly: true,
        }),
        MountSpec::Bind(BindMount {
            source: rw.clone(),
            destination: "/out".into(),
            readonly: false,
        }),
        MountSpec::Tmpfs {
            destination: "/scratch".into(),
            size: Some(1 << 20),
            mode: Some(0o1777),
        },
    ];
    let (_, out, err) = e.run(&spec);
    assert_eq!(out, "from host\nz\ntmpfs\n1777\n", "{err}");
    assert_eq!(std::fs::read_to_string(rw.join("new")).unwrap(), "y\n");
    assert!(!ro.join("new").exists());
}

#[test]
fn readonly_rootfs() {
    need_root!();
    let e = env();
    let mut spec = e.spec(&[
        "sh",
        "-c",
        "touch /x && echo wrote; echo y > /dev/shm/y && cat /dev/shm/y",
    ]);
    spec.readonly_rootfs = true;
    let (_, out, _) = e.run(&spec);
    assert_eq!(out, "y\n");
}

#[test]
fn start_failures_are_errors() {
    need_root!();
    let e = env();
    let spec = e.spec(&["no-such-command"]);
    let err = e.runc.run(&spec, StdioConfig::Null).unwrap_err();
    assert_eq!(err.docker_exit_code(), 127, "{err}");
    assert!(
        err.to_string().contains("executable file not found"),
        "{err}"
    );
    e.assert_clean(&spec.id);
    let mut spec = e.spec(&["true"]);
    spec.rootfs = PathBuf::from("/nonexistent/rootfs");
    assert!(matches!(
        e.runc.run(&spec, StdioConfig::Null),
        Err(Error::InvalidSpec(_))
    ));
}

#[test]
fn missing_runc_says_how_to_install() {
    let err = Runc::with_binary("/nonexistent/bin/runc")
        .unwrap_err()
        .to_string();
    assert!(err.contains("apt-get install runc"), "{err}");
    assert!(err.contains("/nonexistent/bin/runc"), "{err}");
}

#[test]
fn tty_without_terminal_is_an_error() {
    need_root!();
    if rustix::termios::isatty(std::io::stdin()) {
        eprintln!("stdin is a terminal; skipping");
        return;
    }
    let e = env();
    let mut spec = e.spec(&["true"]);
    spec.process.tty = true;
    let err = e.runc.run(&spec, StdioConfig::Null).unwrap_err();
    assert!(matches!(err, Error::NotATerminal), "{err}");
}

#[test]
fn parallel_containers() {
    need_root!();
    let e = env();
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|i| {
                let e = &e;
                s.spawn(move || e.sh(&format!("echo {i}")).1)
            })
            .collect();
        for (i, h) in hs.into_iter().enumerate() {
            assert_eq!(h.join().unwrap(), format!("{i}\n"));
        }
    });
}

#[test]
fn nofile_limit_is_dockers_or_the_hosts_ceiling() {
    need_root!();
    let e = env();
    let (_, out, _) = e.sh("ulimit -n; ulimit -Hn");
    let host_hard = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .maximum
        .unwrap_or(u64::MAX);
    let n: Vec<u64> = out.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(n[0], n[1]);
    assert!(
        n[0] == 1_048_576 || n[0] == host_hard,
        "{n:?} (host hard {host_hard})"
    );
}
