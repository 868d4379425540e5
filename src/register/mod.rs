//! The site register: one GeoPackage that remembers every site over all
//! runs, what the analyst said about it, and when it appeared.
//!
//! A run is added by matching its sites (from its sites.geojson) to the
//! register's sites by overlap ([`matching`]), then updating each site's
//! status, confidence and appearance interval ([`status`]), all in one
//! transaction under a lock file ([`lock`]). Adding a run that is already
//! in the register (same fingerprint of inputs, options and dates) changes
//! nothing.

pub mod compounds;
pub mod gpkg;
pub mod lock;
pub mod matching;
pub mod novelty;
pub mod report;
pub mod review;
pub mod run_input;
pub mod status;

use crate::error::{gdal_msg, Error, Result};
use gdal::vector::{Feature, Geometry, LayerAccess};
use gdal::Dataset;
use gpkg::{ge, int, real, set, text};
use matching::{Frame, MatchOptions};
use run_input::RunInput;
use status::{Comparison, Policy, RegSite, Seen};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// How runs are added.
#[derive(Debug, Clone, Copy, Default)]
pub struct AddOptions {
    pub policy: Policy,
    pub matching: MatchOptions,
}

/// What adding one run did.
#[derive(Debug, Clone, Default)]
pub struct AddSummary {
    pub run_dir: PathBuf,
    pub run_id: String,
    /// The run was in the register already: nothing changed.
    pub already: bool,
    pub sites: usize,
    pub new: usize,
    pub seen_again: usize,
    pub grown: usize,
    pub merged: usize,
    pub split: usize,
    pub not_seen_since: usize,
    pub changed_since_review: usize,
    pub transient: usize,
    /// The run's compounds: how many, and how they matched.
    pub compounds: usize,
    pub compounds_new: usize,
    pub compounds_seen_again: usize,
    pub compounds_split: usize,
    pub compounds_merged: usize,
    pub compounds_not_seen_since: usize,
}

/// The time now, UTC, as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    let s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (s.div_euclid(86400), s.rem_euclid(86400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Adds finished runs to the register at `register` (created if missing),
/// oldest comparison first, in one transaction under the register's lock.
pub fn add_runs(register: &Path, runs: &[PathBuf], opts: &AddOptions) -> Result<Vec<AddSummary>> {
    // Every run is read before the register is touched.
    let mut inputs = runs
        .iter()
        .map(|d| run_input::read_run(d))
        .collect::<Result<Vec<_>>>()?;
    inputs.sort_by(|a, b| (&a.after_date, &a.before_date).cmp(&(&b.after_date, &b.before_date)));
    let _lock = lock::RegisterLock::acquire(register)?;
    if register.exists() {
        gpkg::check(register)?;
        gpkg::ensure_compounds(register)?;
        update(register, &inputs, opts)
    } else {
        // A new register is built aside and renamed into place when whole.
        let mut tmp = register.as_os_str().to_owned();
        tmp.push(format!(".partial-{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let _ = std::fs::remove_file(&tmp);
        let res = gpkg::create(&tmp).and_then(|_| update(&tmp, &inputs, opts));
        match res {
            Ok(s) => {
                std::fs::rename(&tmp, register).map_err(|e| Error::output(register, e))?;
                Ok(s)
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }
}

fn update(path: &Path, inputs: &[RunInput], opts: &AddOptions) -> Result<Vec<AddSummary>> {
    let mut ds = gpkg::open(path, true).map_err(|e| Error::input(path, e))?;
    let g = |e: gdal::errors::GdalError| Error::output(path, gdal_msg(&e));
    let mut txn = ds.start_transaction().map_err(g)?;
    let mut out = Vec::new();
    for run in inputs {
        out.push(add_one(&mut txn, run, opts).map_err(|e| match e {
            Error::Invalid(m) => Error::output(path, format!("{}: {m}", run.dir.display())),
            e => e,
        })?);
    }
    txn.commit().map_err(g)?;
    ds.close().map_err(g)?;
    Ok(out)
}

fn has_run(ds: &Dataset, run_id: &str) -> Result<bool> {
    let mut runs = ds.layer_by_name(gpkg::RUNS).map_err(ge)?;
    runs.set_attribute_filter(&format!("run_id = '{}'", run_id.replace('\'', "''")))
        .map_err(ge)?;
    let n = runs.feature_count();
    runs.clear_attribute_filter();
    Ok(n > 0)
}

/// The register's live (not merged) sites whose boxes meet `bbox` (lon/lat).
pub(crate) fn load_sites(ds: &Dataset, bbox: [f64; 4]) -> Result<Vec<RegSite>> {
    let mut layer = ds.layer_by_name(gpkg::SITES).map_err(ge)?;
    layer.set_spatial_filter_rect(bbox[0], bbox[1], bbox[2], bbox[3]);
    layer
        .set_attribute_filter("merged_into IS NULL")
        .map_err(ge)?;
    let sites: Vec<RegSite> = layer
        .features()
        .filter_map(|f| gpkg::read_site(&f))
        .collect();
    layer.clear_spatial_filter();
    layer.clear_attribute_filter();
    Ok(sites)
}

/// The centre of a geometry's bounding box.
fn centre(g: &Geometry) -> (f64, f64) {
    let e = g.envelope();
    ((e.MinX + e.MaxX) / 2.0, (e.MinY + e.MaxY) / 2.0)
}

/// The outer ring of a polygon, as points.
fn outer_ring(g: &Geometry) -> Vec<(f64, f64)> {
    if g.geometry_count() == 0 {
        return Vec::new();
    }
    let mut pts = Vec::new();
    g.get_geometry(0).get_points(&mut pts);
    pts.into_iter().map(|p| (p.0, p.1)).collect()
}

/// Point in polygon by ray casting (the footprint has no holes); a plain
/// loop rather than an OGR call per site, for registers of many sites.
fn inside(ring: &[(f64, f64)], p: (f64, f64)) -> bool {
    let mut c = false;
    let n = ring.len();
    for i in 0..n {
        let (a, b) = (ring[i], ring[(i + n - 1) % n]);
        if (a.1 > p.1) != (b.1 > p.1) && p.0 < (b.0 - a.0) * (p.1 - a.1) / (b.1 - a.1) + a.0 {
            c = !c;
        }
    }
    c
}

fn add_one(ds: &mut Dataset, run: &RunInput, opts: &AddOptions) -> Result<AddSummary> {
    let mut sum = AddSummary {
        run_dir: run.dir.clone(),
        run_id: run.run_id.clone(),
        sites: run.sites.len(),
        compounds: run.compounds.len(),
        ..Default::default()
    };
    if has_run(ds, &run.run_id)? {
        sum.already = true;
        return Ok(sum);
    }
    let fe = run.footprint.envelope();
    // A margin of about a kilometre: sites straddling the edge still match.
    let m = 0.01;
    let mut reg = load_sites(ds, [fe.MinX - m, fe.MinY - m, fe.MaxX + m, fe.MaxY + m])?;
    let frame = Frame::new((fe.MinX + fe.MaxX) / 2.0)?;
    let reg_shapes = {
        use rayon::prelude::*;
        let polys: Vec<matching::Polys> =
            reg.iter().map(|r| matching::polys_of(&r.outline)).collect();
        polys
            .par_iter()
            .map(|p| frame.shape_of(p))
            .collect::<Vec<_>>()
    };
    let new_shapes = {
        use rayon::prelude::*;
        let polys: Vec<&matching::Polys> = run.sites.iter().map(|s| &s.polys).collect();
        polys
            .par_iter()
            .map(|p| frame.shape_of(p))
            .collect::<Vec<_>>()
    };
    let matches = matching::match_shapes(&new_shapes, &reg_shapes, &opts.matching)?;
    drop(reg_shapes);

    let cmp = Comparison {
        run_id: &run.run_id,
        before_date: &run.before_date,
        after_date: &run.after_date,
    };
    // Each new site's best match is its register site; a register site
    // that is the best match of several new sites split; one matched by a
    // new site whose best match is another register site merged into it.
    let matching::Lineage {
        primary,
        continued_by: kids,
        merged,
    } = matching::lineage(&matches);
    let mut changed: BTreeSet<usize> = BTreeSet::new();
    // Observation site ids and notes, per run site.
    let mut obs_site: Vec<i64> = vec![0; run.sites.len()];
    let mut obs_note: Vec<String> = vec![String::new(); run.sites.len()];
    let mut next_id = gpkg::max_id(ds, gpkg::SITES, "site_id")? + 1;
    let mut created: Vec<RegSite> = Vec::new();
    let seen = |i: usize| {
        let s = &run.sites[i];
        Seen {
            outline: &s.outline,
            kind: &s.kind,
            score: s.score,
            area_m2: s.area_m2,
            brightness_before: s.brightness_before,
            brightness_after: s.brightness_after,
        }
    };
    for (&r, ns) in &kids {
        let mut ns = ns.clone();
        // The largest piece continues the site; ties by rank.
        ns.sort_by(|&a, &b| {
            run.sites[b]
                .area_m2
                .total_cmp(&run.sites[a].area_m2)
                .then(run.sites[a].rank.cmp(&run.sites[b].rank))
        });
        let parent_id = reg[r].site_id;
        let was_dismissed_review = reg[r].review.clone();
        status::seen_again(&mut reg[r], &seen(ns[0]), &cmp, &opts.policy);
        changed.insert(r);
        obs_site[ns[0]] = parent_id;
        match reg[r].status.as_str() {
            status::GROWN => sum.grown += 1,
            status::CHANGED_SINCE_REVIEW => sum.changed_since_review += 1,
            _ => sum.seen_again += 1,
        }
        if reg[r].confidence == status::TRANSIENT {
            sum.transient += 1;
        }
        for &n in &ns[1..] {
            let mut c = status::first_seen(next_id, &seen(n), &cmp);
            let p = &reg[r];
            c.split_from = Some(parent_id);
            c.status = status::SEEN_AGAIN.to_string();
            c.first_seen = p.first_seen.clone();
            c.appeared_after = p.appeared_after.clone();
            c.appeared_by = p.appeared_by.clone();
            c.times_seen = p.times_seen;
            c.first_run = p.first_run.clone();
            c.review = was_dismissed_review.clone();
            obs_site[n] = next_id;
            obs_note[n] = format!("split from site {parent_id}");
            created.push(c);
            next_id += 1;
            sum.split += 1;
        }
    }
    for (n, r) in merged {
        let p = primary[n].expect("a merge is into a best match");
        reg[r].merged_into = Some(reg[p].site_id);
        changed.insert(r);
        let note = &mut obs_note[n];
        if note.is_empty() {
            *note = "merged sites".to_string();
        }
        note.push_str(&format!(" {}", reg[r].site_id));
        sum.merged += 1;
    }
    for (n, p) in primary.iter().enumerate() {
        if p.is_none() {
            let c = status::first_seen(next_id, &seen(n), &cmp);
            obs_site[n] = next_id;
            created.push(c);
            next_id += 1;
            sum.new += 1;
        }
    }
    // Register sites in the compared area that this run did not flag.
    let ring = outer_ring(&run.footprint);
    for (r, site) in reg.iter_mut().enumerate() {
        if kids.contains_key(&r) || site.merged_into.is_some() {
            continue;
        }
        if inside(&ring, centre(&site.outline)) && status::not_seen(site, &cmp) {
            changed.insert(r);
            if site.status == status::NOT_SEEN_SINCE {
                sum.not_seen_since += 1;
            }
        }
    }

    // Compounds, their members by register site id.
    let site_of: std::collections::HashMap<i64, i64> = run
        .sites
        .iter()
        .zip(&obs_site)
        .map(|(s, &r)| (s.id, r))
        .collect();
    let cc = compounds::add(
        ds,
        &run.compounds,
        &site_of,
        &cmp,
        opts,
        [fe.MinX - m, fe.MinY - m, fe.MaxX + m, fe.MaxY + m],
        &|p| inside(&ring, p),
    )?;
    sum.compounds_new = cc.new;
    sum.compounds_seen_again = cc.seen_again;
    sum.compounds_split = cc.split;
    sum.compounds_merged = cc.merged;
    sum.compounds_not_seen_since = cc.not_seen_since;

    // Write: changed sites, new sites, observations, the run.
    {
        let layer = ds.layer_by_name(gpkg::SITES).map_err(ge)?;
        let cols = gpkg::Cols::new(layer.defn(), gpkg::SITE_FIELDS)?;
        gpkg::write_rows(
            &layer,
            changed.iter().map(|&r| &reg[r]),
            &created,
            |s| (s.fid, format!("site {}", s.site_id)),
            |s| &s.review,
            |f, s| gpkg::write_site(f, &cols, s),
        )?;
    }
    {
        let layer = ds.layer_by_name(gpkg::OBSERVATIONS).map_err(ge)?;
        let defn = layer.defn();
        let cols = gpkg::Cols::new(defn, gpkg::OBSERVATION_FIELDS)?;
        let set = |f: &mut Feature, n: &str, v| cols.set(f, n, v);
        // One listing of the chips folder, not a file check per site.
        let chips: std::collections::HashSet<std::ffi::OsString> =
            std::fs::read_dir(run.dir.join("chips"))
                .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
                .unwrap_or_default();
        for (i, s) in run.sites.iter().enumerate() {
            let mut f = Feature::new(defn).map_err(ge)?;
            let chip = format!("chips/{}.png", s.id);
            let has_chip = chips.contains(std::ffi::OsStr::new(&format!("{}.png", s.id)));
            (|| -> gdal::errors::Result<()> {
                set(&mut f, "site_id", int(obs_site[i]))?;
                set(&mut f, "run_id", text(&run.run_id))?;
                set(&mut f, "run_site_id", int(s.id))?;
                set(&mut f, "rank", int(s.rank))?;
                set(&mut f, "kind", text(&s.kind))?;
                set(&mut f, "score", real(s.score))?;
                set(&mut f, "area_m2", real(s.area_m2))?;
                set(&mut f, "before_date", text(&run.before_date))?;
                set(&mut f, "after_date", text(&run.after_date))?;
                set(&mut f, "brightness_before", real(s.brightness_before))?;
                set(&mut f, "brightness_after", real(s.brightness_after))?;
                set(&mut f, "chip", if has_chip { text(&chip) } else { None })?;
                set(
                    &mut f,
                    "note",
                    if obs_note[i].is_empty() {
                        None
                    } else {
                        text(&obs_note[i])
                    },
                )?;
                f.set_geometry(gpkg::to_multi(&s.outline)?)
            })()
            .map_err(ge)?;
            f.create(&layer).map_err(ge)?;
        }
    }
    {
        let layer = ds.layer_by_name(gpkg::RUNS).map_err(ge)?;
        let mut f = Feature::new(layer.defn()).map_err(ge)?;
        let dir = run.dir.canonicalize().unwrap_or_else(|_| run.dir.clone());
        (|| -> gdal::errors::Result<()> {
            set(&mut f, "run_id", text(&run.run_id))?;
            set(&mut f, "run_dir", text(&dir.to_string_lossy()))?;
            set(&mut f, "before", text(&run.before))?;
            set(&mut f, "after", text(&run.after))?;
            set(&mut f, "before_date", text(&run.before_date))?;
            set(&mut f, "after_date", text(&run.after_date))?;
            set(&mut f, "tile", text(&run.tile))?;
            set(&mut f, "grid", text(&run.grid))?;
            set(&mut f, "method", text(&run.method))?;
            set(&mut f, "threshold", real(run.threshold))?;
            set(&mut f, "sites", int(sum.sites as i64))?;
            set(&mut f, "new", int(sum.new as i64))?;
            set(&mut f, "seen_again", int(sum.seen_again as i64))?;
            set(&mut f, "grown", int(sum.grown as i64))?;
            set(&mut f, "merged", int(sum.merged as i64))?;
            set(&mut f, "split", int(sum.split as i64))?;
            set(&mut f, "not_seen_since", int(sum.not_seen_since as i64))?;
            set(
                &mut f,
                "changed_since_review",
                int(sum.changed_since_review as i64),
            )?;
            set(&mut f, "added_at", text(&utc_now()))?;
            f.set_geometry(run.footprint.clone())
        })()
        .map_err(ge)?;
        f.create(&layer).map_err(ge)?;
    }
    Ok(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_in_footprint() {
        let sq = [(0.0, 0.0), (2.0, 0.0), (2.0, 2.0), (0.0, 2.0), (0.0, 0.0)];
        assert!(inside(&sq, (1.0, 1.0)));
        assert!(!inside(&sq, (3.0, 1.0)));
        assert!(!inside(&sq, (1.0, -0.5)));
    }

    #[test]
    fn utc_dates() {
        let s = utc_now();
        assert_eq!(s.len(), 20);
        assert!(s.starts_with("20") && s.ends_with('Z'));
    }
}
