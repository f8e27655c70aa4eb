//! Hostile and broken archives: clear errors, no panics.

use crate::common;

use std::io::Cursor;

use common::MemStore;
use strata_oci::{read_archive, Digest, Error};
use strata_test_support::oci::DropSink;

/// One raw tar entry: any name bytes, any declared size, any type.
fn entry(
    out: &mut Vec<u8>,
    name: &[u8],
    kind: tar::EntryType,
    declared: u64,
    data: &[u8],
    link: &[u8],
) {
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
    h.set_entry_type(kind);
    h.set_size(declared);
    h.set_mode(0o644);
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    let pad = (512 - data.len() % 512) % 512;
    out.extend(std::iter::repeat_n(0u8, pad));
}

fn file(out: &mut Vec<u8>, name: &str, data: &[u8]) {
    entry(
        out,
        name.as_bytes(),
        tar::EntryType::Regular,
        data.len() as u64,
        data,
        b"",
    );
}

fn end(mut out: Vec<u8>) -> Vec<u8> {
    out.extend(std::iter::repeat_n(0u8, 1024));
    out
}

fn read(tar: Vec<u8>) -> Error {
    let mut sink = DropSink::default();
    match read_archive(Cursor::new(tar), &mut sink) {
        Ok(c) => panic!("hostile archive accepted: {c:?}"),
        Err(e) => {
            eprintln!("refused as expected: {e}");
            e
        }
    }
}

#[test]
fn dot_dot_and_absolute_names() {
    let mut t = Vec::new();
    file(&mut t, "../evil", b"x");
    assert!(matches!(read(end(t)), Error::UnsafeEntry { .. }));
    let mut t = Vec::new();
    file(&mut t, "/etc/passwd", b"x");
    assert!(matches!(read(end(t)), Error::UnsafeEntry { .. }));
    let mut t = Vec::new();
    file(&mut t, "blobs/../../x", b"x");
    assert!(matches!(read(end(t)), Error::UnsafeEntry { .. }));
}

#[test]
fn non_utf8_name() {
    let mut t = Vec::new();
    entry(
        &mut t,
        b"abc\xff\xfe/layer.tar",
        tar::EntryType::Regular,
        1,
        b"x",
        b"",
    );
    assert!(matches!(read(end(t)), Error::UnsafeEntry { .. }));
}

#[test]
fn duplicate_entries() {
    let mut t = Vec::new();
    file(&mut t, "manifest.json", b"[]");
    file(&mut t, "./manifest.json", b"[]");
    assert!(matches!(read(end(t)), Error::DuplicateEntry { .. }));
}

#[test]
fn huge_declared_sizes() {
    // A blob claiming 1 TB with a few bytes behind it: truncated.
    let mut t = Vec::new();
    entry(
        &mut t,
        b"1111/layer.tar",
        tar::EntryType::Regular,
        1 << 40,
        b"short",
        b"",
    );
    let e = read(end(t));
    assert!(matches!(e, Error::Truncated { .. }), "{e}");
    // Metadata claiming more than we ever hold in memory.
    let mut t = Vec::new();
    entry(
        &mut t,
        b"manifest.json",
        tar::EntryType::Regular,
        1 << 40,
        b"[]",
        b"",
    );
    assert!(matches!(read(end(t)), Error::TooLarge { .. }));
}

#[test]
fn digest_mismatch() {
    let wrong = Digest::sha256_of(b"something else");
    let mut t = Vec::new();
    file(&mut t, &format!("blobs/sha256/{}", wrong.hex()), b"{}");
    assert!(matches!(read(end(t)), Error::DigestMismatch { .. }));
    let mut t = Vec::new();
    file(&mut t, "blobs/sha256/not-hex", b"{}");
    assert!(matches!(read(end(t)), Error::Invalid { .. }));
}

#[test]
fn missing_blobs() {
    let absent = Digest::sha256_of(b"absent");
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{absent}","size":10}}]}}"#
    );
    let mut t = Vec::new();
    file(&mut t, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    file(&mut t, "index.json", index.as_bytes());
    assert!(matches!(read(end(t)), Error::MissingBlob { .. }));

    let mut t = Vec::new();
    file(
        &mut t,
        "manifest.json",
        br#"[{"Config":"abc.json","RepoTags":null,"Layers":["x/layer.tar"]}]"#,
    );
    assert!(matches!(read(end(t)), Error::MissingEntry { .. }));
}

#[test]
fn escaping_symlink() {
    let mut t = Vec::new();
    entry(
        &mut t,
        b"1111/layer.tar",
        tar::EntryType::Symlink,
        0,
        b"",
        b"../../etc/passwd",
    );
    assert!(matches!(read(end(t)), Error::UnsafeEntry { .. }));
}

#[test]
fn symlink_loop_is_refused() {
    let mut store = MemStore::default();
    let cfg = strata_oci::Raw::from_value(strata_oci::ImageConfig::new_scratch());
    let mut t = Vec::new();
    file(&mut t, "c.json", cfg.bytes());
    // Claims one layer (config has none, but the loop is found first).
    entry(
        &mut t,
        b"a/layer.tar",
        tar::EntryType::Symlink,
        0,
        b"",
        b"../b/layer.tar",
    );
    entry(
        &mut t,
        b"b/layer.tar",
        tar::EntryType::Symlink,
        0,
        b"",
        b"../a/layer.tar",
    );
    file(
        &mut t,
        "manifest.json",
        br#"[{"Config":"c.json","Layers":[]}]"#,
    );
    // An empty image through links is fine...
    assert!(read_archive(Cursor::new(end(t.clone())), &mut store).is_ok());
    // ...a layer behind a link loop is not.
    let mut t2 = Vec::new();
    let mut config = strata_oci::ImageConfig::new_scratch();
    config.push_layer(Digest::sha256_of(b"l"), "x", None);
    let cfg = strata_oci::Raw::from_value(config);
    file(&mut t2, "c.json", cfg.bytes());
    entry(
        &mut t2,
        b"a/layer.tar",
        tar::EntryType::Symlink,
        0,
        b"",
        b"../b/layer.tar",
    );
    entry(
        &mut t2,
        b"b/layer.tar",
        tar::EntryType::Symlink,
        0,
        b"",
        b"../a/layer.tar",
    );
    file(
        &mut t2,
        "manifest.json",
        br#"[{"Config":"c.json","Layers":["a/layer.tar"]}]"#,
    );
    assert!(matches!(read(end(t2)), Error::UnsafeEntry { .. }));
}

#[test]
fn devices_and_garbage() {
    let mut t = Vec::new();
    entry(&mut t, b"dev", tar::EntryType::Char, 0, b"", b"");
    assert!(matches!(read(end(t)), Error::UnsafeEntry { .. }));
    assert!(matches!(read(Vec::new()), Error::NotAnArchive { .. }));
    let e = read(vec![0x5a; 4096]);
    assert!(
        matches!(e, Error::Io { .. } | Error::NotAnArchive { .. }),
        "{e}"
    );
    // Truncated gzip.
    let gz = common::gzip(&end(Vec::new()));
    read(gz[..gz.len() / 2].to_vec());
    // Invalid JSON in manifest.json.
    let mut t = Vec::new();
    file(&mut t, "manifest.json", b"{not json");
    assert!(matches!(read(end(t)), Error::Json { .. }));
}
