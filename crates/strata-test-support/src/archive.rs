//! Image archives made in memory: layer tars, and legacy `docker save`
//! archives (`manifest.json`, a config, one member per layer) around them.

use sha2::Digest as _;

/// Hex SHA-256 of `b`.
pub fn sha256_hex(b: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(b))
}

/// The `sha256:` diff IDs of uncompressed `layers`.
pub fn diff_ids(layers: &[Vec<u8>]) -> Vec<String> {
    layers
        .iter()
        .map(|l| format!("sha256:{}", sha256_hex(l)))
        .collect()
}

/// A tar of regular files (path, contents), mode 0644, owner root, mtime
/// 0; paths of any length (over 100 bytes, GNU long-name entries).
pub fn layer_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (p, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        b.append_data(&mut h, p, *data)
            .expect("append to a tar in memory");
    }
    b.into_inner().expect("finish a tar in memory")
}

/// The config of a plain linux/amd64 image of `layers` (`Cmd ["sh"]`,
/// `PATH=/bin`, one history entry per layer).
pub fn image_config(layers: &[Vec<u8>]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids(layers)},
        "history": layers.iter().map(|_| serde_json::json!({"created_by": "test"})).collect::<Vec<_>>(),
    }))
    .expect("serialize a JSON value")
}

/// A legacy `docker save` archive of one image of `layers` with the
/// [`image_config`], tagged `tags`.
pub fn docker_archive(tags: &[String], layers: &[Vec<u8>]) -> Vec<u8> {
    docker_archive_of(&image_config(layers), tags, layers)
}

/// A legacy `docker save` archive of one image: `config` (its JSON bytes,
/// naming the layers' [`diff_ids`]), tagged `tags`, with these layers
/// (members `l0/layer.tar`, `l1/layer.tar`, ...).
pub fn docker_archive_of(config: &[u8], tags: &[String], layers: &[Vec<u8>]) -> Vec<u8> {
    let names: Vec<String> = (0..layers.len())
        .map(|i| format!("l{i}/layer.tar"))
        .collect();
    let members: Vec<(&str, &[u8])> = names
        .iter()
        .zip(layers)
        .map(|(n, l)| (n.as_str(), l.as_slice()))
        .collect();
    docker_archive_named(config, tags, &members)
}

/// A legacy `docker save` archive with the layer members named by the
/// caller (`(member name, bytes)`, in manifest order; a name ending
/// `.gz` may carry a compressed layer). The config is stored as
/// `<sha256 of config>.json`, and `manifest.json` comes last.
pub fn docker_archive_named(config: &[u8], tags: &[String], layers: &[(&str, &[u8])]) -> Vec<u8> {
    let config_name = format!("{}.json", sha256_hex(config));
    let layer_names: Vec<&str> = layers.iter().map(|(n, _)| *n).collect();
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": config_name, "RepoTags": tags, "Layers": layer_names,
    }]))
    .expect("serialize a JSON value");
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, data)
            .expect("append to a tar in memory");
    };
    add(&config_name, config);
    for (n, l) in layers {
        add(n, l);
    }
    add("manifest.json", &manifest);
    b.into_inner().expect("finish a tar in memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The manifest names the config by its digest and the layers in order,
    /// and the config's diff IDs are the layers' digests.
    #[test]
    fn manifest_and_config_agree_with_the_layers() {
        let layers = vec![layer_tar(&[("a", b"1")]), layer_tar(&[("b", b"2")])];
        let ar = docker_archive(&["x:1".into()], &layers);
        let mut members = std::collections::BTreeMap::new();
        for e in tar::Archive::new(&ar[..]).entries().unwrap() {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).unwrap();
            members.insert(name, data);
        }
        let manifest: serde_json::Value =
            serde_json::from_slice(&members["manifest.json"]).unwrap();
        let config_name = manifest[0]["Config"].as_str().unwrap();
        let config: serde_json::Value = serde_json::from_slice(&members[config_name]).unwrap();
        assert_eq!(
            config_name,
            format!("{}.json", sha256_hex(&members[config_name]))
        );
        assert_eq!(
            config["rootfs"]["diff_ids"],
            serde_json::json!(diff_ids(&layers))
        );
        assert_eq!(
            manifest[0]["Layers"],
            serde_json::json!(["l0/layer.tar", "l1/layer.tar"])
        );
        assert_eq!(members["l1/layer.tar"], layers[1]);
        assert_eq!(manifest[0]["RepoTags"], serde_json::json!(["x:1"]));
    }
}
