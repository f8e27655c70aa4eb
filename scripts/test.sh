#!/usr/bin/env bash
# The whole test suite: host setup, formatting, lints, and every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-host.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo test --workspace --all-targets --no-fail-fast
# The README's newcomer path: a fresh clone, the demo twice, the
# conformance skip (see scripts/newcomer-check.sh).
scripts/newcomer-check.sh
