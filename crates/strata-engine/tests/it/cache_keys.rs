//! Cache keys: a rebuild reuses every step whose inputs are unchanged, and
//! a change of any one input (a context file's content or mode, a build
//! arg, the base image, an earlier step) makes exactly the steps that
//! depend on it run again, with the reason in the CacheMiss event.

use crate::support::{Built, Fixture};

crate::tests!(
    noop_rebuild_executes_nothing,
    file_content,
    file_mode,
    unrelated_context_file_keeps_the_cache,
    build_arg,
    base_image,
    parent_step,
    source_stage_of_copy_from,
    no_cache_runs_everything,
);

const COPY_THEN_RUN: &str = "\
FROM scratch
COPY a.txt /a.txt
RUN echo after > /after
";

/// The first build of a Dockerfile: every step misses, for no recorded
/// reason.
fn first_build(fx: &Fixture, dockerfile: &str) -> Built {
    let b = fx.build(dockerfile);
    let out = b.out();
    assert_eq!(out.cached, 0);
    assert!(out.executed > 0);
    b
}

fn noop_rebuild_executes_nothing() {
    let fx = Fixture::new();
    fx.write("a.txt", "one");
    let first = first_build(&fx, COPY_THEN_RUN);
    assert_eq!(first.miss("COPY a.txt /a.txt"), Some(None));
    assert_eq!(first.runs.len(), 1);
    let again = fx.build(COPY_THEN_RUN);
    assert!(again.runs.is_empty(), "{:?}", again.scripts());
    assert!(again.cached("COPY a.txt /a.txt"));
    assert!(again.cached("RUN echo after > /after"));
    let out = again.out();
    assert_eq!((out.executed, out.cached), (0, 2));
    assert_eq!(again.image(), first.image());
}

fn file_content() {
    let fx = Fixture::new();
    fx.write("a.txt", "one");
    let first = first_build(&fx, COPY_THEN_RUN);
    fx.write("a.txt", "two");
    let b = fx.build(COPY_THEN_RUN);
    assert!(!b.cached("COPY a.txt /a.txt"));
    let why = b.miss_reason("COPY a.txt /a.txt");
    assert!(why.contains("a.txt") && why.contains("content"), "{why}");
    // The RUN below the changed COPY runs again too.
    assert_eq!(b.scripts(), ["echo after > /after"]);
    let why = b.miss_reason("RUN echo after > /after");
    assert!(why.contains("step above"), "{why}");
    assert_ne!(b.image(), first.image());
    assert_eq!(fx.files(b.image()).text("a.txt"), "two");
}

fn file_mode() {
    let fx = Fixture::new();
    fx.write("a.txt", "one");
    first_build(&fx, COPY_THEN_RUN);
    fx.chmod("a.txt", 0o755);
    let b = fx.build(COPY_THEN_RUN);
    assert!(!b.cached("COPY a.txt /a.txt"));
    let why = b.miss_reason("COPY a.txt /a.txt");
    assert!(why.contains("a.txt") && why.contains("mode"), "{why}");
    assert_eq!(b.runs.len(), 1);
    assert_eq!(fx.files(b.image()).get("a.txt").mode, 0o755);
}

/// A context file no step reads is not part of any key.
fn unrelated_context_file_keeps_the_cache() {
    let fx = Fixture::new();
    fx.write("a.txt", "one");
    fx.write("other.txt", "x");
    first_build(&fx, COPY_THEN_RUN);
    fx.write("other.txt", "y");
    fx.write("new.txt", "z");
    let b = fx.build(COPY_THEN_RUN);
    assert!(b.cached("COPY a.txt /a.txt"));
    assert!(b.runs.is_empty());
}

const ARG_RUN: &str = "\
FROM scratch
ARG V
RUN echo $V > /v
";

fn build_arg() {
    let fx = Fixture::new();
    let with = |v: &str| {
        fx.build_with(ARG_RUN, |r| {
            r.build_args.insert("V".into(), v.into());
        })
    };
    let first = with("1");
    assert_eq!(first.runs[0].env_var("V"), Some("1"));
    assert!(with("1").runs.is_empty(), "same arg: cached");
    let b = with("2");
    // The ARG step is where the value enters: it names the arg; the RUN
    // below misses because of it.
    let why = b.miss_reason("ARG V");
    assert!(why.contains("build arg V") && why.contains("2"), "{why}");
    let why = b.miss_reason("RUN echo $V > /v");
    assert!(why.contains("step above") && why.contains("ARG V"), "{why}");
    assert_eq!(b.runs.len(), 1);
    assert_eq!(b.runs[0].env_var("V"), Some("2"));
    assert_eq!(fx.files(b.image()).text("v"), "2\n");
}

const ON_BASE: &str = "\
FROM base
RUN echo on-base > /x
";

/// Re-tagging the base name to another image changes the key of every
/// step of the stage.
fn base_image() {
    let fx = Fixture::new();
    let old = fx.import_base("base", &[("etc/version", "1")], &[]);
    first_build(&fx, ON_BASE);
    assert!(fx.build(ON_BASE).runs.is_empty(), "same base: cached");
    let new = fx.import_base("base", &[("etc/version", "2")], &[]);
    let b = fx.build(ON_BASE);
    assert!(!b.cached("RUN echo on-base > /x"));
    let why = b.miss_reason("RUN echo on-base > /x");
    // Names the base and both images (short IDs).
    let short = |d: &strata_oci::Digest| d.to_string()[..19].to_string();
    assert!(why.contains("base image base changed"), "{why}");
    assert!(
        why.contains(&short(&old)) && why.contains(&short(&new)),
        "{why}"
    );
    assert_eq!(b.runs.len(), 1);
    let files = fx.files(b.image());
    assert_eq!(files.text("etc/version"), "2");
    assert_eq!(files.text("x"), "on-base\n");
}

fn three_runs(first: &str) -> String {
    format!("FROM scratch\nRUN echo {first} > /1\nRUN echo two > /2\nRUN echo three > /3\n")
}

/// A changed step makes every step below it miss; the ones above hit.
fn parent_step() {
    let fx = Fixture::new();
    fx.write("a.txt", "a");
    let df = |first: &str| format!("{}COPY a.txt /a.txt\n", three_runs(first));
    first_build(&fx, &df("one"));
    let b = fx.build(&df("uno"));
    assert_eq!(
        b.scripts(),
        ["echo uno > /1", "echo two > /2", "echo three > /3"]
    );
    let why = b.miss_reason("RUN echo uno > /1");
    assert!(
        why.contains("instruction changed") && why.contains("echo one"),
        "{why}"
    );
    for below in [
        "RUN echo two > /2",
        "RUN echo three > /3",
        "COPY a.txt /a.txt",
    ] {
        let why = b.miss_reason(below);
        assert!(why.contains("step above"), "{below}: {why}");
    }
    // Changing the middle step keeps the first one cached.
    let b = fx.build(&df("uno").replace("echo two", "echo dos"));
    assert!(b.cached("RUN echo uno > /1"));
    assert_eq!(b.scripts(), ["echo dos > /2", "echo three > /3"]);
}

/// `COPY --from=STAGE` is keyed on what the stage produced: a change in
/// the stage makes it miss; a rebuild of the same stage does not.
fn source_stage_of_copy_from() {
    let fx = Fixture::new();
    let df = |word: &str| {
        format!(
            "FROM scratch AS dep\nRUN echo {word} > /out\n\
             FROM scratch\nRUN echo own > /own\nCOPY --from=dep /out /copied\n"
        )
    };
    first_build(&fx, &df("v1"));
    let b = fx.build(&df("v2"));
    assert!(b.cached("RUN echo own > /own"));
    assert!(!b.cached("COPY --from=dep /out /copied"));
    let why = b.miss_reason("COPY --from=dep /out /copied");
    assert!(why.contains("dep"), "{why}");
    assert_eq!(b.scripts(), ["echo v2 > /out"]);
    assert_eq!(fx.files(b.image()).text("copied"), "v2\n");
}

fn no_cache_runs_everything() {
    let fx = Fixture::new();
    let df = three_runs("one");
    first_build(&fx, &df);
    let b = fx.build_with(&df, |r| r.no_cache = true);
    assert_eq!(b.runs.len(), 3);
    assert_eq!(b.out().cached, 0);
}
