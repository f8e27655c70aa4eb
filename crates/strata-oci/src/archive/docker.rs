//! `docker save`'s own metadata: `manifest.json` (`[{Config, RepoTags,
//! Layers, LayerSources}]`) and `repositories`. Legacy archives
//! (`<id>/layer.tar`, `<id>.json`) have no image manifest; one is
//! synthesised (Docker v2 schema 2, layer media types from the layer
//! files' compression, as stored).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::reader::Scanned;
use super::ArchiveImage;
use crate::config::ImageConfig;
use crate::descriptor::Descriptor;
use crate::digest::Digest;
use crate::error::Error;
use crate::manifest::ImageManifest;
use crate::media_types;
use crate::raw::Raw;
use crate::reference::Reference;

/// One entry of `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ManifestEntry {
    #[serde(rename = "Config")]
    pub config: String,
    #[serde(rename = "RepoTags", default)]
    pub repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    pub layers: Vec<String>,
    #[serde(
        rename = "LayerSources",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub layer_sources: Option<BTreeMap<Digest, Descriptor>>,
}

fn parse_manifest_json(bytes: &[u8]) -> Result<Vec<ManifestEntry>, Error> {
    serde_json::from_slice(bytes).map_err(|e| Error::json("manifest.json", e))
}

fn normalise_repo_tags(entry: &ManifestEntry) -> Result<Vec<String>, Error> {
    let mut names: Vec<String> = Vec::new();
    // A set beside the list: `contains` on the list was quadratic in the
    // number of tags (an archive may carry tens of thousands).
    let mut seen = std::collections::HashSet::new();
    for tag in entry.repo_tags.iter().flatten() {
        let r = Reference::parse(tag).map_err(|e| Error::Invalid {
            why: format!(
                "manifest.json names image {:?} with an invalid RepoTag: {e}",
                entry.config
            ),
        })?;
        let s = r.to_string();
        if seen.insert(s.clone()) {
            names.push(s);
        }
    }
    Ok(names)
}

/// Resolves a `manifest.json`-only (legacy) archive.
pub(crate) fn resolve_manifest_json(bytes: &[u8], s: &Scanned) -> Result<Vec<ArchiveImage>, Error> {
    let entries = parse_manifest_json(bytes)?;
    if entries.is_empty() {
        return Err(Error::Invalid {
            why: "manifest.json lists no image".into(),
        });
    }
    entries.iter().map(|e| resolve_entry(e, s)).collect()
}

fn resolve_entry(entry: &ManifestEntry, s: &Scanned) -> Result<ArchiveImage, Error> {
    let info = s
        .lookup(&entry.config)?
        .ok_or_else(|| Error::MissingEntry {
            what: "image config",
            path: entry.config.clone(),
        })?;
    let bytes = s.json.get(&info.digest).ok_or_else(|| Error::Invalid {
        why: format!(
            "image config {:?} is not a JSON document of at most {} bytes",
            entry.config,
            super::reader::JSON_BLOB_LIMIT
        ),
    })?;
    let config: Raw<ImageConfig> =
        Raw::from_bytes(bytes.clone(), &format!("image config {:?}", entry.config))?;
    let diff_ids = config.diff_ids();
    if entry.layers.len() != diff_ids.len() {
        return Err(Error::Invalid {
            why: format!(
                "manifest.json lists {} layers for {:?}, but its config has {} diff_ids",
                entry.layers.len(),
                entry.config,
                diff_ids.len()
            ),
        });
    }
    let mut layers = Vec::with_capacity(entry.layers.len());
    for (path, diff_id) in entry.layers.iter().zip(diff_ids) {
        let foreign = entry.layer_sources.as_ref().and_then(|m| m.get(diff_id));
        let desc = match (s.lookup(path)?, foreign) {
            (_, Some(src)) => src.clone(),
            (Some(f), None) => Descriptor::new(
                media_types::docker_layer(f.compression),
                f.digest.clone(),
                f.size,
            ),
            (None, None) => {
                return Err(Error::MissingEntry {
                    what: "layer",
                    path: path.clone(),
                })
            }
        };
        layers.push(desc);
    }
    let config_desc = Descriptor::new(media_types::DOCKER_CONFIG, info.digest.clone(), info.size);
    let manifest = Raw::from_value(ImageManifest::docker(config_desc, layers.clone()));
    Ok(ArchiveImage {
        manifest,
        manifest_synthesised: true,
        config_digest: config.digest().clone(),
        platform: Some(config.platform()),
        config,
        layers,
        names: normalise_repo_tags(entry)?,
    })
}

/// Docker 25+ archives carry both `index.json` and `manifest.json`; the
/// latter's `RepoTags` are added to the images found through the index.
/// Entries the index does not list are resolved the legacy way.
pub(crate) fn merge_repo_tags(
    images: &mut Vec<ArchiveImage>,
    bytes: &[u8],
    s: &Scanned,
) -> Result<(), Error> {
    // Config digest -> image, so many entries are not compared with every
    // image each.
    let mut at: HashMap<Digest, usize> = images
        .iter()
        .enumerate()
        .map(|(i, img)| (img.config_digest.clone(), i))
        .collect();
    for entry in parse_manifest_json(bytes)? {
        let Some(info) = s.lookup(&entry.config)? else {
            return Err(Error::MissingEntry {
                what: "image config",
                path: entry.config.clone(),
            });
        };
        let names = normalise_repo_tags(&entry)?;
        match at.get(&info.digest) {
            Some(&i) => images[i].names.extend(names),
            None => {
                at.insert(info.digest.clone(), images.len());
                images.push(resolve_entry(&entry, s)?);
            }
        }
    }
    for img in images.iter_mut() {
        super::dedup_names(&mut img.names);
    }
    Ok(())
}

/// `manifest.json` for images written as `blobs/sha256/<hex>`.
pub(crate) fn manifest_entry(
    config_digest: &Digest,
    layers: &[Descriptor],
    names: &[Reference],
    foreign: BTreeMap<Digest, Descriptor>,
) -> ManifestEntry {
    let tags: Vec<String> = names
        .iter()
        .filter(|r| r.tag().is_some())
        .map(|r| {
            // RepoTags carry name:tag, never a digest.
            let mut s = r.familiar_name();
            s.push(':');
            s.push_str(r.tag().unwrap_or("latest"));
            s
        })
        .collect();
    ManifestEntry {
        config: blob_path(config_digest),
        repo_tags: (!tags.is_empty()).then_some(tags),
        layers: layers.iter().map(|l| blob_path(&l.digest)).collect(),
        layer_sources: (!foreign.is_empty()).then_some(foreign),
    }
}

/// The legacy `repositories` file: `{"busybox":{"latest":"<top layer hex>"}}`.
pub(crate) fn repositories(images: &[(&[Reference], Option<&Digest>)]) -> Vec<u8> {
    let mut repos: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (names, top) in images {
        let Some(top) = top else { continue };
        for r in names.iter() {
            if let Some(tag) = r.tag() {
                repos
                    .entry(r.familiar_name())
                    .or_default()
                    .insert(tag.to_string(), top.hex().to_string());
            }
        }
    }
    crate::raw::to_go_json(&repos)
}

pub(crate) fn blob_path(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

/// Diff IDs by layer digest, for `LayerSources`.
pub(crate) fn diff_ids_by_layer(
    config: &ImageConfig,
    layers: &[Descriptor],
) -> HashMap<Digest, Digest> {
    layers
        .iter()
        .zip(config.diff_ids())
        .map(|(l, d)| (l.digest.clone(), d.clone()))
        .collect()
}
