//! `RUN --mount=type=cache`: a directory kept in the store under
//! `ROOT/cache/mounts/<id>`, shared by every build that names the same id
//! (default: the target path). It is never part of an image and never in a
//! cache key. `sharing`: `shared` (concurrent users), `locked` (one user at
//! a time, others wait), `private` (a busy cache gives a fresh, discarded
//! directory instead).

use std::path::PathBuf;

use strata_frontend::Mount;
use strata_runtime::{BindMount, MountSpec};
use strata_store::FileLock;

use super::{parse_id, parse_mode, root_of_from, PointKind, RunMountError, RunMounts};
use crate::step_env::StepEnv;

/// The directory name of a cache id: readable, and unique through a short
/// hash (ids may contain `/`).
fn dir_name(id: &str) -> String {
    use sha2::Digest as _;
    let safe: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let h = hex::encode(sha2::Sha256::digest(id.as_bytes()));
    format!("{}-{}", safe.trim_matches('_'), &h[..12])
}

/// Mounts the cache `m` at `target` (see the module docs).
pub(super) fn cache_mount(
    env: &StepEnv<'_>,
    rm: &mut RunMounts,
    m: &Mount,
    target: &str,
) -> Result<(), RunMountError> {
    let id = m.id.clone().unwrap_or_else(|| target.to_string());
    let base = env.session.store.root().join("cache/mounts");
    std::fs::create_dir_all(&base).map_err(|source| RunMountError::CacheDir {
        path: base.clone(),
        source,
    })?;
    let name = dir_name(&id);
    let dir = base.join(&name);
    let lock_path = base.join(format!("{name}.lock"));
    let e = |source| RunMountError::CacheLock {
        id: id.clone(),
        source: Box::new(source),
    };
    let dir: PathBuf = match m.sharing.as_deref().unwrap_or("shared") {
        "locked" => {
            rm._keep
                .push(Box::new(FileLock::exclusive(&lock_path).map_err(e)?));
            dir
        }
        "private" => match FileLock::try_exclusive(&lock_path).map_err(e)? {
            Some(l) => {
                rm._keep.push(Box::new(l));
                dir
            }
            None => {
                let t = env.session.temp_dir("cache")?;
                let p = t.0.join("d");
                rm._keep.push(Box::new(t));
                p
            }
        },
        _ => {
            rm._keep
                .push(Box::new(FileLock::shared(&lock_path).map_err(e)?));
            dir
        }
    };
    if !dir.exists() {
        create_cache_dir(env, rm, m, &dir)?;
    }
    rm.point(target, PointKind::Dir)?;
    rm.specs.push(MountSpec::Bind(BindMount {
        source: dir,
        destination: target.to_string(),
        readonly: m.readonly,
    }));
    Ok(())
}

/// A new cache dir: seeded from `from`/`source` when given, owned by
/// uid:gid with `mode` (default 0755), created under a temp name and
/// renamed so a half-seeded cache is never used.
fn create_cache_dir(
    env: &StepEnv<'_>,
    rm: &mut RunMounts,
    m: &Mount,
    dir: &std::path::Path,
) -> Result<(), RunMountError> {
    let tmp = dir.with_extension(format!("new{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    match root_of_from(env, rm, m.from.as_ref())? {
        Some(root) => {
            let src = m.source.as_deref().unwrap_or("/");
            let host = crate::rootfs::resolve_in_root(&root, src, true)?;
            super::copy_tree(&host, &tmp)?;
        }
        None => std::fs::create_dir_all(&tmp)?,
    }
    let uid = parse_id(m.uid.as_deref(), "uid")?;
    let gid = parse_id(m.gid.as_deref(), "gid")?;
    let mode = parse_mode(m.mode.as_deref(), 0o755)?;
    std::os::unix::fs::chown(&tmp, Some(uid), Some(gid))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
    if std::fs::rename(&tmp, dir).is_err() {
        // Another build created it first: use theirs.
        let _ = std::fs::remove_dir_all(&tmp);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn dir_names_are_safe_and_distinct() {
        let a = super::dir_name("/root/.cache/go-build");
        assert!(!a.contains('/'));
        assert_ne!(a, super::dir_name("/root/.cache/go_build"));
    }
}
