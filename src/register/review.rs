//! The analyst's review from the command line: sets `review` (and `note`
//! when given), `reviewed_at` and `reviewed_by` on sites or compounds of a
//! register.
//!
//! Why: an analyst who reads register.html or the KML rather than QGIS can
//! record a decision without SQL. The review is checked against the known
//! values and every id must exist, or nothing is written; the rows are
//! written in one transaction under the register's lock, like `add`.

use super::gpkg::{self, ge, set, text};
use super::lock::RegisterLock;
use crate::error::{gdal_msg, Error, Result};
use gdal::vector::LayerAccess;
use std::path::Path;

/// The reviews an analyst can give.
pub const REVIEWS: [&str; 4] = ["unreviewed", "confirmed", "dismissed", "watch"];

/// What is reviewed: sites or compounds, by register id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Sites,
    Compounds,
}

impl Target {
    fn layer(self) -> &'static str {
        match self {
            Target::Sites => gpkg::SITES,
            Target::Compounds => gpkg::COMPOUNDS,
        }
    }
    fn id_column(self) -> &'static str {
        match self {
            Target::Sites => "site_id",
            Target::Compounds => "compound_id",
        }
    }
    /// "site" or "compound".
    pub fn noun(self) -> &'static str {
        match self {
            Target::Sites => "site",
            Target::Compounds => "compound",
        }
    }
}

/// One review decision.
#[derive(Debug, Clone)]
pub struct Review<'a> {
    pub review: &'a str,
    /// Replaces the note when given; the note is kept otherwise.
    pub note: Option<&'a str>,
    pub by: &'a str,
}

/// Sets the review of rows `ids` of `target`; returns how many rows were
/// written (each id once).
pub fn set_review(register: &Path, target: Target, ids: &[i64], r: &Review) -> Result<usize> {
    if !REVIEWS.contains(&r.review) {
        return Err(Error::invalid(format!(
            "unknown review `{}` (one of: {})",
            r.review,
            REVIEWS.join(", ")
        )));
    }
    if ids.is_empty() {
        return Err(Error::invalid(format!("no {} id given", target.noun())));
    }
    if !register.is_file() {
        return Err(Error::input(register, "no such register"));
    }
    gpkg::check(register)?;
    let _lock = RegisterLock::acquire(register)?;
    let mut ds = gpkg::open(register, true).map_err(|e| Error::input(register, e))?;
    let out = |e: gdal::errors::GdalError| Error::output(register, gdal_msg(&e));
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let at = super::utc_now();
    let txn = ds.start_transaction().map_err(out)?;
    let mut layer = txn.layer_by_name(target.layer()).map_err(|_| {
        Error::input(
            register,
            format!("the register has no {}s yet", target.noun()),
        )
    })?;
    let list = ids
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",");
    layer
        .set_attribute_filter(&format!("{} IN ({list})", target.id_column()))
        .map_err(ge)?;
    let mut rows = Vec::new();
    for f in layer.features() {
        if let (Some(fid), Some(id)) = (f.fid(), gpkg::get_i64(&f, target.id_column())) {
            rows.push((id, fid));
        }
    }
    layer.clear_attribute_filter();
    let missing: Vec<String> = ids
        .iter()
        .filter(|i| !rows.iter().any(|(id, _)| id == *i))
        .map(|i| i.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(Error::input(
            register,
            format!(
                "no {} {} in the register; nothing was changed",
                target.noun(),
                missing.join(", ")
            ),
        ));
    }
    for &(_, fid) in &rows {
        let mut f = layer
            .feature(fid)
            .ok_or_else(|| Error::output(register, format!("row {fid} vanished")))?;
        let w = |f: &mut gdal::vector::Feature| -> gdal::errors::Result<()> {
            set(f, "review", text(r.review))?;
            if let Some(n) = r.note {
                set(f, "note", text(n))?;
            }
            set(f, "reviewed_at", text(&at))?;
            set(f, "reviewed_by", text(r.by))
        };
        w(&mut f).map_err(out)?;
        layer.set_feature(f).map_err(out)?;
    }
    txn.commit().map_err(out)?;
    ds.close().map_err(out)?;
    Ok(rows.len())
}
