//! Build checks over every Dockerfile of the conformance corpus and over
//! hostile inputs: no panic, every warning names a known rule and a real
//! line of its file.

use strata_test_support::conformance as common;

use std::path::Path;

use strata_frontend::lint::RULES;
use strata_frontend::{lint, parse, plan, BuildOptions, IgnoreMatcher, LintOptions};

fn check_one(text: &str, name: &str) -> usize {
    let Ok(ast) = parse(text, name) else {
        return 0;
    };
    let p = plan(&ast, &BuildOptions::default()).ok();
    let m = IgnoreMatcher::new(&["*.md".to_string(), "docs".to_string()]).unwrap();
    let env = |_: &str| Some(vec!["HOME".to_string()]);
    let opts = LintOptions {
        ignore: Some(&m),
        image_env: Some(&env),
        image_platform: Some(&|_: &str| Some("linux/arm64".to_string())),
        check_override: None,
    };
    let Ok(report) = lint(&ast, p.as_ref(), &opts) else {
        return 0;
    };
    let lines = text.lines().count().max(1);
    for w in &report.warnings {
        assert!(RULES.iter().any(|r| r.name == w.rule), "{name}: {w}");
        assert!(w.line >= 1 && w.line <= lines, "{name}: {w}");
        assert!(w.column >= 1, "{name}: {w}");
    }
    report.warnings.len()
}

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if p
            .file_name()
            .is_some_and(|n| n.to_string_lossy().contains("Dockerfile"))
        {
            out.push(p);
        }
    }
}

#[test]
fn lint_runs_over_the_whole_corpus() {
    if !common::available("lint_runs_over_the_whole_corpus") {
        return;
    }
    let mut files = Vec::new();
    walk(&common::conformance_dir(), &mut files);
    assert!(files.len() > 20, "{files:?}");
    let mut warnings = 0;
    for f in &files {
        let text = String::from_utf8_lossy(&std::fs::read(f).unwrap()).into_owned();
        warnings += check_one(&text, &f.display().to_string());
    }
    assert!(warnings > 0, "the corpus holds some old-style Dockerfiles");
}

#[test]
fn hostile_inputs_do_not_panic() {
    let long = "x".repeat(60_000);
    let cases = [
        format!("FROM busybox AS {long}\nCOPY {long} /\n"),
        format!("FROM busybox\nENV A ${{{long}\n"),
        "FROM busybox\nENV A=${B:?oops}\nCOPY ${\n".to_string(),
        "FROM --platform= busybox AS é\nWORKDIR é/\u{1F410}\nCMD ☃\n".to_string(),
        format!("FROM busybox\nLABEL {}\n", "${a:-".repeat(200)),
        "ARG X\nFROM $X\nFROM ${X:-}\nfrom\tbusybox\tas\tB\n".to_string(),
        "FROM a AS x\nFROM x AS x\nFROM x\nONBUILD CMD hi\nHEALTHCHECK NONE\nHEALTHCHECK NONE\n"
            .to_string(),
    ];
    for (i, c) in cases.iter().enumerate() {
        check_one(c, &format!("case{i}"));
    }
}
