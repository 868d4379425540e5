//! The sun's position at Sentinel-2's overpass (10:30 mean local solar
//! time) from the latitude and the day of the year: where a cloud's shadow
//! falls.

/// Sun elevation and azimuth (degrees, azimuth clockwise from north) at
/// Sentinel-2's 10:30 mean local solar time, from the latitude and the day
/// of the year (declination by Cooper's formula; good to a degree or two,
/// well inside
/// [`super::clouds::AZIMUTH_TOLERANCE_DEG`]).
pub fn sun_at_overpass(lat_deg: f64, day_of_year: u32) -> (f64, f64) {
    let phi = lat_deg.to_radians();
    let dec = (-23.44f64).to_radians()
        * (2.0 * std::f64::consts::PI * (day_of_year as f64 + 10.0) / 365.0).cos();
    let h = (15.0f64 * (10.5 - 12.0)).to_radians();
    let el = (phi.sin() * dec.sin() + phi.cos() * dec.cos() * h.cos()).asin();
    let az = (-h.sin()).atan2(dec.tan() * phi.cos() - phi.sin() * h.cos());
    (el.to_degrees(), az.to_degrees().rem_euclid(360.0))
}

/// Day of the year of a `YYYY-MM-DD` date.
pub fn day_of_year(date: &str) -> Option<u32> {
    let mut it = date.split('-').map(|s| s.parse::<u32>().ok());
    let (y, m, d) = (it.next()??, it.next()??, it.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let before: u32 = [31, 28 + leap as u32, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        [..m as usize - 1]
        .iter()
        .sum();
    Some(before + d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sun_and_dates() {
        // Paris, 7 November: low sun in the south-south-east.
        let (el, az) = sun_at_overpass(48.85, day_of_year("2017-11-07").unwrap());
        assert!(
            (18.0..24.0).contains(&el) && (150.0..165.0).contains(&az),
            "{el} {az}"
        );
        // Southern hemisphere in its summer: sun to the north-east.
        let (el, az) = sun_at_overpass(-15.8, day_of_year("2017-12-21").unwrap());
        assert!(el > 55.0 && (0.0..120.0).contains(&az), "{el} {az}");
        assert_eq!(day_of_year("2016-03-01"), Some(61));
        assert_eq!(day_of_year("2017-03-01"), Some(60));
        assert_eq!(day_of_year("nonsense"), None);
    }
}
