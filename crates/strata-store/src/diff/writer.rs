//! `LayerBuilder`: writes a layer tar entry by entry, compresses it with
//! gzip and streams it into the blob store, hashing both streams on the way.
//!
//! Pipeline (one pass, flat memory):
//!
//! ```text
//! entries -> tar -> sha256 (diff ID) -> 1 MiB blocks -> [N threads] deflate
//!   -> [thread] in order: gzip header, blocks, trailer
//!   -> BlobWriter (sha256 = blob digest) -> ROOT/tmp -> blobs/
//! ```
//!
//! Tar building, compression (parallel, see [`super::pgzip`]) and writing
//! overlap; a bounded number of blocks is in flight.

use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};
use strata_oci::{Digest, DigestWriter};

use super::pgzip::ParallelGz;
use super::tarout::{Head, Kind, TarOut};
use super::whiteout::{OPAQUE_MARKER, WHITEOUT_PREFIX};
use crate::blobs::{BlobStore, BlobWriter};
use crate::error::{IoCtx, Result, StoreError};
use crate::meta::Lease;

/// gzip level: 1 is much faster than 6 and only a little larger on
/// typical layers (binaries, text); layers are built far more often than
/// they are pushed.
pub const DEFAULT_GZIP_LEVEL: u32 = 1;

/// Ownership, permissions, times and xattrs of one entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryMeta {
    /// Permission bits including setuid/setgid/sticky (file type bits ignored).
    pub mode: u32,
    /// Owner uid.
    pub uid: u64,
    /// Owner gid.
    pub gid: u64,
    /// Seconds since the epoch.
    pub mtime: i64,
    /// Extended attributes (name, value), written as PAX `SCHILY.xattr.*`.
    pub xattrs: Vec<(String, Vec<u8>)>,
}

impl EntryMeta {
    /// From an `lstat` result (xattrs not included).
    pub fn from_metadata(m: &std::fs::Metadata) -> EntryMeta {
        EntryMeta {
            mode: m.mode() & 0o7777,
            uid: m.uid() as u64,
            gid: m.gid() as u64,
            mtime: m.mtime(),
            xattrs: Vec::new(),
        }
    }
}

/// Options for building a layer.
#[derive(Clone, Debug)]
pub struct LayerOptions {
    /// gzip level 0-9.
    pub gzip_level: u32,
    /// SOURCE_DATE_EPOCH: mtimes later than this are clamped to it.
    pub mtime_clamp: Option<i64>,
    /// Media type recorded in the returned [`LayerInfo`].
    pub media_type: String,
}

impl Default for LayerOptions {
    fn default() -> Self {
        LayerOptions {
            gzip_level: DEFAULT_GZIP_LEVEL,
            mtime_clamp: None,
            media_type: strata_oci::media_types::OCI_LAYER_TAR_GZIP.to_string(),
        }
    }
}

/// The result of writing a layer: everything a manifest and config need.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInfo {
    /// sha256 of the uncompressed tar (goes into the config's rootfs).
    pub diff_id: Digest,
    /// sha256 of the compressed blob (goes into the manifest).
    pub digest: Digest,
    /// Compressed size.
    pub size: u64,
    /// Size of the uncompressed tar.
    pub uncompressed_size: u64,
    /// The blob's media type (compression).
    pub media_type: String,
}

impl LayerInfo {
    /// The matching layer-table / image record.
    pub fn to_record(&self) -> crate::meta::LayerRecord {
        crate::meta::LayerRecord {
            digest: self.digest.clone(),
            diff_id: self.diff_id.clone(),
            size: self.size,
            uncompressed_size: self.uncompressed_size,
            media_type: self.media_type.clone(),
        }
    }
}

/// Builds one layer from explicit entries (COPY/ADD, imports), or from an
/// overlay upper dir via [`super::LayerWriter`]. Entries are written in the
/// order given: give parents before children for a well-formed layer.
pub struct LayerBuilder {
    tar: TarOut<DigestWriter<LayerSink>>,
    compressor: Option<JoinHandle<io::Result<BlobWriter>>>,
    /// Written by [`LayerBuilder::uncompressed`]: no compressor, no blob.
    plain: bool,
    opts: LayerOptions,
    /// File bytes as Docker counts them (see
    /// [`crate::store::content_size_of_tar`]), noted at finish so that
    /// registering the layer needs no second read of it.
    content: u64,
}

/// Where a layer's tar goes: gzip into a blob of the store, or plain into
/// any writer (hashed only, or streamed to a reader; see
/// [`super::LayerWriter::digest_dir`]).
enum LayerSink {
    Gzip(ParallelGz),
    Plain(Box<dyn Write + Send>),
}

impl LayerSink {
    /// A stand-in that accepts nothing (for moving the real one out).
    fn closed() -> LayerSink {
        LayerSink::Gzip(ParallelGz::closed())
    }
}

impl Write for LayerSink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self {
            LayerSink::Gzip(gz) => gz.write(data),
            LayerSink::Plain(w) => w.write(data),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            LayerSink::Gzip(gz) => gz.flush(),
            LayerSink::Plain(w) => w.flush(),
        }
    }
}

/// Layer path bytes: no leading `/` or `./`.
fn layer_path(p: &Path) -> Result<Vec<u8>> {
    let mut b = p.as_os_str().as_bytes();
    loop {
        if let Some(r) = b.strip_prefix(b"/") {
            b = r;
        } else if let Some(r) = b.strip_prefix(b"./") {
            b = r;
        } else {
            break;
        }
    }
    while b.len() > 1 && b.ends_with(b"/") {
        b = &b[..b.len() - 1];
    }
    if b.is_empty() || b.contains(&0) {
        return Err(StoreError::Invalid(format!(
            "bad layer path {:?}",
            p.display()
        )));
    }
    Ok(b.to_vec())
}

impl LayerBuilder {
    /// Starts a layer written into a temp blob of `blobs`.
    pub fn new(blobs: &BlobStore, opts: LayerOptions) -> Result<LayerBuilder> {
        let blob = blobs.writer()?;
        let (gz, compressor) = ParallelGz::start(blob, opts.gzip_level)
            .what(|| "start the layer compressor threads".to_string())?;
        Ok(LayerBuilder {
            tar: TarOut::new(DigestWriter::new(LayerSink::Gzip(gz))),
            compressor: Some(compressor),
            plain: false,
            opts,
            content: 0,
        })
    }

    /// Starts a layer written as a plain tar into `out`, no blob: what
    /// [`finish`](Self::finish) returns names the tar itself (its digest
    /// is the diff ID, its media type the uncompressed one).
    pub fn uncompressed(out: Box<dyn Write + Send>, opts: LayerOptions) -> LayerBuilder {
        LayerBuilder {
            tar: TarOut::new(DigestWriter::new(LayerSink::Plain(out))),
            compressor: None,
            plain: true,
            opts,
            content: 0,
        }
    }

    fn mtime(&self, m: i64) -> i64 {
        match self.opts.mtime_clamp {
            Some(c) if m > c => c,
            _ => m,
        }
    }

    fn put(
        &mut self,
        path: &Path,
        kind: Kind,
        meta: &EntryMeta,
        size: u64,
        link: Option<&[u8]>,
        data: Option<&mut dyn Read>,
    ) -> Result<()> {
        let p = layer_path(path)?;
        self.content += match kind {
            Kind::File => size,
            Kind::Symlink => link.map_or(0, |l| l.len() as u64),
            _ => 0,
        };
        let head = Head {
            path: &p,
            kind,
            mode: meta.mode,
            uid: meta.uid,
            gid: meta.gid,
            mtime: self.mtime(meta.mtime),
            size,
            link,
            xattrs: &meta.xattrs,
        };
        let r = match self.tar.entry(&head, data) {
            // The compressor thread ended first (e.g. the disk is full):
            // its error is the real one, not the closed channel. The
            // channel is closed only once it returned, so join is prompt.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe && self.compressor.is_some() => {
                match self.compressor.take().map(JoinHandle::join) {
                    Some(Ok(Err(ce))) => Err(io::Error::new(
                        ce.kind(),
                        format!("writing the layer blob into the store: {ce}"),
                    )),
                    _ => Err(e),
                }
            }
            r => r,
        };
        r.what(|| format!("write layer entry {}", path.display()))
    }

    /// Adds a directory entry.
    pub fn add_dir(&mut self, path: &Path, meta: &EntryMeta) -> Result<()> {
        self.put(path, Kind::Dir, meta, 0, None, None)
    }

    /// Adds a regular file with the contents of `from` (its size at open);
    /// `from` must be a regular file itself (not a symlink to one).
    pub fn add_file(&mut self, path: &Path, from: &Path, meta: &EntryMeta) -> Result<()> {
        // Checked by the caller with lstat; opened without following and
        // refused unless still a regular file (a FIFO swapped in would
        // block the read forever).
        let mut f = crate::safe_path::open_regular(from, false).ctx("open file for layer", from)?;
        let size = f.metadata().ctx("stat file for layer", from)?.len();
        self.put(path, Kind::File, meta, size, None, Some(&mut f))
            .map_err(|e| match e {
                StoreError::IoOther { cause, .. } => StoreError::Io {
                    op: "add file to layer",
                    path: from.to_path_buf(),
                    cause,
                },
                e => e,
            })
    }

    /// Adds a regular file of exactly `size` bytes read from `data`.
    pub fn add_file_reader(
        &mut self,
        path: &Path,
        data: &mut dyn Read,
        size: u64,
        meta: &EntryMeta,
    ) -> Result<()> {
        self.put(path, Kind::File, meta, size, None, Some(data))
    }

    /// Adds a symlink entry pointing to `target`.
    pub fn add_symlink(&mut self, path: &Path, target: &Path, meta: &EntryMeta) -> Result<()> {
        let t = target.as_os_str().as_bytes();
        self.put(path, Kind::Symlink, meta, 0, Some(t), None)
    }

    /// A hard link to `target`, an earlier entry of this layer.
    pub fn add_hardlink(&mut self, path: &Path, target: &Path, meta: &EntryMeta) -> Result<()> {
        let t = layer_path(target)?;
        self.put(path, Kind::Hardlink, meta, 0, Some(&t), None)
    }

    /// Adds a FIFO entry.
    pub fn add_fifo(&mut self, path: &Path, meta: &EntryMeta) -> Result<()> {
        self.put(path, Kind::Fifo, meta, 0, None, None)
    }

    /// A device node (only from trusted sources: apply never creates them).
    pub fn add_device(
        &mut self,
        path: &Path,
        block: bool,
        major: u32,
        minor: u32,
        meta: &EntryMeta,
    ) -> Result<()> {
        let kind = if block {
            Kind::Block(major, minor)
        } else {
            Kind::Char(major, minor)
        };
        self.put(path, kind, meta, 0, None, None)
    }

    /// Marks `path` deleted (a `.wh.NAME` entry in its parent).
    pub fn add_whiteout(&mut self, path: &Path) -> Result<()> {
        let p = layer_path(path)?;
        let (dir, name) = match p.iter().rposition(|&b| b == b'/') {
            Some(i) => (&p[..i + 1], &p[i + 1..]),
            None => (&b""[..], &p[..]),
        };
        let mut wh = dir.to_vec();
        wh.extend_from_slice(WHITEOUT_PREFIX.as_bytes());
        wh.extend_from_slice(name);
        let meta = EntryMeta {
            mode: 0o644,
            ..Default::default()
        };
        let wh = std::ffi::OsStr::from_bytes(&wh).to_owned();
        self.put(Path::new(&wh), Kind::File, &meta, 0, None, None)
    }

    /// Marks directory `dir` opaque (lower layers' contents hidden).
    pub fn add_opaque(&mut self, dir: &Path) -> Result<()> {
        let meta = EntryMeta {
            mode: 0o644,
            ..Default::default()
        };
        let p = dir.join(OPAQUE_MARKER);
        self.put(&p, Kind::File, &meta, 0, None, None)
    }

    /// Ends the tar, waits for compression and publishes the blob.
    pub fn finish(self) -> Result<LayerInfo> {
        self.finish_leased(None)
    }

    /// Like [`finish`](Self::finish), protecting the blob with `lease`.
    pub fn finish_leased(mut self, lease: Option<&Lease>) -> Result<LayerInfo> {
        let tar = std::mem::replace(
            &mut self.tar,
            TarOut::new(DigestWriter::new(LayerSink::closed())),
        );
        let ended = tar.finish().and_then(|mut dw| {
            dw.flush()?;
            Ok(dw)
        });
        if self.plain {
            let (_, diff_id, n) = ended.what(|| "write layer".to_string())?.finish();
            crate::store::note_content_size(&diff_id, self.content);
            return Ok(LayerInfo {
                digest: diff_id.clone(),
                diff_id,
                size: n,
                uncompressed_size: n,
                media_type: strata_oci::media_types::OCI_LAYER_TAR.to_string(),
            });
        }
        let Some(compressor) = self.compressor.take() else {
            return Err(StoreError::Invalid(
                "layer builder used after its blob writer failed".into(),
            ));
        };
        let (diff_id, uncompressed_size) = match ended {
            Ok(dw) => {
                let (sink, diff_id, n) = dw.finish();
                let LayerSink::Gzip(mut gz) = sink else {
                    unreachable!("plain layers returned above")
                };
                // The last block; closing the stream ends the writer thread.
                if let Err(e) = gz.finish() {
                    let joined = compressor.join();
                    return Err(match joined {
                        Ok(Err(ce)) => ce,
                        _ => e,
                    })
                    .what(|| "write layer".to_string());
                }
                (diff_id, n)
            }
            Err(e) => {
                let joined = compressor.join();
                return Err(match joined {
                    Ok(Err(ce)) => ce,
                    _ => e,
                })
                .what(|| "write layer".to_string());
            }
        };
        let blob = compressor
            .join()
            .map_err(|_| StoreError::Invalid("layer compressor thread panicked".into()))?
            .what(|| "compress layer".to_string())?;
        let (digest, size) = blob.commit_leased(None, lease)?;
        crate::store::note_content_size(&diff_id, self.content);
        Ok(LayerInfo {
            diff_id,
            digest,
            size,
            uncompressed_size,
            media_type: self.opts.media_type.clone(),
        })
    }
}

impl Drop for LayerBuilder {
    fn drop(&mut self) {
        // Stop the workers and close the stream so an unfinished writer
        // thread ends; its BlobWriter is dropped with it, deleting the temp
        // file (the stream it wrote lacks its trailer, and is never
        // committed).
        *self.tar.get_mut().get_mut() = LayerSink::closed();
        if let Some(c) = self.compressor.take() {
            let _ = c.join();
        }
    }
}

/// gzips `from` (the plain layer tar `source`, as
/// [`crate::Snapshotter::open_layer`] reads it) into a new blob, in
/// parallel (see `pgzip`); returns the new blob's digest and size. `push`
/// uses it for layers the store keeps uncompressed (docker-archive loads,
/// built layers).
pub fn gzip_blob(
    blobs: &BlobStore,
    source: &Digest,
    from: &mut dyn Read,
    level: u32,
    lease: Option<&Lease>,
) -> Result<(Digest, u64)> {
    let (mut gz, writer) = ParallelGz::start(blobs.writer()?, level)
        .what(|| "start the layer compressor threads".to_string())?;
    let copied = io::copy(from, &mut gz).and_then(|_| gz.finish());
    drop(gz);
    let joined = writer
        .join()
        .map_err(|_| StoreError::Invalid("layer compressor thread panicked".into()))?;
    // A writer error (disk full) is the cause of a failed copy.
    let blob = joined.what(|| format!("compress blob {source}"))?;
    copied.what(|| format!("compress blob {source}"))?;
    blob.commit_leased(None, lease)
}
