//! `--output`: where a build's result goes besides the store.
//!
//! - `type=local,dest=DIR`: the final filesystem, flattened (whiteouts
//!   applied) beside DIR, then merged into it: DIR's own files are kept
//!   unless the image has something at the same path;
//! - `type=tar,dest=FILE`: the same filesystem as one tar (written to a
//!   temporary name, renamed when complete);
//! - `type=oci,dest=FILE` / `type=docker,dest=FILE`: the image as an OCI
//!   layout tar / a `docker load` archive (the store's save path).
//!
//! `dest=-` writes the tar forms to stdout.

use std::io::Write;
use std::path::{Path, PathBuf};

use strata_oci::Digest;
use strata_store::transfer::{save_images, ArchiveFormat, ImageToExport};
use strata_store::{apply_layer, ApplyMode, Store};

/// Why an `--output` spec is refused or its export failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutputError {
    /// A field the spec does not know.
    #[error("--output {spec}: unknown field {field:?} (type=...,dest=...)")]
    UnknownField {
        /// The whole spec.
        spec: String,
        /// The field.
        field: String,
    },
    /// No `dest=`.
    #[error("--output {0}: dest= is required")]
    NoDest(String),
    /// A `type=` strata does not write.
    #[error("--output type={0} is not supported: use local, tar, oci or docker")]
    UnsupportedType(String),
    /// A docker archive of several platforms.
    #[error(
        "{}: a docker archive holds one platform: use type=oci for a multi-platform build, or build one --platform",
        .0.display()
    )]
    DockerMultiPlatform(PathBuf),
    /// The image's file would replace a directory of dest.
    #[error(
        "{} is a directory, and the image has a file there: remove it or choose another dest",
        .0.display()
    )]
    FileOverDir(PathBuf),
    /// The image is gone from the store.
    #[error("image {0} is not in the store")]
    NoImage(Digest),
    /// A file of the output could not be written.
    #[error("{}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A copy across filesystems failed.
    #[error(transparent)]
    Copy(#[from] crate::runmounts::RunMountError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] strata_store::StoreError),
    /// Writing the image archive failed.
    #[error(transparent)]
    Transfer(#[from] strata_store::transfer::TransferError),
}

/// One `--output` spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputSpec {
    /// `type=local,dest=DIR`: the filesystem into a directory.
    Local(PathBuf),
    /// `type=tar,dest=FILE`: the filesystem as a tar.
    Tar(PathBuf),
    /// `type=oci,dest=FILE`: an OCI layout tar.
    Oci(PathBuf),
    /// `type=docker,dest=FILE`: a `docker load` archive.
    Docker(PathBuf),
}

impl OutputSpec {
    /// Parses `type=local,dest=DIR` (or a bare `DIR`, as `docker build -o DIR`).
    pub fn parse(s: &str) -> Result<OutputSpec, OutputError> {
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
                    return Err(OutputError::UnknownField {
                        spec: s.to_string(),
                        field: kv.to_string(),
                    })
                }
            }
        }
        let dest = dest.ok_or_else(|| OutputError::NoDest(s.to_string()))?;
        match kind.as_deref().unwrap_or("local") {
            "local" => Ok(OutputSpec::Local(dest)),
            "tar" => Ok(OutputSpec::Tar(dest)),
            "oci" => Ok(OutputSpec::Oci(dest)),
            "docker" => Ok(OutputSpec::Docker(dest)),
            o => Err(OutputError::UnsupportedType(o.to_string())),
        }
    }
}

fn io(what: &Path) -> impl FnOnce(std::io::Error) -> OutputError + '_ {
    move |source| OutputError::Io {
        path: what.to_path_buf(),
        source,
    }
}

/// Writes the tree `dir` as a tar (entries below `.`, symlinks as links,
/// full headers) to `file` (`-`: standard output).
fn write_tree_tar(file: &Path, dir: &Path) -> Result<(), OutputError> {
    write_dest(file, |out| {
        let mut b = tar::Builder::new(out);
        b.follow_symlinks(false);
        b.mode(tar::HeaderMode::Complete);
        b.append_dir_all(".", dir).map_err(io(file))?;
        b.into_inner().and_then(|w| w.flush()).map_err(io(file))
    })
}

/// A name beside `p` for writing before the final rename.
fn temp_beside(p: &Path, what: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = format!(".{name}.strata-{what}-{}-{nanos}", std::process::id());
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.join(tmp),
        _ => PathBuf::from(tmp),
    }
}

/// Writes a file output through `write`: to stdout for `-`, else to a
/// temporary name beside `p`, renamed to `p` only once complete (a failed
/// export leaves no partial file under the final name).
fn write_dest(
    p: &Path,
    write: impl FnOnce(&mut dyn Write) -> Result<(), OutputError>,
) -> Result<(), OutputError> {
    if p == Path::new("-") {
        let mut out = std::io::stdout().lock();
        write(&mut out)?;
        return out.flush().map_err(io(p));
    }
    let tmp = temp_beside(p, "part");
    let result = (|| {
        let f = std::fs::File::create(&tmp).map_err(io(p))?;
        let mut w = std::io::BufWriter::new(f);
        write(&mut w)?;
        let f = w.into_inner().map_err(|e| io(p)(e.into_error()))?;
        f.sync_all().map_err(io(p))?;
        std::fs::rename(&tmp, p).map_err(io(p))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Flattens an image's layers into `dest` (created if missing): whiteouts
/// apply to what the layers below put there. `dest` should be empty.
pub(crate) fn flatten_into(store: &Store, image: &Digest, dest: &Path) -> Result<(), OutputError> {
    let info = store
        .meta()
        .image(image)?
        .ok_or_else(|| OutputError::NoImage(image.clone()))?;
    std::fs::create_dir_all(dest).map_err(io(dest))?;
    for l in &info.layers {
        let mut f = store.open_layer(&l.digest)?;
        apply_layer(&mut f, dest, ApplyMode::Flatten)?;
    }
    Ok(())
}

/// A directory removed (with its contents) when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `type=local`: the image's final filesystem, flattened first in a
/// scratch directory beside `dest` (so whiteouts and opaque markers only
/// ever remove what the image's own lower layers put there), then merged
/// into `dest`: what the image has replaces what `dest` holds at the same
/// path, and nothing else in `dest` is touched. Entries of `dest` are never
/// followed when they are symlinks, so nothing lands outside it.
pub(crate) fn export_local(store: &Store, image: &Digest, dest: &Path) -> Result<(), OutputError> {
    std::fs::create_dir_all(dest).map_err(io(dest))?;
    let dest = std::fs::canonicalize(dest).map_err(io(dest))?;
    // Beside dest, so that the merge renames (same filesystem); in the
    // store's tmp when dest has no parent or it is not writable.
    let beside = temp_beside(&dest, "output");
    let (scratch, _store_tmp) = match std::fs::create_dir(&beside) {
        Ok(()) if dest.parent().is_some() => (Scratch(beside), None),
        _ => {
            let _ = std::fs::remove_dir(&beside);
            let t = crate::tempdir::TempDir::new(store, "output").map_err(io(&dest))?;
            (Scratch(t.0.join("fs")), Some(t))
        }
    };
    flatten_into(store, image, &scratch.0)?;
    merge_dir(&scratch.0, &dest)
}

/// Moves every entry of `from` into `to` (see [`export_local`]).
fn merge_dir(from: &Path, to: &Path) -> Result<(), OutputError> {
    let mut names: Vec<_> = std::fs::read_dir(from)
        .map_err(io(from))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(io(from))?;
    names.sort();
    for name in names {
        let src = from.join(&name);
        let dst = to.join(&name);
        let sm = std::fs::symlink_metadata(&src).map_err(io(&src))?;
        let dm = std::fs::symlink_metadata(&dst).ok();
        match dm {
            // A directory onto a directory: merge, then give it the
            // image's metadata.
            Some(d) if d.is_dir() && sm.is_dir() => {
                merge_dir(&src, &dst)?;
                copy_dir_meta(&sm, &dst)?;
                continue;
            }
            Some(d) if d.is_dir() => {
                return Err(OutputError::FileOverDir(dst));
            }
            // A file or a symlink of dest's (never followed) is replaced.
            Some(_) if sm.is_dir() => std::fs::remove_file(&dst).map_err(io(&dst))?,
            _ => {}
        }
        match std::fs::rename(&src, &dst) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
                if !sm.is_dir() && dst.symlink_metadata().is_ok() {
                    std::fs::remove_file(&dst).map_err(io(&dst))?;
                }
                crate::runmounts::copy_tree(&src, &dst)?;
            }
            Err(e) => return Err(io(&dst)(e)),
        }
    }
    Ok(())
}

fn copy_dir_meta(m: &std::fs::Metadata, dst: &Path) -> Result<(), OutputError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let _ = std::os::unix::fs::lchown(dst, Some(m.uid()), Some(m.gid()));
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(m.mode() & 0o7777))
        .map_err(io(dst))?;
    if let Ok(t) = m.modified() {
        if let Ok(f) = std::fs::File::open(dst) {
            let _ = f.set_modified(t);
        }
    }
    Ok(())
}

/// Writes the image `image` (tagged `names`) to `spec`.
pub fn export(
    store: &Store,
    image: &Digest,
    names: &[String],
    spec: &OutputSpec,
) -> Result<(), OutputError> {
    match spec {
        OutputSpec::Local(dir) => export_local(store, image, dir),
        OutputSpec::Tar(file) => {
            let tmp = crate::tempdir::TempDir::new(store, "output").map_err(io(file))?;
            flatten_into(store, image, &tmp.0)?;
            write_tree_tar(file, &tmp.0)
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
            write_dest(file, |out| {
                save_images(
                    store,
                    out,
                    &[ImageToExport {
                        id: image.clone(),
                        names: refs,
                    }],
                    format,
                )
                .map_err(OutputError::from)
            })
        }
    }
}

/// Exports a multi-platform build: `local` and `tar` get one directory per
/// platform (`linux_amd64/`, `linux_arm64/`), `oci` the index with every
/// platform's image; `docker` (no index in that format) is refused.
pub fn export_index(
    store: &Store,
    index: &Digest,
    images: &[(strata_oci::Platform, Digest)],
    names: &[String],
    spec: &OutputSpec,
) -> Result<(), OutputError> {
    let dir_of = |p: &strata_oci::Platform| p.to_string().replace('/', "_");
    match spec {
        OutputSpec::Local(dir) => {
            for (p, id) in images {
                export_local(store, id, &dir.join(dir_of(p)))?;
            }
            Ok(())
        }
        OutputSpec::Tar(file) => {
            let tmp = crate::tempdir::TempDir::new(store, "output").map_err(io(file))?;
            for (p, id) in images {
                flatten_into(store, id, &tmp.0.join(dir_of(p)))?;
            }
            write_tree_tar(file, &tmp.0)
        }
        OutputSpec::Oci(file) => {
            let refs = names
                .iter()
                .filter_map(|n| strata_oci::Reference::parse(n).ok())
                .collect();
            let ix = strata_store::transfer::IndexToExport {
                index: index.clone(),
                members: images.iter().map(|(_, id)| id.clone()).collect(),
                names: refs,
            };
            write_dest(file, |out| {
                strata_store::transfer::save_oci_with_indexes(store, out, &[], &[ix])
                    .map_err(OutputError::from)
            })
        }
        OutputSpec::Docker(file) => Err(OutputError::DockerMultiPlatform(file.clone())),
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

    #[test]
    fn a_failed_file_output_leaves_nothing_under_its_name() {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("out.tar");
        let r = write_dest(&dest, |w| {
            w.write_all(b"partial").map_err(io(Path::new("x")))?;
            Err(OutputError::NoImage(Digest::sha256_of(
                b"layer blob missing",
            )))
        });
        assert!(r.is_err());
        let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
        assert!(names.is_empty(), "{names:?}");
        write_dest(&dest, |w| w.write_all(b"whole").map_err(io(&dest))).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"whole");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn merge_keeps_dest_files_and_never_follows_its_links() {
        let d = tempfile::tempdir().unwrap();
        let (from, to, outside) = (
            d.path().join("from"),
            d.path().join("to"),
            d.path().join("outside"),
        );
        for p in [&from, &to, &outside] {
            std::fs::create_dir(p).unwrap();
        }
        std::fs::create_dir(from.join("a")).unwrap();
        std::fs::write(from.join("a/f"), "image").unwrap();
        std::fs::write(from.join("x"), "image x").unwrap();
        std::fs::create_dir(to.join("keep")).unwrap();
        std::fs::write(to.join("keep/mine"), "mine").unwrap();
        std::fs::write(to.join("x"), "old x").unwrap();
        std::os::unix::fs::symlink(&outside, to.join("a")).unwrap();
        merge_dir(&from, &to).unwrap();
        assert_eq!(
            std::fs::read_to_string(to.join("keep/mine")).unwrap(),
            "mine"
        );
        assert_eq!(std::fs::read_to_string(to.join("x")).unwrap(), "image x");
        assert!(std::fs::symlink_metadata(to.join("a")).unwrap().is_dir());
        assert_eq!(std::fs::read_to_string(to.join("a/f")).unwrap(), "image");
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        // A directory of dest where the image has a file: an error, not a
        // deletion of the user's tree.
        let from2 = d.path().join("from2");
        std::fs::create_dir(&from2).unwrap();
        std::fs::write(from2.join("keep"), "file").unwrap();
        assert!(merge_dir(&from2, &to).is_err());
        assert_eq!(
            std::fs::read_to_string(to.join("keep/mine")).unwrap(),
            "mine"
        );
    }
}
