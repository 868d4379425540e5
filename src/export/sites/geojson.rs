//! sites.geojson: an RFC 7946 FeatureCollection, one Feature per site in
//! rank order. Geometry: the traced outline in WGS 84 longitude/latitude
//! (Polygon, or MultiPolygon when parts touch only at corners), rings closed
//! (first position repeated), exteriors counter-clockwise and holes
//! clockwise (RFC 7946 section 3.1.6). Positions are rounded to 1e-7 degrees
//! (about 1 cm). Properties: id, rank, kind, score, reasons, area_m2,
//! centroid lon/lat, the dates, the nearest watch point and a `features`
//! object with every measure.

use super::{feature_pairs, nearest_watch, round, Context, Sink};
use crate::error::Result;
use crate::sites::Site;
use std::fmt::Write as _;
use std::path::Path;

// Features are written straight into the output text, not built as
// serde_json values first: with tens of thousands of sites the values'
// allocations were most of the sites step's writing time. Keys come in
// sorted order and numbers and strings are formatted as serde_json formats
// them (numbers by `decimal::json`, tested against serde_json), so the
// bytes are those serde_json gives for the same values.

/// A number as serde_json writes an f64 (shortest round trip; `null` when
/// not finite).
fn num(out: &mut String, v: f64) {
    super::decimal::json(out, v);
}

/// A JSON string, escaped as serde_json escapes it.
fn text(out: &mut String, s: &str) {
    if s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        // Serialising a str cannot fail.
        out.push_str(&serde_json::to_string(s).unwrap_or_default());
    } else {
        // Nothing serde_json would escape (it writes other characters as
        // they are): the feature names and most reasons.
        out.push('"');
        out.push_str(s);
        out.push('"');
    }
}

fn ring(out: &mut String, r: &[[f64; 2]]) {
    out.push('[');
    for (i, p) in r.iter().enumerate() {
        out.push_str(if i > 0 { ",[" } else { "[" });
        num(out, round(p[0], 7));
        out.push(',');
        num(out, round(p[1], 7));
        out.push(']');
    }
    out.push(']');
}

fn geometry(out: &mut String, s: &Site) {
    let polygon = |out: &mut String, p: &Vec<Vec<[f64; 2]>>| {
        out.push('[');
        for (i, r) in p.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            ring(out, r);
        }
        out.push(']');
    };
    out.push_str("{\"coordinates\":");
    if s.outline_lonlat.len() == 1 {
        polygon(out, &s.outline_lonlat[0]);
        out.push_str(",\"type\":\"Polygon\"}");
    } else {
        out.push('[');
        for (i, p) in s.outline_lonlat.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            polygon(out, p);
        }
        out.push_str("],\"type\":\"MultiPolygon\"}");
    }
}

fn opt_text(out: &mut String, s: Option<&str>) {
    match s {
        Some(s) => text(out, s),
        None => out.push_str("null"),
    }
}

fn properties(out: &mut String, s: &Site, ctx: &Context) {
    out.push_str("{\"after_date\":");
    opt_text(out, ctx.scene.after_date.as_deref());
    out.push_str(",\"area_m2\":");
    num(out, round(s.area_m2, 1));
    out.push_str(",\"before_date\":");
    opt_text(out, ctx.scene.before_date.as_deref());
    out.push_str(",\"centroid_lat\":");
    num(out, round(s.lat, 7));
    out.push_str(",\"centroid_lon\":");
    num(out, round(s.lon, 7));
    out.push_str(",\"chip\":");
    if (s.rank as usize) <= ctx.opts.chips {
        let _ = write!(out, "\"chips/{}.png\"", s.id);
    } else {
        out.push_str("null");
    }
    out.push_str(",\"features\":{");
    let mut f = feature_pairs(s);
    // A JSON object's keys in serde_json's (sorted) order; a repeated key keeps its last value.
    f.reverse();
    f.sort_by_key(|(k, _)| *k);
    f.dedup_by_key(|(k, _)| *k);
    for (i, (k, v)) in f.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        text(out, k);
        out.push(':');
        num(out, v);
    }
    let _ = write!(out, "}},\"id\":{},\"kind\":", s.id);
    text(out, s.kind.name());
    let _ = write!(out, ",\"rank\":{},\"reasons\":[", s.rank);
    for (i, r) in s.reasons.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        text(out, r);
    }
    out.push_str("],\"score\":");
    num(out, round(s.score, 4));
    let watch = nearest_watch(s);
    out.push_str(",\"watch_distance_m\":");
    match watch {
        Some((_, d)) => num(out, d),
        None => out.push_str("null"),
    }
    out.push_str(",\"watch_name\":");
    opt_text(out, watch.map(|(n, _)| n));
    out.push('}');
}

/// One Feature, keys in sorted order: bbox, geometry, id, properties, type.
pub fn feature(out: &mut String, s: &Site, ctx: &Context) {
    let b = s.bbox_lonlat;
    out.push_str("{\"bbox\":[");
    for (i, v) in b.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        num(out, round(*v, 7));
    }
    out.push_str("],\"geometry\":");
    geometry(out, s);
    let _ = write!(out, ",\"id\":{},\"properties\":", s.id);
    properties(out, s, ctx);
    out.push_str(",\"type\":\"Feature\"}");
}

/// Streams the collection, features rendered in parallel batches (memory
/// stays flat with tens of thousands of sites).
pub fn write(path: &Path, ctx: &Context) -> Result<()> {
    let mut w = Sink::create(path)?;
    let b = ctx.scene.bounds_lonlat;
    let mut bbox = String::from("[");
    for (i, v) in b.iter().enumerate() {
        if i > 0 {
            bbox.push(',');
        }
        num(&mut bbox, round(*v, 7));
    }
    bbox.push(']');
    let _ = write!(
        w,
        "{{\"type\":\"FeatureCollection\",\"bbox\":{bbox},\"features\":["
    );
    w.write_each(ctx.sites, |out, i, s| {
        out.push_str(if i > 0 { ",\n" } else { "\n" });
        feature(out, s, ctx);
    });
    let _ = write!(w, "\n]}}\n");
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        for s in [
            "ndvi_before",
            "",
            "say \"hi\"",
            "a\\b",
            "tab\there",
            "line\nbreak",
            "\u{1}",
            "é ñ 中 \u{7f}",
        ] {
            let mut out = String::new();
            text(&mut out, s);
            assert_eq!(out, serde_json::to_string(s).unwrap(), "{s:?}");
        }
    }
}
