//! Outputs: COG rasters, run.json, and the staging folder that makes a run's
//! outputs appear only when complete.
//!
//! - [`raster`]: the working rasters the score pass writes block by block;
//! - [`to_cog`]: a working raster to a COG, by dunewatch's writer ([`cog`],
//!   with [`cog_pipeline`] for its threads, [`cog_sample`] for the sample
//!   types' encoding, [`tiff_layout`] for the TIFF directories, [`pyramid`]
//!   for the overviews, [`tile_encode`] for predictors and codecs) or by
//!   GDAL's COG driver;
//! - [`direct_file`]: large files written past the page cache;
//! - [`staging`]: the hidden folder outputs are written into and published
//!   from.

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

pub use staging::{write_file_atomic, Staging};
