//! A minimal streaming tar writer: ustar headers, with a PAX extended
//! header in front whenever a field does not fit (long names and link
//! names, sizes >= 8 GiB, large ids, out-of-range mtimes) or xattrs are
//! present (`SCHILY.xattr.*`, as GNU tar and Docker write them).
//! Data is streamed from a reader, never buffered whole.

use std::io::{self, Read, Write};

const BLOCK: usize = 512;
const MAX_OCTAL_7: u64 = 0o7777777; // uid/gid fields
const MAX_OCTAL_11: u64 = 0o77777777777; // size/mtime fields

/// What kind of entry to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink,
    Hardlink,
    Fifo,
    Char(u32, u32),
    Block(u32, u32),
}

/// One entry's header fields.
pub(crate) struct Head<'a> {
    /// Path inside the layer, no leading `/`; dirs without trailing `/`.
    pub path: &'a [u8],
    pub kind: Kind,
    /// Permission bits (incl. setuid/setgid/sticky).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: i64,
    pub size: u64,
    pub link: Option<&'a [u8]>,
    pub xattrs: &'a [(String, Vec<u8>)],
}

/// Streams tar entries into `W`.
pub(crate) struct TarOut<W: Write> {
    out: W,
    buf: Vec<u8>,
}

fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    // "<len> <key>=<value>\n", where <len> counts itself.
    let base = key.len() + value.len() + 3;
    let mut len = base + 1;
    while len != base + len.to_string().len() {
        len = base + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

fn octal(field: &mut [u8], v: u64) {
    // zero-padded octal with a trailing NUL, as GNU tar and Go write.
    let digits = field.len() - 1;
    let s = format!("{v:0digits$o}");
    let s = &s.as_bytes()[s.len().saturating_sub(digits)..];
    field[..digits].copy_from_slice(s);
    field[digits] = 0;
}

/// Splits a path into ustar (prefix, name) if it fits.
fn split_ustar(path: &[u8]) -> Option<(&[u8], &[u8])> {
    if path.len() <= 100 {
        return Some((&[], path));
    }
    // prefix <= 155, name <= 100, split at a '/'.
    for (i, &b) in path.iter().enumerate() {
        if b == b'/' && i <= 155 && path.len() - i - 1 <= 100 && path.len() - i > 1 {
            return Some((&path[..i], &path[i + 1..]));
        }
    }
    None
}

impl<W: Write> TarOut<W> {
    pub(super) fn new(out: W) -> TarOut<W> {
        TarOut {
            out,
            buf: Vec::new(),
        }
    }

    pub(super) fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// Writes one entry; `data` must yield exactly `head.size` bytes for files.
    pub(super) fn entry(&mut self, head: &Head<'_>, data: Option<&mut dyn Read>) -> io::Result<()> {
        let mut path = head.path.to_vec();
        if head.kind == Kind::Dir && !path.ends_with(b"/") {
            path.push(b'/');
        }
        let mut pax = Vec::new();
        let ustar_split = split_ustar(&path);
        if ustar_split.is_none() {
            pax_record(&mut pax, "path", &path);
        }
        if let Some(l) = head.link {
            if l.len() > 100 {
                pax_record(&mut pax, "linkpath", l);
            }
        }
        let size = if head.kind == Kind::File {
            head.size
        } else {
            0
        };
        if size > MAX_OCTAL_11 {
            pax_record(&mut pax, "size", size.to_string().as_bytes());
        }
        if head.uid > MAX_OCTAL_7 {
            pax_record(&mut pax, "uid", head.uid.to_string().as_bytes());
        }
        if head.gid > MAX_OCTAL_7 {
            pax_record(&mut pax, "gid", head.gid.to_string().as_bytes());
        }
        if head.mtime < 0 || head.mtime as u64 > MAX_OCTAL_11 {
            pax_record(&mut pax, "mtime", head.mtime.to_string().as_bytes());
        }
        for (k, v) in head.xattrs {
            pax_record(&mut pax, &format!("SCHILY.xattr.{k}"), v);
        }
        if !pax.is_empty() {
            let mut name = b"PaxHeaders/".to_vec();
            let tail = &path[path.len().saturating_sub(80)..];
            name.extend_from_slice(tail);
            name.retain(|&b| b != 0);
            name.truncate(100);
            let mut h = [0u8; BLOCK];
            self.header_block(
                &mut h,
                (&[], &name),
                b'x',
                0o644,
                0,
                0,
                0,
                pax.len() as u64,
                None,
                0,
                0,
            );
            self.out.write_all(&h)?;
            self.out.write_all(&pax)?;
            self.pad(pax.len() as u64)?;
        }
        let (prefix, name) = ustar_split.unwrap_or((&[], &path[..100.min(path.len())]));
        let (typ, maj, min) = match head.kind {
            Kind::File => (b'0', 0, 0),
            Kind::Hardlink => (b'1', 0, 0),
            Kind::Symlink => (b'2', 0, 0),
            Kind::Char(a, b) => (b'3', a, b),
            Kind::Block(a, b) => (b'4', a, b),
            Kind::Dir => (b'5', 0, 0),
            Kind::Fifo => (b'6', 0, 0),
        };
        let link = head.link.map(|l| &l[..l.len().min(100)]);
        let mut h = [0u8; BLOCK];
        self.header_block(
            &mut h,
            (prefix, name),
            typ,
            head.mode & 0o7777,
            head.uid.min(MAX_OCTAL_7),
            head.gid.min(MAX_OCTAL_7),
            head.mtime.clamp(0, MAX_OCTAL_11 as i64) as u64,
            size.min(MAX_OCTAL_11),
            link,
            maj,
            min,
        );
        self.out.write_all(&h)?;
        if size > 0 {
            let data = data.ok_or_else(|| io::Error::other("file entry without data"))?;
            self.copy_exact(data, size)?;
            self.pad(size)?;
        }
        Ok(())
    }

    fn copy_exact(&mut self, data: &mut dyn Read, size: u64) -> io::Result<()> {
        if self.buf.is_empty() {
            self.buf = vec![0u8; 256 * 1024];
        }
        let mut left = size;
        while left > 0 {
            let want = left.min(self.buf.len() as u64) as usize;
            let n = match data.read(&mut self.buf[..want]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("file is {} bytes shorter than its declared size", left),
                    ))
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.out.write_all(&self.buf[..n])?;
            left -= n as u64;
        }
        Ok(())
    }

    fn pad(&mut self, len: u64) -> io::Result<()> {
        let rem = (len % BLOCK as u64) as usize;
        if rem != 0 {
            self.out.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn header_block(
        &self,
        h: &mut [u8; BLOCK],
        (prefix, name): (&[u8], &[u8]),
        typ: u8,
        mode: u32,
        uid: u64,
        gid: u64,
        mtime: u64,
        size: u64,
        link: Option<&[u8]>,
        devmajor: u32,
        devminor: u32,
    ) {
        h[..name.len()].copy_from_slice(name);
        octal(&mut h[100..108], mode as u64);
        octal(&mut h[108..116], uid);
        octal(&mut h[116..124], gid);
        octal(&mut h[124..136], size);
        octal(&mut h[136..148], mtime);
        h[156] = typ;
        if let Some(l) = link {
            h[157..157 + l.len()].copy_from_slice(l);
        }
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        if matches!(typ, b'3' | b'4') {
            octal(&mut h[329..337], devmajor as u64);
            octal(&mut h[337..345], devminor as u64);
        }
        h[345..345 + prefix.len()].copy_from_slice(prefix);
        // checksum: computed with the checksum field as spaces
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| b as u32).sum();
        let s = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(s.as_bytes());
    }

    /// Writes the two zero blocks that end an archive and returns the writer.
    pub(super) fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0u8; BLOCK * 2])?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(path: &[u8], size: u64) -> Head<'_> {
        Head {
            path,
            kind: Kind::File,
            mode: 0o4755,
            uid: 3_000_000,
            gid: 5,
            mtime: 1_700_000_000,
            size,
            link: None,
            xattrs: &[],
        }
    }

    #[test]
    fn round_trips_through_the_tar_crate() {
        let long = format!("{}/file", "d".repeat(250));
        let mut t = TarOut::new(Vec::new());
        t.entry(&head(b"short", 3), Some(&mut &b"abc"[..])).unwrap();
        t.entry(&head(long.as_bytes(), 0), None).unwrap();
        let xattrs = vec![("user.k".to_string(), b"v\0bin".to_vec())];
        let ln = "t".repeat(150);
        t.entry(
            &Head {
                kind: Kind::Symlink,
                link: Some(ln.as_bytes()),
                xattrs: &xattrs,
                ..head(b"link", 0)
            },
            None,
        )
        .unwrap();
        let bytes = t.finish().unwrap();
        let mut a = tar::Archive::new(&bytes[..]);
        let mut seen = Vec::new();
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let path = e.path_bytes().into_owned();
            assert_eq!(e.header().uid().unwrap(), 3_000_000);
            assert_eq!(e.header().mode().unwrap(), 0o4755);
            if path == b"link" {
                assert_eq!(e.link_name_bytes().unwrap().as_ref(), ln.as_bytes());
                let pax: Vec<_> = e
                    .pax_extensions()
                    .unwrap()
                    .unwrap()
                    .map(|x| x.unwrap().key().unwrap().to_string())
                    .collect();
                assert!(pax.contains(&"SCHILY.xattr.user.k".to_string()));
            }
            seen.push(path);
        }
        assert_eq!(
            seen,
            vec![b"short".to_vec(), long.into_bytes(), b"link".to_vec()]
        );
    }
}
