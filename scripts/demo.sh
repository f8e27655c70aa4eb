#!/usr/bin/env bash
# The Docker multi-stage tutorial with strata, end to end, offline.
#
# Installs runc, busybox-static and golang-go when missing, builds strata,
# creates the base images busybox:1.35 and golang:1.19 from Debian's packages
# with `strata import` (no registry is reachable here; online, the same
# Dockerfiles pull the images of the same names), builds First_Try
# (single-stage) and Second_Try (multi-stage), runs both, and shows both
# sizes side by side.
#
# The store is $STRATA_ROOT when set, else strata's default.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "Installing what the demo needs"
scripts/setup-host.sh demo

step "Building strata (a few minutes the first time; cargo shows its progress)"
cargo build --release -p strata
# CARGO_TARGET_DIR moves the build output; honour it.
STRATA=${CARGO_TARGET_DIR:-$PWD/target}/release/strata

# The bases are made once: a second run reuses them (same image IDs, no
# dangling images left by re-importing).
if "$STRATA" inspect busybox:1.35 >/dev/null 2>&1 && "$STRATA" inspect golang:1.19 >/dev/null 2>&1; then
  step "Base images busybox:1.35 and golang:1.19 are already in the store"
else
  step "Creating the base images from Debian's packages"
  BASES=$(mktemp -d)
  trap 'rm -rf "$BASES"' EXIT
  MAKE_BASE_QUIET=1 scripts/make-base-rootfs.sh "$BASES"
  "$STRATA" import "$BASES/busybox.tar" busybox:1.35 \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["sh"]'
  "$STRATA" import "$BASES/golang.tar" golang:1.19 \
    --change 'ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV GOLANG_VERSION=1.19.8' \
    --change 'ENV GOPATH=/go' \
    --change 'WORKDIR /go' \
    --change 'CMD ["sh"]'
fi

step "First_Try: single-stage build"
"$STRATA" build -t first-try examples/tutorial/First_Try
step "Second_Try: multi-stage build"
"$STRATA" build -t second-try examples/tutorial/Second_Try

step "Running both"
first=$("$STRATA" run --rm first-try)
second=$("$STRATA" run --rm second-try)
echo "first-try:  $first"
echo "second-try: $second"
want='DevOps is the 🐐'
[ "$first" = "$want" ] || { echo "first-try printed '$first', expected '$want'" >&2; exit 1; }
[ "$second" = "$want" ] || { echo "second-try printed '$second', expected '$want'" >&2; exit 1; }

step "Images"
"$STRATA" image ls
# Bytes (inspect's Size is a number; `image ls --format json` prints "6.03MB" as Docker does).
size() { "$STRATA" inspect -f '{{.Size}}' "$1"; }
s1=$(size first-try); s2=$(size second-try)
python3 -c "print(f'first-try is {$s1/1e6:.1f} MB, second-try is {$s2/1e6:.1f} MB: the multi-stage image is {$s1/$s2:.0f}x smaller')"

store=${STRATA_ROOT:-}
if [ -z "$store" ]; then
  if [ "$(id -u)" -eq 0 ]; then store=/var/lib/strata; else store=${XDG_DATA_HOME:-$HOME/.local/share}/strata; fi
fi
step "Done"
cat <<NEXT
The images are in the store at $store (set STRATA_ROOT or --root to use another).
The binary is $STRATA; put it on PATH with: export PATH=$(dirname "$STRATA"):\$PATH
Try next:
  strata image explain second-try          # where the bytes of an image come from
  strata check --suggest-multistage examples/tutorial/First_Try
  strata history second-try; strata run --rm -it busybox:1.35 sh
NEXT
