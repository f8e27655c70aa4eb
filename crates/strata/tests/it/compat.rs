//! The compatibility suite: every case under `tests/compat/cases/` is built
//! by Docker's classic builder (the oracle) and by strata, both images are
//! exported as docker-archives, flattened and compared: files (type, mode
//! with special bits, owner, size, content, link targets, hard-link groups)
//! and the runtime config. No tolerance but what a case declares.
//!
//! Needs a running dockerd (`scripts/setup-host.sh` starts one) and runc; the
//! base image comes from `scripts/make-base-rootfs.sh`, imported into Docker
//! and into a fresh strata root so both builders start from the same layer.
//! The Debian cases (`tests/compat/debian/`) start from Debian bookworm bases
//! made by mmdebstrap (see `common/compat/debian.rs`), loaded into both
//! builders as the same image ID; their RUN steps reach the Debian mirror,
//! PyPI and npm. Without dockerd or mmdebstrap they skip loudly, unless
//! `CI` or `STRATA_REQUIRE_DOCKER` is set: then they fail.
//! `STRATA_COMPAT_FILTER=substring` runs only the matching cases;
//! `STRATA_COMPAT_AGAINST=docker` compares Docker with itself (a no-cache
//! rebuild) instead of strata: the check for a new case.

mod debian;
mod diff;
mod image;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use serde_json::Value;

use diff::{Exceptions, Report};

const BASE_TAG: &str = "busybox:1.35";
/// Parallel builds: Docker's classic builder is mostly waiting on dockerd,
/// strata on runc; more than this only fights over the 2 cores of CI.
const DOCKER_JOBS: usize = 3;
const STRATA_JOBS: usize = 2;
/// Diff lines printed per case; the rest is counted.
const MAX_DIFF_LINES: usize = 50;

fn repo_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// The strata binary, no arguments yet.
fn strata_command() -> Command {
    strata_test_support::Strata::bare().command()
}

/// Runs a command; on failure the error names it and carries stderr's tail.
fn run(cmd: &mut Command) -> Result<String, String> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The docker CLI's banner about the legacy builder being deprecated is
    // noise here: using that builder is the point.
    let banner = [
        "DEPRECATED:",
        "BuildKit is currently disabled",
        "environment-variable.",
    ];
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && !banner.iter().any(|b| l.trim_start().starts_with(b)))
        .collect();
    let tail = lines[lines.len().saturating_sub(6)..].join("\n    ");
    Err(format!("{shown} exited with {}:\n    {tail}", out.status))
}

// ---------------------------------------------------------------- cases

/// One case directory: a Dockerfile, its context, and an optional
/// `case.json` {build_args, target, pre: [{dockerfile, tag}], notes, exceptions}.
struct Case {
    name: String,
    dir: PathBuf,
    build_args: Vec<(String, String)>,
    target: Option<String>,
    /// Images to build first, in order, with the same context (ONBUILD bases).
    pre: Vec<(String, String)>,
    exceptions: Exceptions,
}

fn load_cases(subdir: &str, filter: Option<&str>) -> Vec<Case> {
    let root = repo_root().join("tests/compat").join(subdir);
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", root.display()))
        .map(|d| d.expect("read_dir entry").path())
        .filter(|p| p.join("Dockerfile").is_file())
        .collect();
    dirs.sort();
    dirs.into_iter()
        .filter(|d| filter.is_none_or(|f| d.file_name().unwrap().to_string_lossy().contains(f)))
        .map(|d| load_case(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())))
        .collect()
}

fn load_case(dir: &Path) -> Result<Case, String> {
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let meta: Value = match std::fs::read(dir.join("case.json")) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| format!("case.json: {e}"))?,
        Err(_) => Value::Object(Default::default()),
    };
    let known = [
        "build_args",
        "target",
        "pre",
        "notes",
        "exceptions",
        "volatile",
    ];
    if let Some(k) = meta
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
        .find(|k| !known.contains(&k.as_str()))
    {
        return Err(format!("case.json: unknown key {k:?} (known: {known:?})"));
    }
    let str_of = |v: &Value| {
        v.as_str()
            .map(str::to_string)
            .ok_or(format!("case.json: {v} is not a string"))
    };
    let mut build_args = Vec::new();
    for (k, v) in meta["build_args"].as_object().into_iter().flatten() {
        build_args.push((k.clone(), str_of(v)?));
    }
    let mut pre = Vec::new();
    for p in meta["pre"].as_array().into_iter().flatten() {
        pre.push((str_of(&p["dockerfile"])?, str_of(&p["tag"])?));
    }
    let mut exceptions = Exceptions::default();
    for p in meta["exceptions"]["buildkit_workdir_owner"]
        .as_array()
        .into_iter()
        .flatten()
    {
        exceptions.buildkit_workdir_owner.push(str_of(p)?);
    }
    // {"glob": "why it is volatile"}: the reason is required.
    for (pattern, why) in meta["volatile"].as_object().into_iter().flatten() {
        let why = str_of(why)?;
        if why.trim().is_empty() {
            return Err(format!("case.json: volatile {pattern:?} needs a reason"));
        }
        exceptions.volatile.push((pattern.clone(), why));
    }
    Ok(Case {
        name,
        dir: dir.to_path_buf(),
        build_args,
        target: meta["target"].as_str().map(str::to_string),
        pre,
        exceptions,
    })
}

// ---------------------------------------------------------------- setup

/// What every test of this file shares, made once per run.
struct Setup {
    work: PathBuf,
    strata_root: PathBuf,
    /// Why strata's copy of the base image is unusable, if it is.
    strata_base: Result<(), String>,
    /// Extra `docker build` flags (the Debian cases: `--network host`,
    /// since this dockerd runs with `--bridge=none`).
    docker_flags: Vec<String>,
    /// Remove Docker's images of the cases once saved (the Debian ones are
    /// hundreds of MB each and, built without cache, new on every run).
    untag_docker_images: bool,
    /// First layers (diff IDs) of the bases loaded for these cases: an
    /// untagged image made during the run on one of them is a builder
    /// stage of a case (the classic builder keeps those), removed at the end.
    base_layers: Vec<String>,
}

static SETUP: OnceLock<Result<Setup, String>> = OnceLock::new();

/// Checks the preconditions and loads the base image into both builders.
/// Any missing piece fails the tests loudly: this suite never passes by
/// skipping.
fn setup() -> &'static Setup {
    match SETUP.get_or_init(make_setup) {
        Ok(s) => s,
        Err(e) => panic!("compat suite cannot run: {e}"),
    }
}

fn make_setup() -> Result<Setup, String> {
    run(Command::new("docker").arg("info")).map_err(|e| {
        format!("dockerd is not reachable; run scripts/setup-host.sh (as root) to start it.\n  {e}")
    })?;
    run(Command::new("runc").arg("--version"))
        .map_err(|e| format!("runc is missing; run scripts/setup-host.sh to install it.\n  {e}"))?;
    // A fixed directory under target/ (not /tmp): reused and wiped each run,
    // so failed runs leave their archives for inspection and nothing leaks.
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("compat");
    let _ = std::fs::remove_dir_all(&work);
    let (bases, strata_root) = (work.join("bases"), work.join("strata-root"));
    std::fs::create_dir_all(&bases).map_err(|e| format!("mkdir {}: {e}", bases.display()))?;
    // STRATA_COMPAT_BASE_SCRIPT: another script with the same interface,
    // for working on the suite itself.
    let script = std::env::var_os("STRATA_COMPAT_BASE_SCRIPT")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("scripts/make-base-rootfs.sh"));
    run(Command::new(&script).arg(&bases)).map_err(|e| {
        format!(
            "cannot make the base rootfs with {}:\n  {e}",
            script.display()
        )
    })?;
    let tar = bases.join("busybox.tar");
    let changes = base_changes(&script).map_err(|e| format!("{}: {e}", script.display()))?;
    // The script also makes the ~450 MB Go toolchain rootfs, unused here.
    let _ = std::fs::remove_file(bases.join("golang.tar"));
    let mut docker = Command::new("docker");
    docker.arg("import");
    for c in &changes {
        docker.arg("--change").arg(c);
    }
    run(docker.arg(&tar).arg(BASE_TAG))
        .map_err(|e| format!("docker import of the base failed: {e}"))?;
    let mut st = strata_command();
    st.arg("--root")
        .arg(&strata_root)
        .arg("import")
        .arg(&tar)
        .arg(BASE_TAG);
    for c in &changes {
        st.arg("--change").arg(c);
    }
    let strata_base = run(&mut st)
        .map(drop)
        .map_err(|e| format!("strata import of the base failed: {e}"));
    Ok(Setup {
        work,
        strata_root,
        strata_base,
        docker_flags: Vec::new(),
        untag_docker_images: false,
        base_layers: Vec::new(),
    })
}

/// The `--change` lines the script recommends for the busybox base (one
/// per line), so Docker's and strata's base configs are the same.
fn base_changes(script: &Path) -> Result<Vec<String>, String> {
    let printed = run(Command::new(script).args(["--print-changes", "busybox"]))?;
    Ok(printed
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

// ---------------------------------------------------------------- builds

/// The proxy variables of this environment, as build args for both
/// builders: Docker's predefined proxy ARGs, which are kept out of the
/// image (and so must strata's be). Empty where no proxy is configured.
fn proxy_build_args() -> Vec<String> {
    let names = ["http_proxy", "https_proxy", "no_proxy", "all_proxy"];
    let mut flags = Vec::new();
    for n in names
        .iter()
        .flat_map(|n| [n.to_string(), n.to_ascii_uppercase()])
    {
        if let Ok(v) = std::env::var(&n) {
            flags.extend(["--build-arg".to_string(), format!("{n}={v}")]);
        }
    }
    flags
}

fn build_flags(case: &Case) -> Vec<String> {
    let mut flags = proxy_build_args();
    for (k, v) in &case.build_args {
        flags.extend(["--build-arg".to_string(), format!("{k}={v}")]);
    }
    if let Some(t) = &case.target {
        flags.extend(["--target".to_string(), t.clone()]);
    }
    flags
}

fn docker_tag(case: &Case) -> String {
    format!("strata-compat-{}", case.name)
}

fn strata_tag(case: &Case) -> String {
    format!("compat-{}", case.name)
}

/// The docker half: classic builder (`DOCKER_BUILDKIT=0`), then `docker save`.
/// `again` rebuilds without cache under another tag: the suite's self-check
/// mode (`STRATA_COMPAT_AGAINST=docker`), which compares Docker with itself
/// to prove a case deterministic and the flattening independent of mtimes.
fn docker_side(setup: &Setup, case: &Case, out: &Path, again: bool) -> Result<(), String> {
    let build = |dockerfile: &str, tag: &str, flags: &[String]| {
        let mut cmd = Command::new("docker");
        cmd.env("DOCKER_BUILDKIT", "0")
            .args(["build", "-q", "-t", tag])
            .args(&setup.docker_flags);
        if again {
            cmd.arg("--no-cache");
        }
        cmd.arg("-f")
            .arg(case.dir.join(dockerfile))
            .args(flags)
            .arg(&case.dir);
        run(&mut cmd).map(drop)
    };
    for (dockerfile, tag) in &case.pre {
        build(dockerfile, tag, &proxy_build_args())?;
    }
    let tag = docker_tag(case) + if again { "-again" } else { "" };
    build("Dockerfile", &tag, &build_flags(case))?;
    run(Command::new("docker")
        .arg("save")
        .arg("-o")
        .arg(out)
        .arg(&tag))
    .map(drop)
}

/// The strata half: the same builds against the suite's strata root.
fn strata_side(setup: &Setup, case: &Case, out: &Path) -> Result<(), String> {
    if setup.strata_base.is_err() {
        return Err("strata side not run: the base image could not be imported (see above)".into());
    }
    let build = |dockerfile: &str, tag: &str, flags: &[String]| {
        let mut cmd = strata_command();
        cmd.arg("--root").arg(&setup.strata_root);
        cmd.args(["build", "-q", "-t", tag, "-f"]);
        cmd.arg(case.dir.join(dockerfile))
            .args(flags)
            .arg(&case.dir);
        run(&mut cmd)
            .map(drop)
            .map_err(|e| format!("strata build failed: {e}"))
    };
    for (dockerfile, tag) in &case.pre {
        build(dockerfile, tag, &proxy_build_args())?;
    }
    build("Dockerfile", &strata_tag(case), &build_flags(case))?;
    let mut save = strata_command();
    save.arg("--root")
        .arg(&setup.strata_root)
        .arg("save")
        .arg("-o")
        .arg(out);
    run(save.arg(strata_tag(case)))
        .map(drop)
        .map_err(|e| format!("strata save failed: {e}"))
}

/// IDs of Docker's untagged leaf images.
fn dangling_images() -> Vec<String> {
    run(Command::new("docker").args(["images", "-q", "--no-trunc", "-f", "dangling=true"]))
        .map(|out| out.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

/// Runs `f` over `items` with `jobs` threads; results keep the items' order.
fn parallel<T: Sync, R: Send>(items: &[T], jobs: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = Mutex::new(0usize);
    let results: Mutex<Vec<Option<R>>> = Mutex::new(items.iter().map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| loop {
                let i = {
                    let mut n = next.lock().unwrap();
                    *n += 1;
                    *n - 1
                };
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                results.lock().unwrap()[i] = Some(r);
            });
        }
    });
    results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|r| r.expect("every item ran"))
        .collect()
}

// ---------------------------------------------------------------- compare

/// Flattens both archives (read in place) and compares them.
fn compare_archives(a: &Path, b: &Path, exc: &Exceptions) -> Result<Report, String> {
    let ia = image::read_archive(a).map_err(|e| format!("reading docker's archive: {e}"))?;
    let ib = image::read_archive(b).map_err(|e| format!("reading strata's archive: {e}"))?;
    let mut report = Report::default();
    diff::diff_fs(&ia.fs, &ib.fs, exc, &mut report);
    diff::diff_config(&ia.config, &ib.config, &mut report);
    Ok(report)
}

/// One line for the case, then its differences (about MAX_DIFF_LINES lines).
fn render(name: &str, outcome: &Result<Report, String>) -> (bool, String) {
    match outcome {
        Err(e) => (false, format!("compat {name} ... FAILED: {e}")),
        Ok(r) => {
            let mut s = format!("compat {name} ... ");
            let ok = r.diffs.is_empty();
            s += if ok { "ok" } else { "FAILED: images differ" };
            for e in &r.excused {
                s += &format!("\n    exception: {e}");
            }
            // A difference may span 3 lines (docker / strata values): the
            // budget counts printed lines, so a broken case stays readable.
            let mut lines = 0;
            for (i, d) in r.diffs.iter().enumerate() {
                lines += d.lines().count();
                if lines > MAX_DIFF_LINES {
                    s += &format!("\n    ... and {} more differences", r.diffs.len() - i);
                    break;
                }
                s += &format!("\n    {d}");
            }
            (ok, s)
        }
    }
}

// ---------------------------------------------------------------- tests

/// Held by each test that builds many images: the busybox and Debian suites
/// run one after the other, not fighting over the 2 cores of CI.
static HEAVY: Mutex<()> = Mutex::new(());

fn heavy() -> std::sync::MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

fn filter() -> Option<String> {
    std::env::var("STRATA_COMPAT_FILTER")
        .ok()
        .filter(|f| !f.is_empty())
}

#[test]
fn compat_cases_match_docker() {
    let setup = setup();
    let _heavy = heavy();
    let filter = filter();
    let cases = load_cases("cases", filter.as_deref());
    if cases.is_empty() {
        assert_filter_matches_somewhere(filter.as_deref());
        return;
    }
    check_cases(setup, &cases);
}

/// A filter matching none of the busybox cases may match Debian ones (and
/// the other way round); one matching nothing at all is a typo.
fn assert_filter_matches_somewhere(filter: Option<&str>) {
    let all = load_cases("cases", filter).len() + load_cases("debian", filter).len();
    assert!(
        all > 0,
        "no compat case matches STRATA_COMPAT_FILTER={filter:?}"
    );
    println!("compat: no case of this suite matches STRATA_COMPAT_FILTER={filter:?}");
}

/// True where a missing dockerd or mmdebstrap must fail the Debian cases
/// instead of skipping them: CI, or STRATA_REQUIRE_DOCKER set.
fn docker_required() -> bool {
    ["CI", "STRATA_REQUIRE_DOCKER"]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false"))
}

/// The Debian cases: real-project Dockerfiles (apt-get, pip, npm, make)
/// on Debian bookworm bases. Skipped loudly when dockerd or mmdebstrap is
/// missing (a developer machine), failing instead under CI or
/// STRATA_REQUIRE_DOCKER.
#[test]
fn compat_debian_cases_match_docker() {
    let filter = filter();
    let cases = load_cases("debian", filter.as_deref());
    if cases.is_empty() {
        assert_filter_matches_somewhere(filter.as_deref());
        return;
    }
    let missing = [
        run(Command::new("docker").arg("info"))
            .err()
            .map(|e| format!("dockerd is not reachable (scripts/setup-host.sh starts it): {e}")),
        run(Command::new("mmdebstrap").arg("--version"))
            .err()
            .map(|e| format!("mmdebstrap is missing (scripts/setup-host.sh installs it): {e}")),
        run(Command::new("runc").arg("--version"))
            .err()
            .map(|e| format!("runc is missing (scripts/setup-host.sh installs it): {e}")),
    ];
    if let Some(why) = missing.into_iter().flatten().next() {
        if docker_required() {
            panic!("compat Debian cases cannot run (CI or STRATA_REQUIRE_DOCKER is set): {why}");
        }
        eprintln!(
            "\n!!! SKIPPED: {} compat Debian cases: {why}\n!!! (set CI=1 or STRATA_REQUIRE_DOCKER=1 to fail instead)\n",
            cases.len()
        );
        return;
    }
    let _heavy = heavy();
    let setup = debian_setup(&cases).unwrap_or_else(|e| panic!("compat Debian setup: {e}"));
    check_cases(&setup, &cases);
}

/// Makes (or finds in the cache) the Debian bases the cases name and loads
/// each into Docker and into a fresh strata root, checking that both see the
/// same image ID.
fn debian_setup(cases: &[Case]) -> Result<Setup, String> {
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("compat-debian");
    let _ = std::fs::remove_dir_all(&work);
    let strata_root = work.join("strata-root");
    std::fs::create_dir_all(&work).map_err(|e| format!("mkdir {}: {e}", work.display()))?;
    let texts: Vec<String> = cases
        .iter()
        .flat_map(|c| {
            let mut files = vec![c.dir.join("Dockerfile")];
            files.extend(c.pre.iter().map(|(f, _)| c.dir.join(f)));
            files
        })
        .map(|f| std::fs::read_to_string(f).unwrap_or_default())
        .collect();
    let mut strata_base = Ok(());
    let mut base_layers = Vec::new();
    for base in debian::BASES {
        if !texts.iter().any(|t| t.contains(base.tag)) {
            continue;
        }
        let t = Instant::now();
        let made = debian::ensure(base)?;
        let docker_id = |tag: &str| {
            run(Command::new("docker").args(["image", "inspect", "-f", "{{.Id}}", tag]))
                .map(|s| s.trim().to_string())
        };
        if docker_id(made.tag).as_deref() != Ok(made.id.as_str()) {
            run(Command::new("docker")
                .args(["load", "-q", "-i"])
                .arg(&made.archive))
            .map_err(|e| format!("docker load of {}: {e}", made.tag))?;
        }
        let id = docker_id(made.tag)?;
        base_layers.push(
            run(Command::new("docker").args([
                "image",
                "inspect",
                "-f",
                "{{index .RootFS.Layers 0}}",
                made.tag,
            ]))?
            .trim()
            .to_string(),
        );
        if id != made.id {
            return Err(format!(
                "docker loaded {} as {id}, not as {} (the config's digest)",
                made.tag, made.id
            ));
        }
        let loaded = run(strata_command()
            .arg("--root")
            .arg(&strata_root)
            .args(["load", "-q", "-i"])
            .arg(&made.archive))
        .and_then(|_| {
            run(strata_command()
                .arg("--root")
                .arg(&strata_root)
                .args(["inspect", made.tag]))
        })
        .and_then(|out| {
            let v: Value = serde_json::from_str(&out).map_err(|e| format!("inspect: {e}"))?;
            let id = v[0]["Id"].as_str().unwrap_or_default().to_string();
            if id == made.id {
                Ok(())
            } else {
                Err(format!(
                    "strata loaded {} as {id:?}, docker as {}",
                    made.tag, made.id
                ))
            }
        });
        if let Err(e) = loaded {
            strata_base = Err(format!("strata load of {}: {e}", made.tag));
        }
        println!(
            "compat Debian base {} {} ready in {:.1}s",
            made.tag,
            &made.id[..19],
            t.elapsed().as_secs_f64()
        );
    }
    Ok(Setup {
        work,
        strata_root,
        strata_base,
        // This dockerd runs with --bridge=none: a build container reaches the
        // network only through the host's. No cache: the mirror, PyPI and npm
        // move, and a stale layer would differ from strata's fresh one.
        docker_flags: vec!["--network".into(), "host".into(), "--no-cache".into()],
        untag_docker_images: true,
        base_layers,
    })
}

/// Builds every case with both builders, compares, prints a report and
/// fails when any case differs.
fn check_cases(setup: &Setup, cases: &[Case]) {
    let dir_of = |c: &Case| setup.work.join("cases").join(&c.name);
    for c in cases {
        std::fs::create_dir_all(dir_of(c)).expect("mkdir case scratch");
    }

    let dangling_before = dangling_images();
    // The docker half first, on its own: its time is the oracle's cost, and
    // it finds broken cases even while strata's side cannot build.
    let t = Instant::now();
    let timed = |f: &dyn Fn() -> Result<(), String>| {
        let t = Instant::now();
        (f(), t.elapsed().as_secs_f64())
    };
    let docker = parallel(cases, DOCKER_JOBS, |c| {
        timed(&|| docker_side(setup, c, &dir_of(c).join("docker.tar"), false))
    });
    let docker_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let against_docker = std::env::var("STRATA_COMPAT_AGAINST").is_ok_and(|v| v == "docker");
    let strata = parallel(cases, STRATA_JOBS, |c| {
        let out = dir_of(c).join("strata.tar");
        timed(&|| {
            if against_docker {
                docker_side(setup, c, &out, true)
            } else {
                strata_side(setup, c, &out)
            }
        })
    });
    let strata_secs = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let outcomes = parallel(&(0..cases.len()).collect::<Vec<_>>(), 2, |&i| {
        let c = &cases[i];
        docker[i]
            .0
            .clone()
            .map_err(|e| format!("docker build failed (a bug in the case): {e}"))?;
        strata[i].0.clone()?;
        let d = dir_of(c);
        compare_archives(&d.join("docker.tar"), &d.join("strata.tar"), &c.exceptions)
    });

    let compare_secs = t.elapsed().as_secs_f64();
    if setup.untag_docker_images {
        // `docker rmi` of the tag also drops its untagged parents (the
        // classic builder's intermediate images); the archives stay.
        for c in cases {
            for tag in [docker_tag(c), docker_tag(c) + "-again"] {
                let _ = Command::new("docker").args(["rmi", &tag]).output();
            }
        }
        // The builder stages: untagged, new since the start, on our bases.
        for id in dangling_images() {
            if dangling_before.contains(&id) {
                continue;
            }
            let first = run(Command::new("docker").args([
                "image",
                "inspect",
                "-f",
                "{{index .RootFS.Layers 0}}",
                &id,
            ]));
            if first.is_ok_and(|l| setup.base_layers.contains(&l.trim().to_string())) {
                let _ = Command::new("docker").args(["rmi", &id]).output();
            }
        }
    }
    if let (Err(e), false) = (&setup.strata_base, against_docker) {
        println!("compat setup: {e}");
    }
    let mut failed = Vec::new();
    for (i, (c, outcome)) in cases.iter().zip(&outcomes).enumerate() {
        let (ok, text) = render(&c.name, outcome);
        // The builds' times at the end of the case's first line.
        let times = format!(" [docker {:.1}s, strata {:.1}s]", docker[i].1, strata[i].1);
        let (first, rest) = text.split_once('\n').unwrap_or((&text, ""));
        let sep = if rest.is_empty() { "" } else { "\n" };
        println!("{first}{times}{sep}{rest}");
        if ok {
            let _ = std::fs::remove_dir_all(dir_of(c));
        } else {
            failed.push(c.name.clone());
        }
    }
    let docker_ok = docker.iter().filter(|r| r.0.is_ok()).count();
    println!(
        "compat docker half: {docker_ok}/{} built in {docker_secs:.1}s",
        cases.len()
    );
    println!("compat strata half: {strata_secs:.1}s");
    println!("compat comparison: {compare_secs:.1}s");
    println!(
        "compat {}/{} cases equal",
        cases.len() - failed.len(),
        cases.len()
    );
    assert!(
        failed.is_empty(),
        "{} of {} compat cases differ or failed to build: {}\n(archives kept under {})",
        failed.len(),
        cases.len(),
        failed.join(", "),
        setup.work.join("cases").display()
    );
}

/// The harness checks itself against Docker alone: two builds of the same
/// Dockerfile (different mtimes, same content) must compare equal, and two
/// that differ in exactly one file mode and one env var must report exactly
/// those two differences.
#[test]
fn compat_harness_detects_differences() {
    let setup = setup();
    let dir = setup.work.join("self-test");
    let build = |name: &str, mode: &str, env: &str, no_cache: bool| -> PathBuf {
        let ctx = dir.join(name);
        std::fs::create_dir_all(&ctx).unwrap();
        let dockerfile = format!(
            "FROM {BASE_TAG}\nENV SELF_TEST={env}\nRUN echo same > /f && chmod {mode} /f \\\n && echo g > /g && mkdir -p /d/e && ln /g /d/e/hard && rm /bin/vi\n"
        );
        std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
        let tag = format!("strata-compat-selftest-{name}");
        let mut cmd = Command::new("docker");
        cmd.env("DOCKER_BUILDKIT", "0")
            .args(["build", "-q", "-t", &tag]);
        if no_cache {
            cmd.arg("--no-cache");
        }
        run(cmd.arg(&ctx)).unwrap_or_else(|e| panic!("docker build of the self-test failed: {e}"));
        let out = dir.join(format!("{name}.tar"));
        run(Command::new("docker")
            .arg("save")
            .arg("-o")
            .arg(&out)
            .arg(&tag))
        .unwrap();
        out
    };
    let (a, a2) = (
        build("a", "644", "one", false),
        build("a2", "644", "one", true),
    );
    let b = build("b", "600", "two", false);
    let none = Exceptions::default();

    let same = compare_archives(&a, &a2, &none).expect("compare a with a rebuild of a");
    assert!(
        same.diffs.is_empty(),
        "identical builds reported as different: {:#?}",
        same.diffs
    );

    let report = compare_archives(&a, &b, &none).expect("compare a with b");
    assert_eq!(
        report.diffs.len(),
        2,
        "expected exactly /f and Env to differ: {:#?}",
        report.diffs
    );
    assert!(report.diffs[0].starts_with("differs: /f\n") && report.diffs[0].contains("file 0600"));
    assert!(
        report.diffs[1].starts_with("config.Env differs")
            && report.diffs[1].contains("SELF_TEST=two")
    );
}
