//! `RUN --mount`: turns the parsed mounts of one RUN into runtime mounts,
//! with everything they need kept alive (mounted stage roots, locks,
//! secret files) until the step ends.
//!
//! Mount points are never committed: they are created beforehand in a
//! separate placeholder layer stacked just below the upper dir, so runc
//! finds them and creates nothing in the upper dir (the layer's diff).

use std::any::Any;
use std::path::{Path, PathBuf};

use strata_frontend::{FromRef, Mount, MountKind};
use strata_runtime::{BindMount, MountSpec};

use crate::config::ConfigEditor as _;
use crate::mounts::MountedRootfs;
use crate::named::Named;
use crate::rootfs::resolve_in_root;
use crate::state::StageState;
use crate::step_env::StepEnv;
use crate::tempdir::TempDir;

mod cache;
mod error;
mod secret;

pub use error::RunMountError;

/// The runtime side of a RUN's mounts.
pub(crate) struct RunMounts {
    pub specs: Vec<MountSpec>,
    /// Extra environment (`SSH_AUTH_SOCK`, secrets with `env=`); never
    /// recorded in the image or the cache key.
    pub env: Vec<String>,
    /// The placeholder layer holding the mount points.
    pub placeholders: TempDir,
    /// Whatever must live until the process ends.
    _keep: Vec<Box<dyn Any>>,
}

/// Whether a mount point is a directory or a file.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PointKind {
    Dir,
    File,
}

impl RunMounts {
    fn point(&self, target: &str, kind: PointKind) -> Result<(), RunMountError> {
        let p = self.placeholders.0.join(target.trim_start_matches('/'));
        let e = |source| RunMountError::Point {
            target: target.to_string(),
            source,
        };
        match kind {
            PointKind::Dir => std::fs::create_dir_all(&p).map_err(e),
            PointKind::File => {
                if let Some(parent) = p.parent() {
                    std::fs::create_dir_all(parent).map_err(e)?;
                }
                std::fs::write(&p, b"").map_err(e)
            }
        }
    }

    fn bind(&mut self, source: PathBuf, target: &str, readonly: bool) -> Result<(), RunMountError> {
        let kind = if source.is_dir() {
            PointKind::Dir
        } else {
            PointKind::File
        };
        self.point(target, kind)?;
        self.specs.push(MountSpec::Bind(BindMount {
            source,
            destination: target.to_string(),
            readonly,
        }));
        Ok(())
    }

    /// `RUN <<EOF` whose body starts with `#!`: BuildKit runs the body as
    /// an executable file at `/dev/pipes/NAME` (so its interpreter line
    /// counts). Returns that path.
    pub(crate) fn add_script(
        &mut self,
        store: &strata_store::Store,
        name: &str,
        content: &str,
    ) -> Result<String, RunMountError> {
        use std::os::unix::fs::PermissionsExt;
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(RunMountError::ScriptName(name.to_string()));
        }
        let dir = TempDir::new(store, "script")?;
        let path = dir.0.join(name);
        let e = |source| RunMountError::Script {
            name: name.to_string(),
            source,
        };
        std::fs::write(&path, content).map_err(e)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).map_err(e)?;
        let target = format!("/dev/pipes/{name}");
        self.bind(path, &target, true)?;
        self._keep.push(Box::new(dir));
        Ok(target)
    }
}

/// Parses a mode option (`0755`, `755`).
fn parse_mode(v: Option<&str>, default: u32) -> Result<u32, RunMountError> {
    match v {
        None => Ok(default),
        Some(m) => u32::from_str_radix(m, 8).map_err(|_| RunMountError::InvalidMode(m.to_string())),
    }
}

fn parse_id(v: Option<&str>, what: &'static str) -> Result<u32, RunMountError> {
    match v {
        None => Ok(0),
        Some(n) => n.parse().map_err(|_| RunMountError::InvalidId {
            what,
            value: n.to_string(),
        }),
    }
}

/// A mount target, absolute (relative ones are relative to WORKDIR).
fn absolute(target: &str, workdir: &str) -> String {
    if target.starts_with('/') {
        crate::config::clean_path(target)
    } else {
        crate::config::clean_path(&format!("{workdir}/{target}"))
    }
}

fn option<'a>(m: &'a Mount, key: &str) -> Option<&'a str> {
    m.options
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// What one bind mount shows, for the RUN's cache key.
pub(crate) struct BindInput {
    pub digest: String,
    /// `bind mount source=src` (and where from).
    pub label: String,
    /// The files hashed, when it shows a directory of the context.
    pub files: Option<crate::whymiss::FileSet>,
}

/// Prepares the mounts of one RUN on the stage state `st`.
pub(crate) fn prepare_mounts(
    env: &StepEnv<'_>,
    mounts: &[Mount],
    st: &StageState,
) -> Result<RunMounts, RunMountError> {
    let placeholders = env
        .session
        .temp_dir("mnt")
        .map_err(RunMountError::Placeholders)?;
    let mut rm = RunMounts {
        specs: Vec::new(),
        env: Vec::new(),
        placeholders,
        _keep: Vec::new(),
    };
    let workdir = st.config.workdir().to_string();
    for m in mounts {
        let target = m.target.as_deref().map(|t| absolute(t, &workdir));
        if target.as_deref() == Some("/") {
            // runc would mount over the rootfs it is setting up (and
            // fail with "error closing exec fds").
            let kind = format!("{:?}", m.kind).to_ascii_lowercase();
            return Err(RunMountError::CoversRoot {
                kind,
                target: m.target.as_deref().unwrap_or("/").to_string(),
            });
        }
        match m.kind {
            MountKind::Bind => {
                let target = target.ok_or(RunMountError::NeedsTarget("bind"))?;
                bind_mount(env, &mut rm, m, &target)?;
            }
            MountKind::Cache => {
                let target = target.ok_or(RunMountError::NeedsTarget("cache"))?;
                cache::cache_mount(env, &mut rm, m, &target)?;
            }
            MountKind::Tmpfs => {
                let target = target.ok_or(RunMountError::NeedsTarget("tmpfs"))?;
                rm.point(&target, PointKind::Dir)?;
                let size = option(m, "size").map(parse_size).transpose()?;
                rm.specs.push(MountSpec::Tmpfs {
                    destination: target,
                    size,
                    mode: Some(parse_mode(m.mode.as_deref(), 0o1777)?),
                });
            }
            MountKind::Secret => secret::secret_mount(env, &mut rm, m, target)?,
            MountKind::Ssh => ssh_mount(env, &mut rm, m, target)?,
        }
    }
    Ok(rm)
}

/// The content digests of what this RUN's bind mounts show, one per
/// bind mount, for the step's cache key: the context (or a named
/// context directory) by the content of the mounted `source`, as COPY
/// digests its sources; a stage by its key (which covers its content);
/// an image by its ID. Each comes with a label and, for a directory,
/// the files hashed (to explain a cache miss).
pub(crate) fn bind_mount_inputs(
    env: &StepEnv<'_>,
    mounts: &[Mount],
) -> Result<Vec<BindInput>, RunMountError> {
    let mut out = Vec::new();
    for m in mounts.iter().filter(|m| m.kind == MountKind::Bind) {
        let source = m.source.as_deref().unwrap_or("/");
        let what = |e| RunMountError::BindInput {
            source_path: source.to_string(),
            source: e,
        };
        let mut files = None;
        let mut label = format!("bind mount source={source}");
        let digest = match m.from.as_ref() {
            None => {
                let (d, l) = env
                    .inputs
                    .context
                    .digest_listed(&[source.to_string()])
                    .map_err(what)?;
                files = Some(l);
                d
            }
            Some(FromRef::Stage(i)) => {
                let dep = env.dep(*i)?;
                label.push_str(&format!(
                    " from stage {}",
                    crate::state::stage_label(&env.plan.stages[*i])
                ));
                format!("stage:{}", dep.key.0)
            }
            Some(FromRef::Image(name)) => {
                label.push_str(&format!(" from {name}"));
                match env.inputs.named(name) {
                    Some(Named::Dir(d)) => {
                        let ctx = crate::context::BuildContext::open(
                            d,
                            Box::new(crate::context::NoIgnore),
                            None,
                        )
                        .map_err(what)?;
                        let (d, l) = ctx.digest_listed(&[source.to_string()]).map_err(what)?;
                        files = Some(l);
                        d
                    }
                    Some(Named::Image(id)) => format!("image:{id}"),
                    None => {
                        let s = env.session;
                        format!("image:{}", s.images.resolve(name, s.events)?)
                    }
                }
            }
        };
        out.push(BindInput {
            digest,
            label,
            files,
        });
    }
    Ok(out)
}

/// The root filesystem a `from=` names: a stage, an image, a named
/// context; `None` = the build context. The mount is kept in `rm`.
fn root_of_from(
    env: &StepEnv<'_>,
    rm: &mut RunMounts,
    from: Option<&FromRef>,
) -> Result<Option<PathBuf>, RunMountError> {
    let s = env.session;
    let layers = match from {
        None => return Ok(None),
        Some(FromRef::Stage(i)) => env.dep(*i)?.layers.clone(),
        Some(FromRef::Image(name)) => match env.inputs.named(name) {
            Some(Named::Dir(d)) => return Ok(Some(d.clone())),
            Some(Named::Image(id)) => image_layers(env, id)?,
            None => {
                let id = s.images.resolve(name, s.events)?;
                image_layers(env, &id.to_string())?
            }
        },
    };
    let m = MountedRootfs::mount(s.store, &layers, &[], Some(s.lease))?;
    let root = m.root().to_path_buf();
    rm._keep.push(Box::new(m));
    Ok(Some(root))
}

fn image_layers(
    env: &StepEnv<'_>,
    name: &str,
) -> Result<Vec<crate::cache::LayerRef>, RunMountError> {
    let img = crate::images::load_image(env.session.store, name)?;
    env.session.lease.add_image(&img.id)?;
    Ok(img.layers)
}

fn bind_mount(
    env: &StepEnv<'_>,
    rm: &mut RunMounts,
    m: &Mount,
    target: &str,
) -> Result<(), RunMountError> {
    let context = env.inputs.context;
    let source = m.source.as_deref().unwrap_or("/");
    let (root, is_context) = match root_of_from(env, rm, m.from.as_ref())? {
        Some(r) => (r, false),
        None => (context.root().to_path_buf(), true),
    };
    let host = resolve_in_root(&root, source, true)?;
    if std::fs::symlink_metadata(&host).is_err() {
        return Err(RunMountError::SourceNotFound(source.to_string()));
    }
    // With .dockerignore patterns, the mount shows the context as the
    // build sees it (as BuildKit, and as the step's key digests it):
    // a copy without the excluded files.
    let filtered = is_context && !context.ignores_nothing();
    if is_context && (filtered || !m.readonly) {
        // Writes must never reach the user's files: mount a copy.
        let copy = env.session.temp_dir("bind")?;
        let dst = copy.0.join("src");
        if filtered {
            let e = |x| RunMountError::BindContext {
                source_path: source.to_string(),
                source: x,
            };
            let rel = context.clean_source(source).map_err(e)?;
            let rel = context.follow(source, Path::new(&rel)).map_err(e)?;
            context.materialize(&rel, &dst).map_err(e)?;
        } else {
            copy_tree(&host, &dst)?;
        }
        rm.bind(dst, target, m.readonly)?;
        rm._keep.push(Box::new(copy));
    } else {
        // A stage or image root is an overlay with its own upper dir,
        // discarded when the step ends: rw writes vanish with it.
        rm.bind(host, target, m.readonly)?;
    }
    Ok(())
}

fn ssh_mount(
    env: &StepEnv<'_>,
    rm: &mut RunMounts,
    m: &Mount,
    target: Option<String>,
) -> Result<(), RunMountError> {
    let id = m.id.as_deref().unwrap_or("default");
    let Some(sock) = env.inputs.req.ssh.get(id) else {
        if m.required {
            return Err(RunMountError::SshNotForwarded(id.to_string()));
        }
        return Ok(());
    };
    let target = target.unwrap_or_else(|| "/run/buildkit/ssh_agent.0".to_string());
    rm.point(&target, PointKind::File)?;
    rm.specs.push(MountSpec::Bind(BindMount {
        source: sock.clone(),
        destination: target.clone(),
        readonly: false,
    }));
    rm.env.push(format!("SSH_AUTH_SOCK={target}"));
    Ok(())
}

/// `size=` of a tmpfs: bytes, or with a k/m/g suffix.
fn parse_size(s: &str) -> Result<u64, RunMountError> {
    let s = s.trim().to_ascii_lowercase();
    let (num, mult) = match s.chars().last() {
        Some('k') => (&s[..s.len() - 1], 1u64 << 10),
        Some('m') => (&s[..s.len() - 1], 1 << 20),
        Some('g') => (&s[..s.len() - 1], 1 << 30),
        _ => (&s[..], 1),
    };
    num.trim_end_matches('b')
        .parse::<u64>()
        .map(|n| n * mult)
        .map_err(|_| RunMountError::InvalidSize(s.clone()))
}

/// Copies a file or directory tree (`cp -a`, preserving modes, owners,
/// links).
pub(crate) fn copy_tree(from: &Path, to: &Path) -> Result<(), RunMountError> {
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg("--")
        .arg(from)
        .arg(to)
        .status()
        .map_err(RunMountError::Cp)?;
    if !st.success() {
        return Err(RunMountError::CopyFailed(from.to_path_buf()));
    }
    Ok(())
}
