//! Reading a `docker save`-style archive and flattening its layers into one
//! in-memory model of the final filesystem, so that two images built by
//! different builders can be compared path by path.
//!
//! Both layouts of the archive are accepted, because the manifest names the
//! layer files either way: Docker 20.10's legacy `<id>/layer.tar`, and the
//! newer `blobs/sha256/<digest>` that strata (and Docker 25+) may write.
//! Layer files may be plain, gzip or zstd tar streams (detected by magic).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use sha2::{Digest, Sha256};

/// What a path is, as far as an image's consumer can tell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink(String),
    CharDev(u32, u32),
    BlockDev(u32, u32),
    Fifo,
}

/// One path of the flattened filesystem. Mtimes are deliberately absent:
/// builders never agree on them and nothing at run time depends on them.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub kind: Kind,
    /// Permission bits including setuid, setgid and sticky (`& 0o7777`).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    /// sha256 of the content, regular files only.
    pub sha256: Option<String>,
    /// Identity of the inode: paths hard-linked together share it.
    pub inode: u64,
    /// A parent directory that no layer described (only implied by a path).
    pub implicit: bool,
}

/// Path (relative, no leading slash, "" for the root) -> entry.
pub(crate) type Fs = BTreeMap<String, Entry>;

/// An image read back from an archive: its config JSON and flattened files.
pub(crate) struct Image {
    pub config: Value,
    pub fs: Fs,
}

/// Reads the first image of `archive` and flattens it. The archive is read
/// in place (members by offset, nothing unpacked to disk); the flattened
/// first layer is kept per diff ID for the whole test run, since every case
/// of a suite starts from the same base layer.
pub(crate) fn read_archive(archive: &Path) -> Result<Image, String> {
    let members = index_members(archive)?;
    let read_member = |name: &str| -> Result<Vec<u8>, String> {
        let mut buf = Vec::new();
        open_member(archive, &members, name)?
            .read_to_end(&mut buf)
            .map_err(|e| format!("read {name} in {}: {e}", archive.display()))?;
        Ok(buf)
    };
    let parse = |name: &str| -> Result<Value, String> {
        serde_json::from_slice(&read_member(name)?)
            .map_err(|e| format!("parse {name} in {}: {e}", archive.display()))
    };
    let manifest = parse("manifest.json")?;
    let first = manifest
        .get(0)
        .ok_or_else(|| format!("{}: manifest.json has no image", archive.display()))?;
    let config_path = first["Config"]
        .as_str()
        .ok_or("manifest.json: Config is not a string")?;
    let config = parse(config_path)?;
    let layers = first["Layers"]
        .as_array()
        .ok_or("manifest.json: Layers is not a list")?;
    let diff_ids: Vec<&str> = config["rootfs"]["diff_ids"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut fs = Fs::new();
    let mut next_inode = 1;
    for (i, layer) in layers.iter().enumerate() {
        let rel = layer
            .as_str()
            .ok_or("manifest.json: a layer is not a string")?;
        let apply = |fs: &mut Fs, next_inode: &mut u64| -> Result<(), String> {
            let reader = decompress(open_member(archive, &members, rel)?, rel)?;
            apply_layer(fs, reader, next_inode).map_err(|e| format!("layer {rel}: {e}"))
        };
        match (i, diff_ids.first()) {
            (0, Some(id)) if diff_ids.len() == layers.len() => {
                let cached = FIRST_LAYERS.lock().unwrap().get(*id).cloned();
                let (base, inode) = match cached {
                    Some(c) => c,
                    None => {
                        apply(&mut fs, &mut next_inode)?;
                        let made = Arc::new(fs.clone());
                        FIRST_LAYERS
                            .lock()
                            .unwrap()
                            .insert(id.to_string(), (made.clone(), next_inode));
                        (made, next_inode)
                    }
                };
                fs = (*base).clone();
                next_inode = inode;
            }
            _ => apply(&mut fs, &mut next_inode)?,
        }
    }
    Ok(Image { config, fs })
}

/// Flattened first layers by diff ID (a diff ID names the uncompressed
/// layer's content, so equal IDs flatten equally), with the next free inode.
static FIRST_LAYERS: Mutex<BTreeMap<String, (Arc<Fs>, u64)>> = Mutex::new(BTreeMap::new());

/// Where each regular file (and the target of each symlink) of the outer
/// archive is: normalised path -> (data offset, size) or a link target.
enum Member {
    Data(u64, u64),
    Link(String),
}

fn index_members(archive: &Path) -> Result<BTreeMap<String, Member>, String> {
    let file = File::open(archive).map_err(|e| format!("open {}: {e}", archive.display()))?;
    let mut tar = tar::Archive::new(file);
    let mut members = BTreeMap::new();
    let entries = tar
        .entries_with_seek()
        .map_err(|e| format!("read {}: {e}", archive.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("read {}: {e}", archive.display()))?;
        let path = normalize(&String::from_utf8_lossy(&entry.path_bytes()));
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name_bytes()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            // Symlinks are relative to their directory, hard links to the root.
            let target = if kind.is_symlink() && !target.starts_with('/') {
                normalize(&join(parent(&path).unwrap_or(""), &target))
            } else {
                normalize(&target)
            };
            members.insert(path, Member::Link(target));
        } else if kind.is_file() {
            members.insert(path, Member::Data(entry.raw_file_position(), entry.size()));
        }
    }
    Ok(members)
}

/// A reader over one member of the outer archive, links followed.
fn open_member(
    archive: &Path,
    members: &BTreeMap<String, Member>,
    name: &str,
) -> Result<BufReader<std::io::Take<File>>, String> {
    let mut name = normalize(name);
    for _ in 0..8 {
        match members.get(&name) {
            Some(Member::Data(offset, size)) => {
                let mut f =
                    File::open(archive).map_err(|e| format!("open {}: {e}", archive.display()))?;
                f.seek(SeekFrom::Start(*offset))
                    .map_err(|e| format!("seek {}: {e}", archive.display()))?;
                return Ok(BufReader::with_capacity(1 << 16, f.take(*size)));
            }
            Some(Member::Link(target)) => name = normalize_dots(target),
            None => break,
        }
    }
    Err(format!("{}: no member {name}", archive.display()))
}

/// Resolves `..` in a normalised path.
fn normalize_dots(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            ".." => {
                out.pop();
            }
            "" | "." => {}
            p => out.push(p),
        }
    }
    out.join("/")
}

/// Undoes gzip or zstd compression of a layer when its first bytes say so
/// (archives do not tell the compression in the file name).
fn decompress<R: BufRead + 'static>(mut reader: R, path: &str) -> Result<Box<dyn Read>, String> {
    let magic = reader.fill_buf().map_err(|e| format!("read {path}: {e}"))?;
    Ok(if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(reader))
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let dec = ruzstd::decoding::StreamingDecoder::new(reader)
            .map_err(|e| format!("zstd {path}: {e}"))?;
        Box::new(dec)
    } else {
        Box::new(reader)
    })
}

/// Normalises a tar path: no `./`, no leading or trailing slash.
pub(crate) fn normalize(path: &str) -> String {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    parts.join("/")
}

fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    Some(path.rfind('/').map_or("", |i| &path[..i]))
}

/// One tar member, read and hashed, waiting to be applied.
struct LayerMember {
    path: String,
    entry: Entry,
    /// For hard links: the path (normalised) this member links to.
    hardlink_to: Option<String>,
}

/// Applies one layer on top of `fs` with the OCI/Docker whiteout rules.
///
/// Whiteouts of a layer apply to the layers below it only, wherever the
/// marker sits in the tar stream, so the layer is read in full first (content
/// is hashed, not kept) and its whiteouts are applied before its entries.
fn apply_layer(fs: &mut Fs, reader: impl Read, next_inode: &mut u64) -> Result<(), String> {
    let mut members = Vec::new();
    let mut whiteouts = Vec::new();
    let mut opaques = Vec::new();
    let mut archive = tar::Archive::new(reader);
    for item in archive.entries().map_err(|e| e.to_string())? {
        let mut item = item.map_err(|e| e.to_string())?;
        let raw_path = String::from_utf8_lossy(&item.path_bytes()).into_owned();
        let path = normalize(&raw_path);
        let name = path.rsplit('/').next().unwrap_or("");
        let dir = parent(&path).unwrap_or("");
        if name == ".wh..wh..opq" {
            opaques.push(dir.to_string());
            continue;
        }
        if let Some(victim) = name.strip_prefix(".wh.") {
            whiteouts.push(join(dir, victim));
            continue;
        }
        members.push(read_member(&mut item, path)?);
    }
    for dir in &opaques {
        remove_children(fs, dir);
    }
    for victim in &whiteouts {
        remove_children(fs, victim);
        fs.remove(victim);
    }
    for m in members {
        add_member(fs, m, next_inode)?;
    }
    Ok(())
}

fn read_member<R: Read>(item: &mut tar::Entry<R>, path: String) -> Result<LayerMember, String> {
    let header = item.header();
    let mode = header.mode().map_err(|e| format!("{path}: mode: {e}"))? & 0o7777;
    let uid = header.uid().map_err(|e| format!("{path}: uid: {e}"))?;
    let gid = header.gid().map_err(|e| format!("{path}: gid: {e}"))?;
    let dev = || {
        (
            header.device_major().ok().flatten().unwrap_or(0),
            header.device_minor().ok().flatten().unwrap_or(0),
        )
    };
    let link_name = || {
        item.link_name_bytes()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    let entry_type = header.entry_type();
    let mut hardlink_to = None;
    let kind = match entry_type {
        tar::EntryType::Directory => Kind::Dir,
        tar::EntryType::Symlink => Kind::Symlink(link_name()),
        tar::EntryType::Link => {
            hardlink_to = Some(normalize(&link_name()));
            Kind::File
        }
        tar::EntryType::Char => Kind::CharDev(dev().0, dev().1),
        tar::EntryType::Block => Kind::BlockDev(dev().0, dev().1),
        tar::EntryType::Fifo => Kind::Fifo,
        t if t.is_file() => Kind::File,
        other => return Err(format!("{path}: unsupported tar entry type {other:?}")),
    };
    let (size, sha256) = if kind == Kind::File && hardlink_to.is_none() {
        let mut hasher = Sha256::new();
        let size = std::io::copy(item, &mut hasher).map_err(|e| format!("{path}: {e}"))?;
        (size, Some(hex::encode(hasher.finalize())))
    } else {
        (0, None)
    };
    Ok(LayerMember {
        path,
        entry: Entry {
            kind,
            mode,
            uid,
            gid,
            size,
            sha256,
            inode: 0,
            implicit: false,
        },
        hardlink_to,
    })
}

fn add_member(fs: &mut Fs, m: LayerMember, next_inode: &mut u64) -> Result<(), String> {
    if m.path.is_empty() {
        // The root directory itself: builders disagree on whether to list it
        // and a Dockerfile cannot change it without RUN chmod /; ignored.
        return Ok(());
    }
    ensure_parents(fs, &m.path);
    let mut entry = m.entry;
    if let Some(target) = &m.hardlink_to {
        // A hard link shares the target's inode: its content and metadata.
        let t = fs
            .get(target)
            .ok_or_else(|| format!("{}: hard link to missing {target}", m.path))?;
        entry = Entry {
            implicit: false,
            ..t.clone()
        };
    } else {
        entry.inode = *next_inode;
        *next_inode += 1;
    }
    // Extraction semantics (as Docker's applyLayer): a directory over a
    // directory only updates its metadata and keeps the children; anything
    // else replaces the old path entirely.
    let merge_dir = entry.kind == Kind::Dir && fs.get(&m.path).is_some_and(|e| e.kind == Kind::Dir);
    if !merge_dir {
        remove_children(fs, &m.path);
    }
    fs.insert(m.path, entry);
    Ok(())
}

/// Parents that a layer implies without listing: they keep what the lower
/// layers said; a parent no layer ever described is a root-owned 0755 dir
/// marked implicit (that is how both Docker and BuildKit create them).
fn ensure_parents(fs: &mut Fs, path: &str) {
    let mut p = parent(path);
    while let Some(dir) = p {
        if dir.is_empty() {
            break;
        }
        match fs.get(dir) {
            Some(e) if e.kind == Kind::Dir => {}
            // Missing, or not a directory (a file has no children to drop):
            // becomes the implicit directory.
            _ => {
                fs.insert(
                    dir.to_string(),
                    Entry {
                        kind: Kind::Dir,
                        mode: 0o755,
                        uid: 0,
                        gid: 0,
                        size: 0,
                        sha256: None,
                        inode: 0,
                        implicit: true,
                    },
                );
            }
        }
        p = parent(dir);
    }
}

fn remove_children(fs: &mut Fs, dir: &str) {
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    let doomed: Vec<String> = fs
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(k, _)| k.clone())
        .filter(|k| !k.is_empty())
        .collect();
    for k in doomed {
        fs.remove(&k);
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Paths grouped by inode, for inodes with more than one name: the hard-link
/// groups, independent of which name the tar stored first.
pub(crate) fn hardlink_groups(fs: &Fs) -> BTreeMap<String, Vec<String>> {
    let mut by_inode: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for (path, e) in fs {
        if e.kind == Kind::File && e.inode != 0 {
            by_inode.entry(e.inode).or_default().push(path.clone());
        }
    }
    let mut groups = BTreeMap::new();
    for paths in by_inode.into_values().filter(|p| p.len() > 1) {
        for p in &paths {
            groups.insert(p.clone(), paths.clone());
        }
    }
    groups
}

/// The flattening rules on hand-made layers: no Docker needed, so these run
/// (and catch harness regressions) even where dockerd is absent.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::compat::diff::{diff_fs, Exceptions, Report};

    /// (path, kind, mode, payload): kind 'f' file (payload = content),
    /// 'd' dir, 'l' symlink and 'h' hard link (payload = target), 'w' a
    /// plain empty file (whiteout markers).
    type Spec<'a> = (&'a str, char, u32, &'a str);

    fn layer(entries: &[Spec]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, mode, payload) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_mode(*mode);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_size(0);
            let data: &[u8] = match kind {
                'f' => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(payload.len() as u64);
                    payload.as_bytes()
                }
                'w' => {
                    h.set_entry_type(tar::EntryType::Regular);
                    &[]
                }
                'd' => {
                    h.set_entry_type(tar::EntryType::Directory);
                    &[]
                }
                'l' | 'h' => {
                    let t = if *kind == 'l' {
                        tar::EntryType::Symlink
                    } else {
                        tar::EntryType::Link
                    };
                    h.set_entry_type(t);
                    h.set_link_name(payload).unwrap();
                    &[]
                }
                _ => unreachable!(),
            };
            b.append_data(&mut h, path, data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn flatten(layers: &[&[Spec]]) -> Fs {
        let mut fs = Fs::new();
        let mut inode = 1;
        for l in layers {
            apply_layer(&mut fs, &layer(l)[..], &mut inode).unwrap();
        }
        fs
    }

    fn diffs(a: &Fs, b: &Fs) -> Vec<String> {
        let mut r = Report::default();
        diff_fs(a, b, &Exceptions::default(), &mut r);
        r.diffs
    }

    #[test]
    fn whiteouts_and_opaque_dirs_hide_lower_layers_only() {
        let fs = flatten(&[
            &[
                ("d/a", 'f', 0o644, "a"),
                ("d/sub/c", 'f', 0o644, "c"),
                ("x", 'f', 0o644, "x"),
            ],
            // The opaque marker after the new entry: it still hides only the
            // lower layer's children, not d/new.
            &[
                ("d/new", 'f', 0o644, "n"),
                ("d/.wh..wh..opq", 'w', 0, ""),
                (".wh.x", 'w', 0, ""),
            ],
        ]);
        let paths: Vec<&str> = fs.keys().map(String::as_str).collect();
        assert_eq!(paths, ["d", "d/new"]);
    }

    #[test]
    fn replacing_a_dir_by_a_file_drops_its_children() {
        let fs = flatten(&[
            &[("p/", 'd', 0o700, ""), ("p/child", 'f', 0o644, "c")],
            &[("p", 'f', 0o600, "now a file")],
        ]);
        assert_eq!(fs.keys().collect::<Vec<_>>(), ["p"]);
        assert_eq!(fs["p"].kind, Kind::File);
    }

    #[test]
    fn hard_link_direction_does_not_matter() {
        let a = flatten(&[&[("a", 'f', 0o644, "same"), ("b", 'h', 0o644, "a")]]);
        let b = flatten(&[&[("b", 'f', 0o644, "same"), ("a", 'h', 0o644, "b")]]);
        assert!(diffs(&a, &b).is_empty(), "{:?}", diffs(&a, &b));
        // ...but two separate copies are not a link group.
        let c = flatten(&[&[("a", 'f', 0o644, "same"), ("b", 'f', 0o644, "same")]]);
        let d = diffs(&a, &c);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[0].starts_with("hard links differ: /a docker {/a, /b} strata none"));
    }

    #[test]
    fn implicit_parents_compare_as_root_0755_dirs() {
        let implicit = flatten(&[&[("p/q/r", 'f', 0o644, "r")]]);
        let explicit = flatten(&[&[
            ("p/", 'd', 0o755, ""),
            ("p/q/", 'd', 0o755, ""),
            ("p/q/r", 'f', 0o644, "r"),
        ]]);
        assert!(
            diffs(&implicit, &explicit).is_empty(),
            "{:?}",
            diffs(&implicit, &explicit)
        );
        assert!(implicit["p/q"].implicit && !explicit["p/q"].implicit);
        // A parent present in a lower layer keeps its own mode.
        let lower = flatten(&[&[("p/", 'd', 0o700, "")], &[("p/q/r", 'f', 0o644, "r")]]);
        assert_eq!(lower["p"].mode, 0o700);
        let d = diffs(&implicit, &lower);
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(d[0].contains("dir 0755 0:0 (implicit parent)") && d[0].contains("dir 0700 0:0"));
    }

    #[test]
    fn modes_symlinks_and_content_are_compared_but_not_symlink_modes() {
        let a = flatten(&[&[("s", 'f', 0o4755, "x"), ("l", 'l', 0o777, "s")]]);
        let b = flatten(&[&[("s", 'f', 0o0755, "x"), ("l", 'l', 0o755, "s")]]);
        let d = diffs(&a, &b);
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(d[0].contains("file 4755") && d[0].contains("file 0755"));
        let c = flatten(&[&[("s", 'f', 0o4755, "y"), ("l", 'l', 0o777, "t")]]);
        assert_eq!(diffs(&a, &c).len(), 2);
    }

    /// The newer archive layout (blobs/sha256/..., as strata or Docker 25+
    /// write it) with a gzip-compressed layer reads like the legacy one.
    #[test]
    fn reads_blob_layout_and_gzip_layers() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&layer(&[("etc/hello", 'f', 0o640, "hi")]))
            .unwrap();
        let config = br#"{"config":{"Env":["A=1"]}}"#;
        let manifest = br#"[{"Config":"blobs/sha256/c0","Layers":["blobs/sha256/l0"]}]"#;
        let mut outer = tar::Builder::new(Vec::new());
        let gz = gz.finish().unwrap();
        let files: [(&str, &[u8]); 3] = [
            ("manifest.json", manifest),
            ("blobs/sha256/c0", config),
            ("blobs/sha256/l0", &gz),
        ];
        for (path, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            outer.append_data(&mut h, path, data).unwrap();
        }
        let dir =
            std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("compat-unit-blob-layout");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("x")).unwrap();
        std::fs::write(dir.join("a.tar"), outer.into_inner().unwrap()).unwrap();
        let img = read_archive(&dir.join("a.tar")).unwrap();
        assert_eq!(img.config["config"]["Env"][0], "A=1");
        let e = &img.fs["etc/hello"];
        assert_eq!((e.mode, e.size), (0o640, 2));
        assert!(img.fs["etc"].implicit);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
