//! Errors as the CLI prints them, for tests that check a cause is shown
//! once.

/// The message and its causes joined by `": "`, as `anyhow`'s `{:#}`
/// prints them (no deduplication: a cause repeated in its parent's message
/// shows twice, which is what the tests look for).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    std::iter::successors(Some(e), |e| e.source())
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}
