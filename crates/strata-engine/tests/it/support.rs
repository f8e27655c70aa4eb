//! Fixtures: a private store and build context per test, a build call that
//! records the events and the RUNs it caused, a base image imported from a
//! small tar, and the files of a built image read back from its layers.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Mutex;

use strata_engine::{BuildError, BuildOutput, BuildRequest, Event, EventKind, NetworkMode};
use strata_oci::{Digest, ImageConfig, Platform, Raw};
use strata_store::Store;

use crate::fake::{Call, FakeExecutor};

/// One test's world: a store and a build context in a temporary directory,
/// and the fake executor every build of the test uses.
pub(crate) struct Fixture {
    pub(crate) store: Store,
    pub(crate) exec: FakeExecutor,
    pub(crate) context: PathBuf,
    /// Last: removed after the store is closed.
    _dir: tempfile::TempDir,
}

impl Fixture {
    pub(crate) fn new() -> Fixture {
        Fixture::with_executor(FakeExecutor::new())
    }

    pub(crate) fn with_executor(exec: FakeExecutor) -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("store")).expect("open store");
        let context = dir.path().join("context");
        fs::create_dir(&context).unwrap();
        Fixture {
            store,
            exec,
            context,
            _dir: dir,
        }
    }

    /// Writes a context file (parents created), mode 0644.
    pub(crate) fn write(&self, rel: &str, content: &str) {
        let p = self.context.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, content).unwrap();
        self.chmod(rel, 0o644);
    }

    pub(crate) fn chmod(&self, rel: &str, mode: u32) {
        fs::set_permissions(self.context.join(rel), fs::Permissions::from_mode(mode)).unwrap();
    }

    /// Builds `dockerfile` (the text) with the context; panics on failure.
    pub(crate) fn build(&self, dockerfile: &str) -> Built {
        self.build_with(dockerfile, |_| {})
    }

    /// [`Fixture::build`] with a request the caller adjusts (args,
    /// target, tags...).
    pub(crate) fn build_with(
        &self,
        dockerfile: &str,
        edit: impl FnOnce(&mut BuildRequest),
    ) -> Built {
        let b = self.attempt(dockerfile, edit);
        if let Err(e) = &b.result {
            panic!("build failed: {e}\nevents: {:#?}", b.events);
        }
        b
    }

    /// A build that may fail: the result with what was recorded until then.
    pub(crate) fn attempt(&self, dockerfile: &str, edit: impl FnOnce(&mut BuildRequest)) -> Built {
        let mut req = BuildRequest {
            dockerfile_text: Some(dockerfile.to_string()),
            context: self.context.clone(),
            // No pasta or namespaces: the fake ignores the network anyway.
            network: NetworkMode::None,
            // Enough threads for every parallel stage a test has, whatever
            // the machine's core count.
            parallelism: Some(4),
            ..BuildRequest::default()
        };
        edit(&mut req);
        let events = Mutex::new(Vec::new());
        let sink = |e: Event| events.lock().unwrap().push(e.kind);
        let before = self.exec.calls().len();
        let result = strata_engine::build(&self.store, &self.exec, &req, &sink);
        Built {
            result,
            events: events.into_inner().unwrap(),
            runs: self.exec.calls().split_off(before),
        }
    }

    /// Imports a one-layer image of `files` (path, content; the layer
    /// applier makes their parent directories) the way `strata import`
    /// does, with ONBUILD `triggers` in its config, and tags it `tag`.
    /// Returns its image ID.
    pub(crate) fn import_base(
        &self,
        tag: &str,
        files: &[(&str, &str)],
        triggers: &[&str],
    ) -> Digest {
        let mut tar = tar::Builder::new(Vec::new());
        for (path, content) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(content.len() as u64);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(1_700_000_000);
            h.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut h, path, content.as_bytes()).unwrap();
        }
        let bytes = tar.into_inner().unwrap();
        let lease = self.store.lease("test-import").unwrap();
        let layer = strata_store::transfer::import_layer(
            &self.store,
            &mut &bytes[..],
            "base",
            Some(&lease),
        )
        .expect("import layer");
        let host = Platform::host();
        let config: ImageConfig = serde_json::from_value(serde_json::json!({
            "architecture": host.architecture,
            "os": host.os,
            "variant": host.variant,
            "created": "2024-01-01T00:00:00Z",
            "config": {
                "Env": ["PATH=/usr/bin:/bin"],
                "OnBuild": if triggers.is_empty() { None } else { Some(triggers) },
            },
            "rootfs": { "type": "layers", "diff_ids": [layer.diff_id.to_string()] },
            "history": [{ "created": "2024-01-01T00:00:00Z", "created_by": "test import" }],
        }))
        .unwrap();
        let id = strata_store::transfer::commit_image(
            &self.store,
            &Raw::from_value(config),
            &[layer.to_record()],
            Some(&lease),
        )
        .expect("commit image");
        let full = strata_oci::Reference::parse(tag).unwrap().to_string();
        self.store.meta().tag(&full, &id).expect("tag");
        id
    }

    /// The files of an image: its layers applied in order (whiteouts
    /// remove what is below them).
    pub(crate) fn files(&self, image: &Digest) -> ImageFiles {
        let info = self.store.meta().image(image).unwrap().expect("image");
        let mut files = BTreeMap::new();
        for layer in &info.layers {
            // A built layer has no blob: its tar is made from its snapshot.
            let mut blob = Vec::new();
            self.store
                .open_layer(&layer.digest)
                .unwrap()
                .read_to_end(&mut blob)
                .unwrap();
            let mut raw = Vec::new();
            if blob.starts_with(&[0x1f, 0x8b]) {
                flate2::read::GzDecoder::new(&blob[..])
                    .read_to_end(&mut raw)
                    .unwrap();
            } else {
                raw = blob;
            }
            apply_layer(&mut files, &raw);
        }
        ImageFiles(files)
    }

    /// The image's config (`config` object of the config blob).
    pub(crate) fn config(&self, image: &Digest) -> serde_json::Value {
        let info = self.store.meta().image(image).unwrap().expect("image");
        let blob = self.store.blobs().read(&info.config_digest).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&blob).unwrap();
        v["config"].clone()
    }
}

fn apply_layer(files: &mut BTreeMap<String, Entry>, tar_bytes: &[u8]) {
    let mut archive = tar::Archive::new(tar_bytes);
    for e in archive.entries().unwrap() {
        let e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let path = path
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", &path));
        if name == ".wh..wh..opq" {
            files.retain(|p, _| !p.starts_with(&format!("{dir}/")));
            continue;
        }
        if let Some(gone) = name.strip_prefix(".wh.") {
            let gone = if dir.is_empty() {
                gone.to_string()
            } else {
                format!("{dir}/{gone}")
            };
            files.retain(|p, _| *p != gone && !p.starts_with(&format!("{gone}/")));
            continue;
        }
        files.insert(path, Entry::read(e));
    }
}

/// One file of an image, as its last layer has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) kind: tar::EntryType,
    /// Permission bits (`& 0o7777`).
    pub(crate) mode: u32,
    pub(crate) uid: u64,
    pub(crate) gid: u64,
    pub(crate) content: Vec<u8>,
}

impl Entry {
    fn read(mut e: tar::Entry<'_, &[u8]>) -> Entry {
        let h = e.header().clone();
        let mut content = Vec::new();
        e.read_to_end(&mut content).unwrap();
        Entry {
            kind: h.entry_type(),
            mode: h.mode().unwrap() & 0o7777,
            uid: h.uid().unwrap(),
            gid: h.gid().unwrap(),
            content,
        }
    }
}

/// Paths (relative, no leading `/`) to entries.
#[derive(Debug)]
pub(crate) struct ImageFiles(pub BTreeMap<String, Entry>);

impl ImageFiles {
    pub(crate) fn get(&self, path: &str) -> &Entry {
        self.0
            .get(path)
            .unwrap_or_else(|| panic!("{path} not in the image: {:?}", self.paths()))
    }

    /// The content of a regular file, as text.
    pub(crate) fn text(&self, path: &str) -> String {
        let e = self.get(path);
        assert!(e.kind.is_file(), "{path} is a {:?}", e.kind);
        String::from_utf8(e.content.clone()).unwrap()
    }

    pub(crate) fn has(&self, path: &str) -> bool {
        self.0.contains_key(path)
    }

    pub(crate) fn paths(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// What one build did.
pub(crate) struct Built {
    pub(crate) result: Result<BuildOutput, BuildError>,
    pub(crate) events: Vec<EventKind>,
    /// The RUNs the fake executor received during this build.
    pub(crate) runs: Vec<Call>,
}

impl Built {
    pub(crate) fn out(&self) -> &BuildOutput {
        self.result.as_ref().expect("the build succeeded")
    }

    pub(crate) fn image(&self) -> &Digest {
        &self.out().image_id
    }

    /// The error of a build that had to fail.
    pub(crate) fn error(&self) -> &BuildError {
        match &self.result {
            Ok(_) => panic!("the build succeeded; events: {:#?}", self.events),
            Err(e) => e,
        }
    }

    /// The scripts of this build's RUNs, in the order they started.
    pub(crate) fn scripts(&self) -> Vec<&str> {
        self.runs.iter().map(|c| c.script.as_str()).collect()
    }

    /// The step number of the one step whose name ends with `instruction`
    /// (`RUN echo a > /a`), from its StepStarted event.
    pub(crate) fn step(&self, instruction: &str) -> usize {
        let found: Vec<usize> = self
            .events
            .iter()
            .filter_map(|e| match e {
                EventKind::StepStarted { step, name, .. } if name.ends_with(instruction) => {
                    Some(*step)
                }
                _ => None,
            })
            .collect();
        match found.as_slice() {
            [one] => *one,
            _ => panic!(
                "{} steps named {instruction:?} in {:#?}",
                found.len(),
                self.events
            ),
        }
    }

    /// Whether the step came from the cache (a Cached event).
    pub(crate) fn cached(&self, instruction: &str) -> bool {
        let n = self.step(instruction);
        let cached = self
            .events
            .iter()
            .any(|e| matches!(e, EventKind::Cached { step } if *step == n));
        let missed = self.miss(instruction).is_some();
        assert_ne!(cached, missed, "step {n} both or neither cached and missed");
        cached
    }

    /// The CacheMiss event of the step: `Some(reason)` when it missed.
    pub(crate) fn miss(&self, instruction: &str) -> Option<Option<String>> {
        let n = self.step(instruction);
        self.events.iter().find_map(|e| match e {
            EventKind::CacheMiss { step, reason } if *step == n => Some(reason.clone()),
            _ => None,
        })
    }

    /// The reason of a step's miss; panics when it hit or had no reason.
    pub(crate) fn miss_reason(&self, instruction: &str) -> String {
        match self.miss(instruction) {
            Some(Some(r)) => r,
            other => panic!("{instruction}: expected a miss with a reason, got {other:?}"),
        }
    }

    /// The stages reported skipped.
    pub(crate) fn skipped(&self) -> Vec<&str> {
        self.events
            .iter()
            .filter_map(|e| match e {
                EventKind::StageSkipped { stage } => Some(stage.as_str()),
                _ => None,
            })
            .collect()
    }
}
