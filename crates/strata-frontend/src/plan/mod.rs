//! The plan: stages, their bases and dependencies, which are needed for the
//! target, and everything [`StageScope`] needs to expand words at build time.

mod flags;
pub mod instruction;
mod names;
pub mod reference;
pub mod resolved;
mod scope;
mod stages;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use instruction::{
    from_node, ArgDecl, Command, CopySpec, HealthcheckRaw, Instruction, INSTRUCTIONS,
};
pub use resolved::{
    mount_fields, mount_from, parse_duration, parse_mount, parse_mount_fields, DurationError,
    FromRef, HealthcheckSpec, Mount, MountKind, MountSpecError, Resolved, MOUNT_FROM_VARIABLE,
};
pub use scope::{StageScope, MAX_ARG_BYTES, MAX_ENV_BYTES, MAX_LABEL_BYTES};
pub use stages::{parse_trigger, plan};

use crate::Location;
use names::StageNames;

/// Build arguments that may be passed without an `ARG` declaration; they
/// reach RUN as environment variables and are kept out of history.
/// (BuildKit matches them in any case: see [`is_proxy_arg`].)
pub const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// True for a proxy build argument name, in any case (`Http_Proxy`).
pub fn is_proxy_arg(name: &str) -> bool {
    PROXY_ARGS.iter().any(|p| p.eq_ignore_ascii_case(name))
}

/// Inputs to [`plan`].
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// `--build-arg K=V`.
    pub build_args: BTreeMap<String, String>,
    /// `--target`: a stage name (case-insensitive); `None` = the last stage.
    pub target: Option<String>,
    /// The platform being built for (`TARGETPLATFORM`), `os/arch[/variant]`.
    pub target_platform: String,
    /// The platform doing the build (`BUILDPLATFORM`).
    pub build_platform: String,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            build_args: BTreeMap::new(),
            target: None,
            target_platform: "linux/amd64".into(),
            build_platform: "linux/amd64".into(),
        }
    }
}

impl BuildOptions {
    /// The predefined platform ARGs: TARGETPLATFORM, TARGETOS, TARGETARCH,
    /// TARGETVARIANT, BUILDPLATFORM, BUILDOS, BUILDARCH, BUILDVARIANT.
    pub fn predefined_args(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (prefix, p) in [
            ("TARGET", &self.target_platform),
            ("BUILD", &self.build_platform),
        ] {
            let mut parts = p.splitn(3, '/');
            let os = parts.next().unwrap_or("linux").to_string();
            let arch = parts.next().unwrap_or("amd64").to_string();
            let variant = parts.next().unwrap_or("").to_string();
            out.push((format!("{prefix}PLATFORM"), p.clone()));
            out.push((format!("{prefix}OS"), os));
            out.push((format!("{prefix}ARCH"), arch));
            out.push((format!("{prefix}VARIANT"), variant));
        }
        out
    }
}

/// What a stage starts from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Base {
    /// `FROM scratch`.
    Scratch,
    /// An image; the FROM word fully expanded with global ARGs.
    Image(String),
    /// An earlier stage's result, by index.
    Stage(usize),
}

/// One build step (every instruction after FROM).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Step {
    /// File, line, column (of the keyword), end line.
    pub location: Location,
    /// The original logical line, for history and progress output.
    pub source: String,
    /// The physical first line (for error snippets).
    pub line_text: String,
    /// Typed; words NOT yet expanded.
    pub instruction: Instruction,
}

/// One stage (`FROM ... [AS name]` and its steps).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Stage {
    /// Position in the Dockerfile (0-based).
    pub index: usize,
    /// Lower-cased `AS` name.
    pub name: Option<String>,
    /// What the stage starts from.
    pub base: Base,
    /// `FROM --platform`, expanded.
    pub platform: Option<String>,
    /// The stage's instructions, in order.
    pub steps: Vec<Step>,
    /// Whether the target needs this stage (false = skipped).
    pub needed: bool,
    /// Stage indexes this stage needs (FROM stage, COPY --from, RUN --mount from), sorted.
    pub depends_on: Vec<usize>,
    /// The FROM line.
    pub location: Location,
    /// The FROM line's original text.
    pub source: String,
}

/// A global `ARG` (before the first FROM) and its resolved value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GlobalArg {
    /// The name.
    pub name: String,
    /// After `--build-arg` / default expansion; `None` = declared without a value.
    pub value: Option<String>,
    /// The ARG line.
    pub location: Location,
}

/// The result of [`plan`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Plan {
    /// Every stage, in file order.
    pub stages: Vec<Stage>,
    /// Index of the target stage.
    pub target: usize,
    /// Global ARGs, in order.
    pub global_args: Vec<GlobalArg>,
    /// `--build-arg` values.
    pub build_args: BTreeMap<String, String>,
    /// The predefined ARGs: the platform ones and `TARGETSTAGE` (the
    /// target stage's name, or the last stage's).
    pub predefined_args: Vec<(String, String)>,
    /// The Dockerfile's escape character.
    pub escape: char,
    /// The Dockerfile name, for locations.
    pub file: String,
    /// `--build-arg` names never declared anywhere (Docker warns about these).
    pub unused_build_args: Vec<String>,
    /// Stage names, indexed; shared with every [`StageScope`].
    #[serde(skip)]
    pub(crate) names: Arc<StageNames>,
    /// Per stage, the ENV and ARGs it ends with as far as the Dockerfile
    /// tells (its ENV/ARG steps replayed on its parent stage's; nothing from
    /// base images). Filled once by the planner, in stage order, so a scope
    /// never replays its ancestors (planning is linear in stages and steps).
    #[serde(skip)]
    pub(crate) ends: Vec<Replayed>,
}

/// What replaying a stage's ENV and ARG steps left in scope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Replayed {
    pub(crate) env: Vec<(String, String)>,
    pub(crate) args: Vec<(String, Option<String>)>,
}

impl Plan {
    /// The needed stages, dependencies first (a topological order).
    pub fn build_order(&self) -> Vec<usize> {
        // Dependencies always point at earlier stages, so index order is topological.
        self.stages
            .iter()
            .filter(|s| s.needed)
            .map(|s| s.index)
            .collect()
    }

    /// The Env stage `index` starts with as far as the Dockerfile tells: for
    /// `FROM <stage>`, the parent stage's ENV steps (and its parents');
    /// empty for images and scratch (their config is not known here). Tools
    /// that resolve steps without building (`check`, dry runs) seed
    /// [`StageScope::new`] with this; a build uses the base's real config Env.
    pub fn known_base_env(&self, index: usize) -> Vec<(String, String)> {
        match self.stages.get(index).map(|s| &s.base) {
            Some(Base::Stage(p)) if *p < index => {
                self.ends.get(*p).map(|r| r.env.clone()).unwrap_or_default()
            }
            _ => Vec::new(),
        }
    }

    /// Finds a stage by name (case-insensitive) or index.
    pub fn stage_by_ref(&self, r: &str) -> Option<usize> {
        if let Ok(i) = r.parse::<usize>() {
            return (i < self.stages.len()).then_some(i);
        }
        let lower = r.to_ascii_lowercase();
        self.stages
            .iter()
            .find(|s| s.name.as_deref() == Some(lower.as_str()))
            .map(|s| s.index)
    }
}
