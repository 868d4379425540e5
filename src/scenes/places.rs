//! Preset watch regions and named places shipped in the binary.
//!
//! Why: analysts name places ("Kufra", "Maaten al-Sarra"), not polygons.
//! The presets are GeoJSON files in `presets/` (built once by
//! `scripts/make_places.py` from the `airportsdata` package's airfields,
//! MIT), embedded with `include_str!`. Each feature has `source` and
//! `licence` properties; a region is a Polygon feature with `kind` "region",
//! places are Point features with a `name`, an optional `icao` code and
//! `aliases` (names public reporting uses).

use super::area::{polygons_of, Area, Origin, Polygon};
use serde_json::Value;
use std::sync::OnceLock;

/// The preset files, embedded.
const PRESETS: &[(&str, &str)] = &[(
    "southern-libya.geojson",
    include_str!("../../presets/southern-libya.geojson"),
)];

#[derive(Debug, Clone)]
pub struct Region {
    pub name: String,
    pub title: String,
    pub polygons: Vec<Polygon>,
    pub source: String,
    pub licence: String,
    /// The preset file it came from.
    pub file: &'static str,
}

#[derive(Debug, Clone)]
pub struct Place {
    pub name: String,
    pub kind: String,
    pub icao: Option<String>,
    pub aliases: Vec<String>,
    pub lat: f64,
    pub lon: f64,
    pub source: String,
    pub licence: String,
    /// The region of the same preset file.
    pub region: Option<String>,
}

struct Presets {
    regions: Vec<Region>,
    places: Vec<Place>,
}

fn presets() -> &'static Presets {
    static P: OnceLock<Presets> = OnceLock::new();
    P.get_or_init(|| {
        let mut regions = Vec::new();
        let mut places = Vec::new();
        for (file, text) in PRESETS {
            // The files are ours and tested: a broken one is a build defect.
            let v: Value = serde_json::from_str(text).expect("preset GeoJSON");
            let first_region = regions.len();
            let start = places.len();
            for f in v["features"].as_array().expect("features") {
                let p = &f["properties"];
                let s = |k: &str| p[k].as_str().unwrap_or("").to_string();
                if s("kind") == "region" {
                    regions.push(Region {
                        name: s("name"),
                        title: s("title"),
                        polygons: polygons_of(&f["geometry"]).expect("region polygon"),
                        source: s("source"),
                        licence: s("licence"),
                        file,
                    });
                } else {
                    let c = &f["geometry"]["coordinates"];
                    places.push(Place {
                        name: s("name"),
                        kind: s("kind"),
                        icao: p["icao"].as_str().map(str::to_string),
                        aliases: p["aliases"]
                            .as_array()
                            .map(|a| {
                                a.iter()
                                    .filter_map(|x| x.as_str().map(str::to_string))
                                    .collect()
                            })
                            .unwrap_or_default(),
                        lon: c[0].as_f64().expect("lon"),
                        lat: c[1].as_f64().expect("lat"),
                        source: s("source"),
                        licence: s("licence"),
                        region: None,
                    });
                }
            }
            let region = regions.get(first_region).map(|r: &Region| r.name.clone());
            for p in &mut places[start..] {
                p.region = region.clone();
            }
        }
        Presets { regions, places }
    })
}

pub fn regions() -> &'static [Region] {
    &presets().regions
}

pub fn places() -> &'static [Place] {
    &presets().places
}

/// Lower case, letters and digits only: "Ma'tan as-Sarra" -> "matanassarra".
fn key(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

pub fn find_region(name: &str) -> Option<&'static Region> {
    let k = key(name);
    regions().iter().find(|r| key(&r.name) == k)
}

/// A place by name, alias or ICAO code; also by its name without a trailing
/// "Airport" ("Sabha" finds "Sabha Airport").
pub fn find_place(name: &str) -> Option<&'static Place> {
    let k = key(name);
    if k.is_empty() {
        return None;
    }
    places().iter().find(|p| {
        key(&p.name) == k
            || key(p.name.trim_end_matches(" Airport")) == k
            || p.icao.as_deref().is_some_and(|c| key(c) == k)
            || p.aliases.iter().any(|a| key(a) == k)
    })
}

impl Region {
    pub fn area(&self) -> Area {
        Area {
            origin: Origin::Region(self.name.clone()),
            polygons: self.polygons.clone(),
        }
    }

    /// The region's places (its preset file's points).
    pub fn places(&self) -> Vec<&'static Place> {
        places()
            .iter()
            .filter(|p| p.region.as_deref() == Some(self.name.as_str()))
            .collect()
    }
}

/// The preset region containing (lon, lat), if any.
pub fn region_at(lon: f64, lat: f64) -> Option<&'static Region> {
    regions().iter().find(|r| r.area().contains(lon, lat))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_carry_source_and_licence() {
        assert!(!regions().is_empty());
        for r in regions() {
            assert!(!r.source.is_empty() && !r.licence.is_empty(), "{}", r.name);
        }
        assert!(places().len() >= 10);
        for p in places() {
            assert!(!p.source.is_empty() && !p.licence.is_empty(), "{}", p.name);
            let r = find_region(p.region.as_deref().unwrap()).unwrap();
            assert!(
                r.area().contains(p.lon, p.lat),
                "{} outside its region",
                p.name
            );
        }
    }

    #[test]
    fn finds_the_places_public_reporting_names() {
        // Kufra airport: airportsdata HLKF, 24.1787N 23.314E.
        let k = find_place("Kufra").unwrap();
        assert_eq!(k.icao.as_deref(), Some("HLKF"));
        assert!((k.lat - 24.1787).abs() < 1e-6 && (k.lon - 23.314).abs() < 1e-6);
        // Maaten al-Sarra: airportsdata HL56 "Matan al-Sarra Air Base".
        let m = find_place("maaten al sarra").unwrap();
        assert_eq!(m.icao.as_deref(), Some("HL56"));
        assert!((m.lat - 21.6877).abs() < 1e-4 && (m.lon - 21.8309).abs() < 1e-4);
        assert_eq!(find_place("Sabha").unwrap().icao.as_deref(), Some("HLLS"));
        assert!(find_place("Paris").is_none());
        assert_eq!(
            find_region("Southern Libya").unwrap().name,
            "southern-libya"
        );
        assert_eq!(region_at(23.314, 24.1787).unwrap().name, "southern-libya");
        assert!(
            region_at(54.37, 24.45).is_none(),
            "Abu Dhabi is not in a region"
        );
        let w = find_region("southern-libya").unwrap().places();
        assert!(w.iter().any(|p| p.name == "Kufra Airport"));
    }
}
