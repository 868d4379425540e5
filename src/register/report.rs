//! The whole register as one self-contained HTML page: every site,
//! unreviewed first, with its history over the runs (dates, area, score)
//! and the chip each run made of it, embedded as a data URI when the run's
//! folder still holds it; then every compound, counted by status and
//! listed the same way, its members linked to their sites' rows.

use super::compounds::RegCompound;
use super::gpkg::{self, get_f64, get_i64, get_str};
use super::status::{self, UNREVIEWED};
use crate::error::{gdal_msg, Error, Result};
use crate::sites::export::kml::escape;
use crate::sites::export::report::base64;
use gdal::vector::LayerAccess;
use gdal::Dataset;
use std::collections::HashMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

struct Obs {
    run_id: String,
    before: String,
    after: String,
    area: f64,
    score: f64,
    chip: Option<String>,
    note: String,
}

/// Order of review states in the report: what still needs a look first.
fn review_rank(r: &str) -> u8 {
    match r {
        UNREVIEWED => 0,
        "watch" => 1,
        "confirmed" => 2,
        _ => 3,
    }
}

/// Who reviewed a row, on a line of its own under the review.
fn reviewer(by: &str) -> String {
    if by.is_empty() {
        String::new()
    } else {
        format!("<br>{}", escape(by))
    }
}

/// A compound row with the analyst's columns: review, note, reviewed_by.
type Compound = (RegCompound, String, String, String);

/// The register's compounds, unreviewed first like sites; none when the
/// register predates compounds (it lacks the layer).
fn read_compounds(ds: &Dataset) -> Vec<Compound> {
    let Ok(mut layer) = ds.layer_by_name(gpkg::COMPOUNDS) else {
        return Vec::new();
    };
    let mut v: Vec<Compound> = layer
        .features()
        .filter_map(|f| {
            let c = super::compounds::read(&f)?;
            let note = get_str(&f, "note").unwrap_or_default();
            let by = get_str(&f, "reviewed_by").unwrap_or_default();
            Some((c, gpkg::read_review(&f), note, by))
        })
        .collect();
    v.sort_by(|a, b| {
        review_rank(&a.1)
            .cmp(&review_rank(&b.1))
            .then(b.0.best_score.total_cmp(&a.0.best_score))
            .then(a.0.id.cmp(&b.0.id))
    });
    v
}

/// Compounds' statuses in the order their counts are listed.
fn status_rank(s: &str) -> usize {
    [
        status::NEW,
        status::SEEN_AGAIN,
        status::GROWN,
        status::NOT_SEEN_SINCE,
    ]
    .iter()
    .position(|k| *k == s)
    .unwrap_or(usize::MAX)
}

/// The compounds heading, their counts by status and one row each.
fn write_compounds(h: &mut String, compounds: &[Compound]) {
    if compounds.is_empty() {
        return;
    }
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for (c, ..) in compounds {
        match counts.iter_mut().find(|(s, _)| *s == c.status) {
            Some(e) => e.1 += 1,
            None => counts.push((&c.status, 1)),
        }
    }
    counts.sort_by(|a, b| (status_rank(a.0), a.0).cmp(&(status_rank(b.0), b.0)));
    let counts: Vec<String> = counts
        .iter()
        .map(|(s, n)| format!("{n} {}", escape(s)))
        .collect();
    let _ = write!(
        h,
        "<h2>Compounds</h2><p class=\"compound-counts\">{} compounds: {}</p><table><tr>\
         <th>compound</th><th>review</th><th>status</th><th>first seen</th><th>last seen</th>\
         <th>times seen</th><th>members</th><th>hull area m&sup2; (first &rarr; now)</th>\
         <th>changed area m&sup2;</th><th>best score</th><th>score</th><th>reasons</th>\
         <th>note</th></tr>",
        compounds.len(),
        counts.join(", ")
    );
    for (c, review, note, by) in compounds {
        let members: Vec<String> = c
            .members
            .split(',')
            .filter(|m| !m.is_empty())
            .map(|m| {
                let m = escape(m.trim());
                format!("<a href=\"#site-{m}\">{m}</a>")
            })
            .collect();
        let extra = match (c.merged_into, c.split_from) {
            (Some(m), _) => format!("<br>merged into <a href=\"#compound-{m}\">{m}</a>"),
            (_, Some(p)) => format!("<br>split from <a href=\"#compound-{p}\">{p}</a>"),
            _ => String::new(),
        };
        let _ = write!(
            h,
            "<tr class=\"{}\" id=\"compound-{}\"><td>{}{}</td><td>{}{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}: {}</td><td>{:.0} &rarr; {:.0}</td><td>{:.0}</td>\
             <td>{:.2}</td><td>{:.2}</td><td>{}</td><td>{}</td></tr>",
            escape(review),
            c.id,
            c.id,
            extra,
            escape(review),
            reviewer(by),
            escape(&c.status),
            escape(&c.first_seen),
            escape(&c.last_seen),
            c.times_seen,
            c.n_members,
            members.join(", "),
            c.hull_area_first_m2,
            c.hull_area_m2,
            c.area_m2,
            c.best_score,
            c.score,
            escape(&c.reasons),
            escape(note)
        );
    }
    h.push_str("</table>");
}

/// Writes `<out>/register.html`; returns its path.
pub fn write_report(register: &Path, out: &Path) -> Result<PathBuf> {
    gpkg::check(register)?;
    let ds = gpkg::open(register, false).map_err(|e| Error::input(register, e))?;
    let ge = |e: gdal::errors::GdalError| Error::input(register, gdal_msg(&e));
    let mut run_dirs: HashMap<String, String> = HashMap::new();
    let mut runs_n = 0;
    let mut last_run = (String::new(), String::new());
    for f in ds.layer_by_name(gpkg::RUNS).map_err(ge)?.features() {
        let id = get_str(&f, "run_id").unwrap_or_default();
        let a = get_str(&f, "after_date").unwrap_or_default();
        if a > last_run.0 {
            last_run = (a, id.clone());
        }
        run_dirs.insert(id, get_str(&f, "run_dir").unwrap_or_default());
        runs_n += 1;
    }
    let mut hist: HashMap<i64, Vec<Obs>> = HashMap::new();
    for f in ds.layer_by_name(gpkg::OBSERVATIONS).map_err(ge)?.features() {
        let Some(id) = get_i64(&f, "site_id") else {
            continue;
        };
        hist.entry(id).or_default().push(Obs {
            run_id: get_str(&f, "run_id").unwrap_or_default(),
            before: get_str(&f, "before_date").unwrap_or_default(),
            after: get_str(&f, "after_date").unwrap_or_default(),
            area: get_f64(&f, "area_m2").unwrap_or(f64::NAN),
            score: get_f64(&f, "score").unwrap_or(f64::NAN),
            chip: get_str(&f, "chip"),
            note: get_str(&f, "note").unwrap_or_default(),
        });
    }
    let mut sites = Vec::new();
    for f in ds.layer_by_name(gpkg::SITES).map_err(ge)?.features() {
        if let Some(s) = gpkg::read_site(&f) {
            let note = get_str(&f, "note").unwrap_or_default();
            let by = get_str(&f, "reviewed_by").unwrap_or_default();
            sites.push((s, note, by));
        }
    }
    sites.sort_by(|a, b| {
        review_rank(&a.0.review)
            .cmp(&review_rank(&b.0.review))
            .then(b.0.best_score.total_cmp(&a.0.best_score))
            .then(a.0.site_id.cmp(&b.0.site_id))
    });
    let compounds = read_compounds(&ds);
    let mut h = String::new();
    let unreviewed = sites.iter().filter(|s| s.0.review == UNREVIEWED).count();
    let _ = write!(
        h,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>dunewatch register</title>\
         <style>body{{font-family:sans-serif;margin:1em}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:3px 6px;font-size:13px;vertical-align:top}}\
         .hist td{{border:none;padding:1px 4px}}img{{width:96px;image-rendering:pixelated}}\
         .unreviewed{{background:#fff8e0}}</style></head><body>\
         <h1>Site register</h1><p>{} &middot; {} sites, {} unreviewed{} &middot; {} runs, \
         latest comparison to {}</p><table><tr><th>site</th><th>review</th><th>status</th>\
         <th>confidence</th><th>kind</th><th>appeared</th><th>first seen</th><th>last seen</th>\
         <th>area m&sup2; (first &rarr; now)</th><th>best score</th><th>note</th><th>history</th></tr>",
        escape(&register.display().to_string()),
        sites.len(),
        unreviewed,
        if compounds.is_empty() {
            String::new()
        } else {
            format!(
                " &middot; {} compounds, {} unreviewed",
                compounds.len(),
                compounds.iter().filter(|c| c.1 == UNREVIEWED).count()
            )
        },
        runs_n,
        escape(&last_run.0)
    );
    for (s, note, by) in &sites {
        let mut hrows = String::new();
        let mut obs: Vec<&Obs> = hist
            .get(&s.site_id)
            .map(|v| v.iter().collect())
            .unwrap_or_default();
        obs.sort_by(|a, b| (&a.after, &a.before).cmp(&(&b.after, &b.before)));
        for o in obs {
            let chip = o
                .chip
                .as_ref()
                .and_then(|c| {
                    let p = Path::new(run_dirs.get(&o.run_id)?).join(c);
                    std::fs::read(p).ok()
                })
                .map(|png| format!("<img src=\"data:image/png;base64,{}\">", base64(&png)))
                .unwrap_or_default();
            let _ = write!(
                hrows,
                "<tr><td>{} &rarr; {}</td><td>{:.0} m&sup2;</td><td>{:.2}</td><td>{}</td><td>{}</td></tr>",
                escape(&o.before),
                escape(&o.after),
                o.area,
                o.score,
                escape(&o.note),
                chip
            );
        }
        let extra = match (s.merged_into, s.split_from) {
            (Some(m), _) => format!("<br>merged into {m}"),
            (_, Some(p)) => format!("<br>split from {p}"),
            _ => String::new(),
        };
        let _ = write!(
            h,
            "<tr class=\"{}\" id=\"site-{}\"><td>{}{}</td><td>{}{}</td><td>{}</td><td>{} ({})</td><td>{}</td>\
             <td>{} &ndash; {}</td><td>{}</td><td>{}</td><td>{:.0} &rarr; {:.0}</td><td>{:.2}</td>\
             <td>{}</td><td><table class=\"hist\">{}</table></td></tr>",
            escape(&s.review),
            s.site_id,
            s.site_id,
            extra,
            escape(&s.review),
            reviewer(by),
            escape(&s.status),
            escape(&s.confidence),
            s.confirmations,
            escape(&s.kind),
            escape(&s.appeared_after),
            escape(&s.appeared_by),
            escape(&s.first_seen),
            escape(&s.last_seen),
            s.area_first_m2,
            s.area_m2,
            s.best_score,
            escape(note),
            hrows
        );
    }
    h.push_str("</table>");
    write_compounds(&mut h, &compounds);
    h.push_str("</body></html>\n");
    std::fs::create_dir_all(out).map_err(|e| Error::output(out, e))?;
    let path = out.join("register.html");
    let tmp = out.join(".register.html.partial");
    std::fs::write(&tmp, h).map_err(|e| Error::output(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::output(&path, e))?;
    Ok(path)
}
