//! The 43 multi-stage Dockerfiles: every one parses and plans (with the
//! build args NOTES.md gives), and the stage-resolution expectations a
//! frontend can check hold.

use strata_test_support::conformance as common;

use std::collections::BTreeMap;

use common::{conformance_dir, report};
use strata_frontend::{
    parse, plan, Base, BuildOptions, Command, FromRef, Plan, Resolved, StageScope,
};

fn opts(args: &[(&str, &str)], target: Option<&str>) -> BuildOptions {
    BuildOptions {
        build_args: args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        target: target.map(String::from),
        ..BuildOptions::default()
    }
}

fn try_plan(rel: &str, o: &BuildOptions) -> Result<Plan, String> {
    let path = conformance_dir().join("multistage").join(rel);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let ast = parse(&text, rel).map_err(|e| e.to_string())?;
    plan(&ast, o).map_err(|e| e.to_string())
}

/// Resolves every step of a stage; returns the RUN shell commands as the
/// shell would see them (expanded with ENV + ARGs in scope) and COPY --from refs.
fn run_stage(p: &Plan, stage: usize) -> Result<(Vec<String>, Vec<Option<FromRef>>), String> {
    let mut scope = StageScope::new(p, stage, &[]);
    let mut runs = Vec::new();
    let mut froms = Vec::new();
    for step in &p.stages[stage].steps {
        match scope.resolve(step).map_err(|e| e.to_string())? {
            Resolved::Run {
                command: Command::Shell(cmd),
                ..
            } => {
                let mut vars = scope.env();
                vars.extend(scope.build_args_in_scope());
                let lookup = |n: &str| {
                    vars.iter()
                        .rev()
                        .find(|(k, _)| k == n)
                        .map(|(_, v)| v.clone())
                };
                runs.push(
                    strata_frontend::expand_word(&cmd, &lookup, '\\').map_err(|e| e.to_string())?,
                );
            }
            Resolved::Copy { from, .. } => froms.push(from),
            _ => {}
        }
    }
    Ok((runs, froms))
}

fn all_files() -> Vec<String> {
    let root = conformance_dir().join("multistage");
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let name = p.file_name().unwrap().to_string_lossy().to_string();
                if !name.ends_with(".md") && !name.ends_with(".args") {
                    out.push(p.strip_prefix(&root).unwrap().to_string_lossy().to_string());
                }
            }
        }
    }
    out.sort();
    out
}

/// Build args per file, from NOTES.md.
fn args_for(rel: &str) -> Vec<(&'static str, &'static str)> {
    match rel {
        "buildah/leading-args/Dockerfile" => vec![("VERSION", "musl")],
        "buildah/multi-stage-builds/Dockerfile.arg" => vec![("SECRET", "secretthings")],
        "buildah/base-with-arg/Containerfile2" | "buildah/base-with-arg/Containerfilebad" => {
            vec![("CUSTOM_TARGET", "first")]
        }
        "buildah/with-arg/Dockerfilefromarg" => vec![("app_type", "x"), ("another_app_type", "m")],
        "buildah/from-with-arg/Containerfile" => {
            vec![
                ("base", "alpine"),
                ("toolchainname", "busybox"),
                ("destinationpath", "/tmp"),
            ]
        }
        "kaniko/Dockerfile_test_multistage" | "kaniko/Dockerfile_test_meta_arg" => {
            vec![("file", "/foo2")]
        }
        "kaniko/Dockerfile_test_onbuild" => vec![("file", "/tmp/onbuild")],
        _ => vec![],
    }
}

const MUST_FAIL: [&str; 3] = [
    "buildah/copy-from/Dockerfile.bad",
    "buildah/copy-from/Dockerfile2.bad",
    "buildah/base-with-arg/Containerfilebad",
];

#[test]
fn all_files_parse_and_plan() {
    if !common::available("all_files_parse_and_plan") {
        return;
    }
    let files = all_files();
    assert_eq!(
        files.len(),
        43,
        "expected 43 multistage Dockerfiles, found {files:?}"
    );
    let mut failures = Vec::new();
    for rel in &files {
        let target = (rel == "buildah/target/Dockerfile").then_some("mytarget");
        let target = target.or((rel == "kaniko/Dockerfile_test_target").then_some("second"));
        let r = try_plan(rel, &opts(&args_for(rel), target));
        match (r, MUST_FAIL.contains(&rel.as_str())) {
            (Ok(_), true) => failures.push(format!("{rel}: planned, but must fail")),
            (Err(e), false) => failures.push(format!("{rel}: {e}")),
            (Ok(p), false) => {
                // Every needed stage resolves without error.
                for i in p.build_order() {
                    if let Err(e) = run_stage(&p, i) {
                        failures.push(format!("{rel} stage {i}: {e}"));
                    }
                }
            }
            (Err(_), true) => {}
        }
    }
    report("multistage", files.len(), &failures);
}

struct Check<'a> {
    failures: &'a mut Vec<String>,
    total: usize,
}

impl Check<'_> {
    fn that(&mut self, ok: bool, what: String) {
        self.total += 1;
        if !ok {
            self.failures.push(what);
        }
    }
}

fn runs_contain(p: &Plan, stage: usize, needle: &str) -> bool {
    run_stage(p, stage)
        .map(|(r, _)| r.iter().any(|c| c.contains(needle)))
        .unwrap_or(false)
}

#[test]
fn stage_resolution_expectations() {
    if !common::available("stage_resolution_expectations") {
        return;
    }
    let mut failures = Vec::new();
    let mut c = Check {
        failures: &mut failures,
        total: 0,
    };
    let p = |rel: &str, args: &[(&str, &str)], target: Option<&str>| {
        try_plan(rel, &opts(args, target)).unwrap()
    };

    // Stage references by index and name.
    let x = p("buildah/multi-stage-builds/Dockerfile.mixed", &[], None);
    let (_, froms) = run_stage(&x, 3).unwrap();
    c.that(
        froms
            == [
                Some(FromRef::Stage(0)),
                Some(FromRef::Stage(1)),
                Some(FromRef::Stage(2)),
            ],
        format!("mixed: {froms:?}"),
    );
    c.that(x.stages[3].depends_on == [0, 1, 2], "mixed deps".into());
    let x = p("buildah/multi-stage-builds/Dockerfile.index", &[], None);
    c.that(
        x.stages[1].depends_on == [0] && x.build_order() == [0, 1],
        "index".into(),
    );
    let x = p("buildah/multi-stage-builds/Dockerfile.name", &[], None);
    c.that(
        x.stages[1].depends_on == [0] && x.stages[1].base == Base::Scratch,
        "name".into(),
    );

    // FROM a previous stage.
    let x = p("buildah/multi-stage-builds/Dockerfile.extended", &[], None);
    let last = x.stages.len() - 1;
    c.that(
        matches!(x.stages[last].base, Base::Stage(_)),
        format!("extended base {:?}", x.stages[last].base),
    );
    let x = p("buildah/multi-stage-builds/Dockerfile.reused", &[], None);
    let last = x.stages.len() - 1;
    c.that(
        matches!(x.stages[last].base, Base::Stage(_)) && x.stages[last].steps.is_empty(),
        "reused".into(),
    );
    let x = p("buildah/from-as/Dockerfile.skip", &[], None);
    c.that(
        x.stages[1].base == Base::Stage(0) && x.stages[2].base == Base::Stage(0),
        "skip bases".into(),
    );

    // --target and skipping.
    let x = p("buildah/target/Dockerfile", &[], Some("mytarget"));
    c.that(
        x.target == 1 && x.build_order() == [0, 1] && !x.stages[2].needed,
        format!("target: {:?}", x.build_order()),
    );
    let x = p(
        "buildah/inline-bud-bats/skip-unused-stages-copy-from-index.Dockerfile",
        &[],
        None,
    );
    let last = x.stages.len() - 1;
    c.that(
        x.build_order() == [1, last],
        format!("skip copy-from-index: {:?}", x.build_order()),
    );
    let x = p(
        "buildah/inline-bud-bats/skip-unused-stages.Dockerfile",
        &[],
        None,
    );
    let needed_runs: Vec<String> = x
        .build_order()
        .iter()
        .flat_map(|&i| run_stage(&x, i).unwrap().0)
        .collect();
    c.that(
        !needed_runs.iter().any(|r| r.contains("unwanted stage"))
            && needed_runs.iter().any(|r| r.contains("target stage")),
        format!("skip-unused-stages: {needed_runs:?}"),
    );
    let x = p("kaniko/Dockerfile_test_target", &[], Some("second"));
    c.that(
        x.stages[x.target].name.as_deref() == Some("second")
            && x.stages[x.target].depends_on == [0],
        "kaniko target".into(),
    );

    // COPY --from=<image>.
    let x = p("buildah/copy-from/Dockerfile", &[], None);
    let (_, froms) = run_stage(&x, x.target).unwrap();
    c.that(
        froms.contains(&Some(FromRef::Image(
            "quay.io/libpod/testimage:20221018".into(),
        ))),
        format!("copy-from image {froms:?}"),
    );
    let e = try_plan("buildah/copy-from/Dockerfile.bad", &opts(&[], None)).unwrap_err();
    c.that(e.contains("--from"), format!("copy-from bad: {e}"));
    let e = try_plan("buildah/copy-from/Dockerfile2.bad", &opts(&[], None)).unwrap_err();
    c.that(e.contains("itself"), format!("copy-from self: {e}"));

    // Global ARGs and ARG scope.
    let x = p(
        "buildah/leading-args/Dockerfile",
        &[("VERSION", "musl")],
        None,
    );
    c.that(
        x.stages[0].base == Base::Image("busybox:musl".into()),
        format!("leading-args {:?}", x.stages[0].base),
    );
    let x = p(
        "buildah/multi-stage-builds/Dockerfile.arg_in_stage",
        &[],
        None,
    );
    c.that(
        x.stages.iter().any(|s| matches!(s.base, Base::Stage(_))),
        "arg_in_stage: FROM names a stage".into(),
    );
    let x = p(
        "buildah/multi-stage-builds/Dockerfile.arg_in_copy",
        &[],
        None,
    );
    let (_, froms) = run_stage(&x, x.target).unwrap();
    c.that(
        froms.iter().all(|f| matches!(f, Some(FromRef::Stage(_)))),
        format!("arg_in_copy {froms:?}"),
    );
    let x = p(
        "buildah/multi-stage-builds/Dockerfile.arg",
        &[("SECRET", "secretthings")],
        None,
    );
    c.that(
        !runs_contain(&x, 1, "secretthings"),
        "Dockerfile.arg: SECRET not in scope in stage 1".into(),
    );
    c.that(
        !x.stages[1]
            .steps
            .iter()
            .any(|s| s.source.contains("secretthings")),
        "history".into(),
    );

    type Row = (
        &'static str,
        &'static [(&'static str, &'static str)],
        &'static str,
    );
    let table: [Row; 13] = [
        ("from-arg", &[], "alpine"),
        ("from-arg", &[("BASE", "busybox")], "busybox"),
        ("stage-overrides-header", &[], "stage"),
        ("copy-from-arg", &[], "a"),
        ("copy-from-arg", &[("SRC", "b")], "b"),
        ("stage-overrides-header-copy-from", &[], "b"),
        ("multiple-args-stage-overrides-one", &[], "9 1"),
        ("multiple-args-stage-only", &[], "1 2"),
        ("multiple-args-one-step", &[], "0 1"),
        ("multiple-args-one-step", &[("bar", "88")], "0 88"),
        (
            "multiple-args-one-step",
            &[("foo", "99"), ("bar", "88")],
            "99 88",
        ),
        ("arg-mixed-defaults", &[], " set"),
        ("arg-mixed-defaults", &[("a", "given")], "given set"),
    ];
    for (suffix, args, want) in table {
        let x = p(
            &format!("buildah/arg-scope/Containerfile.{suffix}"),
            args,
            None,
        );
        let t = x.target;
        let ok = if suffix.contains("copy-from") {
            let (_, froms) = run_stage(&x, t).unwrap();
            let idx = x.stage_by_ref(want).unwrap();
            froms == [Some(FromRef::Stage(idx))] && x.stages[t].depends_on == [idx]
        } else {
            runs_contain(&x, t, want)
        };
        c.that(
            ok,
            format!(
                "arg-scope {suffix} {args:?}: expected {want:?} ({:?})",
                run_stage(&x, t)
            ),
        );
    }
    let x = p(
        "buildah/copy-from-stage-scoped-arg/Containerfile.multi-copy-arg-override",
        &[],
        None,
    );
    let (_, froms) = run_stage(&x, x.target).unwrap();
    let (staging, dev) = (
        x.stage_by_ref("staging").unwrap(),
        x.stage_by_ref("dev").unwrap(),
    );
    c.that(
        froms == [Some(FromRef::Stage(staging)), Some(FromRef::Stage(dev))],
        format!("multi-copy-arg-override {froms:?}"),
    );
    for (arg, stage) in [("first", "platform-first"), ("second", "platform-second")] {
        let x = p(
            "buildah/base-with-arg/Containerfile2",
            &[("CUSTOM_TARGET", arg)],
            None,
        );
        let last = x.stages.len() - 1;
        c.that(
            x.stages[last].base == Base::Stage(x.stage_by_ref(stage).unwrap()),
            format!("base-with-arg {arg}"),
        );
    }
    let e = try_plan(
        "buildah/base-with-arg/Containerfilebad",
        &opts(&[("CUSTOM_TARGET", "first")], None),
    )
    .unwrap_err();
    c.that(
        e.contains("invalid reference format"),
        format!("Containerfilebad: {e}"),
    );
    let x = p(
        "buildah/with-arg/Dockerfilefromarg",
        &[("app_type", "x"), ("another_app_type", "m")],
        None,
    );
    let m = x.stage_by_ref("m").unwrap();
    c.that(
        x.stages[m].needed && x.stages[m].base == Base::Stage(0),
        format!("fromarg order {:?}", x.build_order()),
    );
    let x = p(
        "buildah/from-with-arg/Containerfile",
        &[
            ("base", "alpine"),
            ("toolchainname", "busybox"),
            ("destinationpath", "/tmp"),
        ],
        None,
    );
    c.that(
        x.stages[0].base == Base::Image("alpine".into()),
        "from-with-arg base".into(),
    );
    c.that(
        x.stages[0]
            .steps
            .iter()
            .any(|s| s.source == "COPY --from=${toolchainname} / ${destinationpath}"),
        "unexpanded source".into(),
    );
    let (_, froms) = run_stage(&x, 0).unwrap();
    c.that(
        froms == [Some(FromRef::Image("busybox".into()))],
        format!("from-with-arg {froms:?}"),
    );

    // ONBUILD triggers are stored, not run.
    let x = p("buildah/onbuild/Dockerfile", &[], None);
    let mut scope = StageScope::new(&x, 0, &[]);
    let triggers: Vec<String> = x.stages[0]
        .steps
        .iter()
        .filter_map(|s| match scope.resolve(s).unwrap() {
            Resolved::Onbuild(t) => Some(t),
            _ => None,
        })
        .collect();
    c.that(
        triggers == ["RUN touch /onbuild1", "RUN touch /onbuild2"],
        format!("onbuild {triggers:?}"),
    );

    // kaniko.
    let x = p(
        "kaniko/Dockerfile_test_multistage",
        &[("file", "/foo2")],
        None,
    );
    let unused_digest = x
        .stages
        .iter()
        .find(|s| matches!(&s.base, Base::Image(i) if i.starts_with("fedora@")));
    c.that(
        unused_digest.is_some_and(|s| !s.needed),
        "kaniko multistage: digest stage unused".into(),
    );
    let third = x.stage_by_ref("third").unwrap();
    c.that(!x.stages[third].needed, "third unused".into());
    let (_, froms) = run_stage(&x, x.target).unwrap();
    c.that(
        froms.contains(&Some(FromRef::Image("debian:10.13".into()))),
        format!("image --from {froms:?}"),
    );
    let x = p("kaniko/Dockerfile_test_meta_arg", &[], None);
    c.that(
        matches!(&x.stages[0].base, Base::Image(_)),
        format!("meta_arg base {:?}", x.stages[0].base),
    );
    c.that(
        x.stages.len() < 2
            || x.stages[0].base == x.stages[1].base
            || matches!(x.stages[1].base, Base::Image(_)),
        "meta_arg second FROM".into(),
    );
    c.that(
        runs_contain(&x, 0, "touch /hello"),
        format!("meta_arg WORD {:?}", run_stage(&x, 0)),
    );
    c.that(
        runs_contain(&x, 1, "touch -d 0 /tmp/") && !runs_contain(&x, 1, "/tmp/hey"),
        format!("W0RD2 trap {:?}", run_stage(&x, 1)),
    );
    let x = p(
        "kaniko/Dockerfile_test_multistage_args_issue_1911",
        &[],
        None,
    );
    let want = [
        (0, "base:: base"),
        (1, "dev:: base-dev"),
        (2, "custom:: base-dev"),
        (3, "custom:: fix"),
    ];
    for (stage, needle) in want {
        c.that(
            runs_contain(&x, stage, needle),
            format!("1911 stage {stage}: {needle} in {:?}", run_stage(&x, stage)),
        );
    }
    c.that(
        !runs_contain(&x, 2, "custom:: fix"),
        "1911: OTHER empty before ARG OTHER".into(),
    );
    let x = p("kaniko/Dockerfile_test_from_multistage_capital", &[], None);
    let last = x.stages.len() - 1;
    c.that(
        matches!(x.stages[last].base, Base::Stage(_)),
        "capital stage name".into(),
    );
    let x = p("kaniko/Dockerfile_test_arg_two_level", &[], None);
    c.that(
        x.stages[0].base == Base::Image("alpine:3.9".into()),
        format!("two_level {:?}", x.stages[0].base),
    );
    let x = p("kaniko/Dockerfile_test_cmd", &[], None);
    let ep = x
        .stages
        .last()
        .unwrap()
        .steps
        .iter()
        .find_map(|s| match &s.instruction {
            strata_frontend::Instruction::Entrypoint(c) => Some(c.clone()),
            _ => None,
        });
    c.that(
        matches!(ep, Some(Command::Shell(ref s)) if s.starts_with("[\"myentrypoint\"] #")),
        format!("cmd shell fallback {ep:?}"),
    );

    let total = c.total;
    report("multistage-expectations", total, &failures);
}
