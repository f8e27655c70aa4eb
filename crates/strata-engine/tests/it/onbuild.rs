//! ONBUILD: a base image's triggers run at the start of a stage built
//! FROM it, in order, once; the child's image does not carry them on.

use crate::support::Fixture;

crate::tests!(
    triggers_run_in_the_child_in_order_once,
    triggers_are_not_inherited_by_grandchildren,
    triggers_do_not_run_again_in_a_stage_from_the_child,
    copy_trigger_reads_the_childs_context,
);

fn base_with_two_triggers(fx: &Fixture) {
    fx.import_base(
        "base",
        &[("etc/base", "b")],
        &["RUN echo first > /t1", "RUN echo second > /t2"],
    );
}

fn triggers_run_in_the_child_in_order_once() {
    let fx = Fixture::new();
    base_with_two_triggers(&fx);
    let b = fx.build("FROM base\nRUN echo child > /c\n");
    assert_eq!(
        b.scripts(),
        ["echo first > /t1", "echo second > /t2", "echo child > /c"]
    );
    let files = fx.files(b.image());
    assert_eq!(files.text("t1"), "first\n");
    assert_eq!(files.text("t2"), "second\n");
    assert_eq!(files.text("etc/base"), "b");
    // The triggers ran; the child's config keeps none of them.
    let onbuild = &fx.config(b.image())["OnBuild"];
    assert!(
        onbuild.is_null() || onbuild.as_array().is_some_and(|a| a.is_empty()),
        "{onbuild}"
    );
    // A rebuild takes the triggers' steps from the cache as any other.
    let again = fx.build("FROM base\nRUN echo child > /c\n");
    assert!(again.runs.is_empty(), "{:?}", again.scripts());
}

/// Within one Dockerfile: a stage FROM the stage that ran the triggers
/// does not run them again.
fn triggers_do_not_run_again_in_a_stage_from_the_child() {
    let fx = Fixture::new();
    base_with_two_triggers(&fx);
    let b = fx.build("FROM base AS s1\nRUN echo s1 > /s1\nFROM s1\nRUN echo s2 > /s2\n");
    assert_eq!(
        b.scripts(),
        [
            "echo first > /t1",
            "echo second > /t2",
            "echo s1 > /s1",
            "echo s2 > /s2"
        ]
    );
}

/// A child built FROM the base has no triggers of the base; its own
/// ONBUILD lines become its triggers, which run (only) in its children.
fn triggers_are_not_inherited_by_grandchildren() {
    let fx = Fixture::new();
    base_with_two_triggers(&fx);
    let child = fx.build_with(
        "FROM base\nONBUILD RUN echo from-child > /fc\nRUN echo child > /c\n",
        |r| r.tags = vec!["child".into()],
    );
    // The child's own ONBUILD does not run in the child itself.
    assert!(!child.scripts().iter().any(|s| s.contains("from-child")));
    assert_eq!(
        fx.config(child.image())["OnBuild"],
        serde_json::json!(["RUN echo from-child > /fc"])
    );
    let grandchild = fx.build("FROM child\nRUN echo gc > /g\n");
    assert_eq!(
        grandchild.scripts(),
        ["echo from-child > /fc", "echo gc > /g"]
    );
}

/// A trigger's COPY reads the context of the build that runs it.
fn copy_trigger_reads_the_childs_context() {
    let fx = Fixture::new();
    fx.import_base("base", &[], &["COPY app.txt /app/app.txt"]);
    fx.write("app.txt", "the child's");
    let b = fx.build("FROM base\n");
    assert_eq!(fx.files(b.image()).text("app/app.txt"), "the child's");
}
