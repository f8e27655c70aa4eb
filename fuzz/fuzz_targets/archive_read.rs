//! docker-archive / OCI-layout tar reader (`strata_oci::read_archive`)
//! with a sink that hashes and discards, so every check is the reader's
//! own. Any panic, hang or unbounded allocation is a bug.
#![no_main]

use std::io::{Cursor, Read};

use libfuzzer_sys::fuzz_target;
use strata_oci::{read_archive, BlobSink, Digest, DigestWriter, Error};

struct HashSink;

impl BlobSink for HashSink {
    fn put_blob(
        &mut self,
        _expected: Option<&Digest>,
        _size: Option<u64>,
        data: &mut dyn Read,
    ) -> Result<Digest, Error> {
        let mut w = DigestWriter::new(std::io::sink());
        std::io::copy(data, &mut w).map_err(|e| Error::external("hash sink", e))?;
        Ok(w.finish().1)
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(contents) = read_archive(Cursor::new(data), &mut HashSink) {
        for img in &contents.images {
            let _ = img.config.diff_ids();
            let _ = img.config.chain_ids();
            let _ = img.config.platform();
        }
    }
});
