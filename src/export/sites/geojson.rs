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
use serde_json::{json, Map, Value};
use std::fmt::Write as _;
use std::path::Path;

fn ring(r: &[[f64; 2]]) -> Value {
    Value::Array(
        r.iter()
            .map(|p| json!([round(p[0], 7), round(p[1], 7)]))
            .collect(),
    )
}

pub fn geometry(s: &Site) -> Value {
    let polys: Vec<Value> = s
        .outline_lonlat
        .iter()
        .map(|p| Value::Array(p.iter().map(|r| ring(r)).collect()))
        .collect();
    if polys.len() == 1 {
        json!({ "type": "Polygon", "coordinates": polys[0] })
    } else {
        json!({ "type": "MultiPolygon", "coordinates": polys })
    }
}

pub fn properties(s: &Site, ctx: &Context) -> Map<String, Value> {
    let mut p = Map::new();
    p.insert("id".into(), json!(s.id));
    p.insert("rank".into(), json!(s.rank));
    p.insert("kind".into(), json!(s.kind.name()));
    p.insert("score".into(), json!(round(s.score, 4)));
    p.insert("reasons".into(), json!(s.reasons));
    p.insert("area_m2".into(), json!(round(s.area_m2, 1)));
    p.insert("centroid_lon".into(), json!(round(s.lon, 7)));
    p.insert("centroid_lat".into(), json!(round(s.lat, 7)));
    p.insert("before_date".into(), json!(ctx.scene.before_date));
    p.insert("after_date".into(), json!(ctx.scene.after_date));
    let (wn, wd) = match nearest_watch(s) {
        Some((n, d)) => (json!(n), json!(d)),
        None => (Value::Null, Value::Null),
    };
    p.insert("watch_name".into(), wn);
    p.insert("watch_distance_m".into(), wd);
    p.insert(
        "chip".into(),
        if (s.rank as usize) <= ctx.opts.chips {
            json!(format!("chips/{}.png", s.id))
        } else {
            Value::Null
        },
    );
    let f: Map<String, Value> = feature_pairs(s)
        .into_iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    p.insert("features".into(), Value::Object(f));
    p
}

pub fn feature(s: &Site, ctx: &Context) -> Value {
    let b = s.bbox_lonlat;
    json!({
        "type": "Feature",
        "id": s.id,
        "bbox": [round(b[0], 7), round(b[1], 7), round(b[2], 7), round(b[3], 7)],
        "geometry": geometry(s),
        "properties": properties(s, ctx),
    })
}

/// Streams the collection, features rendered in parallel batches (memory
/// stays flat with tens of thousands of sites).
pub fn write(path: &Path, ctx: &Context) -> Result<()> {
    let mut w = Sink::create(path)?;
    let b = ctx.scene.bounds_lonlat;
    let bbox = json!([
        round(b[0], 7),
        round(b[1], 7),
        round(b[2], 7),
        round(b[3], 7)
    ]);
    let _ = write!(
        w,
        "{{\"type\":\"FeatureCollection\",\"bbox\":{bbox},\"features\":["
    );
    w.write_each(ctx.sites, |out, i, s| {
        out.push_str(if i > 0 { ",\n" } else { "\n" });
        // A Value always serialises.
        let _ = write!(out, "{}", feature(s, ctx));
    });
    let _ = write!(w, "\n]}}\n");
    w.finish()
}
