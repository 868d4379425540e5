//! Outputs: COG rasters, run.json, and the staging folder that makes a run's
//! outputs appear only when complete.

pub mod raster;
pub mod staging;

pub use staging::Staging;
