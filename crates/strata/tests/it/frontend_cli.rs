//! `strata check` and `strata build --dry-run`, run as the real binary.

use std::path::Path;

use strata_test_support as support;

/// strata with the store `ROOT/store`: (exit code, stdout, stderr).
fn cli(args: &[&str], root: &Path) -> (i32, String, String) {
    let out = support::strata(&root.join("store"), args);
    (
        out.status.code().unwrap_or(-1),
        support::stdout(&out),
        support::stderr(&out),
    )
}

/// A throw-away build context (removed on drop).
struct Ctx(std::path::PathBuf);

impl Ctx {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn context(dockerfile: &str) -> Ctx {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "strata-frontend-cli-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    Ctx(dir)
}

#[test]
fn check_accepts_a_valid_dockerfile() {
    let dir =
        context("FROM busybox AS build\nRUN echo hi > /x\nFROM scratch\nCOPY --from=build /x /x\n");
    std::fs::write(dir.path().join(".dockerignore"), "*.tmp\n!keep.tmp\n").unwrap();
    let (code, out, err) = cli(&["check", dir.path().to_str().unwrap()], dir.path());
    assert_eq!(code, 0, "stdout {out}\nstderr {err}");
    assert!(out.contains("no problems"), "{out}");
}

#[test]
fn check_reports_unknown_instruction_with_location_and_suggestion() {
    let dir = context("FROM busybox\nRUNN echo hi\n");
    let (code, _, err) = cli(&["check", dir.path().to_str().unwrap()], dir.path());
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("Dockerfile:2:1: unknown instruction: RUNN"),
        "{err}"
    );
    assert!(err.contains("did you mean RUN?"), "{err}");
    assert!(err.contains("  RUNN echo hi\n  ^"), "{err}");
}

#[test]
fn check_reports_bad_dockerignore_and_uses_f() {
    let dir = context("FROM busybox\n");
    std::fs::write(
        dir.path().join("other.Dockerfile"),
        "FROM busybox\nCOPY --bogus a b\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("other.Dockerfile.dockerignore"), "[\n").unwrap();
    let f = dir.path().join("other.Dockerfile");
    let (code, _, err) = cli(
        &[
            "check",
            "-f",
            f.to_str().unwrap(),
            dir.path().to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(code, 1);
    assert!(err.contains("COPY does not take the flag --bogus"), "{err}");
    assert!(err.contains("invalid .dockerignore pattern"), "{err}");
}

#[test]
fn dry_run_prints_plan_with_skipped_stages_and_expanded_words() {
    let dir = context(
        "ARG V=1.0\nFROM alpine:$V AS base\nENV A=x\nWORKDIR /src/$A\n\
         FROM busybox AS unused\nRUN true\n\
         FROM base AS final\nARG V\nCOPY --from=base /src/$V /out\n",
    );
    let (code, out, err) = cli(
        &[
            "build",
            "--dry-run",
            "--build-arg",
            "V=2.0",
            dir.path().to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("target: stage 2 (final)"), "{out}");
    assert!(
        out.contains("build order: stage 0 (base), stage 2 (final)"),
        "{out}"
    );
    assert!(out.contains("skipped: stage 1 (unused)"), "{out}");
    assert!(out.contains("FROM alpine:2.0"), "{out}");
    assert!(out.contains("=> WORKDIR /src/x"), "{out}");
    assert!(out.contains("=> COPY --from=base /src/2.0 /out"), "{out}");
}

#[test]
fn dry_run_unknown_target_lists_stages() {
    let dir = context("FROM a AS one\nFROM b AS two\n");
    let (code, _, err) = cli(
        &[
            "build",
            "--dry-run",
            "--target",
            "three",
            dir.path().to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("\"three\"") && err.contains("one, two"),
        "{err}"
    );
}

#[test]
fn a_lowercase_dockerfile_is_found_when_dockerfile_is_absent() {
    let dir = context("FROM busybox\n");
    std::fs::remove_file(dir.path().join("Dockerfile")).unwrap();
    std::fs::write(dir.path().join("dockerfile"), "FROM busybox\nRUN true\n").unwrap();
    let (code, out, err) = cli(&["check", dir.path().to_str().unwrap()], dir.path());
    assert_eq!(code, 0, "stdout {out}\nstderr {err}");
    assert!(out.contains("/dockerfile: no problems"), "{out}");
    let (code, out, err) = cli(
        &["build", "--dry-run", dir.path().to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(code, 0, "stdout {out}\nstderr {err}");
    assert!(out.contains("RUN true"), "{out}");
}

#[test]
fn check_expands_mounts_with_env_from_the_parent_stage() {
    let dir = context(
        "FROM busybox AS base\nENV T=cache ID=c DIR=/c\nFROM base\nRUN --mount=type=$T,id=$ID,target=$DIR true\n",
    );
    let (code, out, err) = cli(&["check", dir.path().to_str().unwrap()], dir.path());
    assert_eq!(code, 0, "stdout {out}\nstderr {err}");
}

const NEEDS_CHECKS: &str =
    "FROM busybox as Build\nMAINTAINER me\nWORKDIR app\nCOPY notes.tmp .\nCMD echo hi\n";

#[test]
fn check_prints_build_check_warnings_with_location_snippet_and_explanation() {
    let dir = context(NEEDS_CHECKS);
    std::fs::write(dir.path().join(".dockerignore"), "*.tmp\n").unwrap();
    let (code, out, err) = cli(&["check", dir.path().to_str().unwrap()], dir.path());
    assert_eq!(code, 0, "warnings alone do not fail: {out}\n{err}");
    assert!(
        out.contains("Dockerfile:1:17: StageNameCasing: Stage name 'Build' should be lowercase\n  FROM busybox as Build\n  (Stage names"),
        "{out}"
    );
    for rule in [
        "FromAsCasing",
        "MaintainerDeprecated",
        "WorkdirRelativePath",
        "CopyIgnoredFile",
        "JSONArgsRecommended",
    ] {
        assert!(
            out.contains(&format!(": {rule}: ")),
            "{rule} missing in {out}"
        );
    }
    assert!(out.contains("6 warnings found"), "{out}");
}

#[test]
fn check_honours_the_skip_directive() {
    let dir = context(&format!(
        "# check=skip=StageNameCasing,FromAsCasing,CopyIgnoredFile\n{NEEDS_CHECKS}"
    ));
    std::fs::write(dir.path().join(".dockerignore"), "*.tmp\n").unwrap();
    let (code, out, _) = cli(&["check", dir.path().to_str().unwrap()], dir.path());
    assert_eq!(code, 0);
    for skipped in ["StageNameCasing", "FromAsCasing", "CopyIgnoredFile"] {
        assert!(!out.contains(skipped), "{skipped} in {out}");
    }
    assert!(out.contains(": MaintainerDeprecated: "), "{out}");
    let dir = context(&format!("# check=skip=all;error=true\n{NEEDS_CHECKS}"));
    let (code, out, _) = cli(&["check", dir.path().to_str().unwrap()], dir.path());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("no problems"), "{out}");
}

#[test]
fn check_format_json_is_an_array_of_warnings() {
    let dir = context(NEEDS_CHECKS);
    let (code, out, err) = cli(
        &["check", "--format", "json", dir.path().to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON on stdout");
    let list = v.as_array().expect("an array");
    assert_eq!(list.len(), 5, "{out}");
    let w = &list[0];
    for field in ["rule", "message", "file", "snippet", "explanation"] {
        assert!(w[field].is_string(), "{field} in {w}");
    }
    assert_eq!(w["rule"], "FromAsCasing");
    assert_eq!(w["line"], 1);
    assert_eq!(w["column"], 14);
    assert!(w["file"].as_str().unwrap().ends_with("Dockerfile"));
    assert_eq!(w["snippet"], "FROM busybox as Build");
}

#[test]
fn check_and_build_check_fail_with_error_true() {
    let dir = context(&format!("# check=error=true\n{NEEDS_CHECKS}"));
    let ctx = dir.path().to_str().unwrap();
    let (code, out, _) = cli(&["check", ctx], dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("check=error=true"), "{out}");
    let (code, out, err) = cli(&["build", "--check", ctx], dir.path());
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains(": MaintainerDeprecated: "), "{out}");
    // The BUILDKIT_DOCKERFILE_CHECK build arg overrides the directive.
    let (code, out, err) = cli(
        &[
            "build",
            "--check",
            "--build-arg",
            "BUILDKIT_DOCKERFILE_CHECK=skip=MaintainerDeprecated",
            ctx,
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!out.contains("MaintainerDeprecated"), "{out}");
    assert!(!err.contains("not consumed"), "{err}");
    // A plain build stops before any step, as BuildKit does.
    let (code, _, err) = cli(&["build", "-q", "-t", "x", ctx], dir.path());
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("build checks failed"), "{err}");
    assert!(
        !dir.path().join("store").exists(),
        "nothing was built: {err}"
    );
}

#[test]
fn build_check_runs_no_build_and_names_unconsumed_build_args() {
    let dir = context(NEEDS_CHECKS);
    let ctx = dir.path().to_str().unwrap();
    let (code, out, err) = cli(
        &[
            "build",
            "--check",
            "--build-arg",
            "NOT_DECLARED=1",
            "-t",
            "x",
            ctx,
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains(": StageNameCasing: "), "{out}");
    assert!(
        err.contains("[Warning] One or more build-args [NOT_DECLARED] were not consumed"),
        "{err}"
    );
    assert!(!dir.path().join("store").exists(), "--check must not build");
    // A Dockerfile that does not plan is an error (exit 1), with the checks
    // that still apply.
    let dir = context("FROM busybox:$TAG\n");
    let (code, out, err) = cli(
        &["build", "--check", dir.path().to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains("UndefinedArgInFrom: FROM argument 'TAG' is not declared"),
        "{out}"
    );
    assert!(err.contains("invalid reference format"), "{err}");
}

#[test]
fn build_prints_warnings_before_the_steps_and_check_reads_base_env_from_the_store() {
    let dir = context("FROM scratch\nMAINTAINER me\nENV FROM_IMAGE=1\n");
    let ctx = dir.path().to_str().unwrap();
    let (code, out, err) = cli(
        &["build", "--progress", "plain", "-t", "lint-base", ctx],
        dir.path(),
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let warn = err.find("warning: ").expect("a warning on stderr");
    assert!(err.contains(": MaintainerDeprecated: "), "{err}");
    let first_step = err.find("#1 ").expect("steps on stderr");
    assert!(warn < first_step, "warnings come first: {err}");
    // The base image is in the store now: its ENV counts as defined.
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM lint-base\nWORKDIR /$FROM_IMAGE/$NOPE\n",
    )
    .unwrap();
    let (code, out, _) = cli(&["check", ctx], dir.path());
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("UndefinedVar: Usage of undefined variable '$NOPE'"),
        "{out}"
    );
    assert!(!out.contains("'$FROM_IMAGE'"), "{out}");
    // And its platform: an amd64 image for an arm64 stage.
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM --platform=linux/arm64 lint-base AS on-arm64\n",
    )
    .unwrap();
    let (code, out, _) = cli(&["check", ctx], dir.path());
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Dockerfile:1:29: InvalidBaseImagePlatform: Base image lint-base was pulled with platform \"linux/amd64\", expected \"linux/arm64\""),
        "{out}"
    );
}
