//! Build-time expansion: one [`StageScope`] per stage, seeded with the base
//! image's ENV, resolves steps in order with Docker's rules.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::instruction::{Command, CopySpec, HealthcheckRaw, Instruction};
use super::names::StageNames;
use super::reference::is_valid_reference;
use super::resolved::{
    mount_fields, mount_from, parse_duration, parse_mount_fields, FromRef, HealthcheckSpec, Mount,
    Resolved,
};
use super::{Base, Plan, Replayed, Step, PROXY_ARGS};
use crate::error::Diagnostic;
use crate::parser::{chomp, Heredoc};
use crate::shell::{human_bytes, Lexer, MAX_HEREDOC_BYTES};
use crate::Error;

/// The most bytes of ENV one stage may hold (the sum of `KEY=VALUE`
/// lengths, base image Env included): 4 MiB. Each value is also bounded by
/// [`crate::shell::MAX_WORD_BYTES`] (1 MiB). Linux refuses to exec a
/// process whose environment and arguments exceed about 2 MiB (and any one
/// string over 128 KiB), so a real image never comes near this.
pub const MAX_ENV_BYTES: usize = 4 << 20;

/// The most bytes of ARG values one stage may hold (`NAME=VALUE`, build
/// args included): 4 MiB, for the same reason as [`MAX_ENV_BYTES`].
pub const MAX_ARG_BYTES: usize = 4 << 20;

/// The most bytes of LABELs one stage's own LABEL steps may set (the sum of
/// `KEY=VALUE` lengths; labels of the base image are not counted): 4 MiB.
pub const MAX_LABEL_BYTES: usize = 4 << 20;

fn pair_bytes<V: AsRef<str>>(k: &str, v: Option<V>) -> usize {
    k.len() + 1 + v.map_or(0, |v| v.as_ref().len())
}

/// The variables one stage sees while it builds: its ENV (from the base
/// image, then ENV steps) and the ARGs declared in it (plus those inherited
/// from a parent stage). Create with [`StageScope::new`], then call
/// [`StageScope::resolve`] on each step in order.
#[derive(Debug, Clone)]
pub struct StageScope {
    stage: usize,
    escape: char,
    env: Vec<(String, String)>,
    args: Vec<(String, Option<String>)>,
    globals: Vec<(String, Option<String>)>,
    build_args: BTreeMap<String, String>,
    predefined: Vec<(String, String)>,
    stage_names: Arc<StageNames>,
    /// Bytes of each label key's `KEY=VALUE` set by this stage's LABEL steps.
    labels: BTreeMap<String, usize>,
}

impl StageScope {
    /// A scope for `stage`, seeded with `base_env` (the base image's config
    /// Env; for `FROM <stage>` the parent stage's final Env). ARGs declared in
    /// a parent stage (`FROM <stage>`) are inherited, as in BuildKit; global
    /// ARGs are not visible until re-declared with `ARG NAME`.
    pub fn new(plan: &Plan, stage: usize, base_env: &[(String, String)]) -> StageScope {
        let mut scope = StageScope {
            stage,
            escape: plan.escape,
            env: base_env.to_vec(),
            args: Vec::new(),
            globals: plan
                .global_args
                .iter()
                .map(|g| (g.name.clone(), g.value.clone()))
                .collect(),
            build_args: plan.build_args.clone(),
            predefined: plan.predefined_args.clone(),
            stage_names: Arc::clone(&plan.names),
            labels: BTreeMap::new(),
        };
        // ARGs of the parent stage, as the planner recorded them (no replay
        // of the ancestors here: that made planning cubic in chain length).
        if let Some(Base::Stage(parent)) = plan.stages.get(stage).map(|s| &s.base) {
            if *parent < stage {
                if let Some(end) = plan.ends.get(*parent) {
                    scope.args = end.args.clone();
                }
            }
        }
        scope
    }

    /// The ENV and ARGs in scope now (for the planner's record).
    pub(crate) fn into_replayed(self) -> Replayed {
        Replayed {
            env: self.env,
            args: self.args,
        }
    }

    /// The current ENV (what goes into the image config).
    pub fn env(&self) -> Vec<(String, String)> {
        self.env.clone()
    }

    /// ARG values in scope (declared and valued, in order, plus proxy
    /// build args). RUN sees them as environment variables, and they are
    /// part of RUN's cache key. ENV wins over an ARG of the same name.
    pub fn build_args_in_scope(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .args
            .iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
            .filter(|(k, _)| !self.env.iter().any(|(e, _)| e == k))
            .collect();
        for p in PROXY_ARGS {
            if let Some(v) = self.build_args.get(p) {
                if !out.iter().any(|(k, _)| k == p) {
                    out.push((p.to_string(), v.clone()));
                }
            }
        }
        out
    }

    /// True when `name` is declared by an `ARG` in this stage (or the
    /// parent stage it builds on).
    pub fn is_declared_arg(&self, name: &str) -> bool {
        self.args.iter().any(|(k, _)| k == name)
    }

    /// Looks a name up as word expansion sees it: ENV first, then ARGs.
    pub fn lookup(&self, name: &str) -> Option<String> {
        if let Some((_, v)) = self.env.iter().rev().find(|(k, _)| k == name) {
            return Some(v.clone());
        }
        self.args
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.clone())
    }

    fn expand(&self, step: &Step, word: &str) -> Result<String, Error> {
        let lookup = |n: &str| self.lookup(n);
        Lexer::new(self.escape)
            .process(word, &lookup)
            .map(|e| e.word)
            .map_err(|e| located(step, e.to_string()))
    }

    fn expand_opt(&self, step: &Step, word: &Option<String>) -> Result<Option<String>, Error> {
        word.as_deref().map(|w| self.expand(step, w)).transpose()
    }

    fn expand_all(&self, step: &Step, words: &[String]) -> Result<Vec<String>, Error> {
        words.iter().map(|w| self.expand(step, w)).collect()
    }

    /// Resolves `--from` / `from=` (already expanded) to a stage or an image.
    pub fn resolve_from(&self, step: &Step, value: &str) -> Result<FromRef, Error> {
        let err = |m: String, h: &str| Error::diag(diag(step, m).with_hint(h));
        // BuildKit's wording, for people searching its messages.
        let current = self
            .stage_names
            .at(self.stage)
            .map_or_else(|| self.stage.to_string(), str::to_string);
        let before = format!(
            "cannot copy from stage {value:?}, it needs to be defined before current stage {current:?}"
        );
        if value.is_empty() {
            return Err(err(
                "--from is empty".into(),
                "name an earlier stage, a stage index, or an image",
            ));
        }
        if let Ok(i) = value.parse::<usize>() {
            return match i.cmp(&self.stage) {
                std::cmp::Ordering::Less => Ok(FromRef::Stage(i)),
                std::cmp::Ordering::Equal => Err(err(
                    format!("--from={value}: stage {i} depends on itself ({before})"),
                    "a stage can only copy from earlier stages",
                )),
                std::cmp::Ordering::Greater => Err(err(
                    format!("--from={value}: stage {i} is not an earlier stage (forward reference; {before})"),
                    "a stage can only copy from earlier stages; move this stage after the one it copies from",
                )),
            };
        }
        let lower = value.to_ascii_lowercase();
        if let Some(i) = self.stage_names.before(&lower, self.stage) {
            return Ok(FromRef::Stage(i));
        }
        if self.stage_names.at(self.stage) == Some(lower.as_str()) {
            return Err(err(
                format!("--from={value}: stage {lower:?} depends on itself ({before})"),
                "a stage can only copy from earlier stages",
            ));
        }
        if self.stage_names.after(&lower, self.stage) {
            return Err(err(
                format!("--from={value}: stage {lower:?} is defined later in the Dockerfile (forward reference); {before}"),
                "move the stage before the one that copies from it",
            ));
        }
        // A bare name a typo away from a stage is taken for that typo, not
        // sent to a registry as an image (a real image of such a name can
        // still be named by its full reference).
        if !value.contains(['/', ':', '@', '.']) {
            let names: Vec<&str> = self.stage_names.names().collect();
            if let Some(near) = crate::suggest::nearest(&lower, &names) {
                return Err(err(
                    format!("--from={value}: no stage named {value:?}; did you mean stage `{near}`?"),
                    &format!("stages are named with FROM ... AS <name>; for an image called {value}, write its full reference (docker.io/library/{value})"),
                ));
            }
        }
        if is_valid_reference(value) {
            return Ok(FromRef::Image(value.to_string()));
        }
        Err(err(
            format!("--from={value}: no stage or image found with that name"),
            "name an earlier stage (FROM ... AS <name>), a stage index, or a valid image reference",
        ))
    }

    /// The stages or images a step reads from (`COPY --from`, `RUN --mount
    /// from=`). Used by the planner. A mount's `from=` is taken as written
    /// (BuildKit refuses variables there); its other options are not looked
    /// at, so a mount whose `type=$T` comes from a base image's ENV plans fine.
    pub fn references_of(&self, step: &Step) -> Result<Vec<FromRef>, Error> {
        match &step.instruction {
            Instruction::Copy(CopySpec { from: Some(f), .. }) => {
                Ok(vec![self.resolve_from(step, &self.expand(step, f)?)?])
            }
            Instruction::Run { mounts, .. } => {
                let mut out = Vec::new();
                for spec in mounts {
                    let from = mount_from(spec)
                        .map_err(|e| located(step, format!("--mount={spec}: {e}")))?;
                    if let Some(f) = from {
                        out.push(self.resolve_from(step, &f)?);
                    }
                }
                Ok(out)
            }
            _ => Ok(vec![]),
        }
    }

    /// Parses `--mount` specs: split into fields first, then each value
    /// (not the keys, not `from=`) expanded with the scope, as BuildKit does.
    fn mounts(&self, step: &Step, specs: &[String]) -> Result<Vec<Mount>, Error> {
        specs
            .iter()
            .map(|spec| {
                mount_from(spec).map_err(|e| located(step, format!("--mount={spec}: {e}")))?;
                let fields = mount_fields(spec)
                    .into_iter()
                    .map(|(k, v)| match v {
                        Some(v) if k != "from" => Ok((k, Some(self.expand(step, &v)?))),
                        v => Ok((k, v)),
                    })
                    .collect::<Result<Vec<_>, Error>>()?;
                let (mut m, from) = parse_mount_fields(fields)
                    .map_err(|e| located(step, format!("--mount={spec}: {e}")))?;
                if let Some(f) = from {
                    m.from = Some(self.resolve_from(step, &f)?);
                }
                Ok(m)
            })
            .collect()
    }

    fn heredocs(&self, step: &Step, docs: &[Heredoc], expand: bool) -> Result<Vec<Heredoc>, Error> {
        docs.iter()
            .map(|h| {
                let mut h = h.clone();
                if h.chomp {
                    h.content = chomp(&h.content);
                }
                if expand && h.expand {
                    let lookup = |n: &str| self.lookup(n);
                    // BuildKit's rules for an unquoted heredoc body: `\`
                    // (always backslash, whatever `# escape=` says) escapes
                    // the next character and is removed (`\\` gives `\`,
                    // `\$` gives `$`, backslash-newline gives the newline);
                    // quotes are plain text, so `'${name}'` expands.
                    let mut lex = Lexer::new('\\');
                    lex.max_bytes = MAX_HEREDOC_BYTES;
                    lex.skip_quotes = true;
                    h.content = lex
                        .process(&h.content, &lookup)
                        .map_err(|e| located(step, e.to_string()))?
                        .word;
                }
                Ok(h)
            })
            .collect()
    }

    /// Resolves one step: expands the words Docker expands for this
    /// instruction and updates the scope (ENV, ARG). Steps must be resolved
    /// in order; one ENV/ARG/LABEL instruction sees only values set before it.
    pub fn resolve(&mut self, step: &Step) -> Result<Resolved, Error> {
        Ok(match &step.instruction {
            Instruction::From {
                image,
                name,
                platform,
            } => Resolved::From {
                base: Base::Image(self.expand(step, image)?),
                name: name.clone(),
                platform: self.expand_opt(step, platform)?,
            },
            Instruction::Run {
                command,
                mounts,
                network,
                security,
                heredocs,
            } => Resolved::Run {
                command: command.clone(),
                mounts: self.mounts(step, mounts)?,
                network: network.clone(),
                security: security.clone(),
                heredocs: self.heredocs(step, heredocs, false)?,
            },
            Instruction::Copy(c) => Resolved::Copy {
                srcs: self.expand_all(step, &c.srcs)?,
                dest: self.expand(step, &c.dest)?,
                from: match &c.from {
                    Some(f) => Some(self.resolve_from(step, &self.expand(step, f)?)?),
                    None => None,
                },
                chown: self.expand_opt(step, &c.chown)?,
                chmod: self.expand_opt(step, &c.chmod)?,
                link: c.link,
                parents: c.parents,
                exclude: self.expand_all(step, &c.exclude)?,
                heredocs: self.heredocs(step, &c.heredocs, true)?,
            },
            Instruction::Add(c) => Resolved::Add {
                srcs: self.expand_all(step, &c.srcs)?,
                dest: self.expand(step, &c.dest)?,
                chown: self.expand_opt(step, &c.chown)?,
                chmod: self.expand_opt(step, &c.chmod)?,
                link: c.link,
                exclude: self.expand_all(step, &c.exclude)?,
                checksum: self.expand_opt(step, &c.checksum)?,
                keep_git_dir: c.keep_git_dir.unwrap_or(false),
                unpack: c.unpack,
                heredocs: self.heredocs(step, &c.heredocs, true)?,
            },
            Instruction::Env(pairs) => {
                let pairs = self.expand_pairs(step, pairs)?;
                let mut env = self.env.clone();
                for (k, v) in &pairs {
                    env.retain(|(e, _)| e != k);
                    env.push((k.clone(), v.clone()));
                }
                let total: usize = env.iter().map(|(k, v)| pair_bytes(k, Some(v))).sum();
                if total > MAX_ENV_BYTES {
                    return Err(located(
                        step,
                        format!(
                            "ENV: the stage's environment would hold {total} bytes, more than the limit of {}",
                            human_bytes(MAX_ENV_BYTES)
                        ),
                    ));
                }
                self.env = env;
                Resolved::Env(pairs)
            }
            Instruction::Label(pairs) => {
                let pairs = self.expand_pairs(step, pairs)?;
                let mut labels = self.labels.clone();
                for (k, v) in &pairs {
                    labels.insert(k.clone(), pair_bytes(k, Some(v)));
                }
                let total: usize = labels.values().sum();
                if total > MAX_LABEL_BYTES {
                    return Err(located(
                        step,
                        format!(
                            "LABEL: the stage's labels would hold {total} bytes, more than the limit of {}",
                            human_bytes(MAX_LABEL_BYTES)
                        ),
                    ));
                }
                self.labels = labels;
                Resolved::Label(pairs)
            }
            Instruction::Arg(decls) => {
                let mut out = Vec::new();
                for d in decls {
                    let value = match (self.build_args.get(&d.name), &d.default) {
                        (Some(v), _) => Some(v.clone()),
                        (None, Some(def)) => Some(self.expand(step, def)?),
                        (None, None) => self.inherited_value(&d.name),
                    };
                    out.push((d.name.clone(), value));
                }
                let mut args = self.args.clone();
                for (k, v) in &out {
                    args.retain(|(a, _)| a != k);
                    args.push((k.clone(), v.clone()));
                }
                let total: usize = args.iter().map(|(k, v)| pair_bytes(k, v.as_ref())).sum();
                if total > MAX_ARG_BYTES {
                    return Err(located(
                        step,
                        format!(
                            "ARG: the stage's build arguments would hold {total} bytes, more than the limit of {}",
                            human_bytes(MAX_ARG_BYTES)
                        ),
                    ));
                }
                self.args = args;
                Resolved::Arg(out)
            }
            // BuildKit expands each word, then splits the results on
            // whitespace: `EXPOSE $PORTS` with PORTS="3000 4000/udp" is two ports.
            Instruction::Expose(p) => Resolved::Expose(
                self.expand_all(step, p)?
                    .iter()
                    .flat_map(|w| w.split_whitespace())
                    .map(str::to_string)
                    .collect(),
            ),
            Instruction::Volume(v) => Resolved::Volume(self.expand_all(step, v)?),
            Instruction::User(u) => Resolved::User(self.expand(step, u)?),
            Instruction::Workdir(w) => Resolved::Workdir(self.expand(step, w)?),
            Instruction::StopSignal(s) => Resolved::StopSignal(self.expand(step, s)?),
            Instruction::Cmd(c) => Resolved::Cmd(c.clone()),
            Instruction::Entrypoint(c) => Resolved::Entrypoint(c.clone()),
            Instruction::Shell(s) => Resolved::Shell(s.clone()),
            Instruction::Healthcheck(h) => {
                Resolved::Healthcheck(h.as_ref().map(|h| healthcheck(step, h)).transpose()?)
            }
            Instruction::Onbuild(t) => Resolved::Onbuild(t.clone()),
            Instruction::Maintainer(m) => Resolved::Maintainer(m.clone()),
        })
    }

    /// A bare `ARG NAME`: the value inherited in this scope, else the global
    /// ARG's value, else the predefined platform value.
    fn inherited_value(&self, name: &str) -> Option<String> {
        if let Some((_, v)) = self.args.iter().rev().find(|(k, _)| k == name) {
            return v.clone();
        }
        if let Some((_, v)) = self.globals.iter().rev().find(|(k, _)| k == name) {
            return v.clone();
        }
        self.predefined
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    /// Expands every key and value against the scope as it was before the instruction.
    fn expand_pairs(
        &self,
        step: &Step,
        pairs: &[(String, String)],
    ) -> Result<Vec<(String, String)>, Error> {
        pairs
            .iter()
            .map(|(k, v)| Ok((self.expand(step, k)?, self.expand(step, v)?)))
            .collect()
    }
}

fn healthcheck(step: &Step, h: &HealthcheckRaw) -> Result<HealthcheckSpec, Error> {
    let dur = |name: &str, v: &Option<String>| -> Result<Option<std::time::Duration>, Error> {
        v.as_deref()
            .map(|s| {
                let d = parse_duration(s).map_err(|e| located(step, format!("--{name}: {e}")))?;
                if !d.is_zero() && d < std::time::Duration::from_millis(1) {
                    return Err(located(step, format!("--{name} cannot be less than 1ms")));
                }
                Ok(d)
            })
            .transpose()
    };
    let retries = h
        .retries
        .as_deref()
        .map(|r| {
            r.parse::<u32>()
                .map_err(|_| located(step, format!("--retries={r}: expected a whole number >= 0")))
        })
        .transpose()?;
    let test = match &h.test {
        Command::Shell(s) => vec!["CMD-SHELL".to_string(), s.clone()],
        Command::Exec(v) => std::iter::once("CMD".to_string())
            .chain(v.iter().cloned())
            .collect(),
    };
    Ok(HealthcheckSpec {
        test,
        interval: dur("interval", &h.interval)?,
        timeout: dur("timeout", &h.timeout)?,
        start_period: dur("start-period", &h.start_period)?,
        start_interval: dur("start-interval", &h.start_interval)?,
        retries,
    })
}

fn diag(step: &Step, message: String) -> Diagnostic {
    Diagnostic::new(step.location.clone(), message).with_line(step.line_text.clone())
}

fn located(step: &Step, message: String) -> Error {
    Error::diag(diag(step, message))
}
