//! How a failed RUN is reported: the command line shown in the error is
//! cut (a long heredoc script is not echoed whole, let alone twice), and no
//! cause is printed twice.

use strata_test_support as support;

use support::*;

#[test]
fn a_failed_long_heredoc_run_does_not_echo_its_script_in_the_error() {
    let Some((_t, root)) = setup_busybox() else {
        return;
    };
    let mut df = String::from("FROM busybox:1.35\nRUN <<EOF\n");
    for i in 0..80 {
        df.push_str(&format!("echo script line {i} of a long heredoc\n"));
    }
    df.push_str("exit 7\nEOF\n");
    let ctx = context(&[("Dockerfile", &df)]);
    let o = build_with(&root, ctx.path(), "long", &[]);
    assert!(!o.status.success());
    let err = stderr(&o);
    // Once as the step's output, never in the error lines.
    assert_eq!(err.matches("script line 79 of").count(), 1, "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(last.contains("Dockerfile:2"), "{last}");
    assert!(last.contains("exit code: 7"), "{last}");
    assert!(last.contains("more characters)"), "{last}");
    assert!(
        last.len() < 600,
        "error line of {} bytes: {last}",
        last.len()
    );
}
