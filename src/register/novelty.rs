//! What is new since the register's last look: the sites of a run that
//! match no site of the register, or match only sites the register's
//! latest run added and nobody has reviewed yet (`--new-only`).
//!
//! Why before the run is added: `detect --register --new-only` writes its
//! sites files first and then adds the run, so its report shows what the
//! analyst has not seen, against the register as they left it.

use super::gpkg;
use super::matching::{self, Frame, MatchOptions};
use crate::error::{Error, Result};
use gdal::vector::Geometry;
use std::path::Path;

/// One site outline (polygons of closed lon/lat rings) as an OGR geometry.
pub fn outline_geometry(polys: &[Vec<Vec<[f64; 2]>>]) -> Result<Geometry> {
    use gdal_sys::OGRwkbGeometryType::{wkbLinearRing, wkbMultiPolygon, wkbPolygon};
    let e = |e: gdal::errors::GdalError| Error::invalid(e);
    let mut m = Geometry::empty(wkbMultiPolygon).map_err(e)?;
    for p in polys {
        let mut poly = Geometry::empty(wkbPolygon).map_err(e)?;
        for r in p {
            let mut ring = Geometry::empty(wkbLinearRing).map_err(e)?;
            for q in r {
                ring.add_point_2d((q[0], q[1]));
            }
            poly.add_geometry(ring).map_err(e)?;
        }
        m.add_geometry(poly).map_err(e)?;
    }
    Ok(m)
}

/// For each outline: whether it is new since the register's last run and
/// unreviewed. Every site is new for a register that does not exist yet.
pub fn keep_new(
    register: &Path,
    outlines: &[&Vec<Vec<Vec<[f64; 2]>>>],
    opts: &MatchOptions,
) -> Result<Vec<bool>> {
    if !register.exists() || outlines.is_empty() {
        return Ok(vec![true; outlines.len()]);
    }
    gpkg::check(register)?;
    let ds = gpkg::open(register, false).map_err(|e| Error::input(register, e))?;
    let latest = {
        let rs = ds
            .execute_sql(
                "SELECT run_id FROM runs ORDER BY added_at DESC, fid DESC LIMIT 1",
                None,
                gdal::vector::sql::Dialect::SQLITE,
            )
            .map_err(|e| Error::input(register, crate::error::gdal_msg(&e)))?;
        let mut id = String::new();
        if let Some(mut rs) = rs {
            use gdal::vector::LayerAccess;
            if let Some(f) = rs.features().next() {
                id = f.field_as_string(0).ok().flatten().unwrap_or_default();
            }
        }
        id
    };
    let geoms = outlines
        .iter()
        .map(|o| outline_geometry(o))
        .collect::<Result<Vec<_>>>()?;
    let mut bbox = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
    for g in &geoms {
        let e = g.envelope();
        bbox = [
            bbox[0].min(e.MinX),
            bbox[1].min(e.MinY),
            bbox[2].max(e.MaxX),
            bbox[3].max(e.MaxY),
        ];
    }
    let m = 0.01;
    let reg = super::load_sites(&ds, [bbox[0] - m, bbox[1] - m, bbox[2] + m, bbox[3] + m])
        .map_err(|e| Error::input(register, e))?;
    let frame = Frame::new((bbox[0] + bbox[2]) / 2.0)?;
    let rs = reg
        .iter()
        .map(|r| frame.shape(&r.outline))
        .collect::<Result<Vec<_>>>()?;
    let ns = geoms
        .iter()
        .map(|g| frame.shape(g))
        .collect::<Result<Vec<_>>>()?;
    let found = matching::match_shapes(&ns, &rs, opts)?;
    Ok(found
        .iter()
        .map(|f| {
            f.iter().all(|&(r, _)| {
                reg[r].review == super::status::UNREVIEWED && reg[r].first_run == latest
            })
        })
        .collect())
}
