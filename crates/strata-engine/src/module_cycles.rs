//! The engine's modules form no cycle: a lower module never reaches back
//! to one that uses it (the build, a stage, a step). Checked from the
//! sources: every `crate::NAME` path (and `super::NAME` inside `steps/`)
//! outside comments and test code is an edge; `steps/*` files are nodes
//! of their own, other directories one node each.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The node a source file belongs to: its top-level module, or
/// `steps/FILE` for the step families.
fn node_of(rel: &Path) -> String {
    let parts: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    match parts.as_slice() {
        [dir, file] if dir == "steps" && file != "mod" => format!("steps/{file}"),
        [first, ..] => first.clone(),
        [] => String::new(),
    }
}

/// The code of a file without comments and without its test module.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The identifiers following each occurrence of `prefix` (`crate::`).
fn paths_after<'a>(code: &'a str, prefix: &str) -> Vec<(&'a str, Option<&'a str>)> {
    let ident = |s: &'a str| {
        let end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(s.len());
        &s[..end]
    };
    code.match_indices(prefix)
        .map(|(i, _)| {
            let rest = &code[i + prefix.len()..];
            let first = ident(rest);
            let second = rest[first.len()..].strip_prefix("::").map(ident);
            (first, second)
        })
        .collect()
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs")
            && p.file_name().is_some_and(|n| n != "tests.rs")
        {
            out.push(p);
        }
    }
}

fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut all = Vec::new();
    files(src, &mut all);
    let step_files: BTreeSet<String> = all
        .iter()
        .map(|p| node_of(p.strip_prefix(src).unwrap()))
        .filter(|n| n.starts_with("steps/"))
        .collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for p in &all {
        let from = node_of(p.strip_prefix(src).unwrap());
        let code = code(&std::fs::read_to_string(p).unwrap());
        let mut targets = Vec::new();
        for (first, second) in paths_after(&code, "crate::") {
            let step = second.map(|s| format!("steps/{s}"));
            match step {
                Some(s) if first == "steps" && step_files.contains(&s) => targets.push(s),
                _ => targets.push(first.to_string()),
            }
        }
        if from.starts_with("steps/") {
            for (first, _) in paths_after(&code, "super::") {
                let s = format!("steps/{first}");
                targets.push(if step_files.contains(&s) {
                    s
                } else {
                    "steps".into()
                });
            }
        }
        for t in targets {
            if t != from && !t.is_empty() {
                edges.entry(from.clone()).or_default().insert(t);
            }
        }
    }
    edges
}

/// A cycle through `start`, if any (depth-first).
fn cycle_from(edges: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_string(), vec![start.to_string()])];
    let mut seen = BTreeSet::new();
    while let Some((node, path)) = stack.pop() {
        for next in edges.get(&node).into_iter().flatten() {
            if next == start {
                let mut cycle = path.clone();
                cycle.push(start.to_string());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut p = path.clone();
                p.push(next.clone());
                stack.push((next.clone(), p));
            }
        }
    }
    None
}

#[test]
fn the_engine_has_no_module_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = graph(&src);
    // The graph is real: the build reaches the steps through the stages.
    assert!(edges["build"].contains("stage") || edges["build"].contains("pass"));
    assert!(edges["solve"].contains("steps"));
    for node in edges.keys() {
        if let Some(cycle) = cycle_from(&edges, node) {
            panic!("module cycle: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn a_cycle_is_found() {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    edges.entry("a".into()).or_default().insert("b".into());
    edges.entry("b".into()).or_default().insert("c".into());
    assert_eq!(cycle_from(&edges, "a"), None);
    edges.entry("c".into()).or_default().insert("a".into());
    assert_eq!(
        cycle_from(&edges, "a").unwrap(),
        ["a", "b", "c", "a"].map(String::from)
    );
}
