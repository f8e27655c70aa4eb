//! Crash consistency: `strata` is killed with SIGKILL at random moments
//! (seeded RNG; set STRATA_CRASH_SEED to replay, STRATA_CRASH_ITERS for
//! more or fewer iterations, default 20) during build, load, prune and
//! pull. After every kill `system check` must find no corruption (harmless
//! leftovers of the dead process are allowed); after the loop a
//! `system check --repair` leaves the store clean, and the next operation
//! succeeds and gives exactly the image a fresh store gives (builds use
//! SOURCE_DATE_EPOCH, so the image ID is reproducible across stores).

use strata_test_support as support;
use strata_test_support::registry as regsupport;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use support::{can_run, make_busybox, path_str, stderr, stdout};

const SDE: &str = "1700000000";

/// xorshift64*: small, seeded, good enough to spread kill times.
struct Rng(u64);

impl Rng {
    fn from_env(salt: u64) -> Rng {
        let seed = std::env::var("STRATA_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0x5eed_cafe_u64);
        eprintln!("crash test seed: {seed} (STRATA_CRASH_SEED to replay)");
        Rng((seed ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// A delay uniform in [0, max].
    fn delay(&mut self, max: Duration) -> Duration {
        let ms = max.as_millis().max(1) as u64;
        Duration::from_millis(self.next() % (ms + 1))
    }
}

fn iterations() -> usize {
    std::env::var("STRATA_CRASH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
}

/// strata on `root` with a fixed SOURCE_DATE_EPOCH, no credentials and no
/// insecure registries, stdin closed.
fn cmd(root: &Path, args: &[&str]) -> support::Strata {
    support::Strata::new(root)
        .args(args)
        .env("SOURCE_DATE_EPOCH", SDE)
        .env(
            "DOCKER_CONFIG",
            std::env::temp_dir().join("strata-crash-no-creds"),
        )
        .env_remove("STRATA_INSECURE_REGISTRIES")
}

fn ok(root: &Path, args: &[&str]) -> String {
    cmd(root, args).ok()
}

/// Runs strata and SIGKILLs it after `delay` (if it is still running).
/// Returns true when it was killed, false when it finished first.
fn kill_after(root: &Path, args: &[&str], delay: Duration) -> bool {
    let mut child = cmd(root, args)
        .command()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let until = Instant::now() + delay;
    while Instant::now() < until {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let killed = child.try_wait().unwrap().is_none();
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    killed
}

/// `system check` after a crash: no corruption (exit 0). Leftovers of the
/// killed process may be listed; they are counted, not failed.
fn check_no_corruption(root: &Path, what: &str, leftovers: &mut usize) {
    let o = cmd(root, &["system", "check"]).output();
    assert!(
        o.status.success(),
        "corruption after a killed {what}:\n{}{}",
        stdout(&o),
        stderr(&o)
    );
    *leftovers += stdout(&o)
        .lines()
        .filter(|l| l.starts_with("problem:"))
        .count();
}

/// After the loop: repair, then a clean check, no container dir and no
/// mount left under the root.
fn repair_and_assert_clean(root: &Path) {
    let out = ok(root, &["system", "check", "--repair"]);
    eprintln!("repair:\n{out}");
    let out = ok(root, &["system", "check"]);
    assert!(out.contains("no problems"), "still not clean:\n{out}");
    let containers = std::fs::read_dir(root.join("containers"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(containers, 0, "container dirs left after repair");
    assert!(
        mounts_under(root).is_empty(),
        "mounts left: {:?}",
        mounts_under(root)
    );
}

fn mounts_under(root: &Path) -> Vec<String> {
    let canon = std::fs::canonicalize(root).unwrap_or(root.to_path_buf());
    let canon = canon.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(1))
        .filter(|m| m.starts_with(&canon))
        .map(String::from)
        .collect()
}

/// Unmounts whatever a killed run left under `root` (so the temp dir can
/// be removed even when a test fails half-way).
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        for m in mounts_under(&self.0).iter().rev() {
            let _ = Command::new("umount").arg("-l").arg(m).status();
        }
    }
}

/// A fresh store holding the fixture's base image, and the guard that
/// unmounts what a killed run leaves in it.
fn store_with_base(f: &Fixture) -> (tempfile::TempDir, PathBuf, Unmount) {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("store");
    let u = Unmount(root.clone());
    ok(&root, &["load", "-i", &path_str(&f.base_tar)]);
    (t, root, u)
}

/// Shared across the tests of this file: the busybox base as an archive
/// (so every store gets the same base image ID), a build context, the
/// image a fresh store builds from it, and that image as an archive.
struct Fixture {
    base_tar: PathBuf,
    ctx: PathBuf,
    app_tar: PathBuf,
    app_id: String,
    build_time: Duration,
    load_time: Duration,
}

const DOCKERFILE: &str = "FROM busybox:1.35 AS b\n\
COPY data.bin /d/\n\
RUN mkdir /out && for i in 1 2 3 4; do cp /d/data.bin /out/$i; done && echo built > /out/t\n\
FROM busybox:1.35\n\
COPY --from=b /out /out\n\
RUN wc -c /out/1 /out/2 > /sizes\n\
CMD cat /out/t /sizes\n";

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir =
            support::process_scratch_dir(Path::new(env!("CARGO_TARGET_TMPDIR")), "crash-fixture");
        let d = dir.as_path();
        let seed_store = d.join("seed");
        make_busybox(&seed_store);
        let base_tar = d.join("base.tar");
        ok(
            &seed_store,
            &["save", "-o", &path_str(&base_tar), "busybox:1.35"],
        );
        let ctx = d.join("ctx");
        std::fs::create_dir(&ctx).unwrap();
        std::fs::write(ctx.join("Dockerfile"), DOCKERFILE).unwrap();
        // 8 MB of seeded noise: big enough that writes take a while.
        let mut r = Rng(42);
        let data: Vec<u8> = (0..(8 << 20) / 8)
            .flat_map(|_| r.next().to_le_bytes())
            .collect();
        std::fs::write(ctx.join("data.bin"), data).unwrap();
        let reference = d.join("reference");
        ok(&reference, &["load", "-i", &path_str(&base_tar)]);
        let t = Instant::now();
        let app_id = ok(&reference, &["build", "-q", "-t", "app:1", &path_str(&ctx)])
            .trim()
            .to_string();
        let build_time = t.elapsed();
        let app_tar = d.join("app.tar");
        ok(&reference, &["save", "-o", &path_str(&app_tar), "app:1"]);
        let probe = d.join("probe");
        let t = Instant::now();
        ok(&probe, &["load", "-i", &path_str(&app_tar)]);
        let load_time = t.elapsed();
        eprintln!("fixture: build {build_time:?}, load {load_time:?}, image {app_id}");
        Fixture {
            base_tar,
            ctx,
            app_tar,
            app_id,
            build_time,
            load_time,
        }
    })
}

fn image_id(root: &Path, name: &str) -> String {
    let out = ok(root, &["inspect", name]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let v = if v.is_array() { v[0].clone() } else { v };
    v["Id"].as_str().unwrap().to_string()
}

fn assert_runs(root: &Path) {
    let out = ok(root, &["run", "--rm", "app:1"]);
    assert!(out.starts_with("built\n"), "{out}");
    assert!(out.contains("8388608 /out/1"), "{out}");
}

#[test]
fn build_killed_at_random_moments() {
    if !can_run() {
        return;
    }
    let f = fixture();
    let (_t, root, _u) = store_with_base(f);
    let mut rng = Rng::from_env(1);
    let (mut killed, mut leftovers) = (0, 0);
    let ctx = path_str(&f.ctx);
    for _ in 0..iterations() {
        let delay = rng.delay(f.build_time.mul_f32(1.2));
        killed += kill_after(
            &root,
            &["build", "--no-cache", "-q", "-t", "app:1", &ctx],
            delay,
        ) as usize;
        check_no_corruption(&root, "build", &mut leftovers);
    }
    eprintln!(
        "build: {killed}/{} killed mid-way, {leftovers} leftover reports (summed over the checks)",
        iterations()
    );
    repair_and_assert_clean(&root);
    // The next build succeeds and gives the reference image.
    let id = ok(&root, &["build", "-q", "-t", "app:1", &ctx]);
    assert_eq!(id.trim(), f.app_id, "the build after crashes differs");
    assert_runs(&root);
    let out = ok(&root, &["system", "check"]);
    assert!(out.contains("no problems"), "{out}");
}

#[test]
fn load_and_prune_killed_at_random_moments() {
    if !can_run() {
        return;
    }
    let f = fixture();
    let (_t, root, _u) = store_with_base(f);
    let mut rng = Rng::from_env(2);
    let (mut killed_load, mut killed_prune, mut leftovers) = (0, 0, 0);
    let tar = path_str(&f.app_tar);
    for _ in 0..iterations() {
        let delay = rng.delay(f.load_time.mul_f32(1.2));
        killed_load += kill_after(&root, &["load", "-i", &tar], delay) as usize;
        check_no_corruption(&root, "load", &mut leftovers);
        // Untag (if the load got that far), so the prune has real work.
        let _ = cmd(&root, &["rmi", "app:1"]).output();
        // A prune takes a few ms: kill within its first 6 ms.
        let delay = Duration::from_micros(rng.next() % 6_000);
        killed_prune += kill_after(&root, &["system", "prune", "-a", "-f"], delay) as usize;
        check_no_corruption(&root, "prune", &mut leftovers);
    }
    eprintln!(
        "load: {killed_load}/{n} killed, prune: {killed_prune}/{n} killed, {leftovers} leftover reports",
        n = iterations()
    );
    repair_and_assert_clean(&root);
    ok(&root, &["load", "-i", &tar]);
    assert_eq!(image_id(&root, "app:1"), f.app_id);
    assert_runs(&root);
    // The base survived every prune (it is tagged).
    ok(&root, &["run", "--rm", "busybox:1.35", "true"]);
    let out = ok(&root, &["system", "check"]);
    assert!(out.contains("no problems"), "{out}");
}

/// Kills a GC exactly between its steps (`STRATA_CRASH_AT`, see
/// `fsutil::crash_point`): after the unreferenced blobs are deleted, and
/// after a snapshot is moved aside but before its files are. Either way
/// `system check` must find leftovers at most, never a layer record naming
/// a deleted blob or a half-deleted snapshot that still looks complete.
#[test]
fn gc_killed_between_its_steps() {
    if !can_run() {
        return;
    }
    let f = fixture();
    let (_t, root, _u) = store_with_base(f);
    for point in ["prune:blobs-removed", "snapshot-remove:renamed"] {
        ok(&root, &["load", "-i", &path_str(&f.app_tar)]);
        assert_runs(&root); // unpacks the app's snapshots
                            // `rmi` runs GC: the removed image's blobs and snapshots go.
        let o = cmd(&root, &["rmi", "app:1"])
            .env("STRATA_CRASH_AT", point)
            .output();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            o.status.signal(),
            Some(9),
            "GC did not reach {point}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        let mut leftovers = 0;
        check_no_corruption(&root, point, &mut leftovers);
        // The next prune finishes the job.
        ok(&root, &["system", "prune", "-a", "-f"]);
    }
    repair_and_assert_clean(&root);
    ok(&root, &["load", "-i", &path_str(&f.app_tar)]);
    assert_runs(&root);
}

/// A container directory is renamed into `ROOT/tmp` before it is deleted:
/// a kill mid-delete leaves temp debris that the next check finds and
/// repairs, never a half-deleted directory under `containers/`.
#[test]
fn container_removal_killed_midway() {
    if !can_run() {
        return;
    }
    let f = fixture();
    let (_t, root, _u) = store_with_base(f);
    ok(&root, &["load", "-i", &path_str(&f.app_tar)]);
    let o = cmd(&root, &["run", "--rm", "app:1"])
        .env("STRATA_CRASH_AT", "container-remove:renamed")
        .output();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        o.status.signal(),
        Some(9),
        "run did not reach container-remove:renamed: {}{}",
        stdout(&o),
        stderr(&o)
    );
    let containers = std::fs::read_dir(root.join("containers")).unwrap().count();
    assert_eq!(
        containers, 0,
        "the container dir is still under containers/"
    );
    let mut leftovers = 0;
    check_no_corruption(&root, "container removal", &mut leftovers);
    assert!(leftovers >= 1, "check did not report the half-deleted dir");
    repair_and_assert_clean(&root);
    assert_runs(&root);
}

#[test]
fn pull_killed_at_random_moments() {
    if !can_run() {
        return;
    }
    if !Path::new("/usr/bin/docker-registry").exists() {
        eprintln!(
            "SKIPPED pull crash test: /usr/bin/docker-registry missing (Debian docker-registry)"
        );
        return;
    }
    let f = fixture();
    let reg = regsupport::Registry::start(regsupport::Auth::None);
    let name = format!("{}/crash/app:1", reg.host());
    let t = tempfile::tempdir().unwrap();
    let pusher = t.path().join("pusher");
    ok(&pusher, &["load", "-i", &path_str(&f.app_tar)]);
    ok(&pusher, &["tag", "app:1", &name]);
    ok(&pusher, &["push", &name]);
    let root = t.path().join("store");
    let _u = Unmount(root.clone());
    let start = Instant::now();
    ok(&root, &["pull", &name]);
    let pull_time = start.elapsed();
    ok(&root, &["rmi", &name]);
    ok(&root, &["system", "prune", "-a", "-f"]);
    let mut rng = Rng::from_env(3);
    let (mut killed, mut killed_prune, mut leftovers) = (0, 0, 0);
    for _ in 0..iterations() {
        let delay = rng.delay(pull_time.mul_f32(1.2));
        killed += kill_after(&root, &["pull", &name], delay) as usize;
        check_no_corruption(&root, "pull", &mut leftovers);
        let _ = cmd(&root, &["rmi", &name]).output();
        // A prune takes a few ms: kill within its first 6 ms.
        let delay = Duration::from_micros(rng.next() % 6_000);
        killed_prune += kill_after(&root, &["system", "prune", "-a", "-f"], delay) as usize;
        check_no_corruption(&root, "prune after pull", &mut leftovers);
    }
    eprintln!(
        "pull: {killed}/{n} killed mid-way (pull takes {pull_time:?}), prune: {killed_prune}/{n} \
         killed, {leftovers} leftover reports",
        n = iterations()
    );
    repair_and_assert_clean(&root);
    ok(&root, &["pull", &name]);
    assert_eq!(image_id(&root, &name), f.app_id, "pulled image differs");
    let out = ok(&root, &["system", "check"]);
    assert!(out.contains("no problems"), "{out}");
}
