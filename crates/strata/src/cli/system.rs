//! `strata system df | prune | check`.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use strata_oci::Digest;
use strata_store::Store;

use super::images::open_store;
use super::output::{human_size, table};
use super::Global;

#[derive(clap::Subcommand, Debug)]
pub(crate) enum SystemCommand {
    /// Show store disk usage
    Df,
    /// Remove unused data
    Prune(PruneArgs),
    /// Verify every blob and reference; repair what can be repaired
    Check(CheckStoreArgs),
}

#[derive(clap::Args, Debug)]
pub(crate) struct PruneArgs {
    /// Also remove untagged images and the build cache
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

#[derive(clap::Args, Debug)]
pub(crate) struct CheckStoreArgs {
    /// Repair what can be repaired (remove leftovers and corrupt blobs)
    #[arg(long)]
    pub repair: bool,
}

pub(crate) fn dispatch(g: &Global, c: SystemCommand) -> anyhow::Result<u8> {
    match c {
        SystemCommand::Df => df(g),
        SystemCommand::Prune(a) => prune(g, a),
        SystemCommand::Check(a) => check(g, a),
    }
}

/// Disk use by kind; RECLAIMABLE is what `system prune -a` frees. Images:
/// the blobs images refer to (each counted once), reclaimable = those only
/// untagged images use. Build cache: the other blobs (cache layers and
/// garbage). Unpacked layers: the snapshot directories (recreated on
/// demand), each inode once; reclaimable = those no tagged image uses.
fn df(g: &Global) -> anyhow::Result<u8> {
    let store = open_store(g)?;
    let images = store.meta().images()?;
    let mut sizes: HashMap<Digest, u64> = HashMap::new();
    for d in store.blobs().list()? {
        let n = store.blobs().size(&d).unwrap_or(0);
        sizes.insert(d, n);
    }
    let mut tagged_refs = HashSet::new();
    let mut all_refs = HashSet::new();
    for img in &images {
        let refs = std::iter::once(img.manifest_digest.clone())
            .chain(std::iter::once(img.config_digest.clone()))
            .chain(img.layers.iter().map(|l| l.digest.clone()));
        for d in refs {
            if !img.tags.is_empty() {
                tagged_refs.insert(d.clone());
            }
            all_refs.insert(d);
        }
    }
    let sum = |set: &mut dyn Iterator<Item = &Digest>| -> u64 {
        set.map(|d| sizes.get(d).copied().unwrap_or(0)).sum()
    };
    let image_size = sum(&mut all_refs.iter());
    let image_reclaim = sum(&mut all_refs.difference(&tagged_refs));
    let other: Vec<&Digest> = sizes.keys().filter(|d| !all_refs.contains(*d)).collect();
    let cache_size = sum(&mut other.into_iter());
    // Unpacked layers: those of the images `prune -a` keeps (the tagged
    // ones) stay; the others go. One set of inodes for all of them: a hard
    // link (within a layer or across layers) is one file on disk, as `du`
    // counts it; an inode a kept layer shares is not reclaimable.
    let snaps = store.snapshotter().list()?;
    let kept: HashSet<Digest> = images
        .iter()
        .filter(|i| !i.tags.is_empty())
        .flat_map(|i| {
            let diffs: Vec<Digest> = i.layers.iter().map(|l| l.diff_id.clone()).collect();
            strata_store::chain_ids(&diffs)
        })
        .collect();
    let mut seen = HashSet::new();
    let (in_use, unused): (Vec<&Digest>, Vec<&Digest>) =
        snaps.iter().partition(|s| kept.contains(*s));
    let snap_kept: u64 = in_use
        .iter()
        .map(|s| dir_size(&store.snapshotter().path(s), &mut seen))
        .sum();
    let snap_reclaim: u64 = unused
        .iter()
        .map(|s| dir_size(&store.snapshotter().path(s), &mut seen))
        .sum();
    let snap_size = snap_kept + snap_reclaim;
    let active = images.iter().filter(|i| !i.tags.is_empty()).count();
    let pct = |part: u64, whole: u64| match (part * 100).checked_div(whole) {
        Some(p) => format!("{} ({p}%)", human_size(part)),
        None => human_size(part),
    };
    let rows = vec![
        vec![
            "Images".to_string(),
            images.len().to_string(),
            active.to_string(),
            human_size(image_size),
            pct(image_reclaim, image_size),
        ],
        vec![
            "Build Cache".to_string(),
            store.meta().cache_len()?.to_string(),
            "0".to_string(),
            human_size(cache_size),
            human_size(cache_size),
        ],
        vec![
            "Unpacked layers".to_string(),
            snaps.len().to_string(),
            in_use.len().to_string(),
            human_size(snap_size),
            pct(snap_reclaim, snap_size),
        ],
    ];
    let mut out = std::io::stdout().lock();
    table(
        &mut out,
        &["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
        &rows,
    )?;
    let total = image_size + cache_size + snap_size;
    let reclaim = image_reclaim + cache_size + snap_reclaim;
    writeln!(
        out,
        "\nTotal: {}, reclaimable: {}",
        human_size(total),
        pct(reclaim, total)
    )?;
    Ok(0)
}

/// Bytes of the files under `dir` (symlinks not followed), each inode
/// counted once across every call sharing `seen`: `du`'s accounting, in
/// bytes (a regular file's size, a symlink's target length).
pub(crate) fn dir_size(dir: &Path, seen: &mut HashSet<(u64, u64)>) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut total = 0;
    for e in rd.flatten() {
        let Ok(m) = e.metadata() else { continue };
        if m.is_dir() {
            total += dir_size(&e.path(), seen);
        } else if (m.is_file() || m.file_type().is_symlink()) && seen.insert((m.dev(), m.ino())) {
            total += m.len();
        }
    }
    total
}

/// Bytes of the whole unpacked-layer tree, each inode once.
fn snapshots_size(store: &Store) -> u64 {
    let mut seen = HashSet::new();
    store
        .snapshotter()
        .list()
        .unwrap_or_default()
        .iter()
        .map(|s| dir_size(&store.snapshotter().path(s), &mut seen))
        .sum()
}

fn prune(g: &Global, a: PruneArgs) -> anyhow::Result<u8> {
    let warning = if a.all {
        "WARNING! This will remove:\n  - all images without at least one tag\n  - all build cache\n  - all blobs and unpacked layers nothing else uses\n"
    } else {
        "WARNING! This will remove:\n  - all blobs and unpacked layers no image or build cache uses\n"
    };
    if !a.force && !super::output::confirm(warning)? {
        return Ok(0);
    }
    let store: Store = open_store(g)?;
    let snaps_before = snapshots_size(&store);
    let mut r = store.prune(a.all).context("prune the store")?;
    // What `system df` counted as reclaimable: the blobs, and the unpacked
    // layers' bytes (each inode once).
    r.bytes_freed += snaps_before.saturating_sub(snapshots_size(&store));
    let mut out = std::io::stdout().lock();
    if !r.images_removed.is_empty() {
        writeln!(out, "Deleted Images:")?;
        for id in &r.images_removed {
            writeln!(out, "deleted: {id}")?;
        }
        writeln!(out)?;
    }
    if r.cache_entries_removed > 0 {
        writeln!(
            out,
            "Deleted build cache entries: {}",
            r.cache_entries_removed
        )?;
    }
    if !r.blobs_removed.is_empty() || !r.snapshots_removed.is_empty() {
        writeln!(
            out,
            "Deleted {} blobs and {} unpacked layers",
            r.blobs_removed.len(),
            r.snapshots_removed.len()
        )?;
    }
    writeln!(out, "Total reclaimed space: {}", human_size(r.bytes_freed))?;
    Ok(0)
}

/// Exit status 1 when data is damaged (leftovers alone are not damage).
fn check(g: &Global, a: CheckStoreArgs) -> anyhow::Result<u8> {
    let store = open_store(g)?;
    // Containers first: a build killed with SIGKILL leaves its RUN running
    // (runc and the container outlive strata). They are killed and deleted
    // before the store unmounts their rootfs. Only containers whose owner
    // (pid and start time) is gone are touched.
    let stale_runc = match strata_runtime::Runc::find() {
        Ok(runc) if a.repair => runc.cleanup_stale(),
        Ok(runc) => runc.find_stale(),
        Err(_) => Ok(Vec::new()), // no runc: no container ever ran
    }
    .context("looking for containers of killed strata processes")?;
    let r = store.check(a.repair).context("check the store")?;
    let mut out = std::io::stdout().lock();
    for id in &stale_runc {
        if a.repair {
            writeln!(
                out,
                "repaired: killed and deleted container {id} (its strata is gone)"
            )?;
        } else {
            writeln!(
                out,
                "problem: container {id} outlived its strata (repair kills and deletes it)"
            )?;
        }
    }
    for p in &r.problems {
        writeln!(out, "problem: {p}")?;
    }
    for fix in &r.repaired {
        writeln!(out, "repaired: {fix}")?;
    }
    for id in &r.broken_images {
        writeln!(
            out,
            "broken image {id}: remove it (strata rmi -f {}) and load, pull or build it again",
            id.short()
        )?;
    }
    writeln!(
        out,
        "checked {} blobs ({}) and {} built layers: {}",
        r.blobs_checked,
        human_size(r.bytes_checked),
        r.built_layers_checked,
        if r.is_clean() {
            "no problems".to_string()
        } else {
            format!("{} problems", r.problems.len())
        }
    )?;
    Ok(u8::from(r.has_corruption()))
}
