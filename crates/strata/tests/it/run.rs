//! `strata run`: Docker's ENTRYPOINT/CMD rules, env, workdir, user, exit codes.

use strata_test_support as support;

use support::*;

fn build(root: &std::path::Path, tag: &str, dockerfile: &str) {
    let ctx = context(&[("Dockerfile", dockerfile)]);
    let o = strata(root, &["build", "-q", "-t", tag, &path_str(ctx.path())]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("sha256:"), "{}", stdout(&o));
}

#[test]
fn entrypoint_and_cmd_rules() {
    let Some((_t, root)) = setup_busybox() else {
        return;
    };
    build(
        &root,
        "ep",
        "FROM busybox:1.35\nENTRYPOINT [\"echo\", \"ep\"]\nCMD [\"default\"]\n",
    );
    let run = |args: &[&str]| {
        let mut a = vec!["run"];
        a.extend_from_slice(args);
        let o = strata(&root, &a);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    assert_eq!(run(&["ep"]), "ep default\n");
    assert_eq!(run(&["ep", "x", "y"]), "ep x y\n");
    assert_eq!(run(&["--entrypoint", "echo", "ep", "hi"]), "hi\n");
    // An ENTRYPOINT clears the CMD inherited from the base (busybox: sh).
    build(&root, "ep2", "FROM busybox:1.35\nENTRYPOINT [\"echo\"]\n");
    assert_eq!(run(&["ep2"]), "\n");
    // A CMD set before ENTRYPOINT in the same stage stays.
    build(
        &root,
        "ep3",
        "FROM busybox:1.35\nCMD [\"kept\"]\nENTRYPOINT [\"echo\"]\n",
    );
    assert_eq!(run(&["ep3"]), "kept\n");
    // Shell form goes through /bin/sh -c; env, workdir and user apply.
    build(
        &root,
        "sh",
        "FROM busybox:1.35\nENV GREETING=hello\nWORKDIR /work\nUSER app\nCMD echo $GREETING $(pwd) $(id -u)\n",
    );
    assert_eq!(run(&["sh"]), "hello /work 1000\n");
    assert_eq!(
        run(&[
            "-e",
            "GREETING=hi",
            "-u",
            "0",
            "-w",
            "/tmp",
            "sh",
            "sh",
            "-c",
            "echo $GREETING $(pwd) $(id -u)"
        ]),
        "hi /tmp 0\n"
    );
}

#[test]
fn exit_codes_are_propagated() {
    let Some((_t, root)) = setup_busybox() else {
        return;
    };
    let o = strata(&root, &["run", "busybox:1.35", "sh", "-c", "exit 3"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let o = strata(&root, &["run", "--rm", "busybox:1.35", "true"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = strata(&root, &["run", "busybox:1.35", "no-such-command"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    let containers = std::fs::read_dir(root.join("containers")).unwrap().count();
    assert_eq!(containers, 0, "container dirs are removed after run");
}

/// `run --rm` answers before the container's files are deleted (a
/// remover process deletes them afterwards), yet nothing stays: no mount,
/// no container dir, the remover's dir is locked (never reported as
/// debris) while it works, and `ROOT/tmp` empties without another strata
/// command.
#[test]
fn run_rm_returns_first_and_leaves_nothing_behind() {
    let Some((_t, root)) = setup_busybox() else {
        return;
    };
    // 10,000 files: long enough to delete that `system check` below
    // usually runs while the remover still works.
    let write = "i=0; while [ $i -lt 100 ]; do mkdir -p /w/$i; j=0; \
                 while [ $j -lt 100 ]; do echo $j > /w/$i/$j; j=$((j+1)); done; \
                 i=$((i+1)); done; exit 7";
    let o = strata(
        &root,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox:1.35",
            "sh",
            "-c",
            write,
        ],
    );
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&format!(" {}/", path_str(&root))),
        "a mount under the store is left"
    );
    let containers = std::fs::read_dir(root.join("containers")).unwrap().count();
    assert_eq!(containers, 0, "the container dir is left");
    // strata has exited: an unlocked dir in tmp would be debris here.
    let check = ok(&root, &["system", "check"]);
    assert!(check.contains("no problems"), "system check: {check}");
    let tmp_entries = || {
        std::fs::read_dir(root.join("tmp"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect::<Vec<_>>()
    };
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !tmp_entries().is_empty() && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        tmp_entries(),
        Vec::<std::ffi::OsString>::new(),
        "left in ROOT/tmp"
    );
}

#[test]
fn own_network_gets_the_short_container_id_as_hostname() {
    let Some((_t, root)) = setup_busybox() else {
        return;
    };
    // Docker: a container with its own UTS and network namespaces is named
    // after the first 12 hex digits of its id; no "run-"/"build-" prefix.
    let o = run_offline(&root, &[], &["hostname"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let name = stdout(&o);
    let name = name.trim_end();
    assert_eq!(name.len(), 12, "hostname {name:?}");
    assert!(
        name.chars().all(|c| c.is_ascii_hexdigit()),
        "hostname {name:?}"
    );
}

/// BuildKit's testOnBuildHeredoc: the trigger keeps its heredoc body.
#[test]
fn onbuild_heredoc_trigger_runs_its_body_in_the_child() {
    let Some((_t, root)) = setup_busybox() else {
        return;
    };
    build(
        &root,
        "obheredoc",
        "FROM busybox:1.35\nONBUILD RUN <<EOF\necho \"hello world\" >> /dest\nEOF\n",
    );
    let o = strata(&root, &["inspect", "obheredoc"]);
    assert!(
        stdout(&o).contains("RUN <<EOF\\necho \\\"hello world\\\" >> /dest\\nEOF"),
        "{}",
        stdout(&o)
    );
    let ctx = context(&[("Dockerfile", "FROM obheredoc\nCMD cat /dest\n")]);
    let o = strata(
        &root,
        &["build", "-q", "-t", "obheredocchild", &path_str(ctx.path())],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = strata(&root, &["run", "obheredocchild"]);
    assert_eq!(stdout(&o), "hello world\n", "{}", stderr(&o));
}

#[test]
fn onbuild_triggers_run_in_the_child_and_dockerignore_applies() {
    let Some((_t, root)) = setup_busybox() else {
        return;
    };
    build(
        &root,
        "obbase",
        "FROM busybox:1.35\nONBUILD RUN echo triggered > /trig\n",
    );
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM obbase\nCOPY . /ctx/\nCMD cat /trig && ls /ctx\n",
        ),
        (".dockerignore", "*.log\n!keep.log\n"),
        ("a.txt", "a"),
        ("drop.log", "x"),
        ("keep.log", "k"),
    ]);
    let o = strata(
        &root,
        &["build", "-q", "-t", "obchild", &path_str(ctx.path())],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = strata(&root, &["run", "obchild"]);
    assert_eq!(
        stdout(&o),
        "triggered\nDockerfile\na.txt\nkeep.log\n",
        "{}",
        stderr(&o)
    );
}
