//! Shared helpers for the conformance tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// Where the corpus should be: `STRATA_CONFORMANCE_DIR`, else
/// `shared/conformance` beside the repository.
pub(crate) fn corpus_path() -> PathBuf {
    std::env::var_os("STRATA_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/conformance"
            ))
        })
}

/// Whether the corpus is there. When it is missing, prints a loud
/// `SKIPPED` line to stderr and returns false (the caller returns without
/// failing), unless `STRATA_REQUIRE_CONFORMANCE=1` (CI): then it fails.
pub(crate) fn available(test: &str) -> bool {
    corpus_available(test, &corpus_path(), require_conformance())
}

/// `STRATA_REQUIRE_CONFORMANCE=1` (or `true`): a missing corpus is a failure.
pub(crate) fn require_conformance() -> bool {
    std::env::var("STRATA_REQUIRE_CONFORMANCE")
        .is_ok_and(|v| matches!(v.trim(), "1" | "true" | "yes"))
}

/// The decision behind [`available`], with its inputs explicit (for testing).
pub(crate) fn corpus_available(test: &str, dir: &std::path::Path, required: bool) -> bool {
    if dir.is_dir() {
        return true;
    }
    assert!(
        !required,
        "{test}: conformance data missing at {} (set STRATA_CONFORMANCE_DIR to the corpus folder; \
         STRATA_REQUIRE_CONFORMANCE=1 makes this a failure)",
        dir.display()
    );
    // Written to the real stderr (not `eprintln!`, which the test harness
    // captures and hides for passing tests): a skip must be seen.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED {test}: conformance data missing at {} (set STRATA_CONFORMANCE_DIR) ***\n",
        dir.display()
    );
    false
}

/// The conformance corpus. Call [`available`] first: a missing corpus here
/// is a failure, never a pass.
pub(crate) fn conformance_dir() -> PathBuf {
    let dir = corpus_path();
    assert!(
        dir.is_dir(),
        "conformance data missing: looked in {} (set STRATA_CONFORMANCE_DIR to the corpus folder)",
        dir.display()
    );
    dir
}

pub(crate) fn read(rel: &str) -> String {
    let p = conformance_dir().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

pub(crate) fn json(rel: &str) -> serde_json::Value {
    serde_json::from_str(&read(rel)).unwrap_or_else(|e| panic!("bad JSON in {rel}: {e}"))
}

/// Prints `name passed/total` and fails listing every failure.
pub(crate) fn report(name: &str, total: usize, failures: &[String]) {
    println!("{name} {}/{total}", total - failures.len());
    assert!(total > 0, "{name}: no cases found");
    assert!(
        failures.is_empty(),
        "{name}: {} of {total} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
