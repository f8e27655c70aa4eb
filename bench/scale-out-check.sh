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
# 5. The check, in a strata container: `strata run --rm -u 1000:1000
#    --network host --security-opt seccomp=unconfined` of the builder image
#    (no capabilities added; uid 1000 has none), the builder's store on a
#    bind mount (the pod's emptyDir), runs `strata build --cache-from
#    type=registry,...` of the same context. Passes when the build succeeds
#    and every RUN step is a cache hit. 5b: the same with strata's default
#    seccomp profile. 5c (reported, not required): a build that must run
#    its RUN steps there (--no-cache), which fails: /proc is masked (see
#    docs/scale-out.md). 5d: the same with `--security-opt
#    systempaths=unconfined` (Docker's flag, Kubernetes' procMount:
#    Unmasked), which must pass.
# 6. The same builder as a Kubernetes pod with `hostUsers: false` would run
#    it, emulated with runc: a user namespace (container ids 0-65535 on host
#    100000-165535, the rootfs shifted to match as an idmapped mount does),
#    an unmasked /proc (`procMount: Unmasked`), no seccomp filter
#    (`seccompProfile: Unconfined`), containerd's default capability
#    bounding set, uid 1000, host network. 6a: the cached build, with
#    --cache-to the registry as well; 6b: --no-cache, every RUN step runs.
#    Both must pass.
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

# runs LOG: "N M": the RUN steps of a --progress plain log, and how many were not cache hits.
runs() {
  python3 - "$1" <<'PY'
import re, sys
steps, status = {}, {}
for line in open(sys.argv[1], errors="replace"):
    m = re.match(r"#(\d+) \[[^]]*\] (.*)", line)
    if m:
        steps[m[1]] = m[2]
        continue
    m = re.match(r"#(\d+) (CACHED|DONE|ERROR)", line)
    if m:
        status[m[1]] = m[2]
run = [k for k, v in steps.items() if v.startswith("RUN ")]
print(len(run), sum(status.get(k) != "CACHED" for k in run))
PY
}
FAILED=0
# verdict NAME LOG RC WANT: WANT=cached (every RUN a hit) or ran (every RUN ran).
verdict() {
  local name=$1 log=$2 rc=$3 want=$4 n m
  read -r n m < <(runs "$log")
  if [ "$rc" != 0 ]; then
    echo "FAIL  $name: exit $rc; $(grep -m1 -E '^strata: error|ERROR' "$log" || tail -1 "$log")" >&2
    return 1
  elif [ "$want" = cached ] && { [ "$n" = 0 ] || [ "$m" != 0 ]; }; then
    echo "FAIL  $name: $n RUN steps, $m of them ran (want all cached)" >&2
    return 1
  elif [ "$want" = ran ] && [ "$m" != "$n" ]; then
    echo "FAIL  $name: $n RUN steps, only $m ran" >&2
    return 1
  fi
  echo "PASS  $name: $n RUN steps, $m ran" >&2
}

STORE=$W/emptydir
fresh_store() { rm -rf "$STORE" && mkdir -p "$STORE" && chown "$1" "$STORE"; }
nested() { # NAME WANT RUN-OPTIONS... -- BUILD-OPTIONS...
  local name=$1 want=$2 opts=() rc
  shift 2
  while [ "$1" != -- ]; do opts+=("$1"); shift; done
  shift
  fresh_store 1000:1000
  set +e
  $S run --rm -u 1000:1000 "${opts[@]}" \
    -v "$STORE:/home/builder/.local/share/strata" -v "$CTX:/ctx:ro" -e HOME=/home/builder \
    scale-out-builder strata build $INSECURE --progress plain "$@" -t tutorial /ctx >/dev/null 2>"$W/$name.log"
  rc=$?
  set -e
  verdict "$name" "$W/$name.log" $rc "$want"
}

step "5. Rootless strata inside a strata container (uid 1000, no capabilities), --cache-from the registry"
nested 5a-strata-container cached --network host --security-opt seccomp=unconfined -- --cache-from "$CACHE" || FAILED=1
nested 5b-strata-container-default-seccomp cached --network host -- --cache-from "$CACHE" || FAILED=1
nested 5c-strata-container-cache-miss ran --network host --security-opt seccomp=unconfined -- --no-cache ||
  echo "      (5c is reported, not required: a strata container masks /proc, see docs/scale-out.md)" >&2
nested 5d-strata-container-unmasked-cache-miss ran --network host --security-opt seccomp=unconfined \
  --security-opt systempaths=unconfined -- --no-cache || FAILED=1

step "6. The same as a user-namespaced Kubernetes pod would run it (runc: userns, procMount Unmasked, seccomp Unconfined)"
P=$W/pod
chmod 755 "$W"
$S build -q -o "type=local,dest=$P/rootfs" "$B" >/dev/null
mkdir -p "$P/rootfs/dev" "$P/rootfs/proc" "$P/rootfs/sys" "$P/rootfs/tmp"
chmod 1777 "$P/rootfs/tmp"
# The pod's ids are host 100000 + id: shift the rootfs (what an idmapped mount does for the kubelet).
python3 - "$P/rootfs" <<'PY'
import os, sys
for d, ds, fs in os.walk(sys.argv[1]):
    for n in [d] + [os.path.join(d, x) for x in ds + fs]:
        st = os.lstat(n)
        os.lchown(n, st.st_uid + 100000, st.st_gid + 100000)
PY
(cd "$P" && runc spec --rootless)
pod() { # NAME WANT BUILD-OPTIONS...
  local name=$1 want=$2 rc
  shift 2
  fresh_store 101000:101000
  python3 - "$P/config.json" "$STORE" "$CTX" "strata build $INSECURE --progress plain $* -t tutorial /ctx" <<'PY'
import json, sys
path, store, ctx, cmd = sys.argv[1:]
c = json.load(open(path))
p = c["process"]
p.update(terminal=False, user={"uid": 1000, "gid": 1000}, cwd="/home/builder", args=["sh", "-c", cmd],
         env=["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/home/builder"],
         noNewPrivileges=False)
# containerd's default set (what a pod gets); uid 1000 holds none of them.
caps = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
        "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
        "CAP_AUDIT_WRITE"]
p["capabilities"] = {"bounding": caps, "permitted": [], "effective": [], "inheritable": []}
c["root"]["readonly"] = False
lx = c["linux"]
lx["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
lx["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
# Host network (the registry listens on 127.0.0.1); user, mount, pid, ipc, uts namespaces.
lx["namespaces"] = [n for n in lx["namespaces"] if n["type"] != "network"]
lx["maskedPaths"], lx["readonlyPaths"] = [], []  # procMount: Unmasked
lx.pop("seccomp", None)  # seccompProfile: Unconfined
c["mounts"] = [m for m in c["mounts"] if m["destination"] not in ("/home/builder/.local/share/strata", "/ctx", "/etc/resolv.conf")]
c["mounts"] += [
    {"destination": "/home/builder/.local/share/strata", "type": "bind", "source": store, "options": ["rbind", "rw"]},
    {"destination": "/ctx", "type": "bind", "source": ctx, "options": ["rbind", "ro"]},
    {"destination": "/etc/resolv.conf", "type": "bind", "source": "/etc/resolv.conf", "options": ["rbind", "ro"]},
]
json.dump(c, open(path, "w"), indent=1)
PY
  set +e
  (cd "$P" && runc run "scale-out-check-$$" >/dev/null 2>"$W/$name.log" </dev/null)
  rc=$?
  set -e
  runc delete -f "scale-out-check-$$" >/dev/null 2>&1 || true
  verdict "$name" "$W/$name.log" $rc "$want"
}
pod 6a-pod-cached cached --cache-from "$CACHE" --cache-to "$CACHE-pod,mode=max" || FAILED=1
if [ $FAILED = 0 ]; then
  # What 6a exported is a cache too: a second pod builds from it with 0 RUN steps.
  pod 6a-pod-from-pod-cache cached --cache-from "$CACHE-pod" || FAILED=1
fi
pod 6b-pod-cache-miss ran --no-cache || FAILED=1

echo >&2
if [ $FAILED = 0 ]; then echo "scale-out-check: PASS (logs in $W when --keep)" >&2; else echo "scale-out-check: FAIL (logs: --keep)" >&2; fi
exit $FAILED
