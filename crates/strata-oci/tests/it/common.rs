//! Test helpers: an in-memory blob store acting as sink and source, and a
//! small image built in memory.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};

use strata_oci::media_types;
use strata_oci::{
    BlobSink, BlobSource, Descriptor, Digest, DigestWriter, Error, ImageConfig, ImageManifest,
    ImageToSave, Raw, Reference,
};

#[derive(Default)]
pub(crate) struct MemStore {
    pub blobs: HashMap<Digest, Vec<u8>>,
    pub puts: usize,
}

impl BlobSink for MemStore {
    fn put_blob(
        &mut self,
        expected: Option<&Digest>,
        _size_hint: Option<u64>,
        data: &mut dyn Read,
    ) -> Result<Digest, Error> {
        let mut w = DigestWriter::new(Vec::new());
        std::io::copy(data, &mut w).map_err(|e| Error::external("test sink", e))?;
        let (bytes, d, _) = w.finish();
        if let Some(e) = expected {
            if *e != d {
                return Err(Error::external(
                    "test sink",
                    format!("expected {e}, got {d}"),
                ));
            }
        }
        self.puts += 1;
        self.blobs.insert(d.clone(), bytes);
        Ok(d)
    }
}

impl BlobSource for MemStore {
    fn open_blob(&self, digest: &Digest) -> Result<(Box<dyn Read + '_>, u64), Error> {
        let b = self
            .blobs
            .get(digest)
            .ok_or_else(|| Error::external("test source", format!("no blob {digest}")))?;
        Ok((Box::new(&b[..]), b.len() as u64))
    }
}

/// A layer tar with one file.
pub(crate) fn layer_tar(path: &str, content: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, path, content).unwrap();
    b.into_inner().unwrap()
}

pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// Builds an image of `n` layers (gzip when `compressed`) into `store`.
pub(crate) fn make_image(
    store: &mut MemStore,
    n: usize,
    compressed: bool,
    names: &[&str],
) -> ImageToSave {
    let mut config = ImageConfig::new_scratch();
    config.created = Some("2024-01-01T00:00:00Z".into());
    config.runtime_mut().cmd = Some(vec!["sh".into()]);
    config
        .extra
        .insert("x-unknown".into(), serde_json::json!({"kept": true}));
    let mut layers = Vec::new();
    for i in 0..n {
        let tar = layer_tar(&format!("file{i}"), format!("content {i}").as_bytes());
        let diff_id = Digest::sha256_of(&tar);
        let (blob, mt) = if compressed {
            (gzip(&tar), media_types::OCI_LAYER_TAR_GZIP)
        } else {
            (tar, media_types::OCI_LAYER_TAR)
        };
        let d = Digest::sha256_of(&blob);
        layers.push(Descriptor::new(mt, d.clone(), blob.len() as u64));
        store.blobs.insert(d, blob);
        config.push_layer(diff_id, format!("COPY file{i} /"), None);
    }
    let config = Raw::from_value(config);
    store
        .blobs
        .insert(config.digest().clone(), config.bytes().to_vec());
    let manifest = Raw::from_value(ImageManifest::oci(
        Descriptor::new(
            media_types::OCI_CONFIG,
            config.digest().clone(),
            config.size(),
        ),
        layers,
    ));
    store
        .blobs
        .insert(manifest.digest().clone(), manifest.bytes().to_vec());
    let names = names.iter().map(|n| Reference::parse(n).unwrap()).collect();
    ImageToSave::new(&manifest, &config, names).unwrap()
}

pub(crate) fn skopeo() -> bool {
    let ok = std::process::Command::new("skopeo")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("*** skopeo is not installed: skipping the cross-tool check ***");
    }
    ok
}
