//! `strata build` end to end against a temp store with a busybox base.

mod support;

use support::*;

#[test]
fn multi_stage_build_runs_and_prints() {
    if !can_run() {
        return;
    }
    let (_t, root) = root_dir();
    make_busybox(&root);
    let ctx = context(&[
        ("hello.txt", "hello from strata\n"),
        (
            "Dockerfile",
            "FROM busybox:1.35 AS build\nWORKDIR /src\nCOPY hello.txt .\nRUN cat hello.txt > out.txt && echo built\n\nFROM busybox:1.35\nWORKDIR /root/\nCOPY --from=build /src/out.txt .\nCMD cat /root/out.txt\n",
        ),
    ]);
    let o = strata(
        &root,
        &[
            "build",
            "-t",
            "hello",
            "--progress",
            "plain",
            &path_str(ctx.path()),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("built"), "{}", stderr(&o));
    let o = strata(&root, &["run", "hello"]);
    assert_eq!(stdout(&o), "hello from strata\n", "{}", stderr(&o));
}
