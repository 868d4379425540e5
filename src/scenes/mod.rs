//! From a place to its scenes: areas of interest (files, points, preset
//! places and regions), the MGRS/UTM grid and the Sentinel-2 tiles that
//! cover an area.

pub mod area;
pub mod mgrs;
pub mod places;
pub mod tiles;
