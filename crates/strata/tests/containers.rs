//! Containers as Docker users run them: argument pass-through, detached
//! and named containers, their life cycle, networks and limits. Real runc
//! (and pasta for the private network).

mod support;

use support::*;

#[test]
fn words_after_the_image_belong_to_the_container() {
    if !can_run() {
        return;
    }
    let (_t, root) = root_dir();
    make_busybox(&root);
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
