//! Executing one stage: its base, its ONBUILD triggers, then each step in
//! order, each through the cache (key = parent key + resolved definition +
//! input digests; a hit restores the stage state, a miss executes and
//! records).

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::json;
use strata_frontend::{Base, Command, FromRef, Resolved, Stage, StageScope, Step};
use strata_runtime::Network;
use strata_store::{CacheRecord, LayerBuilder};

use crate::build::{BuildError, Builder};
use crate::cache::{CacheKey, LayerRef, StepRecord};
use crate::config::{go_quoted_list, CommandForm, Healthcheck, ImageConfigDoc};
use crate::copy::{copy_into_layer, CopyParams, Source};
use crate::events::{Event, EventKind};
use crate::mounts::MountedRootfs;
use crate::rootfs::resolve_in_root;
use crate::run_step::{layer_options, layer_ref, RunParams};

/// A stage's state between steps.
#[derive(Debug, Clone)]
pub struct StageState {
    pub config: ImageConfigDoc,
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

fn form(c: &Command) -> CommandForm {
    match c {
        Command::Shell(s) => CommandForm::Shell(s.clone()),
        Command::Exec(v) => CommandForm::Exec(v.clone()),
    }
}

fn now_rfc3339() -> String {
    crate::events::format_rfc3339_nanos(time::OffsetDateTime::now_utc())
}

/// One step's context for error messages and events.
struct StepCtx<'a> {
    step_no: usize,
    label: String,
    name: String,
    location: String,
    source: &'a str,
}

impl Builder<'_> {
    fn step_error(&self, s: &StepCtx<'_>, message: String, exit_code: Option<i32>) -> BuildError {
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
        let label = stage_label(stage);
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
        let platform = stage
            .platform
            .clone()
            .unwrap_or_else(|| format!("linux/{}", crate::config::host_architecture()));
        let mut st = match &stage.base {
            Base::Scratch => StageState {
                config: ImageConfigDoc::scratch(),
                layers: Vec::new(),
                key: CacheKey::base("scratch", &platform),
                cmd_set: false,
            },
            Base::Image(name) => {
                let img = crate::images::load_image(self.store, name)
                    .map_err(|e| self.step_error(&from_ctx, e.to_string(), None))?;
                if let Err(e) = self.lease.add_image(&img.id) {
                    return Err(self.step_error(&from_ctx, e.to_string(), None));
                }
                StageState {
                    key: CacheKey::base(&img.id.to_string(), &platform),
                    config: img.config,
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
        (self.events)(Event::now(EventKind::StepDone {
            step: first,
            duration: started.elapsed(),
        }));

        let mut scope = StageScope::new(self.plan, idx, &st.config.env_pairs());

        // ONBUILD triggers of the base run first, then are cleared.
        if let Some(triggers) = st.config.config.on_build.take() {
            for text in triggers {
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
                self.exec_step(&mut st, &mut scope, &step, &ctx, deps)?;
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
            let cached = self.exec_step(&mut st, &mut scope, step, &ctx, deps)?;
            if cached {
                (self.events)(Event::now(EventKind::Cached { step: ctx.step_no }));
            } else {
                (self.events)(Event::now(EventKind::StepDone {
                    step: ctx.step_no,
                    duration: t.elapsed(),
                }));
            }
        }
        Ok(st)
    }

    /// Resolves, keys and (on a miss) executes one step. Returns whether it
    /// was a cache hit.
    fn exec_step(
        &self,
        st: &mut StageState,
        scope: &mut StageScope,
        step: &Step,
        s: &StepCtx<'_>,
        deps: &BTreeMap<usize, StageState>,
    ) -> Result<bool, BuildError> {
        let resolved = scope
            .resolve(step)
            .map_err(|e| self.step_error(s, e.to_string(), None))?;
        let err = |m: String| self.step_error(s, m, None);

        // The definition that keys the step, plus its input digests.
        let mut def = json!({
            "instr": serde_json::to_value(&resolved).unwrap_or_default(),
            "workdir": st.config.workdir(),
            "user": st.config.config.user,
            "shell": st.config.shell(),
            "cmd_set": st.cmd_set,
        });
        match &resolved {
            Resolved::Run { .. } => {
                def["env"] = json!(st.config.config.env);
                def["build_args"] = json!(scope.build_args_in_scope());
            }
            Resolved::Copy { srcs, .. } | Resolved::Add { srcs, .. } => {
                let from = match &resolved {
                    Resolved::Copy { from, .. } => from.clone(),
                    _ => None,
                };
                def["input"] = json!(self
                    .copy_input_digest(srcs, from.as_ref(), deps)
                    .map_err(err)?);
            }
            _ => {}
        }
        let key = CacheKey::derive(Some(&st.key), &def);

        if !self.no_cache {
            if let Some(rec) = self.cache_lookup(&key) {
                *st = StageState {
                    config: rec.config,
                    layers: rec.layers,
                    key,
                    cmd_set: rec.cmd_set,
                };
                self.stats
                    .cached
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Ok(true);
            }
        }

        let created = now_rfc3339();
        let mut next = st.clone();
        next.key = key.clone();
        let c = &mut next.config;
        match &resolved {
            Resolved::From { .. } => return Err(err("FROM inside a stage".into())),
            Resolved::Run {
                command,
                network,
                heredocs,
                ..
            } => {
                let mut argv = c.argv(&form(command));
                if let (Command::Shell(text), false) = (command, heredocs.is_empty()) {
                    let only_heredoc = text.trim_start().starts_with("<<") && heredocs.len() == 1;
                    let last = argv.len() - 1;
                    if only_heredoc {
                        argv[last] = heredocs[0].content.clone();
                    } else {
                        let mut full = text.clone();
                        for h in heredocs {
                            full.push('\n');
                            full.push_str(&h.content);
                            if !h.content.ends_with('\n') {
                                full.push('\n');
                            }
                            full.push_str(&h.name);
                        }
                        argv[last] = full;
                    }
                }
                let mut env = c.config.env.clone().unwrap_or_default();
                let args = scope.build_args_in_scope();
                for (k, v) in &args {
                    env.push(format!("{k}={v}"));
                }
                let net = match network.as_deref() {
                    Some("none") => Network::None,
                    _ => Network::Host,
                };
                let params = RunParams {
                    argv: argv.clone(),
                    env,
                    user: &c.config.user,
                    workdir: c.workdir(),
                    network: net,
                    step: s.step_no,
                };
                let layer = crate::run_step::run(
                    self.store,
                    self.executor,
                    &self.init_layer,
                    &st.layers,
                    &params,
                    self.events,
                    self.lease,
                )
                .map_err(|e| {
                    let code = match &e {
                        crate::run_step::RunError::Failed { code, .. } => Some(*code),
                        _ => None,
                    };
                    self.step_error(s, e.to_string(), code)
                })?;
                let prefix = if args.is_empty() {
                    String::new()
                } else {
                    let kv: Vec<String> = args.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    format!("|{} {} ", args.len(), kv.join(" "))
                };
                let by = format!("RUN {prefix}{} # buildkit", argv.join(" "));
                c.push_history(&created, by, Some(layer.diff_id.clone()));
                next.layers.push(layer);
            }
            Resolved::Copy {
                srcs,
                dest,
                from,
                chown,
                chmod,
                heredocs,
                ..
            } => {
                if !heredocs.is_empty() {
                    return Err(err("COPY with heredocs is not supported yet".into()));
                }
                let layer = self
                    .copy_step(st, srcs, dest, from.as_ref(), chown, chmod, "COPY", deps)
                    .map_err(err)?;
                c.push_history(
                    &created,
                    format!("{} # buildkit", s.source.trim()),
                    Some(layer.diff_id.clone()),
                );
                next.layers.push(layer);
            }
            Resolved::Add {
                srcs,
                dest,
                chown,
                chmod,
                heredocs,
                ..
            } => {
                if !heredocs.is_empty() {
                    return Err(err("ADD with heredocs is not supported yet".into()));
                }
                if let Some(url) = srcs
                    .iter()
                    .find(|s| s.starts_with("http://") || s.starts_with("https://"))
                {
                    return Err(err(format!("ADD {url}: downloading URLs is not supported yet; download it into the context and COPY it")));
                }
                let layer = self
                    .copy_step(st, srcs, dest, None, chown, chmod, "ADD", deps)
                    .map_err(err)?;
                c.push_history(
                    &created,
                    format!("{} # buildkit", s.source.trim()),
                    Some(layer.diff_id.clone()),
                );
                next.layers.push(layer);
            }
            Resolved::Workdir(path) => {
                let wd = c.set_workdir(path);
                let layer = self.workdir_step(st, &wd, &c.config.user).map_err(err)?;
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
                c.set_cmd(&form(cmd));
                next.cmd_set = true;
                let by = format!(
                    "CMD {}",
                    go_quoted_list(c.config.cmd.as_deref().unwrap_or(&[]))
                );
                c.push_history(&created, by, None);
            }
            Resolved::Entrypoint(ep) => {
                c.set_entrypoint(&form(ep), st.cmd_set);
                let by = format!(
                    "ENTRYPOINT {}",
                    go_quoted_list(c.config.entrypoint.as_deref().unwrap_or(&[]))
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
                let ns =
                    |d: Option<std::time::Duration>| d.map(|d| d.as_nanos() as i64).unwrap_or(0);
                c.set_healthcheck(hc.as_ref().map(|h| Healthcheck {
                    test: h.test.clone(),
                    interval: ns(h.interval),
                    timeout: ns(h.timeout),
                    start_period: ns(h.start_period),
                    start_interval: ns(h.start_interval),
                    retries: h.retries.unwrap_or(0) as i64,
                }));
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
        self.stats
            .executed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *st = next;
        Ok(false)
    }

    fn cache_lookup(&self, key: &CacheKey) -> Option<StepRecord> {
        let rec = self.store.meta().cache_get(key.as_str()).ok()??;
        let rec: StepRecord = serde_json::from_str(&rec.value).ok()?;
        // Every layer must still be in the store.
        for l in &rec.layers {
            let d = l.digest.parse().ok()?;
            if !self.store.blobs().exists(&d) {
                return None;
            }
            let _ = self.lease.add_blob(&d);
        }
        Some(rec)
    }

    fn cache_store(&self, key: &CacheKey, st: &StageState) {
        let rec = StepRecord {
            config: st.config.clone(),
            layers: st.layers.clone(),
            cmd_set: st.cmd_set,
        };
        let record = CacheRecord {
            value: serde_json::to_string(&rec).unwrap_or_default(),
            blobs: st
                .layers
                .iter()
                .filter_map(|l| l.digest.parse().ok())
                .collect(),
            images: Vec::new(),
        };
        if let Err(e) = self.store.meta().cache_put(key.as_str(), &record) {
            tracing::warn!("could not record build cache entry: {e}");
        }
    }

    /// The content digest of a COPY's inputs: context sources by content
    /// (stat cache), another stage by its final key, an image by its ID.
    fn copy_input_digest(
        &self,
        srcs: &[String],
        from: Option<&FromRef>,
        deps: &BTreeMap<usize, StageState>,
    ) -> Result<String, String> {
        match from {
            None => {
                let mut rels = Vec::new();
                for s in srcs {
                    rels.extend(self.context.resolve_source(s).map_err(|e| e.to_string())?);
                }
                self.context
                    .digest_sources(&rels)
                    .map_err(|e| e.to_string())
            }
            Some(FromRef::Stage(i)) => deps
                .get(i)
                .map(|d| d.key.0.clone())
                .ok_or_else(|| format!("stage {i} was not built")),
            Some(FromRef::Image(name)) => crate::images::find_image_id(self.store, name)
                .map(|d| d.to_string())
                .map_err(|e| e.to_string()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn copy_step(
        &self,
        st: &StageState,
        srcs: &[String],
        dest: &str,
        from: Option<&FromRef>,
        chown: &Option<String>,
        chmod: &Option<String>,
        instruction: &str,
        deps: &BTreeMap<usize, StageState>,
    ) -> Result<LayerRef, String> {
        let e = |x: &dyn std::fmt::Display| x.to_string();
        let stage_root = MountedRootfs::mount(self.store, &st.layers, None, Some(self.lease))
            .map_err(|x| e(&x))?;
        let (uid, gid) = match chown {
            None => (0, 0),
            Some(spec) => resolve_chown(stage_root.root(), spec)
                .map_err(|m| format!("{instruction} --chown={spec}: {m}"))?,
        };
        let chmod = match chmod {
            None => None,
            Some(m) => Some(
                u32::from_str_radix(m, 8)
                    .map_err(|_| format!("invalid --chmod={m}: use an octal mode such as 755"))?,
            ),
        };
        let source_mount;
        let image_mount;
        let source = match from {
            None => Source::Context(&self.context),
            Some(FromRef::Stage(i)) => {
                let dep = deps
                    .get(i)
                    .ok_or_else(|| format!("stage {i} was not built"))?;
                source_mount =
                    MountedRootfs::mount(self.store, &dep.layers, None, Some(self.lease))
                        .map_err(|x| e(&x))?;
                Source::Rootfs(source_mount.root())
            }
            Some(FromRef::Image(name)) => {
                let img = crate::images::load_image(self.store, name).map_err(|x| e(&x))?;
                image_mount = MountedRootfs::mount(self.store, &img.layers, None, Some(self.lease))
                    .map_err(|x| e(&x))?;
                Source::Rootfs(image_mount.root())
            }
        };
        let mut layer =
            LayerBuilder::new(self.store.blobs(), layer_options()).map_err(|x| e(&x))?;
        copy_into_layer(
            &mut layer,
            &source,
            stage_root.root(),
            &CopyParams {
                srcs,
                dest,
                workdir: st.config.workdir(),
                uid,
                gid,
                chmod,
                instruction,
                extract_archives: instruction == "ADD",
            },
        )
        .map_err(|x| e(&x))?;
        let info = layer.finish_leased(Some(self.lease)).map_err(|x| e(&x))?;
        Ok(layer_ref(&info))
    }

    /// WORKDIR: creates the directory (owned by the current USER, as
    /// BuildKit) when missing; a layer only when something was created.
    fn workdir_step(
        &self,
        st: &StageState,
        wd: &str,
        user: &str,
    ) -> Result<Option<LayerRef>, String> {
        let e = |x: &dyn std::fmt::Display| x.to_string();
        let root = MountedRootfs::mount(self.store, &st.layers, None, Some(self.lease))
            .map_err(|x| e(&x))?;
        let exists = resolve_in_root(root.root(), wd, true)
            .ok()
            .and_then(|h| std::fs::metadata(h).ok())
            .is_some_and(|m| m.is_dir());
        if exists {
            return Ok(None);
        }
        let (uid, gid) = if user.is_empty() {
            (0, 0)
        } else {
            let u = strata_runtime::resolve_user(root.root(), user).map_err(|x| e(&x))?;
            (u.uid as u64, u.gid as u64)
        };
        let mut layer =
            LayerBuilder::new(self.store.blobs(), layer_options()).map_err(|x| e(&x))?;
        let mut cur = String::new();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        for comp in wd.split('/').filter(|c| !c.is_empty()) {
            cur.push('/');
            cur.push_str(comp);
            let host = resolve_in_root(root.root(), &cur, false).map_err(|x| e(&x))?;
            let meta = std::fs::symlink_metadata(&host).ok();
            let entry = match meta {
                Some(m) if m.is_dir() => {
                    use std::os::unix::fs::MetadataExt;
                    strata_store::EntryMeta {
                        mode: m.mode() & 0o7777,
                        uid: m.uid() as u64,
                        gid: m.gid() as u64,
                        mtime: m.mtime(),
                        xattrs: Vec::new(),
                    }
                }
                Some(m) if m.file_type().is_symlink() => {
                    // Symlinked directories: Docker creates the target; keep it simple.
                    return Err(format!(
                        "WORKDIR {wd}: {cur} is a symlink, which strata does not follow yet"
                    ));
                }
                Some(_) => {
                    return Err(format!("WORKDIR {wd}: {cur} exists and is not a directory"))
                }
                None => strata_store::EntryMeta {
                    mode: 0o755,
                    uid,
                    gid,
                    mtime: now,
                    xattrs: Vec::new(),
                },
            };
            layer
                .add_dir(std::path::Path::new(&cur), &entry)
                .map_err(|x| e(&x))?;
        }
        let info = layer.finish_leased(Some(self.lease)).map_err(|x| e(&x))?;
        Ok(Some(layer_ref(&info)))
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
    let u = strata_runtime::resolve_user(root, spec).map_err(|e| {
        let s = e.to_string();
        // Drop the host path of the rootfs from the runtime's message.
        match s.find(" (rootfs ") {
            Some(i) => s[..i].to_string(),
            None => s,
        }
    })?;
    Ok((u.uid as u64, u.gid as u64))
}
