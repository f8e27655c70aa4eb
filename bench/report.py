#!/usr/bin/env python3
"""Turns bench/run.sh's results directory into docs/benchmarks.md (stdout).

    report.py RESULTS_DIR

Reads meta.env (key=value), NAME.TOOL.json (hyperfine --export-json) and
NAME.TOOL.rss (peak RSS in KiB of each run, from /usr/bin/time -f %M).
bench/profile.md, when present, is appended as "Profile and next fixes".
"""
import json
import os
import statistics
import sys

RES = sys.argv[1]
HERE = os.path.dirname(os.path.abspath(__file__))


def meta():
    m = {}
    p = os.path.join(RES, "meta.env")
    if os.path.exists(p):
        for line in open(p):
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                m[k] = v
    return m


M = meta()


def med(name, tool):
    p = os.path.join(RES, f"{name}.{tool}.json")
    if not os.path.exists(p):
        return None
    r = json.load(open(p))["results"][0]
    return statistics.median(r["times"])


def runs(name, tool):
    p = os.path.join(RES, f"{name}.{tool}.json")
    if not os.path.exists(p):
        return 0
    return len(json.load(open(p))["results"][0]["times"])


def rss_mb(name, tool):
    p = os.path.join(RES, f"{name}.{tool}.rss")
    if not os.path.exists(p):
        return None
    v = [int(x) for x in open(p).read().split()]
    return max(v) * 1024 / 1e6 if v else None


def fs(x):
    if x is None:
        return "—"
    return f"{x:.3f} s" if x < 1 else f"{x:.2f} s"


def fr(a, b):
    if a is None or b is None or b == 0:
        return "—"
    return f"{a / b:.2f}×"


def fm(x):
    return "—" if x is None else f"{x:.0f} MB"


def verdict(ok):
    if ok == "none":
        return "(no target)"
    if ok is None:
        return "not measured"
    return "**met**" if ok else "**missed**"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def all_of(*conds):
    if any(c is None for c in conds):
        return None
    return all(conds)


out = []
w = out.append
quick = M.get("mode") == "quick"

w("# Benchmarks: strata against Docker's classic builder and Buildah\n")
if quick:
    w("> **Quick mode** (`bench/run.sh --quick`): fewer runs and smaller data, to check the harness. "
      "These numbers are not the published ones.\n")
w("Every number on this page comes from one run of `bench/run.sh` on one machine, with the three "
  "builders side by side and the same base images loaded into each. To rerun (as root, Debian 12; "
  "it installs what it needs and rewrites this page):\n")
w("```sh\nbench/run.sh --wait-quiet 30     # full run (well over an hour with scenarios 9-12), waits for a quiet machine first\n"
  "bench/run.sh --quick             # small sizes, 1 run each: checks the harness in a few minutes\n"
  "bench/run.sh --only 5,7          # some scenarios only\n```\n")
w(f"Run: {M.get('date', '?')}, mode {M.get('mode', '?')}; runs per measurement: {M.get('runs', '?')}. "
  f"Load average (1, 5, 15 min) at the start: {M.get('load_start', '?')}, at the end: {M.get('load_end', '?')}. "
  "Times are medians of wall time (hyperfine); memory is the peak RSS of the command's process tree "
  "(`/usr/bin/time`), in MB of 10^6 bytes. A ratio is strata's median over the peer's: below 1 is faster.\n")

w("## Machine and peers\n")
w("| | |\n| --- | --- |")
for k, label in [("cpu", "CPU"), ("nproc", "cores (nproc)"), ("mem", "memory"), ("kernel", "kernel"),
                 ("os", "OS"), ("disk", "disk (work directory)"), ("strata", "strata"),
                 ("docker", "Docker"), ("buildah", "Buildah"), ("skopeo", "skopeo"), ("runc", "runc"),
                 ("registry", "registry"), ("hyperfine", "hyperfine")]:
    w(f"| {label} | {M.get(k, '?')} |")
for k in sorted(M):
    if k.startswith("base_"):
        w(f"| base image | `{M[k]}` (same ID in all three stores) |")
w("")

# --- summary ------------------------------------------------------------------
w("## Results and targets\n")
w("| # | scenario | strata | Docker | Buildah | strata/Docker | strata/Buildah | target | |")
w("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")


def row(num, label, name, target, ok, extra_strata=""):
    s, d, b = med(name, "strata"), med(name, "docker"), med(name, "buildah")
    w(f"| {num} | {label} | {fs(s)}{extra_strata} | {fs(d)} | {fs(b)} | {fr(s, d)} | {fr(s, b)} | {target} | {verdict(ok)} |")


def r(name, peer):
    return ratio(med(name, "strata"), med(name, peer))


rd, rb = r("s1-cold", "docker"), r("s1-cold", "buildah")
row(1, "Second_Try, cold (`--no-cache`, bases present)", "s1-cold", "≤ 0.5× Docker and ≤ 0.7× Buildah",
    all_of(rd is not None and rd <= 0.5, rb is not None and rb <= 0.7) if rd is not None and rb is not None else None)
rd = r("s2-noop", "docker")
row(2, "Second_Try, no-op rebuild", "s2-noop", "≤ 0.5× Docker", None if rd is None else rd <= 0.5)
rd = r("s3-edit", "docker")
row(3, "Second_Try, after editing main.go", "s3-edit", "≤ 0.6× Docker", None if rd is None else rd <= 0.6)
rd = r("s4-cold", "docker")
row("4a", f"large context ({M.get('ctx4', '?')}), `COPY . /src`, cold", "s4-cold", "≥ 3× faster than Docker (≤ 0.33×)",
    None if rd is None else rd <= 1 / 3)
st = med("s4-touch", "strata")
row("4b", "large context, one file touched (mtime only), rebuild", "s4-touch", "strata ≤ 0.2 s",
    None if st is None else st <= 0.2)
rd = r("s5-big", "docker")
m5 = rss_mb("s5-big", "strata")
row(5, f"big layer: RUN writing {M.get('big', '?')} (half zeros, half random), committed", "s5-big",
    "≥ 2× faster than Docker (≤ 0.5×), strata peak RSS < 200 MB",
    None if rd is None or m5 is None else (rd <= 0.5 and m5 < 200), f" ({fm(m5)})")


def fan(tool):
    a = med("s6-all", tool)
    parts = [med(f"s6-s{i}", tool) for i in range(1, 5)]
    if a is None or any(p is None for p in parts):
        return a, None, None
    return a, sum(parts), a / sum(parts)


fa, fsum, fratio = fan("strata")
sd, bd = fan("docker"), fan("buildah")
w(f"| 6 | fan-out: 4 CPU stages + final COPY --from each; wall / sum of stages alone | "
  f"{fs(fa)} / {fs(fsum)} = {fr(fa, fsum)} | {fs(sd[0])} / {fs(sd[1])} = {fr(sd[0], sd[1])} | "
  f"{fs(bd[0])} / {fs(bd[1])} = {fr(bd[0], bd[1])} | {fr(fa, sd[0])} | {fr(fa, bd[0])} | "
  f"strata wall ≤ 0.6× sum of its stages | {verdict(None if fratio is None else fratio <= 0.6)} |")
row("mp", "Multi_Platform tutorial, `--platform linux/amd64,linux/arm64`, cold (Buildah: `--manifest`)", "mp-cold",
    "-", "none" if med("mp-cold", "strata") is not None else None)
rd = r("s7-run", "docker")
row(7, "`run --rm IMAGE true` (Buildah: from + run + rm)", "s7-run", "≤ 0.2× `docker run`", None if rd is None else rd <= 0.2)
for op in ("load", "save"):
    for sz in ("small", "large"):
        name = f"s8-{op}-{sz}"
        rd = r(name, "docker")
        if sz == "large":
            row(8, f"image {op}, {M.get('image_' + sz, sz)}", name, "≥ 2× faster than Docker (≤ 0.5×)",
                None if rd is None else rd <= 0.5)
        else:
            row(8, f"image {op}, {M.get('image_' + sz, sz)}", name, "— (smaller size, for the memory curve)", "none")
rd = r("s9-run", "docker")
row(9, f"Debian base, RUN writing {M.get('deb9', '?')}, committed", "s9-run", "≤ 0.5× Docker (floor: see below)",
    None if rd is None else rd <= 0.5)
row("9b", "… then a second stage `COPY --from` of that tree, both stages cold", "s9-cold", "-",
    "none" if med("s9-cold", "strata") is not None else None)
rd, rb = r("s10-first", "docker"), r("s10-first", "buildah")
row(10, f"first build on a freshly loaded large base ({M.get('big10', '?')}): `FROM` it + `RUN true`", "s10-first",
    "≤ 0.5× Docker and ≤ 0.7× Buildah", all_of(rd is not None and rd <= 0.5, rb is not None and rb <= 0.7)
    if rd is not None and rb is not None else None)
w("")
w("The memory target of scenario 8 (flat as the image grows) is in the next section. "
  f"Load average (1 min) when each scenario started: {M.get('loads', '?')} "
  "(it counts the benchmark's own processes: a build keeps 1-2 of the 2 cores busy). "
  f"Other people's compilers or test binaries seen running (sampled every 5 s): {M.get('others') or 'not recorded in this run'}.\n")

# --- memory ---------------------------------------------------------------------
w("## Peak memory\n")
w("Peak RSS of the command's process tree. Docker's column is absent on purpose: `docker` is a client, "
  "the work happens in dockerd, whose memory is shared with everything else the daemon does.\n")
w("| scenario | strata | Buildah | skopeo |")
w("| --- | --- | --- | --- |")
for name, label in [("s1-cold", "1 Second_Try cold"), ("s2-noop", "2 no-op rebuild"), ("s3-edit", "3 edit rebuild"),
                    ("s4-cold", "4a large context cold"), ("s4-touch", "4b large context touched"),
                    ("s5-big", "5 big layer"), ("s6-all", "6 fan-out"), ("s7-run", "7 run"),
                    ("s8-load-small", f"8 load, {M.get('image_small', 'small')}"),
                    ("s8-load-large", f"8 load, {M.get('image_large', 'large')}"),
                    ("s8-save-small", "8 save, small"), ("s8-save-large", "8 save, large"),
                    ("s9-run", "9 Debian RUN, many files"), ("s9-cold", "9b Debian, two stages"),
                    ("s10-first", "10 first build on a large base"), ("s10-load", "10 load of the large base"),
                    ("r-push", "registry push"), ("r-pull", "registry pull")]:
    vals = [rss_mb(name, t) for t in ("strata", "buildah", "skopeo")]
    if all(v is None for v in vals):
        continue
    w(f"| {label} | {fm(vals[0])} | {fm(vals[1])} | {fm(vals[2])} |")
w("")
flat = []
for op in ("load", "save"):
    a, b = rss_mb(f"s8-{op}-small", "strata"), rss_mb(f"s8-{op}-large", "strata")
    if a is not None and b is not None:
        ok = b <= 1.25 * a + 16
        flat.append(ok)
        w(f"- strata {op}: {fm(a)} at the small image, {fm(b)} at the large one (×{b / a:.2f} for ×4 the data): "
          f"{'flat' if ok else 'NOT flat'} (criterion: large ≤ 1.25 × small + 16 MB).")
if flat:
    w(f"\nTarget \"peak memory flat as the image grows\" (issue 3): {verdict(all(flat))}.\n")

# --- details: save/load with skopeo ---------------------------------------------
w("## Save, load: all peers\n")
w("load = docker-archive file into the tool's store (strata: an empty store each run; Docker and Buildah: "
  "after removing the image; skopeo: into an empty OCI layout directory). save = the image to a "
  "docker-archive file (skopeo: from an OCI layout directory of the same image).\n")
w("| operation | strata | Docker | Buildah | skopeo | strata/Docker | strata/Buildah | strata/skopeo |")
w("| --- | --- | --- | --- | --- | --- | --- | --- |")
for op in ("load", "save"):
    for sz in ("small", "large"):
        name = f"s8-{op}-{sz}"
        s, d, b, k = (med(name, t) for t in ("strata", "docker", "buildah", "skopeo"))
        w(f"| {op}, {M.get('image_' + sz, sz)} | {fs(s)} | {fs(d)} | {fs(b)} | {fs(k)} | {fr(s, d)} | {fr(s, b)} | {fr(s, k)} |")
w("")

# --- registry ----------------------------------------------------------------------
w("## Registry: push and pull (issue 6)\n")
if M.get("reg_status") == "measured":
    w(f"Image: {M.get('image_reg', '?')}; registry: Debian `docker-registry` on 127.0.0.1, storage wiped before "
      "every push. push = strata / `docker push` / `skopeo copy oci:DIR docker://` (skopeo and Docker compress "
      "the layers while pushing; strata pushes the gzip blobs it stores). pull = into an empty store / after "
      "`docker rmi` / `skopeo copy docker:// oci:DIR`. Floor: `curl -Z --parallel-max 8` of the same blobs "
      f"({M.get('reg_blobs', '?').replace(' ', ' blobs, ', 1)} bytes) into /dev/null. Targets (issue 20): "
      "see \"Round 2\" below.\n")
    w("| operation | strata | Docker | skopeo | strata/Docker | strata/skopeo | strata peak RSS |")
    w("| --- | --- | --- | --- | --- | --- | --- |")
    for name, label in (("r-push", "push"), ("r-pull", "pull")):
        s, d, k = (med(name, t) for t in ("strata", "docker", "skopeo"))
        w(f"| {label} | {fs(s)} | {fs(d)} | {fs(k)} | {fr(s, d)} | {fr(s, k)} | {fm(rss_mb(name, 'strata'))} |")
    c = med("r-curl", "curl")
    if c is not None:
        w(f"| floor: `curl` of the same blobs | {fs(c)} | | | | | |")
    w("")
else:
    w(f"**Not yet measured**: {M.get('reg_status', 'the scenario was not run (`--only` without `reg`)')}.\n")

sys.dont_write_bytecode = True  # no __pycache__ in bench/
sys.path.insert(0, HERE)
import report_round2  # noqa: E402  (the sections of issue 20, in a module of their own)

report_round2.write(w, M, med, rss_mb, fs, fr, fm, verdict)

# --- details: fan-out ----------------------------------------------------------------
w("## Fan-out details (scenario 6)\n")
w(f"Each stage: `sha256sum` of 32 MiB of random data, {M.get('fan_k', '?')} times (busybox, one core). "
  "Stage times are cold builds of `--target sN` alone. Buildah gets `--jobs 4` here (its default runs "
  "stages one after another); Docker's classic builder has no parallel stages.\n")
w("| | all (wall) | s1 | s2 | s3 | s4 | sum of stages | wall / sum |")
w("| --- | --- | --- | --- | --- | --- | --- | --- |")
for tool, label in (("strata", "strata"), ("docker", "Docker"), ("buildah", "Buildah")):
    a, sm, _ = fan(tool)
    parts = [fs(med(f"s6-s{i}", tool)) for i in range(1, 5)]
    w(f"| {label} | {fs(a)} | {' | '.join(parts)} | {fs(sm)} | {fr(a, sm)} |")
w("")

w("## Method notes\n")
w("- Base images: `scripts/make-base-rootfs.sh` rootfs tarballs, `docker import` with the `--change` values "
  "that script prints, `docker save`, then `strata load` and `buildah pull docker-archive:` of that archive: "
  "all three stores hold the same image IDs (checked by the script). They are named `bench-busybox:1.35` "
  "and `bench-golang:1.19` and the Dockerfiles' `FROM` lines are rewritten to match, so nothing touches "
  "images other tests use.")
w("- Cold = `--no-cache` with the base images present and unpacked. Docker: `DOCKER_BUILDKIT=0 docker build`; "
  "Buildah: `buildah bud --isolation chroot --layers --pull=never` with its own `--root`/`--runroot` "
  "(overlay driver); strata: `strata --root DIR build`, release build.")
w("- Scenario 3 appends a comment to main.go before every run (a real content change each time). "
  "`go build` of the tutorial program is short (~0.3 s) because Debian's Go 1.19 ships its standard "
  "library compiled, so scenarios 1 and 3 measure mostly the builders' own overhead.")
w("- Scenario 4b: `touch` of one file (mtime changes, content does not); all three builders should "
  "hit their cache, the question is how fast they find out. Docker's classic builder sends the whole "
  "context to the daemon every time.")
w("- Data (contexts, image contents) comes from `bench/gen-tree.py`: seeded, so every run sees the "
  "same bytes; half the files random, half compressible text.")
w("- Round 2 (issue 20): scenario 9's Debian base is `mmdebstrap --variant=minbase` from the machine's "
  "configured mirror (`bench/debian-base.sh`, cached in /var/cache/strata-bench), loaded into all three like "
  "the other bases; its RUN is a perl loop (minbase has perl) so every builder runs the same program. "
  "Floors run the same command with `strata run --rm` in the same store (5, 9), `runc run` of a "
  "`runc spec` bundle of the busybox rootfs (7), `curl -Z` of the registry's blobs (12). Scenario 10 "
  "loads its base fresh in hyperfine's `--prepare` (not timed) and times the load separately. The "
  "growth series use their own stores for the image counts; Docker's daemon is shared, so its image "
  "count includes whatever else it holds (reported).")
w("- Raw data of the published run: `bench/results/` (hyperfine JSON per scenario and tool, "
  "peak RSS per run, machine facts).")
w("")

prof = os.path.join(HERE, "profile.md")
if os.path.exists(prof):
    w("## Profile and next fixes\n")
    w(open(prof).read().strip() + "\n")
else:
    w("## Profile and next fixes\n\nNot written yet (bench/profile.md).\n")

print("\n".join(out))
