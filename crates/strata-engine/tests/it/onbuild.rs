//! ONBUILD: a base image's triggers run at the start of a stage built
//! FROM it, in order, once; the child's image does not carry them on.

use crate::support::Fixture;

crate::tests!(
    triggers_run_in_the_child_in_order_once,
    triggers_are_not_inherited_by_grandchildren,
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
}

/// A child built FROM the base has no triggers of the base; its own
/// ONBUILD lines become its triggers, which run (only) in its children.
fn triggers_are_not_inherited_by_grandchildren() {
    let fx = Fixture::new();
    base_with_two_triggers(&fx);
    let child = fx
        .build_with(
            "FROM base\nONBUILD RUN echo from-child > /fc\nRUN echo child > /c\n",
            |r| r.tags = vec!["child".into()],
        )
        .unwrap_or_else(|(e, _)| panic!("{e}"));
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
