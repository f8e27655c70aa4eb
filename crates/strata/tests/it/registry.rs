//! `strata login/logout/pull/push` against a real `docker-registry` on
//! 127.0.0.1 (started by the test; see strata-registry's test support).

use strata_test_support::{proxy, registry as support, Strata};

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use strata_store::Store;
use support::{make_image, make_image_with, Auth, Registry, TokenServer};

/// strata on `root` with `docker_config` as DOCKER_CONFIG (where logins go)
/// and `stdin` as its input.
fn cli(root: &Path, docker_config: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    cli_env(root, docker_config, args, stdin, &[])
}

fn cli_env(
    root: &Path,
    docker_config: &Path,
    args: &[&str],
    stdin: Option<&str>,
    env: &[(&str, String)],
) -> Output {
    let mut s = Strata::new(root)
        .args(args)
        .env("DOCKER_CONFIG", docker_config)
        .env_remove("STRATA_INSECURE_REGISTRIES");
    for (k, v) in env {
        s = s.env(k, v);
    }
    // A closed stdin when there is no input (not a terminal, not empty).
    s.stdin(stdin.unwrap_or_default().as_bytes()).output()
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn login_push_pull_logout_with_htpasswd() {
    let reg = Registry::start(Auth::htpasswd("alice", "s3cret"));
    let host = reg.host();
    let tmp = tempfile::tempdir().unwrap();
    let cfg_dir = tmp.path().join("docker");
    std::fs::create_dir_all(&cfg_dir).unwrap();
    std::fs::write(
        cfg_dir.join("config.json"),
        r#"{"auths":{"other.example:5000":{"auth":"YTpi"}},"detachKeys":"ctrl-x"}"#,
    )
    .unwrap();
    let root_a = tmp.path().join("a");
    let name = format!("{host}/private/app:1");
    let id = {
        let store = Store::open(&root_a).unwrap();
        make_image(&store, &name, &[vec![("hello", b"world\n")]], false)
    };

    // Pushing before login: unauthorized, naming the registry.
    let o = cli(&root_a, &cfg_dir, &["push", &name], None);
    assert!(!o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("unauthorized") && err.contains(&host),
        "{}",
        text(&o)
    );

    // Wrong password.
    let o = cli(
        &root_a,
        &cfg_dir,
        &["login", "-u", "alice", "--password-stdin", &host],
        Some("wrong\n"),
    );
    assert!(!o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("unauthorized") && err.contains(&host),
        "{}",
        text(&o)
    );
    assert!(!std::fs::read_to_string(cfg_dir.join("config.json"))
        .unwrap()
        .contains(&host));

    // Right password: config.json keeps other entries, mode 0600.
    let o = cli(
        &root_a,
        &cfg_dir,
        &["login", "-u", "alice", "--password-stdin", &host],
        Some("s3cret\n"),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("Login Succeeded"));
    let meta = std::fs::metadata(cfg_dir.join("config.json")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cfg_dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        v["auths"][&host]["auth"],
        support::b64(b"alice:s3cret", false)
    );
    assert_eq!(v["auths"]["other.example:5000"]["auth"], "YTpi");
    assert_eq!(v["detachKeys"], "ctrl-x");

    let o = cli(&root_a, &cfg_dir, &["push", &name], None);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(out.contains("1: digest: sha256:"), "{out}");

    let root_b = tmp.path().join("b");
    let o = cli(&root_b, &cfg_dir, &["pull", &name], None);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(out.contains("Digest: sha256:"), "{out}");
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {name}")),
        "{out}"
    );
    let store_b = Store::open(&root_b).unwrap();
    assert_eq!(store_b.meta().resolve_tag(&name).unwrap(), Some(id.clone()));
    let o = cli(&root_b, &cfg_dir, &["pull", "-q", &name], None);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), name);
    let o = cli(&root_b, &cfg_dir, &["pull", &name], None);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("Status: Image is up to date"),
        "{}",
        text(&o)
    );
    // By digest, already present: up to date too (there is no tag to move).
    let digest = out
        .lines()
        .find_map(|l| l.strip_prefix("Digest: "))
        .expect("a Digest: line")
        .to_string();
    let repo = name.rsplit_once(':').map_or(name.as_str(), |(r, _)| r);
    let by_digest = format!("{repo}@{digest}");
    let o = cli(&root_b, &cfg_dir, &["pull", &by_digest], None);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains(&format!("Status: Image is up to date for {by_digest}")),
        "{}",
        text(&o)
    );

    let o = cli(&root_a, &cfg_dir, &["logout", &host], None);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cfg_dir.join("config.json")).unwrap()).unwrap();
    assert!(v["auths"].get(&host).is_none());
    assert_eq!(v["auths"]["other.example:5000"]["auth"], "YTpi");
    let o = cli(&root_b, &cfg_dir, &["pull", &name], None);
    assert!(!o.status.success(), "{}", text(&o));
}

#[test]
fn token_auth_through_the_cli() {
    let ts = TokenServer::start(Some(("bob", "pw")));
    let reg = Registry::start(ts.registry_auth());
    let host = reg.host();
    let tmp = tempfile::tempdir().unwrap();
    let cfg_dir = tmp.path().join("docker");
    let root_a = tmp.path().join("a");
    let name = format!("{host}/tok/app:v2");
    let id = make_image(
        &Store::open(&root_a).unwrap(),
        &name,
        &[vec![("a", b"1")], vec![("b", b"2")]],
        true,
    );
    let o = cli(
        &root_a,
        &cfg_dir,
        &["login", "-u", "bob", "-p", "nope", &host],
        None,
    );
    assert!(
        !o.status.success() && String::from_utf8_lossy(&o.stderr).contains("unauthorized"),
        "{}",
        text(&o)
    );
    let o = cli(
        &root_a,
        &cfg_dir,
        &["login", "-u", "bob", "--password-stdin", &host],
        Some("pw"),
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = cli(&root_a, &cfg_dir, &["push", "-q", &name], None);
    assert!(o.status.success(), "{}", text(&o));
    let root_b = tmp.path().join("b");
    let o = cli(&root_b, &cfg_dir, &["pull", &name], None);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        Store::open(&root_b)
            .unwrap()
            .meta()
            .resolve_tag(&name)
            .unwrap(),
        Some(id)
    );
}

#[test]
fn bad_platform_and_missing_image_are_clear_errors() {
    let reg = Registry::start(Auth::None);
    let tmp = tempfile::tempdir().unwrap();
    let cfg_dir = tmp.path().join("docker");
    let root = tmp.path().join("r");
    let host = reg.host();
    let (x, nothing, notlocal) = (
        format!("{host}/x:1"),
        format!("{host}/nothing/here:1"),
        format!("{host}/notlocal:1"),
    );
    let cases: [(&[&str], &str); 3] = [
        (&["pull", "--platform", "linux", &x], "os/arch"),
        (&["pull", &nothing], "not found"),
        (&["push", &notlocal], "not in the store"),
    ];
    for (args, says) in cases {
        let o = cli(&root, &cfg_dir, args, None);
        assert!(
            !o.status.success() && String::from_utf8_lossy(&o.stderr).contains(says),
            "{}",
            text(&o)
        );
    }
}

/// `docker pull` of what strata pushes (only when a Docker daemon answers).
#[test]
fn docker_pulls_what_strata_pushes() {
    let docker_ok = Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !docker_ok {
        eprintln!("SKIPPED: no Docker daemon (`docker info` failed)");
        return;
    }
    let reg = Registry::start(Auth::None);
    let tmp = tempfile::tempdir().unwrap();
    let cfg_dir = tmp.path().join("docker");
    let root = tmp.path().join("r");
    let name = format!("{}/fordocker/img:1", reg.host());
    let id = make_image(
        &Store::open(&root).unwrap(),
        &name,
        &[vec![("etc/marker", b"strata\n")]],
        false,
    );
    let o = cli(&root, &cfg_dir, &["push", &name], None);
    assert!(o.status.success(), "{}", text(&o));
    let o = Command::new("docker")
        .args(["pull", &name])
        .output()
        .unwrap();
    assert!(o.status.success(), "docker pull: {}", text(&o));
    let o = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", &name])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        id.to_string(),
        "{}",
        text(&o)
    );
    // The push recorded the same RepoDigests Docker reports after its pull.
    let o = Command::new("docker")
        .args([
            "image",
            "inspect",
            "--format",
            "{{json .RepoDigests}}",
            &name,
        ])
        .output()
        .unwrap();
    let docker_digests: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let o = cli(&root, &cfg_dir, &["inspect", &name], None);
    assert!(o.status.success(), "{}", text(&o));
    let ours: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(ours[0]["RepoDigests"], docker_digests);
    let _ = Command::new("docker").args(["rmi", &name]).output();
}

/// `credsStore`: login stores through `docker-credential-NAME store`,
/// pulls read through `get`, logout erases.
#[test]
fn credentials_go_through_the_configured_helper() {
    let reg = Registry::start(Auth::htpasswd("carol", "hunter2"));
    let host = reg.host();
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let stored = tmp.path().join("stored.json");
    let script = format!(
        "#!/bin/sh\nS={}\ncase \"$1\" in\n  store) cat > \"$S\" ;;\n  get) read url; if [ -f \"$S\" ]; then cat \"$S\"; else echo 'credentials not found in native keychain'; exit 1; fi ;;\n  erase) rm -f \"$S\" ;;\nesac\n",
        stored.display()
    );
    let helper = bin.join("docker-credential-stratatest");
    std::fs::write(&helper, script).unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let env = [("PATH", path)];
    let cfg_dir = tmp.path().join("docker");
    std::fs::create_dir_all(&cfg_dir).unwrap();
    std::fs::write(
        cfg_dir.join("config.json"),
        r#"{"credsStore":"stratatest"}"#,
    )
    .unwrap();
    let root_a = tmp.path().join("a");
    let name = format!("{host}/helped/app:1");
    make_image(
        &Store::open(&root_a).unwrap(),
        &name,
        &[vec![("h", b"1")]],
        false,
    );

    let o = cli_env(
        &root_a,
        &cfg_dir,
        &["login", "-u", "carol", "--password-stdin", &host],
        Some("hunter2\n"),
        &env,
    );
    assert!(o.status.success(), "{}", text(&o));
    let helper_saw: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&stored).unwrap()).unwrap();
    assert_eq!(helper_saw["ServerURL"], host.as_str());
    assert_eq!(helper_saw["Username"], "carol");
    assert_eq!(helper_saw["Secret"], "hunter2");
    let cfg = std::fs::read_to_string(cfg_dir.join("config.json")).unwrap();
    assert!(
        !cfg.contains("hunter2") && !cfg.contains("\"auth\""),
        "{cfg}"
    );

    let o = cli_env(&root_a, &cfg_dir, &["push", &name], None, &env);
    assert!(o.status.success(), "{}", text(&o));
    let o = cli_env(
        &tmp.path().join("b"),
        &cfg_dir,
        &["pull", &name],
        None,
        &env,
    );
    assert!(o.status.success(), "{}", text(&o));

    let o = cli_env(&root_a, &cfg_dir, &["logout", &host], None, &env);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!stored.exists());
}

/// Layers stored uncompressed (as `docker save` writes them); pushing such
/// an image sends gzip blobs, as `docker push` does. The image ID does not change,
/// and a second push reuses the compressed blobs instead of making more.
#[test]
fn uncompressed_layers_are_gzipped_for_the_registry() {
    let reg = Registry::start(Auth::None);
    let tmp = tempfile::tempdir().unwrap();
    let cfg_dir = tmp.path().join("docker");
    let (root_b, root_c) = (tmp.path().join("b"), tmp.path().join("c"));
    let name = format!("{}/wire/img:1", reg.host());
    let id = make_image_with(
        &Store::open(&root_b).unwrap(),
        &name,
        &[vec![("etc/a", b"a\n")], vec![("etc/b", b"b\n")]],
        false,
        false,
    );
    let stored: Vec<String> = Store::open(&root_b)
        .unwrap()
        .meta()
        .image(&id)
        .unwrap()
        .unwrap()
        .layers
        .iter()
        .map(|l| l.media_type.clone())
        .collect();
    assert!(
        stored
            .iter()
            .all(|m| m == strata_oci::media_types::DOCKER_LAYER_TAR),
        "the loaded layers should be stored uncompressed: {stored:?}"
    );

    let o = cli(&root_b, &cfg_dir, &["push", &name], None);
    assert!(o.status.success(), "{}", text(&o));
    let raw = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{name}"))
        .output()
        .unwrap();
    assert!(raw.status.success(), "skopeo: {}", text(&raw));
    let manifest: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    let types: Vec<&str> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        vec![strata_oci::media_types::DOCKER_LAYER_TAR_GZIP; 2],
        "{manifest}"
    );
    let o = cli(&root_c, &cfg_dir, &["pull", &name], None);
    assert!(o.status.success(), "{}", text(&o));
    let pulled = Store::open(&root_c)
        .unwrap()
        .meta()
        .resolve_tag(&name)
        .unwrap();
    assert_eq!(pulled, Some(id));

    let blobs = |root: &Path| {
        std::fs::read_dir(root.join("blobs/sha256"))
            .unwrap()
            .count()
    };
    let before = blobs(&root_b);
    let o = cli(&root_b, &cfg_dir, &["push", &name], None);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(blobs(&root_b), before, "the second push compressed again");
}

/// `pull` refuses a layer no filesystem could unpack (an entry whose path
/// is over PATH_MAX or has a component over NAME_MAX), as `load` and
/// `import` do, and registers nothing.
#[test]
fn pull_refuses_a_layer_that_can_never_be_unpacked() {
    let reg = Registry::start(Auth::None);
    let tmp = tempfile::tempdir().unwrap();
    let cfg_dir = tmp.path().join("docker");
    let root_a = tmp.path().join("a");
    let long_name = format!("d/{}", "n".repeat(300));
    let long_path = vec!["p".repeat(200); 25].join("/");
    let cases = [
        (long_name.as_str(), "longer than 255 bytes (NAME_MAX)"),
        (long_path.as_str(), "longer than 4096 bytes (PATH_MAX)"),
    ];
    for (i, (entry, why)) in cases.iter().enumerate() {
        let name = format!("{}/bad/names:{i}", reg.host());
        {
            let store = Store::open(&root_a).unwrap();
            make_image(
                &store,
                &name,
                &[vec![("ok", b"fine\n"), (entry, b"x")]],
                false,
            );
        }
        let o = cli(&root_a, &cfg_dir, &["push", &name], None);
        assert!(o.status.success(), "{}", text(&o));
        let root_b = tmp.path().join(format!("b{i}"));
        let o = cli(&root_b, &cfg_dir, &["pull", &name], None);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success(),
            "pulled a layer that cannot be unpacked"
        );
        assert!(
            err.contains("can never be unpacked") && err.contains(why),
            "{}",
            text(&o)
        );
        let o = cli(&root_b, &cfg_dir, &["images", "-q"], None);
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            "",
            "an image was registered"
        );
    }
}

/// A pull stopped by SIGTERM or SIGINT mid-layer removes its temp blobs
/// before it exits (128 + signal), as `load` does.
#[test]
fn a_pull_stopped_by_a_signal_leaves_no_temp_blobs() {
    let reg = Registry::start(Auth::None);
    let tmp = tempfile::tempdir().unwrap();
    let cfg_dir = tmp.path().join("docker");
    let root_a = tmp.path().join("a");
    // 8 MiB that gzip cannot shrink: the download is still running when
    // the proxy stalls it after 1 MiB.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let big: Vec<u8> = (0..8u32 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let name = format!("{}/big/img:1", reg.host());
    {
        let store = Store::open(&root_a).unwrap();
        make_image(&store, &name, &[vec![("big", &big)]], false);
    }
    let o = cli(&root_a, &cfg_dir, &["push", &name], None);
    assert!(o.status.success(), "{}", text(&o));
    let px = proxy::start(reg.port, 1 << 20, proxy::Mode::Stall);
    let via_proxy = format!("127.0.0.1:{}/big/img:1", px.port);
    let temp_blobs = |root: &Path| -> Vec<String> {
        std::fs::read_dir(root.join("tmp"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with("blob-"))
                    .collect()
            })
            .unwrap_or_default()
    };
    for (sig, num) in [("TERM", 15), ("INT", 2)] {
        let root_b = tmp.path().join(format!("b-{sig}"));
        let child = Command::new(env!("CARGO_BIN_EXE_strata"))
            .arg("--root")
            .arg(&root_b)
            .args(["pull", &via_proxy])
            .env("DOCKER_CONFIG", &cfg_dir)
            .env_remove("STRATA_INSECURE_REGISTRIES")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while temp_blobs(&root_b).is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "no temp blob appeared"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        let st = Command::new("kill")
            .args([format!("-{sig}"), child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(128 + num), "{}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("pull interrupted by signal"),
            "{}",
            text(&o)
        );
        assert_eq!(
            temp_blobs(&root_b),
            Vec::<String>::new(),
            "SIG{sig} left temp blobs"
        );
    }
}
