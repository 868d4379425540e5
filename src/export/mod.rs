//! Outputs: COG rasters, run.json, and the staging folder that makes a run's
//! outputs appear only when complete.

pub mod cog;
pub mod cog_pipeline;
pub mod cog_sample;
pub mod direct_file;
pub mod pyramid;
pub mod qgis;
pub mod raster;
pub mod staging;
pub mod tiff_layout;
pub mod tile_encode;
pub mod to_cog;

pub use staging::Staging;
