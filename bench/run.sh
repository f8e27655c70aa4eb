#!/usr/bin/env bash
# bench/run.sh — strata against Docker's classic builder and Buildah, side by
# side on this machine, in one run; writes docs/benchmarks.md.
#
#   bench/run.sh [--quick] [--only LIST] [--strata BIN] [--out FILE]
#                [--wait-quiet MINUTES] [--keep]
#
#   --quick           fewer runs and smaller data (checks that everything works;
#                     the numbers are not the ones to publish)
#   --only LIST       comma-separated scenarios to run: 1,2,3,4,5,6,7,8,mp,
#                     9,10,11,12 (1-3 share a setup; reg = 12; default: all)
#   --strata BIN      use this strata binary (default: cargo build --release -p
#                     strata with CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target-bench})
#   --out FILE        the report (default: docs/benchmarks.md; --quick writes
#                     to the results directory instead unless --out is given);
#                     bench/results (the raw data behind docs/benchmarks.md)
#                     is replaced only when the report goes to that page
#   --wait-quiet M    before measuring, wait up to M minutes for the 1-minute
#                     load average to drop below $QUIET_LOAD (default 1.0)
#   --keep            keep the work directory (stores, contexts, archives)
#
# Scenarios: 1-3 the tutorial's Second_Try (cold, no-op, after an edit),
# 4 large context, 5 big layer, 6 fan-out, 7 `run --rm`, 8 save and load,
# mp the Multi_Platform tutorial, 9 a Debian base and a RUN writing 40,000
# small files (+ a COPY --from stage; the store's disk use), 10 first use
# of a freshly loaded 600 MB base, 11 growth series (context 2k/20k/200k
# files, 4/16/64 stages, 10/100/1,000 images in the store), 12 (reg) push
# and pull of a 1 GB 8-layer image against a local registry. Full sizes;
# --quick shrinks them (see the sizes block below).
#
# Runs as root on Debian 12: installs docker.io, buildah, skopeo,
# docker-registry, hyperfine and time when missing, starts dockerd as
# scripts/setup-host.sh does. Every peer gets the same base images: the
# rootfs tarballs of scripts/make-base-rootfs.sh go through `docker import`
# (with the --change values that script prints), then `docker save`, and that
# archive is loaded into strata (`strata load`) and Buildah (`buildah pull
# docker-archive:`), so all three hold the same image ID. Names are bench-*
# (bench-busybox:1.35, bench-golang:1.19; the Dockerfiles' FROM lines are
# rewritten to them) so nothing collides with images other tests use.
# strata and Buildah use stores under a temporary directory; in Docker only
# bench-* tags and the untagged images our own builds created are removed.
#
# Scenario 9 also needs a Debian bookworm base: bench/debian-base.sh makes it
# with mmdebstrap from the machine's configured Debian mirror (cached in
# /var/cache/strata-bench) and it is loaded into all three the same way.
# Floors: the same work without a builder, beside the peers: scenarios 5 and
# 9 run their RUN command under `strata run --rm`, 7 runs `runc run` of an
# OCI bundle of the same rootfs, 12 downloads the same blobs with `curl -Z`.
#
# Timing: hyperfine (--export-json); peak RSS: /usr/bin/time -f %M around
# every command (for docker that is the client only: the work happens in
# dockerd, so no Docker memory is reported).
set -euo pipefail

BENCH=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$BENCH")
QUICK=0 ONLY="" STRATA="" OUT="" WAIT_QUIET=0 KEEP=0
QUIET_LOAD=${QUIET_LOAD:-1.0}
while [ $# -gt 0 ]; do
  case "$1" in
  --quick) QUICK=1 ;;
  --only) ONLY=$2; shift ;;
  --strata) STRATA=$(readlink -f "$2"); shift ;;
  --out) OUT=$2; shift ;;
  --wait-quiet) WAIT_QUIET=$2; shift ;;
  --keep) KEEP=1 ;;
  -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//p}' "$0"; exit 0 ;;
  *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
want() { [ -z "$ONLY" ] || [[ ",$ONLY," == *",$1,"* ]]; }

log() { printf '\n\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { echo "run.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (dockerd, buildah and strata's RUN need it)"

# --- sizes -------------------------------------------------------------------
MiB=$((1024 * 1024))
if [ $QUICK = 1 ]; then
  RUNS_COLD=1 RUNS_WARM=3 RUNS_RUN=5 WARM_COLD=0
  CTX_FILES=2000 CTX_BYTES=$((50 * 1000 * 1000))
  BIG_HALF=$((32 * MiB))
  FAN_K=3
  SAVE_SIZES="small:500:$((16 * MiB)):$((16 * MiB)) large:2000:$((64 * MiB)):$((64 * MiB))"
  REG_LAYERS=8 REG_LAYER_FILES=100 REG_LAYER_BYTES=$((4 * MiB))
  DEB_FILES=4000 DEB_DIRS=400
  BIGBASE_FILES=2500 BIGBASE_BYTES=$((60 * 1000 * 1000))
  GROW_CTX="200 2000 20000" GROW_STAGES="4 16" GROW_IMAGES="10 100"
else
  RUNS_COLD=3 RUNS_WARM=10 RUNS_RUN=20 WARM_COLD=1
  CTX_FILES=20000 CTX_BYTES=$((500 * 1000 * 1000))
  BIG_HALF=$((512 * MiB))
  FAN_K=20
  SAVE_SIZES="small:2500:$((128 * MiB)):$((128 * MiB)) large:10000:$((512 * MiB)):$((512 * MiB))"
  REG_LAYERS=8 REG_LAYER_FILES=1000 REG_LAYER_BYTES=$((125 * 1000 * 1000))
  DEB_FILES=40000 DEB_DIRS=4000
  BIGBASE_FILES=25000 BIGBASE_BYTES=$((600 * 1000 * 1000))
  GROW_CTX="2000 20000 200000" GROW_STAGES="4 16 64" GROW_IMAGES="10 100 1000"
fi
# Scenario 9: every file the RUN writes holds DEB_HALF random bytes then
# DEB_HALF bytes of text (5 KB a file: 200 MB for 40,000 files).
DEB_HALF=2500
# Scenario 11: bytes per context file (the work grows with the file count).
GROW_FILE_BYTES=1000

# --- host --------------------------------------------------------------------
log "Host packages and dockerd"
"$REPO/scripts/setup-host.sh"
extra=()
for p in buildah skopeo docker-registry hyperfine time; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || extra+=("$p")
done
if [ ${#extra[@]} -gt 0 ]; then
  for p in "${extra[@]}"; do
    apt-cache policy "$p" | grep -q 'Candidate: [0-9]' || { apt-get update -qq; break; }
  done
  echo "run.sh: installing ${extra[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${extra[@]}" >/dev/null
fi
# Debian's docker client (a newer one may sit earlier in PATH).
DOCKER=/usr/bin/docker
[ -x $DOCKER ] || DOCKER=$(command -v docker)
export DOCKER_BUILDKIT=0

if [ -z "$STRATA" ]; then
  log "Building strata (release)"
  (cd "$REPO" && CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target-bench} cargo build --release --quiet -p strata)
  STRATA=${CARGO_TARGET_DIR:-$REPO/target-bench}/release/strata
fi
[ -x "$STRATA" ] || die "no strata binary at $STRATA"

# --- work directory, results, cleanup ------------------------------------------
WORK=$(mktemp -d /var/tmp/strata-bench.XXXXXX)
RES=$WORK/results
mkdir -p "$RES"
[ -n "$OUT" ] || { if [ $QUICK = 1 ]; then OUT=$RES/benchmarks.md; else OUT=$REPO/docs/benchmarks.md; fi; }
# bench/results holds the raw data behind docs/benchmarks.md: only a run
# that rewrites that page replaces it (a --quick run or one with --out
# elsewhere keeps its data in /var/tmp/strata-bench-last instead).
PUBLISH=0
[ "$(readlink -f "$OUT")" = "$(readlink -f "$REPO/docs/benchmarks.md")" ] && PUBLISH=1
DLOG=$WORK/docker-build.log # every docker build's output: the image IDs we created
: >"$DLOG"
REG_PID=""

S="$STRATA --root $WORK/strata"
export CONTAINERS_REGISTRIES_CONF=$WORK/registries.conf BUILDAH_ISOLATION=chroot
printf 'unqualified-search-registries = ["docker.io"]\nshort-name-mode = "permissive"\n' >"$CONTAINERS_REGISTRIES_CONF"
printf '{"default":[{"type":"insecureAcceptAnything"}]}\n' >"$WORK/policy.json"
BH="buildah --root $WORK/buildah/root --runroot $WORK/buildah/run --storage-driver overlay"
BUD="$BH bud --isolation chroot --layers --pull=never --signature-policy $WORK/policy.json"
SKOPEO="skopeo --policy $WORK/policy.json"

# The untagged images our docker builds created (IDs from their logs).
our_dangling() {
  grep -oE -- '---> [0-9a-f]{12}$|^Successfully built [0-9a-f]{12}$' "$DLOG" 2>/dev/null | awk '{print $NF}' | sort -u |
    while read -r id; do
      [ "$($DOCKER image inspect -f '{{len .RepoTags}}' "$id" 2>/dev/null || echo x)" = 0 ] && echo "$id"
    done
  return 0
}
docker_cleanup_builds() {
  # Between scenarios: only the untagged images of our builds (keeps the bench-* bases).
  for _ in 1 2 3; do our_dangling | xargs -r $DOCKER rmi >/dev/null 2>&1 || true; done
}
docker_cleanup() {
  $DOCKER images --format '{{.Repository}}:{{.Tag}}' | grep -E '^(bench-|127\.0\.0\.1:[0-9]+/bench/)' |
    xargs -r $DOCKER rmi -f >/dev/null 2>&1 || true
  docker_cleanup_builds
}
cleanup() {
  set +e
  [ -n "${OTHERS_PID:-}" ] && kill "$OTHERS_PID" 2>/dev/null
  [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null
  docker_cleanup
  $BH rm -a >/dev/null 2>&1
  $BH rmi -a -f >/dev/null 2>&1
  findmnt -rn -o TARGET | grep "^$WORK/" | sort -r | xargs -r -n1 umount -l 2>/dev/null
  if [ $KEEP = 1 ]; then echo "run.sh: kept $WORK" >&2; else
    [ "$PUBLISH" = 0 ] && { rm -rf /var/tmp/strata-bench-last; mkdir -p /var/tmp/strata-bench-last; cp -r "$RES"/. /var/tmp/strata-bench-last/; echo "run.sh: results in /var/tmp/strata-bench-last" >&2; }
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# meta: key=value lines the report reads
meta() { printf '%s=%s\n' "$1" "$2" >>"$RES/meta.env"; }
LOADS=""
scenload() { LOADS="${LOADS:+$LOADS, }$1: $(cut -d' ' -f1 /proc/loadavg)"; }

# bench NAME TOOL RUNS WARMUP PREPARE CMD: hyperfine, JSON in results, peak
# RSS of every run (warmups included) in NAME.TOOL.rss (KiB, one per line).
bench() {
  local name=$1 tool=$2 runs=$3 warm=$4 prep=$5 cmd=$6
  local rss=$RES/$name.$tool.rss
  : >"$rss"
  local args=(--runs "$runs" --warmup "$warm" --style basic --export-json "$RES/$name.$tool.json" -n "$name/$tool")
  [ -n "$prep" ] && args+=(--prepare "$prep")
  if ! hyperfine "${args[@]}" "/usr/bin/time -f %M -a -o $rss $cmd" >>"$RES/hyperfine.log" 2>&1; then
    echo "$name $tool" >>"$RES/failures"
    rm -f "$RES/$name.$tool.json"
    echo "run.sh: $name/$tool FAILED; its output:" >&2
    { [ -n "$prep" ] && sh -c "$prep"; sh -c "$cmd"; } 2>&1 | tail -15 | sed 's/^/    /' >&2 || true
    return 0
  fi
  python3 - "$RES/$name.$tool.json" "$rss" <<'EOF' >&2
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
rss = [int(x) for x in open(sys.argv[2]).read().split()]
print(f"    {r['command'].split()[0] if False else ''}{sys.argv[1].split('/')[-1][:-5]:28s} median {r['median']:8.3f} s  (min {r['min']:.3f}, max {r['max']:.3f}, n={len(r['times'])})  peak RSS {max(rss)/1024 if rss else 0:.0f} MiB")
EOF
}

# floor_script FILE IMAGE CMD: a script running the shell command line CMD
# in IMAGE under `strata run --rm` (a RUN's work without a builder: no
# snapshot, no commit, no cache), for the floors beside the peers.
floor_script() {
  printf '#!/bin/bash\nexec %s run --rm %s sh -c %q\n' "$S" "$2" "$3" >"$1"
}

# --- wait for a quiet machine -------------------------------------------------
load1() { cut -d' ' -f1 /proc/loadavg; }
if [ "$WAIT_QUIET" -gt 0 ]; then
  log "Waiting up to $WAIT_QUIET min for load average < $QUIET_LOAD"
  for i in $(seq 0 "$WAIT_QUIET"); do
    python3 -c "import sys; sys.exit(0 if $(load1) < $QUIET_LOAD else 1)" && break
    [ "$i" = "$WAIT_QUIET" ] && { echo "run.sh: still busy ($(load1)); measuring anyway" >&2; break; }
    echo "  $(date +%H:%M) load $(cat /proc/loadavg)" >&2
    sleep 60
  done
fi

# Other people's work on the machine during the run: every 5 s, whether any
# compiler, cargo, or a binary from a target*/ directory other than ours
# (the strata under test, wherever --strata points) runs.
(
  while sleep 5; do
    n=$(ps -eo args= | grep -E '^(\S*/)?(rustc|cargo|cc|ld|c\+\+) |(^|/)target[^ /]*/(debug|release|x86_64[^ /]*)/' |
      grep -v -F -e target-bench -e grep -e "$STRATA" | wc -l || true)
    echo "$n" >>"$RES/others.samples"
  done
) &
OTHERS_PID=$!

# --- machine facts and versions --------------------------------------------------
meta mode "$([ $QUICK = 1 ] && echo quick || echo full)"
meta date "$(date -u '+%Y-%m-%d %H:%M UTC')"
meta load_start "$(cut -d' ' -f1-3 /proc/loadavg)"
meta nproc "$(nproc)"
meta cpu "$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
meta mem "$(free -g | awk '/^Mem:/ {print $2}') GiB"
meta kernel "$(uname -r)"
meta os "Debian $(cat /etc/debian_version)"
dev=$(findmnt -no SOURCE -T "$WORK")
meta disk "$dev, $(findmnt -no FSTYPE -T "$WORK"), $(df -h --output=size "$WORK" | tail -1 | tr -d ' ') ($(lsblk -dno ROTA "$dev" 2>/dev/null | tr -d ' ' | sed 's/^1$/reported rotational/;s/^0$/reported non-rotational/'); $(lsblk -dno MODEL,TYPE "$dev" 2>/dev/null | tr -s ' ' | sed 's/^ //' || true))"
meta strata "$($STRATA --version 2>/dev/null || echo '?') (commit ${STRATA_COMMIT:-$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo '?')}), release build"
meta docker "docker.io $($DOCKER version -f '{{.Server.Version}}') (classic builder, DOCKER_BUILDKIT=0; storage driver $($DOCKER info -f '{{.Driver}}'))"
meta buildah "$(buildah --version | sed 's/ (.*//')"
meta skopeo "$(skopeo --version)"
meta runc "$(runc --version | head -1)"
meta hyperfine "$(hyperfine --version)"
meta registry "$(docker-registry --version 2>/dev/null | head -1 || echo docker-registry)"
meta runs "cold $RUNS_COLD (+$WARM_COLD warmup for scenario 1), warm $RUNS_WARM, run $RUNS_RUN"

# --- base images ---------------------------------------------------------------
# load_base ROOTFS.tar TAG NAME CHANGE...: docker import (with the --change
# values) -> docker save to bases/NAME-image.tar -> strata load and buildah
# pull of that archive; the three image IDs must agree (meta base_NAME).
load_base() {
  local tar=$1 tag=$2 name=$3 changes=() c
  shift 3
  for c in "$@"; do changes+=(--change "$c"); done
  $DOCKER import "${changes[@]}" "$tar" "$tag" >/dev/null
  $DOCKER save -o "$WORK/bases/$name-image.tar" "$tag"
  $S load -i "$WORK/bases/$name-image.tar" >/dev/null
  $BH pull -q --signature-policy "$WORK/policy.json" "docker-archive:$WORK/bases/$name-image.tar" >/dev/null
  local id_d id_s id_b
  id_d=$($DOCKER image inspect -f '{{.Id}}' "$tag")
  id_s=$($S inspect "$tag" | python3 -c 'import json,sys; d=json.load(sys.stdin); d=d[0] if isinstance(d,list) else d; print(d["Id"])')
  id_b=sha256:$($BH images --no-trunc -q "$tag" | head -1 | sed 's/^sha256://')
  meta "base_$name" "$tag $id_d"
  [ "$id_d" = "$id_s" ] && [ "$id_d" = "$id_b" ] || die "$tag: image IDs differ: docker $id_d, strata $id_s, buildah $id_b"
}
log "Base images: make-base-rootfs.sh -> docker import -> docker save -> strata load, buildah pull"
"$REPO/scripts/make-base-rootfs.sh" "$WORK/bases" 2>/dev/null
for b in busybox:bench-busybox:1.35 golang:bench-golang:1.19; do
  src=${b%%:*} tag=${b#*:}
  changes=()
  while IFS= read -r c; do changes+=("$c"); done < <("$REPO/scripts/make-base-rootfs.sh" --print-changes "$src")
  load_base "$WORK/bases/$src.tar" "$tag" "$src" "${changes[@]}"
  # The busybox rootfs stays: scenario 7's runc bundle and 10's big base.
  [ "$src" = busybox ] || rm -f "$WORK/bases/$src.tar"
done
if want 9; then
  log "Debian bookworm base (bench/debian-base.sh: mmdebstrap minbase, cached)"
  DEB_TAR=$("$BENCH/debian-base.sh")
  load_base "$DEB_TAR" bench-debian:bookworm debian \
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' 'CMD ["bash"]'
  meta deb_rootfs "$(basename "$DEB_TAR"), $(du -h --apparent-size "$DEB_TAR" | cut -f1)"
fi
# Unpack the bases in strata and warm the page cache for everyone.
$S run --rm bench-golang:1.19 true
$DOCKER run --rm bench-golang:1.19 true

# --- 1-3: the tutorial's Second_Try ---------------------------------------------
tutorial_ctx() {
  rm -rf "$WORK/st"
  cp -r "$REPO/examples/tutorial/Second_Try" "$WORK/st"
  sed -i 's/^FROM golang:1.19/FROM bench-golang:1.19/; s/^FROM busybox:1.35/FROM bench-busybox:1.35/' "$WORK/st/Dockerfile"
}
if want 1 || want 2 || want 3; then
  tutorial_ctx
  ST=$WORK/st
  scenload 1
  log "1. Second_Try cold (--no-cache, bases present)"
  bench s1-cold strata $RUNS_COLD $WARM_COLD "" "$S build --no-cache -q -t bench-st $ST"
  bench s1-cold docker $RUNS_COLD $WARM_COLD "" "$DOCKER build --no-cache -t bench-st $ST >>$DLOG 2>&1"
  bench s1-cold buildah $RUNS_COLD $WARM_COLD "" "$BUD --no-cache -q -t bench-st $ST"
  # The images are real: each prints the tutorial's line.
  goat='DevOps is the 🐐'
  [ "$($S run --rm bench-st)" = "$goat" ] || die "strata's bench-st does not print '$goat'"
  [ "$($DOCKER run --rm bench-st)" = "$goat" ] || die "docker's bench-st does not print '$goat'"
  c=$($BH from -q --pull=never bench-st) && out=$($BH run "$c" -- sh -c 'cd /root && ./app') && $BH rm "$c" >/dev/null
  [ "$out" = "$goat" ] || die "buildah's bench-st prints '$out', not '$goat'"
  log "2. Second_Try no-op rebuild"
  bench s2-noop strata $RUNS_WARM 1 "" "$S build -q -t bench-st $ST"
  bench s2-noop docker $RUNS_WARM 1 "" "$DOCKER build -t bench-st $ST >>$DLOG 2>&1"
  bench s2-noop buildah $RUNS_WARM 1 "" "$BUD -q -t bench-st $ST"
  log "3. Second_Try after editing main.go"
  edit="printf '// edit %s\n' \$(date +%s%N) >>$ST/main.go"
  bench s3-edit strata $RUNS_COLD 0 "$edit" "$S build -q -t bench-st $ST"
  bench s3-edit docker $RUNS_COLD 0 "$edit" "$DOCKER build -t bench-st $ST >>$DLOG 2>&1"
  bench s3-edit buildah $RUNS_COLD 0 "$edit" "$BUD -q -t bench-st $ST"
  docker_cleanup_builds
fi

# --- 4: large context ----------------------------------------------------------
if want 4; then
  scenload 4
  log "4. Large context: $CTX_FILES files, $((CTX_BYTES / 1000000)) MB, COPY . /src"
  C4=$WORK/ctx4
  python3 "$BENCH/gen-tree.py" "$C4" --files "$CTX_FILES" --bytes "$CTX_BYTES"
  printf 'FROM bench-busybox:1.35\nCOPY . /src\n' >"$C4/Dockerfile"
  meta ctx4 "$CTX_FILES files, $((CTX_BYTES / 1000000)) MB"
  bench s4-cold strata $RUNS_COLD 0 "" "$S build --no-cache -q -t bench-ctx $C4"
  bench s4-cold docker $RUNS_COLD 0 "" "$DOCKER build --no-cache -t bench-ctx $C4 >>$DLOG 2>&1"
  bench s4-cold buildah $RUNS_COLD 0 "" "$BUD --no-cache -q -t bench-ctx $C4"
  # One file's mtime changes, its content does not: every builder should hit its cache.
  touchf="touch $C4/d0000/f00000"
  bench s4-touch strata $RUNS_WARM 1 "$touchf" "$S build -q -t bench-ctx $C4"
  bench s4-touch docker $RUNS_COLD 1 "$touchf" "$DOCKER build -t bench-ctx $C4 >>$DLOG 2>&1"
  bench s4-touch buildah $RUNS_COLD 1 "$touchf" "$BUD -q -t bench-ctx $C4"
  docker_cleanup_builds
  $S rmi bench-ctx >/dev/null 2>&1 || true
  $S system prune -f >/dev/null 2>&1 || true
  $BH rmi -f bench-ctx >/dev/null 2>&1 || true
  rm -rf "$C4"
fi

# --- 5: big layer ----------------------------------------------------------------
if want 5; then
  scenload 5
  meta big "$((2 * BIG_HALF / MiB)) MiB"
  log "5. Big layer: RUN writing $((2 * BIG_HALF / MiB)) MiB (half zeros, half random)"
  C5=$WORK/ctx5
  mkdir -p "$C5"
  RUN5="head -c $BIG_HALF /dev/zero >/a && head -c $BIG_HALF /dev/urandom >/b"
  printf 'FROM bench-busybox:1.35\nRUN %s\n' "$RUN5" >"$C5/Dockerfile"
  bench s5-big strata $RUNS_COLD 0 "" "$S build --no-cache -q -t bench-big $C5"
  # Floor: the same command under `strata run --rm`.
  floor_script "$WORK/floor5.sh" bench-busybox:1.35 "$RUN5"
  bench s5-floor strata $RUNS_COLD 0 "" "bash $WORK/floor5.sh"
  bench s5-big docker $RUNS_COLD 0 "" "$DOCKER build --no-cache -t bench-big $C5 >>$DLOG 2>&1"
  bench s5-big buildah $RUNS_COLD 0 "" "$BUD --no-cache -q -t bench-big $C5"
  docker_cleanup_builds
  $DOCKER rmi -f bench-big >/dev/null 2>&1 || true
  $S rmi bench-big >/dev/null 2>&1 || true
  $S system prune -f >/dev/null 2>&1 || true
  $BH rmi -f bench-big >/dev/null 2>&1 || true
fi

# --- 6: fan-out --------------------------------------------------------------------
if want 6; then
  scenload 6
  log "6. Fan-out: four CPU stages (sha256sum of 32 MiB x $FAN_K each), final stage copies from each"
  C6=$WORK/ctx6
  mkdir -p "$C6"
  {
    for i in 1 2 3 4; do
      printf 'FROM bench-busybox:1.35 AS s%d\n' $i
      printf 'RUN head -c 33554432 /dev/urandom >/d && for i in $(seq %d); do sha256sum /d; done >/out && rm /d && echo s%d >>/out\n' "$FAN_K" $i
    done
    printf 'FROM bench-busybox:1.35\n'
    for i in 1 2 3 4; do printf 'COPY --from=s%d /out /o%d\n' $i $i; done
  } >"$C6/Dockerfile"
  meta fan_k "$FAN_K"
  bench s6-all strata $RUNS_COLD 0 "" "$S build --no-cache -q -t bench-fan $C6"
  bench s6-all docker $RUNS_COLD 0 "" "$DOCKER build --no-cache -t bench-fan $C6 >>$DLOG 2>&1"
  bench s6-all buildah $RUNS_COLD 0 "" "$BUD --no-cache --jobs 4 -q -t bench-fan $C6"
  for i in 1 2 3 4; do
    bench s6-s$i strata $RUNS_COLD 0 "" "$S build --no-cache -q --target s$i -t bench-fan-s$i $C6"
    # The classic builder builds every stage before the --target one: give it the stage alone.
    sed -n "/^FROM .* AS s$i\$/,/^RUN/p" "$C6/Dockerfile" >"$C6/Dockerfile.s$i"
    bench s6-s$i docker $RUNS_COLD 0 "" "$DOCKER build --no-cache -f $C6/Dockerfile.s$i -t bench-fan-s$i $C6 >>$DLOG 2>&1"
    bench s6-s$i buildah $RUNS_COLD 0 "" "$BUD --no-cache -q --target s$i -t bench-fan-s$i $C6"
  done
  docker_cleanup_builds
fi

# --- 7: run latency ------------------------------------------------------------------
if want 7; then
  scenload 7
  log "7. run --rm IMAGE true"
  bench s7-run strata $RUNS_RUN 2 "" "$S run --rm bench-busybox:1.35 true"
  bench s7-run docker $RUNS_RUN 2 "" "$DOCKER run --rm bench-busybox:1.35 true"
  # Buildah has no `run --rm IMAGE`: from + run + rm is the same work.
  bench s7-run buildah $RUNS_RUN 2 "" "sh -c 'c=\$($BH from -q --pull=never bench-busybox:1.35) && $BH run \$c true && $BH rm \$c >/dev/null'"
  # Floor: runc alone on an OCI bundle of the same rootfs (`runc spec`'s
  # defaults, args ["true"], no terminal). `runc run` deletes the container
  # when its process exits, so one ID serves every run.
  B7=$WORK/bundle7
  rm -rf "$B7" && mkdir -p "$B7/rootfs"
  tar -C "$B7/rootfs" -xf "$WORK/bases/busybox.tar"
  (cd "$B7" && runc spec)
  python3 - "$B7/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["args"] = ["true"]
c["process"]["terminal"] = False
json.dump(c, open(p, "w"), indent=1)
PY
  bench s7-floor runc $RUNS_RUN 2 "runc delete -f strata-bench-s7 >/dev/null 2>&1; true" "runc run -b $B7 strata-bench-s7"
  rm -rf "$B7"
fi

# --- 8: save and load -------------------------------------------------------------------
if want 8; then
  for spec in $SAVE_SIZES; do
    IFS=: read -r sz nfiles sbytes bbytes <<<"$spec"
    scenload "8-$sz"
    log "8. save/load, $sz: $nfiles small files ($((sbytes / MiB)) MiB) + one $((bbytes / MiB)) MiB file"
    C8=$WORK/ctx8-$sz
    python3 "$BENCH/gen-tree.py" "$C8/small" --files "$nfiles" --bytes "$sbytes"
    python3 "$BENCH/gen-tree.py" "$C8/big" --files 0 --bytes 0 --big "$bbytes"
    printf 'FROM bench-busybox:1.35\nCOPY small /data/small\nCOPY big /data/big\n' >"$C8/Dockerfile"
    $DOCKER build -t "bench-save-$sz" "$C8" >>"$DLOG" 2>&1
    A=$WORK/save-$sz.tar
    $DOCKER save -o "$A" "bench-save-$sz"
    meta "image_$sz" "$(du -h --apparent-size "$A" | cut -f1) docker-archive, $nfiles small files + one $((bbytes / MiB)) MiB file"
    rm -rf "$C8"
    $S load -i "$A" >/dev/null
    $SKOPEO copy -q "docker-archive:$A" "oci:$WORK/oci-$sz:bench-save-$sz" >/dev/null
    $BH pull -q --signature-policy "$WORK/policy.json" "docker-archive:$A" >/dev/null
    O=$WORK/out.tar
    # load: into an empty store / after removing the image
    bench "s8-load-$sz" strata $RUNS_COLD 0 "rm -rf $WORK/lroot" "$STRATA --root $WORK/lroot load -i $A"
    bench "s8-load-$sz" docker $RUNS_COLD 0 "$DOCKER rmi -f bench-save-$sz >/dev/null 2>&1; true" "$DOCKER load -q -i $A"
    bench "s8-load-$sz" skopeo $RUNS_COLD 0 "rm -rf $WORK/skl" "$SKOPEO copy -q docker-archive:$A oci:$WORK/skl:x"
    bench "s8-load-$sz" buildah $RUNS_COLD 0 "$BH rmi -f bench-save-$sz >/dev/null 2>&1; true" "$BH pull -q --signature-policy $WORK/policy.json docker-archive:$A"
    rm -rf "$WORK/lroot" "$WORK/skl"
    # save: to a docker-archive file
    bench "s8-save-$sz" strata $RUNS_COLD 0 "rm -f $O" "$S save -o $O bench-save-$sz"
    bench "s8-save-$sz" docker $RUNS_COLD 0 "rm -f $O" "$DOCKER save -o $O bench-save-$sz"
    bench "s8-save-$sz" skopeo $RUNS_COLD 0 "rm -f $O" "$SKOPEO copy -q oci:$WORK/oci-$sz:bench-save-$sz docker-archive:$O:bench-save-$sz"
    bench "s8-save-$sz" buildah $RUNS_COLD 0 "rm -f $O" "$BH push -q --signature-policy $WORK/policy.json bench-save-$sz docker-archive:$O:bench-save-$sz"
    rm -f "$O" "$A"
    rm -rf "$WORK/oci-$sz"
    $DOCKER rmi -f "bench-save-$sz" >/dev/null 2>&1 || true
    $S rmi "bench-save-$sz" >/dev/null 2>&1 || true
    $S system prune -f >/dev/null 2>&1 || true
    $BH rmi -f "bench-save-$sz" >/dev/null 2>&1 || true
  done
  docker_cleanup_builds
fi

# --- mp: the cross-compiled tutorial for two platforms -------------------------------
# examples/tutorial/Multi_Platform for linux/amd64,linux/arm64: Go runs on
# the build platform and cross-compiles; the final stage (no RUN, so no
# emulator needed) is per platform, FROM a two-platform busybox: the
# amd64 bench-busybox:1.35 and an arm64 one (Debian's busybox-static:arm64,
# unpacked by scripts/setup-host.sh), combined in each store (strata
# `manifest create`, buildah `manifest create/add`).
mp_setup() {
  local bb=/var/cache/strata-ci/busybox-arm64/bin/busybox
  [ -x "$bb" ] || { echo "no arm64 busybox at $bb (scripts/setup-host.sh)"; return 1; }
  local r=$WORK/mp-arm64
  rm -rf "$r" && mkdir -p "$r/bin" && cp "$bb" "$r/bin/busybox" || return 1
  for a in sh ls cat echo true; do ln -sf busybox "$r/bin/$a"; done
  tar -C "$r" -cf "$WORK/mp-arm64.tar" . && rm -rf "$r" || return 1
  local changes=()
  while IFS= read -r c; do changes+=(--change "$c"); done < <("$REPO/scripts/make-base-rootfs.sh" --print-changes busybox)
  $S import --platform linux/arm64 "${changes[@]}" "$WORK/mp-arm64.tar" bench-busybox-arm64 >/dev/null || return 1
  $S manifest create bench-mbusybox:1.35 bench-busybox:1.35 bench-busybox-arm64 >/dev/null || return 1
  $S save -o "$WORK/mp-arm64-image.tar" bench-busybox-arm64 || return 1
  $BH pull -q --signature-policy "$WORK/policy.json" "docker-archive:$WORK/mp-arm64-image.tar" >/dev/null || return 1
  $BH manifest create bench-mbusybox:1.35 >/dev/null || return 1
  $BH manifest add bench-mbusybox:1.35 containers-storage:bench-busybox:1.35 >/dev/null || return 1
  $BH manifest add bench-mbusybox:1.35 containers-storage:bench-busybox-arm64:latest >/dev/null || return 1
  rm -f "$WORK/mp-arm64.tar" "$WORK/mp-arm64-image.tar"
  rm -rf "$WORK/mp" && cp -r "$REPO/examples/tutorial/Multi_Platform" "$WORK/mp" || return 1
  sed -i 's/^FROM --platform=\$BUILDPLATFORM golang:1.19/FROM --platform=$BUILDPLATFORM bench-golang:1.19/; s/^FROM busybox:1.35/FROM bench-mbusybox:1.35/' "$WORK/mp/Dockerfile"
}
if want mp; then
  scenload mp
  log "mp. Multi_Platform tutorial for linux/amd64,linux/arm64 (cross-compiled), cold"
  if ! why=$(mp_setup 2>&1); then
    echo "run.sh: mp not measured: $why" >&2
    meta mp_status "not measured: $(echo "$why" | tail -1)"
  else
    MP=$WORK/mp
    bench mp-cold strata $RUNS_COLD 0 "" "$S build --no-cache -q --platform linux/amd64,linux/arm64 -t bench-mp $MP"
    bench mp-cold buildah $RUNS_COLD 0 "$BH manifest rm bench-mp >/dev/null 2>&1; true" "$BUD --no-cache -q --platform linux/amd64,linux/arm64 --manifest bench-mp $MP"
    # The images are real: each platform's config names its architecture.
    for arch in amd64 arm64; do
      a=$($S inspect bench-mp | python3 -c "import json,sys; d=json.load(sys.stdin)[0]; print(*[p['Platform'] for p in d['Platforms']])")
      [[ " $a " == *" linux/$arch "* ]] || die "strata's bench-mp has no linux/$arch: $a"
    done
    meta mp_status measured
  fi
fi

# --- 9: Debian base, many small files ---------------------------------------------------
# The shape of `apt-get install` or `npm ci`: one RUN writing DEB_FILES files
# of 5 KB in DEB_DIRS directories under /data (perl, which minbase has: half
# of each file from /dev/urandom, half text), committed; then a second stage
# copying /data (the whole 200 MB subtree) from it. s9-run is the first stage
# alone (--target deps), s9-floor the same RUN under `strata run --rm`,
# s9-cold both stages. Disk: the store's growth for one build of the first
# stage in a fresh store, against the bytes its files hold.
read -r -d '' PERL9 <<'EOF' || true
my ($dirs, $per, $half, $top) = @ARGV; open(my $r, "<", "/dev/urandom") or die "urandom: $!"; my $t = "many small files, as apt-get install or npm ci leave them\n" x (1 + $half / 40); mkdir $top or die "$top: $!"; for my $d (0 .. $dirs - 1) { mkdir "$top/d$d" or die "$top/d$d: $!"; for my $f (0 .. $per - 1) { read($r, my $b, $half) == $half or die "short read"; open(my $o, ">", "$top/d$d/f$f") or die "$top/d$d/f$f: $!"; print $o $b, substr("$d/$f $t", 0, $half); close($o) or die "$!" } }
EOF
# disk_growth DIR CMD...: the bytes DIR grows by (allocated and apparent) while CMD runs.
disk_growth() {
  local dir=$1 a0 p0 a1 p1
  shift
  sync
  a0=$(du -s --block-size=1 "$dir" | cut -f1) p0=$(du -s --apparent-size --block-size=1 "$dir" | cut -f1)
  "$@" >/dev/null || return 1
  sync
  a1=$(du -s --block-size=1 "$dir" | cut -f1) p1=$(du -s --apparent-size --block-size=1 "$dir" | cut -f1)
  echo "$((a1 - a0)) $((p1 - p0))"
}
if want 9; then
  scenload 9
  nper=$((DEB_FILES / DEB_DIRS))
  layer9=$((DEB_FILES * 2 * DEB_HALF))
  log "9. Debian base: RUN writing $DEB_FILES files in $DEB_DIRS directories ($((layer9 / 1000000)) MB), then COPY --from of /data"
  meta deb9 "$DEB_FILES files of $((2 * DEB_HALF)) bytes in $DEB_DIRS directories, $((layer9 / 1000000)) MB"
  C9=$WORK/ctx9d
  mkdir -p "$C9"
  RUN9="perl -e '$PERL9' $DEB_DIRS $nper $DEB_HALF /data"
  printf 'FROM bench-debian:bookworm AS deps\nRUN %s\n' "$RUN9" >"$C9/Dockerfile.run"
  { cat "$C9/Dockerfile.run"; printf 'FROM bench-debian:bookworm\nCOPY --from=deps /data /app/data\n'; } >"$C9/Dockerfile"
  # The floor right after strata's build, before the peers' builds: this
  # VM's ext4 has no journal, and then it skips every inode freed in the
  # last minutes when it makes a file, so a run that follows the peers'
  # removal of their 40,000-file containers pays for them (bench/profile.md,
  # "strata run --rm of a 40,000-file RUN").
  bench s9-run strata $RUNS_COLD 0 "" "$S build --no-cache -q -f $C9/Dockerfile.run -t bench-deb-run $C9"
  floor_script "$WORK/floor9.sh" bench-debian:bookworm "$RUN9"
  bench s9-floor strata $RUNS_COLD 0 "" "bash $WORK/floor9.sh"
  bench s9-run docker $RUNS_COLD 0 "" "$DOCKER build --no-cache -f $C9/Dockerfile.run -t bench-deb-run $C9 >>$DLOG 2>&1"
  bench s9-run buildah $RUNS_COLD 0 "" "$BUD --no-cache -q -f $C9/Dockerfile.run -t bench-deb-run $C9"
  bench s9-cold strata $RUNS_COLD 0 "" "$S build --no-cache -q -t bench-deb $C9"
  bench s9-cold docker $RUNS_COLD 0 "" "$DOCKER build --no-cache -t bench-deb $C9 >>$DLOG 2>&1"
  bench s9-cold buildah $RUNS_COLD 0 "" "$BUD --no-cache -q -t bench-deb $C9"
  # The image is real: the second stage holds every file.
  n=$($S run --rm bench-deb sh -c 'find /app/data -type f | wc -l' 2>/dev/null || echo "?")
  [ "$n" = "$DEB_FILES" ] || die "strata's bench-deb holds $n files under /app/data, not $DEB_FILES"
  docker_cleanup_builds
  $DOCKER rmi -f bench-deb bench-deb-run >/dev/null 2>&1 || true
  $S rmi bench-deb bench-deb-run >/dev/null 2>&1 || true
  $S system prune -f >/dev/null 2>&1 || true
  $BH rmi -f bench-deb bench-deb-run >/dev/null 2>&1 || true
  # Disk: fresh stores holding only the (unpacked) base, one build each.
  log "9. disk: store growth for one build of the RUN, fresh stores"
  meta disk9_layer "$layer9"
  # What the files take on this filesystem with no builder at all.
  perl -e "$PERL9" "$DEB_DIRS" "$nper" "$DEB_HALF" "$WORK/files9"
  meta disk9_files "$(du -s --block-size=1 "$WORK/files9" | cut -f1) $(du -s --apparent-size --block-size=1 "$WORK/files9" | cut -f1)"
  rm -rf "$WORK/files9"
  R9=$WORK/disk9-strata
  $STRATA --root "$R9" load -i "$WORK/bases/debian-image.tar" >/dev/null
  $STRATA --root "$R9" run --rm bench-debian:bookworm true
  g=$(disk_growth "$R9" $STRATA --root "$R9" build --no-cache -q -f "$C9/Dockerfile.run" -t bench-deb-run "$C9") &&
    meta disk9_strata "$g" || meta disk9_strata "failed"
  rm -rf "$R9"
  BH9="buildah --root $WORK/disk9-buildah/root --runroot $WORK/disk9-buildah/run --storage-driver overlay"
  $BH9 pull -q --signature-policy "$WORK/policy.json" "docker-archive:$WORK/bases/debian-image.tar" >/dev/null
  g=$(disk_growth "$WORK/disk9-buildah/root" $BH9 bud --isolation chroot --layers --pull=never --signature-policy "$WORK/policy.json" \
    --no-cache -q -f "$C9/Dockerfile.run" -t bench-deb-run "$C9") && meta disk9_buildah "$g" || meta disk9_buildah "failed"
  $BH9 rm -a >/dev/null 2>&1 || true
  $BH9 rmi -a -f >/dev/null 2>&1 || true
  findmnt -rn -o TARGET | grep "^$WORK/disk9-buildah/" | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$WORK/disk9-buildah" "$C9" "$WORK/floor9.sh"
fi

# --- 10: first use of a large base ---------------------------------------------------------
# A big base (the busybox rootfs plus a gen-tree.py tree) loaded fresh before
# every run (hyperfine --prepare: strata into an empty --root, docker rmi +
# load, buildah rmi + pull), then timed: a build of FROM it + RUN true.
# strata unpacks a loaded base on first use, Docker and Buildah while
# loading, so the loads are timed too (s10-load) and the report gives both.
if want 10; then
  scenload 10
  log "10. First use of a large base: $BIGBASE_FILES files, $((BIGBASE_BYTES / 1000000)) MB, freshly loaded; FROM it + RUN true"
  B10=$WORK/big10
  mkdir -p "$B10/root"
  tar -C "$B10/root" -xf "$WORK/bases/busybox.tar"
  python3 "$BENCH/gen-tree.py" "$B10/root/big" --files "$BIGBASE_FILES" --bytes "$BIGBASE_BYTES" --per-dir 100
  tar -C "$B10/root" -cf "$B10/rootfs.tar" .
  rm -rf "$B10/root"
  changes=()
  while IFS= read -r c; do changes+=("$c"); done < <("$REPO/scripts/make-base-rootfs.sh" --print-changes busybox)
  load_base "$B10/rootfs.tar" bench-bigbase:1 bigbase "${changes[@]}"
  rm -f "$B10/rootfs.tar"
  A10=$WORK/bases/bigbase-image.tar
  meta big10 "$BIGBASE_FILES files + busybox, $((BIGBASE_BYTES / 1000000)) MB, archive $(du -h --apparent-size "$A10" | cut -f1)"
  mkdir -p "$B10/ctx"
  printf 'FROM bench-bigbase:1\nRUN true\n' >"$B10/ctx/Dockerfile"
  R10=$WORK/root10
  drm="$DOCKER rmi -f bench-first bench-bigbase:1 >/dev/null 2>&1"
  brm="$BH rmi -f bench-first bench-bigbase:1 >/dev/null 2>&1"
  bpull="$BH pull -q --signature-policy $WORK/policy.json docker-archive:$A10"
  bench s10-first strata $RUNS_COLD 0 "rm -rf $R10 && $STRATA --root $R10 load -i $A10 >/dev/null && sync" "$STRATA --root $R10 build --no-cache -q -t bench-first $B10/ctx"
  bench s10-first docker $RUNS_COLD 0 "$drm; $DOCKER load -q -i $A10 >/dev/null && sync" "$DOCKER build --no-cache -t bench-first $B10/ctx >>$DLOG 2>&1"
  bench s10-first buildah $RUNS_COLD 0 "$brm; $bpull >/dev/null && sync" "$BUD --no-cache -q -t bench-first $B10/ctx"
  bench s10-load strata $RUNS_COLD 0 "rm -rf $R10; sync" "$STRATA --root $R10 load -i $A10"
  bench s10-load docker $RUNS_COLD 0 "$drm; sync" "$DOCKER load -q -i $A10"
  bench s10-load buildah $RUNS_COLD 0 "$brm; sync" "$bpull"
  sh -c "$drm; $brm" || true
  docker_cleanup_builds
  $S rmi bench-bigbase:1 >/dev/null 2>&1 || true
  $S system prune -f >/dev/null 2>&1 || true
  rm -rf "$R10" "$B10" "$A10"
fi

# --- 11: growth ----------------------------------------------------------------------------
# How time grows with the work: context files (COPY . /src, cold and after
# one touched file), parallel stages (each FROM busybox + RUN echo, the final
# stage copies from each; Buildah gets --jobs 4 as in scenario 6), images in
# the store (images, system df, a no-op build, in stores of their own). The
# report gives the ratio per x10 of work and strata's peak RSS per size.
# Docker and Buildah get one run (after one warmup for the touched rebuild)
# at the largest context: each of their builds takes minutes there.
if want 11; then
  scenload 11
  meta grow_ctx "$GROW_CTX"
  meta grow_stages "$GROW_STAGES"
  meta grow_images "$GROW_IMAGES"
  meta grow_file_bytes "$GROW_FILE_BYTES"
  G=$WORK/grow
  for n in $GROW_CTX; do
    log "11. growth: context of $n files, COPY . /src (cold, then one file touched)"
    rm -rf "$G" && python3 "$BENCH/gen-tree.py" "$G" --files "$n" --bytes $((n * GROW_FILE_BYTES))
    printf 'FROM bench-busybox:1.35\nCOPY . /src\n' >"$G/Dockerfile"
    bench "g-ctx$n-cold" strata $RUNS_COLD 0 "" "$S build --no-cache -q -t bench-gctx $G"
    # The peers take minutes per build of the largest context: one run each there.
    pr=$RUNS_COLD
    [ "$n" = "${GROW_CTX##* }" ] && pr=1
    bench "g-ctx$n-cold" docker $pr 0 "" "$DOCKER build --no-cache -t bench-gctx $G >>$DLOG 2>&1"
    bench "g-ctx$n-cold" buildah $pr 0 "" "$BUD --no-cache -q -t bench-gctx $G"
    touchf="touch $G/d0000/f00000"
    bench "g-ctx$n-touch" strata $RUNS_WARM 1 "$touchf" "$S build -q -t bench-gctx $G"
    bench "g-ctx$n-touch" docker $pr 1 "$touchf" "$DOCKER build -t bench-gctx $G >>$DLOG 2>&1"
    bench "g-ctx$n-touch" buildah $pr 1 "$touchf" "$BUD -q -t bench-gctx $G"
    docker_cleanup_builds
    $DOCKER rmi -f bench-gctx >/dev/null 2>&1 || true
    $S rmi bench-gctx >/dev/null 2>&1 || true
    $S system prune -f >/dev/null 2>&1 || true
    $BH rmi -f bench-gctx >/dev/null 2>&1 || true
  done
  for n in $GROW_STAGES; do
    log "11. growth: $n parallel stages (RUN echo), final stage copies from each, cold"
    rm -rf "$G" && mkdir -p "$G"
    {
      for i in $(seq "$n"); do printf 'FROM bench-busybox:1.35 AS s%d\nRUN echo %d >/out\n' "$i" "$i"; done
      printf 'FROM bench-busybox:1.35\n'
      for i in $(seq "$n"); do printf 'COPY --from=s%d /out /o%d\n' "$i" "$i"; done
    } >"$G/Dockerfile"
    bench "g-stages$n" strata $RUNS_COLD 0 "" "$S build --no-cache -q -t bench-gst $G"
    bench "g-stages$n" docker $RUNS_COLD 0 "" "$DOCKER build --no-cache -t bench-gst $G >>$DLOG 2>&1"
    bench "g-stages$n" buildah $RUNS_COLD 0 "" "$BUD --no-cache --jobs 4 -q -t bench-gst $G"
    docker_cleanup_builds
    $DOCKER rmi -f bench-gst >/dev/null 2>&1 || true
    $S rmi bench-gst >/dev/null 2>&1 || true
    $S system prune -f >/dev/null 2>&1 || true
    $BH rmi -f bench-gst >/dev/null 2>&1 || true
  done
  # Stores of N distinct images (FROM busybox + LABEL n=i), grown in place.
  SG="$STRATA --root $WORK/grow-strata"
  BG="buildah --root $WORK/grow-buildah/root --runroot $WORK/grow-buildah/run --storage-driver overlay"
  BUDG="$BG bud --isolation chroot --layers --pull=never --signature-policy $WORK/policy.json"
  $SG load -i "$WORK/bases/busybox-image.tar" >/dev/null
  $BG pull -q --signature-policy "$WORK/policy.json" "docker-archive:$WORK/bases/busybox-image.tar" >/dev/null
  rm -rf "$G" && mkdir -p "$G"
  printf 'FROM bench-busybox:1.35\nARG N\nLABEL n=$N\n' >"$G/Dockerfile"
  have=0
  for n in $GROW_IMAGES; do
    log "11. growth: stores with $n images (making $((n - have)) more in each)"
    for i in $(seq $((have + 1)) "$n"); do
      $SG build -q --build-arg N="$i" -t "bench-n:$i" "$G" >/dev/null
      $DOCKER build -q --build-arg N="$i" -t "bench-n:$i" "$G" >/dev/null
      $BUDG -q --build-arg N="$i" -t "bench-n:$i" "$G" >/dev/null
    done
    have=$n
    meta "grow_docker_images_$n" "$($DOCKER images -q | wc -l)"
    bench "g-images$n" strata $RUNS_WARM 1 "" "$SG images"
    bench "g-images$n" docker $RUNS_WARM 1 "" "$DOCKER images"
    bench "g-images$n" buildah $RUNS_WARM 1 "" "$BG images"
    bench "g-df$n" strata $RUNS_WARM 1 "" "$SG system df"
    bench "g-df$n" docker $RUNS_WARM 1 "" "$DOCKER system df"
    bench "g-noop$n" strata $RUNS_WARM 1 "" "$SG build -q --build-arg N=1 -t bench-n:1 $G"
    bench "g-noop$n" docker $RUNS_WARM 1 "" "$DOCKER build -q --build-arg N=1 -t bench-n:1 $G"
    bench "g-noop$n" buildah $RUNS_WARM 1 "" "$BUDG -q --build-arg N=1 -t bench-n:1 $G"
  done
  $DOCKER images --format '{{.Repository}}:{{.Tag}}' | grep '^bench-n:' | xargs -r $DOCKER rmi -f >/dev/null 2>&1 || true
  $BG rm -a >/dev/null 2>&1 || true
  $BG rmi -a -f >/dev/null 2>&1 || true
  findmnt -rn -o TARGET | grep "^$WORK/grow-buildah/" | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$G" "$WORK/grow-strata" "$WORK/grow-buildah"
fi

# --- 12 (reg): pull and push against a local registry -------------------------------------
# An image of busybox + REG_LAYERS layers (1 GB in all) pushed to and pulled
# from Debian's docker-registry on 127.0.0.1 by strata, Docker and skopeo;
# floor: `curl -Z` of the same blobs (every layer of the manifest Docker
# pushed) in parallel into /dev/null. `--only reg` is `--only 12`.
if want 12 || want reg; then
  if ! $STRATA pull --help >/dev/null 2>&1 || ! $STRATA push --help >/dev/null 2>&1; then
    meta reg_status "not measured: this strata has no pull/push"
  else
    scenload reg
    log "12. push and pull of a $((REG_LAYERS + 1))-layer image against docker-registry on 127.0.0.1"
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    REGDIR=$WORK/registry
    mkdir -p "$REGDIR/data"
    cat >"$REGDIR/config.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $REGDIR/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$PORT
EOF
    docker-registry serve "$REGDIR/config.yml" >"$REGDIR/log" 2>&1 &
    REG_PID=$!
    for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$PORT/v2/" >/dev/null 2>&1 && break; sleep 0.2; done
    R=127.0.0.1:$PORT/bench
    C12=$WORK/ctx12
    df='FROM bench-busybox:1.35\n'
    for i in $(seq "$REG_LAYERS"); do
      python3 "$BENCH/gen-tree.py" "$C12/p$i" --files "$REG_LAYER_FILES" --bytes "$REG_LAYER_BYTES" --seed $((100 + i))
      df="${df}COPY p$i /p$i\n"
    done
    printf "$df" >"$C12/Dockerfile"
    $DOCKER build -t bench-reg "$C12" >>"$DLOG" 2>&1
    rm -rf "$C12"
    A=$WORK/reg.tar
    $DOCKER save -o "$A" bench-reg
    meta image_reg "$(du -h --apparent-size "$A" | cut -f1) uncompressed, $((REG_LAYERS + 1)) layers (busybox + $REG_LAYERS layers of $REG_LAYER_FILES files)"
    $S load -i "$A" >/dev/null
    $SKOPEO copy -q "docker-archive:$A" "oci:$WORK/oci-reg:bench-reg" >/dev/null
    rm -f "$A"
    $DOCKER tag bench-reg "$R/img:docker"
    $S tag bench-reg "$R/img:strata"
    wipe="rm -rf $REGDIR/data/docker"
    # push: to an empty registry every run
    bench r-push strata $RUNS_COLD 0 "$wipe" "$S push $R/img:strata"
    bench r-push docker $RUNS_COLD 0 "$wipe" "$DOCKER push -q $R/img:docker"
    bench r-push skopeo $RUNS_COLD 0 "$wipe" "$SKOPEO copy -q --dest-tls-verify=false oci:$WORK/oci-reg:bench-reg docker://$R/img:skopeo"
    # pull: what docker pushed, into an empty store / after removing it
    $DOCKER push -q "$R/img:docker" >/dev/null
    $DOCKER rmi -f bench-reg "$R/img:docker" >/dev/null 2>&1 || true
    docker_cleanup_builds
    bench r-pull strata $RUNS_COLD 0 "rm -rf $WORK/proot" "$STRATA --root $WORK/proot pull $R/img:docker"
    bench r-pull docker $RUNS_COLD 0 "$DOCKER rmi -f $R/img:docker >/dev/null 2>&1; true" "$DOCKER pull -q $R/img:docker"
    bench r-pull skopeo $RUNS_COLD 0 "rm -rf $WORK/skp" "$SKOPEO copy -q --src-tls-verify=false docker://$R/img:docker oci:$WORK/skp:x"
    # Floor: the same blobs, 8 at a time, straight into /dev/null.
    curl -fsS -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
      "http://127.0.0.1:$PORT/v2/bench/img/manifests/docker" >"$WORK/reg-manifest.json"
    python3 - "$WORK/reg-manifest.json" "http://127.0.0.1:$PORT/v2/bench/img/blobs" >"$WORK/curl12.sh" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
urls = [f"{sys.argv[2]}/{l['digest']}" for l in m["layers"]]
print("#!/bin/sh\nexec curl -fsS -Z --parallel-max 8 " + " ".join(f"-o /dev/null {u}" for u in urls))
print(f"# {len(urls)} blobs, {sum(l['size'] for l in m['layers'])} bytes", file=sys.stderr)
PY
    meta reg_blobs "$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(len(m["layers"]), sum(l["size"] for l in m["layers"]))' "$WORK/reg-manifest.json")"
    bench r-curl curl $RUNS_COLD 0 "" "sh $WORK/curl12.sh"
    rm -rf "$WORK/proot" "$WORK/skp" "$WORK/oci-reg"
    meta reg_status measured
  fi
fi

meta load_end "$(cut -d' ' -f1-3 /proc/loadavg)"
meta loads "$LOADS"
meta others "$(awk '{n++; if ($1 > 0) b++} END {printf "%d of %d samples (%.0f%%)", b, n, n ? 100*b/n : 0}' "$RES/others.samples" 2>/dev/null)"
log "Report -> $OUT"
python3 "$BENCH/report.py" "$RES" >"$OUT"
cp "$OUT" "$RES/benchmarks.md" 2>/dev/null || true
if [ $PUBLISH = 1 ]; then
  mkdir -p "$BENCH/results"
  rm -f "$BENCH/results"/*.json "$BENCH/results"/*.rss "$BENCH/results"/meta.env
  cp "$RES"/*.json "$RES"/*.rss "$RES/meta.env" "$BENCH/results/"
fi
[ ! -s "$RES/failures" ] || { echo "run.sh: failed measurements:" >&2; cat "$RES/failures" >&2; }
