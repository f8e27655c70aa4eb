#!/usr/bin/env bash
# bench/debian-base.sh — prints the path of a Debian bookworm minbase rootfs
# tarball for scenario 9 of bench/run.sh, making it first when missing:
#
#   mmdebstrap --variant=minbase --format=tar --skip=output/dev bookworm OUT.tar MIRROR
#
# MIRROR is the machine's configured Debian mirror: the first URI of an
# enabled `Types: deb` paragraph for bookworm in /etc/apt/sources.list.d/*.sources,
# else the first `deb [opts] URI bookworm ...` line of /etc/apt/sources.list
# or sources.list.d/*.list (the logic of mirror() in
# crates/strata/tests/common/compat/debian.rs). SOURCE_DATE_EPOCH is fixed,
# so the same recipe gives the same bytes. The tarball is cached under
# ${STRATA_BENCH_CACHE:-/var/cache/strata-bench}, keyed by a hash of the
# recipe (arguments, mirror, epoch); older recipes are removed when a new one
# is made. Needs root and the mirror (~1-2 min the first time).
set -euo pipefail
CACHE=${STRATA_BENCH_CACHE:-/var/cache/strata-bench}
EPOCH=1700000000
RECIPE_VERSION=1

mirror() {
  local f uri
  for f in $(ls /etc/apt/sources.list.d/*.sources 2>/dev/null | sort); do
    # deb822: paragraphs separated by blank lines, comments dropped.
    uri=$(awk -v RS= '
      {
        types = suites = uris = ""; enabled = 1
        n = split($0, L, "\n")
        for (i = 1; i <= n; i++) {
          if (L[i] ~ /^[ \t]*#/) continue
          k = tolower(L[i]); sub(/:.*/, "", k); gsub(/[ \t]/, "", k)
          v = L[i]; sub(/^[^:]*:[ \t]*/, "", v)
          if (k == "types") types = " " v " "
          else if (k == "suites") suites = " " v " "
          else if (k == "uris") uris = v
          else if (k == "enabled" && v == "no") enabled = 0
        }
        if (enabled && types ~ / deb / && suites ~ /[ \t]bookworm[ \t]/ && uris != "") {
          split(uris, U, /[ \t]+/); print U[1]; exit
        }
      }' "$f")
    [ -n "$uri" ] && { echo "$uri"; return 0; }
  done
  for f in /etc/apt/sources.list $(ls /etc/apt/sources.list.d/*.list 2>/dev/null | sort); do
    [ -f "$f" ] || continue
    uri=$(awk '$1 == "deb" {
        i = 2
        if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
        if ($(i + 1) == "bookworm") { print $i; exit }
      }' "$f")
    [ -n "$uri" ] && { echo "$uri"; return 0; }
  done
  echo "debian-base.sh: no Debian mirror for bookworm in /etc/apt/sources.list.d/*.sources, *.list or /etc/apt/sources.list" >&2
  return 1
}

M=$(mirror)
ARGS=(--variant=minbase --format=tar --skip=output/dev bookworm)
key=$(printf 'v%s epoch %s %s mirror %s\n' "$RECIPE_VERSION" "$EPOCH" "${ARGS[*]}" "$M" | sha256sum | cut -c1-16)
OUT=$CACHE/bookworm-minbase-$key.tar
if [ ! -s "$OUT" ]; then
  mkdir -p "$CACHE"
  exec 9>"$CACHE/bookworm-minbase.lock"
  flock 9
  if [ ! -s "$OUT" ]; then
    echo "debian-base.sh: mmdebstrap bookworm minbase from $M (once per recipe, cached in $CACHE)" >&2
    rm -f "$CACHE"/bookworm-minbase-*.tar "$CACHE"/bookworm-minbase-*.tmp
    SOURCE_DATE_EPOCH=$EPOCH mmdebstrap -q "${ARGS[@]}" "$OUT.tmp" "$M" >&2
    mv "$OUT.tmp" "$OUT"
  fi
fi
echo "$OUT"
