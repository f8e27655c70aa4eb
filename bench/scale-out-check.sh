#!/usr/bin/env bash
# bench/scale-out-check.sh — the essential piece of docs/scale-out.md, on one
# machine: strata run rootless INSIDE a strata container, as an unprivileged
# user with no capabilities added, builds the tutorial (Second_Try) with
# --cache-from a registry cache and runs 0 RUN steps.
#
#   bench/scale-out-check.sh [--strata BIN] [--keep]
#
# 1. A local docker-registry on 127.0.0.1 (the shared cache and the bases).
# 2. The bases (scripts/make-base-rootfs.sh: busybox:1.35, golang:1.19) are
#    imported into a host store and pushed to it; the tutorial's FROM lines
#    name them there.
# 3. Seed: root on the host builds the tutorial with
#    --cache-to type=registry,ref=REG/cache/tutorial,mode=max.
# 4. A builder image: the Debian bookworm minbase of bench/debian-base.sh
#    plus the host's strata, runc and pasta binaries and a user `builder`
#    (uid 1000).
# 5. The check: `strata run --rm -u 1000:1000` of the builder image (plus
#    the options a user-namespaced Kubernetes pod can be given, see
#    docs/scale-out.md), with the builder's store on a bind mount (the
#    pod's emptyDir), runs `strata build --cache-from type=registry,...`
#    of the same context. It passes when the build succeeds and reports
#    both RUN steps as cache hits (none ran).
#
# Prints each step and what failed; exit 0 only when the check passes.
# Needs root, docker-registry, runc, pasta, mmdebstrap (the Debian base).
set -euo pipefail
BENCH=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$BENCH")
STRATA="" KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
  --strata) STRATA=$(readlink -f "$2"); shift ;;
  --keep) KEEP=1 ;;
  -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//p}' "$0"; exit 0 ;;
  *) echo "scale-out-check.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$STRATA" ] || STRATA=$(command -v strata) || { echo "no strata (use --strata BIN)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "scale-out-check.sh: run as root" >&2; exit 2; }
step() { printf '\n\033[1m==> %s\033[0m\n' "$*" >&2; }

W=$(mktemp -d /var/tmp/strata-scale-out.XXXXXX)
S="$STRATA --root $W/host-store"
REG_PID=""
cleanup() {
  set +e
  [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null
  # Files of the builder's store belong to uid 1000's namespace: root removes them.
  findmnt -rn -o TARGET | grep "^$W/" | sort -r | xargs -r -n1 umount -l 2>/dev/null
  if [ $KEEP = 1 ]; then echo "kept $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT

step "1. docker-registry on 127.0.0.1"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$W/registry"
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
  "$W/registry/data" "$PORT" >"$W/registry/config.yml"
docker-registry serve "$W/registry/config.yml" >"$W/registry/log" 2>&1 &
REG_PID=$!
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$PORT/v2/" >/dev/null 2>&1 && break; sleep 0.2; done
REG=127.0.0.1:$PORT
INSECURE="--insecure-registry $REG"

step "2. Bases into the registry"
"$REPO/scripts/make-base-rootfs.sh" "$W/bases" 2>/dev/null
for b in busybox:busybox:1.35 golang:golang:1.19; do
  src=${b%%:*} tag=${b#*:}
  changes=()
  while IFS= read -r c; do changes+=(--change "$c"); done < <("$REPO/scripts/make-base-rootfs.sh" --print-changes "$src")
  $S import "${changes[@]}" "$W/bases/$src.tar" "$REG/library/$tag" >/dev/null
  $S push -q $INSECURE "$REG/library/$tag" >/dev/null
done
rm -rf "$W/bases"
CTX=$W/ctx
cp -r "$REPO/examples/tutorial/Second_Try" "$CTX"
sed -i "s#^FROM golang:1.19#FROM $REG/library/golang:1.19#; s#^FROM busybox:1.35#FROM $REG/library/busybox:1.35#" "$CTX/Dockerfile"
chmod -R a+rX "$CTX"

step "3. Seed the registry cache (root, host store)"
CACHE="type=registry,ref=$REG/cache/tutorial"
$S build $INSECURE --progress plain --cache-to "$CACHE,mode=max" -t tutorial "$CTX" 2>"$W/seed.log" >/dev/null ||
  { tail -20 "$W/seed.log" >&2; echo "FAILED: the seed build" >&2; exit 1; }
grep -c 'RUN' "$W/seed.log" >/dev/null || true

step "4. Builder image: Debian minbase + strata, runc, pasta; user builder (uid 1000)"
DEB=$("$BENCH/debian-base.sh")
$S import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' "$DEB" scale-out-debian >/dev/null
B=$W/builder
mkdir -p "$B"
cp "$STRATA" "$B/strata"
cp "$(command -v runc)" "$B/runc"
cp "$(command -v pasta)" "$B/pasta"
cat >"$B/Dockerfile" <<'EOF'
FROM scale-out-debian
COPY strata runc pasta /usr/local/bin/
RUN useradd -m -u 1000 -s /bin/sh builder && mkdir -p /home/builder/.local/share/strata && chown -R builder:builder /home/builder
USER builder
WORKDIR /home/builder
EOF
$S build -q -t scale-out-builder "$B" >/dev/null

step "5. The check: rootless strata inside a strata container, --cache-from the registry"
STORE=$W/emptydir
mkdir -p "$STORE" && chown 1000:1000 "$STORE"
# What a user-namespaced pod may be given: see docs/scale-out.md.
RUN_OPTS=${SCALE_OUT_RUN_OPTS---network host --security-opt seccomp=unconfined}
set +e
$S run --rm -u 1000:1000 $RUN_OPTS \
  -v "$STORE:/home/builder/.local/share/strata" -v "$CTX:/ctx:ro" -e HOME=/home/builder \
  scale-out-builder \
  strata build $INSECURE --progress plain --cache-from "$CACHE" -t tutorial /ctx >"$W/check.out" 2>"$W/check.log"
rc=$?
set -e
cat "$W/check.log" >&2
[ $rc = 0 ] || { echo "FAILED: the nested build exited $rc" >&2; exit 1; }
echo "$W/check.log" >&2
