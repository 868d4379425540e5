//! The whole register as one self-contained HTML page: every site,
//! unreviewed first, with its history over the runs (dates, area, score)
//! and the chip each run made of it, embedded as a data URI when the run's
//! folder still holds it.

use super::gpkg::{self, get_f64, get_i64, get_str};
use super::status::UNREVIEWED;
use crate::error::{gdal_msg, Error, Result};
use crate::sites::export::kml::escape;
use crate::sites::export::report::base64;
use gdal::vector::LayerAccess;
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
    let mut h = String::new();
    let unreviewed = sites.iter().filter(|s| s.0.review == UNREVIEWED).count();
    let _ = write!(
        h,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>dunewatch register</title>\
         <style>body{{font-family:sans-serif;margin:1em}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:3px 6px;font-size:13px;vertical-align:top}}\
         .hist td{{border:none;padding:1px 4px}}img{{width:96px;image-rendering:pixelated}}\
         .unreviewed{{background:#fff8e0}}</style></head><body>\
         <h1>Site register</h1><p>{} &middot; {} sites, {} unreviewed &middot; {} runs, \
         latest comparison to {}</p><table><tr><th>site</th><th>review</th><th>status</th>\
         <th>confidence</th><th>kind</th><th>appeared</th><th>first seen</th><th>last seen</th>\
         <th>area m&sup2; (first &rarr; now)</th><th>best score</th><th>note</th><th>history</th></tr>",
        escape(&register.display().to_string()),
        sites.len(),
        unreviewed,
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
            "<tr class=\"{}\"><td>{}{}</td><td>{}{}</td><td>{}</td><td>{} ({})</td><td>{}</td>\
             <td>{} &ndash; {}</td><td>{}</td><td>{}</td><td>{:.0} &rarr; {:.0}</td><td>{:.2}</td>\
             <td>{}</td><td><table class=\"hist\">{}</table></td></tr>",
            escape(&s.review),
            s.site_id,
            extra,
            escape(&s.review),
            if by.is_empty() {
                String::new()
            } else {
                format!("<br>{}", escape(by))
            },
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
    h.push_str("</table></body></html>\n");
    std::fs::create_dir_all(out).map_err(|e| Error::output(out, e))?;
    let path = out.join("register.html");
    let tmp = out.join(".register.html.partial");
    std::fs::write(&tmp, h).map_err(|e| Error::output(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::output(&path, e))?;
    Ok(path)
}
