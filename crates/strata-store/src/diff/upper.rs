//! `LayerWriter`: turns an overlay upper directory (or any directory) into
//! a layer: overlay whiteouts (char 0/0) become `.wh.NAME` entries, opaque
//! directories get a `.wh..wh..opq` entry, hard links inside the tree become
//! tar hard links (by device + inode), and entries come in a deterministic
//! order (a directory, then its children sorted bytewise, depth first).

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::whiteout::{is_opaque_dir, is_whiteout_stat, read_xattrs};
use super::writer::{EntryMeta, LayerBuilder, LayerInfo, LayerOptions};
use crate::blobs::BlobStore;
use crate::error::{IoCtx, Result};
use crate::meta::Lease;

/// Writes the contents of a directory as a layer.
pub struct LayerWriter<'a> {
    blobs: &'a BlobStore,
    opts: LayerOptions,
}

impl<'a> LayerWriter<'a> {
    /// A writer of layers into `blobs`.
    pub fn new(blobs: &'a BlobStore, opts: LayerOptions) -> LayerWriter<'a> {
        LayerWriter { blobs, opts }
    }

    /// Writes `dir` (an overlay upper dir: whiteouts and opaque markers are
    /// translated) as a layer into the blob store.
    pub fn write_dir(&self, dir: &Path, lease: Option<&Lease>) -> Result<LayerInfo> {
        let mut b = LayerBuilder::new(self.blobs, self.opts.clone())?;
        let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
        walk(&mut b, dir, Path::new(""), &mut links)?;
        b.finish_leased(lease)
    }
}

/// Writes `dir` (an overlay upper dir or a built snapshot) as a plain layer
/// tar into `out`, in the same order and with the same headers as
/// [`LayerWriter::write_dir`]: the same tree always gives the same bytes,
/// which is what lets a built layer be kept as its snapshot alone and its
/// tar be made again when it is needed. The result names the tar (digest
/// = diff ID, uncompressed media type).
pub fn tar_dir(dir: &Path, out: Box<dyn Write + Send>, opts: LayerOptions) -> Result<LayerInfo> {
    let mut b = LayerBuilder::uncompressed(out, opts);
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    walk(&mut b, dir, Path::new(""), &mut links)?;
    b.finish()
}

/// The diff ID of `dir` as a layer ([`tar_dir`] into nothing): a built
/// layer's identity, computed without writing its tar.
pub fn digest_dir(dir: &Path, opts: LayerOptions) -> Result<LayerInfo> {
    tar_dir(dir, Box::new(std::io::sink()), opts)
}

fn sorted_children(dir: &Path) -> Result<Vec<OsString>> {
    let mut names = Vec::new();
    for ent in fs::read_dir(dir).ctx("read directory", dir)? {
        names.push(ent.ctx("read directory", dir)?.file_name());
    }
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

fn walk(
    b: &mut LayerBuilder,
    host: &Path,
    rel: &Path,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<()> {
    for name in sorted_children(host)? {
        let hp = host.join(&name);
        let rp = rel.join(&name);
        let md = fs::symlink_metadata(&hp).ctx("stat", &hp)?;
        let ft = md.file_type();
        if ft.is_char_device() && is_whiteout_stat(md.mode(), md.rdev()) {
            b.add_whiteout(&rp)?;
            continue;
        }
        let mut meta = EntryMeta::from_metadata(&md);
        meta.xattrs = read_xattrs(&hp).ctx("read xattrs", &hp)?;
        if ft.is_dir() {
            b.add_dir(&rp, &meta)?;
            if is_opaque_dir(&hp) {
                b.add_opaque(&rp)?;
            }
            walk(b, &hp, &rp, links)?;
            continue;
        }
        if md.nlink() > 1 {
            let key = (md.dev(), md.ino());
            if let Some(first) = links.get(&key) {
                b.add_hardlink(&rp, first, &meta)?;
                continue;
            }
            links.insert(key, rp.clone());
        }
        if ft.is_file() {
            b.add_file(&rp, &hp, &meta)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&hp).ctx("read symlink", &hp)?;
            b.add_symlink(&rp, &target, &meta)?;
        } else if ft.is_fifo() {
            b.add_fifo(&rp, &meta)?;
        } else if ft.is_char_device() || ft.is_block_device() {
            let rdev = md.rdev();
            b.add_device(
                &rp,
                ft.is_block_device(),
                rustix::fs::major(rdev),
                rustix::fs::minor(rdev),
                &meta,
            )?;
        } else {
            tracing::warn!("skipping socket {} in layer", hp.display());
        }
    }
    Ok(())
}
