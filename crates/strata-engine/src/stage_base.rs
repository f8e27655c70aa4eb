//! A stage's FROM: its base state (scratch, an image, a named context, an
//! earlier stage), keyed by the base and the stage's platform, and its
//! layers unpacked ahead of the steps that mount them (`base_unpack.rs`).

use serde_json::json;
use strata_frontend::{Base, Stage, StageScope};
use strata_oci::Platform;

use crate::base_unpack::Predicted;
use crate::cache::CacheKey;
use crate::config::ConfigEditor as _;
use crate::error::StepError;
use crate::named::Named;
use crate::pass::Pass;
use crate::state::{stage_label, StageState};
use crate::step_env::StepEnv;
use crate::whymiss::{one_line, Above, Trace};

/// What FROM gives the rest of the stage.
pub(crate) struct FromResult {
    /// The base state.
    pub(crate) st: StageState,
    /// The scope the stage's steps resolve in.
    pub(crate) scope: StageScope,
    /// What is above the first step (to explain a miss of that step).
    pub(crate) above: Above,
    /// Step keys computed while deciding what to unpack.
    pub(crate) predicted: Predicted,
}

/// Executes the FROM of `stage` on `platform`; see [`FromResult`].
pub(crate) fn from_step(
    pass: &Pass<'_>,
    env: &StepEnv<'_>,
    stage: &Stage,
    platform: &Platform,
) -> Result<FromResult, StepError> {
    let (mut st, base_id) = base_state(env, stage, platform)?;
    if !matches!(stage.base, Base::Stage(_)) {
        // The image states the stage's platform (scratch and bases alike).
        st.config.os = platform.os.clone();
        st.config.architecture = platform.architecture.clone();
        st.config.variant = platform.variant.clone();
    }
    let scope = StageScope::new(pass.plan, stage.index, &st.config.env_pairs());
    // The base's layers are unpacked here, on FROM, when a step of the
    // stage will mount them (not when every such step is cached).
    let first = pass.step_numbers[&stage.index];
    let predicted = crate::base_unpack::unpack_base(pass, env, stage, &st, &scope, first)?;
    let above = match (&stage.base, base_id) {
        (Base::Stage(i), _) => Above::Stage(stage_label(&pass.plan.stages[*i])),
        (_, id) => {
            let trace = Trace {
                def: json!({ "base": id, "platform": platform.to_string() }),
                from: Some(match &stage.base {
                    Base::Image(name) => name.clone(),
                    _ => "scratch".into(),
                }),
                ..Default::default()
            };
            let instruction = one_line(stage.source.trim());
            crate::miss_record::note_base(env.session.store, &st.key, &instruction, &trace);
            Above::Base { trace }
        }
    };
    Ok(FromResult {
        st,
        scope,
        above,
        predicted,
    })
}

/// The state FROM starts the stage with, and what keyed it (an image ID,
/// `scratch`, a named directory's layer; `None` for an earlier stage).
fn base_state(
    env: &StepEnv<'_>,
    stage: &Stage,
    platform: &Platform,
) -> Result<(StageState, Option<String>), StepError> {
    let session = env.session;
    let platform_text = platform.to_string();
    match &stage.base {
        Base::Scratch => Ok((
            StageState {
                config: crate::config::scratch(),
                layers: Vec::new(),
                key: CacheKey::base("scratch", &platform_text),
                cmd_set: false,
            },
            Some("scratch".to_string()),
        )),
        Base::Image(name) => {
            if let Some(named) = env.inputs.named(name) {
                let (st, id) = named_base(env, named, &platform_text)?;
                return Ok((st, Some(id)));
            }
            let id = session.images.resolve_for(name, platform, session.events)?;
            let img = crate::images::load_image(session.store, &id.to_string())?;
            let id = img.id.to_string();
            Ok((
                StageState {
                    key: CacheKey::base(&id, &platform_text),
                    config: img.config.into_build_base(),
                    layers: img.layers,
                    cmd_set: false,
                },
                Some(id),
            ))
        }
        Base::Stage(i) => {
            let parent = env.dep(*i)?.clone();
            Ok((
                StageState {
                    cmd_set: false,
                    ..parent
                },
                None,
            ))
        }
    }
}

/// The base state of `FROM NAME` when NAME is a named build context: its
/// image, or its directory as one layer on scratch.
fn named_base(
    env: &StepEnv<'_>,
    named: &Named,
    platform: &str,
) -> Result<(StageState, String), StepError> {
    let (store, lease) = (env.session.store, env.session.lease);
    match named {
        Named::Image(id) => {
            let img = crate::images::load_image(store, id)?;
            lease.add_image(&img.id)?;
            let id = img.id.to_string();
            Ok((
                StageState {
                    key: CacheKey::base(&id, platform),
                    config: img.config.into_build_base(),
                    layers: img.layers,
                    cmd_set: false,
                },
                id,
            ))
        }
        Named::Dir(dir) => {
            let opts = crate::run_step::layer_options(env.inputs.epoch());
            let info =
                strata_store::LayerWriter::new(store.blobs(), opts).write_dir(dir, Some(lease))?;
            let layer = info.to_record();
            let id = format!("dir:{}", layer.diff_id);
            Ok((
                StageState {
                    key: CacheKey::base(&id, platform),
                    config: crate::config::scratch(),
                    layers: vec![layer],
                    cmd_set: false,
                },
                id,
            ))
        }
    }
}
