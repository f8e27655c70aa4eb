//! Stage scheduling: which stages run, in what order, and at once.

use std::time::Duration;

use crate::fake::FakeExecutor;
use crate::support::Fixture;

crate::tests!(
    unused_stages_are_not_run,
    target_selects_a_stage_and_its_dependencies,
    dependencies_run_before_their_users,
    independent_stages_run_in_parallel,
    serial_scheduling_fails_the_parallel_test,
);

const THREE_STAGES: &str = "\
FROM scratch AS unused
RUN echo unused > /u

FROM scratch AS dep
RUN mkdir -p /out && echo dep > /out/dep

FROM scratch AS final
COPY --from=dep /out/dep /dep
RUN echo final > /f
";

fn unused_stages_are_not_run() {
    let fx = Fixture::new();
    let b = fx.build(THREE_STAGES);
    let scripts = b.scripts();
    assert!(!scripts.iter().any(|s| s.contains("unused")), "{scripts:?}");
    assert_eq!(scripts.len(), 2, "{scripts:?}");
    assert_eq!(b.skipped(), ["unused"]);
    let files = fx.files(b.image());
    assert_eq!(files.text("dep"), "dep\n");
    assert_eq!(files.text("f"), "final\n");
    assert!(!files.has("u"));
}

fn target_selects_a_stage_and_its_dependencies() {
    let fx = Fixture::new();
    let b = fx
        .build_with(THREE_STAGES, |r| r.target = Some("dep".into()))
        .unwrap_or_else(|(e, _)| panic!("{e}"));
    assert_eq!(b.scripts(), ["mkdir -p /out && echo dep > /out/dep"]);
    let mut skipped = b.skipped();
    skipped.sort();
    assert_eq!(skipped, ["final", "unused"]);
    let files = fx.files(b.image());
    assert_eq!(files.text("out/dep"), "dep\n");
    assert!(!files.has("f"));

    // Targeting the final stage pulls in `dep` but still not `unused`.
    let fx = Fixture::new();
    let b = fx
        .build_with(THREE_STAGES, |r| r.target = Some("final".into()))
        .unwrap_or_else(|(e, _)| panic!("{e}"));
    assert_eq!(b.runs.len(), 2, "{:?}", b.scripts());
    assert_eq!(b.skipped(), ["unused"]);
}

/// `COPY --from` and `FROM <stage>` make a stage wait for the one it
/// names: with four threads free, the dependent stages still start after
/// theirs finished, and see what they wrote.
fn dependencies_run_before_their_users() {
    let fx = Fixture::new();
    let b = fx.build(
        "\
FROM scratch AS a
RUN mkdir -p /out && echo a > /out/a

FROM a AS b
RUN cp /out/a /out/b-saw-a

FROM scratch AS c
RUN echo c-first > /c
COPY --from=b /out /from-b
RUN cp /from-b/b-saw-a /c-saw-b
",
    );
    let scripts = b.scripts();
    let pos = |s: &str| {
        scripts
            .iter()
            .position(|x| x.contains(s))
            .unwrap_or_else(|| panic!("{s} not run: {scripts:?}"))
    };
    assert!(pos("echo a >") < pos("b-saw-a"), "{scripts:?}");
    // Stage c as a whole waits for b: even its first RUN, which needs
    // nothing from b, starts after b's.
    assert!(pos("/out/b-saw-a") < pos("c-first"), "{scripts:?}");
    let files = fx.files(b.image());
    assert_eq!(files.text("c-saw-b"), "a\n");
    assert_eq!(files.text("from-b/a"), "a\n");
}

const TWO_INDEPENDENT: &str = "\
FROM scratch AS left
RUN wait both 2 && echo left > /left

FROM scratch AS right
RUN wait both 2 && echo right > /right

FROM scratch
COPY --from=left /left /left
COPY --from=right /right /right
";

/// Both stages' RUNs must be inside the executor at once to pass the
/// barrier: a scheduler that ran one stage after the other would time out
/// (see the next test) instead of hanging.
fn independent_stages_run_in_parallel() {
    let fx = Fixture::with_executor(FakeExecutor::new().with_barrier_timeout(Duration::from_secs(60)));
    let b = fx.build(TWO_INDEPENDENT);
    assert_eq!(b.runs.len(), 2);
    let files = fx.files(b.image());
    assert_eq!(files.text("left"), "left\n");
    assert_eq!(files.text("right"), "right\n");
}

/// The control of the test above: with one stage at a time, the barrier
/// times out and the build fails, so that test can fail.
fn serial_scheduling_fails_the_parallel_test() {
    let fx = Fixture::with_executor(FakeExecutor::new().with_barrier_timeout(Duration::from_secs(1)));
    let (err, b) = match fx.build_with(TWO_INDEPENDENT, |r| r.parallelism = Some(1)) {
        Ok(_) => panic!("a serial build passed the barrier"),
        Err(e) => e,
    };
    assert!(err.to_string().contains("124"), "{err}");
    assert_eq!(b.runs.len(), 1, "{:?}", b.scripts());
}
