//! Debian bookworm bases for the compatibility suite: made by `mmdebstrap
//! --variant=minbase` against the machine's configured Debian mirror, with
//! the host's extra CA certificates added (HTTPS to PyPI and npm passes a
//! TLS-intercepting proxy on the test machines), wrapped as a one-layer
//! docker-archive whose config we write ourselves, so that `docker load` and
//! `strata load` give the same image ID.
//!
//! Each base is made once per machine and cached under
//! `/var/cache/strata-tests/compat-debian/` (`STRATA_TEST_CACHE` overrides
//! the parent directory), keyed by a hash of its recipe: the mmdebstrap
//! command line, the mirror and the CA files. A changed recipe makes a new
//! file; old ones are removed when a base is remade.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use sha2::{Digest, Sha256};

/// One base image: a tag and the packages mmdebstrap adds to minbase.
pub(crate) struct Base {
    pub tag: &'static str,
    /// Packages on top of minbase (`--include`); ca-certificates is always there.
    pub include: &'static [&'static str],
    /// The config's top-level `comment`, as `docker import` writes one.
    pub comment: Option<&'static str>,
    /// Reuse the layer of this base (same `include`) instead of running
    /// mmdebstrap again: only the config differs.
    pub rootfs_of: Option<&'static str>,
}

/// Bumped when the recipe below changes in a way the hash cannot see.
const RECIPE_VERSION: &str = "1";
/// Fixed timestamps (mmdebstrap's SOURCE_DATE_EPOCH and the config's
/// `created`): the same recipe gives the same layer and the same image ID.
const EPOCH: u64 = 1_700_000_000;
const CREATED: &str = "2023-11-14T22:13:20Z";
const CA_DIR: &str = "/usr/local/share/ca-certificates";

/// The bases the Debian cases may name in FROM. Tags outside Docker Hub's
/// `library/` namespace (but `debian:bookworm`, which this is, plus the
/// ca-certificates package and the host's CAs).
pub(crate) const BASES: &[Base] = &[
    Base {
        tag: "debian:bookworm",
        include: &[],
        comment: None,
        rootfs_of: None,
    },
    // The same rootfs as `docker import` leaves it (with its --change lines
    // for PATH and CMD): a top-level comment that built images must not
    // inherit (the classic builder and BuildKit clear it).
    Base {
        tag: "strata-compat/bookworm-imported:1",
        include: &[],
        comment: Some("Imported from -"),
        rootfs_of: Some("debian:bookworm"),
    },
    Base {
        tag: "strata-compat/bookworm-python:1",
        include: &["python3", "python3-venv", "python3-pip"],
        comment: None,
        rootfs_of: None,
    },
    Base {
        tag: "strata-compat/bookworm-python-slim:1",
        include: &["python3"],
        comment: None,
        rootfs_of: None,
    },
    Base {
        tag: "strata-compat/bookworm-node:1",
        include: &["nodejs", "npm"],
        comment: None,
        rootfs_of: None,
    },
    Base {
        tag: "strata-compat/bookworm-build:1",
        include: &["build-essential"],
        comment: None,
        rootfs_of: None,
    },
];

/// The directory holding the cached archives: `$STRATA_TEST_CACHE`, else
/// /var/cache/strata-tests (root), else `$XDG_CACHE_HOME` or ~/.cache.
pub(crate) fn cache_dir() -> PathBuf {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let system = PathBuf::from("/var/cache/strata-tests");
    let parent = var("STRATA_TEST_CACHE").unwrap_or_else(|| {
        if std::fs::create_dir_all(&system).is_ok() {
            system
        } else {
            var("XDG_CACHE_HOME")
                .or_else(|| var("HOME").map(|h| h.join(".cache")))
                .unwrap_or_else(std::env::temp_dir)
                .join("strata-tests")
        }
    });
    parent.join("compat-debian")
}

/// The URI of the machine's Debian mirror for bookworm: the first `deb`
/// entry whose suites include `bookworm`, in the deb822 `.sources` files of
/// /etc/apt/sources.list.d, then the one-line `.list` files and
/// /etc/apt/sources.list. Never a host name of our own choosing.
pub(crate) fn mirror() -> Result<String, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir("/etc/apt/sources.list.d")
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    let with_ext = |ext: &str| {
        files
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == ext))
            .cloned()
            .collect::<Vec<_>>()
    };
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    if let Some(uri) = with_ext("sources")
        .iter()
        .find_map(|p| deb822_mirror(&read(p)))
    {
        return Ok(uri);
    }
    let mut lists = vec![PathBuf::from("/etc/apt/sources.list")];
    lists.extend(with_ext("list"));
    if let Some(uri) = lists.iter().find_map(|p| one_line_mirror(&read(p))) {
        return Ok(uri);
    }
    Err(
        "no Debian mirror for bookworm in /etc/apt/sources.list.d/*.sources, *.list or \
         /etc/apt/sources.list"
            .into(),
    )
}

/// The first URI of an enabled `deb` paragraph for bookworm in a deb822
/// sources file (paragraphs separated by blank lines, `Key: value` fields).
fn deb822_mirror(text: &str) -> Option<String> {
    let text = text.replace("\r\n", "\n");
    let paragraphs = text.split("\n\n");
    paragraphs.into_iter().find_map(|para| {
        let field = |key: &str| {
            para.lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.trim().eq_ignore_ascii_case(key).then(|| v.trim())
                })
        };
        let has = |key: &str, word: &str| {
            field(key).is_some_and(|v| v.split_whitespace().any(|w| w == word))
        };
        let enabled = field("Enabled").is_none_or(|v| v != "no");
        if has("Types", "deb") && has("Suites", "bookworm") && enabled {
            field("URIs")?.split_whitespace().next().map(str::to_string)
        } else {
            None
        }
    })
}

/// The URI of the first `deb [options] URI bookworm COMPONENT...` line.
fn one_line_mirror(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        if words.next() != Some("deb") {
            return None;
        }
        let mut rest: Vec<&str> = words.collect();
        if rest.first().is_some_and(|w| w.starts_with('[')) {
            // Options run to the word that closes the bracket.
            let end = rest.iter().position(|w| w.ends_with(']'))?;
            rest.drain(..=end);
        }
        match rest.as_slice() {
            [uri, "bookworm", ..] => Some(uri.to_string()),
            _ => None,
        }
    })
}

/// The mmdebstrap arguments for `base` (without the output path), also the
/// main part of its recipe.
fn mmdebstrap_args(base: &Base, mirror: &str) -> Vec<String> {
    let mut include = vec!["ca-certificates"];
    include.extend(base.include);
    vec![
        "--variant=minbase".into(),
        "--format=tar".into(),
        // No device nodes in /dev: images carry none (runtimes mount /dev).
        "--skip=output/dev".into(),
        format!("--include={}", include.join(",")),
        format!(r#"--customize-hook=cp -R {CA_DIR}/. "$1{CA_DIR}/""#),
        r#"--customize-hook=chroot "$1" update-ca-certificates --fresh >/dev/null"#.into(),
        "bookworm".into(),
        // The image path goes here.
        String::new(),
        mirror.into(),
    ]
}

/// The recipe's hash: everything that decides the base's bytes.
fn recipe_hash(base: &Base, mirror: &str) -> Result<String, String> {
    let mut h = Sha256::new();
    h.update(format!("v{RECIPE_VERSION} epoch {EPOCH} {}\n", base.tag));
    if let Some(c) = base.comment {
        h.update(format!("comment {c}\n"));
    }
    for a in mmdebstrap_args(base, mirror) {
        h.update(a.as_bytes());
        h.update(b"\0");
    }
    // The extra CAs: names and contents.
    let mut cas: Vec<PathBuf> = std::fs::read_dir(CA_DIR)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    cas.sort();
    for ca in cas.iter().filter(|p| p.is_file()) {
        let bytes = std::fs::read(ca).map_err(|e| format!("read {}: {e}", ca.display()))?;
        h.update(ca.to_string_lossy().as_bytes());
        h.update(&bytes);
    }
    Ok(hex::encode(h.finalize())[..16].to_string())
}

fn slug(tag: &str) -> String {
    tag.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// A base ready to load: its archive and the image ID it loads as.
pub(crate) struct Made {
    pub tag: &'static str,
    pub archive: PathBuf,
    pub id: String,
}

/// The cached docker-archive of `base`, made first when missing (needs
/// mmdebstrap, root and the mirror; ~30-110 s per base).
pub(crate) fn ensure(base: &'static Base) -> Result<Made, String> {
    let mirror = mirror()?;
    let dir = cache_dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    let name = format!("{}-{}", slug(base.tag), recipe_hash(base, &mirror)?);
    let archive = dir.join(format!("{name}.tar"));
    let id_file = dir.join(format!("{name}.id"));
    // One maker per base across processes; the others wait, then reuse.
    let lock_path = dir.join(format!("{}.lock", slug(base.tag)));
    let lock = File::create(&lock_path).map_err(|e| format!("{}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("lock {}: {e}", lock_path.display()))?;
    if let (true, Ok(id)) = (archive.is_file(), std::fs::read_to_string(&id_file)) {
        return Ok(Made {
            tag: base.tag,
            archive,
            id: id.trim().to_string(),
        });
    }
    // Older recipes of this base go.
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let f = e.file_name().to_string_lossy().into_owned();
        let rest = f
            .strip_prefix(&format!("{}-", slug(base.tag)))
            .unwrap_or("");
        let old = rest.len() > 17
            && rest.as_bytes()[16] == b'.'
            && rest[..16].bytes().all(|b| b.is_ascii_hexdigit());
        if old {
            let _ = std::fs::remove_file(e.path());
        }
    }
    let rootfs = dir.join(format!("{name}.tmp-rootfs.tar"));
    let mut args = mmdebstrap_args(base, &mirror);
    let out_slot = args.iter().position(String::is_empty).expect("output slot");
    args[out_slot] = rootfs.to_string_lossy().into_owned();
    if let Some(parent) = base.rootfs_of {
        let parent = BASES
            .iter()
            .find(|b| b.tag == parent && b.include == base.include)
            .ok_or_else(|| format!("{}: rootfs_of {parent}: no such base", base.tag))?;
        let made = ensure(parent)?;
        copy_layer(&made.archive, &rootfs).inspect_err(|_| {
            let _ = std::fs::remove_file(&rootfs);
        })?;
        return finish(base, &dir, &name, &rootfs, &args);
    }
    eprintln!(
        "compat: making Debian base {} with mmdebstrap (once per machine, cached in {})",
        base.tag,
        dir.display()
    );
    let out = Command::new("mmdebstrap")
        .args(&args)
        .env("SOURCE_DATE_EPOCH", EPOCH.to_string())
        .output()
        .map_err(|e| format!("cannot run mmdebstrap: {e}"))?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&rootfs);
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(8).collect();
        return Err(format!(
            "mmdebstrap {args:?} failed ({}):\n    {}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n    ")
        ));
    }
    finish(base, &dir, &name, &rootfs, &args)
}

/// Wraps the rootfs tar into the cached archive `name`.tar (and its ID into
/// `name`.id), removing the rootfs tar.
fn finish(
    base: &'static Base,
    dir: &Path,
    name: &str,
    rootfs: &Path,
    args: &[String],
) -> Result<Made, String> {
    let (archive, id_file) = (
        dir.join(format!("{name}.tar")),
        dir.join(format!("{name}.id")),
    );
    let tmp = dir.join(format!("{name}.tar.tmp"));
    let id = wrap(rootfs, &tmp, base, args).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    });
    let _ = std::fs::remove_file(rootfs);
    let id = id?;
    std::fs::rename(&tmp, &archive).map_err(|e| format!("rename {}: {e}", tmp.display()))?;
    std::fs::write(&id_file, &id).map_err(|e| format!("write {}: {e}", id_file.display()))?;
    Ok(Made {
        tag: base.tag,
        archive,
        id,
    })
}

/// Copies the (only) layer of the docker-archive `archive` to `out`.
fn copy_layer(archive: &Path, out: &Path) -> Result<(), String> {
    let file = File::open(archive).map_err(|e| format!("open {}: {e}", archive.display()))?;
    let mut tar = tar::Archive::new(file);
    for entry in tar.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        if entry.path_bytes().ends_with(b"/layer.tar") {
            let mut dst =
                File::create(out).map_err(|e| format!("create {}: {e}", out.display()))?;
            std::io::copy(&mut entry, &mut dst)
                .map_err(|e| format!("copy the layer of {}: {e}", archive.display()))?;
            return Ok(());
        }
    }
    Err(format!("{}: no layer.tar", archive.display()))
}

/// Writes `out`, a docker-archive holding one image made of the rootfs tar
/// as its only layer; returns the image ID (`sha256:` + config digest).
fn wrap(rootfs: &Path, out: &Path, base: &Base, args: &[String]) -> Result<String, String> {
    let diff_id = {
        let mut f = File::open(rootfs).map_err(|e| format!("open {}: {e}", rootfs.display()))?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf).map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        hex::encode(h.finalize())
    };
    // The history names the output "rootfs.tar", not the cache's path: the
    // same recipe gives the same config (and image ID) on every machine.
    let shown: Vec<&str> = args
        .iter()
        .map(|a| {
            if Path::new(a) == rootfs {
                "rootfs.tar"
            } else {
                a.as_str()
            }
        })
        .collect();
    let mut config = json!({
        "architecture": "amd64",
        "os": "linux",
        "created": CREATED,
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["bash"],
        },
        "rootfs": { "type": "layers", "diff_ids": [format!("sha256:{diff_id}")] },
        "history": [{
            "created": CREATED,
            "created_by": format!("mmdebstrap {} (strata compat base {})", shown.join(" "), base.tag),
        }],
    });
    if let Some(c) = base.comment {
        config["comment"] = json!(c);
    }
    let config = serde_json::to_vec(&config).map_err(|e| e.to_string())?;
    let config_hex = hex::encode(Sha256::digest(&config));
    let manifest = serde_json::to_vec(&json!([{
        "Config": format!("{config_hex}.json"),
        "RepoTags": [base.tag],
        "Layers": [format!("{diff_id}/layer.tar")],
    }]))
    .map_err(|e| e.to_string())?;
    let file = File::create(out).map_err(|e| format!("create {}: {e}", out.display()))?;
    let mut tar = tar::Builder::new(BufWriter::new(file));
    let mut add = |path: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_mtime(EPOCH);
        tar.append_data(&mut h, path, data)
    };
    add(&format!("{config_hex}.json"), &config).map_err(|e| e.to_string())?;
    add("manifest.json", &manifest).map_err(|e| e.to_string())?;
    let mut layer = File::open(rootfs).map_err(|e| e.to_string())?;
    tar.append_file(format!("{diff_id}/layer.tar"), &mut layer)
        .map_err(|e| format!("write {}: {e}", out.display()))?;
    let mut w = tar.into_inner().map_err(|e| e.to_string())?;
    w.flush().map_err(|e| e.to_string())?;
    w.get_ref().sync_all().map_err(|e| e.to_string())?;
    Ok(format!("sha256:{config_hex}"))
}

#[cfg(test)]
mod tests {
    use super::{deb822_mirror, one_line_mirror};

    #[test]
    fn mirrors_from_both_sources_formats() {
        let deb822 = "Types: deb-src\nURIs: http://src.invalid/debian\nSuites: bookworm\n\n\
                      Types: deb\n# http://snapshot.invalid/x\nURIs: http://m.invalid/debian\n\
                      Suites: bookworm bookworm-updates\nComponents: main\n\n\
                      Types: deb\nURIs: http://sec.invalid/debian-security\nSuites: bookworm-security\n";
        assert_eq!(
            deb822_mirror(deb822).as_deref(),
            Some("http://m.invalid/debian")
        );
        let off = "Types: deb\nURIs: http://off.invalid/\nSuites: bookworm\nEnabled: no\n";
        assert_eq!(deb822_mirror(off), None);
        let list = "# deb http://old.invalid/debian bookworm main\n\
                    deb http://sec.invalid/debian-security bookworm-security main\n\
                    deb [arch=amd64 trusted=yes signed-by=/k.gpg] http://l.invalid/debian bookworm main\n";
        assert_eq!(
            one_line_mirror(list).as_deref(),
            Some("http://l.invalid/debian")
        );
    }

    #[test]
    fn the_mirror_comes_from_the_machines_sources() {
        // Only shape: the machine decides the value.
        if let Ok(m) = super::mirror() {
            assert!(m.contains("://"), "{m}");
        }
    }
}
