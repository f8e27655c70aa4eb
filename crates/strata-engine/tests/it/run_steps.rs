//! What a RUN hands the executor (argv, environment, working directory,
//! user), what comes back (output lines as events, the exit code), and
//! that the changes the command made become the step's layer.

use strata_engine::{EventKind, Stream};

use crate::support::Fixture;

crate::tests!(
    process_of_a_run,
    shell_instruction_and_exec_form,
    output_becomes_log_events,
    failing_run_stops_the_build,
    removal_in_a_run_hides_the_file_below,
);

fn process_of_a_run() {
    let fx = Fixture::new();
    let b = fx.build(
        "FROM scratch\n\
         ENV GREETING=hello\n\
         WORKDIR /work/dir\n\
         USER 1000:2000\n\
         RUN touch here\n",
    );
    let [run] = b.runs.as_slice() else {
        panic!("{:?}", b.scripts())
    };
    assert_eq!(run.argv, ["/bin/sh", "-c", "touch here"]);
    assert_eq!(run.env_var("GREETING"), Some("hello"));
    assert_eq!(run.cwd, "/work/dir");
    assert_eq!((run.uid, run.gid), (1000, 2000));
    assert!(fx.files(b.image()).has("work/dir/here"));
}

fn shell_instruction_and_exec_form() {
    let fx = Fixture::new();
    let b = fx.build(
        "FROM scratch\n\
         RUN [\"touch\", \"/exec\"]\n\
         SHELL [\"/bin/fake-sh\", \"-c\"]\n\
         RUN touch /shell\n",
    );
    let argvs: Vec<&Vec<String>> = b.runs.iter().map(|c| &c.argv).collect();
    assert_eq!(
        argvs,
        [
            &vec!["touch".to_string(), "/exec".into()],
            &vec![
                "/bin/fake-sh".to_string(),
                "-c".into(),
                "touch /shell".into()
            ],
        ]
    );
    let files = fx.files(b.image());
    assert!(files.has("exec") && files.has("shell"));
}

fn output_becomes_log_events() {
    let fx = Fixture::new();
    let b = fx.build("FROM scratch\nRUN echo line one && echo line two\n");
    let step = b.step("RUN echo line one && echo line two");
    let lines: Vec<&str> = b
        .events
        .iter()
        .filter_map(|e| match e {
            EventKind::Log {
                step: s,
                stream: Stream::Stdout,
                line,
            } if *s == step => Some(line.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(lines, ["line one", "line two"]);
}

fn failing_run_stops_the_build() {
    let fx = Fixture::new();
    let df = "FROM scratch\nRUN touch /a && exit 3\nRUN echo never > /n\n";
    let b = fx.attempt(df, |_| {});
    let msg = strata_engine::chain(b.error());
    assert!(msg.contains("exit code: 3"), "{msg}");
    assert!(msg.contains("RUN touch /a && exit 3"), "{msg}");
    assert_eq!(b.runs.len(), 1, "{:?}", b.scripts());
    assert!(b
        .events
        .iter()
        .any(|e| matches!(e, EventKind::Error { step: Some(2), .. })));
    // A failed step is not cached: the next build runs it again.
    let again = fx.attempt(df, |_| {});
    assert!(again.result.is_err());
    assert_eq!(fx.exec.calls().len(), 2);
}

/// A file of a lower layer that a RUN deletes is a whiteout in the RUN's
/// layer: the image no longer has it.
fn removal_in_a_run_hides_the_file_below() {
    let fx = Fixture::new();
    fx.write("gone.txt", "g");
    fx.write("kept.txt", "k");
    let b = fx.build("FROM scratch\nCOPY gone.txt kept.txt /d/\nRUN rm -f /d/gone.txt\n");
    let files = fx.files(b.image());
    assert!(!files.has("d/gone.txt"), "{:?}", files.paths());
    assert_eq!(files.text("d/kept.txt"), "k");
}
