//! strata-runtime: runs one process in a rootfs through an OCI runtime spec
//! handed to `runc`.
//!
//! It gets a rootfs path and a process description; it never knows about
//! images or stores.
