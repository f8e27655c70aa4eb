//! What a program in an image needs to run: the file itself (symlinks
//! followed), its ELF interpreter and the shared libraries it names
//! (DT_NEEDED, transitively), found in the image's own filesystem. Read
//! with the `object` crate from the layers; nothing is executed (no ldd).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use object::elf;
use object::read::elf::{ElfFile, FileHeader, ProgramHeader};
use serde::Serialize;
use strata_store::Store;

use super::analyze::clean;
use crate::images::{load_image, BaseImage};

/// One visible entry of an image's merged filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    /// `path`: where its bytes are in that layer (a hard link's target).
    File {
        layer: usize,
        size: u64,
        path: String,
    },
    Dir,
    Link(String),
    Other,
}

/// Why an image's files could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageFsError {
    /// The image could not be loaded.
    #[error(transparent)]
    Image(#[from] crate::images::ImageError),
    /// A layer's digest is malformed.
    #[error(transparent)]
    Digest(#[from] strata_oci::DigestError),
    /// A layer blob could not be opened or decompressed.
    #[error(transparent)]
    Store(#[from] strata_store::StoreError),
    /// A layer's tar stream could not be read.
    #[error(transparent)]
    Read(#[from] std::io::Error),
    /// No such path in the image.
    #[error("{0}: not in the image")]
    NotInImage(String),
    /// The path is not a regular file.
    #[error("{0}: not a regular file")]
    NotAFile(String),
    /// The path's layer does not hold it (a corrupt index).
    #[error("{0}: not found in its layer")]
    NotInLayer(String),
    /// The file is not an ELF binary.
    #[error("not an ELF file")]
    NotElf,
    /// The ELF binary could not be parsed.
    #[error(transparent)]
    Elf(#[from] object::read::Error),
}

/// The merged view of an image's layers: every visible path (relative,
/// no leading `/`), read once as streams.
pub struct ImageFs<'s> {
    store: &'s Store,
    img: BaseImage,
    nodes: BTreeMap<String, Node>,
}

/// A layer blob as a tar stream (decompressed as it is read).
fn open_layer(file: &mut dyn Read) -> Result<tar::Archive<Box<dyn Read + '_>>, ImageFsError> {
    let r = strata_store::diff::decompressed(file)?;
    Ok(tar::Archive::new(r))
}

impl<'s> ImageFs<'s> {
    /// Indexes the image `name`.
    pub fn open(store: &'s Store, name: &str) -> Result<ImageFs<'s>, ImageFsError> {
        let img = load_image(store, name)?;
        let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
        for i in 0..img.layers.len() {
            let digest = img.layers[i].digest.clone();
            let mut f = store.open_layer(&digest)?;
            let mut ar = open_layer(&mut f)?;
            for e in ar.entries()? {
                let e = e?;
                let path = clean(&e.path_bytes());
                let (parent, base) = match path.rsplit_once('/') {
                    Some((p, b)) => (p.to_string(), b.to_string()),
                    None => (String::new(), path.clone()),
                };
                let remove_under = |nodes: &mut BTreeMap<String, Node>, p: &str| {
                    let prefix = if p.is_empty() {
                        String::new()
                    } else {
                        format!("{p}/")
                    };
                    let gone: Vec<String> = nodes
                        .range(prefix.clone()..)
                        .take_while(|(k, _)| k.starts_with(&prefix))
                        .map(|(k, _)| k.clone())
                        .collect();
                    for k in gone {
                        nodes.remove(&k);
                    }
                };
                if base == ".wh..wh..opq" {
                    remove_under(&mut nodes, &parent);
                    continue;
                }
                if let Some(name) = base.strip_prefix(".wh.") {
                    let t = if parent.is_empty() {
                        name.to_string()
                    } else {
                        format!("{parent}/{name}")
                    };
                    nodes.remove(&t);
                    remove_under(&mut nodes, &t);
                    continue;
                }
                if path.is_empty() {
                    continue;
                }
                let kind = e.header().entry_type();
                let node = if kind.is_file() {
                    Node::File {
                        layer: i,
                        size: e.size(),
                        path: path.clone(),
                    }
                } else if kind.is_dir() {
                    Node::Dir
                } else if kind.is_symlink() {
                    let t = e
                        .link_name_bytes()
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default();
                    Node::Link(t)
                } else if kind.is_hard_link() {
                    let t = e.link_name_bytes().map(|b| clean(&b)).unwrap_or_default();
                    match nodes.get(&t) {
                        Some(n) => n.clone(),
                        None => Node::Other,
                    }
                } else {
                    Node::Other
                };
                if node != Node::Dir {
                    remove_under(&mut nodes, &path);
                }
                nodes.insert(path, node);
            }
        }
        Ok(ImageFs { store, img, nodes })
    }

    /// The image's config.
    pub fn image(&self) -> &BaseImage {
        &self.img
    }

    /// Whether `path` (absolute) exists, symlinks followed.
    pub fn exists(&self, path: &str) -> bool {
        self.resolve(path).is_some()
    }

    /// Whether `path` is a directory, symlinks followed.
    pub fn is_dir(&self, path: &str) -> bool {
        self.resolve(path)
            .is_some_and(|p| p.is_empty() || self.nodes.get(&p) == Some(&Node::Dir))
    }

    /// `path` (absolute) with every symlink followed, as an absolute path;
    /// `None` when it does not exist.
    pub fn resolve(&self, path: &str) -> Option<String> {
        let mut todo: Vec<String> = path
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .map(str::to_string)
            .rev()
            .collect();
        let mut cur: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(c) = todo.pop() {
            if c == ".." {
                cur.pop();
                continue;
            }
            cur.push(c);
            let joined = cur.join("/");
            if let Node::Link(t) = self.nodes.get(&joined)? {
                hops += 1;
                if hops > 40 {
                    return None;
                }
                cur.pop();
                if t.starts_with('/') {
                    cur.clear();
                }
                for part in t.split('/').filter(|c| !c.is_empty() && *c != ".").rev() {
                    todo.push(part.to_string());
                }
            }
        }
        Some(format!("/{}", cur.join("/")))
    }

    /// The contents of a regular file (symlinks followed).
    pub fn read(&self, path: &str) -> Result<Vec<u8>, ImageFsError> {
        let real = self
            .resolve(path)
            .ok_or_else(|| ImageFsError::NotInImage(path.to_string()))?;
        let key = real.trim_start_matches('/').to_string();
        let Some(Node::File {
            layer, path: key, ..
        }) = self.nodes.get(&key)
        else {
            return Err(ImageFsError::NotAFile(path.to_string()));
        };
        let digest = self.img.layers[*layer].digest.clone();
        let mut f = self.store.open_layer(&digest)?;
        let mut ar = open_layer(&mut f)?;
        for e in ar.entries()? {
            let mut e = e?;
            if clean(&e.path_bytes()) == *key {
                let mut out = Vec::with_capacity(e.size() as usize);
                e.read_to_end(&mut out)?;
                return Ok(out);
            }
        }
        Err(ImageFsError::NotInLayer(path.to_string()))
    }

    /// The size of a regular file (symlinks followed).
    pub fn size(&self, path: &str) -> Option<u64> {
        let real = self.resolve(path)?;
        match self.nodes.get(real.trim_start_matches('/')) {
            Some(Node::File { size, .. }) => Some(*size),
            _ => None,
        }
    }
}

/// What an ELF file names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ElfInfo {
    /// PT_INTERP (the dynamic loader), absent for a static binary.
    pub interpreter: Option<String>,
    /// DT_NEEDED sonames.
    pub needed: Vec<String>,
    /// DT_RUNPATH / DT_RPATH directories.
    pub runpath: Vec<String>,
    /// A 64-bit ELF.
    pub class64: bool,
}

fn parse_elf<Elf: FileHeader<Endian = object::Endianness>>(
    data: &[u8],
) -> Result<ElfInfo, ImageFsError> {
    let f = ElfFile::<Elf>::parse(data)?;
    let endian = f.endian();
    let mut info = ElfInfo::default();
    for ph in f.elf_program_headers() {
        if let Ok(Some(i)) = ph.interpreter(endian, data) {
            let s = String::from_utf8_lossy(i);
            info.interpreter = Some(s.trim_end_matches('\0').to_string());
        }
    }
    if let Ok(table) = f.elf_section_table().dynamic_table(endian, data) {
        for d in table.iter() {
            let Ok(s) = table.string(d) else { continue };
            let s = String::from_utf8_lossy(s).into_owned();
            if d.tag == elf::DT_NEEDED {
                info.needed.push(s);
            } else if d.tag == elf::DT_RUNPATH || d.tag == elf::DT_RPATH {
                info.runpath.extend(s.split(':').map(str::to_string));
            }
        }
    }
    Ok(info)
}

/// Reads the interpreter and needed libraries of an ELF file.
pub fn elf_info(data: &[u8]) -> Result<ElfInfo, ImageFsError> {
    if data.len() < 5 || &data[..4] != b"\x7fELF" {
        return Err(ImageFsError::NotElf);
    }
    if data[4] == 2 {
        parse_elf::<elf::FileHeader64<object::Endianness>>(data).map(|mut i| {
            i.class64 = true;
            i
        })
    } else {
        parse_elf::<elf::FileHeader32<object::Endianness>>(data)
    }
}

/// What one program needs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Needs {
    /// The program as named, and where it really is.
    pub program: String,
    /// The path it resolves to (symlinks followed).
    pub real_path: String,
    /// Not an ELF file (a script, say): what its `#!` line names, if any.
    pub script_interpreter: Option<String>,
    /// Whether it is an ELF binary.
    pub elf: bool,
    /// The loader (absolute path in the image), for a dynamic ELF.
    pub interpreter: Option<String>,
    /// Libraries found, as (path named, real path), in load order.
    pub libraries: Vec<(String, String)>,
    /// Sonames not found in the image.
    pub missing: Vec<String>,
}

impl Needs {
    /// A static ELF binary: nothing besides itself.
    pub fn is_static(&self) -> bool {
        self.elf && self.interpreter.is_none() && self.libraries.is_empty()
    }
}

/// The default library directories (glibc's, Debian multiarch first).
fn default_lib_dirs(machine_dir: &str) -> Vec<String> {
    vec![
        format!("/lib/{machine_dir}"),
        format!("/usr/lib/{machine_dir}"),
        "/lib64".into(),
        "/usr/lib64".into(),
        "/lib".into(),
        "/usr/lib".into(),
        "/usr/local/lib".into(),
    ]
}

/// What `program` (an absolute path in the image) needs to run.
pub fn needs(fs: &ImageFs<'_>, program: &str) -> Result<Needs, ImageFsError> {
    let real = fs
        .resolve(program)
        .ok_or_else(|| ImageFsError::NotInImage(program.to_string()))?;
    let data = fs.read(program)?;
    let mut out = Needs {
        program: program.to_string(),
        real_path: real,
        ..Default::default()
    };
    if data.starts_with(b"#!") {
        let line = data[2..].split(|b| *b == b'\n').next().unwrap_or_default();
        let line = String::from_utf8_lossy(line);
        out.script_interpreter = line.split_whitespace().next().map(str::to_string);
        return Ok(out);
    }
    let info = elf_info(&data)?;
    out.elf = true;
    out.interpreter = info.interpreter.clone();
    let arch = if info.class64 {
        crate::config::host_architecture()
    } else {
        "i386"
    };
    let machine_dir = match arch {
        "amd64" => "x86_64-linux-gnu",
        "arm64" => "aarch64-linux-gnu",
        "i386" => "i386-linux-gnu",
        "arm" => "arm-linux-gnueabihf",
        "ppc64le" => "powerpc64le-linux-gnu",
        "s390x" => "s390x-linux-gnu",
        _ => "x86_64-linux-gnu",
    };
    let mut seen = BTreeSet::new();
    let mut queue: Vec<(String, Vec<String>)> = info
        .needed
        .iter()
        .map(|n| (n.clone(), info.runpath.clone()))
        .collect();
    queue.reverse();
    while let Some((soname, runpath)) = queue.pop() {
        if !seen.insert(soname.clone()) {
            continue;
        }
        let dirs = runpath
            .iter()
            .filter(|d| d.starts_with('/'))
            .cloned()
            .chain(default_lib_dirs(machine_dir));
        let found = if soname.contains('/') {
            fs.exists(&soname).then(|| soname.clone())
        } else {
            dirs.map(|d| format!("{d}/{soname}")).find(|p| fs.exists(p))
        };
        let Some(path) = found else {
            out.missing.push(soname);
            continue;
        };
        let real = fs.resolve(&path).unwrap_or_else(|| path.clone());
        if out.interpreter.as_deref().and_then(|i| fs.resolve(i)) == Some(real.clone()) {
            continue;
        }
        if let Ok(lib) = fs.read(&path).and_then(|d| elf_info(&d)) {
            let mut more: Vec<(String, Vec<String>)> = lib
                .needed
                .into_iter()
                .map(|n| (n, lib.runpath.clone()))
                .collect();
            more.reverse();
            queue.extend(more);
        }
        out.libraries.push((path, real));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_host_binary() {
        // The test binary itself: a dynamic ELF with a loader and libc.
        let exe = std::env::current_exe().unwrap();
        let data = std::fs::read(exe).unwrap();
        let info = elf_info(&data).unwrap();
        assert!(info.interpreter.is_some(), "{info:?}");
        assert!(
            info.needed.iter().any(|n| n.starts_with("libc.so")),
            "{info:?}"
        );
    }

    #[test]
    fn rejects_a_script() {
        assert!(elf_info(b"#!/bin/sh\necho hi\n").is_err());
    }
}
