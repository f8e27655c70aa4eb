//! Archive round trips, legacy `docker save` archives, and cross-checks
//! with skopeo.

use crate::common;

use std::io::Cursor;
use std::process::Command;

use common::{gzip, layer_tar, make_image, skopeo, MemStore};
use strata_oci::media_types;
use strata_oci::{
    read_archive, read_oci_layout_dir, write_docker_archive, write_oci_archive,
    write_oci_layout_dir, Digest, ImageConfig, Raw,
};

fn check_image(got: &strata_oci::ArchiveImage, want: &strata_oci::ImageToSave) {
    assert_eq!(got.manifest.digest(), &want.manifest_digest);
    assert_eq!(got.manifest.bytes(), &want.manifest_bytes[..]);
    assert!(!got.manifest_synthesised);
    assert_eq!(got.config_digest, want.config_digest);
    assert_eq!(got.config.bytes(), &want.config_bytes[..]);
    assert_eq!(got.layers, want.layers);
    // Unknown config fields survive byte for byte.
    assert_eq!(
        got.config.extra["x-unknown"],
        serde_json::json!({"kept": true})
    );
}

#[test]
fn oci_archive_round_trip() {
    let mut src = MemStore::default();
    let a = make_image(
        &mut src,
        2,
        true,
        &["busybox:1.35", "localhost:5000/x/y:v1"],
    );
    let b = make_image(&mut src, 1, false, &[]);
    let mut tar = Vec::new();
    write_oci_archive(&mut tar, &[a.clone(), b.clone()], &src).unwrap();

    let mut dst = MemStore::default();
    let got = read_archive(Cursor::new(&tar), &mut dst).unwrap();
    assert_eq!(got.images.len(), 2);
    check_image(&got.images[0], &a);
    check_image(&got.images[1], &b);
    assert_eq!(
        got.images[0].names,
        ["docker.io/library/busybox:1.35", "localhost:5000/x/y:v1"]
    );
    assert!(got.images[1].names.is_empty());
    for d in src.blobs.keys() {
        assert_eq!(dst.blobs.get(d), src.blobs.get(d), "{d}");
    }

    // The same archive gzipped reads the same.
    let mut dst2 = MemStore::default();
    let got2 = read_archive(Cursor::new(gzip(&tar)), &mut dst2).unwrap();
    assert_eq!(got2.images.len(), 2);
    assert_eq!(dst2.blobs.len(), dst.blobs.len());
}

#[test]
fn docker_archive_round_trip() {
    let mut src = MemStore::default();
    let a = make_image(&mut src, 3, true, &["busybox:latest", "example.com/a/b:2"]);
    let mut tar = Vec::new();
    write_docker_archive(&mut tar, std::slice::from_ref(&a), &src).unwrap();

    // manifest.json and repositories are as Docker writes them.
    let mut ar = tar::Archive::new(Cursor::new(&tar));
    let mut names = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().to_string_lossy().into_owned();
        if p == "manifest.json" || p == "repositories" {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut e, &mut s).unwrap();
            let v: serde_json::Value = serde_json::from_str(&s).unwrap();
            if p == "manifest.json" {
                assert_eq!(
                    v[0]["RepoTags"],
                    serde_json::json!(["busybox:latest", "example.com/a/b:2"])
                );
                assert_eq!(
                    v[0]["Config"],
                    format!("blobs/sha256/{}", a.config_digest.hex())
                );
                assert_eq!(v[0]["Layers"].as_array().unwrap().len(), 3);
            } else {
                assert!(v["busybox"]["latest"].is_string(), "{s}");
            }
        }
        names.push(p);
    }
    for want in [
        "index.json",
        "oci-layout",
        "manifest.json",
        "repositories",
        "blobs/sha256/",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }

    let mut dst = MemStore::default();
    let got = read_archive(Cursor::new(&tar), &mut dst).unwrap();
    assert_eq!(got.images.len(), 1);
    check_image(&got.images[0], &a);
    assert_eq!(
        got.images[0].names,
        ["docker.io/library/busybox:latest", "example.com/a/b:2"]
    );
}

#[test]
fn oci_layout_dir_round_trip() {
    let mut src = MemStore::default();
    let a = make_image(&mut src, 2, true, &["busybox:1"]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("layout");
    write_oci_layout_dir(&out, std::slice::from_ref(&a), &src).unwrap();
    assert!(write_oci_layout_dir(&out, std::slice::from_ref(&a), &src).is_err());
    let mut dst = MemStore::default();
    let got = read_oci_layout_dir(&out, &mut dst).unwrap();
    check_image(&got.images[0], &a);
    assert_eq!(got.images[0].names, ["docker.io/library/busybox:1"]);
    assert_eq!(dst.puts, 4); // manifest, config, two layers: each once
}

/// Builds a pre-25 `docker save` archive: `<id>/layer.tar`, `<id>/json`,
/// `<id>/VERSION`, `<config>.json`, `manifest.json` (written first here,
/// to check order does not matter), `repositories`, with the second
/// image's layer a symlink to the first's and one gzipped layer file.
fn legacy_archive() -> (Vec<u8>, Vec<Vec<u8>>, Digest) {
    let l1 = layer_tar("a", b"one");
    let l2 = gzip(&layer_tar("b", b"two"));
    let diff2 = Digest::sha256_of(&layer_tar("b", b"two"));
    let mut config = ImageConfig::new_scratch();
    config.push_layer(Digest::sha256_of(&l1), "ADD a /", None);
    config.push_layer(diff2, "ADD b /", None);
    config.push_layer(Digest::sha256_of(&l1), "ADD a / (again)", None);
    let config = Raw::from_value(config);
    let cfg_name = format!("{}.json", config.digest().hex());

    let manifest = serde_json::json!([{
        "Config": cfg_name,
        "RepoTags": ["busybox:latest", "me/app:1"],
        "Layers": ["1111/layer.tar", "2222/layer.tar", "3333/layer.tar"]
    }]);
    let mut b = tar::Builder::new(Vec::new());
    let add = |b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, path, data).unwrap();
    };
    add(&mut b, "manifest.json", manifest.to_string().as_bytes());
    for (id, data) in [("1111", &l1), ("2222", &l2)] {
        add(&mut b, &format!("{id}/VERSION"), b"1.0");
        add(&mut b, &format!("{id}/json"), b"{\"id\":\"x\"}");
        add(&mut b, &format!("{id}/layer.tar"), data);
    }
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "3333/layer.tar", "../1111/layer.tar")
        .unwrap();
    add(&mut b, &cfg_name, config.bytes());
    add(&mut b, "repositories", br#"{"busybox":{"latest":"3333"}}"#);
    (
        b.into_inner().unwrap(),
        vec![l1, l2],
        config.digest().clone(),
    )
}

#[test]
fn legacy_docker_archive() {
    let (tar, layers, config_digest) = legacy_archive();
    for input in [tar.clone(), gzip(&tar)] {
        let mut dst = MemStore::default();
        let got = read_archive(Cursor::new(input), &mut dst).unwrap();
        assert_eq!(got.images.len(), 1);
        let img = &got.images[0];
        assert!(img.manifest_synthesised);
        assert_eq!(img.config_digest, config_digest);
        assert_eq!(img.manifest.media_type(), media_types::DOCKER_MANIFEST);
        assert_eq!(img.manifest.config.media_type, media_types::DOCKER_CONFIG);
        let mts: Vec<&str> = img.layers.iter().map(|l| l.media_type.as_str()).collect();
        assert_eq!(
            mts,
            [
                media_types::DOCKER_LAYER_TAR,
                media_types::DOCKER_LAYER_TAR_GZIP,
                media_types::DOCKER_LAYER_TAR
            ]
        );
        assert_eq!(img.layers[0].digest, Digest::sha256_of(&layers[0]));
        assert_eq!(img.layers[1].digest, Digest::sha256_of(&layers[1]));
        assert_eq!(img.layers[2].digest, img.layers[0].digest);
        assert_eq!(
            img.names,
            ["docker.io/library/busybox:latest", "docker.io/me/app:1"]
        );
        // The synthesised manifest's digest is that of its bytes.
        assert_eq!(
            img.manifest.digest(),
            &Digest::sha256_of(img.manifest.bytes())
        );
        // Blobs (two layers + config) went to the sink; legacy json/VERSION did not.
        assert_eq!(dst.blobs.len(), 3);
        assert_eq!(dst.blobs[&Digest::sha256_of(&layers[1])], layers[1]);
    }
}

#[test]
fn skopeo_reads_what_we_write() {
    if !skopeo() {
        return;
    }
    let mut src = MemStore::default();
    let a = make_image(&mut src, 2, true, &["busybox:1.35"]);
    let dir = tempfile::tempdir().unwrap();
    let oci = dir.path().join("img.oci.tar");
    let dock = dir.path().join("img.docker.tar");
    write_oci_archive(
        std::fs::File::create(&oci).unwrap(),
        std::slice::from_ref(&a),
        &src,
    )
    .unwrap();
    write_docker_archive(
        std::fs::File::create(&dock).unwrap(),
        std::slice::from_ref(&a),
        &src,
    )
    .unwrap();

    let inspect = |arg: String| {
        let o = Command::new("skopeo")
            .args(["inspect", "--raw", &arg])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "skopeo inspect {arg}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let o2 = Command::new("skopeo")
            .args(["inspect", &arg])
            .output()
            .unwrap();
        assert!(
            o2.status.success(),
            "skopeo inspect {arg}: {}",
            String::from_utf8_lossy(&o2.stderr)
        );
        (o.stdout, String::from_utf8(o2.stdout).unwrap())
    };
    let (raw, info) = inspect(format!("oci-archive:{}", oci.display()));
    assert_eq!(raw, a.manifest_bytes, "skopeo sees our manifest bytes");
    assert!(info.contains(&a.manifest_digest.to_string()), "{info}");

    let (_, info) = inspect(format!("docker-archive:{}", dock.display()));
    assert!(info.contains("\"Architecture\": \"amd64\""), "{info}");
    let v: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(v["Layers"].as_array().unwrap().len(), 2, "{info}");
    // skopeo also reads the docker archive as an OCI layout.
    inspect(format!("oci-archive:{}", dock.display()));

    // skopeo copies our archive into a layout directory; we read that.
    let layout = dir.path().join("layout");
    skopeo_copy(
        &format!("oci-archive:{}", oci.display()),
        &format!("oci:{}:busybox:1.35", layout.display()),
    );
    let mut dst = MemStore::default();
    let got = read_oci_layout_dir(&layout, &mut dst).unwrap();
    assert_eq!(got.images.len(), 1);
    assert_eq!(got.images[0].names, ["docker.io/library/busybox:1.35"]);
    assert_eq!(got.images[0].manifest.digest(), &a.manifest_digest);
    assert_eq!(got.images[0].layers.len(), 2);

    // And a docker-archive skopeo writes reads back too.
    let theirs = dir.path().join("theirs.tar");
    skopeo_copy(
        &format!("oci:{}:busybox:1.35", layout.display()),
        &format!("docker-archive:{}:busybox:1.35", theirs.display()),
    );
    let mut dst = MemStore::default();
    let got = read_archive(std::fs::File::open(&theirs).unwrap(), &mut dst).unwrap();
    // skopeo re-encodes the config when converting; the layers stay.
    let ours: ImageConfig = serde_json::from_slice(&a.config_bytes).unwrap();
    assert_eq!(got.images[0].config.diff_ids(), ours.diff_ids());
    assert_eq!(got.images[0].layers.len(), 2);
    assert_eq!(got.images[0].names, ["docker.io/library/busybox:1.35"]);
}

/// `skopeo copy --quiet FROM TO`, asserting success.
fn skopeo_copy(from: &str, to: &str) {
    let o = Command::new("skopeo")
        .args(["copy", "--quiet", from, to])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "skopeo copy {from} {to}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}
