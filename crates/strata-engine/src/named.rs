//! Named build contexts (`--build-context NAME=...`): resolved once per
//! build to an image in the store or a local directory, then used wherever
//! a FROM or `COPY --from` / `RUN --mount=from=` names NAME.

use std::path::PathBuf;
use std::sync::Arc;

use strata_store::{Lease, Store};

use crate::events::EventSink;
use crate::request::NamedContext;
use crate::resolve::{ImageResolver, ResolveError};

/// Why a named context could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum NamedContextError {
    /// Its directory could not be found.
    #[error("{}", path.display())]
    Dir {
        /// The directory given.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It names something other than a directory.
    #[error("{} is not a directory", .0.display())]
    NotADirectory(PathBuf),
    /// Its image could not be found or pulled.
    #[error(transparent)]
    Image(#[from] Arc<ResolveError>),
    /// Its OCI layout could not be loaded.
    #[error("loading the OCI layout {}", path.display())]
    Layout {
        /// The layout directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<strata_store::transfer::TransferError>,
    },
    /// No image of the layout matches the selector.
    #[error("no image matching {selector:?} in {}", path.display())]
    NoMatch {
        /// The tag or digest asked for.
        selector: Option<String>,
        /// The layout directory.
        path: PathBuf,
    },
    /// The image could not be leased for the build.
    #[error(transparent)]
    Store(#[from] strata_store::StoreError),
}

/// What a named context stands for during the build.
#[derive(Debug, Clone)]
pub(crate) enum Named {
    /// An image ID in the store.
    Image(String),
    /// A directory (its contents are the "image" filesystem).
    Dir(PathBuf),
}

/// Resolves one named context: an image must exist (or be pulled), an
/// OCI layout is loaded into the store (the image is leased for the
/// build), a directory must exist.
pub(crate) fn resolve(
    store: &Store,
    c: &NamedContext,
    lease: &Lease,
    images: &ImageResolver<'_>,
    events: EventSink<'_>,
) -> Result<Named, NamedContextError> {
    Ok(match c {
        NamedContext::Dir(p) => {
            let p = std::fs::canonicalize(p).map_err(|source| NamedContextError::Dir {
                path: p.clone(),
                source,
            })?;
            if !p.is_dir() {
                return Err(NamedContextError::NotADirectory(p));
            }
            Named::Dir(p)
        }
        NamedContext::Image(r) => {
            let id = images.resolve(r, events)?;
            Named::Image(id.to_string())
        }
        NamedContext::OciLayout(p, sel) => {
            let loaded = strata_store::transfer::load_layout_dir(store, p).map_err(|source| {
                NamedContextError::Layout {
                    path: p.clone(),
                    source: Box::new(source),
                }
            })?;
            let pick = loaded.iter().find(|l| match sel {
                None => true,
                Some(s) => {
                    l.id.to_string() == *s || l.names.iter().any(|n| n.ends_with(&format!(":{s}")))
                }
            });
            let img = pick.ok_or_else(|| NamedContextError::NoMatch {
                selector: sel.clone(),
                path: p.clone(),
            })?;
            lease.add_image(&img.id)?;
            Named::Image(img.id.to_string())
        }
    })
}
