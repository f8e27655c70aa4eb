//! Overlay rootfs mounts: read-only snapshot layers + a writable upper dir.
//!
//! Mount options: `index=off,redirect_dir=off,metacopy=off`, so that the
//! upper dir is a self-contained diff (no redirects or metadata-only
//! copy-ups that the differ would have to chase into lower layers).
//!
//! Plus `volatile` (Linux 5.10+; dropped when the kernel refuses it): without
//! it, unmounting an overlay syncs the whole upper filesystem (`ovl_sync_fs`
//! → `sync_filesystem`), i.e. every dirty page of everyone on that disk,
//! which cost 20+ ms per `strata run` on a busy host and a writeback of the
//! whole upper dir after a big RUN. Nothing relies on that sync: a `run`
//! container's upper dir is thrown away, a RUN's layer blob is fsynced by
//! the blob store, and its adopted snapshot is a cache like an unpacked one
//! (whose files are not fsynced either).
//!
//! overlay's classic `mount(2)` takes all options in one page (4096 bytes);
//! when the lowerdir list does not fit, the new mount API is used with one
//! `lowerdir+` per layer (Linux 6.8+), and on older kernels a clear error
//! says so.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::mount as rm;

use crate::error::{Result, StoreError};

const OPTIONS: &str = "index=off,redirect_dir=off,metacopy=off";
/// Inside a user namespace (rootless) the kernel refuses `redirect_dir=off`
/// and `trusted.*` xattrs: `userxattr` (overlay metadata in `user.overlay.*`)
/// and `redirect_dir=nofollow` (redirects neither created nor followed, so
/// the upper dir stays self-contained all the same).
const USERNS_OPTIONS: &str = "userxattr,index=off,redirect_dir=nofollow,metacopy=off";

/// True when this process runs in a user namespace other than the initial
/// one (its uid map is not the identity over all ids).
pub fn in_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|m| is_userns_map(&m))
}

/// Whether a `uid_map`'s text belongs to a namespace other than the
/// initial one (whose map is the identity over all ids).
pub(crate) fn is_userns_map(map: &str) -> bool {
    map.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"]
}

fn options() -> &'static str {
    if in_user_namespace() {
        USERNS_OPTIONS
    } else {
        OPTIONS
    }
}

/// See the module comment; appended to [`options`] when the kernel has it.
const VOLATILE: &str = "volatile";
const MAX_MOUNT_DATA: usize = 4000;

/// A mounted overlay; lazily unmounted on drop.
#[derive(Debug)]
pub struct RootfsMount {
    target: PathBuf,
    upper: PathBuf,
    mounted: bool,
}

fn check_path(p: &Path) -> Result<()> {
    let b = p.as_os_str().as_bytes();
    if b.iter().any(|&c| c == b',' || c == b':' || c == 0) {
        return Err(StoreError::Invalid(format!(
            "overlay cannot use path {} (contains ',' or ':')",
            p.display()
        )));
    }
    Ok(())
}

impl RootfsMount {
    /// Mounts overlay at `dir/merged` with `lowers` (base first, as
    /// [`crate::Snapshotter::prepare`] returns them), upper `dir/upper` and
    /// work `dir/work` (created if missing). No lowers (a `scratch` image)
    /// gives an upper-only rootfs over the empty dir `dir/empty`.
    pub fn mount(lowers: &[PathBuf], dir: &Path) -> Result<RootfsMount> {
        let upper = dir.join("upper");
        let work = dir.join("work");
        let target = dir.join("merged");
        let empty = dir.join("empty");
        for d in [&upper, &work, &target] {
            crate::fsutil::create_dir_all(d)?;
        }
        let mut lower_list: Vec<PathBuf> = lowers.iter().rev().cloned().collect();
        if lower_list.is_empty() {
            crate::fsutil::create_dir_all(&empty)?;
            lower_list.push(empty);
        }
        for p in lower_list.iter().chain([&upper, &work]) {
            check_path(p)?;
        }
        let joined = lower_list
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":");
        let data = format!(
            "lowerdir={joined},upperdir={},workdir={},{}",
            upper.display(),
            work.display(),
            options()
        );
        if data.len() + 1 + VOLATILE.len() <= MAX_MOUNT_DATA {
            let mount = |data: String| {
                let cdata = CString::new(data).expect("paths checked for NUL");
                rm::mount(
                    "overlay",
                    &target,
                    "overlay",
                    rm::MountFlags::empty(),
                    cdata.as_c_str(),
                )
            };
            let r = match mount(format!("{data},{VOLATILE}")) {
                // A kernel before 5.10 does not know `volatile`.
                Err(rustix::io::Errno::INVAL) => mount(data),
                r => r,
            };
            r.map_err(|e| StoreError::Mount {
                target: target.clone(),
                why: format!("mount overlay ({} layers): {e}", lower_list.len()),
            })?;
        } else {
            mount_many(&lower_list, &upper, &work, &target)?;
        }
        Ok(RootfsMount {
            target,
            upper,
            mounted: true,
        })
    }

    /// The merged rootfs.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// The upper dir: what the container changed (input of the differ).
    pub fn upper(&self) -> &Path {
        &self.upper
    }

    /// Unmounts now (lazily), reporting errors.
    pub fn unmount(mut self) -> Result<()> {
        self.mounted = false;
        unmount(&self.target)
    }
}

/// Lazy unmount; "not mounted" is fine.
pub(crate) fn unmount(target: &Path) -> Result<()> {
    match rm::unmount(target, rm::UnmountFlags::DETACH) {
        Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(StoreError::Mount {
            target: target.to_path_buf(),
            why: format!("unmount: {e}"),
        }),
    }
}

impl Drop for RootfsMount {
    fn drop(&mut self) {
        if self.mounted {
            if let Err(e) = unmount(&self.target) {
                tracing::warn!("{e}");
            }
        }
    }
}

/// Many layers: the new mount API with one `lowerdir+` per layer.
fn mount_many(lowers: &[PathBuf], upper: &Path, work: &Path, target: &Path) -> Result<()> {
    let err = |step: &str, e: rustix::io::Errno| StoreError::Mount {
        target: target.to_path_buf(),
        why: format!(
            "{} layers exceed overlay's one-page option limit, and the fallback \
             (fsconfig lowerdir+, Linux 6.8+) failed at {step}: {e}",
            lowers.len()
        ),
    };
    let fs =
        rm::fsopen("overlay", rm::FsOpenFlags::FSOPEN_CLOEXEC).map_err(|e| err("fsopen", e))?;
    for l in lowers {
        rm::fsconfig_set_string(&fs, "lowerdir+", l).map_err(|e| err("lowerdir+", e))?;
    }
    rm::fsconfig_set_string(&fs, "upperdir", upper).map_err(|e| err("upperdir", e))?;
    rm::fsconfig_set_string(&fs, "workdir", work).map_err(|e| err("workdir", e))?;
    // This API needs Linux 6.8, which has `volatile`.
    for opt in options().split(',').chain([VOLATILE]) {
        match opt.split_once('=') {
            Some((k, v)) => rm::fsconfig_set_string(&fs, k, v).map_err(|e| err(k, e))?,
            None => rm::fsconfig_set_flag(&fs, opt).map_err(|e| err(opt, e))?,
        }
    }
    rm::fsconfig_create(&fs).map_err(|e| err("create", e))?;
    let mnt = rm::fsmount(
        &fs,
        rm::FsMountFlags::FSMOUNT_CLOEXEC,
        rm::MountAttrFlags::empty(),
    )
    .map_err(|e| err("fsmount", e))?;
    rm::move_mount(
        &mnt,
        "",
        rustix::fs::CWD,
        target,
        rm::MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(|e| err("move_mount", e))
}
