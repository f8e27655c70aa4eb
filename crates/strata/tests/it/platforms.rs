//! Multi-platform builds with real emulation: an amd64 and an arm64
//! busybox (Debian's busybox-static and busybox-static:arm64, unpacked by
//! scripts/setup-host.sh into /var/cache/strata-ci/busybox-arm64) combined
//! with `manifest create` into one two-platform base; RUN under
//! qemu-user-static through binfmt_misc (registered with the F flag by
//! `strata binfmt install` when missing); push to a local docker-registry
//! and pull one platform back.
//!
//! Skips LOUDLY when not root, when the arm64 busybox is missing, or when
//! the kernel refuses the binfmt registration.

use strata_test_support as support;
use strata_test_support::registry as registry_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use support::{build_ok, build_with, context, path_str, root_dir, stderr, stdout, strata};

const ARM64_BUSYBOX: &str = "/var/cache/strata-ci/busybox-arm64/bin/busybox";

/// Serializes the tests that change the host's binfmt registrations.
static BINFMT: Mutex<()> = Mutex::new(());

/// A busybox rootfs tarball for `busybox` (a static binary).
fn busybox_tar(busybox: &Path, out: &Path) {
    let dir = out.with_extension("d");
    let _ = std::fs::remove_dir_all(&dir);
    for d in ["bin", "etc", "tmp"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::copy(busybox, dir.join("bin/busybox")).unwrap();
    for applet in support::busybox_applets() {
        let _ = std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet));
    }
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
    let o = Command::new("tar")
        .arg("-C")
        .arg(&dir)
        .arg("-cf")
        .arg(out)
        .arg(".")
        .output()
        .unwrap();
    assert!(o.status.success());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Whether these tests can run; registers qemu with the F flag when arm64
/// cannot run yet. Prints why not, loudly.
fn ready() -> bool {
    if !support::can_run() {
        return false;
    }
    if !Path::new(ARM64_BUSYBOX).exists() {
        eprintln!(
            "\n*** SKIPPED: {ARM64_BUSYBOX} is missing: run scripts/setup-host.sh (downloads busybox-static:arm64) ***\n"
        );
        return false;
    }
    if strata_runtime::binfmt::check_can_run("linux", "arm64", None).is_err() {
        let o = Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(["binfmt", "install"])
            .output()
            .unwrap();
        if let Err(e) = strata_runtime::binfmt::check_can_run("linux", "arm64", None) {
            eprintln!(
                "\n*** SKIPPED: cannot register qemu-aarch64 with binfmt_misc (the kernel refused?): {e}\n{} ***\n",
                stderr(&o)
            );
            return false;
        }
    }
    true
}

/// A store with busybox:1.35 for linux/amd64 and linux/arm64 (one index),
/// plus `busybox-amd64`, `busybox-arm64`; returns the two image IDs.
fn two_platform_base(root: &Path, scratch: &Path) -> (String, String) {
    let amd = scratch.join("amd64.tar");
    let arm = scratch.join("arm64.tar");
    busybox_tar(Path::new("/bin/busybox"), &amd);
    busybox_tar(Path::new(ARM64_BUSYBOX), &arm);
    let import = |tar: &Path, p: &str, name: &str| {
        let o = strata(root, &["import", "--platform", p, &path_str(tar), name]);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o).trim().to_string()
    };
    let a = import(&amd, "linux/amd64", "busybox-amd64");
    let b = import(&arm, "linux/aarch64", "busybox-arm64");
    let o = strata(
        root,
        &[
            "manifest",
            "create",
            "busybox:1.35",
            "busybox-amd64",
            "busybox-arm64",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    (a, b)
}

/// The steps a build executed (not cached), FROM and ARG aside, from the
/// plain progress output ("#N [stage i/n] INSTR" ... "#N DONE").
fn executed(o: &std::process::Output) -> Vec<String> {
    let mut names = std::collections::HashMap::new();
    let mut out = Vec::new();
    for l in stderr(o).lines() {
        let Some((n, rest)) = l.split_once(' ') else {
            continue;
        };
        if !n.starts_with('#') {
            continue;
        }
        if rest.starts_with('[') {
            names.insert(n.to_string(), rest.to_string());
        } else if rest.starts_with("DONE") {
            let name = names.get(n).cloned().unwrap_or_default();
            let instr = name.split_once("] ").map(|x| x.1).unwrap_or("");
            if !instr.starts_with("FROM") && !instr.starts_with("ARG") {
                out.push(name);
            }
        }
    }
    out
}

const DOCKERFILE: &str = "\
FROM --platform=$BUILDPLATFORM busybox:1.35 AS tools
RUN echo built-on-$(uname -m) > /tools.txt
FROM busybox:1.35 AS base
ARG TARGETPLATFORM
RUN uname -m > /arch.txt && echo \"$TARGETPLATFORM\" > /target.txt
COPY --from=tools /tools.txt /
FROM base AS final-amd64
RUN echo amd64 > /which
FROM base AS final-arm64
COPY arm.txt /which
FROM final-${TARGETARCH}
";

#[test]
fn a_two_platform_build_runs_each_platform_natively_or_emulated_and_caches_apart() {
    let _g = BINFMT.lock().unwrap_or_else(|p| p.into_inner());
    if !ready() {
        return;
    }
    let (tmp, root) = root_dir();
    two_platform_base(&root, tmp.path());
    let ctx = context(&[("Dockerfile", DOCKERFILE), ("arm.txt", "arm one\n")]);
    let plat = ["--platform", "linux/amd64,linux/arm64"];
    let o = build_with(&root, ctx.path(), "multi:1", &plat);
    assert!(o.status.success(), "{}", stderr(&o));
    // The build-platform stage ran once (the arm64 pass reused it).
    let tools_runs = executed(&o)
        .iter()
        .filter(|n| n.starts_with("[linux/amd64 tools "))
        .count();
    assert_eq!(tools_runs, 1, "{}", stderr(&o));
    assert_eq!(executed(&o).len(), 1 + 2 * 2 + 2, "{}", stderr(&o));

    let run = |p: &str, cmd: &[&str]| {
        let mut args = vec!["run", "--rm", "--platform", p, "multi:1"];
        args.extend_from_slice(cmd);
        let o = strata(&root, &args);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    assert_eq!(run("linux/arm64", &["cat", "/arch.txt"]), "aarch64\n");
    assert_eq!(run("linux/amd64", &["cat", "/arch.txt"]), "x86_64\n");
    assert_eq!(run("linux/arm64", &["cat", "/target.txt"]), "linux/arm64\n");
    assert_eq!(
        run("linux/arm64", &["cat", "/tools.txt"]),
        "built-on-x86_64\n"
    );
    assert_eq!(run("linux/arm64", &["cat", "/which"]), "arm one\n");
    assert_eq!(run("linux/amd64", &["cat", "/which"]), "amd64\n");
    // Without --platform: the host's.
    let o = strata(&root, &["run", "--rm", "multi:1", "uname", "-m"]);
    assert_eq!(stdout(&o), "x86_64\n", "{}", stderr(&o));

    // Shown once; inspect lists both platforms; each config states its own.
    let o = strata(&root, &["images"]);
    let listing = stdout(&o);
    let rows: Vec<&str> = listing.lines().filter(|l| l.starts_with("multi")).collect();
    assert_eq!(rows.len(), 1, "{}", stdout(&o));
    assert!(!stdout(&o).contains("<none>"), "{}", stdout(&o));
    let o = strata(&root, &["inspect", "multi:1"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let plats: Vec<String> = v[0]["Platforms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["Platform"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(plats, ["linux/amd64", "linux/arm64"]);
    let arm_id = v[0]["Platforms"][1]["Id"].as_str().unwrap().to_string();
    let o = strata(&root, &["inspect", &arm_id]);
    let cfg: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(cfg[0]["Architecture"], "arm64", "{cfg}");

    // Again: everything cached.
    let o = build_with(&root, ctx.path(), "multi:1", &plat);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(executed(&o), Vec::<String>::new(), "{}", stderr(&o));

    // Only the arm64-specific stage changes: only it reruns.
    std::fs::write(ctx.path().join("arm.txt"), "arm two\n").unwrap();
    let o = build_with(&root, ctx.path(), "multi:1", &plat);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = executed(&o);
    assert_eq!(
        m,
        ["[linux/arm64 final-arm64 2/2] COPY arm.txt /which"],
        "{}",
        stderr(&o)
    );
    assert_eq!(run("linux/arm64", &["cat", "/which"]), "arm two\n");

    // --output type=local with two platforms: one directory each.
    let out = tmp.path().join("out");
    let both = |outputs: &[&str]| {
        let mut args = vec!["--platform", "linux/amd64,linux/arm64"];
        for o in outputs {
            args.extend(["-o", o]);
        }
        build_ok(&root, ctx.path(), "multi:1", &args);
    };
    both(&[&format!("type=local,dest={}", out.display())]);
    assert_eq!(
        std::fs::read_to_string(out.join("linux_arm64/arch.txt")).unwrap(),
        "aarch64\n"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("linux_amd64/arch.txt")).unwrap(),
        "x86_64\n"
    );

    // type=oci: the index with both images; type=tar: a directory each.
    let oci = tmp.path().join("out.oci.tar");
    let tar = tmp.path().join("out.tar");
    both(&[
        &format!("type=oci,dest={}", oci.display()),
        &format!("type=tar,dest={}", tar.display()),
    ]);
    let o = Command::new("skopeo")
        .arg("inspect")
        .arg("--raw")
        .arg(format!("oci-archive:{}", oci.display()))
        .output()
        .unwrap();
    let index: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&o.stderr)));
    assert_eq!(
        index["manifests"].as_array().map(Vec::len),
        Some(2),
        "{index}"
    );
    let o = Command::new("tar").arg("-tf").arg(&tar).output().unwrap();
    let listing = stdout(&o);
    assert!(
        listing.lines().any(|l| l == "linux_arm64/arch.txt"),
        "{listing}"
    );
    assert!(
        listing.lines().any(|l| l == "linux_amd64/arch.txt"),
        "{listing}"
    );

    // save --format oci keeps the index; a load into an empty store gets
    // the same two-platform tag back.
    let root2 = save_and_load(
        &root,
        &["--format", "oci"],
        "multi:1",
        &tmp.path().join("loaded"),
    );
    let o = strata(
        &root2,
        &[
            "run",
            "--rm",
            "--platform",
            "linux/arm64",
            "multi:1",
            "cat",
            "/arch.txt",
        ],
    );
    assert_eq!(stdout(&o), "aarch64\n", "{}", stderr(&o));
    // save --platform: that platform's image only (docker format).
    let root3 = save_and_load(
        &root,
        &["--platform", "linux/arm64"],
        "multi:1",
        &tmp.path().join("one"),
    );
    let o = strata(&root3, &["inspect", "multi:1"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["Architecture"], "arm64", "{v}");
}

/// `strata save FLAGS IMAGE` from `root` into a file beside `into`, then
/// `strata load` of it into the new store `into`; returns `into`.
fn save_and_load(root: &Path, flags: &[&str], image: &str, into: &Path) -> PathBuf {
    let archive = into.with_extension("tar");
    let archive = path_str(&archive);
    let mut args = vec!["save"];
    args.extend_from_slice(flags);
    args.extend(["-o", &archive, image]);
    let o = strata(root, &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = strata(into, &["load", "-i", &archive]);
    assert!(o.status.success(), "{}", stderr(&o));
    into.to_path_buf()
}

#[test]
fn a_run_for_a_platform_without_an_emulator_fails_naming_it_and_the_fix() {
    let _g = BINFMT.lock().unwrap_or_else(|p| p.into_inner());
    if !ready() {
        return;
    }
    let (tmp, root) = root_dir();
    // The content does not matter: the check comes before runc.
    let tar = tmp.path().join("s390x.tar");
    busybox_tar(Path::new("/bin/busybox"), &tar);
    let o = strata(
        &root,
        &[
            "import",
            "--platform",
            "linux/s390x",
            &path_str(&tar),
            "base-s390x",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let dir = Path::new(strata_runtime::binfmt::BINFMT_MISC);
    let had = dir.join("qemu-s390x").exists();
    if had {
        strata_runtime::binfmt::remove(dir, "qemu-s390x").unwrap();
    }
    let ctx = context(&[("Dockerfile", "FROM base-s390x\nRUN true\n")]);
    let o = build_with(
        &root,
        ctx.path(),
        "s390x-app",
        &["--platform", "linux/s390x"],
    );
    if had {
        let _ = Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(["binfmt", "install"])
            .output();
    }
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("linux/s390x"), "{e}");
    assert!(
        e.contains("apt-get install qemu-user-static") && e.contains("strata binfmt install"),
        "{e}"
    );
    assert!(!e.contains("no such file or directory"), "{e}");
}

/// `docker pull` of a pushed two-platform name on this amd64 host gets the
/// amd64 image: Docker's image ID (the config digest) is strata's amd64 ID.
/// dockerd treats 127.0.0.0/8 registries as insecure by default, so the
/// plain-HTTP test registry needs no daemon configuration. Skips LOUDLY
/// when dockerd is not reachable or the host is not amd64.
fn docker_pulls_the_host_platform(name: &str, amd_id: &str) {
    if std::env::consts::ARCH != "x86_64" {
        eprintln!("SKIPPED docker pull check: the host is not amd64");
        return;
    }
    let info = Command::new("docker").arg("info").output();
    if !matches!(&info, Ok(o) if o.status.success()) {
        eprintln!("SKIPPED docker pull check: dockerd is not reachable ({info:?})");
        return;
    }
    let o = Command::new("docker")
        .args(["pull", name])
        .output()
        .unwrap();
    assert!(o.status.success(), "docker pull {name}: {}", stderr(&o));
    let o = Command::new("docker")
        .args([
            "image",
            "inspect",
            "--format",
            "{{.Id}} {{.Architecture}}",
            name,
        ])
        .output()
        .unwrap();
    let _ = Command::new("docker").args(["rmi", "-f", name]).output();
    assert!(o.status.success(), "{}", stderr(&o));
    let got = stdout(&o);
    let strip = |s: &str| s.trim().trim_start_matches("sha256:").to_string();
    let (id, arch) = got.trim().split_once(' ').unwrap();
    assert_eq!(strip(id), strip(amd_id), "docker image inspect: {got}");
    assert_eq!(arch, "amd64", "{got}");
}

#[test]
fn a_two_platform_image_pushes_as_an_index_and_pulls_one_platform() {
    let _g = BINFMT.lock().unwrap_or_else(|p| p.into_inner());
    if !ready() {
        return;
    }
    let reg = registry_support::Registry::start(registry_support::Auth::None);
    let host = reg.host();
    let (tmp, root) = root_dir();
    let (_, arm_base) = two_platform_base(&root, tmp.path());
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox:1.35\nRUN uname -m > /arch.txt\n",
    )]);
    let name = format!("{host}/multi/app:1");
    let o = build_with(
        &root,
        ctx.path(),
        &name,
        &["--platform", "linux/amd64,linux/arm64"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = strata(&root, &["inspect", &name]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let arm_id = v[0]["Platforms"][1]["Id"].as_str().unwrap().to_string();
    let amd_id = v[0]["Platforms"][0]["Id"].as_str().unwrap().to_string();
    assert_eq!(v[0]["Platforms"][0]["Platform"], "linux/amd64", "{v}");
    assert_ne!(arm_id, arm_base);

    let o = strata(&root, &["push", &name]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{name}"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let index: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let archs: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap_or_else(|| panic!("not an index: {index}"))
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(archs, ["amd64", "arm64"], "{index}");
    docker_pulls_the_host_platform(&name, &amd_id);

    let root2: PathBuf = tmp.path().join("empty");
    let o = strata(&root2, &["pull", "--platform", "linux/arm64", &name]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = strata(&root2, &["inspect", &name]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["Id"].as_str().unwrap(), arm_id);
    assert_eq!(v[0]["Architecture"], "arm64");

    // Both platforms at once: one multi-platform tag again.
    let root3: PathBuf = tmp.path().join("both");
    let o = strata(
        &root3,
        &["pull", "--platform", "linux/amd64,linux/arm64", &name],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = strata(&root3, &["inspect", &name]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["Platforms"][1]["Id"].as_str().unwrap(), arm_id, "{v}");
    assert_eq!(v[0]["Platforms"][1]["Platform"], "linux/arm64", "{v}");
    let o = strata(
        &root3,
        &[
            "run",
            "--rm",
            "--platform",
            "linux/arm64",
            &name,
            "cat",
            "/arch.txt",
        ],
    );
    assert_eq!(stdout(&o), "aarch64\n", "{}", stderr(&o));

    // --all-platforms, as Docker's: every platform of the index, tagged
    // as one multi-platform tag; not with --platform.
    let root4: PathBuf = tmp.path().join("all");
    let o = strata(&root4, &["pull", "--all-platforms", &name]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = strata(&root4, &["inspect", &name]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["Platforms"][0]["Platform"], "linux/amd64", "{v}");
    assert_eq!(v[0]["Platforms"][0]["Id"].as_str().unwrap(), amd_id, "{v}");
    assert_eq!(v[0]["Platforms"][1]["Platform"], "linux/arm64", "{v}");
    assert_eq!(v[0]["Platforms"][1]["Id"].as_str().unwrap(), arm_id, "{v}");
    let o = strata(
        &root4,
        &[
            "pull",
            "--all-platforms",
            "--platform",
            "linux/arm64",
            &name,
        ],
    );
    assert!(!o.status.success(), "{}", stdout(&o));
}

#[test]
fn scratch_stages_state_the_target_platform_and_key_it() {
    if !support::can_run() {
        return;
    }
    let (_tmp, root) = root_dir();
    let ctx = context(&[
        ("Dockerfile", "FROM scratch\nCOPY a.txt /\n"),
        ("a.txt", "a\n"),
    ]);
    let config_of = |name: &str| {
        let o = strata(&root, &["inspect", name]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        (
            v[0]["Architecture"].as_str().unwrap_or("").to_string(),
            v[0]["Variant"].as_str().unwrap_or("").to_string(),
            v[0]["Id"].as_str().unwrap_or("").to_string(),
        )
    };
    let o = build_with(
        &root,
        ctx.path(),
        "s:arm64",
        &["--platform", "linux/aarch64"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = build_with(
        &root,
        ctx.path(),
        "s:armv7",
        &["--platform", "linux/arm/v7"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = build_with(&root, ctx.path(), "s:host", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (a, av, a_id) = config_of("s:arm64");
    let (b, bv, b_id) = config_of("s:armv7");
    let (c, _, c_id) = config_of("s:host");
    assert_eq!((a.as_str(), av.as_str()), ("arm64", ""));
    assert_eq!((b.as_str(), bv.as_str()), ("arm", "v7"));
    assert_eq!(c, "amd64");
    assert!(a_id != b_id && b_id != c_id && a_id != c_id);
    // A bad --platform is refused with the expected form.
    let o = build_with(&root, ctx.path(), "s:bad", &["--platform", "linux/"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("os/arch[/variant]"), "{}", stderr(&o));

    // A single-platform base of another architecture is refused, naming both.
    let tar = _tmp.path().join("amd64.tar");
    busybox_tar(Path::new("/bin/busybox"), &tar);
    let o = strata(&root, &["import", &path_str(&tar), "only-amd64"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ctx = context(&[("Dockerfile", "FROM only-amd64\nRUN true\n")]);
    let o = build_with(&root, ctx.path(), "x", &["--platform", "linux/arm64"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("only-amd64 is for platform linux/amd64, not linux/arm64"),
        "{e}"
    );
}

/// The tutorial cross-compiled: the Go toolchain (linux/amd64 only) runs
/// on the build platform, `GOARCH=$TARGETARCH` builds each target's binary;
/// the arm64 image's program is an aarch64 ELF and runs under emulation.
#[test]
fn the_tutorial_cross_compiles_for_arm64_on_the_build_platform() {
    let _g = BINFMT.lock().unwrap_or_else(|p| p.into_inner());
    if !ready() {
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = repo.join("scripts/make-base-rootfs.sh");
    let (tmp, root) = root_dir();
    let dir = tmp.path().join("bases");
    let o = Command::new(&script).arg(&dir).output().unwrap();
    assert!(o.status.success(), "make-base-rootfs: {}", stderr(&o));
    let changes = |img: &str| -> Vec<String> {
        let o = Command::new(&script)
            .args(["--print-changes", img])
            .output()
            .unwrap();
        stdout(&o).lines().map(str::to_string).collect()
    };
    let import = |tar: &Path, platform: &str, tag: &str, img: &str| {
        let tar = path_str(tar);
        let mut args = vec!["import", "--platform", platform, tar.as_str(), tag];
        let ch = changes(img);
        for c in &ch {
            args.push("--change");
            args.push(c);
        }
        let o = strata(&root, &args);
        assert!(o.status.success(), "{}", stderr(&o));
    };
    import(
        &dir.join("golang.tar"),
        "linux/amd64",
        "golang:1.19",
        "golang",
    );
    import(
        &dir.join("busybox.tar"),
        "linux/amd64",
        "busybox-amd64",
        "busybox",
    );
    let arm = tmp.path().join("arm64.tar");
    busybox_tar(Path::new(ARM64_BUSYBOX), &arm);
    import(&arm, "linux/arm64", "busybox-arm64", "busybox");
    std::fs::remove_dir_all(&dir).unwrap();
    let o = strata(
        &root,
        &[
            "manifest",
            "create",
            "busybox:1.35",
            "busybox-amd64",
            "busybox-arm64",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));

    let ctx = repo.join("examples/tutorial/Multi_Platform");
    let out = tmp.path().join("out");
    let o = build_with(
        &root,
        &ctx,
        "app:multi",
        &[
            "--platform",
            "linux/amd64,linux/arm64",
            "-o",
            &format!("type=local,dest={}", out.display()),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // e_machine (offset 18): 0xb7 aarch64, 0x3e x86-64.
    let machine = |p: &str| {
        let b = std::fs::read(out.join(p)).unwrap();
        assert_eq!(&b[..4], b"\x7fELF");
        u16::from_le_bytes([b[18], b[19]])
    };
    assert_eq!(machine("linux_arm64/root/app"), 0xb7);
    assert_eq!(machine("linux_amd64/root/app"), 0x3e);
    for p in ["linux/arm64", "linux/amd64"] {
        let o = strata(&root, &["run", "--rm", "--platform", p, "app:multi"]);
        assert_eq!(
            stdout(&o),
            "DevOps is the \u{1F410}\n",
            "{p}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn manifest_create_add_and_inspect_combine_local_images() {
    if !support::can_run() {
        return;
    }
    let (tmp, root) = root_dir();
    let tar = tmp.path().join("rootfs.tar");
    busybox_tar(Path::new("/bin/busybox"), &tar);
    let mut ids = Vec::new();
    for (p, n) in [
        ("linux/amd64", "x-amd64"),
        ("linux/arm64/v8", "x-arm64"),
        ("linux/armhf", "x-arm"),
    ] {
        let o = strata(&root, &["import", "--platform", p, &path_str(&tar), n]);
        assert!(o.status.success(), "{}", stderr(&o));
        ids.push(stdout(&o).trim().to_string());
    }
    let o = strata(&root, &["manifest", "create", "x:multi", "x-amd64"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = strata(&root, &["manifest", "add", "x:multi", "x-arm64"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = strata(&root, &["manifest", "add", "x:multi", "x-arm"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = strata(&root, &["manifest", "inspect", "x:multi"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let plats: Vec<String> = v["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let p = &m["platform"];
            let mut s = format!(
                "{}/{}",
                p["os"].as_str().unwrap(),
                p["architecture"].as_str().unwrap()
            );
            if let Some(var) = p["variant"].as_str() {
                s.push('/');
                s.push_str(var);
            }
            s
        })
        .collect();
    assert_eq!(plats, ["linux/amd64", "linux/arm64", "linux/arm/v7"], "{v}");
    // Shown once, as the host's image.
    let o = strata(&root, &["images"]);
    let listing = stdout(&o);
    let rows: Vec<&str> = listing.lines().filter(|l| l.starts_with("x ")).collect();
    assert_eq!(rows.len(), 1, "{listing}");
    assert!(
        rows[0].contains(&ids[0]["sha256:".len().."sha256:".len() + 12]),
        "{listing}"
    );
    // `tag` copies the whole multi-platform tag.
    let o = strata(&root, &["tag", "x:multi", "y:copy"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = strata(&root, &["inspect", "y:copy"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["Platforms"].as_array().unwrap().len(), 3, "{v}");
    // Re-adding a platform replaces its entry.
    let o = strata(&root, &["manifest", "add", "x:multi", "x-amd64"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = strata(&root, &["inspect", "x:multi"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["Platforms"].as_array().unwrap().len(), 3, "{v}");
    // rmi of a multi-platform tag: its platforms' images go with it (those
    // still tagged elsewhere stay).
    let o = strata(&root, &["rmi", "x-arm64", "x-arm", "y:copy"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = strata(&root, &["rmi", "x:multi"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(out.matches("Deleted:").count(), 2, "{out}");
    let o = strata(&root, &["images"]);
    let listing = stdout(&o);
    assert!(!listing.contains("<none>"), "{listing}");
    assert!(listing.contains("x-amd64"), "{listing}");
}

/// Rootless, with no host registration for arm64: strata registers qemu in
/// a binfmt_misc instance of its own user namespace (kernel >= 6.7) and the
/// RUN prints aarch64; the host's registrations stay as they were.
#[test]
fn rootless_registers_qemu_in_its_own_user_namespace_only() {
    const USER: &str = "strata-rootless-test";
    let _g = BINFMT.lock().unwrap_or_else(|p| p.into_inner());
    if !ready() {
        return;
    }
    let has = |c: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {c}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !has("runuser") || !has("useradd") {
        eprintln!("\n*** SKIPPED: runuser/useradd missing ***\n");
        return;
    }
    if !Command::new("id")
        .arg(USER)
        .output()
        .unwrap()
        .status
        .success()
    {
        let o = Command::new("useradd")
            .args(["-m", "-s", "/bin/sh", USER])
            .output()
            .unwrap();
        assert!(o.status.success(), "useradd: {}", stderr(&o));
    }
    let tmp = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let amd = tmp.path().join("amd64.tar");
    let arm = tmp.path().join("arm64.tar");
    busybox_tar(Path::new("/bin/busybox"), &amd);
    busybox_tar(Path::new(ARM64_BUSYBOX), &arm);
    for f in [&amd, &arm] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let root = tmp.path().join("store");
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox:1.35\nRUN uname -m > /arch && cat /arch\n",
    )
    .unwrap();
    std::fs::set_permissions(&ctx, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        ctx.join("Dockerfile"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let as_user = |args: &[&str]| {
        Command::new("runuser")
            .args(["-u", USER, "--", env!("CARGO_BIN_EXE_strata"), "--root"])
            .arg(&root)
            .args(args)
            .current_dir(tmp.path())
            .output()
            .unwrap()
    };
    for (tar, p, n) in [
        (&amd, "linux/amd64", "bb-amd64"),
        (&arm, "linux/arm64", "bb-arm64"),
    ] {
        let o = as_user(&["import", "--platform", p, &path_str(tar), n]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let o = as_user(&["manifest", "create", "busybox:1.35", "bb-amd64", "bb-arm64"]);
    assert!(o.status.success(), "{}", stderr(&o));

    let dir = Path::new(strata_runtime::binfmt::BINFMT_MISC);
    strata_runtime::binfmt::remove(dir, "qemu-aarch64").unwrap();
    let o = as_user(&[
        "build",
        "--progress",
        "plain",
        "--platform",
        "linux/arm64",
        "-t",
        "rl",
        &path_str(&ctx),
    ]);
    let host_after = dir.join("qemu-aarch64").exists();
    let _ = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["binfmt", "install"])
        .output();
    let e = stderr(&o);
    if !o.status.success() && e.contains("kernel >= 6.7") {
        eprintln!(
            "\n*** SKIPPED: the kernel refused a binfmt_misc of the user namespace: {e} ***\n"
        );
        return;
    }
    assert!(o.status.success(), "{e}");
    assert!(e.contains("aarch64"), "{e}");
    assert!(!host_after, "the host got a registration");
}

#[test]
fn a_two_platform_cache_exported_and_imported_keeps_the_platforms_apart() {
    let _g = BINFMT.lock().unwrap_or_else(|p| p.into_inner());
    if !ready() {
        return;
    }
    let (tmp, root) = root_dir();
    two_platform_base(&root, tmp.path());
    let files = [("Dockerfile", DOCKERFILE), ("arm.txt", "arm one\n")];
    let ctx = context(&files);
    let cache = path_str(&tmp.path().join("cache"));
    let plat = ["--platform", "linux/amd64,linux/arm64"];
    // mode=max: every stage's keys (min carries the final stage only), of
    // both platforms; imported, each platform finds its own steps.
    let to = format!("type=local,dest={cache},mode=max");
    let mut args = plat.to_vec();
    args.extend_from_slice(&["--cache-to", &to]);
    let o = build_with(&root, ctx.path(), "multi:1", &args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!executed(&o).is_empty(), "{}", stderr(&o));

    // An empty store with the same two-platform base (an OCI archive of
    // it, index and all), then the cache.
    let base = tmp.path().join("base.tar");
    let o = strata(
        &root,
        &[
            "save",
            "--format",
            "oci",
            "-o",
            &path_str(&base),
            "busybox:1.35",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let root2: PathBuf = tmp.path().join("second");
    let o = strata(&root2, &["load", "-i", &path_str(&base)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let from = format!("type=local,src={cache}");
    let ctx2 = context(&files);
    let mut args = plat.to_vec();
    args.extend_from_slice(&["--cache-from", &from]);
    let o = build_with(&root2, ctx2.path(), "multi:1", &args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(executed(&o), Vec::<String>::new(), "{}", stderr(&o));

    let ids = |root: &Path| {
        let o = strata(root, &["inspect", "multi:1"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let p = v[0]["Platforms"].as_array().cloned().unwrap_or_default();
        p.iter()
            .map(|p| {
                (
                    p["Platform"].as_str().unwrap().to_string(),
                    p["Id"].as_str().unwrap().to_string(),
                )
            })
            .collect::<Vec<_>>()
    };
    let (first, second) = (ids(&root), ids(&root2));
    assert_eq!(first.len(), 2, "{first:?}");
    assert_eq!(first, second);
    for (platform, arch, uname) in [
        ("linux/amd64", "amd64", "x86_64\n"),
        ("linux/arm64", "arm64", "aarch64\n"),
    ] {
        let id = &second.iter().find(|(p, _)| p == platform).unwrap().1;
        let o = strata(&root2, &["inspect", id]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v[0]["Architecture"], arch, "{v}");
        let o = strata(
            &root2,
            &[
                "run",
                "--rm",
                "--platform",
                platform,
                "multi:1",
                "cat",
                "/arch.txt",
            ],
        );
        assert_eq!(stdout(&o), uname, "{}", stderr(&o));
    }
}
