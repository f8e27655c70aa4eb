//! The proof that the suite needs no root, kept by the suite itself: run
//! as real root (CI), it runs this same binary again as an unprivileged
//! user (`nobody`, through `setpriv`), which then enters strata's user
//! namespace (see `main.rs`) and must pass every test.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

crate::tests!(the_suite_passes_as_an_unprivileged_user);

/// Set in the unprivileged run, which must not start a third.
const NESTED: &str = "STRATA_IT_UNPRIVILEGED";
const NOBODY: u32 = 65534;

fn the_suite_passes_as_an_unprivileged_user() {
    if std::env::var_os(NESTED).is_some() {
        return;
    }
    if !rustix::process::geteuid().is_root() || strata_store::mount::in_user_namespace() {
        eprintln!("rootless: this run is itself unprivileged; not repeated");
        return;
    }
    let Some(setpriv) = find_in_path("setpriv") else {
        eprintln!("SKIPPED rootless: no setpriv (util-linux) to drop privileges with");
        return;
    };
    // A copy nobody can read and run (the target dir may be private), in
    // a directory that is also its HOME and TMPDIR.
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("it");
    std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for p in [dir.path(), &exe] {
        std::os::unix::fs::chown(p, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    let out = Command::new(setpriv)
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&exe)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .env("HOME", dir.path())
        .env("TMPDIR", dir.path())
        .env(NESTED, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("SKIPPED: all") {
        eprintln!("SKIPPED rootless: as uid {NOBODY}: {stderr}");
        return;
    }
    assert!(
        out.status.success() && stdout.contains("test result: ok"),
        "the suite as uid {NOBODY}:\n{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("strata's user namespace"),
        "did not run in strata's user namespace:\n{stderr}"
    );
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain(["/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| Path::new(p).is_file())
}
