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
pub enum SystemCommand {
    /// Show store disk usage
    Df,
    /// Remove unused data
    Prune(PruneArgs),
    /// Verify every blob and reference; repair what can be repaired
    Check(CheckStoreArgs),
}

#[derive(clap::Args, Debug)]
pub struct PruneArgs {
    /// Also remove untagged images and the build cache
    #[arg(short, long)]
    pub all: bool,
}

#[derive(clap::Args, Debug)]
pub struct CheckStoreArgs {
    /// Repair what can be repaired (remove leftovers and corrupt blobs)
    #[arg(long)]
    pub repair: bool,
}

pub fn dispatch(g: &Global, c: SystemCommand) -> anyhow::Result<u8> {
    match c {
        SystemCommand::Df => df(g),
        SystemCommand::Prune(a) => prune(g, a),
        SystemCommand::Check(a) => check(g, a),
    }
}

/// Disk use by kind. Images: the blobs images refer to (each counted once),
/// reclaimable = those only untagged images use. Build cache: the other
/// blobs (cache layers and garbage), all reclaimable by `prune -a`.
/// Unpacked layers: the snapshot directories (recreated on demand).
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
    let snaps = store.snapshotter().list()?;
    let snap_size: u64 = snaps
        .iter()
        .map(|s| dir_size(&store.snapshotter().path(s)))
        .sum();
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
            "0".to_string(),
            human_size(snap_size),
            human_size(snap_size),
        ],
    ];
    let mut out = std::io::stdout().lock();
    table(
        &mut out,
        &["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
        &rows,
    )?;
    let total = image_size + cache_size + snap_size;
    let reclaim = image_reclaim + cache_size + snap_size;
    writeln!(
        out,
        "\nTotal: {}, reclaimable: {}",
        human_size(total),
        pct(reclaim, total)
    )?;
    Ok(0)
}

/// Bytes of regular files under `dir` (symlinks not followed).
fn dir_size(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

fn prune(g: &Global, a: PruneArgs) -> anyhow::Result<u8> {
    let store: Store = open_store(g)?;
    let r = store.prune(a.all).context("prune the store")?;
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
        "checked {} blobs ({}): {}",
        r.blobs_checked,
        human_size(r.bytes_checked),
        if r.is_clean() {
            "no problems".to_string()
        } else {
            format!("{} problems", r.problems.len())
        }
    )?;
    Ok(u8::from(r.has_corruption()))
}
