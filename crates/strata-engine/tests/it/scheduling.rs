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
    shared_dependency_runs_once,
    failure_stops_stages_not_started,
);

const THREE_STAGES: &str = "\
FROM scratch AS only-for-unused
RUN echo feeds-unused > /fu

FROM scratch AS unused
COPY --from=only-for-unused /fu /fu
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
    // A stage only an unused stage needs is unused too.
    assert_eq!(b.skipped(), ["only-for-unused", "unused"]);
    let files = fx.files(b.image());
    assert_eq!(files.text("dep"), "dep\n");
    assert_eq!(files.text("f"), "final\n");
    assert!(!files.has("u"));
}

fn target_selects_a_stage_and_its_dependencies() {
    let fx = Fixture::new();
    let b = fx.build_with(THREE_STAGES, |r| r.target = Some("dep".into()));
    assert_eq!(b.scripts(), ["mkdir -p /out && echo dep > /out/dep"]);
    let mut skipped = b.skipped();
    skipped.sort();
    assert_eq!(skipped, ["final", "only-for-unused", "unused"]);
    let files = fx.files(b.image());
    assert_eq!(files.text("out/dep"), "dep\n");
    assert!(!files.has("f"));

    // Targeting the final stage pulls in `dep` but still not `unused`.
    let fx = Fixture::new();
    let b = fx.build_with(THREE_STAGES, |r| r.target = Some("final".into()));
    assert_eq!(b.runs.len(), 2, "{:?}", b.scripts());
    assert_eq!(b.skipped(), ["only-for-unused", "unused"]);
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
    let fx =
        Fixture::with_executor(FakeExecutor::new().with_barrier_timeout(Duration::from_secs(60)));
    let b = fx.build(TWO_INDEPENDENT);
    assert_eq!(b.runs.len(), 2);
    let files = fx.files(b.image());
    assert_eq!(files.text("left"), "left\n");
    assert_eq!(files.text("right"), "right\n");
}

/// The control of the test above: with one stage at a time, the barrier
/// times out and the build fails, so that test can fail.
fn serial_scheduling_fails_the_parallel_test() {
    let fx =
        Fixture::with_executor(FakeExecutor::new().with_barrier_timeout(Duration::from_secs(1)));
    let b = fx.attempt(TWO_INDEPENDENT, |r| r.parallelism = Some(1));
    let err = strata_engine::chain(b.error());
    assert!(err.contains("exit code: 124"), "{err}");
    assert_eq!(b.runs.len(), 1, "{:?}", b.scripts());
}

/// A stage two others copy from is built once (BuildKit's "the same
/// vertex in two edges executes once").
fn shared_dependency_runs_once() {
    let fx = Fixture::new();
    let b = fx.build(
        "\
FROM scratch AS common
RUN echo common > /common

FROM scratch AS a
COPY --from=common /common /a-common

FROM scratch AS b
COPY --from=common /common /b-common

FROM scratch
COPY --from=a /a-common /a
COPY --from=b /b-common /b
",
    );
    assert_eq!(b.scripts(), ["echo common > /common"]);
    let files = fx.files(b.image());
    assert_eq!(files.text("a"), "common\n");
    assert_eq!(files.text("b"), "common\n");
}

/// After a stage fails, no other stage starts: neither its dependents nor
/// independent stages still waiting for a thread.
fn failure_stops_stages_not_started() {
    let fx = Fixture::new();
    let b = fx.attempt(
        "\
FROM scratch AS bad
RUN exit 5

FROM scratch AS other
RUN echo other > /other

FROM scratch
COPY --from=bad / /bad
COPY --from=other /other /other
RUN echo final > /final
",
        |r| r.parallelism = Some(1),
    );
    let err = strata_engine::chain(b.error());
    assert!(err.contains("exit code: 5"), "{err}");
    assert_eq!(b.scripts(), ["exit 5"]);
}
