//! Fixtures over strata-oci's traits (feature `oci`).

use std::io::Read;

use strata_oci::{BlobSink, Digest, DigestWriter, Error};

/// A [`BlobSink`] that hashes what it is given, keeps nothing but the
/// digests and sizes, and checks nothing (so a reader's own checks are the
/// ones exercised).
#[derive(Default)]
pub struct DropSink {
    /// Each blob's digest and size, in the order given.
    pub seen: Vec<(Digest, u64)>,
}

impl BlobSink for DropSink {
    fn put_blob(
        &mut self,
        _expected: Option<&Digest>,
        _size: Option<u64>,
        data: &mut dyn Read,
    ) -> Result<Digest, Error> {
        let mut w = DigestWriter::new(std::io::sink());
        std::io::copy(data, &mut w).map_err(|e| Error::external("drop sink", e))?;
        let (_, d, n) = w.finish();
        self.seen.push((d.clone(), n));
        Ok(d)
    }
}
