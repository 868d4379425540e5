//! Outputs: COG rasters, run.json, and the staging folder that makes a run's
//! outputs appear only when complete.

pub mod cog;
pub mod direct_file;
pub mod raster;
pub mod staging;
pub mod tile_encode;

pub use staging::{write_file_atomic, Staging};
