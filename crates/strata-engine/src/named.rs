//! Named build contexts (`--build-context NAME=...`): resolved once per
//! build to an image in the store or a local directory, then used wherever
//! a FROM or `COPY --from` / `RUN --mount=from=` names NAME.

use std::collections::BTreeMap;
use std::path::PathBuf;

use strata_store::{Lease, Store};

use crate::build::{BuildError, NamedContext};
use crate::events::EventSink;
use crate::resolve::ImageResolver;

/// What a named context stands for during the build.
#[derive(Debug, Clone)]
pub enum Named {
    /// An image ID in the store.
    Image(String),
    /// A directory (its contents are the "image" filesystem).
    Dir(PathBuf),
}

/// Resolves every named context: images must exist, OCI layouts are loaded
/// into the store (the image is leased for the build), directories must
/// exist.
pub(crate) fn resolve_all(
    store: &Store,
    contexts: &BTreeMap<String, NamedContext>,
    lease: &Lease,
    images: &ImageResolver<'_>,
    events: EventSink<'_>,
) -> Result<BTreeMap<String, Named>, BuildError> {
    let mut out = BTreeMap::new();
    for (name, c) in contexts {
        let err = |m: String| BuildError::Other(format!("--build-context {name}: {m}"));
        let named = match c {
            NamedContext::Dir(p) => {
                let p =
                    std::fs::canonicalize(p).map_err(|e| err(format!("{}: {e}", p.display())))?;
                if !p.is_dir() {
                    return Err(err(format!("{} is not a directory", p.display())));
                }
                Named::Dir(p)
            }
            NamedContext::Image(r) => {
                let id = images.resolve(r, events).map_err(err)?;
                Named::Image(id.to_string())
            }
            NamedContext::OciLayout(p, sel) => {
                let loaded = strata_store::transfer::load_layout_dir(store, p)
                    .map_err(|e| err(format!("loading the OCI layout {}: {e}", p.display())))?;
                let pick = loaded.iter().find(|l| match sel {
                    None => true,
                    Some(s) => {
                        l.id.to_string() == *s
                            || l.names.iter().any(|n| n.ends_with(&format!(":{s}")))
                    }
                });
                let img = pick
                    .ok_or_else(|| err(format!("no image matching {sel:?} in {}", p.display())))?;
                lease.add_image(&img.id).map_err(|e| err(e.to_string()))?;
                Named::Image(img.id.to_string())
            }
        };
        out.insert(name.to_ascii_lowercase(), named);
    }
    Ok(out)
}
