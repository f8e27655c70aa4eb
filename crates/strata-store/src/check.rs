//! `check`: verify the store. Every blob is re-hashed (streaming), every
//! built layer's tar made again from its snapshot and hashed (it has no
//! blob: see [`crate::snapshot::built`]), every reference followed (image
//! -> blobs, tag -> image, layer record -> blob), snapshots checked for
//! completeness, temp leftovers found.
//!
//! With `repair`: corrupt blobs, tampered built snapshots, leftovers,
//! incomplete snapshots and layer records without a blob are removed.
//! Images that lose a blob are reported as broken and left in place
//! (re-pull or rebuild them, or `image rm`).

use std::collections::HashSet;
use std::fmt;
use std::path::PathBuf;

use serde::Serialize;
use strata_oci::Digest;

use crate::error::Result;
use crate::fsutil::{self, FileLock};
use crate::gc::tmp_grace;
use crate::store::Store;

/// One thing wrong with the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Problem {
    /// The blob's contents hash to something else.
    CorruptBlob {
        /// The blob's name.
        digest: Digest,
        /// What its contents hash to.
        actual: Digest,
    },
    /// The blob could not be read.
    UnreadableBlob {
        /// The blob.
        digest: Digest,
        /// Why it could not be read.
        error: String,
    },
    /// An image refers to a blob that is not in the store.
    MissingBlob {
        /// The image.
        image: Digest,
        /// The missing blob.
        blob: Digest,
        /// What the blob is to the image (manifest, config, layer).
        role: String,
    },
    /// A tag points at an image record that does not exist.
    DanglingTag {
        /// The tag.
        tag: String,
        /// The image ID it points at.
        image: String,
    },
    /// A layer record names a blob that is not in the store.
    MissingLayerBlob {
        /// The layer's diff ID.
        diff_id: Digest,
        /// The missing blob.
        blob: Digest,
    },
    /// A built layer's snapshot whose files no longer give the tar it was
    /// built as (changed by hand or by a disk fault): it is never pushed,
    /// saved or used.
    TamperedSnapshot {
        /// The snapshot's chain ID.
        chain_id: Digest,
        /// The diff ID the layer was built with.
        diff_id: Digest,
        /// What its files hash to now.
        actual: Digest,
    },
    /// A snapshot directory without its `fs` (or a stray entry).
    IncompleteSnapshot {
        /// The snapshot directory or stray entry.
        path: PathBuf,
    },
    /// A temp file or dir left by a crashed writer.
    Leftover {
        /// The temp file or directory.
        path: PathBuf,
    },
    /// A container dir (maybe with its overlay rootfs still mounted) whose
    /// owner is gone, e.g. a build killed during a RUN.
    StaleContainer {
        /// The container's ID.
        id: String,
    },
    /// A store path other users could reach (image content holds setuid
    /// files: a way to root). Fixed when the store is opened.
    InsecureMode {
        /// The path.
        path: PathBuf,
        /// Its mode, as found (octal).
        found: String,
        /// The mode it must have (octal).
        wanted: String,
        /// Whether the open fixed it.
        fixed: bool,
    },
}

impl Problem {
    /// Data damage (as opposed to harmless leftovers).
    pub fn is_corruption(&self) -> bool {
        !matches!(
            self,
            Problem::Leftover { .. }
                | Problem::StaleContainer { .. }
                | Problem::InsecureMode { .. }
        )
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::CorruptBlob { digest, actual } => {
                write!(f, "blob {digest} is corrupt: its contents hash to {actual}")
            }
            Problem::UnreadableBlob { digest, error } => {
                write!(f, "blob {digest} cannot be read: {error}")
            }
            Problem::MissingBlob { image, blob, role } => {
                write!(f, "image {image} is broken: its {role} {blob} is missing")
            }
            Problem::DanglingTag { tag, image } => {
                write!(f, "tag {tag} points at missing image {image}")
            }
            Problem::MissingLayerBlob { diff_id, blob } => {
                write!(f, "layer {diff_id} names missing blob {blob}")
            }
            Problem::TamperedSnapshot {
                chain_id,
                diff_id,
                actual,
            } => write!(
                f,
                "built layer {diff_id} was changed: the files of snapshot {chain_id} now \
                 hash to {actual}"
            ),
            Problem::IncompleteSnapshot { path } => {
                write!(f, "incomplete snapshot {}", path.display())
            }
            Problem::Leftover { path } => write!(f, "leftover temp {}", path.display()),
            Problem::StaleContainer { id } => {
                write!(f, "stale container {id} (its owner is gone)")
            }
            Problem::InsecureMode {
                path,
                found,
                wanted,
                fixed,
            } => {
                write!(
                    f,
                    "{} had mode {found}: other users could reach image content (setuid files) \
                     through it; {}",
                    path.display(),
                    if *fixed {
                        format!("now {wanted}")
                    } else {
                        format!("must be {wanted} (strata system check --repair)")
                    }
                )
            }
        }
    }
}

/// The result of `check`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// Blobs hashed.
    pub blobs_checked: usize,
    /// Bytes hashed.
    pub bytes_checked: u64,
    /// Built layers whose tar was made again from their snapshot and hashed.
    pub built_layers_checked: usize,
    /// What is wrong.
    pub problems: Vec<Problem>,
    /// What repair did, one line each.
    pub repaired: Vec<String>,
    /// Images that refer to a missing or corrupt blob (left in place).
    pub broken_images: Vec<Digest>,
}

impl CheckReport {
    /// True when nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
    /// True when data is damaged (the CLI exits non-zero).
    pub fn has_corruption(&self) -> bool {
        self.problems.iter().any(Problem::is_corruption)
    }
}

impl Store {
    /// Verifies the store; with `repair`, fixes what can be fixed (see the
    /// module docs). Read-only checks run alongside other writers; repair
    /// holds the exclusive GC lock.
    pub fn check(&self, repair: bool) -> Result<CheckReport> {
        let path = self.gc_lock_path();
        let _lock = if repair {
            FileLock::exclusive(&path)?
        } else {
            FileLock::shared(&path)?
        };
        let mut r = CheckReport::default();
        // Fixed by `open` already (reported here once), then looked at again.
        let fixes = self.mode_fixes().iter().map(|m| (m.clone(), true));
        let now = crate::perms::scan(self.root(), repair)?;
        for (m, fixed) in fixes.chain(now.into_iter().map(|m| (m, repair))) {
            if fixed {
                r.repaired.push(format!(
                    "restricted {} from {:04o} to {:04o}",
                    m.path.display(),
                    m.found,
                    m.wanted | (m.found & 0o7700)
                ));
            }
            r.problems.push(Problem::InsecureMode {
                path: m.path,
                found: format!("{:04o}", m.found),
                wanted: format!("{:04o}", m.wanted | (m.found & 0o7700)),
                fixed,
            });
        }
        let mut bad_blobs = HashSet::new();
        for d in self.blobs().list()? {
            match self.blobs().rehash(&d) {
                Ok((actual, n)) => {
                    r.blobs_checked += 1;
                    r.bytes_checked += n;
                    if actual != d {
                        r.problems.push(Problem::CorruptBlob {
                            digest: d.clone(),
                            actual,
                        });
                        bad_blobs.insert(d);
                    }
                }
                Err(e) if e.is_not_found() => {} // removed meanwhile
                Err(e) => {
                    r.problems.push(Problem::UnreadableBlob {
                        digest: d.clone(),
                        error: e.to_string(),
                    });
                    bad_blobs.insert(d);
                }
            }
        }
        if repair {
            for d in &bad_blobs {
                self.blobs().remove(d)?;
                r.repaired.push(format!("removed corrupt blob {d}"));
            }
        }
        let bad_built = self.check_built_layers(repair, &mut r)?;
        let present = |d: &Digest| {
            !bad_blobs.contains(d) && !bad_built.contains(d) && self.snapshotter().has_layer(d)
        };
        let mut broken = HashSet::new();
        for img in self.meta().images()? {
            let mut refs = vec![
                ("manifest", img.manifest_digest.clone()),
                ("config", img.config_digest.clone()),
            ];
            refs.extend(img.layers.iter().map(|l| ("layer", l.digest.clone())));
            for (role, blob) in refs {
                if !present(&blob) {
                    r.problems.push(Problem::MissingBlob {
                        image: img.id.clone(),
                        blob,
                        role: role.to_string(),
                    });
                    broken.insert(img.id.clone());
                }
            }
        }
        r.broken_images = broken.into_iter().collect();
        r.broken_images.sort();
        let dangling: Vec<(String, String)> = self.meta().read("check tags", |tx| {
            tx.prepare(
                "SELECT name, image_id FROM tags WHERE image_id NOT IN (SELECT id FROM images)",
            )?
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect()
        })?;
        for (tag, image) in dangling {
            r.problems.push(Problem::DanglingTag {
                tag: tag.clone(),
                image,
            });
            if repair {
                self.meta().untag(&tag)?;
                r.repaired.push(format!("removed dangling tag {tag}"));
            }
        }
        for l in self.meta().layers()? {
            if !present(&l.digest) {
                r.problems.push(Problem::MissingLayerBlob {
                    diff_id: l.diff_id.clone(),
                    blob: l.digest.clone(),
                });
                if repair {
                    self.meta().write("forget layer", |tx| {
                        tx.execute(
                            "DELETE FROM layers WHERE diff_id = ?1 AND media_type = ?2",
                            [l.diff_id.to_string(), l.media_type.clone()],
                        )
                    })?;
                    r.repaired
                        .push(format!("forgot layer record {} -> {}", l.diff_id, l.digest));
                }
            }
        }
        for p in self.snapshotter().strays()? {
            r.problems
                .push(Problem::IncompleteSnapshot { path: p.clone() });
            if repair {
                fsutil::remove_any(&p)?;
                r.repaired
                    .push(format!("removed incomplete snapshot {}", p.display()));
            }
        }
        let leftovers = if repair {
            self.clean_tmp(tmp_grace())?
        } else {
            self.find_leftovers(tmp_grace())?
        };
        for p in leftovers {
            if repair {
                r.repaired.push(format!("removed leftover {}", p.display()));
            }
            r.problems.push(Problem::Leftover { path: p });
        }
        // Container dirs of killed processes: their overlay stays mounted
        // until someone unmounts it (prune does too).
        let stale = if repair {
            self.containers().cleanup_stale(&mut Vec::new())?
        } else {
            self.containers().stale()?
        };
        for id in stale {
            if repair {
                r.repaired.push(format!("removed stale container {id}"));
            }
            r.problems.push(Problem::StaleContainer { id });
        }
        Ok(r)
    }

    /// Makes each built layer's tar again and hashes it (see
    /// [`Problem::TamperedSnapshot`]); returns the diff IDs found changed.
    fn check_built_layers(&self, repair: bool, r: &mut CheckReport) -> Result<HashSet<Digest>> {
        let mut bad = HashSet::new();
        for (chain_id, diff_id) in self.snapshotter().built_snapshots()? {
            let actual = match self.snapshotter().digest_built(&chain_id) {
                Ok(actual) => actual,
                Err(e) => {
                    r.problems.push(Problem::IncompleteSnapshot {
                        path: self.snapshotter().path(&chain_id),
                    });
                    tracing::warn!("built snapshot {chain_id}: {e}");
                    bad.insert(diff_id);
                    continue;
                }
            };
            r.built_layers_checked += 1;
            if actual != diff_id {
                r.problems.push(Problem::TamperedSnapshot {
                    chain_id: chain_id.clone(),
                    diff_id: diff_id.clone(),
                    actual,
                });
                if repair {
                    self.snapshotter().remove(&chain_id)?;
                    r.repaired.push(format!(
                        "removed changed snapshot {chain_id} of layer {diff_id}"
                    ));
                }
                bad.insert(diff_id);
            }
        }
        if repair {
            self.snapshotter().reindex()?;
        }
        Ok(bad)
    }

    fn find_leftovers(&self, grace: std::time::Duration) -> Result<Vec<PathBuf>> {
        let dir = self.tmp_dir();
        let mut out = Vec::new();
        for ent in std::fs::read_dir(&dir).map_err(|e| crate::error::StoreError::Io {
            op: "list temp dir",
            path: dir.clone(),
            cause: e,
        })? {
            let p = ent
                .map_err(|e| crate::error::StoreError::Io {
                    op: "list temp dir",
                    path: dir.clone(),
                    cause: e,
                })?
                .path();
            if crate::gc::is_leftover(&p, grace)? {
                out.push(p);
            }
        }
        Ok(out)
    }
}
