//! Sentinel-2 tiles: their footprints, and the tiles that cover an area.
//!
//! The Sentinel-2 tiling grid is the MGRS grid: a tile is named after an
//! MGRS 100 km square (zone, band, column and row letters) and is a 109.8 km
//! square in that zone's UTM frame. Its upper-left corner is the square's
//! north-west corner moved outward onto the 60 m grid (the coarsest band's
//! pixels): ULX = floor(E_west / 60) * 60, ULY = ceil(N_north / 60) * 60,
//! northings with the hemisphere's false northing. The products' own
//! metadata show it: T34UCF has ULX 300000, ULY 6100020 (MTD_TL.xml
//! Geoposition; square C = 300 km, row F tops out at 6100 km); T31UDQ starts
//! at 399960 (= floor(400000 / 60) * 60). So tiles overlap their neighbours
//! by 9.8 km, neighbouring zones' tiles both cover the strip along a zone
//! edge, and a square that straddles a latitude-band edge is a tile under
//! each band letter: all of them are listed.
//!
//! A square is a tile of (zone, band) when some of it lies in that zone
//! (Norway/Svalbard exceptions included) and band; tested on a 2 km lattice,
//! so slivers thinner than 2 km are not counted.
//!
//! Coverage is computed in each tile's UTM frame: the area's edges
//! (densified to 0.02 degrees) projected, clipped to the footprint
//! (Sutherland-Hodgman), areas by the shoelace formula.

use super::area::{metres_per_degree, Area, Polygon, Ring};
use super::mgrs::{self, FALSE_NORTHING_SOUTH};
use crate::error::{Error, Result};
use serde::Serialize;

/// Side of a tile, metres.
pub const TILE_SIZE_M: f64 = 109_800.0;
/// The grid tile corners are snapped to, metres (60 m bands).
pub const SNAP_M: f64 = 60.0;
const SQUARE_M: f64 = 100_000.0;

/// One Sentinel-2 tile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tile {
    /// e.g. "34RGM" (products write it "T34RGM").
    pub id: String,
    pub zone: u8,
    pub north: bool,
    /// Upper-left corner in the tile's UTM frame (EPSG [`Tile::epsg`]).
    pub ulx: f64,
    pub uly: f64,
}

/// A tile covering (part of) an area.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cover {
    pub tile: Tile,
    pub epsg: u32,
    /// Share of the area inside the footprint, 0..1 (1 for a point inside).
    pub share: f64,
}

impl Tile {
    /// The tile of a 100 km square: `col` 1..=8 (west edge / 100 km), `row`
    /// the south edge / 100 km of northing without false northing (negative
    /// in the south).
    fn of_square(zone: u8, band: u8, col: i64, row: i64) -> Option<Tile> {
        let north = row >= 0;
        let fnorth = if north { 0.0 } else { FALSE_NORTHING_SOUTH };
        let hem_row = if north { row } else { row + 100 };
        let c = mgrs::column_letter(zone, col)?;
        let r = mgrs::row_letter(zone, hem_row);
        let west = col as f64 * SQUARE_M;
        let top = (row + 1) as f64 * SQUARE_M + fnorth;
        Some(Tile {
            id: format!("{zone:02}{}{}{}", band as char, c as char, r as char),
            zone,
            north,
            ulx: (west / SNAP_M).floor() * SNAP_M,
            uly: (top / SNAP_M).ceil() * SNAP_M,
        })
    }

    /// Parses "34RGM" or "T34RGM" and places the square in its band.
    pub fn parse(id: &str) -> Result<Tile> {
        let bad = |why: &str| Error::invalid(format!("{id}: not a Sentinel-2 tile id ({why})"));
        let s = id
            .trim()
            .trim_start_matches(['T', 't'])
            .to_ascii_uppercase();
        let b = s.as_bytes();
        if b.len() != 5 || !b[..2].iter().all(u8::is_ascii_digit) {
            return Err(bad("expected e.g. 34RGM"));
        }
        let zone: u8 = s[..2].parse().map_err(|_| bad("zone"))?;
        if !(1..=60).contains(&zone) {
            return Err(bad("zone 1..60"));
        }
        let (lo, hi) = mgrs::band_range(b[2]).ok_or_else(|| bad("band C..X"))?;
        let col = mgrs::column_index(zone, b[3]).ok_or_else(|| bad("column letter"))?;
        let r20 = mgrs::row_index_mod20(zone, b[4]).ok_or_else(|| bad("row letter"))?;
        // The band's lowest northing (the parallel bows poleward away from
        // the central meridian in the north, equatorward in the south).
        let cm = mgrs::central_meridian(zone);
        let nmin = [cm - 3.0, cm, cm + 3.0]
            .iter()
            .map(|&l| mgrs::forward(zone, lo, l).1)
            .fold(f64::INFINITY, f64::min);
        let nmax = [cm - 3.0, cm, cm + 3.0]
            .iter()
            .map(|&l| mgrs::forward(zone, hi, l).1)
            .fold(f64::NEG_INFINITY, f64::max);
        // Rows repeat every 20 squares (2000 km); bands are under 1400 km tall.
        let mut row = r20 + 20 * ((nmin / SQUARE_M).floor() as i64 - r20).div_euclid(20);
        while ((row + 1) as f64) * SQUARE_M <= nmin {
            row += 20;
        }
        if (row as f64) * SQUARE_M >= nmax || !square_in(zone, b[2], col, row) {
            return Err(bad("no such square in that zone and band"));
        }
        Tile::of_square(zone, b[2], col, row).ok_or_else(|| bad("column"))
    }

    pub fn epsg(&self) -> u32 {
        mgrs::epsg(self.zone, self.north)
    }

    /// [xmin, ymin, xmax, ymax] in the tile's UTM frame.
    pub fn bounds(&self) -> [f64; 4] {
        [
            self.ulx,
            self.uly - TILE_SIZE_M,
            self.ulx + TILE_SIZE_M,
            self.uly,
        ]
    }

    /// Bounds with the northing made global (no false northing).
    fn global_bounds(&self) -> [f64; 4] {
        let f = if self.north {
            0.0
        } else {
            FALSE_NORTHING_SOUTH
        };
        let b = self.bounds();
        [b[0], b[1] - f, b[2], b[3] - f]
    }

    /// The footprint in lon/lat: the UTM square's edges, 16 points a side,
    /// counter-clockwise (RFC 7946).
    pub fn footprint(&self) -> Polygon {
        let [x0, y0, x1, y1] = self.global_bounds();
        let mut ring: Ring = Vec::new();
        let corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)];
        for w in corners.windows(2) {
            for k in 0..16 {
                let t = k as f64 / 16.0;
                let (x, y) = (
                    w[0].0 + t * (w[1].0 - w[0].0),
                    w[0].1 + t * (w[1].1 - w[0].1),
                );
                let (lat, lon) = mgrs::inverse(self.zone, x, y);
                ring.push([lon, lat]);
            }
        }
        ring.push(ring[0]);
        vec![ring]
    }
}

/// Whether part of the 100 km square (zone, col, row) lies in (zone, band).
fn square_in(zone: u8, band: u8, col: i64, row: i64) -> bool {
    const N: usize = 50;
    let (x0, y0) = (col as f64 * SQUARE_M, row as f64 * SQUARE_M);
    for i in 0..=N {
        for j in 0..=N {
            let (x, y) = (
                x0 + SQUARE_M * i as f64 / N as f64,
                y0 + SQUARE_M * j as f64 / N as f64,
            );
            let (lat, lon) = mgrs::inverse(zone, x, y);
            if mgrs::zone_of(lat, lon) == zone && mgrs::band_of(lat) == Some(band) {
                return true;
            }
        }
    }
    false
}

/// Points along a ring so no step exceeds `step` degrees.
fn densify(ring: &[[f64; 2]], step: f64) -> Vec<[f64; 2]> {
    let mut out = Vec::new();
    for w in ring.windows(2) {
        let d = (w[1][0] - w[0][0]).abs().max((w[1][1] - w[0][1]).abs());
        let n = ((d / step).ceil() as usize).max(1);
        for k in 0..n {
            let t = k as f64 / n as f64;
            out.push([
                w[0][0] + t * (w[1][0] - w[0][0]),
                w[0][1] + t * (w[1][1] - w[0][1]),
            ]);
        }
    }
    out
}

fn shoelace(ring: &[[f64; 2]]) -> f64 {
    let n = ring.len();
    (0..n)
        .map(|i| {
            let (a, b) = (ring[i], ring[(i + 1) % n]);
            a[0] * b[1] - b[0] * a[1]
        })
        .sum::<f64>()
        / 2.0
}

/// Sutherland-Hodgman: an open ring clipped to an axis-aligned rectangle.
/// Correct areas for any simple ring (concave ones leave zero-area seams).
fn clip(ring: &[[f64; 2]], r: [f64; 4]) -> Vec<[f64; 2]> {
    let mut pts = ring.to_vec();
    // (axis, bound, keep >= bound?)
    for (axis, bound, ge) in [
        (0, r[0], true),
        (0, r[2], false),
        (1, r[1], true),
        (1, r[3], false),
    ] {
        if pts.is_empty() {
            break;
        }
        let inside = |p: &[f64; 2]| {
            if ge {
                p[axis] >= bound
            } else {
                p[axis] <= bound
            }
        };
        let mut out = Vec::with_capacity(pts.len() + 4);
        for i in 0..pts.len() {
            let (a, b) = (pts[i], pts[(i + 1) % pts.len()]);
            let (ia, ib) = (inside(&a), inside(&b));
            if ia {
                out.push(a);
            }
            if ia != ib {
                let t = (bound - a[axis]) / (b[axis] - a[axis]);
                out.push([a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])]);
            }
        }
        pts = out;
    }
    pts
}

/// Area of projected polygons (exteriors minus holes), optionally clipped.
fn area_of(polys: &[Vec<Vec<[f64; 2]>>], rect: Option<[f64; 4]>) -> f64 {
    polys
        .iter()
        .map(|rings| {
            rings
                .iter()
                .enumerate()
                .map(|(k, r)| {
                    let a = match rect {
                        Some(b) => shoelace(&clip(r, b)).abs(),
                        None => shoelace(r).abs(),
                    };
                    if k == 0 {
                        a
                    } else {
                        -a
                    }
                })
                .sum::<f64>()
        })
        .sum()
}

/// Every Sentinel-2 tile whose footprint covers part of `area`, largest
/// share first (ties by id). A zero-buffer point area gives the tiles
/// containing the point, each with share 1.
pub fn covering(area: &Area) -> Result<Vec<Cover>> {
    let [w, s, e, n] = area.bbox();
    if !(w.is_finite() && s.is_finite()) {
        return Err(Error::invalid(format!("{}: empty area", area.describe())));
    }
    if s < -80.0 || n > 84.0 {
        return Err(Error::invalid(format!(
            "{}: reaches beyond 80S..84N, where Sentinel-2 has no UTM tiles",
            area.describe()
        )));
    }
    let point = area.as_point();
    // A tile reaches up to ~110 km past its zone's edge (more at high
    // latitude, where 110 km is several degrees of longitude).
    let (_, mx) = metres_per_degree(s.abs().max(n.abs()).min(84.0));
    let margin = (150_000.0 / mx).min(30.0);
    let z0 = mgrs::zone_of(0.0, (w - margin).max(-180.0));
    let z1 = mgrs::zone_of(0.0, (e + margin).min(179.999));
    let dense: Vec<Vec<Vec<[f64; 2]>>> = area
        .polygons
        .iter()
        .map(|p| p.iter().map(|r| densify(r, 0.02)).collect())
        .collect();
    let mut out = Vec::new();
    for zone in z0..=z1 {
        let proj: Vec<Vec<Vec<[f64; 2]>>> = dense
            .iter()
            .map(|p| {
                p.iter()
                    .map(|r| {
                        r.iter()
                            .map(|&[lon, lat]| {
                                let (x, y) = mgrs::forward(zone, lat, lon);
                                [x, y]
                            })
                            .collect()
                    })
                    .collect()
            })
            .collect();
        let (px, py) = point
            .map(|(lat, lon)| mgrs::forward(zone, lat, lon))
            .unzip();
        let mut b = [
            f64::INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
        ];
        for &[x, y] in proj.iter().flatten().flatten() {
            b = [b[0].min(x), b[1].min(y), b[2].max(x), b[3].max(y)];
        }
        let total = area_of(&proj, None);
        let c0 = (((b[0] - TILE_SIZE_M) / SQUARE_M).floor() as i64).max(1);
        let c1 = ((b[2] / SQUARE_M).floor() as i64).min(8);
        let r0 = (b[1] / SQUARE_M).floor() as i64 - 1;
        let r1 = (b[3] / SQUARE_M).floor() as i64 + 1;
        for col in c0..=c1 {
            for row in r0..=r1 {
                // The footprint, with the band letter left for later.
                let Some(t) = Tile::of_square(zone, b'N', col, row) else {
                    continue;
                };
                let fb = t.global_bounds();
                let share = match (px, py) {
                    (Some(x), Some(y)) => {
                        if x >= fb[0] && x <= fb[2] && y >= fb[1] && y <= fb[3] {
                            1.0
                        } else {
                            0.0
                        }
                    }
                    _ if total > 0.0 => area_of(&proj, Some(fb)) / total,
                    _ => 0.0,
                };
                if share <= 1e-9 {
                    continue;
                }
                // Bands the square reaches: from its corners' latitudes.
                let lats: Vec<f64> = [(0, 0), (1, 0), (0, 1), (1, 1), (0, 2), (1, 2)]
                    .iter()
                    .flat_map(|&(i, j)| {
                        let x = (col + i) as f64 * SQUARE_M;
                        let y = row as f64 * SQUARE_M + j as f64 * SQUARE_M / 2.0;
                        [
                            mgrs::inverse(zone, x, y).0,
                            mgrs::inverse(zone, (col as f64 + 0.5) * SQUARE_M, y).0,
                        ]
                    })
                    .collect();
                let lo = lats.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = lats.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                for &band in mgrs::BANDS.iter() {
                    let (blo, bhi) = mgrs::band_range(band).expect("band");
                    if bhi < lo || blo > hi || !square_in(zone, band, col, row) {
                        continue;
                    }
                    let tile = Tile::of_square(zone, band, col, row).expect("column checked");
                    out.push(Cover {
                        epsg: tile.epsg(),
                        tile,
                        share: share.min(1.0),
                    });
                }
            }
        }
    }
    out.sort_by(|a, b| {
        b.share
            .total_cmp(&a.share)
            .then_with(|| a.tile.id.cmp(&b.tile.id))
    });
    Ok(out)
}

/// The covering tiles' footprints as an RFC 7946 FeatureCollection, with
/// id, EPSG, UTM bounds and share as properties.
pub fn footprints_geojson(covers: &[Cover]) -> serde_json::Value {
    let features: Vec<_> = covers
        .iter()
        .map(|c| {
            serde_json::json!({
                "type": "Feature",
                "properties": {
                    "tile": c.tile.id,
                    "epsg": c.epsg,
                    "utm_bounds": c.tile.bounds(),
                    "share": c.share,
                },
                "geometry": {"type": "Polygon", "coordinates": c.tile.footprint()},
            })
        })
        .collect();
    serde_json::json!({"type": "FeatureCollection", "features": features})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(c: &[Cover]) -> Vec<&str> {
        c.iter().map(|c| c.tile.id.as_str()).collect()
    }

    /// The Geoposition of the real product metadata in /work/shared/safe
    /// (GDAL's Sentinel-2 fixtures): T34UCF, EPSG:32634, ULX 300000, ULY
    /// 6100020, 10980 x 10 m.
    #[test]
    fn footprint_matches_product_metadata() {
        let t = Tile::parse("T34UCF").unwrap();
        assert_eq!((t.epsg(), t.ulx, t.uly), (32634, 300_000.0, 6_100_020.0));
        assert_eq!(t.bounds()[2] - t.bounds()[0], 10980.0 * 10.0);
        // T31UDQ (Paris) products start at ULX 399960, ULY 5500020.
        let p = Tile::parse("31UDQ").unwrap();
        assert_eq!((p.epsg(), p.ulx, p.uly), (32631, 399_960.0, 5_500_020.0));
        // A southern tile keeps the false northing: 56HLH (Sydney) tops at
        // 6300000 (a multiple of 60).
        let s = Tile::parse("56HLH").unwrap();
        assert_eq!((s.epsg(), s.ulx, s.uly), (32756, 300_000.0, 6_300_000.0));
        assert!(Tile::parse("32XNA").is_err(), "no zone 32 in band X");
        assert!(Tile::parse("34RZZ").is_err());
    }

    #[test]
    fn paris_is_31udq() {
        let a = Area::around_point(48.853, 2.3499, 0.0).unwrap();
        let c = covering(&a).unwrap();
        assert_eq!(ids(&c), ["31UDQ"]);
    }

    /// Kufra (24.178N 23.314E) is in 34RGM; the square straddles 24N, so it
    /// is also the tile 34QGM. 34QEK, once claimed, is ~250 km away.
    #[test]
    fn kufra_tiles() {
        let a = Area::around_point(24.178, 23.314, 0.0).unwrap();
        let c = covering(&a).unwrap();
        let got = ids(&c);
        assert!(got.contains(&"34RGM") && got.contains(&"34QGM"), "{got:?}");
        assert!(!got.contains(&"34QEK"));
        assert!(
            c.iter().all(|c| c.epsg == 32634 || c.epsg == 32635),
            "{c:?}"
        );
        assert_eq!(mgrs::to_mgrs(24.178, 23.314, 0).unwrap(), "34RGM");
    }

    /// OSCD's Abu Dhabi pair: the before image is from 39QZG, the after from
    /// 40QBM; the area (OSCD's abudhabi.geojson) must list both.
    #[test]
    fn abu_dhabi_lists_both_zones() {
        let ring = vec![
            [54.540252685546875, 24.291407914292037],
            [54.61406707763672, 24.291407914292037],
            [54.61406707763672, 24.366488081551143],
            [54.540252685546875, 24.366488081551143],
            [54.540252685546875, 24.291407914292037],
        ];
        let a = Area {
            origin: super::super::area::Origin::Region("abudhabi".into()),
            polygons: vec![vec![ring]],
        };
        let c = covering(&a).unwrap();
        let got = ids(&c);
        for want in ["39QZG", "40QBM"] {
            assert!(got.contains(&want), "{want} missing from {got:?}");
        }
        for c in &c {
            assert_eq!(c.epsg, 32600 + u32::from(c.tile.zone));
        }
        // Both tiles hold all of it (OSCD cut the images from them).
        for c in c
            .iter()
            .filter(|c| ["39QZG", "40QBM"].contains(&c.tile.id.as_str()))
        {
            assert!((c.share - 1.0).abs() < 1e-9, "{c:?}");
        }
        eprintln!(
            "{:?}",
            c.iter().map(|c| (&c.tile.id, c.share)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn share_of_an_area_split_by_a_tile_edge() {
        // A 10 km box centred on the east edge of 31UDQ's footprint
        // (x = 509760): half of it is in 31UDQ.
        let (lat, lon) = mgrs::inverse(31, 509_760.0, 5_450_000.0);
        let a = Area::around_point(lat, lon, 5.0).unwrap();
        let c = covering(&a).unwrap();
        let udq = c.iter().find(|c| c.tile.id == "31UDQ").unwrap();
        assert!((udq.share - 0.5).abs() < 0.01, "{}", udq.share);
        let ueq = c.iter().find(|c| c.tile.id == "31UEQ").unwrap();
        assert!((ueq.share - 1.0).abs() < 1e-9, "31UEQ starts at 499980");
    }

    #[test]
    fn clip_concave_ring() {
        // An L shape of area 3, clipped to the unit square at its corner.
        let l = [
            [0.0, 0.0],
            [2.0, 0.0],
            [2.0, 1.0],
            [1.0, 1.0],
            [1.0, 2.0],
            [0.0, 2.0],
        ];
        assert_eq!(shoelace(&l), 3.0);
        assert!((shoelace(&clip(&l, [0.5, 0.5, 1.5, 1.5])).abs() - 0.75).abs() < 1e-12);
    }
}
