//! Executing one stage: its base (`stage_base.rs`), its ONBUILD triggers,
//! then each step in order through the cache (`solve.rs`), with progress
//! events for each.

use std::collections::BTreeMap;
use std::time::Instant;

use strata_frontend::{Plan, StageScope, Step};
use strata_oci::Platform;

use crate::base_unpack::PredictedKey;
use crate::error::{BuildError, StepError};
use crate::events::EventKind;
use crate::miss_record::StepWhy;
use crate::pass::Pass;
use crate::solve::{solve_step, Solved, StepJob};
use crate::state::{stage_label, StageState};
use crate::step_env::{StepCtx, StepEnv};
use crate::whymiss::{one_line, Above};

impl Pass<'_> {
    /// Runs stage `idx`; `deps` holds the results of the stages it
    /// depends on.
    pub(crate) fn run_stage(
        &self,
        idx: usize,
        deps: &BTreeMap<usize, StageState>,
    ) -> Result<StageState, BuildError> {
        let stage = &self.plan.stages[idx];
        // The stage's platform: its `FROM --platform`, else the target's.
        let parsed = match stage.platform.as_deref().filter(|p| !p.is_empty()) {
            Some(p) => Platform::parse(p).map_err(|e| StepError::Platform(e.to_string())),
            None => Ok(self.platform.clone()),
        };
        // A multi-platform build names the platform with the stage.
        let label = match (&parsed, self.multi_platform) {
            (Ok(p), true) => format!("{p} {}", stage_label(stage)),
            _ => stage_label(stage),
        };
        let total = stage.steps.len() + 1;
        let first = self.step_numbers[&idx];
        let from_ctx = StepCtx {
            step_no: first,
            label: label.clone(),
            name: format!("[{label} 1/{total}] {}", stage.source.trim()),
            location: format!("{}:{}", stage.location.file, stage.location.line),
            source: &stage.source,
            mounted_later: true,
        };
        let started = Instant::now();
        self.session.emit(EventKind::StepStarted {
            step: first,
            stage: label.clone(),
            name: from_ctx.name.clone(),
        });
        let stage_platform = parsed.map_err(|e| self.step_error(&from_ctx, e))?;
        let env = StepEnv {
            session: self.session,
            inputs: self.inputs,
            plan: self.plan,
            platform: &self.platform,
            deps,
        };
        let from = crate::stage_base::from_step(self, &env, stage, &stage_platform)
            .map_err(|e| self.step_error(&from_ctx, e))?;
        self.session.emit(EventKind::StepDone {
            step: first,
            duration: started.elapsed(),
            cache_miss: None,
        });
        let mut steps = StageSteps {
            pass: self,
            env: &env,
            idx,
            label: &label,
            seen: BTreeMap::new(),
            st: from.st,
            scope: from.scope,
            above: from.above,
        };
        let mut predicted = from.predicted;
        steps.run_triggers(&from_ctx, total)?;
        for (i, step) in stage.steps.iter().enumerate() {
            if self.session.cancel.is_cancelled() {
                return Err(BuildError::Cancelled);
            }
            let ctx = StepCtx {
                step_no: first + i + 1,
                label: label.clone(),
                name: format!("[{label} {}/{total}] {}", i + 2, step.source.trim()),
                location: format!("{}:{}", step.location.file, step.location.line),
                source: &step.source,
                mounted_later: mounted_later(self.plan, idx, i),
            };
            let t = Instant::now();
            self.session.emit(EventKind::StepStarted {
                step: ctx.step_no,
                stage: label.clone(),
                name: ctx.name.clone(),
            });
            let position = format!("{label}\n#{}", i + 2);
            let solved = steps.solve(
                step,
                &ctx,
                step.source.trim(),
                position,
                predicted.remove(&i),
            )?;
            if solved.cached {
                self.session.emit(EventKind::Cached { step: ctx.step_no });
            } else {
                self.session.emit(EventKind::StepDone {
                    step: ctx.step_no,
                    duration: t.elapsed(),
                    cache_miss: solved.miss_reason,
                });
            }
        }
        Ok(steps.st)
    }
}

/// Whether the state after step `i` of stage `idx` is mounted later in
/// this build: a later step of the stage writes files (RUN, COPY, ADD,
/// WORKDIR mount the stage's rootfs), or another stage builds on it or
/// reads from it. If not (the last file steps of the target stage), a COPY's
/// layer is written as a compact blob rather than applied into a snapshot
/// nothing may ever mount: 200,000 small files cost a gzip stream, not
/// 200,000 file creations.
fn mounted_later(plan: &Plan, idx: usize, i: usize) -> bool {
    use strata_frontend::Instruction as I;
    let writes = |s: &Step| {
        matches!(
            s.instruction,
            I::Run { .. } | I::Copy(_) | I::Add(_) | I::Workdir(_)
        )
    };
    plan.stages[idx].steps[i + 1..].iter().any(writes)
        || plan
            .stages
            .iter()
            .any(|s| s.needed && s.depends_on.contains(&idx))
}

/// The steps of one running stage.
struct StageSteps<'p, 'a> {
    pass: &'p Pass<'a>,
    env: &'p StepEnv<'p>,
    idx: usize,
    label: &'p str,
    /// Occurrences of each instruction text so far (a step's identity).
    seen: BTreeMap<String, usize>,
    /// The stage's state after the steps so far.
    st: StageState,
    /// The scope the next step resolves in.
    scope: StageScope,
    /// The step above the next one (to explain a miss).
    above: Above,
}

impl StageSteps<'_, '_> {
    /// The identity of the instruction `text` at this point of the stage.
    fn ident(&mut self, text: &str) -> String {
        let n = self.seen.entry(text.to_string()).or_default();
        *n += 1;
        format!("{}\n{text}\n{}", self.label, *n - 1)
    }

    /// One step through the cache (`instruction`: its text, `position`:
    /// its place, for the step history; `predicted`: its key if FROM
    /// computed it); notes its key for `--cache-to`.
    fn solve(
        &mut self,
        step: &Step,
        ctx: &StepCtx<'_>,
        instruction: &str,
        position: String,
        predicted: Option<PredictedKey>,
    ) -> Result<Solved, BuildError> {
        let why = StepWhy {
            scope: &self.pass.why_scope,
            ident: self.ident(instruction),
            position,
            instruction: instruction.to_string(),
            above: &self.above,
        };
        let job = StepJob {
            step,
            ctx,
            why,
            predicted: predicted.filter(|p| p.parent == self.st.key).map(|p| p.key),
        };
        let solved = solve_step(
            self.env,
            &self.pass.cache,
            &mut self.st,
            &mut self.scope,
            job,
        )
        .map_err(|e| self.pass.step_error(ctx, e))?;
        self.pass.cache.record_key(self.idx, &self.st.key);
        self.above = Above::Step(one_line(instruction));
        Ok(solved)
    }

    /// The ONBUILD triggers of the base run first (as part of FROM), then
    /// are cleared.
    fn run_triggers(&mut self, from_ctx: &StepCtx<'_>, total: usize) -> Result<(), BuildError> {
        let Some(triggers) = self
            .st
            .config
            .config
            .as_mut()
            .and_then(|c| c.on_build.take())
        else {
            return Ok(());
        };
        let location = &self.pass.plan.stages[self.idx].location;
        for (n, text) in triggers.into_iter().enumerate() {
            let step = strata_frontend::parse_trigger(&text, location.clone()).map_err(|e| {
                let e = StepError::Trigger {
                    trigger: text.clone(),
                    source: e,
                };
                self.pass.step_error(from_ctx, e)
            })?;
            let ctx = StepCtx {
                step_no: from_ctx.step_no,
                label: self.label.to_string(),
                name: format!("[{} 1/{total}] ONBUILD {text}", self.label),
                location: from_ctx.location.clone(),
                source: &text,
                mounted_later: true,
            };
            let instruction = format!("ONBUILD {}", text.trim());
            let position = format!("{}\nonbuild {n}", self.label);
            self.solve(&step, &ctx, &instruction, position, None)?;
        }
        Ok(())
    }
}
