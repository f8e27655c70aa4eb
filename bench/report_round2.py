"""The sections of docs/benchmarks.md for performance round 2 (issue 20):
floors beside the peers, the Debian workload and the store's disk use
(scenario 9), first use of a large base (10), growth series (11), the
registry against curl (12), and every round-2 target met, missed or not
measured. Called by report.py with its readers and formatters; a scenario
that was not run shows as "not measured"."""
import math


def write(w, M, med, rss_mb, fs, fr, fm, verdict):
    targets = []  # (scenario, what, value text, target text, ok)

    def ratio(a, b):
        return None if a is None or b is None or b == 0 else a / b

    def le(x, limit):
        return None if x is None else x <= limit

    def rt(x):
        return "—" if x is None else f"{x:.2f}×"

    w("## Round 2: floors, real-world workloads, growth (issue 20)\n")
    w("A floor is the same work done without a builder: the RUN command under `strata run --rm` "
      "(no snapshot to commit, no cache, no image), `runc run` of an OCI bundle of the same rootfs, "
      "`curl` of the same blobs. A builder cannot beat its floor; the targets say how close it must get.\n")

    # --- floors of 5, 7, 9 --------------------------------------------------------------
    w("### Floors\n")
    w("| # | work | strata | floor | strata/floor | Docker | strata/Docker |")
    w("| --- | --- | --- | --- | --- | --- | --- |")
    for num, label, name, floor, ftool in (
            (5, f"RUN writing {M.get('big', '?')}, committed", "s5-big", "s5-floor", "strata"),
            (9, f"Debian RUN writing {M.get('deb9', '?')}, committed", "s9-run", "s9-floor", "strata"),
            (7, "`run --rm IMAGE true`; floor `runc run` of the same bundle", "s7-run", "s7-floor", "runc")):
        s, f, d = med(name, "strata"), med(floor, ftool), med(name, "docker")
        w(f"| {num} | {label} | {fs(s)} | {fs(f)} | {fr(s, f)} | {fs(d)} | {fr(s, d)} |")
    w("")
    for num, name, floor in ((5, "s5-big", "s5-floor"), (9, "s9-run", "s9-floor")):
        s = med(name, "strata")
        targets.append((num, "build / floor (the RUN under `strata run --rm`)", rt(ratio(s, med(floor, "strata"))),
                        "≤ 1.15×", le(ratio(s, med(floor, "strata")), 1.15)))
        targets.append((num, "build / Docker", rt(ratio(s, med(name, "docker"))), "≤ 0.5×",
                        le(ratio(s, med(name, "docker")), 0.5)))
    s7, f7 = med("s7-run", "strata"), med("s7-floor", "runc")
    own = None if s7 is None or f7 is None else s7 - f7
    targets.append((7, "strata's own time: `strata run` − `runc run`",
                    "—" if own is None else f"{own * 1000:.1f} ms", "≤ 3 ms", le(own, 0.003)))

    # --- 9: Debian workload and disk -----------------------------------------------------
    w("### 9: Debian base, many small files\n")
    w(f"Base: Debian bookworm `mmdebstrap --variant=minbase` from the machine's configured mirror "
      f"({M.get('deb_rootfs', 'not made in this run')}), imported and loaded like the other bases. "
      f"The RUN (perl) writes {M.get('deb9', '?')} under /data, each file half /dev/urandom, half text "
      "(the shape of `apt-get install` or `npm ci`); 9b adds a stage that copies /data from it.\n")
    w("| | strata | Docker | Buildah | floor (`strata run`) |")
    w("| --- | --- | --- | --- | --- |")
    for name, label in (("s9-run", "RUN, committed (`--target deps`)"), ("s9-cold", "both stages, cold")):
        w(f"| {label} | {fs(med(name, 'strata'))} | {fs(med(name, 'docker'))} | {fs(med(name, 'buildah'))} | "
          f"{fs(med('s9-floor', 'strata')) if name == 's9-run' else ''} |")
    w("")
    layer = int(M["disk9_layer"]) if M.get("disk9_layer", "").isdigit() else None
    files = [int(x) for x in M.get("disk9_files", "").split()] or None

    def growth(key):
        v = M.get(key, "").split()
        return [int(x) for x in v] if len(v) == 2 and all(x.lstrip("-").isdigit() for x in v) else None

    gs, gb = growth("disk9_strata"), growth("disk9_buildah")
    if layer:
        w(f"Disk: each store fresh, holding only the unpacked base, then one `--no-cache` build of the RUN; "
          f"growth of the store directory (`du --block-size=1`, allocated and apparent). The layer's files "
          f"hold {layer / 1e6:.1f} MB; written straight to this filesystem with no builder they take "
          f"{files[0] / 1e6:.1f} MB allocated ({files[1] / 1e6:.1f} MB apparent, directories included) — "
          "a 5 KB file takes two 4 KiB blocks, so no store can reach 1.0× of the file bytes on it.\n"
          if files else f"Disk: the layer's files hold {layer / 1e6:.1f} MB.\n")
        w("| store | growth, allocated | apparent | allocated / file bytes | allocated / files alone on disk |")
        w("| --- | --- | --- | --- | --- |")
        for label, g in (("strata", gs), ("Buildah", gb)):
            if g is None:
                w(f"| {label} | {M.get('disk9_' + label.lower(), 'not measured')} | | | |")
                continue
            w(f"| {label} | {g[0] / 1e6:.1f} MB | {g[1] / 1e6:.1f} MB | {rt(g[0] / layer)} | "
              f"{rt(g[0] / files[0]) if files else '—'} |")
        w("")
    targets.append((9, "store's disk growth / bytes the layer holds",
                    rt(ratio(gs[0], layer)) if gs and layer else "—", "≤ 1.1×",
                    le(ratio(gs[0], layer), 1.1) if gs and layer else None))

    # --- 10: first use of a large base ---------------------------------------------------
    w("### 10: first use of a freshly loaded large base\n")
    w(f"Base: {M.get('big10', 'not made in this run')}. Before every run the base is loaded fresh "
      "(strata: into an empty store; Docker: `rmi` then `load`; Buildah: `rmi` then `pull docker-archive:`); "
      "timed: `build --no-cache` of `FROM` it + `RUN true`. Docker and Buildah unpack the layers while "
      "loading, strata on first use, so the load is timed on its own too and the sum is the fair total.\n")
    w("| | strata | Docker | Buildah | strata/Docker | strata/Buildah |")
    w("| --- | --- | --- | --- | --- | --- |")
    tot = {}
    for name, label in (("s10-first", "first build"), ("s10-load", "load")):
        v = [med(name, t) for t in ("strata", "docker", "buildah")]
        w(f"| {label} | {' | '.join(fs(x) for x in v)} | {fr(v[0], v[1])} | {fr(v[0], v[2])} |")
    for t in ("strata", "docker", "buildah"):
        a, b = med("s10-first", t), med("s10-load", t)
        tot[t] = None if a is None or b is None else a + b
    w(f"| load + first build | {fs(tot['strata'])} | {fs(tot['docker'])} | {fs(tot['buildah'])} | "
      f"{fr(tot['strata'], tot['docker'])} | {fr(tot['strata'], tot['buildah'])} |")
    w("")
    for peer, lim in (("docker", 0.5), ("buildah", 0.7)):
        x = ratio(med("s10-first", "strata"), med("s10-first", peer))
        targets.append((10, f"first build / {peer.capitalize()}", rt(x), f"≤ {lim}×", le(x, lim)))

    # --- 11: growth -----------------------------------------------------------------------
    w("### 11: how time grows (growth series)\n")
    series = [
        ("context files, `COPY . /src`, cold", "grow_ctx", "g-ctx{}-cold", ("strata", "docker", "buildah")),
        ("context files, one touched, rebuild", "grow_ctx", "g-ctx{}-touch", ("strata", "docker", "buildah")),
        ("parallel stages, cold", "grow_stages", "g-stages{}", ("strata", "docker", "buildah")),
        ("images in the store: `images`", "grow_images", "g-images{}", ("strata", "docker", "buildah")),
        ("images in the store: `system df`", "grow_images", "g-df{}", ("strata", "docker")),
        ("images in the store: no-op build", "grow_images", "g-noop{}", ("strata", "docker", "buildah")),
    ]
    docker_counts = ", ".join(f"{k.split('_')[-1]} → {v}" for k, v in sorted(M.items())
                              if k.startswith("grow_docker_images_"))
    if M.get("grow_ctx"):
        w("Each series multiplies the work; \"per ×10\" is the time ratio between two sizes scaled to a tenfold "
          "step (r^(1/log10(size ratio))): 10× is linear, below is better than linear. Peak RSS is strata's. "
          f"Context files are {M.get('grow_file_bytes', '?')} bytes each (Docker and Buildah: one run at the "
          "largest context, their builds take minutes there); stages are `FROM busybox AS sN` + "
          "`RUN echo N >/out`, the final stage copies `/out` from each (Buildah `--jobs 4`); the image stores "
          "hold N images `FROM busybox` + `LABEL n=i` (strata and Buildah: stores of their own; Docker: its "
          f"daemon, which may hold other images too: {docker_counts or '?'} images in all).\n")
    growth_ok, rss_ok, measured_any = [], [], False
    for label, key, pat, tools in series:
        sizes = [int(x) for x in M.get(key, "").split()]
        if not sizes or all(med(pat.format(n), "strata") is None for n in sizes):
            continue
        measured_any = True
        steps = list(zip(sizes, sizes[1:]))
        w(f"**{label}**\n")
        w("| tool | " + " | ".join(f"{n:,}" for n in sizes) + " | " +
          " | ".join(f"per ×10, {a:,}→{b:,}" for a, b in steps) + " |")
        w("| --- |" + " --- |" * (len(sizes) + len(steps)))
        for t in tools:
            ts = [med(pat.format(n), t) for n in sizes]
            per = []
            for (a, b), (ta, tb) in zip(steps, zip(ts, ts[1:])):
                x = None if ta is None or tb is None or ta == 0 else (tb / ta) ** (1 / math.log10(b / a))
                per.append(x)
                if t == "strata":
                    growth_ok.append(le(x, 10))
            w(f"| {t} | " + " | ".join(fs(x) for x in ts) + " | " + " | ".join(rt(x) for x in per) + " |")
        rs = [rss_mb(pat.format(n), "strata") for n in sizes]
        w("| strata peak RSS | " + " | ".join(fm(x) for x in rs) + " |" + " |" * len(steps))
        if rs[0] is not None and rs[-1] is not None:
            rss_ok.append(rs[-1] <= 1.25 * rs[0] + 16)
        w("")
    if not measured_any:
        w("Not measured in this run (`--only` without 11).\n")
    targets.append((11, "time per ×10 of work, every series, every step (strata)",
                    "see tables" if growth_ok else "—", "≤ 10×",
                    None if not growth_ok or None in growth_ok else all(growth_ok)))
    targets.append((11, "peak RSS flat as each series grows (largest ≤ 1.25 × smallest + 16 MB)",
                    "see tables" if rss_ok else "—", "flat", all(rss_ok) if rss_ok else None))
    sizes = [int(x) for x in M.get("grow_images", "").split()]
    for pat, what in (("g-noop{}", "no-op build"), ("g-images{}", "`images`")):
        big = sizes[-1] if sizes else None
        x = med(pat.format(big), "strata") if big else None
        if big is not None and big < 1000 and x is not None:
            targets.append((11, f"{what} with 1,000 images", f"{x * 1000:.0f} ms with {big:,} (largest store here)",
                            "≤ 50 ms", None))
        else:
            targets.append((11, f"{what} with 1,000 images", "—" if x is None else f"{x * 1000:.0f} ms",
                            "≤ 50 ms", le(x, 0.05)))

    # --- 12: registry ------------------------------------------------------------------------
    c = med("r-curl", "curl")
    for op in ("pull", "push"):
        s = med(f"r-{op}", "strata")
        x = ratio(s, med(f"r-{op}", "skopeo"))
        targets.append((12, f"{op} / skopeo", rt(x), "≤ 0.7×", le(x, 0.7)))
        y = ratio(s, c)
        targets.append((12, f"{op} / `curl` floor (parallel download of the same blobs)", rt(y), "≤ 1.3×",
                        le(y, 1.3)))

    # --- all targets -------------------------------------------------------------------------
    w("### Round-2 targets\n")
    w("| # | measurement | strata | target | |")
    w("| --- | --- | --- | --- | --- |")
    for num, what, val, target, ok in sorted(targets, key=lambda t: t[0]):
        w(f"| {num} | {what} | {val} | {target} | {verdict(ok)} |")
    w("")
    if any(t[0] == 11 and "largest store here" in t[2] for t in targets):
        w("The 1,000-image targets need the full run (a quick run stops at a smaller store).\n")
