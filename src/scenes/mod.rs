//! From a place to its scenes: the area asked about, STAC API search,
//! ranking of the items found and the before/after pair to compare, and
//! local copies of an area's crops.

pub mod aoi_cloud;
pub mod fetch;
pub mod lonlat_area;
pub mod search;
pub mod stac;
