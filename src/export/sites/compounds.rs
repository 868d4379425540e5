//! compounds.geojson and compounds.csv: one feature or row per compound in
//! rank order.
//!
//! The GeoJSON is RFC 7946: the outline (the members' convex hull) as a
//! Polygon in WGS 84 lon/lat, closed and counter-clockwise, rounded to 1e-7
//! degrees. Properties: id, rank, score, reasons, members (site ids),
//! `n_<kind>` counts, changed and hull areas, centre, the cues' strengths,
//! the dates and the chip. The CSV has the same fields, `lon`/`lat` the
//! outline's centre and the member ids joined with ";".

use super::csv::field;
use super::decimal::Decimal;
use super::{round, Context};
use crate::error::{Error, Result};
use crate::sites::classify::KINDS;
use crate::sites::compounds::{Compound, CUE_NAMES};
use crate::sites::{COMPOUNDS_CSV_FILE, COMPOUNDS_GEOJSON_FILE};
use serde_json::{json, Map, Value};
use std::fmt::Write as _;
use std::path::Path;

/// Whether the compound has a chip (the top `chips`).
fn chip(c: &Compound, ctx: &Context) -> Option<String> {
    ((c.rank as usize) <= ctx.opts.chips).then(|| format!("chips/compound-{}.png", c.id))
}

fn feature(c: &Compound, ctx: &Context) -> Value {
    let mut p = Map::new();
    p.insert("id".into(), json!(c.id));
    p.insert("rank".into(), json!(c.rank));
    p.insert("score".into(), json!(round(c.score, 4)));
    p.insert("reasons".into(), json!(c.reasons));
    p.insert("members".into(), json!(c.members));
    p.insert("n_members".into(), json!(c.members.len()));
    for (k, n) in &c.by_kind {
        p.insert(format!("n_{k}"), json!(n));
    }
    p.insert("area_m2".into(), json!(round(c.area_m2, 1)));
    p.insert("hull_area_m2".into(), json!(round(c.hull_area_m2, 1)));
    p.insert("centre_lon".into(), json!(round(c.lon, 7)));
    p.insert("centre_lat".into(), json!(round(c.lat, 7)));
    for (k, v) in CUE_NAMES.iter().zip(c.cues) {
        p.insert((*k).into(), json!(round(v, 4)));
    }
    p.insert("before_date".into(), json!(ctx.scene.before_date));
    p.insert("after_date".into(), json!(ctx.scene.after_date));
    p.insert("chip".into(), json!(chip(c, ctx)));
    let ring: Vec<Value> = c
        .outline_lonlat
        .iter()
        .map(|q| json!([round(q[0], 7), round(q[1], 7)]))
        .collect();
    json!({
        "type": "Feature",
        "id": c.id,
        "bbox": c.bbox_lonlat.map(|v| round(v, 7)),
        "geometry": { "type": "Polygon", "coordinates": [ring] },
        "properties": p,
    })
}

pub fn write_geojson(path: &Path, ctx: &Context) -> Result<()> {
    let v = json!({
        "type": "FeatureCollection",
        "bbox": ctx.scene.bounds_lonlat.map(|v| round(v, 7)),
        "features": ctx.compounds.iter().map(|c| feature(c, ctx)).collect::<Vec<_>>(),
    });
    let text = serde_json::to_string(&v).map_err(|e| Error::output(path, e))?;
    std::fs::write(path, text + "\n").map_err(|e| Error::output(path, e))
}

/// The CSV's columns, in order.
pub fn csv_header() -> Vec<String> {
    let mut h: Vec<String> = ["id", "rank", "score", "lon", "lat", "n_members", "members"]
        .map(String::from)
        .to_vec();
    h.extend(KINDS.iter().map(|k| format!("n_{}", k.name())));
    h.extend(["area_m2", "hull_area_m2"].map(String::from));
    h.extend(CUE_NAMES.iter().map(|s| s.to_string()));
    h.extend(["before_date", "after_date", "chip", "reasons"].map(String::from));
    h
}

pub fn write_csv(path: &Path, ctx: &Context) -> Result<()> {
    let mut o = csv_header().join(",");
    o.push('\n');
    for c in ctx.compounds {
        let members: Vec<String> = c.members.iter().map(|m| m.to_string()).collect();
        let _ = write!(
            o,
            "{},{},{},{},{},{},{}",
            c.id,
            c.rank,
            Decimal(round(c.score, 4)),
            Decimal(round(c.lon, 7)),
            Decimal(round(c.lat, 7)),
            c.members.len(),
            members.join(";")
        );
        for k in KINDS {
            let _ = write!(o, ",{}", c.by_kind.get(k.name()).copied().unwrap_or(0));
        }
        let _ = write!(
            o,
            ",{},{}",
            Decimal(round(c.area_m2, 1)),
            Decimal(round(c.hull_area_m2, 1))
        );
        for v in c.cues {
            let _ = write!(o, ",{}", Decimal(round(v, 4)));
        }
        let _ = writeln!(
            o,
            ",{},{},{},{}",
            ctx.scene.before_date.as_deref().unwrap_or_default(),
            ctx.scene.after_date.as_deref().unwrap_or_default(),
            chip(c, ctx).unwrap_or_default(),
            field(&c.reasons.join("; "))
        );
    }
    std::fs::write(path, o).map_err(|e| Error::output(path, e))
}

/// Writes both files into the folder being built.
pub fn write(into: &Path, ctx: &Context) -> Result<()> {
    write_geojson(&into.join(COMPOUNDS_GEOJSON_FILE), ctx)?;
    write_csv(&into.join(COMPOUNDS_CSV_FILE), ctx)
}
