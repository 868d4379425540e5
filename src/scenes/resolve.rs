//! What the user typed as an area (`--aoi`, `dunewatch tiles`): a vector
//! file, `LAT,LON`, a preset region or a preset place, resolved to an
//! [`Area`]. Apart from `area` so that the presets (which are areas) and the
//! area type do not import each other.

use super::area::{parse_lat_lon, Area, Origin};
use super::places;
use crate::error::{Error, Result};
use std::path::Path;

/// Whether `spec` names a preset place or region, or is a `LAT,LON` point
/// (rather than a file).
pub fn is_preset_or_point(spec: &str) -> bool {
    parse_lat_lon(spec).is_some()
        || places::find_region(spec).is_some()
        || places::find_place(spec).is_some()
}

impl Area {
    /// Resolves what the user typed: an existing vector file, `LAT,LON`, a
    /// preset region name, or a preset place name (a box of half-side
    /// `buffer_km` around it). Names match case-, space- and
    /// punctuation-insensitively, and places also by ICAO code or alias.
    pub fn resolve(spec: &str, buffer_km: f64) -> Result<Area> {
        let path = Path::new(spec);
        if path.is_file() {
            return Area::from_file(path);
        }
        if let Some(p) = parse_lat_lon(spec) {
            let (lat, lon) = p?;
            return Area::around_point(lat, lon, buffer_km);
        }
        if let Some(r) = places::find_region(spec) {
            return Ok(r.area());
        }
        if let Some(p) = places::find_place(spec) {
            let mut a = Area::around_point(p.lat, p.lon, buffer_km)?;
            a.origin = Origin::Place {
                name: p.name.clone(),
                lat: p.lat,
                lon: p.lon,
                buffer_km,
            };
            return Ok(a);
        }
        if spec.contains('/') || spec.contains('.') {
            return Err(Error::input(spec, "area of interest not found"));
        }
        Err(Error::invalid(format!(
            "{spec}: not a file, a LAT,LON point, a region ({}) or a preset place \
             (`dunewatch places` lists them)",
            places::regions()
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }
}
