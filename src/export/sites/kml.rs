//! sites.kml: KML 2.2 for Google Earth and GIS viewers. One Style per kind
//! (outline and translucent fill in the kind's colour), one Placemark per
//! site in rank order named `"#<rank> <kind>"`, with the reasons as its
//! description, the fields as ExtendedData, and the outline as Polygon(s)
//! in lon/lat.

use super::decimal::Decimal;
use super::{nearest_watch, round, Context, Sink};
use crate::error::Result;
use crate::sites::classify::KINDS;
use std::fmt::Write as _;
use std::path::Path;

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// KML colours are aabbggrr.
fn kml_colour(rgb: [u8; 3], alpha: u8) -> String {
    format!("{alpha:02x}{:02x}{:02x}{:02x}", rgb[2], rgb[1], rgb[0])
}

/// A ring's `lon,lat` pairs, space-separated, appended to `o`.
fn coords(o: &mut String, r: &[[f64; 2]]) {
    for (k, p) in r.iter().enumerate() {
        let sep = if k > 0 { " " } else { "" };
        let _ = write!(
            o,
            "{sep}{},{}",
            Decimal(round(p[0], 7)),
            Decimal(round(p[1], 7))
        );
    }
}

pub fn write(path: &Path, ctx: &Context) -> Result<()> {
    let mut o = Sink::create(path)?;
    let _ = writeln!(o, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(o, r#"<kml xmlns="http://www.opengis.net/kml/2.2">"#);
    let _ = writeln!(o, "<Document>");
    let title = format!(
        "dunewatch sites {} to {}",
        ctx.scene.before_date.as_deref().unwrap_or("?"),
        ctx.scene.after_date.as_deref().unwrap_or("?")
    );
    let _ = writeln!(o, "<name>{}</name>", escape(&title));
    for k in KINDS {
        let c = k.colour();
        let _ = writeln!(
            o,
            "<Style id=\"{}\"><LineStyle><color>{}</color><width>2</width></LineStyle><PolyStyle><color>{}</color></PolyStyle></Style>",
            k.name(),
            kml_colour(c, 0xff),
            kml_colour(c, 0x55)
        );
    }
    o.write_each(ctx.sites, |o, _, s| {
        let _ = writeln!(o, "<Placemark id=\"site-{}\">", s.id);
        let _ = writeln!(o, "<name>#{} {}</name>", s.rank, s.kind.name());
        let _ = writeln!(
            o,
            "<description>{}</description>",
            escape(&format!(
                "score {:.3}, {:.0} m2: {}",
                s.score,
                s.area_m2,
                s.reasons.join("; ")
            ))
        );
        let _ = writeln!(o, "<styleUrl>#{}</styleUrl>", s.kind.name());
        let _ = writeln!(o, "<ExtendedData>");
        let mut data = vec![
            ("id", s.id.to_string()),
            ("rank", s.rank.to_string()),
            ("kind", s.kind.name().to_string()),
            ("score", Decimal(round(s.score, 4)).to_string()),
            ("area_m2", Decimal(round(s.area_m2, 1)).to_string()),
            ("centroid_lon", Decimal(round(s.lon, 7)).to_string()),
            ("centroid_lat", Decimal(round(s.lat, 7)).to_string()),
            (
                "before_date",
                ctx.scene.before_date.clone().unwrap_or_default(),
            ),
            (
                "after_date",
                ctx.scene.after_date.clone().unwrap_or_default(),
            ),
            ("reasons", s.reasons.join("; ")),
        ];
        if let Some((n, d)) = nearest_watch(s) {
            data.push(("watch_name", n.to_string()));
            data.push(("watch_distance_m", d.to_string()));
        }
        for (k, v) in data {
            let _ = writeln!(o, "<Data name=\"{k}\"><value>{}</value></Data>", escape(&v));
        }
        let _ = writeln!(o, "</ExtendedData>");
        if s.outline_lonlat.len() > 1 {
            let _ = writeln!(o, "<MultiGeometry>");
        }
        for p in &s.outline_lonlat {
            o.push_str("<Polygon><outerBoundaryIs><LinearRing><coordinates>");
            coords(o, &p[0]);
            o.push_str("</coordinates></LinearRing></outerBoundaryIs>");
            for h in &p[1..] {
                o.push_str("<innerBoundaryIs><LinearRing><coordinates>");
                coords(o, h);
                o.push_str("</coordinates></LinearRing></innerBoundaryIs>");
            }
            let _ = writeln!(o, "</Polygon>");
        }
        if s.outline_lonlat.len() > 1 {
            let _ = writeln!(o, "</MultiGeometry>");
        }
        let _ = writeln!(o, "</Placemark>");
    });
    let _ = writeln!(o, "</Document>\n</kml>");
    o.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_and_escaping() {
        assert_eq!(kml_colour([230, 30, 40], 0xff), "ff281ee6");
        assert_eq!(escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    }
}
