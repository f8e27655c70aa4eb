//! Writing images as an OCI layout (a tar or a directory) and as a Docker
//! 25+ style `docker save` archive, which is an OCI layout plus
//! `manifest.json` and `repositories`: both `docker load` (any version)
//! and OCI tools read it. Blobs are written as stored (compressed or not):
//! `docker load` decompresses layer files before checking diff IDs.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::docker::{self, blob_path};
use super::tar_io::{dir_header, file_header, VerifiedBlob};
use super::{BlobSource, ImageToSave};
use crate::config::ImageConfig;
use crate::descriptor::{annotations, Descriptor};
use crate::digest::Digest;
use crate::error::Error;
use crate::manifest::ImageIndex;
use crate::media_types;
use crate::raw::to_go_json;

const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Writes `images` as a `docker save` archive (Docker 25+ layout).
pub fn write_docker_archive(
    out: impl Write,
    images: &[ImageToSave],
    source: &dyn BlobSource,
) -> Result<(), Error> {
    let mut t = TarOut {
        b: tar::Builder::new(out),
    };
    write_layout(&mut t, images, &[], source, true)?;
    t.finish()
}

/// Writes `images` as an OCI image layout in a tar (`oci-archive:`).
pub fn write_oci_archive(
    out: impl Write,
    images: &[ImageToSave],
    source: &dyn BlobSource,
) -> Result<(), Error> {
    let mut t = TarOut {
        b: tar::Builder::new(out),
    };
    write_layout(&mut t, images, &[], source, false)?;
    t.finish()
}

/// A multi-platform image to save into an OCI layout: its index (written
/// as a blob and named in `index.json`) and the images it lists (written
/// as blobs only).
#[derive(Debug, Clone)]
pub struct IndexToSave {
    /// The index's exact bytes.
    pub bytes: Vec<u8>,
    /// The index's digest.
    pub digest: Digest,
    /// The index's media type.
    pub media_type: String,
    /// Names to record for the index.
    pub names: Vec<crate::Reference>,
    /// The images the index lists.
    pub members: Vec<ImageToSave>,
}

/// [`write_oci_archive`] with multi-platform images: `index.json` names
/// each index, whose manifests are written beside it.
pub fn write_oci_archive_with_indexes(
    out: impl Write,
    images: &[ImageToSave],
    indexes: &[IndexToSave],
    source: &dyn BlobSource,
) -> Result<(), Error> {
    let mut t = TarOut {
        b: tar::Builder::new(out),
    };
    write_layout(&mut t, images, indexes, source, false)?;
    t.finish()
}

/// Writes `images` as an OCI image layout directory (`oci:DIR`). The
/// directory is created if needed and must not already hold a layout.
pub fn write_oci_layout_dir(
    dir: &Path,
    images: &[ImageToSave],
    source: &dyn BlobSource,
) -> Result<(), Error> {
    if dir.join("index.json").exists() {
        return Err(Error::Output {
            path: dir.to_path_buf(),
            why: "already holds an OCI layout (index.json); choose a new or empty directory",
        });
    }
    let mut d = DirOut {
        root: dir.to_path_buf(),
    };
    write_layout(&mut d, images, &[], source, false)
}

trait LayoutOut {
    fn dir(&mut self, path: &str) -> Result<(), Error>;
    fn file(&mut self, path: &str, bytes: &[u8]) -> Result<(), Error>;
    fn blob(&mut self, digest: &Digest, size: u64, data: &mut dyn Read) -> Result<(), Error>;
}

fn write_layout(
    out: &mut dyn LayoutOut,
    images: &[ImageToSave],
    indexes: &[IndexToSave],
    source: &dyn BlobSource,
    docker_files: bool,
) -> Result<(), Error> {
    out.dir("blobs")?;
    out.dir("blobs/sha256")?;
    let mut written: HashSet<Digest> = HashSet::new();
    let mut index_entries: Vec<Descriptor> = Vec::new();
    let mut manifest_json = Vec::new();
    let mut repos = Vec::new();

    // Index members: their blobs, no entry of their own.
    let members: Vec<(&ImageToSave, bool)> = indexes
        .iter()
        .flat_map(|i| i.members.iter().map(|m| (m, true)))
        .chain(images.iter().map(|m| (m, false)))
        .collect();
    for (img, member) in members {
        check_bytes(&img.manifest_bytes, &img.manifest_digest, "manifest")?;
        check_bytes(&img.config_bytes, &img.config_digest, "config")?;
        let config: ImageConfig = serde_json::from_slice(&img.config_bytes)
            .map_err(|e| Error::json(format!("config {}", img.config_digest), e))?;
        let diff_ids = docker::diff_ids_by_layer(&config, &img.layers);
        let mut foreign = BTreeMap::new();
        for layer in &img.layers {
            if written.contains(&layer.digest) {
                continue;
            }
            let is_foreign =
                media_types::is_foreign_layer(&layer.media_type) || layer.urls.is_some();
            let (mut r, size) = match source.open_blob(&layer.digest) {
                Ok(x) => x,
                Err(_) if is_foreign => {
                    if let Some(diff_id) = diff_ids.get(&layer.digest) {
                        foreign.insert(diff_id.clone(), layer.clone());
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            if size != layer.size {
                return Err(Error::SizeMismatch {
                    digest: layer.digest.clone(),
                    expected: layer.size,
                    actual: size,
                });
            }
            out.blob(&layer.digest, size, &mut r)?;
            written.insert(layer.digest.clone());
        }
        for (bytes, digest) in [
            (&img.config_bytes, &img.config_digest),
            (&img.manifest_bytes, &img.manifest_digest),
        ] {
            if written.insert(digest.clone()) {
                out.blob(digest, bytes.len() as u64, &mut &bytes[..])?;
            }
        }

        if member {
            continue;
        }
        let desc = Descriptor::new(
            img.manifest_media_type.clone(),
            img.manifest_digest.clone(),
            img.manifest_bytes.len() as u64,
        );
        push_index_entries(&mut index_entries, desc, &img.names);
        manifest_json.push(docker::manifest_entry(
            &img.config_digest,
            &img.layers,
            &img.names,
            foreign,
        ));
        repos.push((&img.names[..], img.layers.last().map(|l| &l.digest)));
    }

    for ix in indexes {
        check_bytes(&ix.bytes, &ix.digest, "index")?;
        if written.insert(ix.digest.clone()) {
            out.blob(&ix.digest, ix.bytes.len() as u64, &mut &ix.bytes[..])?;
        }
        let desc = Descriptor::new(
            ix.media_type.clone(),
            ix.digest.clone(),
            ix.bytes.len() as u64,
        );
        push_index_entries(&mut index_entries, desc, &ix.names);
    }
    let index = ImageIndex::oci(index_entries);
    out.file("index.json", &to_go_json(&index))?;
    if docker_files {
        out.file("manifest.json", &to_go_json(&manifest_json))?;
    }
    out.file("oci-layout", OCI_LAYOUT)?;
    if docker_files {
        out.file("repositories", &docker::repositories(&repos))?;
    }
    Ok(())
}

/// Adds `desc` to `index.json`'s entries: once unnamed when `names` is empty,
/// else once per name, annotated with the containerd image name and the tag.
fn push_index_entries(entries: &mut Vec<Descriptor>, desc: Descriptor, names: &[crate::Reference]) {
    if names.is_empty() {
        entries.push(desc.clone());
    }
    for name in names {
        let mut d = desc.clone();
        let mut ann = BTreeMap::new();
        ann.insert(
            annotations::CONTAINERD_IMAGE_NAME.to_string(),
            name.to_string(),
        );
        if let Some(tag) = name.tag() {
            ann.insert(annotations::REF_NAME.to_string(), tag.to_string());
        }
        d.annotations = Some(ann);
        entries.push(d);
    }
}

fn check_bytes(bytes: &[u8], digest: &Digest, what: &str) -> Result<(), Error> {
    let actual = Digest::sha256_of(bytes);
    if actual != *digest {
        return Err(Error::DigestMismatch {
            entry: format!("the {what} to save"),
            expected: digest.clone(),
            actual,
        });
    }
    Ok(())
}

struct TarOut<W: Write> {
    b: tar::Builder<W>,
}

impl<W: Write> TarOut<W> {
    fn finish(self) -> Result<(), Error> {
        let mut w = self
            .b
            .into_inner()
            .map_err(|e| Error::io("finishing the archive", e))?;
        w.flush().map_err(|e| Error::io("flushing the archive", e))
    }
}

impl<W: Write> LayoutOut for TarOut<W> {
    fn dir(&mut self, path: &str) -> Result<(), Error> {
        let mut h = dir_header();
        self.b
            .append_data(&mut h, format!("{path}/"), io::empty())
            .map_err(|e| Error::io(format!("writing {path}/ into the archive"), e))
    }

    fn file(&mut self, path: &str, bytes: &[u8]) -> Result<(), Error> {
        let mut h = file_header(bytes.len() as u64);
        self.b
            .append_data(&mut h, path, bytes)
            .map_err(|e| Error::io(format!("writing {path} into the archive"), e))
    }

    fn blob(&mut self, digest: &Digest, size: u64, data: &mut dyn Read) -> Result<(), Error> {
        let mut h = file_header(size);
        let r = VerifiedBlob::new(data, digest.clone(), size);
        self.b
            .append_data(&mut h, blob_path(digest), r)
            .map_err(|e| Error::io(format!("writing blob {digest} into the archive"), e))
    }
}

struct DirOut {
    root: PathBuf,
}

impl LayoutOut for DirOut {
    fn dir(&mut self, path: &str) -> Result<(), Error> {
        let p = self.root.join(path);
        fs::create_dir_all(&p).map_err(|e| Error::io(format!("creating {}", p.display()), e))
    }

    fn file(&mut self, path: &str, bytes: &[u8]) -> Result<(), Error> {
        let p = self.root.join(path);
        write_atomically(&p, &mut &bytes[..])
    }

    fn blob(&mut self, digest: &Digest, size: u64, data: &mut dyn Read) -> Result<(), Error> {
        let p = self.root.join(blob_path(digest));
        if p.is_file() {
            return Ok(()); // content-addressed: already there
        }
        write_atomically(&p, &mut VerifiedBlob::new(data, digest.clone(), size))
    }
}

fn write_atomically(path: &Path, data: &mut dyn Read) -> Result<(), Error> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let ctx = || format!("writing {}", path.display());
    let result = (|| {
        let mut f = File::create(&tmp)?;
        io::copy(data, &mut f)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(ctx(), e));
    }
    Ok(())
}
