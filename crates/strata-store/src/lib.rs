//! strata-store: the local content-addressed store. Blobs by digest, the
//! SQLite metadata db (images, tags, cache, references), locks, garbage
//! collection, the snapshotter (unpacked layers, overlay mounts) and the
//! differ (layer tar <-> directory, with whiteouts).
//!
//! It never knows about Dockerfiles and never writes outside its root.
