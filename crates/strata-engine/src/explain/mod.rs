//! Explaining images: where the bytes of an image come from (layers, the
//! Dockerfile steps that made them, the stages of the build), what is
//! wasted (files a later layer deletes or overwrites), and what a program
//! in an image needs to run (its ELF interpreter and libraries), for
//! `strata image explain` and `strata check --suggest-multistage`.
//!
//! Layers are read as streams, one entry at a time; nothing here holds a
//! whole layer in memory.

pub mod analyze;
pub mod needs;
pub mod record;

pub use analyze::{explain_image, summary, Explanation, Summary};
pub use record::BuildRecord;
