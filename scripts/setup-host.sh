#!/usr/bin/env bash
# Installs the system packages strata needs (Debian 12) and starts the
# services the test suite uses. Idempotent: cheap when all is there.
#   setup-host.sh         everything the test suite needs, dockerd started
#   setup-host.sh demo    only what the tutorial demo needs (no dockerd)
set -euo pipefail

MODE=${1:-test}
if [ "$MODE" = demo ]; then
  # passt: pasta gives RUN steps their private network with outbound access.
  PACKAGES=(runc busybox-static golang-go passt)
else
  PACKAGES=(runc busybox-static golang-go passt docker.io skopeo docker-registry
            apache2-utils hyperfine time xz-utils zstd bzip2 git uidmap iproute2
            # the compat suite's Debian bases (tests/compat/debian)
            mmdebstrap ca-certificates
            # foreign platforms' RUN steps (tests/it/platforms.rs)
            qemu-user-static)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup-host: missing packages: ${missing[*]} (run as root to install them)" >&2
    exit 1
  fi
  echo "setup-host: installing ${missing[*]}"
  # Another apt or dpkg on the machine (unattended upgrades, a second
  # terminal) holds the lock: wait for it instead of failing at once.
  apt_opts=(-o DPkg::Lock::Timeout=600)
  apt-get "${apt_opts[@]}" update -qq
  DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The arm64 busybox the multi-platform tests use (tests/it/platforms.rs):
# Debian's busybox-static:arm64, unpacked once; the foreign architecture is
# removed again so apt stays single-arch. No binfmt-support: the tests (or
# `strata binfmt install`) register qemu with the F flag themselves.
ARM64_BUSYBOX=/var/cache/strata-ci/busybox-arm64
if [ "$MODE" != demo ] && [ "$(id -u)" -eq 0 ] && [ ! -x "$ARM64_BUSYBOX/bin/busybox" ]; then
  tmp=$(mktemp -d)
  dpkg --add-architecture arm64
  if apt-get -o DPkg::Lock::Timeout=600 update -qq && (cd "$tmp" && apt-get download -qq busybox-static:arm64); then
    mkdir -p "$ARM64_BUSYBOX" && dpkg-deb -x "$tmp"/busybox-static_*_arm64.deb "$ARM64_BUSYBOX"
  else
    echo "setup-host: could not download busybox-static:arm64 (multi-platform tests will skip)" >&2
  fi
  dpkg --remove-architecture arm64
  apt-get -o DPkg::Lock::Timeout=600 update -qq || true
  rm -rf "$tmp"
fi

# dockerd for the compatibility suite (Docker's classic builder is the oracle).
if [ "$MODE" != demo ] && [ "${STRATA_NO_DOCKERD:-}" != 1 ] && ! docker info >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v dockerd >/dev/null; then
    mkdir -p /var/log/strata-ci
    nohup dockerd --iptables=false --ip6tables=false --bridge=none \
      >/var/log/strata-ci/dockerd.log 2>&1 &
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || { echo "setup-host: dockerd did not start:"; tail -20 /var/log/strata-ci/dockerd.log; exit 1; }
    echo "setup-host: dockerd started"
  fi
fi
