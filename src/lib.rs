//! dunewatch: finds new structures in before/after Sentinel-2 scenes.
//!
//! The pipeline's stages each have a module:
//! [`read`] (scenes in any form) → [`align`] (one grid, masks) →
//! [`detect`] (streamed block pipeline: statistics, score, threshold) →
//! [`export`] (COG rasters, run.json) → [`sites`] (ranked sites and their
//! files); [`batch`] runs many pairs.

pub mod align;
pub mod batch;
pub mod cleanup;
pub mod detect;
pub mod error;
pub mod eval;
pub mod export;
pub mod huge_pages;
pub mod per_thread;
pub mod progress;
pub mod read;
pub mod register;
pub mod run;
pub mod scenes;
pub mod sites;
pub mod train;
pub mod union_find;

pub use error::{Error, Result};

/// Tool version recorded in every run.json.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
