//! Shared helpers for the conformance tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The conformance corpus: `STRATA_CONFORMANCE_DIR`, else `shared/conformance`
/// beside the repository. Missing data is a loud failure, never a pass.
pub fn conformance_dir() -> PathBuf {
    let dir = std::env::var_os("STRATA_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/conformance"
            ))
        });
    assert!(
        dir.is_dir(),
        "conformance data missing: looked in {} (set STRATA_CONFORMANCE_DIR to the corpus folder)",
        dir.display()
    );
    dir
}

pub fn read(rel: &str) -> String {
    let p = conformance_dir().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

pub fn json(rel: &str) -> serde_json::Value {
    serde_json::from_str(&read(rel)).unwrap_or_else(|e| panic!("bad JSON in {rel}: {e}"))
}

/// Prints `name passed/total` and fails listing every failure.
pub fn report(name: &str, total: usize, failures: &[String]) {
    println!("{name} {}/{total}", total - failures.len());
    assert!(total > 0, "{name}: no cases found");
    assert!(
        failures.is_empty(),
        "{name}: {} of {total} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
