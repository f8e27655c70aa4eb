//! `--output`: where a build's result goes besides the store.
//!
//! - `type=local,dest=DIR`: the final filesystem, flattened (whiteouts
//!   applied) into DIR;
//! - `type=tar,dest=FILE`: the same filesystem as one tar;
//! - `type=oci,dest=FILE` / `type=docker,dest=FILE`: the image as an OCI
//!   layout tar / a `docker load` archive (the store's save path).
//!
//! `dest=-` writes the tar forms to stdout.

use std::io::Write;
use std::path::{Path, PathBuf};

use strata_oci::Digest;
use strata_store::transfer::{save_images, ArchiveFormat, ImageToExport};
use strata_store::{apply_layer, ApplyMode, Store};

/// One `--output` spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputSpec {
    Local(PathBuf),
    Tar(PathBuf),
    Oci(PathBuf),
    Docker(PathBuf),
}

impl OutputSpec {
    /// Parses `type=local,dest=DIR` (or a bare `DIR`, as `docker build -o DIR`).
    pub fn parse(s: &str) -> Result<OutputSpec, String> {
        if !s.contains('=') {
            return Ok(OutputSpec::Local(PathBuf::from(s)));
        }
        let mut kind = None;
        let mut dest = None;
        for kv in s.split(',') {
            match kv.split_once('=') {
                Some(("type", v)) => kind = Some(v.to_string()),
                Some(("dest", v)) => dest = Some(PathBuf::from(v)),
                Some((k, _)) if k == "name" || k == "push" => {}
                _ => {
                    return Err(format!(
                        "--output {s}: unknown field {kv:?} (type=...,dest=...)"
                    ))
                }
            }
        }
        let dest = dest.ok_or_else(|| format!("--output {s}: dest= is required"))?;
        match kind.as_deref().unwrap_or("local") {
            "local" => Ok(OutputSpec::Local(dest)),
            "tar" => Ok(OutputSpec::Tar(dest)),
            "oci" => Ok(OutputSpec::Oci(dest)),
            "docker" => Ok(OutputSpec::Docker(dest)),
            o => Err(format!(
                "--output type={o} is not supported: use local, tar, oci or docker"
            )),
        }
    }
}

fn io(what: &Path) -> impl FnOnce(std::io::Error) -> String + '_ {
    move |e| format!("{}: {e}", what.display())
}

fn open_dest(p: &Path) -> Result<Box<dyn Write>, String> {
    if p == Path::new("-") {
        return Ok(Box::new(std::io::stdout().lock()));
    }
    Ok(Box::new(std::io::BufWriter::new(
        std::fs::File::create(p).map_err(io(p))?,
    )))
}

/// Flattens an image's layers into `dest` (created if missing).
pub fn flatten_into(store: &Store, image: &Digest, dest: &Path) -> Result<(), String> {
    let info = store
        .meta()
        .image(image)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("image {image} is not in the store"))?;
    std::fs::create_dir_all(dest).map_err(io(dest))?;
    for l in &info.layers {
        let mut f = store.blobs().open(&l.digest).map_err(|e| e.to_string())?;
        apply_layer(&mut f, dest, ApplyMode::Flatten).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Writes the image `image` (tagged `names`) to `spec`.
pub fn export(
    store: &Store,
    image: &Digest,
    names: &[String],
    spec: &OutputSpec,
) -> Result<(), String> {
    match spec {
        OutputSpec::Local(dir) => flatten_into(store, image, dir),
        OutputSpec::Tar(file) => {
            let tmp = crate::build::TempDir::new(store, "output").map_err(io(file))?;
            flatten_into(store, image, &tmp.0)?;
            let mut b = tar::Builder::new(open_dest(file)?);
            b.follow_symlinks(false);
            b.mode(tar::HeaderMode::Complete);
            b.append_dir_all(".", &tmp.0).map_err(io(file))?;
            b.into_inner().and_then(|mut w| w.flush()).map_err(io(file))
        }
        OutputSpec::Oci(file) | OutputSpec::Docker(file) => {
            let format = match spec {
                OutputSpec::Oci(_) => ArchiveFormat::Oci,
                _ => ArchiveFormat::Docker,
            };
            let refs = names
                .iter()
                .filter_map(|n| strata_oci::Reference::parse(n).ok())
                .collect();
            let out = open_dest(file)?;
            save_images(
                store,
                out,
                &[ImageToExport {
                    id: image.clone(),
                    names: refs,
                }],
                format,
            )
            .map_err(|e| e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        assert_eq!(
            OutputSpec::parse("type=tar,dest=/x.tar").unwrap(),
            OutputSpec::Tar("/x.tar".into())
        );
        assert_eq!(
            OutputSpec::parse("out").unwrap(),
            OutputSpec::Local("out".into())
        );
        assert!(OutputSpec::parse("type=registry,dest=x").is_err());
        assert!(OutputSpec::parse("type=local").is_err());
    }
}
