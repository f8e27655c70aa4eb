use super::*;
use crate::{parse, plan, BuildOptions};

fn image_env(name: &str) -> Option<Vec<String>> {
    (name == "busybox" || name == "alpine").then(|| vec!["HOME".to_string()])
}

fn image_platform(name: &str) -> Option<String> {
    match name {
        "busybox" | "alpine" => Some("linux/amd64".to_string()),
        "armonly" => Some("linux/arm64/v8".to_string()),
        _ => None,
    }
}

fn report_with(text: &str, ignore: &[&str]) -> Report {
    let ast = parse(text, "Dockerfile").expect("parse");
    let p = plan(&ast, &BuildOptions::default()).ok();
    let patterns: Vec<String> = ignore.iter().map(|s| s.to_string()).collect();
    let m = IgnoreMatcher::new(&patterns).unwrap();
    let f: &dyn Fn(&str) -> Option<Vec<String>> = &image_env;
    let g: &dyn Fn(&str) -> Option<String> = &image_platform;
    let opts = LintOptions {
        ignore: Some(&m),
        image_env: Some(f),
        image_platform: Some(g),
        check_override: None,
    };
    lint(&ast, p.as_ref(), &opts).expect("lint")
}

fn rules_of(text: &str, ignore: &[&str]) -> Vec<&'static str> {
    report_with(text, ignore)
        .warnings
        .iter()
        .map(|w| w.rule)
        .collect()
}

/// (rule, a Dockerfile that triggers it, one that does not).
const CASES: &[(&str, &str, &str)] = &[
    ("StageNameCasing", "FROM busybox AS Build\n", "FROM busybox AS build\n"),
    ("FromAsCasing", "FROM busybox as build\n", "from busybox as build\n"),
    (
        "DuplicateStageName",
        "FROM busybox AS a\nFROM busybox AS a\n",
        "FROM busybox AS a\nFROM busybox AS b\n",
    ),
    ("ReservedStageName", "FROM busybox AS scratch\n", "FROM busybox AS base\n"),
    (
        "JSONArgsRecommended",
        "FROM busybox\nCMD echo hi\n",
        "FROM busybox\nCMD [\"echo\", \"hi\"]\nFROM busybox\nSHELL [\"/bin/sh\", \"-c\"]\nENTRYPOINT echo hi\n",
    ),
    (
        "MaintainerDeprecated",
        "FROM busybox\nMAINTAINER me <me@example.com>\n",
        "FROM busybox\nLABEL org.opencontainers.image.authors=me\n",
    ),
    (
        "UndefinedVar",
        "FROM busybox\nARG VERSION=1\nCOPY app-$VERSOIN /app\n",
        "FROM busybox\nARG VERSION\nENV DIR=/srv\nCOPY app-$VERSION $DIR/${MISSING:-x} /app$HOME\n",
    ),
    (
        "UndefinedArgInFrom",
        "FROM busybox:$TAG\n",
        "ARG TAG=1.36\nFROM --platform=$BUILDPLATFORM busybox:$TAG\n",
    ),
    (
        "ConsistentInstructionCasing",
        "FROM busybox\nRUN true\ncopy a /a\n",
        "from busybox\nrun true\ncopy a /a\n",
    ),
    (
        "MultipleInstructionsDisallowed",
        "FROM busybox\nCMD [\"a\"]\nCMD [\"b\"]\n",
        "FROM busybox\nCMD [\"a\"]\nFROM busybox\nCMD [\"b\"]\n",
    ),
    (
        "LegacyKeyValueFormat",
        "FROM busybox\nENV A 1\n",
        "FROM busybox\nENV A=1\nLABEL b=\"two words\"\n",
    ),
    (
        "WorkdirRelativePath",
        "FROM busybox\nWORKDIR app\n",
        "FROM busybox AS a\nWORKDIR /srv\nWORKDIR app\nFROM a\nWORKDIR more\n",
    ),
    (
        "SecretsUsedInArgOrEnv",
        "FROM busybox\nARG GITHUB_TOKEN\n",
        "FROM busybox\nARG PUBLIC_KEY\nENV TOKENIZER=x KEY_FILE=/k\n",
    ),
    (
        "InvalidDefaultArgInFrom",
        "ARG TAG\nFROM busybox:$TAG\n",
        "ARG TAG=1.36\nFROM busybox:$TAG\n",
    ),
    (
        "FromPlatformFlagConstDisallowed",
        "FROM --platform=linux/amd64 busybox\n",
        "FROM --platform=linux/amd64 busybox AS build-amd64\nFROM --platform=$BUILDPLATFORM busybox\n",
    ),
    (
        "InvalidBaseImagePlatform",
        "FROM armonly\n",
        "FROM busybox\nFROM --platform=linux/arm64 armonly\nFROM unknown\n",
    ),
    (
        "CopyIgnoredFile",
        "FROM busybox\nCOPY secret.txt /x\n",
        "FROM busybox AS b\nCOPY app.txt /x\nCOPY --from=b secret.txt /y\n",
    ),
    (
        "ToolchainInFinalImage",
        "FROM golang:1.19\nWORKDIR /app\nRUN go build -o /app/x\nENTRYPOINT [\"/app/x\"]\n",
        "FROM golang:1.19 AS build\nRUN go build -o /x\nFROM busybox\nCOPY --from=build /x /x\nENTRYPOINT [\"/x\"]\n",
    ),
];

#[test]
fn each_rule_triggers_and_stays_quiet() {
    for (rule, bad, good) in CASES {
        let found = rules_of(bad, &["secret.txt"]);
        assert!(
            found.contains(rule),
            "{rule}: expected in {found:?} for\n{bad}"
        );
        let found = rules_of(good, &["secret.txt"]);
        assert!(
            !found.contains(rule),
            "{rule}: unexpected in {found:?} for\n{good}"
        );
    }
}

#[test]
fn every_rule_has_a_case_and_an_explanation() {
    for r in RULES {
        assert!(CASES.iter().any(|(n, _, _)| n == &r.name), "{}", r.name);
        assert!(!r.explanation.is_empty() && !r.explanation.contains("http"));
    }
}

#[test]
fn a_tidy_dockerfile_has_no_warnings() {
    let text = "ARG TAG=1.36\nFROM busybox:$TAG AS build\nWORKDIR /src\nCOPY app.txt .\n\
                FROM scratch\nCOPY --from=build /src/app.txt /\nENTRYPOINT [\"/app\"]\n";
    assert_eq!(report_with(text, &["secret.txt"]).warnings, vec![]);
}

#[test]
fn warnings_carry_location_snippet_and_message() {
    let r = report_with("FROM busybox\nARG V=1\nCOPY a-${VV} /x\n", &[]);
    let w = &r.warnings[0];
    assert_eq!(w.rule, "UndefinedVar");
    assert_eq!(
        w.message,
        "Usage of undefined variable '$VV' (did you mean $V?)"
    );
    assert_eq!((w.file.as_str(), w.line, w.column), ("Dockerfile", 3, 8));
    assert_eq!(w.snippet, "COPY a-${VV} /x");
    let shown = w.to_string();
    assert!(
        shown.starts_with("Dockerfile:3:8: UndefinedVar: "),
        "{shown}"
    );
}

#[test]
fn multiple_instructions_points_at_the_ignored_one() {
    let r = report_with("FROM busybox\nCMD [\"a\"]\nCMD [\"b\"]\n", &[]);
    assert_eq!(r.warnings.len(), 1);
    assert_eq!(r.warnings[0].line, 2);
}

#[test]
fn undefined_var_is_quiet_when_the_base_env_is_unknown() {
    assert!(!rules_of("FROM debian\nWORKDIR $GOPATH\n", &[]).contains(&"UndefinedVar"));
    assert!(rules_of("FROM scratch\nWORKDIR $GOPATH\n", &[]).contains(&"UndefinedVar"));
    // A stage built on a stage inherits its ENV and ARGs.
    let text = "FROM busybox AS a\nENV X=1\nFROM a\nWORKDIR /$X\n";
    assert!(!rules_of(text, &[]).contains(&"UndefinedVar"));
}

#[test]
fn check_directive_skips_rules_and_sets_error() {
    let bad = "FROM busybox as Build\nMAINTAINER me\n";
    let all = rules_of(bad, &[]);
    assert!(all.contains(&"FromAsCasing") && all.contains(&"StageNameCasing"));
    let r = report_with(
        &format!("# check=skip=FromAsCasing,StageNameCasing;error=true\n{bad}"),
        &[],
    );
    let rules: Vec<_> = r.warnings.iter().map(|w| w.rule).collect();
    assert_eq!(rules, vec!["MaintainerDeprecated"]);
    assert!(r.config.error && r.fails());
    let r = report_with(&format!("# check=skip=all\n{bad}"), &[]);
    assert!(r.warnings.is_empty() && !r.fails());
    let r = report_with(&format!("# check=error=false\n{bad}"), &[]);
    assert!(!r.warnings.is_empty() && !r.fails());
}

#[test]
fn a_bad_check_directive_is_a_located_error() {
    let ast = parse("# check=skip\nFROM busybox\n", "Dockerfile").unwrap();
    let p = plan(&ast, &BuildOptions::default()).unwrap();
    let e = lint(&ast, Some(&p), &LintOptions::default()).unwrap_err();
    assert!(
        e.to_string()
            .contains("Dockerfile:1:1: invalid check option"),
        "{e}"
    );
}

#[test]
fn copy_ignored_file_is_quiet_with_exclusions() {
    let text = "FROM busybox\nCOPY secret.txt /x\n";
    assert!(rules_of(text, &["secret.txt"]).contains(&"CopyIgnoredFile"));
    assert!(!rules_of(text, &["secret.txt", "!keep"]).contains(&"CopyIgnoredFile"));
    // A parent directory that is ignored hides the file too.
    assert!(rules_of("FROM busybox\nCOPY docs/a.md /x\n", &["docs"]).contains(&"CopyIgnoredFile"));
}

#[test]
fn secret_names_follow_buildkit_tokens() {
    for yes in [
        "API_KEY",
        "apikey",
        "db_password",
        "AUTH",
        "aws_secret_access_key",
    ] {
        assert!(vars::looks_secret(yes), "{yes}");
    }
    for no in [
        "KEYS",
        "TOKENIZER",
        "PUBLIC_KEY",
        "GPG_KEY_FILE",
        "NODE_VERSION",
        "HOME",
    ] {
        assert!(!vars::looks_secret(no), "{no}");
    }
}

#[test]
fn the_check_build_arg_overrides_the_directive() {
    let text = "# check=error=true\nFROM busybox\nMAINTAINER me\nCMD echo hi\n";
    let ast = parse(text, "Dockerfile").unwrap();
    let p = plan(&ast, &BuildOptions::default()).unwrap();
    let opts = LintOptions {
        check_override: Some("skip=MaintainerDeprecated"),
        ..LintOptions::default()
    };
    let r = lint(&ast, Some(&p), &opts).unwrap();
    let rules: Vec<_> = r.warnings.iter().map(|w| w.rule).collect();
    assert_eq!(rules, vec!["JSONArgsRecommended"]);
    assert!(
        !r.fails(),
        "error=true came from the directive, which is overridden"
    );
    let opts = LintOptions {
        check_override: Some("nonsense"),
        ..LintOptions::default()
    };
    let e = lint(&ast, Some(&p), &opts).unwrap_err().to_string();
    assert!(e.contains("BUILDKIT_DOCKERFILE_CHECK"), "{e}");
}
