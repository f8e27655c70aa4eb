//! Image commands end to end: load/save against Docker and skopeo, image
//! IDs, deduplication, all-or-nothing loads, concurrent loads, import with
//! --change, output shapes, and a hostile import applied safely.
//!
//! Each test uses its own temp store root. Tests that need Docker fail
//! with a clear message when `docker info` does not answer (CI starts
//! dockerd; locally run scripts/setup-host.sh).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use tempfile::TempDir;

use strata_test_support as support;
use support::{ok, strata};

const BIN: &str = env!("CARGO_BIN_EXE_strata");

fn run(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn require_docker() {
    let up = Command::new("docker")
        .args(["info"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        up,
        "this test needs a running Docker daemon: `docker info` failed. \
         Start one with /work/main/scripts/setup-host.sh (CI starts dockerd before the tests)"
    );
}

/// The busybox rootfs tar from scripts/make-base-rootfs.sh, made once.
fn busybox_tar() -> &'static Path {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        let dir =
            support::process_scratch_dir(Path::new(env!("CARGO_TARGET_TMPDIR")), "images-base");
        let tar = dir.join("busybox.tar");
        if !tar.exists() {
            let script =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/make-base-rootfs.sh");
            run(Command::new(script).arg(&dir));
        }
        tar
    })
}

fn blob_count(root: &Path) -> usize {
    fs::read_dir(root.join("blobs/sha256")).map_or(0, |d| d.count())
}

fn tmp_count(root: &Path) -> usize {
    fs::read_dir(root.join("tmp")).map_or(0, |d| d.count())
}

fn assert_check_clean(root: &Path) {
    let out = ok(root, &["system", "check"]);
    assert!(out.contains("no problems"), "system check: {out}");
}

/// A small rootfs tar with one file of the given content.
fn tiny_rootfs(path: &Path, content: &str) {
    let mut b = tar::Builder::new(fs::File::create(path).unwrap());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    b.append_data(&mut h, "etc/", std::io::empty()).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(content.len() as u64);
    b.append_data(&mut h, "etc/message", content.as_bytes())
        .unwrap();
    b.finish().unwrap();
}

struct DockerImages(Vec<String>);
impl Drop for DockerImages {
    fn drop(&mut self) {
        for i in &self.0 {
            let _ = Command::new("docker").args(["rmi", "-f", i]).output();
        }
    }
}

#[test]
fn docker_save_load_save_load_run() {
    require_docker();
    let t = TempDir::new().unwrap();
    let pid = std::process::id();
    let base = format!("strata-images-test/base:{pid}");
    let app = format!("strata-images-test/app:{pid}");
    let _cleanup = DockerImages(vec![app.clone(), base.clone()]);
    run(Command::new("docker").args(["import", busybox_tar().to_str().unwrap(), &base]));
    let ctx = t.path().join("ctx");
    fs::create_dir(&ctx).unwrap();
    fs::write(ctx.join("msg.txt"), "hello through strata\n").unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {base}\nCOPY msg.txt /msg.txt\nCMD [\"cat\", \"/msg.txt\"]\n"),
    )
    .unwrap();
    run(Command::new("docker")
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "-q", "-t", &app])
        .arg(&ctx));
    let docker_tar = t.path().join("docker.tar");
    run(Command::new("docker").args(["save", "-o", docker_tar.to_str().unwrap(), &app]));
    let root = t.path().join("root");
    let out = ok(&root, &["load", "-i", docker_tar.to_str().unwrap()]);
    assert_eq!(out.trim(), format!("Loaded image: {app}"));

    // The image ID is the config digest, as Docker's.
    let docker_id = run(Command::new("docker").args(["inspect", "-f", "{{.Id}}", &app]));
    let inspect: serde_json::Value = serde_json::from_str(&ok(&root, &["inspect", &app])).unwrap();
    assert_eq!(inspect[0]["Id"], docker_id.trim());
    assert_eq!(
        inspect[0]["Config"]["Cmd"],
        serde_json::json!(["cat", "/msg.txt"])
    );

    // Loading twice stores every blob once.
    let blobs = blob_count(&root);
    ok(&root, &["load", "-i", docker_tar.to_str().unwrap()]);
    assert_eq!(blob_count(&root), blobs);
    assert_check_clean(&root);

    let strata_tar = t.path().join("strata.tar");
    ok(&root, &["save", "-o", strata_tar.to_str().unwrap(), &app]);
    run(Command::new("docker").args(["rmi", &app]));
    let loaded = run(Command::new("docker").args(["load", "-i", strata_tar.to_str().unwrap()]));
    assert!(loaded.contains(&app), "docker load said: {loaded}");
    let printed = run(Command::new("docker").args(["run", "--rm", "--network", "none", &app]));
    assert_eq!(printed, "hello through strata\n");
}

#[test]
fn oci_archives_with_skopeo() {
    let t = TempDir::new().unwrap();
    let root = t.path().join("root");
    let id = ok(
        &root,
        &[
            "import",
            busybox_tar().to_str().unwrap(),
            "bb:oci",
            "--change",
            "CMD [\"sh\"]",
        ],
    );
    let oci_tar = t.path().join("img.oci.tar");
    ok(
        &root,
        &[
            "save",
            "--format",
            "oci",
            "-o",
            oci_tar.to_str().unwrap(),
            "bb:oci",
        ],
    );
    let info = run(
        Command::new("skopeo").args(["inspect", &format!("oci-archive:{}", oci_tar.display())])
    );
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["Layers"].as_array().unwrap().len(), 1, "{info}");
    let cfg = run(Command::new("skopeo").args([
        "inspect",
        "--config",
        &format!("oci-archive:{}", oci_tar.display()),
    ]));
    let cfg: serde_json::Value = serde_json::from_str(&cfg).unwrap();
    assert_eq!(cfg["config"]["Cmd"], serde_json::json!(["sh"]));

    // skopeo's OCI layout directory loads, with the same image ID.
    let docker_tar = t.path().join("img.docker.tar");
    ok(
        &root,
        &["save", "-o", docker_tar.to_str().unwrap(), "bb:oci"],
    );
    let layout = t.path().join("layout");
    run(Command::new("skopeo").args([
        "copy",
        &format!("docker-archive:{}", docker_tar.display()),
        &format!("oci:{}:bb:oci", layout.display()),
    ]));
    let root2 = t.path().join("root2");
    let out = ok(&root2, &["load", "-i", layout.to_str().unwrap()]);
    assert_eq!(out.trim(), "Loaded image: bb:oci");
    // skopeo rewrote the config as an OCI config: the ID is that digest.
    let read_json = |d: &str| -> serde_json::Value {
        let hex = d.strip_prefix("sha256:").unwrap();
        serde_json::from_slice(&fs::read(layout.join("blobs/sha256").join(hex)).unwrap()).unwrap()
    };
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest = read_json(index["manifests"][0]["digest"].as_str().unwrap());
    let v: serde_json::Value = serde_json::from_str(&ok(&root2, &["inspect", "bb:oci"])).unwrap();
    assert_eq!(v[0]["Id"], manifest["config"]["digest"]);
    assert_eq!(v[0]["Config"]["Cmd"], serde_json::json!(["sh"]));
    assert_ne!(id.trim(), "");
    assert_check_clean(&root2);
}

#[test]
fn broken_archives_leave_the_store_as_it_was() {
    let t = TempDir::new().unwrap();
    let root = t.path().join("root");
    let rootfs = t.path().join("rootfs.tar");
    tiny_rootfs(&rootfs, "kept\n");
    ok(&root, &["import", rootfs.to_str().unwrap(), "kept:1"]);
    // A second image to save and break, from another store.
    let src = t.path().join("src");
    ok(&src, &["import", busybox_tar().to_str().unwrap(), "bb:1"]);
    let good = t.path().join("good.tar");
    ok(&src, &["save", "-o", good.to_str().unwrap(), "bb:1"]);
    let bytes = fs::read(&good).unwrap();

    let truncated = t.path().join("truncated.tar");
    fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let corrupt = t.path().join("corrupt.tar");
    let mut c = bytes.clone();
    // The layer is the large blob: flip a byte in its middle.
    let mid = c.len() / 2;
    c[mid] ^= 0xff;
    fs::write(&corrupt, &c).unwrap();

    let before = blob_count(&root);
    for (bad, want) in [(&truncated, "truncated"), (&corrupt, "corrupt")] {
        let o = strata(&root, &["load", "-i", bad.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "loading {bad:?} succeeded");
        assert!(
            err.contains(want),
            "error for {bad:?} should say {want}: {err}"
        );
        assert_eq!(blob_count(&root), before, "blobs left by {bad:?}");
        assert_eq!(tmp_count(&root), 0, "temp files left by {bad:?}");
        assert_check_clean(&root);
    }
    let listed = ok(&root, &["images", "--format", "json"]);
    assert_eq!(listed.lines().count(), 1, "{listed}");
    // The intact archive still loads.
    ok(&root, &["load", "-i", good.to_str().unwrap()]);
    assert_check_clean(&root);
}

#[test]
fn eight_concurrent_loads_into_one_store() {
    let t = TempDir::new().unwrap();
    let src = t.path().join("src");
    let mut archives = Vec::new();
    for i in 0..8 {
        let rootfs = t.path().join(format!("rootfs{i}.tar"));
        tiny_rootfs(&rootfs, &format!("image {i}\n"));
        let name = format!("many:{i}");
        ok(&src, &["import", rootfs.to_str().unwrap(), &name]);
        let a = t.path().join(format!("a{i}.tar"));
        ok(&src, &["save", "-o", a.to_str().unwrap(), &name]);
        archives.push(a);
    }
    let shared = t.path().join("shared");
    let children: Vec<_> = archives
        .iter()
        .map(|a| {
            Command::new(BIN)
                .arg("--root")
                .arg(&shared)
                .args(["load", "-i"])
                .arg(a)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "a load failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let listed = ok(&shared, &["images", "--format", "json"]);
    let tags: std::collections::BTreeSet<String> = listed
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["Tag"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(tags.len(), 8, "{listed}");
    assert_check_clean(&shared);
}

#[test]
fn import_changes_and_output_shapes() {
    let t = TempDir::new().unwrap();
    let root = t.path().join("root");
    let rootfs = t.path().join("rootfs.tar");
    tiny_rootfs(&rootfs, "hi\n");
    let id = ok(
        &root,
        &[
            "import",
            rootfs.to_str().unwrap(),
            "shapes:1",
            "--change",
            "ENV A=1 B=two",
            "--change",
            "WORKDIR /app",
            "--change",
            "CMD [\"cat\", \"/etc/message\"]",
            "--change",
            "LABEL k=v",
            "--change",
            "EXPOSE 80",
            "--change",
            "USER nobody",
            "-m",
            "my message",
        ],
    );
    let id = id.trim();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    let v: serde_json::Value = serde_json::from_str(&ok(&root, &["inspect", "shapes:1"])).unwrap();
    let img = &v[0];
    assert_eq!(img["Id"], id);
    assert_eq!(img["RepoTags"], serde_json::json!(["shapes:1"]));
    assert_eq!(img["Config"]["Env"], serde_json::json!(["A=1", "B=two"]));
    assert_eq!(img["Config"]["WorkingDir"], "/app");
    assert_eq!(
        img["Config"]["Cmd"],
        serde_json::json!(["cat", "/etc/message"])
    );
    assert_eq!(img["Config"]["Labels"]["k"], "v");
    assert_eq!(img["Config"]["User"], "nobody");
    assert!(img["Config"]["ExposedPorts"]["80/tcp"].is_object());
    assert_eq!(img["Os"], "linux");
    assert_eq!(img["RootFS"]["Type"], "layers");
    assert_eq!(img["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    // The file bytes (`hi\n`), as Docker counts them: not the tar's bytes.
    let size = img["Size"].as_u64().unwrap();
    assert_eq!(size, 3);
    assert!(fs::metadata(&rootfs).unwrap().len() > 1024);

    let table = ok(&root, &["images"]);
    let mut lines = table.lines();
    let head = lines.next().unwrap();
    assert!(
        head.starts_with("REPOSITORY   TAG       IMAGE ID       CREATED"),
        "{table}"
    );
    let row: Vec<&str> = lines
        .next()
        .unwrap()
        .split("   ")
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(row[0].trim(), "shapes");
    assert_eq!(row[1].trim(), "1");
    assert_eq!(row[2].trim(), &id[7..19]);
    let q = ok(&root, &["images", "-q"]);
    assert_eq!(q, format!("{}\n", &id[7..19]));
    // Docker's -a: no intermediate images here, the same list.
    assert_eq!(ok(&root, &["images", "-a"]), table);
    let j: serde_json::Value =
        serde_json::from_str(ok(&root, &["image", "ls", "--format", "json"]).trim()).unwrap();
    assert_eq!(j["Size"], "3B", "a string, as Docker prints it");
    assert_eq!(j["ID"], &id[7..19]);
    assert_eq!(j["Repository"], "shapes");

    let hist = ok(&root, &["history", "shapes:1"]);
    assert!(hist.starts_with("IMAGE          CREATED"), "{hist}");
    assert!(
        hist.lines().nth(1).unwrap().starts_with(&id[7..19]),
        "{hist}"
    );
    assert!(hist.contains("my message"), "{hist}");

    // tag, then rmi semantics: by ID with two tags needs -f; by name untags.
    ok(&root, &["tag", "shapes:1", "other/name:2"]);
    let o = strata(&root, &["rmi", &id[7..19]]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("must be forced"));
    assert_eq!(
        ok(&root, &["rmi", "other/name:2"]),
        "Untagged: other/name:2\n"
    );
    assert_eq!(
        ok(&root, &["rmi", "shapes:1"]),
        format!("Untagged: shapes:1\nDeleted: {id}\n")
    );
    assert_eq!(ok(&root, &["images", "-q"]), "");
    assert_eq!(blob_count(&root), 0, "rmi frees the blobs right away");
    assert_check_clean(&root);
}

/// A tar entry with a raw name (the tar crate refuses `..` in set_path).
fn raw_entry(
    b: &mut tar::Builder<fs::File>,
    kind: tar::EntryType,
    name: &str,
    link: Option<&str>,
    data: &[u8],
) {
    let mut h = tar::Header::new_old();
    h.set_entry_type(kind);
    h.set_mode(0o777);
    h.set_size(data.len() as u64);
    let old = h.as_old_mut();
    old.name[..name.len()].copy_from_slice(name.as_bytes());
    if let Some(l) = link {
        old.linkname[..l.len()].copy_from_slice(l.as_bytes());
    }
    h.set_cksum();
    b.append(&h, data).unwrap();
}

#[test]
fn hostile_import_is_stored_but_never_escapes_when_applied() {
    let t = TempDir::new().unwrap();
    let outside = t.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("canary"), "untouched").unwrap();
    let root = t.path().join("root");
    let evil = t.path().join("evil.tar");
    {
        let mut b = tar::Builder::new(fs::File::create(&evil).unwrap());
        let o = outside.to_str().unwrap();
        raw_entry(
            &mut b,
            tar::EntryType::Regular,
            "../../../../outside/canary",
            None,
            b"owned",
        );
        raw_entry(
            &mut b,
            tar::EntryType::Regular,
            "../../canary",
            None,
            b"owned",
        );
        raw_entry(&mut b, tar::EntryType::Symlink, "abs", Some(o), b"");
        raw_entry(
            &mut b,
            tar::EntryType::Regular,
            "abs/canary",
            None,
            b"owned",
        );
        raw_entry(&mut b, tar::EntryType::Regular, "abs/new", None, b"owned");
        raw_entry(
            &mut b,
            tar::EntryType::Symlink,
            "rel",
            Some("../../../../../outside"),
            b"",
        );
        raw_entry(&mut b, tar::EntryType::Regular, "rel/new2", None, b"owned");
        b.finish().unwrap();
    }
    let id = ok(&root, &["import", evil.to_str().unwrap(), "evil:1"]);
    let saved = t.path().join("evil-saved.tar");
    ok(&root, &["save", "-o", saved.to_str().unwrap(), "evil:1"]);

    // Unpack it as a container rootfs would be: the store's snapshotter.
    let store = strata_store::Store::open(&root).unwrap();
    let info = store
        .meta()
        .image(&id.trim().parse().unwrap())
        .unwrap()
        .unwrap();
    let chain: Vec<_> = info
        .layers
        .iter()
        .map(|l| (l.diff_id.clone(), l.digest.clone()))
        .collect();
    let _ = store.snapshotter().prepare(&chain); // refusing is fine; escaping is not
    assert_eq!(
        fs::read_to_string(outside.join("canary")).unwrap(),
        "untouched"
    );
    let names: Vec<_> = fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["canary"], "files appeared outside the root");
    assert!(!t.path().join("canary").exists());
    assert!(!root.join("canary").exists() && !root.join("snapshots/canary").exists());
}
