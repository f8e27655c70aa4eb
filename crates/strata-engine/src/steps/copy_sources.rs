//! The sources of a COPY or ADD, fetched and digested for its key: the
//! context, a stage, an image, a named context, heredocs, URLs or git
//! repositories. The key (`key.rs`) prepares them; execution
//! (`copy.rs`) copies from what was prepared.

use std::path::{Path, PathBuf};

use strata_frontend::{FromRef, Heredoc};

use super::def::{FileKind, FileStep};
use crate::context::{BuildContext, NoIgnore};
use crate::copy::CopyError;
use crate::error::StepError;
use crate::named::Named;
use crate::sources::{git, http, is_git_url, is_http_url, is_remote, SourceError};
use crate::step_env::StepEnv;
use crate::tempdir::TempDir;

/// Where a file step reads, once its sources are fetched.
pub(crate) enum Origin {
    Context,
    Stage(usize),
    Image(String),
    /// A named context directory.
    NamedDir(BuildContext),
    /// A temp dir the step filled (heredocs, downloads, clones).
    Fetched(TempDir),
}

/// A file step's sources, ready: where they are, their digest (for the
/// cache key), and the source paths to copy.
pub(crate) struct Prepared {
    pub(crate) digest: String,
    /// What it reads, for a cache-miss reason (`context`, `stage build`...).
    pub(crate) label: String,
    /// Its files, when they come from a context directory.
    pub(crate) files: Option<crate::whymiss::FileSet>,
    pub(crate) origin: Origin,
    pub(crate) srcs: Vec<String>,
    pub(crate) extract: bool,
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(data))
}

/// Fetches what a file step needs and digests it.
pub(crate) fn prepare(env: &StepEnv<'_>, f: &FileStep<'_>) -> Result<Prepared, StepError> {
    let heredoc_srcs = f.srcs.iter().filter(|s| s.starts_with("<<")).count();
    if heredoc_srcs > 0 {
        if heredoc_srcs != f.srcs.len() || f.heredocs.len() != f.srcs.len() {
            return Err(CopyError::Invalid(format!(
                "{}: mixing heredocs and other sources is not supported: split the instruction",
                f.kind
            ))
            .into());
        }
        return prepare_heredocs(env, f.heredocs);
    }
    if f.fetches_remote() {
        if !f.srcs.iter().all(|s| is_remote(s)) {
            return Err(CopyError::Sources(
                "ADD: mixing URLs or git repositories with local sources is not supported: use one ADD for each",
            )
            .into());
        }
        return prepare_remote(env, f);
    }
    if f.checksum.is_some() {
        return Err(CopyError::Sources(
            "ADD --checksum only applies to URL and git sources: remove it or use a URL",
        )
        .into());
    }
    let extract = f.kind == FileKind::Add && f.unpack;
    let mut files = None;
    let (origin, digest, label) = match f.from {
        None => {
            let (d, l) = env.inputs.context.digest_listed(f.srcs)?;
            files = Some(l);
            (Origin::Context, d, "context".to_string())
        }
        Some(FromRef::Stage(i)) => {
            let d = env.dep(*i).map_err(StepError::from)?;
            let label = format!("stage {}", crate::state::stage_label(&env.plan.stages[*i]));
            (Origin::Stage(*i), d.key.0.clone(), label)
        }
        Some(FromRef::Image(name)) => match env.inputs.named(name) {
            Some(Named::Dir(dir)) => {
                let ctx = BuildContext::open(dir, Box::new(NoIgnore), None)?;
                let (d, l) = ctx.digest_listed(f.srcs)?;
                files = Some(l);
                (Origin::NamedDir(ctx), d, format!("context {name}"))
            }
            Some(Named::Image(id)) => (
                Origin::Image(id.clone()),
                id.clone(),
                format!("image {name}"),
            ),
            None => {
                let s = env.session;
                let id = s
                    .images
                    .resolve_for(name, env.platform, s.events)?
                    .to_string();
                (Origin::Image(id.clone()), id, format!("image {name}"))
            }
        },
    };
    Ok(Prepared {
        digest,
        label,
        files,
        origin,
        srcs: f.srcs.to_vec(),
        extract,
    })
}

/// `COPY <<EOF /path`: each heredoc becomes a file named after its
/// delimiter (0644), its body already expanded by the frontend.
fn prepare_heredocs(env: &StepEnv<'_>, docs: &[Heredoc]) -> Result<Prepared, StepError> {
    let tmp = env.session.temp_dir("heredoc").map_err(StepError::Fs)?;
    let mut srcs = Vec::new();
    let mut all = Vec::new();
    for h in docs {
        let p = tmp.0.join(&h.name);
        std::fs::write(&p, &h.content).map_err(StepError::io(format!("heredoc {}", h.name)))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644))
            .map_err(StepError::Fs)?;
        set_mtime(&p, env.inputs.now_secs());
        srcs.push(format!("/{}", h.name));
        all.extend_from_slice(h.name.as_bytes());
        all.push(0);
        all.extend_from_slice(h.content.as_bytes());
        all.push(0);
    }
    Ok(Prepared {
        digest: format!("heredoc:sha256:{}", sha256_hex(&all)),
        label: "the heredoc".into(),
        files: None,
        origin: Origin::Fetched(tmp),
        srcs,
        extract: false,
    })
}

/// ADD of URLs (downloaded, never extracted) and git repositories
/// (cloned; their contents are copied).
fn prepare_remote(env: &StepEnv<'_>, f: &FileStep<'_>) -> Result<Prepared, StepError> {
    if f.checksum.is_some() && f.srcs.len() > 1 {
        return Err(CopyError::Sources("ADD --checksum needs exactly one source").into());
    }
    let tmp = env.session.temp_dir("fetch").map_err(StepError::Fs)?;
    let mut srcs = Vec::new();
    let mut digests = Vec::new();
    for (i, url) in f.srcs.iter().enumerate() {
        if is_http_url(url) {
            let sub = tmp.0.join(format!("u{i}"));
            std::fs::create_dir_all(&sub).map_err(StepError::Fs)?;
            let name = http::file_name(url);
            let d = http::download(url, &sub, &name, f.checksum)?;
            srcs.push(format!("/u{i}/{name}"));
            digests.push(format!("{name}\0{}\0{:?}", d.digest, d.mtime));
        } else if is_git_url(url) {
            let src = git::GitSource::parse(url);
            let dir = tmp.0.join(format!("g{i}"));
            let co = git::fetch(&src, &dir, f.keep_git_dir).map_err(|e| SourceError::Add {
                url: url.clone(),
                source: Box::new(e),
            })?;
            if let Some(want) = f.checksum {
                if !co.commit.starts_with(want) {
                    return Err(SourceError::CommitMismatch {
                        url: url.clone(),
                        want: want.to_string(),
                        got: co.commit,
                    }
                    .into());
                }
            }
            srcs.push(crate::rootfs::container_path(&tmp.0, &co.root));
            // The .git dir is not reproducible (pack files): key by
            // commit and the flag.
            digests.push(format!("git\0{}\0{}", co.commit, f.keep_git_dir));
            if let Some(t) = env.inputs.epoch() {
                clamp_tree_mtimes(&co.root, t);
            }
        }
    }
    Ok(Prepared {
        digest: format!(
            "remote:sha256:{}",
            sha256_hex(digests.join("\n").as_bytes())
        ),
        label: format!("the remote source {}", f.srcs.join(" ")),
        files: None,
        origin: Origin::Fetched(tmp),
        srcs,
        extract: false,
    })
}

fn set_mtime(p: &Path, t: i64) {
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64);
    if let Ok(f) = std::fs::File::options().write(true).open(p) {
        let _ = f.set_modified(when);
    }
}

/// Clamps the mtimes of a fetched tree's regular files to `t` (git sets
/// checkout times to now).
fn clamp_tree_mtimes(root: &Path, t: i64) {
    let mut stack: Vec<PathBuf> = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for ent in rd.flatten() {
            let p = ent.path();
            match ent.file_type() {
                Ok(ft) if ft.is_dir() => stack.push(p),
                Ok(ft) if ft.is_file() => set_mtime(&p, t),
                _ => {}
            }
        }
    }
}
