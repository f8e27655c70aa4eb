#!/usr/bin/env bash
# The newcomer's path, followed as written in the README: a fresh clone
# (no ../shared beside it), the demo twice, then the conformance suite
# skipping loudly. Run by scripts/test.sh (so by CI); as root on Debian 12.
#
#   scripts/newcomer-check.sh     clones HEAD of this repository into a temp dir
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

WORK=$(mktemp -d /var/tmp/strata-newcomer.XXXXXX)
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
say() { printf 'newcomer-check: %s\n' "$*"; }

# 1. git clone, as the README says (a directory with no ../shared beside it).
git clone -q "$REPO" "$WORK/strata"
cd "$WORK/strata"
[ ! -e ../shared ] || { say "unexpected ../shared beside the clone"; exit 1; }

# The clone builds into the suite's target dir (same sources, so cargo
# reuses what it can) and keeps its own store.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
export STRATA_ROOT=$WORK/store
STRATA=$CARGO_TARGET_DIR/release/strata

# 2. The demo, twice: the second run must reuse the bases and the cache
#    (same image IDs) and leave no dangling image.
scripts/demo.sh >"$WORK/demo1.log" 2>&1 || { tail -40 "$WORK/demo1.log"; say "demo failed"; exit 1; }
grep -q "import them with" "$WORK/demo1.log" && { say "the demo printed the rootfs helper's hints"; exit 1; }
grep -q "Try next:" "$WORK/demo1.log" || { say "the demo did not say what to try next"; exit 1; }
ids1=$("$STRATA" images -q --no-trunc | sort)
scripts/demo.sh >"$WORK/demo2.log" 2>&1 || { tail -40 "$WORK/demo2.log"; say "second demo failed"; exit 1; }
ids2=$("$STRATA" images -q --no-trunc | sort)
[ "$ids1" = "$ids2" ] || { say "the second demo changed image IDs:"; diff <(echo "$ids1") <(echo "$ids2") || true; exit 1; }
dangling=$("$STRATA" images -q --filter dangling=true)
[ -z "$dangling" ] || { say "dangling images after two demos: $dangling"; exit 1; }
"$STRATA" --version | grep -Eq '^strata [0-9]' || { say "strata --version: $("$STRATA" --version)"; exit 1; }

# 3. Without ../shared the conformance suites skip, loudly, and pass;
#    with STRATA_REQUIRE_CONFORMANCE=1 they fail.
out=$(env -u STRATA_REQUIRE_CONFORMANCE -u STRATA_CONFORMANCE_DIR \
  cargo test -q -p strata-frontend --test it conformance_parser:: 2>&1) || { echo "$out" | tail -20; say "conformance suite failed without ../shared"; exit 1; }
echo "$out" | grep -q "SKIPPED" || { say "no SKIPPED message from the conformance suite without ../shared"; exit 1; }
if env -u STRATA_CONFORMANCE_DIR STRATA_REQUIRE_CONFORMANCE=1 \
  cargo test -q -p strata-frontend --test it conformance_parser:: >/dev/null 2>&1; then
  say "STRATA_REQUIRE_CONFORMANCE=1 did not turn the skip into a failure"; exit 1
fi
say "ok: clone, demo twice (same IDs, nothing dangling), conformance skip and require"
