//! Where an image name in a Dockerfile (`FROM NAME`, `COPY --from=NAME`,
//! `RUN --mount=from=NAME`) becomes an image in the store: found locally,
//! or pulled from its registry when missing (always, with `--pull`).
//!
//! Each name is resolved once per build: stages that name the same image
//! at the same time wait for one pull instead of racing two.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use strata_oci::{Digest, Platform, Reference};
use strata_registry::PullOptions;
use strata_store::{Lease, Store};

use crate::events::{Event, EventKind, EventSink};
use crate::images::ImageError;

/// When a build asks a registry for its base images.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PullPolicy {
    /// Pull only images missing from the store (Docker's default).
    #[default]
    Missing,
    /// Re-resolve every tag against its registry (`build --pull`).
    Always,
}

/// Why an image name could not be resolved. A registry's error is kept
/// typed (`error`) so that a caller can tell, say, an authentication
/// failure; the message names it in the middle of the advice, so it is not
/// also a `source()`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The store could not be searched.
    #[error(transparent)]
    Store(#[from] strata_store::transfer::TransferError),
    /// The image is not in the store (and is not to be pulled).
    #[error(transparent)]
    NotFound(ImageError),
    /// The name is no valid reference.
    #[error("invalid image reference {name:?}: {error}")]
    InvalidReference {
        /// The name as written.
        name: String,
        /// Why it is invalid.
        error: Box<strata_oci::ReferenceError>,
    },
    /// Pulling a missing image failed.
    #[error(
        "image {name} is not in the store and pulling {reference} failed: {error} \
         (check the name, or bring the image in with strata load or strata import)"
    )]
    PullFailed {
        /// The name as written.
        name: String,
        /// The reference pulled.
        reference: String,
        /// The registry's error.
        error: Box<strata_registry::Error>,
    },
    /// `--pull` could not refresh an image the store has.
    #[error(
        "pulling {reference} (--pull): {error}; an older copy is in the store: build without --pull to use it"
    )]
    RefreshFailed {
        /// The reference pulled.
        reference: String,
        /// The registry's error.
        error: Box<strata_registry::Error>,
    },
    /// A single-platform image for another platform than the stage's.
    #[error(
        "image {name} is for platform {have}, not {platform} (the platform of this stage): \
         give it a {platform} variant (strata pull --platform {platform} NAME, or strata import --platform \
         and strata manifest create/add), or set FROM --platform"
    )]
    WrongPlatform {
        /// The name as written.
        name: String,
        /// The image's platform.
        have: Box<Platform>,
        /// The stage's.
        platform: Box<Platform>,
    },
    /// The image could not be leased for the build.
    #[error(transparent)]
    Lease(#[from] strata_store::StoreError),
}

type Slot = Arc<OnceLock<Result<Digest, Arc<ResolveError>>>>;

/// Resolves image names for one build; see the module docs.
pub(crate) struct ImageResolver<'a> {
    store: &'a Store,
    lease: &'a Lease,
    policy: PullPolicy,
    options: PullOptions,
    slots: Mutex<HashMap<String, Slot>>,
}

impl<'a> ImageResolver<'a> {
    pub(crate) fn new(
        store: &'a Store,
        lease: &'a Lease,
        policy: PullPolicy,
        options: PullOptions,
    ) -> ImageResolver<'a> {
        ImageResolver {
            store,
            lease,
            policy,
            options,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The image ID `name` stands for in this build, for the platform the
    /// pull options name (else the host's).
    pub(crate) fn resolve(
        &self,
        name: &str,
        events: EventSink<'_>,
    ) -> Result<Digest, Arc<ResolveError>> {
        let platform = self.options.platform.clone().unwrap_or_else(Platform::host);
        self.resolve_for(name, &platform, events)
    }

    /// The image ID `name` stands for on `platform` in this build (leased
    /// until the build ends, so a concurrent prune cannot remove it): a
    /// multi-platform tag gives that platform's image, a pull picks that
    /// platform's manifest.
    pub(crate) fn resolve_for(
        &self,
        name: &str,
        platform: &Platform,
        events: EventSink<'_>,
    ) -> Result<Digest, Arc<ResolveError>> {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots
                .entry(format!("{name}\n{platform}"))
                .or_default()
                .clone()
        };
        slot.get_or_init(|| {
            let id = self.resolve_uncached(name, platform, events)?;
            self.lease.add_image(&id).map_err(ResolveError::from)?;
            Ok(id)
        })
        .clone()
    }

    fn resolve_uncached(
        &self,
        name: &str,
        platform: &Platform,
        events: EventSink<'_>,
    ) -> Result<Digest, ResolveError> {
        let local = strata_store::transfer::resolve_image_for(self.store, name, platform)?;
        let wants_pull = match (self.policy, &local) {
            (PullPolicy::Missing, found) => found.is_none(),
            // An image ID (or ID prefix) names local content: nothing to re-resolve.
            (PullPolicy::Always, Some(id)) => !names_an_id(name, id),
            (PullPolicy::Always, None) => true,
        };
        if !wants_pull {
            let id = local
                .ok_or_else(|| ResolveError::NotFound(ImageError::NotFound(name.to_string())))?;
            self.check_platform(name, &id, platform)?;
            return Ok(id);
        }
        let reference = Reference::parse(name).map_err(|error| ResolveError::InvalidReference {
            name: name.to_string(),
            error: Box::new(error),
        })?;
        let options = PullOptions {
            platform: Some(platform.clone()),
            ..self.options.clone()
        };
        match strata_registry::pull(self.store, &reference, &options) {
            Ok(pulled) => {
                events(Event::now(EventKind::ImagePulled {
                    reference: reference.to_string(),
                    image_id: pulled.id.to_string(),
                    downloaded: pulled.downloaded,
                }));
                Ok(pulled.id)
            }
            Err(error) => Err(match local {
                // `--pull` with the registry unreachable: Docker fails too,
                // but say that the local copy exists.
                Some(_) => ResolveError::RefreshFailed {
                    reference: reference.to_string(),
                    error: Box::new(error),
                },
                None => ResolveError::PullFailed {
                    name: name.to_string(),
                    reference: reference.to_string(),
                    error: Box::new(error),
                },
            }),
        }
    }
}

impl ImageResolver<'_> {
    /// A single-platform image for another OS or architecture than the
    /// stage is refused (its programs would be labelled with the wrong
    /// platform); an image named by its ID is taken as asked.
    fn check_platform(
        &self,
        name: &str,
        id: &Digest,
        platform: &Platform,
    ) -> Result<(), ResolveError> {
        if names_an_id(name, id) {
            return Ok(());
        }
        let Ok(have) = strata_store::transfer::image_platform(self.store, id) else {
            return Ok(());
        };
        if have.os == platform.os && have.architecture == platform.architecture {
            return Ok(());
        }
        Err(ResolveError::WrongPlatform {
            name: name.to_string(),
            have: Box::new(have),
            platform: Box::new(platform.clone()),
        })
    }
}

/// Whether `name` is the ID `id` or a prefix of it (not a reference).
fn names_an_id(name: &str, id: &Digest) -> bool {
    let hex = name.strip_prefix("sha256:").unwrap_or(name);
    hex.len() >= 4 && id.hex().starts_with(hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_prefix_is_not_re_resolved() {
        let id = Digest::sha256_of(b"x");
        assert!(names_an_id(&id.to_string(), &id));
        assert!(names_an_id(&id.hex()[..12], &id));
        assert!(!names_an_id("busybox:1.35", &id));
    }
}
