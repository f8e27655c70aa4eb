//! Build checks: BuildKit's Dockerfile lint rules (same names, same
//! meaning), run on the parsed [`Ast`] and the [`Plan`]. Pure: the caller
//! supplies what needs the outside world (the `.dockerignore` matcher, the
//! Env names of base images it knows).
//!
//! Rules, by family: `stages` (StageNameCasing, FromAsCasing,
//! DuplicateStageName, ReservedStageName, UndefinedArgInFrom,
//! InvalidDefaultArgInFrom, FromPlatformFlagConstDisallowed), `style`
//! (ConsistentInstructionCasing, MaintainerDeprecated, LegacyKeyValueFormat,
//! JSONArgsRecommended, MultipleInstructionsDisallowed,
//! WorkdirRelativePath), `vars` (UndefinedVar, SecretsUsedInArgOrEnv),
//! `context` (CopyIgnoredFile: experimental in BuildKit, always on here),
//! and InvalidBaseImagePlatform for base images whose platform the caller
//! knows (its local store; no registry is asked). One rule is strata's own:
//! `toolchain` (ToolchainInFinalImage).
//!
//! The `# check=skip=Rule1,Rule2;error=true` directive (also `skip=all`)
//! is honoured: see [`CheckConfig`].

mod context;
mod stages;
mod style;
pub mod toolchain;
mod vars;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use crate::parser::{Ast, Node};
use crate::plan::{from_node, Base, BuildOptions, Instruction, Plan};
use crate::{Error, IgnoreMatcher, Location};

/// One rule: its BuildKit name and a short explanation in plain words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// BuildKit's name of the rule (`FromAsCasing`).
    pub name: &'static str,
    /// What the rule is about, in plain words.
    pub explanation: &'static str,
}

macro_rules! rules {
    ($($id:ident = $name:literal, $text:literal;)*) => {
        $(#[doc = $text] pub const $id: Rule = Rule { name: $name, explanation: $text };)*
        /// Every rule this module checks.
        pub const RULES: &[Rule] = &[$($id),*];
    };
}

rules! {
    STAGE_NAME_CASING = "StageNameCasing",
        "Stage names are matched without regard to case and kept in lower case; writing them in lower case keeps FROM, COPY --from and --target references unambiguous.";
    FROM_AS_CASING = "FromAsCasing",
        "Write the AS keyword in the same case as FROM (FROM ... AS, or from ... as) so the line reads consistently.";
    DUPLICATE_STAGE_NAME = "DuplicateStageName",
        "Two stages carry the same name, so a reference by that name is ambiguous to a reader and easy to get wrong; give every stage its own name.";
    RESERVED_STAGE_NAME = "ReservedStageName",
        "The names scratch and context already mean something in FROM and COPY --from, so a stage called that way is confusing or unreachable; pick another name.";
    JSON_ARGS_RECOMMENDED = "JSONArgsRecommended",
        "In shell form the command runs under /bin/sh -c, which becomes PID 1 and does not pass signals such as SIGTERM on, so the container may not stop cleanly; use the JSON (exec) form, or set SHELL if a shell is really wanted.";
    MAINTAINER_DEPRECATED = "MaintainerDeprecated",
        "MAINTAINER is deprecated; record the author with a label instead, for example LABEL org.opencontainers.image.authors=\"name\".";
    UNDEFINED_VAR = "UndefinedVar",
        "No ENV or ARG in scope here (nor the base image, where its config is known) sets this variable, so it expands to an empty string; declare it or fix the spelling.";
    UNDEFINED_ARG_IN_FROM = "UndefinedArgInFrom",
        "FROM only sees ARGs declared before the first FROM and the predefined platform ARGs; any other variable expands to an empty string.";
    CONSISTENT_INSTRUCTION_CASING = "ConsistentInstructionCasing",
        "Instructions work in any case, but mixing cases makes the file harder to read; use the case most of the file already uses.";
    MULTIPLE_INSTRUCTIONS_DISALLOWED = "MultipleInstructionsDisallowed",
        "Only the last CMD, ENTRYPOINT or HEALTHCHECK of a stage takes effect, so this earlier one does nothing; remove it.";
    LEGACY_KEY_VALUE_FORMAT = "LegacyKeyValueFormat",
        "The space-separated form sets one key to the whole rest of the line and cannot set several pairs; write key=value, quoting values that hold spaces.";
    WORKDIR_RELATIVE_PATH = "WorkdirRelativePath",
        "A relative WORKDIR is resolved against the base image's working directory, which may change with the base image; set an absolute WORKDIR first.";
    SECRETS_USED_IN_ARG_OR_ENV = "SecretsUsedInArgOrEnv",
        "ARG and ENV values end up in the image config or its history, where anyone holding the image can read them; pass secrets with RUN --mount=type=secret instead.";
    INVALID_DEFAULT_ARG_IN_FROM = "InvalidDefaultArgInFrom",
        "With only the ARG defaults (no --build-arg), this FROM expands to an empty or invalid image name, so a plain build fails; give the ARG a usable default.";
    INVALID_BASE_IMAGE_PLATFORM = "InvalidBaseImagePlatform",
        "The base image found is built for another operating system or CPU than this stage targets, so its programs may not run (or run only under emulation); use an image for the target platform or set FROM --platform.";
    FROM_PLATFORM_FLAG_CONST_DISALLOWED = "FromPlatformFlagConstDisallowed",
        "A constant --platform pins the stage to one platform even in a multi-platform build; use a variable such as $BUILDPLATFORM, or name the stage after the platform when pinning is intended.";
    TOOLCHAIN_IN_FINAL_IMAGE = "ToolchainInFinalImage",
        "The final image carries the compiler, build tools and caches that only building needed: hundreds of megabytes to pull, store and scan for vulnerabilities. Build in one stage and copy the program into a small runtime stage (strata's own rule, not BuildKit's).";
    COPY_IGNORED_FILE = "CopyIgnoredFile",
        "The source is excluded by .dockerignore, so it is not part of the build context and the copy fails or silently misses it; change .dockerignore or the source.";
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Warning {
    /// The rule's name.
    pub rule: &'static str,
    /// What was found.
    pub message: String,
    /// The Dockerfile's name.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The source line (at most 200 characters).
    pub snippet: String,
    /// What the rule is about, in plain words.
    pub explanation: &'static str,
}

impl std::fmt::Display for Warning {
    /// `file:line:col: Rule: message`, the source line, the explanation.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{}:{}:{}: {}: {}",
            self.file, self.line, self.column, self.rule, self.message
        )?;
        if !self.snippet.is_empty() {
            writeln!(f, "  {}", self.snippet)?;
        }
        write!(f, "  ({})", self.explanation)
    }
}

/// The `# check=` directive: `skip=Rule1,Rule2` (or `skip=all`),
/// `error=true|false`, `experimental=...` (accepted; every rule here is on).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckConfig {
    /// Rules skipped, lower-cased.
    pub skip: BTreeSet<String>,
    /// `skip=all`: no rule runs.
    pub skip_all: bool,
    /// Warnings make the check fail.
    pub error: bool,
}

/// A `# check=` value (or `BUILDKIT_DOCKERFILE_CHECK`) that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckOptionError {
    /// A part without `=`.
    #[error(
        "invalid check option {0:?}: expected skip=RULE[,RULE...], skip=all or error=true|false"
    )]
    NotKeyValue(String),
    /// `error=` with a value that is no boolean.
    #[error("invalid check option error={0:?}: expected true or false")]
    ErrorValue(String),
    /// A key other than skip, error and experimental.
    #[error("unknown check option {0:?}: the options are skip, error and experimental")]
    UnknownKey(String),
}

impl CheckConfig {
    /// Parses the directive value (`skip=A,B;error=true`).
    pub fn parse(value: &str) -> Result<CheckConfig, CheckOptionError> {
        let mut cfg = CheckConfig::default();
        for part in value.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((k, v)) = part.split_once('=') else {
                return Err(CheckOptionError::NotKeyValue(part.to_string()));
            };
            match k.trim().to_ascii_lowercase().as_str() {
                "skip" => {
                    for r in v.split(',').map(str::trim).filter(|r| !r.is_empty()) {
                        if r.eq_ignore_ascii_case("all") {
                            cfg.skip_all = true;
                        } else {
                            cfg.skip.insert(r.to_ascii_lowercase());
                        }
                    }
                }
                "error" => {
                    cfg.error = match v.trim().to_ascii_lowercase().as_str() {
                        "true" | "1" | "t" => true,
                        "false" | "0" | "f" => false,
                        other => return Err(CheckOptionError::ErrorValue(other.to_string())),
                    }
                }
                "experimental" => {}
                other => return Err(CheckOptionError::UnknownKey(other.to_string())),
            }
        }
        Ok(cfg)
    }

    /// Whether `rule` runs.
    pub fn enabled(&self, rule: &str) -> bool {
        !self.skip_all && !self.skip.contains(&rule.to_ascii_lowercase())
    }
}

/// What the caller knows about the outside world.
#[derive(Default)]
pub struct LintOptions<'a> {
    /// The context's `.dockerignore` (for CopyIgnoredFile).
    pub ignore: Option<&'a IgnoreMatcher>,
    /// The Env variable names of a base image, by the expanded FROM name;
    /// `None` = unknown (UndefinedVar then stays quiet in that stage, since
    /// the image may set anything).
    #[allow(clippy::type_complexity)]
    pub image_env: Option<&'a dyn Fn(&str) -> Option<Vec<String>>>,
    /// The platform (`os/arch[/variant]`) of a base image the caller has,
    /// by the expanded FROM name; `None` = unknown (InvalidBaseImagePlatform
    /// then says nothing; no registry is asked from here).
    #[allow(clippy::type_complexity)]
    pub image_platform: Option<&'a dyn Fn(&str) -> Option<String>>,
    /// The value of the `BUILDKIT_DOCKERFILE_CHECK` build arg: same syntax
    /// as the directive, and it wins over the directive (as in BuildKit).
    pub check_override: Option<&'a str>,
}

/// The build arg that overrides `# check=`.
pub const CHECK_BUILD_ARG: &str = "BUILDKIT_DOCKERFILE_CHECK";

/// The result of [`lint`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The findings, in file order.
    pub warnings: Vec<Warning>,
    /// The check settings that applied.
    pub config: CheckConfig,
}

impl Report {
    /// The check fails: `error=true` and at least one warning.
    pub fn fails(&self) -> bool {
        self.config.error && !self.warnings.is_empty()
    }
}

/// Runs every enabled rule. `plan` is the plan when planning succeeded;
/// without it (a FROM that does not expand to an image, say) the rules
/// still run on the AST, with stage bases worked out from the FROM words.
/// Errors only for a bad `# check=` directive.
pub fn lint(ast: &Ast, plan: Option<&Plan>, opts: &LintOptions<'_>) -> Result<Report, Error> {
    let config = match (
        opts.check_override,
        ast.directives.iter().find(|d| d.name == "check"),
    ) {
        (Some(v), _) => CheckConfig::parse(v)
            .map_err(|m| Error::CheckOption(format!("--build-arg {CHECK_BUILD_ARG}: {m}")))?,
        (None, None) => CheckConfig::default(),
        (None, Some(d)) => CheckConfig::parse(&d.value).map_err(|m| {
            let loc = Location {
                file: ast.file.clone(),
                line: d.line,
                column: 1,
                end_line: d.line,
            };
            Error::diag(ast.error_at(&loc, m.to_string()))
        })?,
    };
    let walk = Walk::new(ast, plan);
    let mut sink = Sink {
        ast,
        config: &config,
        out: Vec::new(),
    };
    stages::check(&walk, &mut sink);
    style::check(&walk, &mut sink);
    vars::check(&walk, opts, &mut sink);
    stages::base_platforms(&walk, opts, &mut sink);
    toolchain::check(&walk, &mut sink);
    if let Some(m) = opts.ignore {
        context::check(&walk, m, &mut sink);
    }
    let mut warnings = sink.out;
    warnings.sort_by_key(|w| (w.line, w.column));
    warnings.dedup();
    Ok(Report { warnings, config })
}

/// The AST with the plan's knowledge: each FROM node with its stage's name
/// and base, each step node with its typed instruction.
pub(crate) struct Walk<'a> {
    pub escape: char,
    /// The predefined ARGs (platform ones, TARGETSTAGE).
    pub predefined: Vec<(String, String)>,
    /// Nodes before the first FROM (global ARGs).
    pub globals: Vec<&'a Node>,
    pub stages: Vec<StageView<'a>>,
}

pub(crate) struct StageView<'a> {
    pub from: &'a Node,
    /// Lower-cased `AS` name.
    pub name: Option<String>,
    pub base: Base,
    /// The platform the stage is built for (`--platform` expanded, else the
    /// target platform); `None` when unknown (no plan).
    pub platform: Option<String>,
    /// Step nodes that type-check, with their instruction (words as written).
    pub steps: Vec<(&'a Node, Instruction)>,
}

impl<'a> Walk<'a> {
    fn new(ast: &'a Ast, plan: Option<&Plan>) -> Walk<'a> {
        let predefined = match plan {
            Some(p) => p.predefined_args.clone(),
            None => {
                let mut v = BuildOptions::default().predefined_args();
                v.push(("TARGETSTAGE".into(), String::new()));
                v
            }
        };
        let mut w = Walk {
            escape: ast.escape,
            predefined,
            globals: Vec::new(),
            stages: Vec::new(),
        };
        for node in &ast.children {
            if node.name() == "from" {
                let index = w.stages.len();
                let name = node.args.get(2).map(|n| n.to_ascii_lowercase());
                let planned = plan.and_then(|p| p.stages.get(index).map(|s| (p, s)));
                let (base, platform) = match planned {
                    Some((p, s)) => {
                        let target = p
                            .predefined_args
                            .iter()
                            .find(|(k, _)| k == "TARGETPLATFORM")
                            .map(|(_, v)| v.clone());
                        (s.base.clone(), s.platform.clone().or(target))
                    }
                    None => (
                        guess_base(node.args.first().map(String::as_str), &w.stages),
                        None,
                    ),
                };
                w.stages.push(StageView {
                    from: node,
                    name,
                    base,
                    platform,
                    steps: Vec::new(),
                });
            } else if let Some(view) = w.stages.last_mut() {
                if let Ok(inst) = from_node(node, None) {
                    view.steps.push((node, inst));
                }
            } else {
                w.globals.push(node);
            }
        }
        w
    }
}

/// A stage's base when there is no plan: an earlier stage by name,
/// scratch, else the image word as written.
fn guess_base(image: Option<&str>, earlier: &[StageView<'_>]) -> Base {
    let image = image.unwrap_or_default();
    let lower = image.to_ascii_lowercase();
    if let Some(i) = earlier
        .iter()
        .position(|v| v.name.as_deref() == Some(lower.as_str()))
    {
        return Base::Stage(i);
    }
    if lower == "scratch" {
        Base::Scratch
    } else {
        Base::Image(image.to_string())
    }
}

/// Collects warnings, dropping skipped rules.
pub(crate) struct Sink<'a> {
    ast: &'a Ast,
    config: &'a CheckConfig,
    out: Vec<Warning>,
}

impl Sink<'_> {
    /// The physical line `n` of the Dockerfile.
    pub(crate) fn line(&self, n: usize) -> String {
        self.ast.line_text(n).unwrap_or_default().to_string()
    }

    /// Reports `rule` at `loc`'s line, at the column of `needle` in that
    /// line when given and found (else the keyword's column).
    pub(crate) fn warn(
        &mut self,
        rule: Rule,
        loc: &Location,
        needle: Option<&str>,
        message: String,
    ) {
        let text = self.ast.line_text(loc.line).unwrap_or_default();
        let column = needle
            .filter(|n| !n.is_empty())
            .and_then(|n| text.find(n))
            .map(|b| text[..b].chars().count() + 1)
            .unwrap_or(loc.column);
        self.warn_at(rule, loc, column, message);
    }

    /// Reports `rule` at the first whole-word occurrence of `word` in the
    /// line (blank before and after), else at the keyword.
    pub(crate) fn warn_word(&mut self, rule: Rule, loc: &Location, word: &str, message: String) {
        let text = self.line(loc.line);
        let blank = |c: Option<char>| c.is_none_or(char::is_whitespace);
        let column = text
            .match_indices(word)
            .find(|(b, _)| {
                !word.is_empty()
                    && blank(text[..*b].chars().next_back())
                    && blank(text[b + word.len()..].chars().next())
            })
            .map_or(loc.column, |(b, _)| text[..b].chars().count() + 1);
        self.warn_at(rule, loc, column, message);
    }

    /// Reports `rule` at `loc`'s line and the given column.
    pub(crate) fn warn_at(&mut self, rule: Rule, loc: &Location, column: usize, message: String) {
        if !self.config.enabled(rule.name) {
            return;
        }
        let text = self.ast.line_text(loc.line).unwrap_or_default();
        let snippet: String = text.chars().take(200).collect();
        self.out.push(Warning {
            rule: rule.name,
            message,
            file: loc.file.clone(),
            line: loc.line,
            column,
            snippet,
            explanation: rule.explanation,
        });
    }
}
