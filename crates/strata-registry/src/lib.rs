//! strata-registry: the OCI distribution client (resolve, pull, push, auth)
//! and the registry-backed build cache.
