//! Mounted root filesystems for build steps: a state's layers (unpacked by
//! the snapshotter) stacked with overlay in a container dir of the store,
//! unmounted and removed when the guard drops, even on error paths.

use std::path::{Path, PathBuf};

use strata_oci::Digest;
use strata_store::{chain_ids, ContainerDir, LayerInfo, Lease, RootfsMount, Store};

use crate::cache::LayerRef;

/// An overlay rootfs over some layers, with a fresh upper dir.
pub struct MountedRootfs {
    mount: Option<RootfsMount>,
    dir: Option<ContainerDir>,
    // Dropped after the fields above are released (see `live_mounts`).
    _live: crate::live_mounts::Live<'static>,
}

#[derive(Debug, thiserror::Error)]
/// Why a root filesystem could not be mounted.
pub enum MountError {
    #[error(transparent)]
    /// The snapshotter failed.
    Store(#[from] strata_store::StoreError),
    /// The cause is in the message, so not also a `source()`.
    #[error("bad layer digest: {0}")]
    Digest(strata_oci::DigestError),
    /// The process is exiting (Ctrl-C): no new mounts.
    #[error(transparent)]
    Exiting(#[from] crate::live_mounts::Exiting),
}

impl From<strata_oci::DigestError> for MountError {
    fn from(e: strata_oci::DigestError) -> MountError {
        MountError::Digest(e)
    }
}

/// The (diff_id, blob digest) chain of some layers.
pub fn chain_of(layers: &[LayerRef]) -> Result<Vec<(Digest, Digest)>, MountError> {
    layers
        .iter()
        .map(|l| Ok((l.diff_id.clone(), l.digest.clone())))
        .collect()
}

impl MountedRootfs {
    /// Unpacks (if needed) and mounts `layers`; `extra_top` (e.g. the
    /// runtime's init layer, RUN's mount points) go above them, in order,
    /// just below the upper dir. The container is a build step's
    /// (`build-<hex>`).
    pub fn mount(
        store: &Store,
        layers: &[LayerRef],
        extra_top: &[PathBuf],
        lease: Option<&Lease>,
    ) -> Result<MountedRootfs, MountError> {
        Self::mount_as("build", store, layers, extra_top, lease)
    }

    /// [`MountedRootfs::mount`] for a container named `<kind>-<hex>`
    /// (`run` for `strata run`), which is what runc, the cgroup path and
    /// the store's containers dir show.
    pub fn mount_as(
        kind: &str,
        store: &Store,
        layers: &[LayerRef],
        extra_top: &[PathBuf],
        lease: Option<&Lease>,
    ) -> Result<MountedRootfs, MountError> {
        let chain = chain_of(layers)?;
        let mut lowers = store.snapshotter().prepare_leased(&chain, lease)?;
        let ids = chain_ids(&chain.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>());
        lowers.extend(extra_top.iter().cloned());
        let id = strata_runtime::new_container_id().replace("strata-", &format!("{kind}-"));
        let slot = crate::live_mounts::slot()?;
        let dir = store.containers().create(&id, &ids)?;
        let mount = dir.mount_rootfs(&lowers)?;
        let live = slot.register(dir.path());
        Ok(MountedRootfs {
            mount: Some(mount),
            dir: Some(dir),
            _live: live,
        })
    }

    /// The merged root filesystem.
    pub fn root(&self) -> &Path {
        self.mount.as_ref().expect("mounted").target()
    }

    /// The upper dir (what was changed).
    pub fn upper(&self) -> PathBuf {
        self.mount.as_ref().expect("mounted").upper().to_path_buf()
    }

    /// The container id of this mount.
    pub fn id(&self) -> String {
        self.dir
            .as_ref()
            .map(|d| d.id().to_string())
            .unwrap_or_default()
    }

    /// Unmounts, then moves the upper dir into the store as the built
    /// snapshot `chain_id` of `layer` (hashed from it), the layer's only
    /// copy; removes the rest. Returns the layer to record (see
    /// [`strata_store::Snapshotter::adopt_built`]).
    pub(crate) fn release_adopting(
        mut self,
        store: &Store,
        chain_id: &Digest,
        layer: &LayerInfo,
        lease: Option<&Lease>,
    ) -> Result<LayerInfo, MountError> {
        if let Some(m) = self.mount.take() {
            m.unmount()?;
        }
        let d = self.dir.take().expect("a mounted rootfs has its directory");
        let kept = store
            .snapshotter()
            .adopt_built(chain_id, layer, &d.upper(), lease)?;
        d.remove()?;
        Ok(kept)
    }

    /// Unmounts and removes the directory, reporting errors.
    pub fn release(mut self) -> Result<(), MountError> {
        if let Some(m) = self.mount.take() {
            m.unmount()?;
        }
        if let Some(d) = self.dir.take() {
            d.remove()?;
        }
        Ok(())
    }
}

impl MountedRootfs {
    /// Unmounts and moves the directory into the store's tmp for the
    /// caller to delete later (see [`strata_store::ContainerDir::remove_later`]).
    pub fn release_later(mut self) -> Result<Option<PathBuf>, MountError> {
        if let Some(m) = self.mount.take() {
            m.unmount()?;
        }
        match self.dir.take() {
            Some(d) => Ok(d.remove_later()?),
            None => Ok(None),
        }
    }
}

impl Drop for MountedRootfs {
    fn drop(&mut self) {
        drop(self.mount.take());
        if let Some(d) = self.dir.take() {
            if let Err(e) = d.remove() {
                tracing::warn!("removing a build container dir: {e}");
            }
        }
    }
}
