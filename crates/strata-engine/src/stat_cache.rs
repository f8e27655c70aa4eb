//! The build context's stat cache on disk: (relative path, size, mtime,
//! ctime, inode, device, when hashed) -> content digest, one file per
//! context under the store root.
//!
//! A compact append-only binary log, because the JSON map it replaces was
//! parsed whole and rewritten whole on every build where one file changed
//! (20,000 entries re-serialised after a `touch`). Now a build appends only
//! the entries it re-hashed, in one `write` (O_APPEND: concurrent builds do
//! not interleave records); later records win on load. When the log holds
//! many more records than live entries it is rewritten (temp file + rename).
//! A truncated tail (crash mid-append) or a bad file only costs re-hashing:
//! parsing stops at the first bad record.
//!
//! Record: u32 path length, path bytes, size u64, mtime_ns i64, ctime_ns i64,
//! ino u64, dev u64, hashed_at_ns i64, 32 bytes of sha256; little endian.

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"STRSTC1\n";
const FIXED: usize = 8 * 6 + 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StatEntry {
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub ino: u64,
    pub dev: u64,
    pub hashed_at_ns: i64,
    /// Raw sha256 of the contents.
    pub sha256: [u8; 32],
}

/// The loaded cache plus what this build changed.
#[derive(Default)]
pub(crate) struct StatCache {
    pub entries: HashMap<String, StatEntry>,
    /// Keys re-hashed by this build, to append on save (kept only when
    /// there is a file to append to: a cache made from nothing is written
    /// whole, and 200,000 keys twice were 8 MB).
    changed: Vec<String>,
    /// Whether this build re-hashed any entry (`changed` holds them only
    /// when there is a file to append to).
    dirty: bool,
    /// Records in the file (live or overridden).
    records: usize,
}

impl StatCache {
    pub(crate) fn load(file: &Path) -> StatCache {
        // Read a record at a time: the whole file as one buffer was 20 MB
        // beside the map at 200,000 files.
        let Ok(f) = fs::File::open(file) else {
            return StatCache::default();
        };
        let size = f.metadata().map_or(0, |m| m.len());
        let mut r = std::io::BufReader::with_capacity(256 * 1024, f);
        let mut magic = [0u8; 8];
        if r.read_exact(&mut magic).is_err() || &magic != MAGIC {
            return StatCache::default();
        }
        let mut c = StatCache::default();
        // Records average well over 100 bytes: no rehashing while loading.
        c.entries.reserve(size as usize / 100);
        let mut key = Vec::new();
        while let Some(entry) = read_record(&mut r, &mut key) {
            let Ok(k) = std::str::from_utf8(&key) else {
                break;
            };
            c.entries.insert(k.to_string(), entry);
            c.records += 1;
        }
        c
    }

    pub(crate) fn insert(&mut self, key: &str, entry: StatEntry) {
        if self.records > 0 {
            self.changed.push(key.to_string());
        }
        self.dirty = true;
        self.entries.insert(key.to_string(), entry);
    }

    /// Appends what changed, or rewrites the file when the log has grown to
    /// more than twice the live entries. Errors are ignored: the cache is an
    /// optimisation.
    pub(crate) fn save(&mut self, file: &Path) {
        if !self.dirty {
            return;
        }
        if let Some(dir) = file.parent() {
            let _ = fs::create_dir_all(dir);
        }
        let appended = self.records + self.changed.len();
        if self.records > 0 && appended <= 2 * self.entries.len() + 64 {
            let mut buf = Vec::new();
            for k in &self.changed {
                if let Some(e) = self.entries.get(k) {
                    put_record(&mut buf, k, e);
                }
            }
            let opened = fs::OpenOptions::new()
                .append(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(file);
            if let Ok(mut f) = opened {
                if f.write_all(&buf).is_ok() {
                    self.records = appended;
                    self.changed.clear();
                    self.dirty = false;
                    return;
                }
            }
        }
        // Streamed to the file, a record at a time: the whole cache as one
        // buffer was 25 MB at 200,000 files.
        let tmp = PathBuf::from(format!("{}.tmp{}", file.display(), std::process::id()));
        let written = (|| -> std::io::Result<()> {
            let mut out = std::io::BufWriter::with_capacity(256 * 1024, fs::File::create(&tmp)?);
            out.write_all(MAGIC)?;
            let mut buf = Vec::with_capacity(FIXED + 256);
            for (k, e) in &self.entries {
                buf.clear();
                put_record(&mut buf, k, e);
                out.write_all(&buf)?;
            }
            out.flush()
        })();
        if written.is_ok() && fs::rename(&tmp, file).is_ok() {
            self.records = self.entries.len();
            self.changed.clear();
            self.dirty = false;
        } else {
            let _ = fs::remove_file(&tmp);
        }
    }
}

fn put_record(buf: &mut Vec<u8>, key: &str, e: &StatEntry) {
    buf.extend_from_slice(&(key.len() as u32).to_le_bytes());
    buf.extend_from_slice(key.as_bytes());
    for v in [e.size, e.mtime_ns as u64, e.ctime_ns as u64, e.ino, e.dev] {
        buf.extend_from_slice(&v.to_le_bytes());
    }
    buf.extend_from_slice(&e.hashed_at_ns.to_le_bytes());
    buf.extend_from_slice(&e.sha256);
}

/// The next record (its path into `key`); None at the end or at a torn
/// or bad record.
fn read_record(r: &mut impl Read, key: &mut Vec<u8>) -> Option<StatEntry> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).ok()?;
    let len = u32::from_le_bytes(len) as usize;
    if len > 64 * 1024 {
        return None;
    }
    key.resize(len, 0);
    r.read_exact(key).ok()?;
    let mut f = [0u8; FIXED];
    r.read_exact(&mut f).ok()?;
    let u = |i: usize| u64::from_le_bytes(f[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    Some(StatEntry {
        size: u(0),
        mtime_ns: u(1) as i64,
        ctime_ns: u(2) as i64,
        ino: u(3),
        dev: u(4),
        hashed_at_ns: u(5) as i64,
        sha256: f[48..80].try_into().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u64) -> StatEntry {
        StatEntry {
            size: n,
            mtime_ns: -5,
            ctime_ns: 7,
            ino: n * 3,
            dev: 9,
            hashed_at_ns: 11,
            sha256: [n as u8; 32],
        }
    }

    #[test]
    fn appends_then_compacts_and_survives_a_torn_tail() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("c.bin");
        let mut c = StatCache::load(&f);
        for i in 0..10 {
            c.insert(&format!("d/f{i}"), entry(i));
        }
        c.save(&f);
        let full = fs::metadata(&f).unwrap().len();

        // One change: appended, not rewritten.
        let mut c = StatCache::load(&f);
        assert_eq!(c.entries.len(), 10);
        c.insert("d/f3", entry(33));
        c.save(&f);
        assert!(fs::metadata(&f).unwrap().len() < full * 2);
        let c = StatCache::load(&f);
        assert_eq!(c.entries["d/f3"], entry(33));
        assert_eq!(c.entries["d/f4"], entry(4));

        // Nothing changed: the file is not touched.
        let before = fs::metadata(&f).unwrap().modified().unwrap();
        let mut c = StatCache::load(&f);
        c.save(&f);
        assert_eq!(fs::metadata(&f).unwrap().modified().unwrap(), before);

        // Many rewrites of one entry end in a compaction.
        for i in 0..200 {
            let mut c = StatCache::load(&f);
            c.insert("d/f0", entry(100 + i));
            c.save(&f);
        }
        let c = StatCache::load(&f);
        assert_eq!(c.entries["d/f0"], entry(299));
        assert!(c.records <= 2 * 10 + 64 + 1, "{}", c.records);

        // A torn record at the end is dropped, the rest kept.
        let mut bytes = fs::read(&f).unwrap();
        bytes.extend_from_slice(&[200, 0, 0, 0, b'x']);
        fs::write(&f, &bytes).unwrap();
        assert_eq!(StatCache::load(&f).entries.len(), 10);
        fs::write(&f, b"{\"json\": 1}").unwrap();
        assert!(StatCache::load(&f).entries.is_empty());
    }
}
