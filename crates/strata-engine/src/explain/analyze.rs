//! `image explain`: an image's bytes by layer and by the step that made
//! each layer, each layer's largest directories and files, the bytes a
//! later layer deletes or overwrites (wasted), and the stages of the build
//! when strata recorded them.

use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::io::Read;

use serde::Serialize;
use strata_oci::Digest;
use strata_store::Store;

use super::record::{self, BuildRecord, CopyRecord};
use crate::images::{load_image, BaseImage, ImageError};

/// A path and its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathSize {
    /// The path in the image.
    pub path: String,
    /// Its bytes.
    pub bytes: u64,
}

/// One layer.
#[derive(Debug, Clone, Serialize)]
pub struct LayerInfo {
    /// 1-based, base first.
    pub index: usize,
    /// The layer's diff ID.
    pub diff_id: String,
    /// Uncompressed bytes.
    pub size: u64,
    /// The step that made it (`created_by` of its history entry).
    pub step: Option<String>,
    /// The layer came with the final stage's base image.
    pub base: bool,
    /// Regular files in the layer.
    pub files: u64,
    /// The directories that take the most bytes.
    pub top_dirs: Vec<PathSize>,
    /// The largest files.
    pub top_files: Vec<PathSize>,
}

/// Bytes one layer added that a later layer deleted or overwrote.
#[derive(Debug, Clone, Serialize)]
pub struct Waste {
    /// The layer (from 1) that added the bytes.
    pub added_by_layer: usize,
    /// The step that made it.
    pub added_by: Option<String>,
    /// The layer that deleted or overwrote them.
    pub wasted_by_layer: usize,
    /// The step that made it.
    pub wasted_by: Option<String>,
    /// `deleted` (a whiteout) or `overwritten`.
    pub how: &'static str,
    /// Bytes wasted.
    pub bytes: u64,
    /// Files wasted.
    pub files: u64,
    /// The largest of those files.
    pub top: Vec<PathSize>,
}

/// One stage of the recorded build.
#[derive(Debug, Clone, Serialize)]
pub struct StageInfo {
    #[serde(flatten)]
    /// What the build record says of it.
    pub record: record::StageRecord,
    /// The final image is (built on) this stage.
    pub in_final: bool,
    /// Bytes the final image copied from it.
    pub taken: u64,
    /// Bytes of it not in the final image.
    pub left_behind: u64,
}

/// The recorded stages.
#[derive(Debug, Clone, Serialize)]
pub struct Stages {
    /// The target stage's label.
    pub target: String,
    /// The stages that ran.
    pub stages: Vec<StageInfo>,
    /// Every `COPY --from` between them.
    pub copies: Vec<CopyRecord>,
}

/// What `image explain` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// The image ID.
    pub id: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// Its uncompressed size.
    pub size: u64,
    /// Bytes of the base image's layers.
    pub base_size: u64,
    /// Its layers, bottom first.
    pub layers: Vec<LayerInfo>,
    /// Bytes added by a layer and removed by a later one.
    pub wasted_bytes: u64,
    /// Where they are.
    pub wasted: Vec<Waste>,
    /// Present for images strata built and recorded.
    pub stages: Option<Stages>,
}

/// The one-line summary after a build.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The image's uncompressed size.
    pub size: u64,
    /// The final stage's base image (from the build record).
    pub base: Option<String>,
    /// The base's uncompressed size.
    pub base_size: u64,
    /// The largest layer the build's own steps made: step and bytes.
    pub largest_step: Option<(String, u64)>,
}

#[derive(Debug, thiserror::Error)]
/// Why an image could not be explained.
pub enum ExplainError {
    #[error(transparent)]
    /// The image could not be loaded.
    Image(#[from] ImageError),
    /// A layer could not be read.
    #[error("image {image}: layer {layer} ({digest})")]
    Layer {
        /// The image as named.
        image: String,
        /// The layer's number (from 1).
        layer: usize,
        /// Its blob digest.
        digest: String,
        /// Why.
        #[source]
        source: Box<super::needs::ImageFsError>,
    },
}

/// How many layers came from the final stage's base, by the record, else
/// none known.
fn base_layer_count(rec: Option<&BuildRecord>) -> usize {
    rec.and_then(|r| r.stages.iter().find(|s| s.target))
        .map_or(0, |s| s.base_layers)
}

/// The summary line's numbers (no layer is read).
pub fn summary(store: &Store, image: &Digest) -> Result<Summary, ImageError> {
    let img = load_image(store, &image.to_string())?;
    let rec = record::load(store, &img.id);
    let nbase = base_layer_count(rec.as_ref()).min(img.layers.len());
    let steps = record::layer_steps(&img.config, img.layers.len());
    let size = img.layers.iter().map(|l| l.uncompressed_size).sum();
    let base_size = img.layers[..nbase]
        .iter()
        .map(|l| l.uncompressed_size)
        .sum();
    let largest_step = img.layers[nbase..]
        .iter()
        .zip(&steps[nbase..])
        .max_by_key(|(l, _)| l.uncompressed_size)
        .map(|(l, s)| (s.clone().unwrap_or_default(), l.uncompressed_size));
    let base = rec
        .as_ref()
        .and_then(|r| r.stages.iter().find(|s| s.target))
        .map(|s| s.base.clone());
    Ok(Summary {
        size,
        base,
        base_size,
        largest_step,
    })
}

/// Explains an image: reads every layer once, as a stream.
pub fn explain_image(store: &Store, name: &str, top: usize) -> Result<Explanation, ExplainError> {
    let img = load_image(store, name)?;
    let rec = record::load(store, &img.id);
    let tags = store.meta().tags_of(&img.id).unwrap_or_default();
    let nbase = base_layer_count(rec.as_ref()).min(img.layers.len());
    let steps = record::layer_steps(&img.config, img.layers.len());
    let mut walker = Walker::default();
    let mut layers = Vec::new();
    for (i, l) in img.layers.iter().enumerate() {
        let stats = walker
            .layer(store, &img, i, top)
            .map_err(|source| ExplainError::Layer {
                image: name.to_string(),
                layer: i + 1,
                digest: l.digest.to_string(),
                source: Box::new(source),
            })?;
        layers.push(LayerInfo {
            index: i + 1,
            diff_id: l.diff_id.to_string(),
            size: l.uncompressed_size,
            step: steps[i].clone(),
            base: i < nbase,
            files: stats.files,
            top_dirs: stats.top_dirs,
            top_files: stats.top_files,
        });
    }
    let mut wasted: Vec<Waste> = walker
        .waste
        .into_iter()
        .map(|((added, by, how), w)| Waste {
            added_by_layer: added + 1,
            added_by: steps[added].clone(),
            wasted_by_layer: by + 1,
            wasted_by: steps[by].clone(),
            how,
            bytes: w.bytes,
            files: w.files,
            top: w.top.into_sorted(),
        })
        .collect();
    wasted.sort_by_key(|w| std::cmp::Reverse(w.bytes));
    let size = img.layers.iter().map(|l| l.uncompressed_size).sum();
    Ok(Explanation {
        id: img.id.to_string(),
        tags,
        size,
        base_size: layers.iter().filter(|l| l.base).map(|l| l.size).sum(),
        wasted_bytes: wasted.iter().map(|w| w.bytes).sum(),
        wasted,
        layers,
        stages: rec.map(stages),
    })
}

/// The stages view: what the final image took from each stage and what
/// it left behind.
fn stages(rec: BuildRecord) -> Stages {
    // The final chain: the target and the stages it is built on.
    let mut in_final = vec![rec.target.clone()];
    loop {
        let last = in_final.last().cloned().unwrap_or_default();
        match rec.stages.iter().find(|s| s.name == last) {
            Some(s)
                if rec.stages.iter().any(|o| o.name == s.base) && !in_final.contains(&s.base) =>
            {
                in_final.push(s.base.clone())
            }
            _ => break,
        }
    }
    let stages = rec
        .stages
        .iter()
        .map(|s| {
            let final_ = in_final.contains(&s.name);
            let taken: u64 = rec
                .copies
                .iter()
                .filter(|c| c.from == s.name && in_final.contains(&c.stage))
                .map(|c| c.bytes)
                .sum();
            StageInfo {
                record: s.clone(),
                in_final: final_,
                taken,
                left_behind: if final_ {
                    0
                } else {
                    s.total().saturating_sub(taken)
                },
            }
        })
        .collect();
    Stages {
        target: rec.target,
        stages,
        copies: rec.copies,
    }
}

/// The N largest paths (a min-heap of the largest seen).
#[derive(Debug)]
struct TopN {
    n: usize,
    heap: BinaryHeap<std::cmp::Reverse<(u64, String)>>,
}

impl TopN {
    fn new(n: usize) -> TopN {
        TopN {
            n,
            heap: BinaryHeap::new(),
        }
    }
    fn push(&mut self, bytes: u64, path: &str) {
        if self.n == 0 {
            return;
        }
        if self.heap.len() < self.n {
            self.heap.push(std::cmp::Reverse((bytes, path.to_string())));
        } else if self.heap.peek().is_some_and(|m| m.0 .0 < bytes) {
            self.heap.pop();
            self.heap.push(std::cmp::Reverse((bytes, path.to_string())));
        }
    }
    fn into_sorted(self) -> Vec<PathSize> {
        let mut v: Vec<PathSize> = self
            .heap
            .into_iter()
            .map(|std::cmp::Reverse((bytes, path))| PathSize { path, bytes })
            .collect();
        v.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.path.cmp(&b.path)));
        v
    }
}

struct WasteAcc {
    bytes: u64,
    files: u64,
    top: TopN,
}

/// What a layer held.
struct LayerStats {
    files: u64,
    top_dirs: Vec<PathSize>,
    top_files: Vec<PathSize>,
}

/// Directories counted for "largest directories".
const DIR_DEPTH: usize = 4;

/// The live files of the layers read so far, and the waste found.
#[derive(Default)]
struct Walker {
    /// Path -> (layer, bytes) of each regular file still visible.
    live: BTreeMap<String, (usize, u64)>,
    waste: BTreeMap<(usize, usize, &'static str), WasteAcc>,
}

/// A tar entry's path, relative, without `./` or a trailing `/`.
pub(super) fn clean(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    let s = s.trim_start_matches("./").trim_start_matches('/');
    s.trim_end_matches('/').to_string()
}

impl Walker {
    fn wasted(
        &mut self,
        path: &str,
        added: usize,
        bytes: u64,
        by: usize,
        how: &'static str,
        top: usize,
    ) {
        if bytes == 0 {
            return;
        }
        let acc = self
            .waste
            .entry((added, by, how))
            .or_insert_with(|| WasteAcc {
                bytes: 0,
                files: 0,
                top: TopN::new(top),
            });
        acc.bytes += bytes;
        acc.files += 1;
        acc.top.push(bytes, &format!("/{path}"));
    }

    /// Removes `path` and everything under it that earlier layers made.
    fn remove_tree(
        &mut self,
        path: &str,
        layer: usize,
        how: &'static str,
        top: usize,
        self_too: bool,
    ) {
        let mut gone = Vec::new();
        if self_too {
            if let Some(&(l, b)) = self.live.get(path) {
                if l < layer {
                    gone.push((path.to_string(), l, b));
                }
            }
        }
        let prefix = if path.is_empty() {
            String::new()
        } else {
            format!("{path}/")
        };
        for (p, &(l, b)) in self.live.range(prefix.clone()..) {
            if !p.starts_with(&prefix) {
                break;
            }
            if l < layer {
                gone.push((p.clone(), l, b));
            }
        }
        for (p, l, b) in gone {
            self.live.remove(&p);
            self.wasted(&p, l, b, layer, how, top);
        }
    }

    fn layer(
        &mut self,
        store: &Store,
        img: &BaseImage,
        i: usize,
        top: usize,
    ) -> Result<LayerStats, super::needs::ImageFsError> {
        let l = &img.layers[i];
        let digest = l.digest.clone();
        let mut file = store.open_layer(&digest)?;
        let reader: Box<dyn Read + '_> = strata_store::diff::decompressed(&mut file)?;
        self.walk(reader, i, top)
    }

    /// Reads layer `i` (an uncompressed tar stream).
    fn walk(
        &mut self,
        reader: impl Read,
        i: usize,
        top: usize,
    ) -> Result<LayerStats, super::needs::ImageFsError> {
        let mut archive = tar::Archive::new(reader);
        let mut files = 0u64;
        let mut top_files = TopN::new(top);
        let mut dirs: HashMap<String, u64> = HashMap::new();
        for entry in archive.entries()? {
            let entry = entry?;
            let path = clean(&entry.path_bytes());
            if path.is_empty() {
                continue;
            }
            let (parent, base) = match path.rsplit_once('/') {
                Some((p, b)) => (p.to_string(), b.to_string()),
                None => (String::new(), path.clone()),
            };
            if base == ".wh..wh..opq" {
                self.remove_tree(&parent, i, "deleted", top, false);
                continue;
            }
            if let Some(name) = base.strip_prefix(".wh.") {
                let target = if parent.is_empty() {
                    name.to_string()
                } else {
                    format!("{parent}/{name}")
                };
                self.remove_tree(&target, i, "deleted", top, true);
                continue;
            }
            let kind = entry.header().entry_type();
            if let Some((l, b)) = self.live.get(&path).copied() {
                if l < i {
                    self.live.remove(&path);
                    self.wasted(&path, l, b, i, "overwritten", top);
                }
            }
            if !kind.is_dir() {
                // A file, link or special file replaces a directory's tree.
                self.remove_tree(&path, i, "overwritten", top, false);
            }
            if !kind.is_file() {
                continue;
            }
            let bytes = entry.size();
            files += 1;
            top_files.push(bytes, &format!("/{path}"));
            self.live.insert(path.clone(), (i, bytes));
            for (depth, (pos, _)) in path.match_indices('/').enumerate() {
                if depth >= DIR_DEPTH {
                    break;
                }
                *dirs.entry(path[..pos].to_string()).or_default() += bytes;
            }
        }
        Ok(LayerStats {
            files,
            top_dirs: largest_dirs(&dirs, top),
            top_files: top_files.into_sorted(),
        })
    }
}

/// The largest directories, preferring the deeper one when a single child
/// holds nearly all (90%) of its parent's bytes.
fn largest_dirs(dirs: &HashMap<String, u64>, n: usize) -> Vec<PathSize> {
    let mut children_max: HashMap<&str, u64> = HashMap::new();
    for (d, &b) in dirs {
        if let Some((p, _)) = d.rsplit_once('/') {
            let e = children_max.entry(p).or_default();
            *e = (*e).max(b);
        }
    }
    let mut v: Vec<PathSize> = dirs
        .iter()
        .filter(|(d, &b)| {
            children_max
                .get(d.as_str())
                .is_none_or(|&c| (c as f64) < 0.9 * b as f64)
        })
        .map(|(d, &b)| PathSize {
            path: format!("/{d}"),
            bytes: b,
        })
        .collect();
    v.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.path.cmp(&b.path)));
    v.truncate(n);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largest_dirs_descend_into_a_dominant_child() {
        let mut d = HashMap::new();
        d.insert("usr".to_string(), 100);
        d.insert("usr/local".to_string(), 95);
        d.insert("usr/local/go".to_string(), 60);
        d.insert("usr/local/lib".to_string(), 35);
        d.insert("etc".to_string(), 3);
        let v: Vec<String> = largest_dirs(&d, 5).into_iter().map(|p| p.path).collect();
        assert_eq!(v, ["/usr/local", "/usr/local/go", "/usr/local/lib", "/etc"]);
    }

    /// A tar of (path, size) regular files (size 0 with a trailing `/`:
    /// a directory).
    fn layer(entries: &[(&str, usize)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (p, n) in entries {
            let mut h = tar::Header::new_gnu();
            if p.ends_with('/') {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                b.append_data(&mut h, p, std::io::empty()).unwrap();
            } else {
                h.set_size(*n as u64);
                h.set_mode(0o644);
                b.append_data(&mut h, p, &vec![0u8; *n][..]).unwrap();
            }
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn whiteouts_opaque_dirs_and_overwrites_are_waste() {
        let mut w = Walker::default();
        let l0 = layer(&[
            ("a/", 0),
            ("a/big", 1000),
            ("a/keep", 10),
            ("d/", 0),
            ("d/x", 300),
        ]);
        let s = w.walk(&l0[..], 0, 5).unwrap();
        assert_eq!(s.files, 3);
        assert_eq!(s.top_files[0].path, "/a/big");
        let l1 = layer(&[("a/.wh.big", 0), ("a/keep", 20)]);
        w.walk(&l1[..], 1, 5).unwrap();
        let l2 = layer(&[("d/", 0), ("d/.wh..wh..opq", 0), ("d/y", 5)]);
        w.walk(&l2[..], 2, 5).unwrap();
        let got: Vec<(usize, usize, &str, u64)> = w
            .waste
            .iter()
            .map(|((a, b, how), acc)| (*a, *b, *how, acc.bytes))
            .collect();
        assert_eq!(
            got,
            [
                (0, 1, "deleted", 1000),
                (0, 1, "overwritten", 10),
                (0, 2, "deleted", 300)
            ]
        );
        // What is left: the rewritten keep and the new y.
        let live: Vec<&str> = w.live.keys().map(String::as_str).collect();
        assert_eq!(live, ["a/keep", "d/y"]);
    }

    #[test]
    fn top_n_keeps_the_largest() {
        let mut t = TopN::new(2);
        for (b, p) in [(5, "a"), (1, "b"), (9, "c"), (7, "d")] {
            t.push(b, p);
        }
        let v: Vec<u64> = t.into_sorted().into_iter().map(|p| p.bytes).collect();
        assert_eq!(v, [9, 7]);
    }
}
