//! Links from the report to a location in common web maps, so an analyst
//! can look at a site in current imagery and street maps with one click.
//! Links only: the report fetches nothing itself and still opens offline.

/// OpenStreetMap with a marker, at zoom 16.
pub fn openstreetmap(lat: f64, lon: f64) -> String {
    format!("https://www.openstreetmap.org/?mlat={lat:.6}&mlon={lon:.6}#map=16/{lat:.6}/{lon:.6}")
}

/// Google Maps satellite view centred on the point, at zoom 16.
pub fn google_maps(lat: f64, lon: f64) -> String {
    format!("https://www.google.com/maps/@?api=1&map_action=map&center={lat:.6},{lon:.6}&zoom=16&basemap=satellite")
}

/// Copernicus Browser (Sentinel-2 imagery of any date) centred on the point.
pub fn copernicus_browser(lat: f64, lon: f64) -> String {
    format!("https://browser.dataspace.copernicus.eu/?zoom=15&lat={lat:.6}&lng={lon:.6}")
}

/// The three links as HTML, `OSM · Google · Copernicus`, opening in a new tab.
pub fn html(lat: f64, lon: f64) -> String {
    format!(
        "<span class=\"maps\"><a href=\"{}\" target=\"_blank\" rel=\"noopener\">OSM</a> · <a href=\"{}\" target=\"_blank\" rel=\"noopener\">Google</a> · <a href=\"{}\" target=\"_blank\" rel=\"noopener\">Copernicus</a></span>",
        super::kml::escape(&openstreetmap(lat, lon)),
        super::kml::escape(&google_maps(lat, lon)),
        super::kml::escape(&copernicus_browser(lat, lon)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_put_the_point_where_each_site_reads_it() {
        assert_eq!(
            openstreetmap(24.3, 54.61234567),
            "https://www.openstreetmap.org/?mlat=24.300000&mlon=54.612346#map=16/24.300000/54.612346"
        );
        assert!(google_maps(-1.5, 2.25).contains("center=-1.500000,2.250000"));
        assert!(copernicus_browser(24.3, 54.6).ends_with("lat=24.300000&lng=54.600000"));
        assert!(
            html(1.0, 2.0).contains("&amp;mlon=2.000000"),
            "escaped for HTML"
        );
    }
}
