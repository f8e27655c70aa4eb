#!/usr/bin/env bash
# bench/first-use.sh — the first build on a freshly loaded big base: load a
# docker-archive into an empty store, then time `FROM base` + `RUN true`
# (the base's layers are unpacked by that build), against Docker's classic
# builder (`docker load`, then `DOCKER_BUILDKIT=0 docker build`).
#
#   bench/first-use.sh ARCHIVE TAG RUNS STRATA_BIN [STRATA_BIN...]
#
# ARCHIVE is a `docker save` archive whose image is tagged TAG (e.g. the
# synthetic Go base of the "first use of a freshly loaded base" section of
# bench/profile.md). Every run starts from nothing: a new strata root, or
# for Docker the image and the build's result removed; then the load and
# the build are timed apart. Runs alternate between the tools (so a busy
# spell of the shared machine hits all of them). Prints one line per run
# (tool, run, load s, build s, strata's build CPU s = user + system; Docker's
# work is in dockerd) and a median/min summary per tool; the
# FROM and RUN step times of the last strata run of each binary are kept in
# $WORK/plain-N.txt.
set -euo pipefail
ARCHIVE=$(readlink -f "$1") TAG=$2 RUNS=$3
shift 3
WORK=${WORK:-/tmp/first-use-bench}
mkdir -p "$WORK/ctx"
printf 'FROM %s\nRUN true\n' "$TAG" >"$WORK/ctx/Dockerfile"
OUT=$WORK/runs.tsv
: >"$OUT"
now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc; }

for run in $(seq 1 "$RUNS"); do
  i=0
  for bin in "$@"; do
    i=$((i + 1))
    rm -rf "$WORK/root"
    sync
    t0=$(now)
    "$bin" --root "$WORK/root" load -i "$ARCHIVE" >/dev/null
    sync
    t1=$(now)
    /usr/bin/time -o "$WORK/cpu" -f '%U %S' \
      "$bin" --root "$WORK/root" build --progress plain -t first-use "$WORK/ctx" 2>"$WORK/plain-$i.txt"
    t2=$(now)
    cpu=$(awk '{print $1 + $2}' "$WORK/cpu")
    printf 'strata-%s\t%s\t%s\t%s\t%s\n' "$i" "$run" "$(elapsed "$t0" "$t1")" "$(elapsed "$t1" "$t2")" "$cpu" | tee -a "$OUT"
  done
  # Docker: only our own two tags are removed.
  docker rmi -f first-use-bench:latest "$TAG" >/dev/null 2>&1 || true
  sync
  t0=$(now)
  docker load -i "$ARCHIVE" >/dev/null
  sync
  t1=$(now)
  DOCKER_BUILDKIT=0 docker build -q -t first-use-bench:latest "$WORK/ctx" >/dev/null
  t2=$(now)
  printf 'docker\t%s\t%s\t%s\t-\n' "$run" "$(elapsed "$t0" "$t1")" "$(elapsed "$t1" "$t2")" | tee -a "$OUT"
done
rm -rf "$WORK/root"
docker rmi -f first-use-bench:latest "$TAG" >/dev/null 2>&1 || true

python3 - "$OUT" "$@" <<'PY'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
names = {f"strata-{i+1}": b for i, b in enumerate(sys.argv[2:])}
print("tool\tload median (min)\tfirst build median (min)\tload+build median (min)\tbuild CPU median")
for tool in dict.fromkeys(r[0] for r in rows):
    load = [float(r[2]) for r in rows if r[0] == tool]
    build = [float(r[3]) for r in rows if r[0] == tool]
    cpu = [float(r[4]) for r in rows if r[0] == tool and r[4] != "-"]
    both = [a + b for a, b in zip(load, build)]
    print(f"{tool} {names.get(tool, '')}\t{statistics.median(load):.2f} ({min(load):.2f})\t"
          f"{statistics.median(build):.2f} ({min(build):.2f})\t"
          f"{statistics.median(both):.2f} ({min(both):.2f})\t"
          + (f"{statistics.median(cpu):.2f}" if cpu else "-"))
PY
