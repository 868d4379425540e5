//! sites.kml: KML 2.2 for Google Earth and GIS viewers. One Style per kind
//! (pin, outline and translucent fill in the kind's colour) and one for
//! compounds; a Folder `Compounds` first (one Placemark per compound in
//! rank order: a pin at its centre and its outline), then a Folder per kind
//! holding its sites in rank order, each Placemark named `"#<rank> <kind>"`
//! with a pin at the site's centroid and its outline as Polygon(s) in
//! lon/lat (one MultiGeometry), so that small sites stay visible zoomed
//! out. Every Placemark has a TimeSpan from the before to the after date,
//! a balloon (HTML description) with the score, reasons and the chip image
//! (`chips/<id>.png`, relative to the KML, as Google Earth resolves it),
//! and its fields as ExtendedData. OGR reads each Folder as a layer.

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

/// The Placemark's TimeSpan: before to after date (what is known of them).
fn time_span(o: &mut String, ctx: &Context) {
    let (b, a) = (&ctx.scene.before_date, &ctx.scene.after_date);
    if b.is_none() && a.is_none() {
        return;
    }
    o.push_str("<TimeSpan>");
    if let Some(b) = b {
        let _ = write!(o, "<begin>{}</begin>", escape(b));
    }
    if let Some(a) = a {
        let _ = write!(o, "<end>{}</end>", escape(a));
    }
    o.push_str("</TimeSpan>\n");
}

/// A balloon: HTML in CDATA (every text in it escaped, so it cannot hold
/// `]]>`), with the chip when there is one.
fn balloon(o: &mut String, head: &str, reasons: &[String], chip: Option<&str>) {
    o.push_str("<description><![CDATA[");
    let _ = write!(o, "<p>{}</p><ul>", escape(head));
    for r in reasons {
        let _ = write!(o, "<li>{}</li>", escape(r));
    }
    o.push_str("</ul>");
    if let Some(c) = chip {
        let _ = write!(
            o,
            "<p><img src=\"{}\" width=\"760\"><br>before | after | change</p>",
            escape(c)
        );
    }
    o.push_str("]]></description>\n");
}

fn point(o: &mut String, lon: f64, lat: f64) {
    let _ = write!(
        o,
        "<Point><coordinates>{},{}</coordinates></Point>",
        Decimal(round(lon, 7)),
        Decimal(round(lat, 7))
    );
}

/// Pin icon of the styles (Google Earth's own, as its styles name it).
const PIN: &str = "https://maps.google.com/mapfiles/kml/shapes/placemark_circle.png";

fn style(o: &mut Sink, id: &str, c: [u8; 3]) {
    let _ = writeln!(
        o,
        "<Style id=\"{id}\"><IconStyle><color>{}</color><scale>1.1</scale><Icon><href>{PIN}</href></Icon></IconStyle><LabelStyle><scale>0.8</scale></LabelStyle><LineStyle><color>{}</color><width>2</width></LineStyle><PolyStyle><color>{}</color></PolyStyle></Style>",
        kml_colour(c, 0xff),
        kml_colour(c, 0xff),
        kml_colour(c, 0x55)
    );
}

fn compounds(o: &mut Sink, ctx: &Context) {
    if ctx.compounds.is_empty() {
        return;
    }
    let _ = writeln!(o, "<Folder><name>Compounds</name>");
    for c in ctx.compounds {
        let mut p = String::new();
        let _ = writeln!(p, "<Placemark id=\"compound-{}\">", c.id);
        let _ = writeln!(p, "<name>Compound #{}</name>", c.rank);
        time_span(&mut p, ctx);
        let chip =
            ((c.rank as usize) <= ctx.opts.chips).then(|| format!("chips/compound-{}.png", c.id));
        balloon(
            &mut p,
            &format!(
                "compound {}: base-likeness {:.3}, {} sites ({}), {:.0} m2 changed in {:.1} ha",
                c.id,
                c.score,
                c.members.len(),
                c.members
                    .iter()
                    .map(|m| m.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                c.area_m2,
                c.hull_area_m2 / 10_000.0
            ),
            &c.reasons,
            chip.as_deref(),
        );
        p.push_str("<styleUrl>#compound</styleUrl>\n<ExtendedData>\n");
        data(&mut p, "id", |o| {
            let _ = write!(o, "{}", c.id);
        });
        data(&mut p, "rank", |o| {
            let _ = write!(o, "{}", c.rank);
        });
        data(&mut p, "score", |o| {
            let _ = write!(o, "{}", Decimal(round(c.score, 4)));
        });
        data(&mut p, "members", |o| {
            let m: Vec<String> = c.members.iter().map(|m| m.to_string()).collect();
            o.push_str(&m.join(";"));
        });
        data(&mut p, "area_m2", |o| {
            let _ = write!(o, "{}", Decimal(round(c.area_m2, 1)));
        });
        data(&mut p, "reasons", |o| o.push_str(&c.reasons.join("; ")));
        p.push_str("</ExtendedData>\n<MultiGeometry>");
        point(&mut p, c.lon, c.lat);
        p.push_str("<Polygon><outerBoundaryIs><LinearRing><coordinates>");
        coords(&mut p, &c.outline_lonlat);
        p.push_str("</coordinates></LinearRing></outerBoundaryIs></Polygon></MultiGeometry>\n</Placemark>\n");
        let _ = std::fmt::Write::write_str(o, &p);
    }
    let _ = writeln!(o, "</Folder>");
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
        style(&mut o, k.name(), k.colour());
    }
    style(&mut o, "compound", super::chips::COMPOUND_COLOUR);
    compounds(&mut o, ctx);
    for k in KINDS {
        let of_kind: Vec<&crate::sites::Site> = ctx.sites.iter().filter(|s| s.kind == k).collect();
        if of_kind.is_empty() {
            continue;
        }
        let _ = writeln!(o, "<Folder><name>{}</name>", k.name());
        o.write_each(&of_kind, |o, _, s| site(o, s, ctx));
        let _ = writeln!(o, "</Folder>");
    }
    let _ = writeln!(o, "</Document>\n</kml>");
    o.finish()
}

/// One site's Placemark.
fn site(o: &mut String, s: &crate::sites::Site, ctx: &Context) {
    {
        let _ = writeln!(o, "<Placemark id=\"site-{}\">", s.id);
        let _ = writeln!(o, "<name>#{} {}</name>", s.rank, s.kind.name());
        time_span(o, ctx);
        let chip = ((s.rank as usize) <= ctx.opts.chips).then(|| format!("chips/{}.png", s.id));
        balloon(
            o,
            &format!(
                "site {}: structure score {:.3}, {:.0} m2, centroid {:.6} E {:.6} N",
                s.id, s.score, s.area_m2, s.lon, s.lat
            ),
            &s.reasons,
            chip.as_deref(),
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
        o.push_str("<MultiGeometry>");
        point(o, s.lon, s.lat);
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
        let _ = writeln!(o, "</MultiGeometry>");
        let _ = writeln!(o, "</Placemark>");
    }
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
