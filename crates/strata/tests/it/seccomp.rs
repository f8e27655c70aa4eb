//! The seccomp profile (crates/strata-runtime/src/seccomp.rs) is applied by
//! runc to RUN steps and `strata run` containers: a filter is installed,
//! the syscalls it blocks fail with EPERM (clone3 with ENOSYS) although the
//! kernel would allow them, and ordinary process creation still works.

use strata_test_support as support;

use std::path::Path;
use std::process::Command;

use support::*;

#[test]
fn busybox_unshare_is_refused_in_run_and_containers() {
    let Some((_t, root)) = setup_busybox() else {
        return;
    };
    // `unshare -r` creates a user namespace: no capability needed, so only
    // the filter refuses it.
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox:1.35\n\
         RUN grep Seccomp: /proc/self/status && \
         if unshare -r true; then echo UNSHARE-ALLOWED; else echo unshare-refused; fi\n",
    )]);
    let o = build_ok(&root, ctx.path(), "sc", &[]);
    let err = stderr(&o);
    assert!(err.contains("Seccomp:\t2"), "no filter in RUN:\n{err}");
    assert!(
        err.contains("unshare(0x10000000): Operation not permitted"),
        "{err}"
    );
    assert!(err.contains("unshare-refused"), "{err}");

    let o = strata(&root, &["run", "--rm", "sc", "unshare", "-r", "true"]);
    assert!(!o.status.success(), "unshare ran in a container");
    assert!(
        stderr(&o).contains("Operation not permitted"),
        "{}",
        stderr(&o)
    );
}

const PROBE: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void report(const char *what, long r) {
    printf("%s %s\n", what, r < 0 ? strerror(errno) : "ok");
}

int main(void) {
    report("keyctl", syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -3 /* session */, 0));
    report("add_key", syscall(SYS_add_key, "user", "strata", "x", 1, -3));
    report("userfaultfd", syscall(SYS_userfaultfd, 0));
    long r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
    if (r == 0) _exit(0);
    if (r > 0) waitpid(r, 0, 0);
    report("clone_newuser", r);
    report("clone3", syscall(SYS_clone3, 0, 0));
    pid_t p = fork();
    if (p == 0) _exit(0);
    if (p > 0) waitpid(p, 0, 0);
    report("fork", p);
    return 0;
}
"#;

/// A static probe program, when gcc and a static libc are installed.
fn compile_probe(dir: &Path) -> Option<std::path::PathBuf> {
    let src = dir.join("probe.c");
    std::fs::write(&src, PROBE).unwrap();
    let bin = dir.join("probe");
    let o = Command::new("gcc")
        .args(["-static", "-O", "-o"])
        .arg(&bin)
        .arg(&src)
        .output();
    match o {
        Ok(o) if o.status.success() => Some(bin),
        Ok(o) => {
            eprintln!("SKIPPED seccomp probe: gcc -static failed: {}", stderr(&o));
            None
        }
        Err(e) => {
            eprintln!("SKIPPED seccomp probe: no gcc ({e})");
            None
        }
    }
}

#[test]
fn blocked_syscalls_fail_with_eperm_but_the_host_allows_them() {
    if !can_run() {
        return;
    }
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox:1.35\nCOPY probe /probe\nRUN /probe\n",
    )]);
    let Some(probe) = compile_probe(ctx.path()) else {
        return;
    };
    // On the host the same calls succeed (clone3 with no arguments is
    // EINVAL there): what fails below is the filter, not the kernel.
    let host = Command::new(&probe).output().unwrap();
    let host = stdout(&host);
    for line in ["keyctl ok", "userfaultfd ok", "clone_newuser ok", "fork ok"] {
        assert!(host.lines().any(|l| l == line), "host: {line}?\n{host}");
    }

    let (_t, root) = root_dir();
    make_busybox(&root);
    let o = build_ok(&root, ctx.path(), "probe", &[]);
    let err = stderr(&o);
    let run = run_in(&root, "probe", &["/probe"]);
    for out in [&err, &run] {
        for line in [
            "keyctl Operation not permitted",
            "add_key Operation not permitted",
            "userfaultfd Operation not permitted",
            "clone_newuser Operation not permitted",
            "clone3 Function not implemented",
            "fork ok",
        ] {
            assert!(out.contains(line), "expected {line:?}:\n{out}");
        }
    }
}
