//! BuildKit parser conformance: `result` dumps, negative cases, line
//! numbers, heredocs, JSON arrays and directives.

use strata_test_support::conformance as common;

use common::{conformance_dir, json, read, report};
use strata_frontend::parser::{detect_directive, heredocs_from_line, parse_heredoc};
use strata_frontend::{parse, Ast};

fn parse_file(rel: &str) -> Ast {
    let text = read(rel);
    parse(&text, rel).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn result_dumps_match_byte_for_byte() {
    if !common::available("result_dumps_match_byte_for_byte") {
        return;
    }
    let dir = conformance_dir().join("parser/testfiles");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read(case.join("Dockerfile")).unwrap();
        let text = String::from_utf8_lossy(&text);
        let expected = std::fs::read_to_string(case.join("result")).unwrap();
        match parse(&text, "Dockerfile") {
            Ok(ast) if ast.dump() == expected => {}
            Ok(ast) => failures.push(format!(
                "{name}:\n--- expected\n{expected}--- got\n{}",
                ast.dump()
            )),
            Err(e) => failures.push(format!("{name}: parse error {e}")),
        }
    }
    assert_eq!(
        cases.len(),
        33,
        "expected 33 parser cases in {}",
        dir.display()
    );
    report("parser", cases.len(), &failures);
}

#[test]
fn negative_cases_are_rejected() {
    if !common::available("negative_cases_are_rejected") {
        return;
    }
    let dir = conformance_dir().join("parser/testfiles-negative");
    let mut failures = Vec::new();
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let case = e.unwrap().path();
        n += 1;
        let text = std::fs::read_to_string(case.join("Dockerfile")).unwrap();
        if let Ok(ast) = parse(&text, "Dockerfile") {
            failures.push(format!("{}: accepted: {}", case.display(), ast.dump()));
        }
    }
    assert_eq!(n, 4);
    report("parser-negative", n, &failures);
}

#[test]
fn line_numbers() {
    if !common::available("line_numbers") {
        return;
    }
    let ast = parse_file("parser/testfile-line/Dockerfile");
    let exp = json("parser/testfile-line/expected_lines.json");
    let mut failures = Vec::new();
    let children = exp["children"].as_array().unwrap();
    if ast.children.len() != children.len() {
        failures.push(format!(
            "{} instructions, expected {}",
            ast.children.len(),
            children.len()
        ));
    }
    for (i, (node, want)) in ast.children.iter().zip(children).enumerate() {
        let (s, e) = (
            want["StartLine"].as_u64().unwrap() as usize,
            want["EndLine"].as_u64().unwrap() as usize,
        );
        if node.location.line != s || node.location.end_line != e {
            failures.push(format!(
                "child {i}: lines {}..{}, expected {s}..{e}",
                node.location.line, node.location.end_line
            ));
        }
    }
    let root = &exp["root"];
    let first = ast.children.first().map(|n| n.location.line);
    let last = ast.children.last().map(|n| n.location.end_line);
    if first != root["StartLine"].as_u64().map(|v| v as usize)
        || last != root["EndLine"].as_u64().map(|v| v as usize)
    {
        failures.push(format!("root span {first:?}..{last:?}"));
    }
    assert_eq!(ast.directives.len(), 1, "the ESCAPE directive");
    report("testfile-line", children.len() + 1, &failures);
}

#[test]
fn heredocs() {
    if !common::available("heredocs") {
        return;
    }
    let exp = json("parser/heredoc/expected.json");
    let ast = parse_file("parser/heredoc/Dockerfile");
    let mut failures = Vec::new();
    let mut total = 0;
    for inst in exp["instructions"].as_array().unwrap() {
        total += 1;
        let idx = inst["index"].as_u64().unwrap() as usize;
        let Some(node) = ast.children.get(idx) else {
            failures.push(format!("missing instruction {idx}"));
            continue;
        };
        if node.original != inst["line"].as_str().unwrap() {
            failures.push(format!(
                "{idx}: line {:?}, expected {}",
                node.original, inst["line"]
            ));
        }
        let got = serde_json::to_value(
            node.heredocs
                .iter()
                .map(|h| {
                    serde_json::json!({"Name": h.name, "FileDescriptor": h.file_descriptor,
                        "Expand": h.expand, "Chomp": h.chomp, "Content": h.content})
                })
                .collect::<Vec<_>>(),
        )
        .unwrap();
        let want = if inst["heredocs"].is_null() {
            serde_json::json!([])
        } else {
            inst["heredocs"].clone()
        };
        if got != want {
            failures.push(format!(
                "{idx} {}: got {got}, expected {want}",
                inst["line"]
            ));
        }
    }
    if ast.children.len() != total {
        failures.push(format!(
            "{} instructions, expected {total}",
            ast.children.len()
        ));
    }
    // JSON form never carries heredocs.
    let jf = parse_file("parser/heredoc/Dockerfile.json-form");
    total += 1;
    if jf.children.iter().any(|n| !n.heredocs.is_empty()) {
        failures.push("json-form: exec form got heredocs".into());
    }
    // Word-level cases.
    let words = &exp["ParseHeredoc_word_cases"];
    for w in words["valid_name_EOF"].as_array().unwrap() {
        total += 1;
        match parse_heredoc(w.as_str().unwrap()) {
            Ok(Some(h)) if h.name == "EOF" => {}
            other => failures.push(format!("ParseHeredoc({w}) = {other:?}, expected EOF")),
        }
    }
    for w in words["error"].as_array().unwrap() {
        total += 1;
        if parse_heredoc(w.as_str().unwrap()).is_ok() {
            failures.push(format!("ParseHeredoc({w}) should fail"));
        }
    }
    for w in words["not_a_heredoc"].as_array().unwrap() {
        total += 1;
        if !matches!(parse_heredoc(w.as_str().unwrap()), Ok(None)) {
            failures.push(format!("ParseHeredoc({w}) should be no heredoc"));
        }
    }
    for case in exp["heredocsFromLine_cases"]["cases"].as_array().unwrap() {
        total += 1;
        let line = case[0].as_str().unwrap();
        let want: Vec<&str> = case[1]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let got: Vec<String> = heredocs_from_line(line)
            .unwrap()
            .into_iter()
            .map(|h| h.name)
            .collect();
        if got != want {
            failures.push(format!(
                "heredocsFromLine({line:?}) = {got:?}, expected {want:?}"
            ));
        }
    }
    total += 1;
    let c = &exp["chomp_case"];
    if strata_frontend::parser::chomp(c["input"].as_str().unwrap()) != c["output"].as_str().unwrap()
    {
        failures.push("chomp".into());
    }
    report("heredoc", total, &failures);
}

#[test]
fn json_arrays() {
    if !common::available("json_arrays") {
        return;
    }
    let exp = json("parser/json_arrays.json");
    let mut failures = Vec::new();
    let mut total = 0;
    for case in exp["valid"].as_array().unwrap() {
        total += 1;
        let input = case["input"].as_str().unwrap();
        let want: Vec<&str> = case["expect"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        match parse(&format!("CMD {input}\n"), "Dockerfile") {
            Ok(ast) if ast.children[0].json && ast.children[0].args == want => {}
            other => failures.push(format!("{input:?}: {other:?}")),
        }
    }
    for case in exp["not_string_array"].as_array().unwrap() {
        total += 1;
        let input = case.as_str().unwrap();
        if parse(&format!("CMD {input}\n"), "Dockerfile").is_ok() {
            failures.push(format!("{input:?} should be rejected"));
        }
    }
    report("json_arrays", total, &failures);
}

#[test]
fn directives() {
    if !common::available("directives") {
        return;
    }
    let exp = json("parser/directives.json");
    let mut failures = Vec::new();
    let mut total = 0;
    for case in exp["parse_all"].as_array().unwrap() {
        total += 1;
        let input = format!("{}FROM scratch\n", case["input"].as_str().unwrap());
        let ast = parse(&input, "Dockerfile").unwrap();
        let got: Vec<serde_json::Value> = ast
            .directives
            .iter()
            .map(|d| serde_json::json!({"name": d.name, "value": d.value}))
            .collect();
        if serde_json::Value::Array(got.clone()) != case["expect"] {
            failures.push(format!("{:?}: {got:?}", case["input"]));
        }
    }
    for (key, name) in [
        ("detect_syntax", "syntax"),
        ("parse_directive_check", "check"),
    ] {
        for case in exp[key].as_array().unwrap() {
            total += 1;
            let input = case["input"].as_str().unwrap();
            let got = detect_directive(input, name);
            let found = case["found"].as_bool().unwrap();
            let ok = match &got {
                None => !found,
                Some(d) => {
                    found
                        && case
                            .get("ref")
                            .is_none_or(|r| r.as_str() == Some(d.reference.as_str()))
                        && case
                            .get("cmdline")
                            .is_none_or(|r| r.as_str() == Some(d.cmdline.as_str()))
                        && case
                            .get("line")
                            .is_none_or(|r| r.as_u64() == Some(d.line as u64))
                }
            };
            if !ok {
                failures.push(format!("{key} {input:?}: {got:?}"));
            }
        }
    }
    // Directive errors: repeated directive, bad escape token.
    for bad in [
        "# escape=\\\n# escape=`\nFROM a\n",
        "# escape=x\nFROM a\n",
        "# syntax=a\n#syntax=b\nFROM a\n",
    ] {
        total += 1;
        if parse(bad, "Dockerfile").is_ok() {
            failures.push(format!("{bad:?} should be rejected"));
        }
    }
    report("directives", total, &failures);
}

#[test]
fn missing_corpus_skips_unless_required() {
    let missing = std::path::Path::new("/nonexistent/strata-conformance");
    assert!(!common::corpus_available("probe", missing, false));
    let required = std::panic::catch_unwind(|| common::corpus_available("probe", missing, true));
    assert!(
        required.is_err(),
        "a required corpus that is missing must fail"
    );
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(common::corpus_available("probe", here, true));
}
