#!/usr/bin/env python3
"""bench/make-big-base.py OUT.tar GOLANG.tar

A docker-archive (docker save format) of a ~1 GB multi-layer Go base, tagged
unpack-bench-go:big, for bench/first-use.sh: the golang:1.19 rootfs of
scripts/make-base-rootfs.sh (GOLANG.tar), then one layer each for host trees
(/usr/include, /usr/lib/gcc, /usr/share/locale, /usr/share/doc; owners 0:0,
mtimes clamped), then a small layer with a whiteout and an opaque dir.
6 layers, 995 MB of tar, ~32,000 entries on the Debian 12 VM of
bench/profile.md. Layers are written uncompressed, as `docker save` does."""
import hashlib, io, json, os, sys, tarfile

out, golang = sys.argv[1], sys.argv[2]
work = os.path.dirname(os.path.abspath(out)) + "/archive-work"
os.makedirs(work, exist_ok=True)
layers = []

def add_tar(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    layers.append((path, h.hexdigest()))

def clamp(ti):
    ti.mtime = 1_700_000_000
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    return ti

add_tar(golang)
for i, src in enumerate(["/usr/include", "/usr/lib/gcc", "/usr/share/locale", "/usr/share/doc"]):
    p = f"{work}/layer{i}.tar"
    with tarfile.open(p, "w", format=tarfile.PAX_FORMAT) as t:
        t.add(src, arcname=src.lstrip("/"), filter=clamp)
    add_tar(p)
p = f"{work}/layer-wh.tar"
with tarfile.open(p, "w", format=tarfile.PAX_FORMAT) as t:
    for name in ["usr/share/doc/.wh..wh..opq", "usr/include/.wh.linux"]:
        t.addfile(clamp(tarfile.TarInfo(name)), io.BytesIO(b""))
    data = b"replaced docs\n"
    ti = clamp(tarfile.TarInfo("usr/share/doc/README"))
    ti.size = len(data)
    t.addfile(ti, io.BytesIO(data))
add_tar(p)

config = {
    "architecture": "amd64", "os": "linux",
    "config": {"Env": ["PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "GOPATH=/go"],
               "Cmd": ["sh"], "WorkingDir": "/go"},
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + d for _, d in layers]},
    "history": [{"created": "2023-11-14T22:13:20Z", "created_by": f"layer {i}"} for i in range(len(layers))],
}
cfg = json.dumps(config).encode()
cfg_name = hashlib.sha256(cfg).hexdigest() + ".json"
with tarfile.open(out, "w") as t:
    ti = tarfile.TarInfo(cfg_name); ti.size = len(cfg)
    t.addfile(ti, io.BytesIO(cfg))
    names = []
    for path, d in layers:
        name = f"{d}/layer.tar"
        t.add(path, arcname=name)
        names.append(name)
    m = json.dumps([{"Config": cfg_name, "RepoTags": ["unpack-bench-go:big"], "Layers": names}]).encode()
    ti = tarfile.TarInfo("manifest.json"); ti.size = len(m)
    t.addfile(ti, io.BytesIO(m))
print(out, len(layers), "layers")
