//! From a place to its scenes: areas of interest (files, points, preset
//! places and regions), the MGRS/UTM grid and the Sentinel-2 tiles that
//! cover an area; STAC API search, ranking of the items found and the
//! before/after pair to compare; local copies of an area's crops.

pub mod aoi_cloud;
pub mod area;
pub mod fetch;
pub mod mgrs;
pub mod places;
pub mod resolve;
pub mod search;
pub mod stac;
pub mod tiles;
