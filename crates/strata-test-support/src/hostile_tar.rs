//! Tar streams that no well-behaved tar writer would make: names with `..`,
//! absolute paths, links out of the tree, lying sizes, device nodes, GNU and
//! PAX long names. The `tar` crate validates paths when it writes, so the
//! headers here are filled in byte by byte.

/// One raw tar entry. Names and link targets are bytes, so they can carry
/// anything (newlines, invalid UTF-8, NUL).
pub enum Entry<'a> {
    /// A regular file (name, content), mode 0644.
    File(&'a [u8], &'a [u8]),
    /// A directory, mode 0755.
    Dir(&'a [u8]),
    /// A symbolic link (name, target).
    Symlink(&'a [u8], &'a [u8]),
    /// A hard link (name, target).
    Hardlink(&'a [u8], &'a [u8]),
    /// A character device (name, major, minor).
    Char(&'a [u8], u32, u32),
    /// A regular file whose header declares this many bytes but which
    /// carries five (`short`).
    Liar(&'a [u8], u64),
    /// A regular file named through a GNU long-name entry (for names over
    /// 100 bytes); the header's own name is `long`.
    LongFile(Vec<u8>, &'a [u8]),
    /// A regular file named through a PAX `path` record (which can carry
    /// anything); the header's own name is `placeholder`.
    PaxPath(&'a [u8], &'a [u8]),
}

/// The tar stream of `entries`, in order, each owned by root with mtime 0,
/// ending with the two zero blocks.
pub fn raw_tar(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let (name, typ, link, data, size): (&[u8], tar::EntryType, &[u8], &[u8], u64) = match e {
            Entry::File(n, d) => (n, tar::EntryType::Regular, b"", d, d.len() as u64),
            Entry::Dir(n) => (n, tar::EntryType::Directory, b"", b"", 0),
            Entry::Symlink(n, t) => (n, tar::EntryType::Symlink, t, b"", 0),
            Entry::Hardlink(n, t) => (n, tar::EntryType::Link, t, b"", 0),
            Entry::Char(n, _, _) => (n, tar::EntryType::Char, b"", b"", 0),
            Entry::Liar(n, s) => (n, tar::EntryType::Regular, b"", b"short", *s),
            Entry::LongFile(n, d) => {
                push_gnu_long_name(&mut out, n);
                (b"long", tar::EntryType::Regular, b"", d, d.len() as u64)
            }
            Entry::PaxPath(n, d) => {
                push_pax_path(&mut out, n);
                (
                    b"placeholder",
                    tar::EntryType::Regular,
                    b"",
                    d,
                    d.len() as u64,
                )
            }
        };
        let mut h = tar::Header::new_gnu();
        let g = h.as_gnu_mut().expect("a GNU header");
        g.name[..name.len()].copy_from_slice(name);
        g.linkname[..link.len()].copy_from_slice(link);
        h.set_entry_type(typ);
        h.set_mode(if typ == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_size(size);
        h.set_mtime(0);
        if let Entry::Char(_, major, minor) = e {
            h.set_device_major(*major).expect("a device number");
            h.set_device_minor(*minor).expect("a device number");
        }
        push_header(&mut out, &mut h, data);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// Appends `h` (owner root, checksum set) and `data`, padded to a block.
fn push_header(out: &mut Vec<u8>, h: &mut tar::Header, data: &[u8]) {
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

/// A GNU `././@LongLink` entry naming the next header `name`.
fn push_gnu_long_name(out: &mut Vec<u8>, name: &[u8]) {
    let mut l = tar::Header::new_gnu();
    l.as_gnu_mut().expect("a GNU header").name[..13].copy_from_slice(b"././@LongLink");
    l.set_entry_type(tar::EntryType::GNULongName);
    let mut name = name.to_vec();
    name.push(0);
    l.set_size(name.len() as u64);
    l.set_mode(0o644);
    push_header(out, &mut l, &name);
}

/// A PAX extended header whose `path` record names the next header `name`.
fn push_pax_path(out: &mut Vec<u8>, name: &[u8]) {
    let body = [b"path=".as_slice(), name, b"\n"].concat();
    // The record's length counts its own decimal digits.
    let mut len = body.len() + 2;
    while len != body.len() + 1 + len.to_string().len() {
        len = body.len() + 1 + len.to_string().len();
    }
    let mut rec = format!("{len} ").into_bytes();
    rec.extend_from_slice(&body);
    assert_eq!(rec.len(), len);
    let mut x = tar::Header::new_ustar();
    x.set_path("pax").expect("a plain name");
    x.set_entry_type(tar::EntryType::XHeader);
    x.set_size(rec.len() as u64);
    push_header(out, &mut x, &rec);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The entries read back by the `tar` crate with the names, types and
    /// link targets given (so the hand-made headers are well-formed).
    #[test]
    fn entries_read_back_as_written() {
        let long = vec![b'n'; 150];
        let t = raw_tar(&[
            Entry::Dir(b"d"),
            Entry::File(b"d/f", b"hi"),
            Entry::Symlink(b"s", b"../x"),
            Entry::Hardlink(b"h", b"d/f"),
            Entry::Char(b"c", 1, 3),
            Entry::LongFile(long.clone(), b"l"),
            Entry::PaxPath(b"p/q", b"x"),
        ]);
        let mut a = tar::Archive::new(&t[..]);
        let got: Vec<(Vec<u8>, tar::EntryType, Option<Vec<u8>>)> = a
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let link = e.link_name_bytes().map(|l| l.into_owned());
                (e.path_bytes().into_owned(), e.header().entry_type(), link)
            })
            .collect();
        let names: Vec<&[u8]> = got.iter().map(|g| g.0.as_slice()).collect();
        assert_eq!(
            names,
            [&b"d"[..], b"d/f", b"s", b"h", b"c", &long[..], b"p/q"]
        );
        assert_eq!(got[2].1, tar::EntryType::Symlink);
        assert_eq!(got[2].2.as_deref(), Some(&b"../x"[..]));
        assert_eq!(got[4].1, tar::EntryType::Char);
    }
}
