//! The register's GeoPackage: its layers (sites, observations, runs, and
//! compounds, which registers made before compounds existed lack until
//! their next update),
//! checking that a file is one, and reading and writing sites.
//!
//! Written through GDAL's GPKG driver, so the file is a plain GeoPackage
//! that QGIS opens and edits: the analyst's `review`, `note`,
//! `reviewed_at` and `reviewed_by` columns (and any column they add) are
//! never written by a run once a site exists (only `register review`, on
//! the analyst's request, writes them).

use super::status::RegSite;
use crate::error::{gdal_msg, Error, Result};
use gdal::vector::{Feature, FieldValue, Geometry, Layer, LayerAccess, LayerOptions, OGRFieldType};
use gdal::{Dataset, DatasetOptions, DriverManager, GdalOpenFlags};
use std::path::Path;

pub const SITES: &str = "sites";
pub const OBSERVATIONS: &str = "observations";
pub const RUNS: &str = "runs";
pub const COMPOUNDS: &str = "compounds";

use OGRFieldType::{OFTInteger, OFTInteger64, OFTReal, OFTString};

/// The sites layer: one row per physical site over all runs.
pub const SITE_FIELDS: &[(&str, u32)] = &[
    ("site_id", OFTInteger64),
    ("status", OFTString),
    ("review", OFTString),
    ("note", OFTString),
    ("reviewed_at", OFTString),
    ("reviewed_by", OFTString),
    ("kind", OFTString),
    ("first_seen", OFTString),
    ("last_seen", OFTString),
    ("times_seen", OFTInteger),
    ("best_score", OFTReal),
    ("area_m2", OFTReal),
    ("area_first_m2", OFTReal),
    ("appeared_after", OFTString),
    ("appeared_by", OFTString),
    ("confidence", OFTString),
    ("confirmations", OFTInteger),
    ("merged_into", OFTInteger64),
    ("split_from", OFTInteger64),
    ("area_at_review", OFTReal),
    ("first_run", OFTString),
    ("last_run", OFTString),
    ("first_brightness_before", OFTReal),
    ("first_brightness_after", OFTReal),
];

/// The observations layer: one row per site per run.
pub const OBSERVATION_FIELDS: &[(&str, u32)] = &[
    ("site_id", OFTInteger64),
    ("run_id", OFTString),
    ("run_site_id", OFTInteger64),
    ("rank", OFTInteger),
    ("kind", OFTString),
    ("score", OFTReal),
    ("area_m2", OFTReal),
    ("before_date", OFTString),
    ("after_date", OFTString),
    ("brightness_before", OFTReal),
    ("brightness_after", OFTReal),
    ("chip", OFTString),
    ("note", OFTString),
];

/// The runs layer: one row per run, its geometry the area compared.
pub const RUN_FIELDS: &[(&str, u32)] = &[
    ("run_id", OFTString),
    ("run_dir", OFTString),
    ("before", OFTString),
    ("after", OFTString),
    ("before_date", OFTString),
    ("after_date", OFTString),
    ("tile", OFTString),
    ("grid", OFTString),
    ("method", OFTString),
    ("threshold", OFTReal),
    ("sites", OFTInteger),
    ("new", OFTInteger),
    ("seen_again", OFTInteger),
    ("grown", OFTInteger),
    ("merged", OFTInteger),
    ("split", OFTInteger),
    ("not_seen_since", OFTInteger),
    ("changed_since_review", OFTInteger),
    ("added_at", OFTString),
];

fn gerr(path: &Path, e: gdal::errors::GdalError) -> Error {
    Error::output(path, gdal_msg(&e))
}

/// A GDAL error while updating the register (the caller names the file).
pub(crate) fn ge(e: gdal::errors::GdalError) -> Error {
    Error::invalid(gdal_msg(&e))
}

const LAYER_OPTIONS: [&str; 3] = ["FID=fid", "GEOMETRY_NAME=geom", "SPATIAL_INDEX=YES"];

/// Adds the compounds layer to a register that lacks it (one made before
/// compounds existed), or the columns its layer lacks (`merged_into` and
/// `split_from` came later).
pub fn ensure_compounds(path: &Path) -> Result<()> {
    let mut ds = open(path, true).map_err(|e| Error::input(path, e))?;
    match ds.layer_by_name(COMPOUNDS) {
        Ok(layer) => {
            let have: Vec<String> = layer.defn().fields().map(|f| f.name()).collect();
            let missing: Vec<(&str, u32)> = super::compounds::COMPOUND_FIELDS
                .iter()
                .filter(|(n, _)| !have.iter().any(|h| h == n))
                .copied()
                .collect();
            if missing.is_empty() {
                return Ok(());
            }
            layer
                .create_defn_fields(&missing)
                .map_err(|e| gerr(path, e))?;
        }
        Err(_) => create_compounds(&mut ds).map_err(|e| gerr(path, e))?,
    }
    ds.close().map_err(|e| gerr(path, e))
}

fn create_compounds(ds: &mut Dataset) -> gdal::errors::Result<()> {
    let srs = gdal::spatial_ref::SpatialRef::from_epsg(4326)?;
    let layer = ds.create_layer(LayerOptions {
        name: COMPOUNDS,
        srs: Some(&srs),
        ty: gdal_sys::OGRwkbGeometryType::wkbMultiPolygon,
        options: Some(&LAYER_OPTIONS),
    })?;
    layer.create_defn_fields(super::compounds::COMPOUND_FIELDS)?;
    ds.execute_sql(
        "CREATE UNIQUE INDEX compounds_compound_id ON compounds(compound_id)",
        None,
        gdal::vector::sql::Dialect::SQLITE,
    )?;
    Ok(())
}

/// Creates an empty register (the layers, their indices) at `path`.
pub fn create(path: &Path) -> Result<()> {
    let drv = DriverManager::get_driver_by_name("GPKG").map_err(|e| gerr(path, e))?;
    let mut ds = drv.create_vector_only(path).map_err(|e| gerr(path, e))?;
    let srs = gdal::spatial_ref::SpatialRef::from_epsg(4326).map_err(|e| gerr(path, e))?;
    let opts = LAYER_OPTIONS;
    for (name, fields, ty) in [
        (
            SITES,
            SITE_FIELDS,
            gdal_sys::OGRwkbGeometryType::wkbMultiPolygon,
        ),
        (
            OBSERVATIONS,
            OBSERVATION_FIELDS,
            gdal_sys::OGRwkbGeometryType::wkbMultiPolygon,
        ),
        (RUNS, RUN_FIELDS, gdal_sys::OGRwkbGeometryType::wkbPolygon),
    ] {
        let layer = ds
            .create_layer(LayerOptions {
                name,
                srs: Some(&srs),
                ty,
                options: Some(&opts),
            })
            .map_err(|e| gerr(path, e))?;
        layer
            .create_defn_fields(fields)
            .map_err(|e| gerr(path, e))?;
    }
    for sql in [
        "CREATE UNIQUE INDEX sites_site_id ON sites(site_id)",
        "CREATE INDEX observations_site_id ON observations(site_id)",
        "CREATE INDEX observations_run_id ON observations(run_id)",
        "CREATE UNIQUE INDEX runs_run_id ON runs(run_id)",
    ] {
        ds.execute_sql(sql, None, gdal::vector::sql::Dialect::SQLITE)
            .map_err(|e| gerr(path, e))?;
    }
    create_compounds(&mut ds).map_err(|e| gerr(path, e))?;
    ds.close().map_err(|e| gerr(path, e))
}

fn not_register(path: &Path, why: impl std::fmt::Display) -> Error {
    Error::input(
        path,
        format!("not a dunewatch register ({why}); the file was left untouched"),
    )
}

/// Checks, without writing anything, that `path` is a GeoPackage with the
/// register's layers and columns.
pub fn check(path: &Path) -> Result<()> {
    let mut head = [0u8; 16];
    {
        use std::io::Read;
        let mut f = std::fs::File::open(path).map_err(|e| Error::input(path, e))?;
        let n = f.read(&mut head).map_err(|e| Error::input(path, e))?;
        if n < 16 || &head != b"SQLite format 3\0" {
            return Err(not_register(path, "not an SQLite database"));
        }
    }
    let ds = open(path, false).map_err(|e| not_register(path, e))?;
    for (name, fields) in [
        (SITES, SITE_FIELDS),
        (OBSERVATIONS, OBSERVATION_FIELDS),
        (RUNS, RUN_FIELDS),
        (COMPOUNDS, super::compounds::COMPOUND_FIELDS),
    ] {
        let layer = match ds.layer_by_name(name) {
            Ok(l) => l,
            // Added on the next update.
            Err(_) if name == COMPOUNDS => continue,
            Err(_) => return Err(not_register(path, format!("no layer `{name}`"))),
        };
        for (f, _) in fields {
            // Added on the next update too.
            if name == COMPOUNDS && super::compounds::ADDED_LATER.contains(f) {
                continue;
            }
            if layer.defn().field_index(f).is_err() {
                return Err(not_register(
                    path,
                    format!("layer `{name}` has no column `{f}`"),
                ));
            }
        }
    }
    Ok(())
}

/// Opens a GeoPackage, read-only or for update, with the GPKG driver only.
pub fn open(path: &Path, update: bool) -> std::result::Result<Dataset, String> {
    let mut flags = GdalOpenFlags::GDAL_OF_VECTOR;
    if update {
        flags |= GdalOpenFlags::GDAL_OF_UPDATE;
    }
    Dataset::open_ex(
        path,
        DatasetOptions {
            open_flags: flags,
            allowed_drivers: Some(&["GPKG"]),
            ..Default::default()
        },
    )
    .map_err(|e| format!("not a GeoPackage: {}", gdal_msg(&e)))
}

/// Field accessors by name (missing or NULL: None).
pub fn get_str(f: &Feature, name: &str) -> Option<String> {
    let i = f.field_index(name).ok()?;
    f.field_as_string(i).ok().flatten()
}
pub fn get_f64(f: &Feature, name: &str) -> Option<f64> {
    let i = f.field_index(name).ok()?;
    f.field_as_double(i).ok().flatten()
}
pub fn get_i64(f: &Feature, name: &str) -> Option<i64> {
    let i = f.field_index(name).ok()?;
    f.field_as_integer64(i).ok().flatten()
}

/// A row's `review`, trimmed and lower-cased; an analyst who clears the
/// cell means "not reviewed".
pub fn read_review(f: &Feature) -> String {
    get_str(f, "review")
        .map(|r| r.trim().to_lowercase())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| super::status::UNREVIEWED.to_string())
}

/// A site row as read from the sites layer.
pub fn read_site(f: &Feature) -> Option<RegSite> {
    let s = |n: &str| get_str(f, n).unwrap_or_default();
    Some(RegSite {
        fid: f.fid(),
        site_id: get_i64(f, "site_id")?,
        outline: f.geometry()?.clone(),
        first_seen: s("first_seen"),
        last_seen: s("last_seen"),
        times_seen: get_i64(f, "times_seen").unwrap_or(0),
        kind: s("kind"),
        best_score: get_f64(f, "best_score").unwrap_or(f64::NAN),
        area_m2: get_f64(f, "area_m2").unwrap_or(0.0),
        area_first_m2: get_f64(f, "area_first_m2").unwrap_or(0.0),
        status: s("status"),
        review: read_review(f),
        appeared_after: s("appeared_after"),
        appeared_by: s("appeared_by"),
        confidence: s("confidence"),
        confirmations: get_i64(f, "confirmations").unwrap_or(0),
        merged_into: get_i64(f, "merged_into"),
        split_from: get_i64(f, "split_from"),
        area_at_review: get_f64(f, "area_at_review"),
        first_run: s("first_run"),
        last_run: s("last_run"),
        first_brightness_before: get_f64(f, "first_brightness_before").unwrap_or(f64::NAN),
        first_brightness_after: get_f64(f, "first_brightness_after").unwrap_or(f64::NAN),
    })
}

/// A layer's columns, looked up once: OGR finds a field by name with a
/// case-insensitive scan of every field, which writing a full tile's sites
/// would do millions of times.
pub struct Cols(Vec<(&'static str, usize)>);

impl Cols {
    pub fn new(defn: &gdal::vector::Defn, fields: &[(&'static str, u32)]) -> Result<Cols> {
        fields
            .iter()
            .map(|(n, _)| {
                defn.field_index(n)
                    .map(|i| (*n, i))
                    .map_err(|e| Error::invalid(gdal_msg(&e)))
            })
            .collect::<Result<Vec<_>>>()
            .map(Cols)
    }

    /// Sets a field by name; `None` and NaN write NULL.
    pub fn set(
        &self,
        f: &mut Feature,
        name: &str,
        v: Option<FieldValue>,
    ) -> gdal::errors::Result<()> {
        match self.0.iter().find(|(n, _)| *n == name) {
            Some(&(_, i)) => match v {
                None => f.set_field_null(i),
                Some(FieldValue::RealValue(x)) if !x.is_finite() => f.set_field_null(i),
                Some(v) => f.set_field(i, &v),
            },
            None => set(f, name, v),
        }
    }
}

/// Sets a field by name; `None` and NaN write NULL.
pub fn set(f: &mut Feature, name: &str, v: Option<FieldValue>) -> gdal::errors::Result<()> {
    let i = f.field_index(name)?;
    match v {
        None => f.set_field_null(i),
        Some(FieldValue::RealValue(x)) if !x.is_finite() => f.set_field_null(i),
        Some(v) => f.set_field(i, &v),
    }
}

pub fn text(s: &str) -> Option<FieldValue> {
    Some(FieldValue::StringValue(s.to_string()))
}
pub fn real(x: f64) -> Option<FieldValue> {
    Some(FieldValue::RealValue(x))
}
pub fn int(x: i64) -> Option<FieldValue> {
    Some(FieldValue::Integer64Value(x))
}

/// A polygon as a one-part multipolygon (the layers' geometry type).
pub fn to_multi(g: &Geometry) -> gdal::errors::Result<Geometry> {
    if g.geometry_type() == gdal_sys::OGRwkbGeometryType::wkbPolygon {
        let mut m = Geometry::empty(gdal_sys::OGRwkbGeometryType::wkbMultiPolygon)?;
        m.add_geometry(g.clone())?;
        Ok(m)
    } else {
        Ok(g.clone())
    }
}

/// Writes the fields dunewatch owns (not the review columns) and the outline.
pub fn write_site(f: &mut Feature, c: &Cols, r: &RegSite) -> gdal::errors::Result<()> {
    let set = |f: &mut Feature, n: &str, v: Option<FieldValue>| c.set(f, n, v);
    set(f, "site_id", int(r.site_id))?;
    set(f, "status", text(&r.status))?;
    set(f, "kind", text(&r.kind))?;
    set(f, "first_seen", text(&r.first_seen))?;
    set(f, "last_seen", text(&r.last_seen))?;
    set(f, "times_seen", int(r.times_seen))?;
    set(f, "best_score", real(r.best_score))?;
    set(f, "area_m2", real(r.area_m2))?;
    set(f, "area_first_m2", real(r.area_first_m2))?;
    set(f, "appeared_after", text(&r.appeared_after))?;
    set(f, "appeared_by", text(&r.appeared_by))?;
    set(f, "confidence", text(&r.confidence))?;
    set(f, "confirmations", int(r.confirmations))?;
    set(f, "merged_into", r.merged_into.and_then(int))?;
    set(f, "split_from", r.split_from.and_then(int))?;
    set(f, "area_at_review", r.area_at_review.and_then(real))?;
    set(f, "first_run", text(&r.first_run))?;
    set(f, "last_run", text(&r.last_run))?;
    set(
        f,
        "first_brightness_before",
        real(r.first_brightness_before),
    )?;
    set(f, "first_brightness_after", real(r.first_brightness_after))?;
    f.set_geometry(to_multi(&r.outline)?)
}

/// The largest `column` of `table` (0 when empty): new rows are numbered
/// after it.
pub(crate) fn max_id(ds: &Dataset, table: &str, column: &str) -> Result<i64> {
    let rs = ds
        .execute_sql(
            format!("SELECT MAX({column}) AS m FROM {table}"),
            None,
            gdal::vector::sql::Dialect::SQLITE,
        )
        .map_err(ge)?;
    let mut max = 0;
    if let Some(mut rs) = rs {
        if let Some(f) = rs.features().next() {
            max = f.field_as_integer64(0).ok().flatten().unwrap_or(0);
        }
    }
    Ok(max)
}

/// Writes a layer's rows: each of `changed` over its feature (found by the
/// fid it was read with; `fid` also names it in errors), then each of
/// `created` as a new feature with its first `review`. `write` sets the
/// columns dunewatch owns; the analyst's are written only on creation.
pub(crate) fn write_rows<'a, T: 'a>(
    layer: &Layer,
    changed: impl IntoIterator<Item = &'a T>,
    created: &[T],
    fid: impl Fn(&T) -> (Option<u64>, String),
    review: impl Fn(&T) -> &str,
    write: impl Fn(&mut Feature, &T) -> gdal::errors::Result<()>,
) -> Result<()> {
    for r in changed {
        let (fid, name) = fid(r);
        let fid = fid.expect("read from the register");
        let mut f = layer
            .feature(fid)
            .ok_or_else(|| Error::invalid(format!("{name} vanished")))?;
        write(&mut f, r).map_err(ge)?;
        layer.set_feature(f).map_err(ge)?;
    }
    for c in created {
        let mut f = Feature::new(layer.defn()).map_err(ge)?;
        write(&mut f, c).map_err(ge)?;
        set(&mut f, "review", text(review(c))).map_err(ge)?;
        f.create(layer).map_err(ge)?;
    }
    Ok(())
}
