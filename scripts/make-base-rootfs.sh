#!/bin/sh
# make-base-rootfs.sh — build offline base image rootfs tarballs from Debian
# packages, for `strata import` (no registry is reachable here).
#
#   make-base-rootfs.sh OUTDIR            writes OUTDIR/busybox.tar and OUTDIR/golang.tar
#   make-base-rootfs.sh --print-changes busybox|golang
#                                         prints the image config, one `--change` value per line
#   make-base-rootfs.sh --print-import OUTDIR
#                                         prints the `strata import` commands for both tarballs
#
# busybox.tar (tag busybox:1.35): static busybox (Debian busybox-static) at
#   /bin/busybox with every applet of `busybox --list` hard-linked in /bin, as
#   Docker's busybox image; /etc/passwd and /etc/group from buildroot's
#   skeleton (what the busybox image ships); /tmp 1777, /root 0700, /home,
#   /usr/sbin, /var/spool/mail, /var/www.
# golang.tar (tag golang:1.19): the busybox tree plus GOROOT (Debian
#   golang-go, /usr/lib/go-1.19) at /usr/local/go with its symlinks into
#   /usr/share/go-1.19 dereferenced, the glibc loader and libc that bin/go
#   needs, /go/bin and /go/src.
#
# Output is deterministic for a given set of installed packages: names sorted,
# owner 0:0 numeric, mtimes clamped to SOURCE_DATE_EPOCH (default: the mtime
# of the busybox binary). As root, missing packages are installed with apt-get.
set -eu

BUSYBOX_CHANGES='ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CMD ["sh"]'

GOROOT_SRC=/usr/lib/go-1.19

go_version() {
    if [ -r "$GOROOT_SRC/VERSION" ]; then
        sed -n '1s/^go//p' "$GOROOT_SRC/VERSION"
    else
        echo 1.19
    fi
}

golang_changes() {
    # The official golang:1.19 image: ENV PATH, GOLANG_VERSION, GOPATH,
    # WORKDIR /go. Its CMD is bash; this rootfs has busybox sh instead.
    printf '%s\n' \
        'ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        "ENV GOLANG_VERSION=$(go_version)" \
        'ENV GOPATH=/go' \
        'WORKDIR /go' \
        'CMD ["sh"]'
}

die() {
    echo "make-base-rootfs: $*" >&2
    exit 1
}

usage() {
    sed -n '4,9s/^# \{0,1\}//p' "$0" >&2
    exit 2
}

case "${1:-}" in
--print-changes)
    case "${2:-}" in
    busybox) printf '%s\n' "$BUSYBOX_CHANGES" ;;
    golang) golang_changes ;;
    *) usage ;;
    esac
    exit 0
    ;;
--print-import)
    [ -n "${2:-}" ] || usage
    for img in busybox golang; do
        if [ $img = busybox ]; then tag=busybox:1.35; else tag=golang:1.19; fi
        printf 'strata import %s/%s.tar %s' "$2" "$img" "$tag"
        if [ $img = busybox ]; then
            printf '%s\n' "$BUSYBOX_CHANGES"
        else
            golang_changes
        fi | while IFS= read -r c; do
            printf " --change '%s'" "$c"
        done
        printf '\n'
    done
    exit 0
    ;;
-h | --help | "") usage ;;
-*) usage ;;
esac

OUTDIR=$1
umask 022

# --- packages -------------------------------------------------------------
need=""
[ -x /usr/bin/busybox ] && /usr/bin/busybox --list >/dev/null 2>&1 || need="$need busybox-static"
[ -x "$GOROOT_SRC/bin/go" ] || need="$need golang-go"
if [ -n "$need" ]; then
    [ "$(id -u)" = 0 ] || die "missing Debian packages:$need (run as root or: apt-get install$need)"
    echo "make-base-rootfs: installing$need" >&2
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $need >&2 ||
        { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $need >&2; } ||
        die "apt-get install$need failed"
fi
file /usr/bin/busybox 2>/dev/null | grep -q 'statically linked' ||
    ldd /usr/bin/busybox 2>&1 | grep -q 'not a dynamic' ||
    die "/usr/bin/busybox is not static: install busybox-static (not busybox)"

SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(stat -c %Y /usr/bin/busybox)}
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/make-base-rootfs.XXXXXX")
trap 'rm -rf "$WORK"' EXIT INT TERM

# --- busybox --------------------------------------------------------------
make_busybox() {
    r=$1
    mkdir -p "$r/bin" "$r/dev" "$r/etc" "$r/home" "$r/root" "$r/tmp" \
        "$r/usr/sbin" "$r/var/spool/mail" "$r/var/www"
    chmod 0700 "$r/root"
    chmod 1777 "$r/tmp"
    cp /usr/bin/busybox "$r/bin/busybox"
    chmod 0755 "$r/bin/busybox"
    for applet in $(/usr/bin/busybox --list); do
        [ -e "$r/bin/$applet" ] || ln "$r/bin/busybox" "$r/bin/$applet"
    done
    cat >"$r/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
EOF
    cat >"$r/etc/group" <<'EOF'
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
lp:x:7:
mail:x:8:
kmem:x:9:
wheel:x:10:root
cdrom:x:11:
dialout:x:18:
floppy:x:19:
video:x:28:
audio:x:29:
tape:x:32:
www-data:x:33:
operator:x:37:
utmp:x:43:
plugdev:x:46:
staff:x:50:
lock:x:54:
netdev:x:82:
users:x:100:
nogroup:x:65534:
EOF
    cat >"$r/etc/shadow" <<'EOF'
root:*:10933:0:99999:7:::
daemon:*:10933:0:99999:7:::
bin:*:10933:0:99999:7:::
sys:*:10933:0:99999:7:::
sync:*:10933:0:99999:7:::
mail:*:10933:0:99999:7:::
www-data:*:10933:0:99999:7:::
operator:*:10933:0:99999:7:::
nobody:*:10933:0:99999:7:::
EOF
    chmod 0644 "$r/etc/passwd" "$r/etc/group"
    chmod 0640 "$r/etc/shadow"
}

# --- golang ---------------------------------------------------------------
make_golang() {
    r=$1
    make_busybox "$r"
    mkdir -p "$r/usr/local"
    # -L: src, api, misc, test and pkg/include are links into /usr/share/go-1.19.
    cp -RL --preserve=mode,timestamps "$GOROOT_SRC" "$r/usr/local/go"
    mkdir -p "$r/lib/x86_64-linux-gnu" "$r/lib64" "$r/go/bin" "$r/go/src"
    chmod 0777 "$r/go" "$r/go/bin" "$r/go/src"
    # The loader and every library bin/go links against (ldd), at the paths
    # Debian has them.
    for lib in $(ldd "$GOROOT_SRC/bin/go" | awk '/=>/ { print $3 } /^\t\// { print $1 }'); do
        real=$(readlink -f "$lib")
        dest="$r/lib/x86_64-linux-gnu/$(basename "$lib")"
        case "$lib" in
        /lib64/*) dest="$r/lib/x86_64-linux-gnu/$(basename "$real")" ;;
        esac
        cp "$real" "$dest"
        chmod 0755 "$dest"
    done
    ln -sf /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$r/lib64/ld-linux-x86-64.so.2"
    [ -e "$r/lib/x86_64-linux-gnu/libc.so.6" ] || die "libc.so.6 not found by ldd"
}

pack() {
    root=$1 out=$2
    # --clamp-mtime: files newer than SOURCE_DATE_EPOCH get it as mtime.
    # shellcheck disable=SC2046
    (cd "$root" && LC_ALL=C tar --format=gnu --sort=name --numeric-owner --owner=0 --group=0 \
        --mtime="@$SOURCE_DATE_EPOCH" --clamp-mtime \
        -cf "$out.tmp" -- $(LC_ALL=C ls -A | LC_ALL=C sort))
    mv "$out.tmp" "$out"
    echo "make-base-rootfs: wrote $out ($(du -h "$out" | cut -f1))" >&2
}

make_busybox "$WORK/busybox"
pack "$WORK/busybox" "$OUTDIR/busybox.tar"
rm -rf "$WORK/busybox"
make_golang "$WORK/golang"
pack "$WORK/golang" "$OUTDIR/golang.tar"
rm -rf "$WORK/golang"

# The demo imports them itself and asks for no hints.
if [ "${MAKE_BASE_QUIET:-}" != 1 ]; then
  echo "make-base-rootfs: import them with:" >&2
  "$0" --print-import "$OUTDIR" >&2
fi
