//! moby/patternmatcher conformance: matches.tsv, matches_multi.tsv,
//! pattern_list_cases.json, ignorefile_readall, compile.tsv (match kinds).

use strata_test_support::conformance as common;

use common::{json, read, report};
use strata_frontend::{parse_dockerignore, IgnoreMatcher};

fn rows(rel: &str) -> Vec<Vec<String>> {
    read(rel)
        .lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| l.split('\t').map(String::from).collect())
        .collect()
}

fn run(patterns: &[String], path: &str) -> Result<bool, String> {
    let m = IgnoreMatcher::new(patterns).map_err(|e| e.to_string())?;
    let first = m.matches(path).map_err(|e| e.to_string());
    // Asking twice must give the same answer (the malformed-pattern case).
    let second = m.matches(path).map_err(|e| e.to_string());
    assert_eq!(first.is_ok(), second.is_ok());
    first
}

fn check(got: Result<bool, String>, want: &str) -> bool {
    match (got, want) {
        (Err(_), "error") => true,
        (Ok(b), "true") => b,
        (Ok(b), "false") => !b,
        _ => false,
    }
}

#[test]
fn matches_single() {
    if !common::available("matches_single") {
        return;
    }
    let mut failures = Vec::new();
    let rows = rows("dockerignore/matches.tsv");
    for r in &rows {
        let got = run(&[r[0].clone()], &r[1]);
        if !check(got.clone(), &r[2]) {
            failures.push(format!(
                "{:?} vs {:?}: expected {}, got {got:?}",
                r[0], r[1], r[2]
            ));
        }
    }
    report("matches.tsv", rows.len(), &failures);
}

#[test]
fn matches_multi() {
    if !common::available("matches_multi") {
        return;
    }
    let mut failures = Vec::new();
    let rows = rows("dockerignore/matches_multi.tsv");
    for r in &rows {
        let pats: Vec<String> = serde_json::from_str(&r[0]).unwrap();
        let got = run(&pats, &r[1]);
        if !check(got.clone(), &r[2]) {
            failures.push(format!(
                "{pats:?} vs {:?}: expected {}, got {got:?}",
                r[1], r[2]
            ));
        }
    }
    report("matches_multi.tsv", rows.len(), &failures);
}

#[test]
fn pattern_lists() {
    if !common::available("pattern_lists") {
        return;
    }
    let data = json("dockerignore/pattern_list_cases.json");
    let mut failures = Vec::new();
    let cases = data["cases"].as_array().unwrap();
    for c in cases {
        let pats: Vec<String> = serde_json::from_value(c["patterns"].clone()).unwrap();
        let m = IgnoreMatcher::new(&pats);
        let ok = if c["expect_error"].as_bool() == Some(true) {
            m.is_err()
        } else {
            match m {
                Ok(m) => {
                    c["expect_pattern_count"]
                        .as_u64()
                        .is_none_or(|n| n as usize == m.len())
                        && c["expect_has_exclusions"]
                            .as_bool()
                            .is_none_or(|x| x == m.has_exclusions())
                }
                Err(_) => false,
            }
        };
        if !ok {
            failures.push(format!("{pats:?}"));
        }
    }
    report("pattern_list_cases", cases.len(), &failures);
}

#[test]
fn ignorefile_readall() {
    if !common::available("ignorefile_readall") {
        return;
    }
    let input = read("dockerignore/ignorefile_readall/input.dockerignore");
    let want: Vec<String> = read("dockerignore/ignorefile_readall/expected_patterns.txt")
        .lines()
        .map(String::from)
        .collect();
    let got = parse_dockerignore(&input);
    let failures = if got == want {
        vec![]
    } else {
        vec![format!("got {got:?}, expected {want:?}")]
    };
    report("ignorefile_readall", 1, &failures);
}

#[test]
fn compile_table_patterns_are_accepted() {
    if !common::available("compile_table_patterns_are_accepted") {
        return;
    }
    // compile.tsv lists patterns the Go code compiles; all must be accepted.
    let rows = rows("dockerignore/compile.tsv");
    let mut failures = Vec::new();
    for r in &rows {
        if let Err(e) = IgnoreMatcher::new(&[r[0].clone()]) {
            failures.push(format!("{:?}: {e}", r[0]));
        }
    }
    report("compile.tsv", rows.len(), &failures);
}
