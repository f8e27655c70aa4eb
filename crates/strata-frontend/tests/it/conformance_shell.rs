//! BuildKit shell-lexer conformance: envVarTest, wordsTest, expansion_cases.json.

use strata_test_support::conformance as common;

use std::collections::{BTreeMap, BTreeSet};

use common::{json, read, report};
use strata_frontend::Lexer;

#[test]
fn env_var_test() {
    if !common::available("env_var_test") {
        return;
    }
    let text = read("shell/envVarTest");
    let env: BTreeMap<&str, &str> = [
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("KOREAN", "한국어"),
        ("NULL", ""),
    ]
    .into_iter()
    .collect();
    let lookup = |k: &str| env.get(k).map(|v| v.to_string());
    let mut failures = Vec::new();
    let mut total = 0;
    for line in text.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('|').map(str::trim).collect();
        assert_eq!(fields.len(), 3, "bad row {line:?}");
        if fields[0] == "W" {
            continue;
        }
        total += 1;
        let got = Lexer::new('\\').process(fields[1], &lookup).map(|e| e.word);
        let ok = match (&got, fields[2]) {
            (Err(_), "error") => true,
            (Ok(w), want) => w == want && want != "error",
            _ => false,
        };
        if !ok {
            failures.push(format!("{line}  => {got:?}"));
        }
    }
    report("envVarTest", total, &failures);
}

#[test]
fn words_test() {
    if !common::available("words_test") {
        return;
    }
    let text = read("shell/wordsTest");
    let mut env: Vec<(String, String)> = Vec::new();
    let mut failures = Vec::new();
    let mut total = 0;
    for line in text.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with('#') {
            continue;
        }
        if let Some(def) = line.strip_prefix("ENV ") {
            let def = def.trim_start();
            let (k, v) = def.split_once('=').unwrap();
            env.retain(|(n, _)| n != k);
            env.push((k.to_string(), v.to_string()));
            continue;
        }
        let (input, want) = line.split_once('|').expect("row with |");
        let input = input.trim();
        let want: Vec<&str> = want.trim_start_matches(' ').split(',').collect();
        total += 1;
        let lookup = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let got = Lexer::new('\\').process(input, &lookup).map(|e| e.words);
        let ok = match &got {
            Err(_) => want == ["error"],
            Ok(w) => *w == want,
        };
        if !ok {
            failures.push(format!("{line}  => {got:?}"));
        }
    }
    report("wordsTest", total, &failures);
}

#[test]
fn expansion_cases() {
    if !common::available("expansion_cases") {
        return;
    }
    let data = json("shell/expansion_cases.json");
    let mut failures = Vec::new();
    let mut total = 0;
    for table in [
        "process_with_matches",
        "mandatory_vars",
        "platform_release_name",
    ] {
        for row in data[table].as_array().unwrap() {
            total += 1;
            let input = row["input"].as_str().unwrap();
            let envs: BTreeMap<String, String> = row["envs"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            let lookup = |k: &str| envs.get(k).cloned();
            let got = Lexer::new('\\').process(input, &lookup);
            let set = |key: &str| -> Option<BTreeSet<String>> {
                row.get(key).map(|v| {
                    v.as_array()
                        .unwrap()
                        .iter()
                        .map(|s| s.as_str().unwrap().to_string())
                        .collect()
                })
            };
            let ok = if row["error"].as_bool() == Some(true) {
                match &got {
                    Err(e) => row["error_contains"]
                        .as_str()
                        .is_none_or(|s| e.to_string().contains(s)),
                    Ok(_) => false,
                }
            } else {
                match &got {
                    Ok(e) => {
                        e.word == row["expected"].as_str().unwrap()
                            && set("matched").is_none_or(|m| m == e.matched)
                            && set("unmatched").is_none_or(|m| m == e.unmatched)
                    }
                    Err(_) => false,
                }
            };
            if !ok {
                failures.push(format!("{table} {input:?} envs {envs:?} => {got:?}"));
            }
        }
    }
    report("expansion_cases", total, &failures);
}
