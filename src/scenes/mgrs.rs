//! UTM on WGS 84 and the MGRS grid: zones (with the Norway and Svalbard
//! exceptions), latitude bands C..X, and the 100 km square letters.
//!
//! Why our own: Sentinel-2 tiles are MGRS 100 km squares, and finding the
//! tiles of an area means projecting it into several zones, including a
//! neighbouring zone's frame well outside that zone, and naming squares.
//! The projection is Krüger's series in the third flattening n to order n^6
//! (Karney 2011, "Transverse Mercator with an accuracy of a few nanometers",
//! J. Geodesy 85:475-485, eqs. 7, 11, 35-36), accurate to well under a
//! millimetre within 4000 km of the central meridian; the inverse latitude is
//! found by Newton's method on the conformal latitude (Karney eqs. 19-21).
//! The lettering is the MGRS "AA" scheme for WGS 84 (NGA.STND.0037, the
//! MGRS standard; DMA TM 8358.1 ch. 3): column letters A-H, J-R, S-Z by zone
//! mod 3; row letters A-V (no I, O) from the equator, offset by 5 (F) in even
//! zones.

/// WGS 84 semi-major axis, metres.
pub const A: f64 = 6_378_137.0;
/// WGS 84 flattening.
pub const F: f64 = 1.0 / 298.257_223_563;
/// UTM scale on the central meridian.
pub const K0: f64 = 0.9996;
pub const FALSE_EASTING: f64 = 500_000.0;
/// Added to northings in the southern hemisphere.
pub const FALSE_NORTHING_SOUTH: f64 = 10_000_000.0;

/// Latitude band letters, 8 degrees each from 80S (X spans 72N-84N).
pub const BANDS: &[u8; 20] = b"CDEFGHJKLMNPQRSTUVWX";
const ROWS: &[u8; 20] = b"ABCDEFGHJKLMNPQRSTUV";
const COLUMN_SETS: [&[u8; 8]; 3] = [b"ABCDEFGH", b"JKLMNPQR", b"STUVWXYZ"];

struct Series {
    /// Rectifying radius times k0.
    ka: f64,
    alpha: [f64; 6],
    beta: [f64; 6],
    e: f64,
}

fn series() -> &'static Series {
    static S: std::sync::OnceLock<Series> = std::sync::OnceLock::new();
    S.get_or_init(|| {
        let n = F / (2.0 - F);
        let (n2, n3) = (n * n, n * n * n);
        let (n4, n5, n6) = (n3 * n, n3 * n2, n3 * n3);
        let a_rect = A / (1.0 + n) * (1.0 + n2 / 4.0 + n4 / 64.0 + n6 / 256.0);
        let alpha = [
            n / 2.0 - 2.0 * n2 / 3.0 + 5.0 * n3 / 16.0 + 41.0 * n4 / 180.0 - 127.0 * n5 / 288.0
                + 7891.0 * n6 / 37800.0,
            13.0 * n2 / 48.0 - 3.0 * n3 / 5.0 + 557.0 * n4 / 1440.0 + 281.0 * n5 / 630.0
                - 1983433.0 * n6 / 1935360.0,
            61.0 * n3 / 240.0 - 103.0 * n4 / 140.0
                + 15061.0 * n5 / 26880.0
                + 167603.0 * n6 / 181440.0,
            49561.0 * n4 / 161280.0 - 179.0 * n5 / 168.0 + 6601661.0 * n6 / 7257600.0,
            34729.0 * n5 / 80640.0 - 3418889.0 * n6 / 1995840.0,
            212378941.0 * n6 / 319334400.0,
        ];
        let beta = [
            n / 2.0 - 2.0 * n2 / 3.0 + 37.0 * n3 / 96.0 - n4 / 360.0 - 81.0 * n5 / 512.0
                + 96199.0 * n6 / 604800.0,
            n2 / 48.0 + n3 / 15.0 - 437.0 * n4 / 1440.0 + 46.0 * n5 / 105.0
                - 1118711.0 * n6 / 3870720.0,
            17.0 * n3 / 480.0 - 37.0 * n4 / 840.0 - 209.0 * n5 / 4480.0 + 5569.0 * n6 / 90720.0,
            4397.0 * n4 / 161280.0 - 11.0 * n5 / 504.0 - 830251.0 * n6 / 7257600.0,
            4583.0 * n5 / 161280.0 - 108847.0 * n6 / 3991680.0,
            20648693.0 * n6 / 638668800.0,
        ];
        Series {
            ka: K0 * a_rect,
            alpha,
            beta,
            e: (F * (2.0 - F)).sqrt(),
        }
    })
}

/// Central meridian of a UTM zone, degrees.
pub fn central_meridian(zone: u8) -> f64 {
    f64::from(zone) * 6.0 - 183.0
}

/// Transverse Mercator on `zone`'s central meridian, without false
/// northing: (easting, northing), the northing negative south of the
/// equator. Valid far outside the zone (the tiles of a neighbouring zone
/// reach past its edge).
pub fn forward(zone: u8, lat: f64, lon: f64) -> (f64, f64) {
    let s = series();
    let phi = lat.to_radians();
    let mut dl = lon - central_meridian(zone);
    dl = (dl + 540.0).rem_euclid(360.0) - 180.0;
    let lam = dl.to_radians();
    let sp = phi.sin();
    let t = (sp.atanh() - s.e * (s.e * sp).atanh()).sinh();
    let xi_p = t.atan2(lam.cos());
    let eta_p = (lam.sin() / (1.0 + t * t).sqrt()).atanh();
    let (mut xi, mut eta) = (xi_p, eta_p);
    for (j, a) in s.alpha.iter().enumerate() {
        let k = 2.0 * (j as f64 + 1.0);
        xi += a * (k * xi_p).sin() * (k * eta_p).cosh();
        eta += a * (k * xi_p).cos() * (k * eta_p).sinh();
    }
    (FALSE_EASTING + s.ka * eta, s.ka * xi)
}

/// Inverse of [`forward`]: (lat, lon) in degrees from (easting, northing)
/// without false northing.
pub fn inverse(zone: u8, easting: f64, northing: f64) -> (f64, f64) {
    let s = series();
    let xi = northing / s.ka;
    let eta = (easting - FALSE_EASTING) / s.ka;
    let (mut xi_p, mut eta_p) = (xi, eta);
    for (j, b) in s.beta.iter().enumerate() {
        let k = 2.0 * (j as f64 + 1.0);
        xi_p -= b * (k * xi).sin() * (k * eta).cosh();
        eta_p -= b * (k * xi).cos() * (k * eta).sinh();
    }
    let tau_p = xi_p.sin() / (eta_p.sinh().powi(2) + xi_p.cos().powi(2)).sqrt();
    let lam = eta_p.sinh().atan2(xi_p.cos());
    let e2 = s.e * s.e;
    let mut tau = tau_p;
    for _ in 0..8 {
        let sigma = (s.e * (s.e * tau / (1.0 + tau * tau).sqrt()).atanh()).sinh();
        let tau_i = tau * (1.0 + sigma * sigma).sqrt() - sigma * (1.0 + tau * tau).sqrt();
        let d = (tau_p - tau_i) / (1.0 + tau_i * tau_i).sqrt() * (1.0 + (1.0 - e2) * tau * tau)
            / ((1.0 - e2) * (1.0 + tau * tau).sqrt());
        tau += d;
        if d.abs() < 1e-14 {
            break;
        }
    }
    let lon = central_meridian(zone) + lam.to_degrees();
    (
        tau.atan().to_degrees(),
        (lon + 540.0).rem_euclid(360.0) - 180.0,
    )
}

/// The MGRS/UTM zone of a point, with the Norway (32V) and Svalbard (31X,
/// 33X, 35X, 37X) exceptions. Longitude 180 is zone 60.
pub fn zone_of(lat: f64, lon: f64) -> u8 {
    if lon == 180.0 {
        return 60;
    }
    let lon = (lon + 540.0).rem_euclid(360.0) - 180.0;
    if (56.0..64.0).contains(&lat) && (3.0..12.0).contains(&lon) {
        return 32;
    }
    if (72.0..=84.0).contains(&lat) && (0.0..42.0).contains(&lon) {
        return match lon {
            l if l < 9.0 => 31,
            l if l < 21.0 => 33,
            l if l < 33.0 => 35,
            _ => 37,
        };
    }
    (((lon + 180.0) / 6.0).floor() as i32 + 1).clamp(1, 60) as u8
}

/// Latitude band letter, or None outside 80S..84N (the polar UPS areas).
pub fn band_of(lat: f64) -> Option<u8> {
    if !(-80.0..=84.0).contains(&lat) {
        return None;
    }
    let i = (((lat + 80.0) / 8.0).floor() as usize).min(19);
    Some(BANDS[i])
}

/// Latitude range of a band letter (X: 72..84).
pub fn band_range(band: u8) -> Option<(f64, f64)> {
    let i = BANDS.iter().position(|&b| b == band.to_ascii_uppercase())?;
    let lo = -80.0 + 8.0 * i as f64;
    Some((lo, if i == 19 { 84.0 } else { lo + 8.0 }))
}

/// Column letter of the 100 km square whose west edge is `col` x 100 km
/// (1..=8) in `zone`.
pub fn column_letter(zone: u8, col: i64) -> Option<u8> {
    let set = COLUMN_SETS[(usize::from(zone) - 1) % 3];
    (1..=8).contains(&col).then(|| set[col as usize - 1])
}

/// Row letter of the 100 km square whose south edge is `row` x 100 km of
/// northing (with the false northing in the south; any integer works, the
/// letters repeat every 2000 km).
pub fn row_letter(zone: u8, row: i64) -> u8 {
    let off = if zone % 2 == 0 { 5 } else { 0 };
    ROWS[(row + off).rem_euclid(20) as usize]
}

/// Column index (1..=8) of a column letter in `zone`.
pub fn column_index(zone: u8, letter: u8) -> Option<i64> {
    let set = COLUMN_SETS[(usize::from(zone) - 1) % 3];
    set.iter()
        .position(|&c| c == letter.to_ascii_uppercase())
        .map(|i| i as i64 + 1)
}

/// Row index modulo 20 (2000 km of northing) of a row letter in `zone`.
pub fn row_index_mod20(zone: u8, letter: u8) -> Option<i64> {
    let off = if zone % 2 == 0 { 5 } else { 0 };
    ROWS.iter()
        .position(|&c| c == letter.to_ascii_uppercase())
        .map(|i| (i as i64 - off).rem_euclid(20))
}

/// A UTM position in the point's own zone, northing with the false northing
/// of its hemisphere.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Utm {
    pub zone: u8,
    pub north: bool,
    pub easting: f64,
    pub northing: f64,
}

impl Utm {
    /// EPSG code of the WGS 84 / UTM zone (326zz north, 327zz south).
    pub fn epsg(&self) -> u32 {
        epsg(self.zone, self.north)
    }
}

/// EPSG code of a WGS 84 UTM zone.
pub fn epsg(zone: u8, north: bool) -> u32 {
    if north {
        32600 + u32::from(zone)
    } else {
        32700 + u32::from(zone)
    }
}

/// UTM coordinates of a point in its standard zone.
pub fn to_utm(lat: f64, lon: f64) -> Utm {
    let zone = zone_of(lat, lon);
    let (e, n) = forward(zone, lat, lon);
    let north = lat >= 0.0;
    Utm {
        zone,
        north,
        easting: e,
        northing: if north { n } else { n + FALSE_NORTHING_SOUTH },
    }
}

/// MGRS reference of a point with `digits` digits per coordinate (0..=5:
/// 100 km square only .. 1 m), truncated as the standard requires, e.g.
/// "34RGM1234567890". None in the polar (UPS) areas.
pub fn to_mgrs(lat: f64, lon: f64, digits: usize) -> Option<String> {
    let band = band_of(lat)?;
    let u = to_utm(lat, lon);
    let col = (u.easting / 100_000.0).floor() as i64;
    let row = (u.northing / 100_000.0).floor() as i64;
    let c = column_letter(u.zone, col)?;
    let r = row_letter(u.zone, row);
    let digits = digits.min(5);
    let mut s = format!("{:02}{}{}{}", u.zone, band as char, c as char, r as char);
    if digits > 0 {
        let div = 10f64.powi(5 - digits as i32);
        // Truncate (not round): a reference names the square containing the point.
        let e = ((u.easting - col as f64 * 100_000.0) / div + 1e-9).floor() as i64;
        let n = ((u.northing - row as f64 * 100_000.0) / div + 1e-9).floor() as i64;
        s.push_str(&format!("{e:0digits$}{n:0digits$}"));
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference conversions from PROJ 9.1.1 (`+proj=utm`, which uses
    /// Poder/Engsager's 6th-order Krüger series, an implementation
    /// independent of this one) via GDAL 3.6's `gdaltransform -s_srs
    /// EPSG:4326 -t_srs EPSG:326zz/327zz`, rounded to the millimetre:
    /// (lat, lon, zone, north, easting, northing).
    const PROJ_REFS: &[(f64, f64, u8, bool, f64, f64)] = &[
        // Kufra airport (HLKF), zone 34 north.
        (24.1787, 23.314, 34, true, 735_076.046, 2_675_956.354),
        // Paris, Notre-Dame, zone 31 north.
        (48.853, 2.3499, 31, true, 452_310.404, 5_411_318.435),
        // Abu Dhabi, zone 40 north.
        (24.45, 54.37, 40, true, 233_376.287, 2_706_583.239),
        // Sydney Opera House, zone 56 south.
        (-33.8568, 151.2153, 56, false, 334_900.570, 6_252_288.753),
        // Rio de Janeiro, zone 23 south.
        (-22.9068, -43.1729, 23, false, 687_394.593, 7_465_634.128),
        // Bergen (Norway exception zone 32V, west of 6E).
        (60.3913, 5.3221, 32, true, 297_353.933, 6_700_648.345),
        // Longyearbyen, Svalbard zone 33X.
        (78.2232, 15.6267, 33, true, 514_278.715, 8_683_355.469),
        // Quito, just south of the equator, zone 17 south.
        (-0.1807, -78.4678, 17, false, 781_861.457, 9_980_007.567),
        // GeographicLib GeoConvert(1) manual: 33.3N 44.4E is
        // "38N 444140.54 3684706.36" (PROJ agrees to the millimetre).
        (33.3, 44.4, 38, true, 444_140.545, 3_684_706.356),
    ];

    #[test]
    fn utm_matches_proj() {
        for &(lat, lon, zone, north, e, n) in PROJ_REFS {
            let u = to_utm(lat, lon);
            assert_eq!((u.zone, u.north), (zone, north), "{lat},{lon}");
            assert!(
                (u.easting - e).abs() < 0.002,
                "{lat},{lon}: E {} vs {e}",
                u.easting
            );
            assert!(
                (u.northing - n).abs() < 0.002,
                "{lat},{lon}: N {} vs {n}",
                u.northing
            );
            let (la, lo) = inverse(zone, u.easting, u.northing - if north { 0.0 } else { 1e7 });
            assert!(
                (la - lat).abs() < 1e-9 && (lo - lon).abs() < 1e-9,
                "{la},{lo}"
            );
        }
    }

    #[test]
    fn inverse_far_outside_the_zone() {
        // Tiles of zone 39 reach into zone 40; project 5 degrees off-meridian.
        for &(lat, lon) in &[(24.3, 59.0), (-45.0, 46.0), (70.0, 44.9)] {
            let (e, n) = forward(39, lat, lon);
            let (la, lo) = inverse(39, e, n);
            assert!((la - lat).abs() < 1e-10 && (lo - lon).abs() < 1e-10);
        }
    }

    #[test]
    fn zones_and_bands() {
        // Norway: 32V spans 3E-12E; Svalbard 31X/33X/35X/37X, no 32X/34X/36X.
        assert_eq!(zone_of(60.0, 4.0), 32);
        assert_eq!(zone_of(60.0, 2.9), 31);
        assert_eq!(zone_of(55.9, 4.0), 31);
        assert_eq!(zone_of(64.0, 4.0), 31);
        assert_eq!(zone_of(78.0, 8.9), 31);
        assert_eq!(zone_of(78.0, 9.0), 33);
        assert_eq!(zone_of(78.0, 20.9), 33);
        assert_eq!(zone_of(78.0, 21.0), 35);
        assert_eq!(zone_of(78.0, 33.0), 37);
        assert_eq!(zone_of(78.0, 42.0), 38);
        assert_eq!(zone_of(0.0, 180.0), 60);
        assert_eq!(zone_of(0.0, -180.0), 1);
        assert_eq!(zone_of(24.0, 54.0), 40);
        assert_eq!(band_of(-80.0), Some(b'C'));
        assert_eq!(band_of(-0.0001), Some(b'M'));
        assert_eq!(band_of(0.0), Some(b'N'));
        assert_eq!(band_of(23.999), Some(b'Q'));
        assert_eq!(band_of(24.0), Some(b'R'));
        assert_eq!(band_of(83.9), Some(b'X'));
        assert_eq!(band_of(84.1), None);
        assert_eq!(band_range(b'X'), Some((72.0, 84.0)));
    }

    /// Published MGRS references, each with its source.
    #[test]
    fn mgrs_matches_published_references() {
        let cases: &[(f64, f64, usize, &str, &str)] = &[
            // GeographicLib GeoConvert manual, example: "echo 33.3 44.4 |
            // GeoConvert -m -p -3" gives 38SMB4484 (Baghdad).
            (33.3, 44.4, 2, "38SMB4484", "GeoConvert(1) EXAMPLES"),
            // The origin of UTM zone 31: 31N AA 66021 00000 (E 166021.443,
            // N 0; GeographicLib and PROJ agree).
            (0.0, 0.0, 5, "31NAA6602100000", "zone 31 at the equator"),
            // Kufra airport (HLKF) lies in the 100 km square 34RGM (PROJ
            // above: E 735076, N 2675956; column G is the 7th of A-H, row
            // 26 + 5 = 31 -> M).
            (24.1787, 23.314, 0, "34RGM", "PROJ UTM + MGRS AA lettering"),
            // Paris lies in Sentinel-2 tile 31UDQ (ESA product names).
            (48.853, 2.3499, 0, "31UDQ", "ESA S2 product names T31UDQ"),
        ];
        for &(lat, lon, d, want, src) in cases {
            assert_eq!(to_mgrs(lat, lon, d).unwrap(), want, "{src}");
        }
        // Southern hemisphere and the Norway exception: the letters follow
        // from the PROJ coordinates above (row = floor(N / 100 km), offset 5
        // in even zones; column = floor(E / 100 km) in the zone's letter set).
        assert_eq!(to_mgrs(-33.8568, 151.2153, 0).unwrap(), "56HLH");
        assert_eq!(to_mgrs(60.3913, 5.3221, 0).unwrap(), "32VKN");
        assert_eq!(to_mgrs(78.2232, 15.6267, 0).unwrap(), "33XWG");
    }
}
