#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/, one at a time (each eats a core),
# each for SECONDS (default 20), and prints one line per target:
#   target seconds execs result
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]      (default: every target)
# Needs cargo-fuzz (`cargo install cargo-fuzz`). On a stable toolchain the
# sanitizer flags need RUSTC_BOOTSTRAP=1, set here. A finding is saved in
# fuzz/artifacts/<target>/ and makes the script exit 1. The corpus in
# fuzz/corpus/<target> is the seed set; new inputs go to a scratch dir so
# the committed corpus stays small (minimise with `cargo fuzz cmin`).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
export RUSTC_BOOTSTRAP=1
SECONDS_EACH=${1:-20}
shift || true
if ! cargo fuzz --help >/dev/null 2>&1; then
  echo "fuzz.sh: cargo-fuzz is not installed (cargo install cargo-fuzz); skipped" >&2
  exit 0
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi
# -max_len per target: big enough for small tars and archives.
max_len() {
  case "$1" in
    layer_apply|archive_read) echo 65536 ;;
    dockerfile|oci_json) echo 8192 ;;
    *) echo 2048 ;;
  esac
}
cargo fuzz build >&2
status=0
for t in "${targets[@]}"; do
  scratch=$(mktemp -d)
  log=$(mktemp)
  if cargo fuzz run "$t" "$scratch" "corpus/$t" -- \
      -max_total_time="$SECONDS_EACH" -max_len="$(max_len "$t")" -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    result=ok
  else
    result="FINDING (see fuzz/artifacts/$t)"
    status=1
    tail -40 "$log" >&2
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  echo "$t ${SECONDS_EACH}s $execs $result"
  rm -rf "$scratch" "$log"
done
exit $status
