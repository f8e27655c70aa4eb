//! Tar plumbing shared by the archive readers and writers: transparent
//! gzip on input, entry-name checks, link resolution inside the archive,
//! a tee that counts, sniffs and keeps small JSON blobs, and a reader that
//! verifies a blob's size and digest while the writer streams it.

use std::io::{self, Cursor, Read};

use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
use crate::error::Error;

/// Wraps `input` in a gzip decoder when it starts with the gzip magic.
pub(crate) fn maybe_gunzip<'a>(mut input: impl Read + 'a) -> Result<Box<dyn Read + 'a>, Error> {
    let mut head = [0u8; 2];
    let mut n = 0;
    while n < head.len() {
        match input.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("reading the archive", e)),
        }
    }
    let rejoined = Cursor::new(head[..n].to_vec()).chain(input);
    if n == 2 && head == [0x1f, 0x8b] {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(rejoined)))
    } else {
        Ok(Box::new(rejoined))
    }
}

/// Checks and normalises a tar entry name: UTF-8, relative, no `..`;
/// `.` components and trailing slashes dropped.
pub(crate) fn normalise_entry_name(raw: &[u8]) -> Result<String, Error> {
    let lossy = || String::from_utf8_lossy(raw).into_owned();
    let name = std::str::from_utf8(raw).map_err(|_| Error::UnsafeEntry {
        entry: lossy(),
        why: "the name is not UTF-8",
    })?;
    if name.starts_with('/') {
        return Err(Error::UnsafeEntry {
            entry: lossy(),
            why: "absolute path",
        });
    }
    let mut parts = Vec::new();
    for comp in name.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                return Err(Error::UnsafeEntry {
                    entry: lossy(),
                    why: "the path contains '..'",
                })
            }
            c if c.contains('\0') => {
                return Err(Error::UnsafeEntry {
                    entry: lossy(),
                    why: "the name contains a NUL byte",
                })
            }
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

/// Resolves a link entry's target to an archive path. Symlink targets are
/// relative to the link's directory; hard-link targets to the archive root.
/// Targets leaving the archive are refused.
pub(crate) fn resolve_link_target(entry: &str, target: &[u8], hard: bool) -> Result<String, Error> {
    let unsafe_link = |why| Error::UnsafeEntry {
        entry: entry.to_string(),
        why,
    };
    let target =
        std::str::from_utf8(target).map_err(|_| unsafe_link("the link target is not UTF-8"))?;
    if target.starts_with('/') {
        return Err(unsafe_link("the link target is an absolute path"));
    }
    let mut parts: Vec<&str> = if hard {
        Vec::new()
    } else {
        let mut p: Vec<&str> = entry.split('/').collect();
        p.pop();
        p
    };
    for comp in target.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(unsafe_link("the link target points outside the archive"));
                }
            }
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

/// Reads through to the sink while counting, keeping the first bytes (to
/// sniff compression) and, for small JSON-looking blobs, a copy.
pub(crate) struct Tee<R> {
    inner: R,
    pub count: u64,
    pub head: Vec<u8>,
    cache: Option<Vec<u8>>,
    cache_limit: usize,
}

impl<R: Read> Tee<R> {
    /// Keeps a copy when the blob starts with `{` and is at most `cache_limit` bytes.
    pub(super) fn new(inner: R, size: u64, cache_limit: usize) -> Tee<R> {
        let cache = (size <= cache_limit as u64).then(Vec::new);
        Tee {
            inner,
            count: 0,
            head: Vec::with_capacity(4),
            cache,
            cache_limit,
        }
    }

    /// The kept copy, if the blob was JSON-looking and small.
    pub(super) fn into_cached(self) -> Option<Vec<u8>> {
        self.cache
            .filter(|c| c.first() == Some(&b'{') && c.len() <= self.cache_limit)
    }
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let got = &buf[..n];
        if self.head.len() < 4 {
            let take = (4 - self.head.len()).min(n);
            self.head.extend_from_slice(&got[..take]);
        }
        if let Some(c) = &mut self.cache {
            let not_json = self.count == 0 && n > 0 && got[0] != b'{';
            if not_json || c.len() + n > self.cache_limit {
                self.cache = None;
            } else {
                c.extend_from_slice(got);
            }
        }
        self.count += n as u64;
        Ok(n)
    }
}

/// Streams a blob from a source for a writer, failing the copy (and so
/// the tar entry) when it is shorter or longer than declared or its
/// digest differs.
pub(crate) struct VerifiedBlob<R> {
    inner: R,
    digest: Digest,
    size: u64,
    count: u64,
    hasher: Sha256,
    done: bool,
}

impl<R: Read> VerifiedBlob<R> {
    pub(super) fn new(inner: R, digest: Digest, size: u64) -> VerifiedBlob<R> {
        VerifiedBlob {
            inner,
            digest,
            size,
            count: 0,
            hasher: Sha256::new(),
            done: false,
        }
    }

    fn finish(&mut self) -> io::Result<()> {
        self.done = true;
        let mut probe = [0u8; 1];
        if self.inner.read(&mut probe)? > 0 {
            return Err(io::Error::other(format!(
                "blob {} is longer than its declared {} bytes",
                self.digest, self.size
            )));
        }
        let actual = hex::encode(self.hasher.clone().finalize());
        if actual != self.digest.hex() {
            return Err(io::Error::other(format!(
                "blob {} read back with digest sha256:{actual}; the source is corrupt",
                self.digest
            )));
        }
        Ok(())
    }
}

impl<R: Read> Read for VerifiedBlob<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        let want = (self.size - self.count).min(buf.len() as u64) as usize;
        if want == 0 {
            self.finish()?;
            return Ok(0);
        }
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "blob {} ended after {} of its declared {} bytes",
                    self.digest, self.count, self.size
                ),
            ));
        }
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// A deterministic header for a regular file entry.
pub(crate) fn file_header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

/// A deterministic header for a directory entry.
pub(crate) fn dir_header() -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_size(0);
    h.set_mode(0o755);
    h.set_mtime(0);
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names() {
        assert_eq!(
            normalise_entry_name(b"./blobs/sha256/ab/").unwrap(),
            "blobs/sha256/ab"
        );
        assert!(normalise_entry_name(b"../x").is_err());
        assert!(normalise_entry_name(b"a/../../x").is_err());
        assert!(normalise_entry_name(b"/etc/passwd").is_err());
        assert!(normalise_entry_name(b"a\xff").is_err());
    }

    #[test]
    fn links() {
        assert_eq!(
            resolve_link_target("b/layer.tar", b"../a/layer.tar", false).unwrap(),
            "a/layer.tar"
        );
        assert_eq!(
            resolve_link_target("b/layer.tar", b"a/layer.tar", true).unwrap(),
            "a/layer.tar"
        );
        assert!(resolve_link_target("b/layer.tar", b"../../etc/passwd", false).is_err());
        assert!(resolve_link_target("b/layer.tar", b"/etc/passwd", false).is_err());
    }

    #[test]
    fn verified_blob_catches_lies() {
        let data = b"hello".to_vec();
        let d = Digest::sha256_of(&data);
        let mut out = Vec::new();
        io::copy(&mut VerifiedBlob::new(&data[..], d.clone(), 5), &mut out).unwrap();
        assert_eq!(out, data);
        assert!(io::copy(
            &mut VerifiedBlob::new(&data[..], d.clone(), 4),
            &mut io::sink()
        )
        .is_err());
        assert!(io::copy(
            &mut VerifiedBlob::new(&data[..], d.clone(), 6),
            &mut io::sink()
        )
        .is_err());
        let other = Digest::sha256_of(b"x");
        assert!(io::copy(&mut VerifiedBlob::new(&data[..], other, 5), &mut io::sink()).is_err());
    }

    #[test]
    fn gunzips_by_magic() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"plain text").unwrap();
        let gz = gz.finish().unwrap();
        let mut s = String::new();
        maybe_gunzip(&gz[..])
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "plain text");
        s.clear();
        maybe_gunzip(&b"plain text"[..])
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "plain text");
    }
}
