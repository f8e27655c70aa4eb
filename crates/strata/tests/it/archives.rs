//! Hostile or huge archives and layout directories through `load`, and the
//! listings that follow: a docker-archive naming one image 20,000 times
//! lists in bounded memory; OCI layout blobs that are FIFOs or symlinks
//! out of the layout are refused (never a hang, never a host file); layer
//! entry paths no filesystem can hold are refused at load, naming the
//! image and the path; a killed save or load leaves nothing the next run
//! does not remove.

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use strata_test_support as support;
use support::{
    docker_archive, docker_archive_named, image_config, layer_tar, path_str, sha256_hex, stderr,
    stdout, strata, strata_timeout, Strata,
};

/// strata with its address space limited to `mb` MiB (prlimit).
fn strata_limited(root: &Path, mb: u64, args: &[&str]) -> Output {
    let limit = format!("--as={}", mb << 20);
    Strata::wrapped(&["prlimit", &limit, "--"])
        .root(root)
        .args(args)
        .output()
}

#[test]
fn twenty_thousand_tags_list_in_bounded_memory() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("store");
    let n = 20_000;
    let tags: Vec<String> = (0..n).map(|i| format!("many/tags:t{i:05}")).collect();
    let archive = t.path().join("many.tar");
    fs::write(
        &archive,
        docker_archive(&tags, &[layer_tar(&[("etc/hello", b"hi\n")])]),
    )
    .unwrap();
    // 512 MiB of address space: plenty for a linear listing of 20,000 rows
    // (a few MiB), far too little for one copy of every tag per row.
    let limit = 512;
    let started = Instant::now();
    let o = strata_limited(&root, limit, &["load", "-i", &path_str(&archive)]);
    assert!(o.status.success(), "load: {}", stderr(&o));
    assert_eq!(
        stdout(&o)
            .lines()
            .filter(|l| l.starts_with("Loaded image: "))
            .count(),
        n
    );
    let o = strata_limited(&root, limit, &["images"]);
    assert!(o.status.success(), "images: {}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(out.lines().count(), n + 1, "a header and one row per tag");
    assert!(
        out.contains("many/tags ") && out.contains(" t19999 "),
        "{}",
        &out[..300]
    );
    let o = strata_limited(&root, limit, &["image", "ls", "--format", "json"]);
    assert!(o.status.success(), "image ls --format json: {}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), n);
    let o = strata_limited(&root, limit, &["image", "ls", "-q"]);
    assert!(o.status.success(), "image ls -q: {}", stderr(&o));
    let o = strata_limited(&root, limit, &["inspect", "many/tags:t00042"]);
    assert!(o.status.success(), "inspect: {}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["RepoTags"].as_array().unwrap().len(), n);
    let o = strata_limited(&root, limit, &["system", "df"]);
    assert!(o.status.success(), "system df: {}", stderr(&o));
    let o = strata_limited(&root, limit, &["system", "check"]);
    assert!(o.status.success(), "system check: {}", stderr(&o));
    // A second load of the same archive: every tag already points there.
    let o = strata_limited(&root, limit, &["load", "-i", &path_str(&archive)]);
    assert!(o.status.success(), "second load: {}", stderr(&o));
    // rmi -f of the image drops every tag.
    let o = strata_limited(&root, limit, &["rmi", "-f", "many/tags:t00000"]);
    assert!(o.status.success(), "rmi: {}", stderr(&o));
    assert_eq!(
        stdout(&o)
            .lines()
            .filter(|l| l.starts_with("Untagged: "))
            .count(),
        n
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(120),
        "20,000 tags took {elapsed:?} to load, list and remove"
    );
    let o = strata(&root, &["images", "-q"]);
    assert_eq!(stdout(&o), "");
}

/// An OCI layout directory of image `layout:1` (one small layer), saved
/// by strata and unpacked; returns the layer blob's path inside it.
fn oci_layout_dir(root: &Path, t: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let archive = t.join("in.tar");
    let l = layer_tar(&[("etc/hello", b"hello from the layout\n")]);
    let layer_hex = sha256_hex(&l);
    fs::write(&archive, docker_archive(&["layout:1".into()], &[l])).unwrap();
    let o = strata(root, &["load", "-i", &path_str(&archive)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let oci = t.join("oci.tar");
    let o = strata(
        root,
        &["save", "--format", "oci", "-o", &path_str(&oci), "layout:1"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let dir = t.join("layout");
    tar::Archive::new(fs::File::open(&oci).unwrap())
        .unpack(&dir)
        .unwrap();
    let blob = dir.join("blobs/sha256").join(layer_hex);
    assert!(blob.is_file(), "the layer is stored uncompressed as saved");
    (dir, blob)
}

#[test]
fn layout_dir_blobs_that_are_fifos_or_links_out_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let src_root = t.path().join("src");
    let (dir, blob) = oci_layout_dir(&src_root, t.path());
    let root = t.path().join("store");
    let o = strata(&root, &["load", "-i", &path_str(&dir)]);
    assert!(
        o.status.success(),
        "the intact layout loads: {}",
        stderr(&o)
    );
    let o = strata(&root, &["rmi", "layout:1"]);
    assert!(o.status.success(), "{}", stderr(&o));

    // The layer blob, byte for byte, outside the layout, and a link to it:
    // the old code followed it and loaded a host file as a layer.
    let outside = t.path().join("outside-blob");
    fs::rename(&blob, &outside).unwrap();
    std::os::unix::fs::symlink(&outside, &blob).unwrap();
    let o = strata_timeout(&root, 60, &["load", "-i", &path_str(&dir)]);
    let err = stderr(&o);
    assert!(!o.status.success(), "a link out of the layout was followed");
    assert!(err.contains("leads out of"), "{err}");
    assert!(
        err.contains(&path_str(&blob)),
        "the error names the blob: {err}"
    );
    // A relative link that climbs out, too.
    fs::remove_file(&blob).unwrap();
    std::os::unix::fs::symlink("../../../outside-blob", &blob).unwrap();
    let o = strata_timeout(&root, 60, &["load", "-i", &path_str(&dir)]);
    assert!(
        !o.status.success(),
        "a relative link out of the layout was followed"
    );
    assert!(stderr(&o).contains("leads out of"), "{}", stderr(&o));

    // A FIFO: refused at once, not a hang (timeout exits 124).
    fs::remove_file(&blob).unwrap();
    let st = Command::new("mkfifo").arg(&blob).status().unwrap();
    assert!(st.success());
    let started = Instant::now();
    let o = strata_timeout(&root, 60, &["load", "-i", &path_str(&dir)]);
    assert_ne!(o.status.code(), Some(124), "load hung on a FIFO blob");
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("FIFO") && err.contains("not a regular file"),
        "{err}"
    );
    // The same layout as a named build context.
    let ctx = tempfile::tempdir().unwrap();
    fs::write(ctx.path().join("Dockerfile"), "FROM x\n").unwrap();
    let ctx_arg = format!("x=oci-layout://{}:1", path_str(&dir));
    let o = strata_timeout(
        &root,
        60,
        &[
            "build",
            "--progress",
            "plain",
            "--build-context",
            &ctx_arg,
            "-t",
            "y",
            &path_str(ctx.path()),
        ],
    );
    assert_ne!(o.status.code(), Some(124), "build hung on a FIFO blob");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("FIFO"), "{}", stderr(&o));
    assert!(started.elapsed() < Duration::from_secs(60));
    let o = strata(&root, &["system", "check"]);
    assert!(o.status.success(), "{}", stdout(&o));
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn layers_no_filesystem_can_unpack_are_refused_at_load_naming_image_and_path() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("store");
    let long_path = format!("{}f", "d/".repeat(5000)); // 10,001 bytes
    let long_name = format!("etc/{}", "n".repeat(300));
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "deep:1",
            layer_tar(&[("ok", b"x"), (&long_path, b"deep")]),
            "d/d/d/d/",
            "longer than 4096 bytes",
        ),
        (
            "wide:1",
            layer_tar(&[(&long_name, b"wide")]),
            "etc/nnnn",
            "longer than 255 bytes",
        ),
        (
            "deepgz:1",
            gzip(&layer_tar(&[(&long_path, b"deep")])),
            "d/d/d/d/",
            "longer than 4096 bytes",
        ),
    ];
    for (tag, l, prefix, why) in cases {
        let archive = t.path().join("bad.tar");
        let base = layer_tar(&[("etc/base", b"base\n")]);
        // The diff ID of a gzip layer is its uncompressed tar's digest.
        let mut a = docker_archive(&[tag.to_string()], &[base, l.clone()]);
        if l.starts_with(&[0x1f, 0x8b]) {
            a = docker_archive_gz(tag, &layer_tar(&[("etc/base", b"base\n")]), &l);
        }
        fs::write(&archive, a).unwrap();
        let o = strata(&root, &["load", "-i", &path_str(&archive)]);
        let err = stderr(&o);
        assert!(!o.status.success(), "{tag}: an unpackable layer was loaded");
        assert!(
            err.contains(&format!("image docker.io/library/{tag}")),
            "{tag}: {err}"
        );
        assert!(err.contains("layer 1"), "{err}");
        assert!(
            err.contains(prefix),
            "{tag}: the path prefix is not named: {err}"
        );
        assert!(err.contains(why), "{tag}: {err}");
        assert!(err.contains("can never be unpacked"), "{err}");
        assert!(err.len() < 2000, "the whole path was printed: {err}");
        let o = strata(&root, &["images", "-q"]);
        assert_eq!(stdout(&o), "", "{tag}: the store changed");
    }
    let o = strata(&root, &["system", "check"]);
    assert!(stdout(&o).contains("no problems"), "{}", stdout(&o));
    // A long but valid path (4,000 bytes) still loads.
    let ok_path = format!("{}f", "d/".repeat(1990));
    let archive = t.path().join("ok.tar");
    fs::write(
        &archive,
        docker_archive(&["fine:1".into()], &[layer_tar(&[(&ok_path, b"ok")])]),
    )
    .unwrap();
    let o = strata(&root, &["load", "-i", &path_str(&archive)]);
    assert!(o.status.success(), "{}", stderr(&o));
    // `import` makes a layer too: the same rule.
    let rootfs = t.path().join("rootfs.tar");
    fs::write(&rootfs, layer_tar(&[(&long_name, b"wide")])).unwrap();
    let o = strata(&root, &["import", &path_str(&rootfs), "imp:1"]);
    assert!(!o.status.success(), "an unpackable rootfs was imported");
    let err = stderr(&o);
    assert!(
        err.contains("etc/nnnn") && err.contains("longer than 255 bytes"),
        "{err}"
    );
    let o = strata(&root, &["images", "-q"]);
    assert_eq!(stdout(&o).lines().count(), 1, "only fine:1");
}

/// A docker-archive whose second layer is gzip-compressed (`gz`), with the
/// config's diff IDs of the uncompressed tars.
fn docker_archive_gz(tag: &str, base: &[u8], gz: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut tar)
        .unwrap();
    let config = image_config(&[base.to_vec(), tar]);
    docker_archive_named(
        &config,
        &[tag.to_string()],
        &[("l0/layer.tar", base), ("l1/layer.tar.gz", gz)],
    )
}

/// Entries of ROOT/tmp.
fn tmp_entries(root: &Path) -> Vec<String> {
    fs::read_dir(root.join("tmp"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Starts `strata load` reading from a pipe, writes the first `n` bytes of
/// `archive` and waits until a temp blob appears in ROOT/tmp.
fn stalled_load(
    root: &Path,
    archive: &[u8],
    n: usize,
) -> (std::process::Child, std::process::ChildStdin) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("--root")
        .arg(root)
        .arg("load")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&archive[..n]).unwrap();
    stdin.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !tmp_entries(root).iter().any(|e| e.starts_with("blob-")) {
        assert!(Instant::now() < deadline, "no temp blob appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, stdin)
}

#[test]
fn a_load_stopped_by_a_signal_or_killed_leaves_no_temp_blobs() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("store");
    // A layer of 8 MiB of incompressible-ish bytes: the load is mid-blob
    // when we stop it.
    let big: Vec<u8> = (0..8u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let archive = docker_archive(&["big:1".into()], &[layer_tar(&[("big", &big)])]);
    for sig in ["TERM", "INT"] {
        let (mut child, stdin) = stalled_load(&root, &archive, 4 << 20);
        let st = Command::new("kill")
            .args([&format!("-{sig}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        let status = child.wait().unwrap();
        drop(stdin);
        let mut err = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
        assert!(!status.success(), "SIG{sig}: {err}");
        assert!(err.contains("interrupted"), "SIG{sig}: {err}");
        let left: Vec<String> = tmp_entries(&root)
            .into_iter()
            .filter(|e| e.starts_with("blob-"))
            .collect();
        assert!(left.is_empty(), "SIG{sig} left temp blobs: {left:?}");
    }
    // SIGKILL cannot be caught: the next load removes what it left.
    let (mut child, stdin) = stalled_load(&root, &archive, 4 << 20);
    child.kill().unwrap();
    child.wait().unwrap();
    drop(stdin);
    assert!(tmp_entries(&root).iter().any(|e| e.starts_with("blob-")));
    let small = t.path().join("small.tar");
    fs::write(
        &small,
        docker_archive(&["small:1".into()], &[layer_tar(&[("s", b"s")])]),
    )
    .unwrap();
    let o = strata(&root, &["load", "-i", &path_str(&small)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        tmp_entries(&root),
        Vec::<String>::new(),
        "the next load cleaned up"
    );
    let o = strata(&root, &["system", "check"]);
    assert!(stdout(&o).contains("no problems"), "{}", stdout(&o));
}

#[test]
fn a_killed_saves_partial_file_is_replaced_by_the_next_save_and_a_live_one_is_not() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("store");
    let archive = t.path().join("in.tar");
    fs::write(
        &archive,
        docker_archive(&["img:1".into()], &[layer_tar(&[("a", b"a")])]),
    )
    .unwrap();
    let o = strata(&root, &["load", "-i", &path_str(&archive)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = t.path().join("out.tar");
    let partial = t.path().join("out.tar.strata-partial");
    // What a save killed with SIGKILL leaves: a partial file nobody locks.
    fs::write(&partial, vec![7u8; 100_000]).unwrap();
    let o = strata(&root, &["save", "-o", &path_str(&out), "img:1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!partial.exists(), "the stale partial file is still there");
    // The archive is whole (no stale bytes past its end): it loads.
    let root2 = t.path().join("store2");
    let o = strata(&root2, &["load", "-i", &path_str(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    // A partial file another save holds locked: refused, left alone.
    let held = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&partial)
        .unwrap();
    held.lock().unwrap();
    let o = strata(&root, &["save", "-o", &path_str(&out), "img:1"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("another `strata save`"),
        "{}",
        stderr(&o)
    );
    assert!(partial.exists());
    drop(held);
    fs::remove_file(&partial).unwrap();
    // A save stopped by SIGTERM (as soon as its partial file appears, on
    // an image big enough to take a while) removes the partial file.
    let big: Vec<u8> = (0..32u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    fs::write(
        &archive,
        docker_archive(&["big:1".into()], &[layer_tar(&[("big", &big)])]),
    )
    .unwrap();
    let o = strata(&root, &["load", "-i", &path_str(&archive)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("--root")
        .arg(&root)
        .args(["save", "-o", &path_str(&out), "big:1"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !partial.exists() && child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(143),
        "the save was not stopped by SIGTERM: {status:?}"
    );
    assert!(!partial.exists(), "SIGTERM left the partial file");
    assert!(!out.exists() || fs::metadata(&out).unwrap().len() > 0);
}
