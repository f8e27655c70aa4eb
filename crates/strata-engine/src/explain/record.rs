//! The build record: what each stage of a multi-stage build weighed and
//! what the final image took from the others (`COPY --from`). Written by
//! [`crate::build()`] as an image note in the store's metadata db (never in
//! the config: the image ID does not change), read by `image explain` and
//! the build summary.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use strata_frontend::{Base, Instruction, Plan};
use strata_oci::Digest;
use strata_store::Store;

use crate::cache::LayerRef;
use crate::config::ImageConfig;
use crate::state::{stage_label, StageState};

/// The note kind the record is stored under.
pub(crate) const NOTE_KIND: &str = "build";

/// One build's record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildRecord {
    /// The target stage's label.
    pub target: String,
    /// The stages that ran, in build order.
    pub stages: Vec<StageRecord>,
    /// Every `COPY --from=STAGE` of the built stages.
    pub copies: Vec<CopyRecord>,
}

/// One stage that ran.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageRecord {
    /// The stage's index in the Dockerfile.
    pub index: usize,
    /// The stage's name, else `stage-N`.
    pub name: String,
    /// The FROM word: an image name, `scratch`, or an earlier stage's label.
    pub base: String,
    /// Layers (and their uncompressed bytes) the stage got from its base.
    pub base_layers: usize,
    /// Uncompressed bytes of the base's layers.
    pub base_size: u64,
    /// Layers (and bytes) its own steps added.
    pub layers: usize,
    /// Uncompressed bytes of its own layers.
    pub size: u64,
    /// Whether this is the target stage.
    pub target: bool,
}

impl StageRecord {
    /// Base and own bytes together.
    pub fn total(&self) -> u64 {
        self.base_size + self.size
    }
}

/// One `COPY --from=STAGE`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyRecord {
    /// The stage that copies.
    pub stage: String,
    /// The stage copied from.
    pub from: String,
    /// Source paths as written, and the destination.
    pub paths: Vec<String>,
    /// The destination.
    pub dest: String,
    /// Uncompressed bytes of the layer the copy made.
    pub bytes: u64,
    /// The Dockerfile line.
    pub line: usize,
}

/// Pairs a config's non-empty history entries with its layers: the step
/// (`created_by`) that made each layer, `None` when the history is short.
pub fn layer_steps(config: &ImageConfig, layers: usize) -> Vec<Option<String>> {
    let made: Vec<Option<String>> = config
        .history
        .iter()
        .filter(|h| !h.empty_layer)
        .map(|h| h.created_by.clone())
        .collect();
    // Older images may record fewer entries than layers: align at the end.
    let skip = layers.saturating_sub(made.len());
    (0..layers)
        .map(|i| {
            if i < skip {
                None
            } else {
                made.get(i - skip + made.len().saturating_sub(layers))
                    .cloned()
                    .flatten()
            }
        })
        .collect()
}

fn bytes(layers: &[LayerRef]) -> u64 {
    layers.iter().map(|l| l.uncompressed_size).sum()
}

/// Builds the record from the plan and the stages' final states.
/// `base_layers(stage)` is how many layers the stage's base image had
/// (image bases only; scratch and stage bases are known here).
pub(crate) fn record(
    plan: &Plan,
    states: &BTreeMap<usize, StageState>,
    base_layers: &dyn Fn(usize) -> Option<usize>,
) -> BuildRecord {
    let mut out = BuildRecord {
        target: stage_label(&plan.stages[plan.target]),
        ..Default::default()
    };
    let stage_by_word = |word: &str| -> Option<usize> {
        let lower = word.to_ascii_lowercase();
        plan.stages
            .iter()
            .position(|s| s.name.as_deref() == Some(lower.as_str()))
            .or_else(|| {
                word.parse::<usize>()
                    .ok()
                    .filter(|i| *i < plan.stages.len())
            })
    };
    for (&i, st) in states {
        let stage = &plan.stages[i];
        let (base, nbase) = match &stage.base {
            Base::Scratch => ("scratch".to_string(), 0),
            Base::Stage(b) => (
                stage_label(&plan.stages[*b]),
                states.get(b).map_or(0, |s| s.layers.len()),
            ),
            Base::Image(name) => (name.clone(), base_layers(i).unwrap_or(0)),
        };
        let nbase = nbase.min(st.layers.len());
        let own = &st.layers[nbase..];
        out.stages.push(StageRecord {
            index: i,
            name: stage_label(stage),
            base,
            base_layers: nbase,
            base_size: bytes(&st.layers[..nbase]),
            layers: own.len(),
            size: bytes(own),
            target: i == plan.target,
        });
        let steps = layer_steps(&st.config, st.layers.len());
        for step in &stage.steps {
            let Instruction::Copy(c) = &step.instruction else {
                continue;
            };
            let Some(from) = c.from.as_deref().and_then(stage_by_word) else {
                continue;
            };
            let by = format!("{} # buildkit", step.source.trim());
            let bytes = steps
                .iter()
                .enumerate()
                .skip(nbase)
                .rev()
                .find(|(_, s)| s.as_deref() == Some(by.as_str()))
                .map_or(0, |(k, _)| st.layers[k].uncompressed_size);
            out.copies.push(CopyRecord {
                stage: stage_label(stage),
                from: stage_label(&plan.stages[from]),
                paths: c.srcs.clone(),
                dest: c.dest.clone(),
                bytes,
                line: step.location.line,
            });
        }
    }
    out
}

/// Stores the record beside the image.
pub fn save(
    store: &Store,
    image: &Digest,
    rec: &BuildRecord,
) -> Result<(), strata_store::StoreError> {
    // A record of strings and numbers always serializes.
    let json = serde_json::to_string(rec).unwrap_or_default();
    store.meta().put_image_note(image, NOTE_KIND, &json)
}

/// The record of the build that made `image`, when strata built it.
pub fn load(store: &Store, image: &Digest) -> Option<BuildRecord> {
    let json = store.meta().image_note(image, NOTE_KIND).ok()??;
    serde_json::from_str(&json).ok()
}

/// After a build: records it for `image explain` (a failure to record is
/// logged, never fails the build).
pub(crate) fn save_for_build(
    pass: &crate::pass::Pass<'_>,
    states: &BTreeMap<usize, StageState>,
    image: &Digest,
) {
    let s = pass.session;
    let base_layers = |i: usize| -> Option<usize> {
        let Base::Image(name) = &pass.plan.stages[i].base else {
            return None;
        };
        let id = match pass.inputs.named(name) {
            Some(crate::named::Named::Image(id)) => id.clone(),
            Some(crate::named::Named::Dir(_)) => return Some(1),
            None => s
                .images
                .resolve_for(name, &pass.platform, s.events)
                .ok()?
                .to_string(),
        };
        crate::images::load_image(s.store, &id)
            .ok()
            .map(|img| img.layers.len())
    };
    let rec = record(pass.plan, states, &base_layers);
    if let Err(e) = save(s.store, image, &rec) {
        tracing::warn!("recording the build of {image}: {e}");
    }
}
