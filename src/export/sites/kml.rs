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

/// `s` with XML's special characters (`&`, `<`, `>`, `"`) as entities.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    escape_into(&mut o, s);
    o
}

/// [`escape`], appended to `o`.
fn escape_into(o: &mut String, s: &str) {
    let mut rest = s;
    while let Some(i) = rest.find(['&', '<', '>', '"']) {
        o.push_str(&rest[..i]);
        o.push_str(match rest.as_bytes()[i] {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            _ => "&quot;",
        });
        rest = &rest[i + 1..];
    }
    o.push_str(rest);
}

/// Appends `<Data name="k"><value>v</value></Data>` and a newline, `v`
/// being what `value` writes, escaped: written in place, without a string
/// per value (77 000 sites have 770 000 values).
fn data(o: &mut String, k: &str, value: impl FnOnce(&mut String)) {
    let _ = write!(o, "<Data name=\"{k}\"><value>");
    let start = o.len();
    value(o);
    if o[start..].contains(['&', '<', '>', '"']) {
        let raw = o.split_off(start);
        escape_into(o, &raw);
    }
    o.push_str("</value></Data>\n");
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
        data(o, "id", |o| {
            let _ = write!(o, "{}", s.id);
        });
        data(o, "rank", |o| {
            let _ = write!(o, "{}", s.rank);
        });
        data(o, "kind", |o| o.push_str(s.kind.name()));
        data(o, "score", |o| {
            let _ = write!(o, "{}", Decimal(round(s.score, 4)));
        });
        data(o, "area_m2", |o| {
            let _ = write!(o, "{}", Decimal(round(s.area_m2, 1)));
        });
        data(o, "centroid_lon", |o| {
            let _ = write!(o, "{}", Decimal(round(s.lon, 7)));
        });
        data(o, "centroid_lat", |o| {
            let _ = write!(o, "{}", Decimal(round(s.lat, 7)));
        });
        let (before, after) = (&ctx.scene.before_date, &ctx.scene.after_date);
        data(o, "before_date", |o| {
            o.push_str(before.as_deref().unwrap_or_default())
        });
        data(o, "after_date", |o| {
            o.push_str(after.as_deref().unwrap_or_default())
        });
        data(o, "reasons", |o| {
            for (i, r) in s.reasons.iter().enumerate() {
                if i > 0 {
                    o.push_str("; ");
                }
                o.push_str(r);
            }
        });
        if let Some((n, d)) = nearest_watch(s) {
            data(o, "watch_name", |o| o.push_str(n));
            data(o, "watch_distance_m", |o| {
                let _ = write!(o, "{d}");
            });
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
        // As the chain of replacements it replaced: `&` first, once.
        assert_eq!(escape("&lt;>&&"), "&amp;lt;&gt;&amp;&amp;");
        assert_eq!(escape("plain, 1.5"), "plain, 1.5");
        let mut o = String::from("<x>");
        data(&mut o, "reasons", |o| o.push_str("NDVI < 0.2 & \"bright\""));
        data(&mut o, "n", |o| o.push_str("17"));
        assert_eq!(
            o,
            "<x><Data name=\"reasons\"><value>NDVI &lt; 0.2 &amp; &quot;bright&quot;</value></Data>\n\
             <Data name=\"n\"><value>17</value></Data>\n"
        );
    }
}
