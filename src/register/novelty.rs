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
use std::path::Path;

pub use super::matching::outline_geometry;

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
    let mut bbox = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
    for p in outlines.iter().copied().flatten().flatten().flatten() {
        bbox = [
            bbox[0].min(p[0]),
            bbox[1].min(p[1]),
            bbox[2].max(p[0]),
            bbox[3].max(p[1]),
        ];
    }
    let m = 0.01;
    let reg = super::load_sites(&ds, [bbox[0] - m, bbox[1] - m, bbox[2] + m, bbox[3] + m])
        .map_err(|e| Error::input(register, e))?;
    let frame = Frame::new((bbox[0] + bbox[2]) / 2.0)?;
    let rs: Vec<_> = reg
        .iter()
        .map(|r| frame.shape_of(&matching::polys_of(&r.outline)))
        .collect();
    let ns: Vec<_> = outlines.iter().map(|o| frame.shape_of(o)).collect();
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
