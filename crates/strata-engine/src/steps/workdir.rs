//! WORKDIR's directory: created in a layer (owned by the current USER, as
//! BuildKit) when missing from the stage's filesystem.

use strata_store::LayerBuilder;

use super::StepEnv;
use crate::cache::LayerRef;
use crate::error::StepError;
use crate::mounts::MountedRootfs;
use crate::rootfs::resolve_in_root;
use crate::run_step::layer_options;
use crate::state::StageState;

/// WORKDIR: creates the directory (owned by the current USER, as
/// BuildKit) when missing; a layer only when something was created.
pub(crate) fn execute(
    env: &StepEnv<'_>,
    st: &StageState,
    wd: &str,
    user: &str,
) -> Result<Option<LayerRef>, StepError> {
    let (store, lease) = (env.session.store, env.session.lease);
    let root = MountedRootfs::mount(store, &st.layers, &[], Some(lease))?;
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
        let u = strata_runtime::resolve_user(root.root(), user)?;
        (u.uid as u64, u.gid as u64)
    };
    let mut layer = LayerBuilder::new(store.blobs(), layer_options(env.inputs.epoch()))?;
    let mut cur = String::new();
    let now = env.inputs.now_secs();
    // Symlinks on the way are followed inside the rootfs, as Docker's
    // MkdirAll: the directories are created where the links lead.
    let host = resolve_in_root(root.root(), wd, true).map_err(StepError::Fs)?;
    let real = crate::rootfs::container_path(root.root(), &host);
    for comp in real.split('/').filter(|c| !c.is_empty()) {
        cur.push('/');
        cur.push_str(comp);
        let host = resolve_in_root(root.root(), &cur, false).map_err(StepError::Fs)?;
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
            Some(_) => {
                return Err(StepError::NotADirectory {
                    workdir: wd.to_string(),
                    path: cur,
                })
            }
            None => strata_store::EntryMeta {
                mode: 0o755,
                uid,
                gid,
                mtime: now,
                xattrs: Vec::new(),
            },
        };
        layer.add_dir(std::path::Path::new(&cur), &entry)?;
    }
    let info = layer.finish_leased(Some(lease))?;
    Ok(Some(info.to_record()))
}
