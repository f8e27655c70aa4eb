//! `import`: a root filesystem tar (plain, gzip, zstd, bzip2 or xz) becomes one gzip
//! layer, in one streaming pass: decompress -> walk the tar (to refuse
//! what is not a tar) -> sha256 (diff ID) -> gzip on a helper thread ->
//! blob store. The tar's bytes are stored as they came, as `docker import`
//! does; entries are judged when a layer is applied, which is where the
//! store's safe extraction refuses `..` and links out of the root, except
//! names no filesystem can hold (over PATH_MAX or NAME_MAX), refused here.

use std::io::{self, BufReader, Read, Write};

use flate2::write::GzEncoder;
use flate2::Compression;
use strata_oci::{media_types, DigestWriter};

use super::{Result, TransferError};
use crate::blobs::BlobWriter;
use crate::diff::{decompressed, LayerInfo, DEFAULT_GZIP_LEVEL};
use crate::error::StoreError;
use crate::meta::Lease;
use crate::pipe::{self, PipeWriter};
use crate::store::Store;

/// Copies everything read from `inner` into `out` as well.
struct Tee<'a, R> {
    inner: R,
    out: &'a mut DigestWriter<PipeWriter>,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// Streams a rootfs tar into the store as one gzip layer (Docker's layer
/// media type); `what` names the input in errors.
pub fn import_layer(
    store: &Store,
    input: &mut dyn Read,
    what: &str,
    lease: Option<&Lease>,
) -> Result<LayerInfo> {
    let mut input = BufReader::with_capacity(256 * 1024, input);
    let blob = store.blobs().writer()?;
    let (pipe_w, compressor) = pipe::spawn("import-gzip", move |mut r| {
        let mut gz = GzEncoder::new(blob, Compression::new(DEFAULT_GZIP_LEVEL));
        io::copy(&mut r, &mut gz)?;
        gz.finish()
    })
    .map_err(|e| read_err("start the compressor thread", e))?;
    let mut hashed = DigestWriter::new(pipe_w);
    let walked = walk_tar(&mut input, &mut hashed, what);
    let (mut pipe_w, diff_id, uncompressed_size) = hashed.finish();
    let closed = pipe_w.close();
    drop(pipe_w);
    let blob: io::Result<BlobWriter> = compressor
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("compressor thread panicked")));
    walked?;
    closed.map_err(|e| read_err("compress the layer", e))?;
    let blob = blob.map_err(|e| read_err("compress the layer", e))?;
    let (digest, size) = blob.commit_leased(None, lease)?;
    Ok(LayerInfo {
        diff_id,
        digest,
        size,
        uncompressed_size,
        media_type: media_types::DOCKER_LAYER_TAR_GZIP.to_string(),
    })
}

/// Reads the whole (decompressed) tar through `out`, entry by entry.
fn walk_tar(input: &mut dyn Read, out: &mut DigestWriter<PipeWriter>, what: &str) -> Result<()> {
    let plain = decompressed(input)?;
    let mut tee = Tee { inner: plain, out };
    {
        let mut archive = tar::Archive::new(&mut tee);
        let entries = archive.entries().map_err(|e| not_tar(what, e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| not_tar(what, e))?;
            // As `load`: a layer no filesystem can unpack is refused now,
            // not at the first `run`.
            if let Some((name, why)) = super::sink::unpackable_entry(&entry) {
                return Err(TransferError::Invalid(format!(
                    "{what}: entry {name:?}: {why}; no filesystem can unpack it, refusing to import it"
                )));
            }
            io::copy(&mut entry, &mut io::sink()).map_err(|e| not_tar(what, e))?;
        }
    }
    // The end-of-archive blocks (and any padding) belong to the layer too.
    io::copy(&mut tee, &mut io::sink()).map_err(|e| read_err(what, e))?;
    Ok(())
}

fn not_tar(what: &str, e: io::Error) -> TransferError {
    TransferError::Invalid(format!(
        "{what} is not a valid (or is a truncated) tar archive: {e}"
    ))
}

fn read_err(what: &str, e: io::Error) -> TransferError {
    TransferError::Store(StoreError::IoOther {
        what: format!("read {what}"),
        cause: e,
    })
}
