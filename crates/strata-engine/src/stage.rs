//! Executing one stage: its base, its ONBUILD triggers, then each step in
//! order, each through the cache (key = parent key + resolved definition +
//! input digests; a hit restores the stage state, a miss executes and
//! records).

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::json;
use strata_frontend::{Base, Resolved, Stage, StageScope, Step};
use strata_store::CacheRecord;

use crate::build::{BuildError, Builder};
use crate::cache::{CacheKey, LayerRef, StepRecord};
use crate::config::{go_quoted_list, CommandForm, ConfigEditor, ImageConfig};
use crate::events::{Event, EventKind};
use crate::miss_record::StepWhy;
use crate::stage_files::{FileStep, Prepared};
use crate::whymiss::{one_line, Above, Inputs, Trace};

/// What keys a step ([`Builder::step_key`]): its cache key, the
/// definition hashed into it, a file step's fetched inputs, and what
/// explains a later miss (kept, never hashed).
pub(crate) struct StepKey {
    pub key: CacheKey,
    pub def: serde_json::Value,
    pub prepared: Option<Prepared>,
    pub trace: Trace,
    pub inputs: Inputs,
}

/// A stage's state between steps.
#[derive(Debug, Clone)]
pub struct StageState {
    pub config: ImageConfig,
    pub layers: Vec<LayerRef>,
    pub key: CacheKey,
    pub cmd_set: bool,
}

/// The display name of a stage: its name, else `stage-N`.
pub fn stage_label(stage: &Stage) -> String {
    stage
        .name
        .clone()
        .unwrap_or_else(|| format!("stage-{}", stage.index))
}

fn now_rfc3339() -> String {
    strata_oci::rfc3339_fixed_nanos(time::OffsetDateTime::now_utc())
}

/// One step's context for error messages and events.
pub(crate) struct StepCtx<'a> {
    pub(crate) step_no: usize,
    pub(crate) label: String,
    pub(crate) name: String,
    pub(crate) location: String,
    pub(crate) source: &'a str,
}

impl Builder<'_> {
    pub(crate) fn step_error(
        &self,
        s: &StepCtx<'_>,
        message: String,
        exit_code: Option<i32>,
    ) -> BuildError {
        (self.events)(Event::now(EventKind::Error {
            step: Some(s.step_no),
            message: message.clone(),
        }));
        BuildError::Step {
            location: s.location.clone(),
            stage: s.label.clone(),
            instruction: s.source.trim().to_string(),
            message,
            exit_code,
        }
    }

    /// Runs one stage; `deps` holds the results of the stages it depends on.
    pub(crate) fn run_stage(
        &self,
        idx: usize,
        deps: &BTreeMap<usize, StageState>,
    ) -> Result<StageState, BuildError> {
        let stage = &self.plan.stages[idx];
        // The stage's platform: its `FROM --platform`, else the target's.
        let parsed = match stage.platform.as_deref().filter(|p| !p.is_empty()) {
            Some(p) => strata_oci::Platform::parse(p),
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
        };
        let started = Instant::now();
        (self.events)(Event::now(EventKind::StepStarted {
            step: first,
            stage: label.clone(),
            name: from_ctx.name.clone(),
        }));
        let stage_platform = parsed
            .map_err(|e| self.step_error(&from_ctx, format!("FROM --platform: {e}"), None))?;
        let platform = stage_platform.to_string();
        // What keyed the base (to explain a miss of the step below).
        let mut base_id = None;
        let mut st = match &stage.base {
            Base::Scratch => {
                base_id = Some("scratch".to_string());
                StageState {
                    config: crate::config::scratch(),
                    layers: Vec::new(),
                    key: CacheKey::base("scratch", &platform),
                    cmd_set: false,
                }
            }
            Base::Image(name) if self.named.contains_key(&name.to_ascii_lowercase()) => {
                let (st, id) = self
                    .named_base(&self.named[&name.to_ascii_lowercase()], &platform)
                    .map_err(|e| self.step_error(&from_ctx, e, None))?;
                base_id = Some(id);
                st
            }
            Base::Image(name) => {
                let img = self
                    .images
                    .resolve_for(name, &stage_platform, self.events)
                    .and_then(|id| {
                        crate::images::load_image(self.store, &id.to_string())
                            .map_err(|e| e.to_string())
                    })
                    .map_err(|e| self.step_error(&from_ctx, e, None))?;
                base_id = Some(img.id.to_string());
                StageState {
                    key: CacheKey::base(&img.id.to_string(), &platform),
                    config: img.config.into_build_base(),
                    layers: img.layers,
                    cmd_set: false,
                }
            }
            Base::Stage(i) => {
                let parent = deps.get(i).cloned().ok_or_else(|| {
                    self.step_error(&from_ctx, format!("stage {i} was not built"), None)
                })?;
                StageState {
                    cmd_set: false,
                    ..parent
                }
            }
        };
        if !matches!(stage.base, Base::Stage(_)) {
            // The image states the stage's platform (scratch and bases alike).
            st.config.os = stage_platform.os.clone();
            st.config.architecture = stage_platform.architecture.clone();
            st.config.variant = stage_platform.variant.clone();
        }
        let mut scope = StageScope::new(self.plan, idx, &st.config.env_pairs());
        // The base's layers are unpacked here, on FROM, when a step of the
        // stage will mount them (not when every such step is cached).
        self.unpack_base(stage, &st, &scope, deps, first)
            .map_err(|e| self.step_error(&from_ctx, e, None))?;
        (self.events)(Event::now(EventKind::StepDone {
            step: first,
            duration: started.elapsed(),
            cache_miss: None,
        }));

        let why_scope = self.why_scope();
        let mut above = match (&stage.base, base_id) {
            (Base::Stage(i), _) => Above::Stage(stage_label(&self.plan.stages[*i])),
            (_, id) => {
                let trace = Trace {
                    def: json!({ "base": id, "platform": platform }),
                    from: Some(match &stage.base {
                        Base::Image(name) => name.clone(),
                        _ => "scratch".into(),
                    }),
                    ..Default::default()
                };
                self.note_base(&st.key, &one_line(stage.source.trim()), &trace);
                Above::Base { trace }
            }
        };
        // Occurrences of each instruction text so far (a step's identity).
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let mut ident = |text: &str| {
            let n = seen.entry(text.to_string()).or_default();
            *n += 1;
            format!("{label}\n{text}\n{}", *n - 1)
        };

        // ONBUILD triggers of the base run first, then are cleared.
        if let Some(triggers) = st.config.runtime_mut().on_build.take() {
            for (n_onbuild, text) in triggers.into_iter().enumerate() {
                let step =
                    strata_frontend::parse_trigger(&text, stage.location.clone()).map_err(|e| {
                        self.step_error(&from_ctx, format!("ONBUILD {text}: {e}"), None)
                    })?;
                let ctx = StepCtx {
                    step_no: first,
                    label: label.clone(),
                    name: format!("[{label} 1/{total}] ONBUILD {text}"),
                    location: from_ctx.location.clone(),
                    source: &step.source,
                };
                let ctx = StepCtx {
                    source: &text,
                    ..ctx
                };
                let instruction = format!("ONBUILD {}", text.trim());
                let why = StepWhy {
                    scope: &why_scope,
                    ident: ident(&instruction),
                    position: format!("{label}\nonbuild {n_onbuild}"),
                    instruction: instruction.clone(),
                    above: &above,
                };
                self.exec_step(&mut st, &mut scope, &step, &ctx, deps, &why)?;
                above = Above::Step(one_line(&instruction));
                self.record_key(idx, &st.key);
            }
        }

        for (i, step) in stage.steps.iter().enumerate() {
            if self.cancel.is_cancelled() {
                return Err(BuildError::Cancelled);
            }
            let ctx = StepCtx {
                step_no: first + i + 1,
                label: label.clone(),
                name: format!("[{label} {}/{total}] {}", i + 2, step.source.trim()),
                location: format!("{}:{}", step.location.file, step.location.line),
                source: &step.source,
            };
            let t = Instant::now();
            (self.events)(Event::now(EventKind::StepStarted {
                step: ctx.step_no,
                stage: label.clone(),
                name: ctx.name.clone(),
            }));
            let instruction = step.source.trim().to_string();
            let why = StepWhy {
                scope: &why_scope,
                ident: ident(&instruction),
                position: format!("{label}\n#{}", i + 2),
                instruction: instruction.clone(),
                above: &above,
            };
            let (cached, cache_miss) =
                self.exec_step(&mut st, &mut scope, step, &ctx, deps, &why)?;
            above = Above::Step(one_line(&instruction));
            self.record_key(idx, &st.key);
            if cached {
                (self.events)(Event::now(EventKind::Cached { step: ctx.step_no }));
            } else {
                (self.events)(Event::now(EventKind::StepDone {
                    step: ctx.step_no,
                    duration: t.elapsed(),
                    cache_miss,
                }));
            }
        }
        Ok(st)
    }

    /// The base state of `FROM NAME` when NAME is a named build context:
    /// its image, or its directory as one layer on scratch.
    fn named_base(
        &self,
        named: &crate::named::Named,
        platform: &str,
    ) -> Result<(StageState, String), String> {
        match named {
            crate::named::Named::Image(id) => {
                let img = crate::images::load_image(self.store, id).map_err(|e| e.to_string())?;
                self.lease.add_image(&img.id).map_err(|e| e.to_string())?;
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
            crate::named::Named::Dir(dir) => {
                let opts = crate::run_step::layer_options(self.req.source_date_epoch);
                let info = strata_store::LayerWriter::new(self.store.blobs(), opts)
                    .write_dir(dir, Some(self.lease))
                    .map_err(|e| e.to_string())?;
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

    /// Resolves, keys and (on a miss) executes one step. Returns whether it
    /// was a cache hit, and on a miss why (when a record of the same step
    /// says so).
    fn exec_step(
        &self,
        st: &mut StageState,
        scope: &mut StageScope,
        step: &Step,
        s: &StepCtx<'_>,
        deps: &BTreeMap<usize, StageState>,
        why: &StepWhy<'_>,
    ) -> Result<(bool, Option<String>), BuildError> {
        let resolved = scope
            .resolve(step)
            .map_err(|e| self.step_error(s, e.to_string(), None))?;
        let err = |m: String| self.step_error(s, m, None);
        let StepKey {
            key,
            def,
            prepared,
            trace,
            inputs,
        } = self.step_key(st, scope, &resolved, deps).map_err(err)?;
        let file_step = FileStep::of(&resolved);

        if !self.no_cache {
            if let Some(rec) = self.cache_lookup(&key) {
                self.note_step(why, &st.key, &key, &trace, &inputs, false);
                *st = StageState {
                    config: rec.config,
                    layers: rec.layers,
                    key,
                    cmd_set: rec.cmd_set,
                };
                self.stats
                    .cached
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Ok((true, None));
            }
            if let Some(next) = self.image_cache_hit(st, scope, &resolved, &key) {
                self.cache_store(&key, &next);
                self.note_step(why, &st.key, &key, &trace, &inputs, false);
                *st = next;
                self.stats
                    .cached
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Ok((true, None));
            }
        }
        let reason = if self.no_cache {
            None
        } else {
            let reason = self.miss_reason(why, &st.key, &trace, &inputs);
            (self.events)(Event::now(EventKind::CacheMiss {
                step: s.step_no,
                reason: reason.clone(),
            }));
            reason
        };

        let created = match self.req.source_date_epoch {
            Some(t) => strata_oci::rfc3339_unix(t),
            None => now_rfc3339(),
        };
        let mut link_cached = false;
        let mut next = st.clone();
        next.key = key.clone();
        let c = &mut next.config;
        match &resolved {
            Resolved::From { .. } => return Err(err("FROM inside a stage".into())),
            Resolved::Run {
                command,
                network,
                heredocs,
                mounts,
                ..
            } => {
                let os = &st.config.os;
                let arch = &st.config.architecture;
                let variant = st.config.variant.as_deref();
                strata_runtime::binfmt::ensure_can_run(os, arch, variant)
                    .map_err(|e| err(e.to_string()))?;
                let layer = self.run_instruction(
                    st, scope, s, command, heredocs, mounts, network, deps, c, &created,
                )?;
                next.layers.push(layer);
            }
            Resolved::Copy { .. } | Resolved::Add { .. } => {
                let (f, p) = (
                    file_step.as_ref().expect("file step"),
                    prepared.as_ref().expect("prepared"),
                );
                let layer = if f.link {
                    let (layer, hit) = self.link_layer(st, f, p, &def, deps).map_err(err)?;
                    link_cached = hit;
                    layer
                } else {
                    self.copy_step(st, f, p, deps).map_err(err)?
                };
                c.push_history(
                    &created,
                    format!("{} # buildkit", s.source.trim()),
                    Some(layer.diff_id.clone()),
                );
                next.layers.push(layer);
            }
            Resolved::Workdir(path) => {
                let wd = c.set_workdir(path);
                let layer = self.workdir_step(st, &wd, &c.runtime().user).map_err(err)?;
                let diff = layer.as_ref().map(|l| l.diff_id.clone());
                c.push_history(&created, format!("WORKDIR {wd}"), diff);
                next.layers.extend(layer);
            }
            Resolved::Env(pairs) => {
                c.set_env(pairs);
                let kv: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                c.push_history(&created, format!("ENV {}", kv.join(" ")), None);
            }
            Resolved::Arg(decls) => {
                let _ = decls; // ARG changes only the scope (already updated).
            }
            Resolved::Label(pairs) => {
                c.add_labels(pairs);
                let kv: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                c.push_history(&created, format!("LABEL {}", kv.join(" ")), None);
            }
            Resolved::Expose(ports) => {
                c.expose(ports).map_err(|e| err(e.0))?;
                c.push_history(&created, format!("EXPOSE {}", ports.join(" ")), None);
            }
            Resolved::Volume(paths) => {
                c.add_volumes(paths).map_err(|e| err(e.0))?;
                c.push_history(&created, format!("VOLUME [{}]", paths.join(" ")), None);
            }
            Resolved::User(u) => {
                c.set_user(u);
                c.push_history(&created, format!("USER {u}"), None);
            }
            Resolved::Cmd(cmd) => {
                c.set_cmd(&CommandForm::from(cmd));
                next.cmd_set = true;
                let by = format!(
                    "CMD {}",
                    go_quoted_list(c.runtime().cmd.as_deref().unwrap_or(&[]))
                );
                c.push_history(&created, by, None);
            }
            Resolved::Entrypoint(ep) => {
                c.set_entrypoint(&CommandForm::from(ep), st.cmd_set);
                let by = format!(
                    "ENTRYPOINT {}",
                    go_quoted_list(c.runtime().entrypoint.as_deref().unwrap_or(&[]))
                );
                c.push_history(&created, by, None);
            }
            Resolved::Shell(sh) => {
                c.set_shell(sh);
                c.push_history(&created, format!("SHELL {}", go_quoted_list(sh)), None);
            }
            Resolved::StopSignal(sig) => {
                c.set_stop_signal(sig);
                c.push_history(&created, format!("STOPSIGNAL {sig}"), None);
            }
            Resolved::Healthcheck(hc) => {
                c.set_healthcheck(hc.as_ref());
                let by = format!(
                    "HEALTHCHECK {}",
                    s.source.trim().split_once(' ').map(|x| x.1).unwrap_or("")
                );
                c.push_history(&created, by, None);
            }
            Resolved::Onbuild(t) => {
                c.add_onbuild(t);
                c.push_history(&created, format!("ONBUILD {t}"), None);
            }
            Resolved::Maintainer(m) => {
                c.set_author(m);
                c.push_history(&created, format!("MAINTAINER {m}"), None);
            }
        }
        self.cache_store(&key, &next);
        self.note_step(why, &st.key, &key, &trace, &inputs, true);
        let counter = if link_cached {
            &self.stats.cached
        } else {
            &self.stats.executed
        };
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *st = next;
        Ok((link_cached, reason))
    }

    /// The cache key of the resolved step `resolved` on the state `st`
    /// (`scope` has resolved it): its definition plus its input digests,
    /// chained to the state's key; also what explains a later miss. Used
    /// by execution and, ahead of it, by FROM's unpack decision: both must
    /// key a step the same way.
    pub(crate) fn step_key(
        &self,
        st: &StageState,
        scope: &StageScope,
        resolved: &Resolved,
        deps: &BTreeMap<usize, StageState>,
    ) -> Result<StepKey, String> {
        let mut def = json!({
            "instr": serde_json::to_value(resolved).unwrap_or_default(),
            "workdir": st.config.workdir(),
            "user": st.config.runtime().user,
            "shell": st.config.shell(),
            "cmd_set": st.cmd_set,
        });
        if let Resolved::Run { network, .. } = resolved {
            // Refused before the cache: a cached step needs the entitlement too.
            self.run_network_mode(network)?;
            def["env"] = json!(st.config.runtime().env);
            def["build_args"] = json!(self.recorded_build_args(scope));
            // `--add-host`, `--shm-size`, `--ulimit` key RUN as in BuildKit
            // (only when set, so that other keys stay as they were).
            let x = &self.req.run_extra;
            if *x != strata_runtime::ContainerExtras::default() {
                def["run_extra"] = json!({
                    "hosts": x.extra_hosts,
                    "shm": x.shm_size,
                    "ulimits": x.ulimits.iter().map(|u| (&u.name, u.soft, u.hard)).collect::<Vec<_>>(),
                });
            }
        }
        // What keyed the step, kept to explain a later miss (not hashed).
        let mut trace = Trace {
            args: self.recorded_build_args(scope).into_iter().collect(),
            ..Default::default()
        };
        let mut inputs = Inputs::new();
        if let Resolved::Run { mounts, .. } = resolved {
            // What bind mounts show the command is an input as much as a
            // COPY's sources: their content goes into the key.
            let binds = self.bind_mount_inputs(mounts, deps)?;
            if !binds.is_empty() {
                def["mount_inputs"] = json!(binds.iter().map(|b| &b.digest).collect::<Vec<_>>());
            }
            for (i, b) in binds.into_iter().enumerate() {
                trace.mounts.push(b.label);
                if let Some(f) = b.files {
                    inputs.insert(format!("mount:{i}"), f);
                }
            }
        }
        let mut prepared = None;
        if let Some(f) = FileStep::of(resolved) {
            let mut p = self.prepare_files(&f, deps)?;
            def["input"] = json!(p.digest);
            trace.input = Some(p.label.clone());
            if let Some(files) = p.files.take() {
                inputs.insert("input".into(), files);
            }
            prepared = Some(p);
        }
        let key = CacheKey::derive(Some(&st.key), &def);
        trace.def = def.clone();
        Ok(StepKey {
            key,
            def,
            prepared,
            trace,
            inputs,
        })
    }

    /// The build args a RUN records (its cache key and its history's
    /// `|N K=V` prefix): those in scope, without the proxy build args no
    /// ARG declares (BuildKit passes these to RUN only as environment).
    pub(crate) fn recorded_build_args(&self, scope: &StageScope) -> Vec<(String, String)> {
        scope
            .build_args_in_scope()
            .into_iter()
            .filter(|(k, _)| !strata_frontend::plan::is_proxy_arg(k) || scope.is_declared_arg(k))
            .collect()
    }

    /// The proxy build args (`--build-arg http_proxy=...`, any case of
    /// HTTP_PROXY, HTTPS_PROXY, FTP_PROXY, NO_PROXY, ALL_PROXY) as RUN's
    /// environment, in both cases as BuildKit sets them; a name `env`
    /// already sets (ENV, a declared ARG) is left alone.
    pub(crate) fn proxy_env(&self, env: &[String]) -> Vec<String> {
        let set = |name: &str| {
            env.iter()
                .any(|e| e.split_once('=').is_some_and(|(k, _)| k == name))
        };
        let mut out = Vec::new();
        for upper in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "FTP_PROXY",
            "NO_PROXY",
            "ALL_PROXY",
        ] {
            // An exact-case value first, then any other spelling.
            let lower = upper.to_ascii_lowercase();
            let value = self
                .req
                .build_args
                .get(upper)
                .or_else(|| self.req.build_args.get(&lower))
                .or_else(|| {
                    self.req
                        .build_args
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(upper))
                        .map(|(_, v)| v)
                });
            let Some(v) = value.filter(|v| !v.is_empty()) else {
                continue;
            };
            for name in [upper, lower.as_str()] {
                if !set(name) {
                    out.push(format!("{name}={v}"));
                }
            }
        }
        out
    }

    /// Notes a step's key for `--cache-to` (which keys a build used).
    fn record_key(&self, stage: usize, key: &CacheKey) {
        let mut keys = self.stage_keys.lock().unwrap_or_else(|p| p.into_inner());
        keys.entry(stage).or_default().push(key.clone());
    }

    pub(crate) fn cache_lookup(&self, key: &CacheKey) -> Option<StepRecord> {
        let rec = self.store.meta().cache_get(key.as_str()).ok()??;
        let rec: StepRecord = serde_json::from_str(&rec.value).ok()?;
        // Every layer must still be in the store.
        for l in &rec.layers {
            if !self.store.blobs().exists(&l.digest) {
                return None;
            }
            let _ = self.lease.add_blob(&l.digest);
        }
        Some(rec)
    }

    fn cache_store(&self, key: &CacheKey, st: &StageState) {
        let rec = StepRecord {
            config: st.config.clone(),
            layers: st.layers.clone(),
            cmd_set: st.cmd_set,
        };
        self.cache_put_record(key, &rec);
    }

    /// Records a cache entry (the layers it names are kept by GC with it).
    pub(crate) fn cache_put_record(&self, key: &CacheKey, rec: &StepRecord) {
        let record = CacheRecord {
            value: serde_json::to_string(rec).unwrap_or_default(),
            blobs: rec.layers.iter().map(|l| l.digest.clone()).collect(),
            images: Vec::new(),
        };
        if let Err(e) = self.store.meta().cache_put(key.as_str(), &record) {
            tracing::warn!("could not record build cache entry: {e}");
        }
    }
}
/// `--chown=user[:group]` in the stage's rootfs, BuildKit's rules: a name
/// takes its primary group from passwd; a bare number uses the same number
/// as gid.
pub fn resolve_chown(root: &std::path::Path, spec: &str) -> Result<(u64, u64), String> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if group.is_none() {
        if let Ok(n) = user.parse::<u64>() {
            return Ok((n, n));
        }
    }
    let u = strata_runtime::resolve_user(root, spec).map_err(|e| match e {
        // Without the host path of the rootfs.
        strata_runtime::Error::NameNotFound { missing, .. } => missing.to_string(),
        e => e.to_string(),
    })?;
    Ok((u.uid as u64, u.gid as u64))
}
