//! Candidate compounds over runs: the register's `compounds` layer, one row
//! per compound (a group of sites that looks like one facility) over all
//! runs, matched run to run like sites: continued, split (`split_from`) or
//! merged (`merged_into`).
//!
//! Why a layer of its own: an analyst reviews a facility as a whole (a
//! base, a farm, a quarry), and its members come and go between runs. A
//! run's compounds (its compounds.geojson) are matched to the register's by
//! the overlap of their outlines (the members' hull) with the same rule as
//! sites. A register compound that is the best match of several run
//! compounds split: the largest continues it, the others become compounds
//! with `split_from`, keeping its history and review. Register compounds
//! that a run compound also matches merged into its best match
//! (`merged_into`; no longer matched). Unmatched run compounds are new.
//! Its `members` are the register ids of its member sites in its
//! latest run. The analyst's columns (`review`, `note`, `reviewed_at`,
//! `reviewed_by`) are never written by a run once a compound exists.

use super::gpkg::{ge, int, real, set, text, COMPOUNDS};
use super::matching::{self, Frame, Polys};
use super::status::{self, Comparison};
use crate::error::{Error, Result};
use gdal::vector::{Feature, Geometry, LayerAccess, OGRFieldType};
use gdal::Dataset;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use OGRFieldType::{OFTInteger, OFTInteger64, OFTReal, OFTString};

/// The compounds layer's columns.
pub const COMPOUND_FIELDS: &[(&str, u32)] = &[
    ("compound_id", OFTInteger64),
    ("status", OFTString),
    ("review", OFTString),
    ("note", OFTString),
    ("reviewed_at", OFTString),
    ("reviewed_by", OFTString),
    ("first_seen", OFTString),
    ("last_seen", OFTString),
    ("times_seen", OFTInteger),
    ("best_score", OFTReal),
    ("score", OFTReal),
    ("n_members", OFTInteger),
    ("members", OFTString),
    ("area_m2", OFTReal),
    ("hull_area_m2", OFTReal),
    ("hull_area_first_m2", OFTReal),
    ("reasons", OFTString),
    ("first_run", OFTString),
    ("last_run", OFTString),
    ("merged_into", OFTInteger64),
    ("split_from", OFTInteger64),
];

/// Columns registers made before splits and merges were recorded lack;
/// the next update adds them.
pub const ADDED_LATER: &[&str] = &["merged_into", "split_from"];

/// One compound of a run (compounds.geojson).
#[derive(Debug, Clone)]
pub struct RunCompound {
    pub id: i64,
    pub rank: i64,
    pub score: f64,
    /// Member sites' ids in the run.
    pub members: Vec<i64>,
    pub area_m2: f64,
    pub hull_area_m2: f64,
    pub reasons: String,
    /// The members' hull, lon/lat.
    pub polys: Polys,
}

/// A run's compounds: none when the folder has no compounds.geojson (a run
/// made before compounds existed, or with them off).
pub fn read_compounds(dir: &Path) -> Result<Vec<RunCompound>> {
    let p = dir.join(crate::sites::COMPOUNDS_GEOJSON_FILE);
    if !p.is_file() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(&p).map_err(|e| Error::input(&p, e))?;
    let fc: Value =
        serde_json::from_str(&text).map_err(|e| Error::input(&p, format!("not JSON: {e}")))?;
    let feats = fc["features"]
        .as_array()
        .ok_or_else(|| Error::input(&p, "not a GeoJSON FeatureCollection"))?;
    let num = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let mut out = Vec::with_capacity(feats.len());
    for (i, f) in feats.iter().enumerate() {
        let pr = &f["properties"];
        let ring = |r: &Value| -> Option<Vec<[f64; 2]>> {
            r.as_array()?
                .iter()
                .map(|q| Some([q.get(0)?.as_f64()?, q.get(1)?.as_f64()?]))
                .collect()
        };
        let g = &f["geometry"];
        let polys: Option<Polys> = match g["type"].as_str() {
            Some("Polygon") => g["coordinates"]
                .as_array()
                .and_then(|rs| rs.iter().map(ring).collect::<Option<Vec<_>>>())
                .map(|p| vec![p]),
            _ => None,
        };
        let polys = polys
            .filter(|p| p[0].first().is_some_and(|r| r.len() >= 4))
            .ok_or_else(|| Error::input(&p, format!("feature {i}: outline is not a polygon")))?;
        out.push(RunCompound {
            id: pr["id"].as_i64().unwrap_or(i as i64 + 1),
            rank: pr["rank"].as_i64().unwrap_or(i as i64 + 1),
            score: num(&pr["score"]),
            members: pr["members"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_i64).collect())
                .unwrap_or_default(),
            area_m2: num(&pr["area_m2"]),
            hull_area_m2: num(&pr["hull_area_m2"]),
            reasons: pr["reasons"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_default(),
            polys,
        });
    }
    Ok(out)
}

/// A compound of the register: the columns dunewatch owns.
#[derive(Debug, Clone)]
pub(crate) struct RegCompound {
    pub fid: Option<u64>,
    pub id: i64,
    pub outline: Geometry,
    pub status: String,
    pub first_seen: String,
    pub last_seen: String,
    pub times_seen: i64,
    pub best_score: f64,
    pub score: f64,
    /// Member sites' register ids, comma-separated.
    pub members: String,
    pub n_members: i64,
    pub area_m2: f64,
    pub hull_area_m2: f64,
    pub hull_area_first_m2: f64,
    pub reasons: String,
    pub first_run: String,
    pub last_run: String,
    pub merged_into: Option<i64>,
    pub split_from: Option<i64>,
    /// The analyst's review: read, and written only on a new row.
    pub review: String,
}

/// A compound row as read from the compounds layer.
pub(crate) fn read(f: &Feature) -> Option<RegCompound> {
    use super::gpkg::{get_f64, get_i64, get_str};
    let s = |n: &str| get_str(f, n).unwrap_or_default();
    Some(RegCompound {
        fid: f.fid(),
        id: get_i64(f, "compound_id")?,
        outline: f.geometry()?.clone(),
        status: s("status"),
        first_seen: s("first_seen"),
        last_seen: s("last_seen"),
        times_seen: get_i64(f, "times_seen").unwrap_or(0),
        best_score: get_f64(f, "best_score").unwrap_or(f64::NAN),
        score: get_f64(f, "score").unwrap_or(f64::NAN),
        members: s("members"),
        n_members: get_i64(f, "n_members").unwrap_or(0),
        area_m2: get_f64(f, "area_m2").unwrap_or(f64::NAN),
        hull_area_m2: get_f64(f, "hull_area_m2").unwrap_or(0.0),
        hull_area_first_m2: get_f64(f, "hull_area_first_m2").unwrap_or(0.0),
        reasons: s("reasons"),
        first_run: s("first_run"),
        last_run: s("last_run"),
        merged_into: get_i64(f, "merged_into"),
        split_from: get_i64(f, "split_from"),
        review: s("review"),
    })
}

/// Writes the columns dunewatch owns (not the analyst's) and the outline.
fn write(f: &mut Feature, c: &RegCompound) -> gdal::errors::Result<()> {
    set(f, "compound_id", int(c.id))?;
    set(f, "status", text(&c.status))?;
    set(f, "first_seen", text(&c.first_seen))?;
    set(f, "last_seen", text(&c.last_seen))?;
    set(f, "times_seen", int(c.times_seen))?;
    set(f, "best_score", real(c.best_score))?;
    set(f, "score", real(c.score))?;
    set(f, "n_members", int(c.n_members))?;
    set(f, "members", text(&c.members))?;
    set(f, "area_m2", real(c.area_m2))?;
    set(f, "hull_area_m2", real(c.hull_area_m2))?;
    set(f, "hull_area_first_m2", real(c.hull_area_first_m2))?;
    set(f, "reasons", text(&c.reasons))?;
    set(f, "first_run", text(&c.first_run))?;
    set(f, "last_run", text(&c.last_run))?;
    set(f, "merged_into", c.merged_into.and_then(int))?;
    set(f, "split_from", c.split_from.and_then(int))?;
    f.set_geometry(super::gpkg::to_multi(&c.outline)?)
}

/// What adding a run's compounds did.
#[derive(Debug, Clone, Copy, Default)]
pub struct CompoundCounts {
    pub new: usize,
    pub seen_again: usize,
    pub split: usize,
    pub merged: usize,
    pub not_seen_since: usize,
}

/// A run compound's reasons with the run's site ids ("site 4", "sites 2,
/// 7") replaced by their register ids, so the text names the same sites
/// as the row's `members`. An id the register does not hold is left as
/// it is.
fn renumber_sites(reasons: &str, site_of: &HashMap<i64, i64>) -> String {
    let mut out = String::with_capacity(reasons.len());
    let mut rest = reasons;
    while let Some(at) = rest.find("site") {
        let word_start = at == 0 || !rest.as_bytes()[at - 1].is_ascii_alphanumeric();
        let mut end = at + 4;
        if rest[end..].starts_with('s') {
            end += 1;
        }
        out.push_str(&rest[..end]);
        rest = &rest[end..];
        if !word_start || !rest.starts_with(' ') {
            continue;
        }
        // A list of ids: "N", "N, M", ...
        loop {
            let sep = rest.len() - rest.trim_start_matches([' ', ',']).len();
            let digits = rest[sep..].bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 || (sep != 1 && !rest.starts_with(", ")) {
                break;
            }
            let num = &rest[sep..sep + digits];
            out.push_str(&rest[..sep]);
            match num.parse::<i64>().ok().and_then(|n| site_of.get(&n)) {
                Some(r) => out.push_str(&r.to_string()),
                None => out.push_str(num),
            }
            rest = &rest[sep + digits..];
        }
    }
    out.push_str(rest);
    out
}

/// Matches a run's compounds to the register's and writes them. `site_of`
/// maps a run site id to its register site id; `inside` says whether a
/// lon/lat point lies in the run's compared area.
pub(crate) fn add(
    ds: &mut Dataset,
    compounds: &[RunCompound],
    site_of: &HashMap<i64, i64>,
    cmp: &Comparison,
    add_opts: &super::AddOptions,
    bbox: [f64; 4],
    inside: &dyn Fn((f64, f64)) -> bool,
) -> Result<CompoundCounts> {
    let (policy, opts) = (&add_opts.policy, &add_opts.matching);
    let mut counts = CompoundCounts::default();
    let mut reg: Vec<RegCompound> = {
        let mut layer = ds.layer_by_name(COMPOUNDS).map_err(ge)?;
        layer.set_spatial_filter_rect(bbox[0], bbox[1], bbox[2], bbox[3]);
        layer
            .set_attribute_filter("merged_into IS NULL")
            .map_err(ge)?;
        let v = layer.features().filter_map(|f| read(&f)).collect();
        layer.clear_spatial_filter();
        layer.clear_attribute_filter();
        v
    };
    let frame = Frame::new((bbox[0] + bbox[2]) / 2.0)?;
    let reg_shapes: Vec<_> = reg
        .iter()
        .map(|r| frame.shape_of(&matching::polys_of(&r.outline)))
        .collect();
    let new_shapes: Vec<_> = compounds.iter().map(|c| frame.shape_of(&c.polys)).collect();
    let mut found = matching::match_shapes(&new_shapes, &reg_shapes, opts)?;
    // Compounds nest (a small one inside a sprawling one covers all of its
    // share of the smaller), so the best match is the one of most
    // intersection over union: the same compound, not its neighbour.
    for (n, m) in found.iter_mut().enumerate() {
        let a = new_shapes[n].area;
        let iou = |&(r, ratio): &(usize, f64)| {
            let b = reg_shapes[r].area;
            let common = ratio * a.min(b);
            common / (a + b - common).max(1e-9)
        };
        m.sort_by(|x, y| iou(y).total_cmp(&iou(x)).then(x.0.cmp(&y.0)));
    }
    let matching::Lineage {
        primary,
        continued_by: kids,
        merged,
    } = matching::lineage(&found);
    let mut next_id = super::gpkg::max_id(ds, COMPOUNDS, "compound_id")? + 1;
    let mut created = Vec::new();
    let mut changed: BTreeSet<usize> = BTreeSet::new();
    // A run compound's members as register site ids.
    let members_of = |c: &RunCompound| {
        let mut ids: Vec<i64> = c
            .members
            .iter()
            .filter_map(|m| site_of.get(m).copied())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let text = ids
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",");
        (text, ids.len() as i64)
    };
    let first_seen = |id: i64, c: &RunCompound| -> Result<RegCompound> {
        let (members, n_members) = members_of(c);
        Ok(RegCompound {
            fid: None,
            id,
            outline: matching::outline_geometry(&c.polys)?,
            status: status::NEW.to_string(),
            first_seen: cmp.after_date.to_string(),
            last_seen: cmp.after_date.to_string(),
            times_seen: 1,
            best_score: c.score,
            score: c.score,
            n_members,
            members,
            area_m2: c.area_m2,
            hull_area_m2: c.hull_area_m2,
            hull_area_first_m2: c.hull_area_m2,
            reasons: renumber_sites(&c.reasons, site_of),
            first_run: cmp.run_id.to_string(),
            last_run: cmp.run_id.to_string(),
            merged_into: None,
            split_from: None,
            review: status::UNREVIEWED.to_string(),
        })
    };
    for (&r, ns) in &kids {
        let mut ns = ns.clone();
        // The largest piece continues the compound; ties by rank.
        ns.sort_by(|&a, &b| {
            compounds[b]
                .hull_area_m2
                .total_cmp(&compounds[a].hull_area_m2)
                .then(compounds[a].rank.cmp(&compounds[b].rank))
        });
        let c = &compounds[ns[0]];
        let rc = &mut reg[r];
        let prev = rc.hull_area_m2;
        rc.times_seen += 1;
        rc.best_score = rc.best_score.max(c.score);
        if cmp.after_date >= rc.last_seen.as_str() {
            let (members, n_members) = members_of(c);
            rc.outline = matching::outline_geometry(&c.polys)?;
            rc.score = c.score;
            rc.members = members;
            rc.n_members = n_members;
            rc.area_m2 = c.area_m2;
            rc.hull_area_m2 = c.hull_area_m2;
            rc.reasons = renumber_sites(&c.reasons, site_of);
            rc.last_seen = cmp.after_date.to_string();
            rc.last_run = cmp.run_id.to_string();
        }
        if cmp.after_date < rc.first_seen.as_str() {
            rc.first_seen = cmp.after_date.to_string();
        }
        rc.status = if c.hull_area_m2 > policy.grow_factor * prev {
            status::GROWN
        } else {
            status::SEEN_AGAIN
        }
        .to_string();
        changed.insert(r);
        counts.seen_again += 1;
        // The other pieces: compounds of their own with the parent's history.
        for &n in &ns[1..] {
            let p = &reg[r];
            let mut piece = first_seen(next_id, &compounds[n])?;
            piece.split_from = Some(p.id);
            piece.status = status::SEEN_AGAIN.to_string();
            piece.first_seen = p.first_seen.clone();
            piece.times_seen = p.times_seen;
            piece.first_run = p.first_run.clone();
            piece.review = p.review.clone();
            created.push(piece);
            next_id += 1;
            counts.split += 1;
        }
    }
    for (n, r) in merged {
        let p = primary[n].expect("a merge is into a best match");
        reg[r].merged_into = Some(reg[p].id);
        changed.insert(r);
        counts.merged += 1;
    }
    for (n, c) in compounds.iter().enumerate() {
        if primary[n].is_none() {
            created.push(first_seen(next_id, c)?);
            next_id += 1;
            counts.new += 1;
        }
    }
    for (r, rc) in reg.iter_mut().enumerate() {
        if kids.contains_key(&r) || rc.merged_into.is_some() || rc.status == status::NOT_SEEN_SINCE
        {
            continue;
        }
        let e = rc.outline.envelope();
        let centre = ((e.MinX + e.MaxX) / 2.0, (e.MinY + e.MaxY) / 2.0);
        if cmp.after_date > rc.last_seen.as_str() && inside(centre) {
            rc.status = status::NOT_SEEN_SINCE.to_string();
            changed.insert(r);
            counts.not_seen_since += 1;
        }
    }
    let layer = ds.layer_by_name(COMPOUNDS).map_err(ge)?;
    super::gpkg::write_rows(
        &layer,
        changed.iter().map(|&r| &reg[r]),
        &created,
        |c| (c.fid, format!("compound {}", c.id)),
        |c| &c.review,
        write,
    )?;
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_name_register_site_ids() {
        let site_of: HashMap<i64, i64> = [(1, 41), (2, 42), (7, 47)].into_iter().collect();
        let r = "enclosing ring: site 2 (350 m across, fills 12% of its hull) encloses 2 of 3 \
                 other members (sites 1, 7): perimeter berm; 1 new track leading in (site 9); \
                 rectilinear layout: 3 rectangular members (rectangularity 0.80) on one axis \
                 (12 deg, within 4 deg; agreement 0.97): sites 7, 1, 2; little change (900 m2)";
        assert_eq!(
            renumber_sites(r, &site_of),
            "enclosing ring: site 42 (350 m across, fills 12% of its hull) encloses 2 of 3 \
             other members (sites 41, 47): perimeter berm; 1 new track leading in (site 9); \
             rectilinear layout: 3 rectangular members (rectangularity 0.80) on one axis \
             (12 deg, within 4 deg; agreement 0.97): sites 47, 41, 42; little change (900 m2)"
        );
        // Words that merely contain "site" and numbers that are not ids stay.
        let r = "campsite 3 and sites near 2";
        assert_eq!(renumber_sites(r, &site_of), r);
    }
}
