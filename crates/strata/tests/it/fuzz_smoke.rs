//! The fuzz targets' bodies, run in the normal suite (no cargo-fuzz, no
//! sanitizers): every committed seed in `fuzz/corpus/<target>` plus seeded
//! random mutations of it. This is the bounded CI smoke for fuzzing:
//! building the cargo-fuzz crate takes minutes, so real fuzzing is
//! `scripts/fuzz.sh` (see the README's development section). Keep the
//! bodies in step with `fuzz/fuzz_targets/*.rs`.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use strata_oci::{
    read_archive, to_go_json, CanonicalJson, Digest, ImageConfig, ImageIndex, ImageManifest, Raw,
    Reference,
};
use strata_test_support::oci::DropSink;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A few libFuzzer-style mutations: flip, overwrite with an interesting
/// byte, insert, delete a range, truncate, duplicate a range.
fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = v.len();
        match rng.below(6) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                v[i] = *[0u8, 0xff, b'/', b'.', b'\n', b'"', b'\\', b'$', b'*', b'0']
                    .get(rng.below(10))
                    .unwrap();
            }
            2 => {
                let i = rng.below(len + 1);
                v.insert(i, rng.next() as u8);
            }
            3 if len > 1 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(64)).min(len);
                v.drain(a..b);
            }
            4 if len > 0 => v.truncate(rng.below(len)),
            5 if len > 1 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(64)).min(len);
                let chunk = v[a..b].to_vec();
                let at = rng.below(len);
                v.splice(at..at, chunk);
            }
            _ => {}
        }
    }
    v
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("fuzz corpus {} missing: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus {}", dir.display());
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

/// Runs `body` on every seed and `per_seed` mutants of each.
fn smoke(target: &str, per_seed: usize, mut body: impl FnMut(&[u8])) {
    let mut rng = Rng(0x5eed ^ target.len() as u64);
    let seeds = corpus(target);
    for seed in &seeds {
        body(seed);
        for _ in 0..per_seed {
            body(&mutate(&mut rng, seed));
        }
    }
}

#[test]
fn dockerfile_and_shell_corpus() {
    use strata_frontend::{parse, plan, BuildOptions, IgnoreMatcher, Lexer, StageScope};
    smoke("dockerfile", 80, |data| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let Ok(ast) = parse(text, "Dockerfile") else {
            return;
        };
        let Ok(p) = plan(&ast, &BuildOptions::default()) else {
            return;
        };
        for i in 0..p.stages.len() {
            let mut scope = StageScope::new(&p, i, &[("PATH".into(), "/bin".into())]);
            for step in &p.stages[i].steps {
                let _ = scope.resolve(step);
            }
        }
    });
    smoke("shell_expand", 150, |data| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let env = |n: &str| (n == "A").then(|| "a b*c".to_string());
        for escape in ['\\', '`'] {
            let _ = Lexer::new(escape).process(text, &env);
        }
        let pats: Vec<String> = text.split('|').map(String::from).collect();
        if let Ok(m) = IgnoreMatcher::new(&pats) {
            let _ = m.matches("a/b/c");
        }
    });
}

#[test]
fn dockerignore_corpus() {
    use strata_frontend::{parse_dockerignore, IgnoreMatcher};
    smoke("dockerignore", 500, |data| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let (file, paths) = text.split_once('\0').unwrap_or((text, ""));
        let Ok(m) = IgnoreMatcher::new(&parse_dockerignore(file)) else {
            return;
        };
        for p in ["Dockerfile", "a/b/c.txt", "../x", ""]
            .into_iter()
            .chain(paths.split('\0'))
        {
            let _ = m.matches(p);
            let _ = m.can_skip_dir(p);
        }
    });
}

#[test]
fn layer_apply_corpus_stays_confined() {
    use strata_store::{apply_layer, ApplyMode};
    let base = tempfile::tempdir().unwrap();
    smoke("layer_apply", 60, |data| {
        let Some((&sel, tar)) = data.split_first() else {
            return;
        };
        let mode = if sel & 1 == 0 {
            ApplyMode::Flatten
        } else {
            ApplyMode::OverlayReady
        };
        let cell = tempfile::tempdir_in(base.path()).unwrap();
        let dest = cell.path().join("dest");
        std::fs::create_dir(&dest).unwrap();
        std::fs::write(cell.path().join("canary"), b"canary").unwrap();
        if sel & 2 != 0 {
            std::fs::create_dir_all(dest.join("etc")).unwrap();
            std::fs::write(dest.join("etc/passwd"), b"root:x:0:0::/:/bin/sh\n").unwrap();
            let _ = std::os::unix::fs::symlink("/", dest.join("rootlink"));
            let _ = std::os::unix::fs::symlink("../../..", dest.join("up"));
        }
        let _ = apply_layer(&mut Cursor::new(tar), &dest, mode);
        let mut names: Vec<_> = std::fs::read_dir(cell.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["canary", "dest"], "something escaped the dest dir");
        assert_eq!(
            std::fs::read(cell.path().join("canary")).unwrap(),
            b"canary"
        );
    });
}

#[test]
fn archive_read_corpus() {
    smoke("archive_read", 150, |data| {
        if let Ok(c) = read_archive(Cursor::new(data), &mut DropSink::default()) {
            for img in &c.images {
                let _ = img.config.chain_ids();
            }
        }
    });
}

fn round_trip<T>(data: &[u8])
where
    T: serde::de::DeserializeOwned + serde::Serialize + CanonicalJson,
{
    if let Ok(raw) = Raw::<T>::from_bytes(data.to_vec(), "doc") {
        assert_eq!(raw.bytes(), data);
        serde_json::from_slice::<T>(&raw.value().to_canonical_json()).unwrap();
        serde_json::from_slice::<T>(&to_go_json(raw.value())).unwrap();
    }
}

#[test]
fn oci_json_corpus() {
    smoke("oci_json", 400, |data| {
        round_trip::<ImageManifest>(data);
        round_trip::<ImageIndex>(data);
        round_trip::<ImageConfig>(data);
        if let Ok(s) = std::str::from_utf8(data) {
            if let Ok(r) = Reference::parse(s) {
                Reference::parse(&r.to_string()).unwrap();
            }
            if let Ok(d) = s.parse::<Digest>() {
                assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
            }
        }
    });
}

#[test]
fn www_authenticate_corpus() {
    smoke("www_authenticate", 2000, |data| {
        for ch in strata_registry::www_authenticate::parse(&String::from_utf8_lossy(data)) {
            let _ = ch.param("realm");
        }
    });
}
