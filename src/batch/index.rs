//! The batch's own outputs, rebuilt from what the output folder holds after
//! every batch invocation (so the last machine to finish leaves an index of
//! all shards; `dunewatch batch --index-only` rebuilds it any time):
//!
//! - `batch.csv`: one row per pair of the list: status (done, failed,
//!   pending), dates, grid size, changed pixels, sites by kind, run time,
//!   error;
//! - `sites.geojson` and `sites.csv`: the sites of every finished pair in one
//!   layer, each pair's sites in rank order, with a `pair` property/column;
//!   ids become `<pair>/<id>` and chip paths point into the pair's folder; a
//!   site seen by several pairs of the same dates (overlapping tiles) is
//!   there once, as its best observation, with every pair that saw it in
//!   `pairs` ([`super::regional`]);
//! - `index.html`: the table of pairs, linking each pair's report.
//!
//! Each file is written to a temporary name and renamed into place.

use super::regional::{self, Regional};
use super::{state, write_atomic, Pair, PairState};
use crate::error::{Error, Result};
use crate::sites::export::csv::field;
use crate::sites::export::kml::escape;
use serde_json::Value;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

pub const INDEX_CSV: &str = "batch.csv";
pub const INDEX_HTML: &str = "index.html";
pub const SITES_GEOJSON: &str = "sites.geojson";
pub const SITES_CSV: &str = "sites.csv";

/// Kinds of site, in the order of the index's columns.
const KINDS: [&str; 6] = [
    "structure",
    "linear",
    "vegetation",
    "water",
    "cloud_or_haze",
    "other",
];

/// What the index found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct IndexSummary {
    pub done: usize,
    pub failed: usize,
    pub pending: usize,
    /// Sites of the finished pairs (those that ran the sites step).
    pub sites: usize,
    /// Of those, observations of a site another pair saw better: the
    /// merged layer holds `sites - merged` sites.
    pub merged: usize,
}

struct Row<'a> {
    pair: &'a Pair,
    state: PairState,
    run: Option<Value>,
}

impl Row<'_> {
    fn status(&self) -> &'static str {
        match self.state {
            PairState::Done => "done",
            PairState::Failed(_) => "failed",
            PairState::Pending => "pending",
        }
    }
    fn sites(&self) -> Option<u64> {
        self.run.as_ref()?["sites"]["sites"].as_u64()
    }
}

/// Rewrites the index files of `out` for `pairs`.
pub fn write_index(out: &Path, pairs: &[Pair]) -> Result<IndexSummary> {
    let mut rows = Vec::with_capacity(pairs.len());
    for pair in pairs {
        let state = state(out, pair).unwrap_or_else(|e| PairState::Failed(e.to_string()));
        let run = match state {
            PairState::Done => {
                let p = super::run_dir(out, pair).join(crate::run::RUN_FILE);
                let text = std::fs::read_to_string(&p).map_err(|e| Error::input(&p, e))?;
                Some(
                    serde_json::from_str(&text)
                        .map_err(|e| Error::input(&p, format!("not a dunewatch run.json: {e}")))?,
                )
            }
            _ => None,
        };
        rows.push(Row { pair, state, run });
    }
    let mut s = IndexSummary::default();
    for r in &rows {
        match r.state {
            PairState::Done => s.done += 1,
            PairState::Failed(_) => s.failed += 1,
            PairState::Pending => s.pending += 1,
        }
        s.sites += r.sites().unwrap_or(0) as usize;
    }
    write_atomic(&out.join(INDEX_CSV), index_csv(&rows).as_bytes())?;
    let layer = regional_layer(out, &rows)?;
    s.merged = layer.merged();
    merge_geojson(out, &rows, &layer)?;
    merge_csv(out, &rows, &layer)?;
    write_atomic(&out.join(INDEX_HTML), index_html(&rows, &s).as_bytes())?;
    Ok(s)
}

fn num(v: &Value) -> String {
    match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => field(s),
        _ => String::new(),
    }
}

fn index_csv(rows: &[Row]) -> String {
    let mut t = String::from(
        "name,status,before,after,before_date,after_date,width,height,\
         changed_px,changed_percent,sites",
    );
    for k in KINDS {
        let _ = write!(t, ",{k}");
    }
    t.push_str(",seconds,run_dir,error\n");
    for r in rows {
        let p = r.pair;
        let _ = write!(
            t,
            "{},{},{},{}",
            field(&p.name),
            r.status(),
            field(&p.before.to_string_lossy()),
            field(&p.after.to_string_lossy())
        );
        let null = Value::Null;
        let run = r.run.as_ref().unwrap_or(&null);
        let pct = run["detect"]["pixels"]["changed_fraction"]
            .as_f64()
            .map(|f| format!("{:.3}", 100.0 * f))
            .unwrap_or_default();
        let seconds = run["timings_s"]["total"]
            .as_f64()
            .map(|d| d + run["sites"]["timings_s"]["total"].as_f64().unwrap_or(0.0));
        let _ = write!(
            t,
            ",{},{},{},{},{},{},{}",
            num(&run["before"]["date"]),
            num(&run["after"]["date"]),
            num(&run["grid"]["width"]),
            num(&run["grid"]["height"]),
            num(&run["detect"]["pixels"]["changed"]),
            pct,
            num(&run["sites"]["sites"]),
        );
        for k in KINDS {
            let _ = write!(t, ",{}", num(&run["sites"]["by_kind"][k]));
        }
        let err = match &r.state {
            PairState::Failed(m) => field(m),
            _ => String::new(),
        };
        let _ = writeln!(
            t,
            ",{},{},{err}",
            seconds.map(|s| format!("{s:.1}")).unwrap_or_default(),
            field(&p.name),
        );
    }
    t
}

/// Opens a temporary file beside `path` for a streamed write.
struct Streamed {
    tmp: std::path::PathBuf,
    path: std::path::PathBuf,
    w: std::io::BufWriter<std::fs::File>,
}

impl Streamed {
    fn create(path: &Path) -> Result<Streamed> {
        let tmp = super::temp_beside(path);
        let f = std::fs::File::create(&tmp).map_err(|e| Error::output(path, e))?;
        Ok(Streamed {
            tmp,
            path: path.to_path_buf(),
            w: std::io::BufWriter::new(f),
        })
    }
    fn put(&mut self, s: &str) -> Result<()> {
        self.w
            .write_all(s.as_bytes())
            .map_err(|e| Error::output(&self.path, e))
    }
    fn finish(mut self) -> Result<()> {
        self.w.flush().map_err(|e| Error::output(&self.path, e))?;
        std::fs::rename(&self.tmp, &self.path)
            .map_err(|e| Error::output(&self.path, format!("cannot move into place: {e}")))
    }
}

impl Drop for Streamed {
    fn drop(&mut self) {
        // After a successful finish the temporary name no longer exists.
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// Sites of the finished pairs that wrote `name`, one pair at a time, with
/// the pair's row.
fn site_files<'a>(
    out: &'a Path,
    rows: &'a [Row],
    name: &'a str,
) -> impl Iterator<Item = (usize, &'a Pair, std::path::PathBuf)> + 'a {
    rows.iter()
        .enumerate()
        .filter(|(_, r)| r.state == PairState::Done && r.sites().is_some())
        .map(move |(i, r)| (i, r.pair, super::run_dir(out, r.pair).join(name)))
        .filter(|(_, _, p)| p.is_file())
}

/// Matches the finished pairs' sites across pairs (pairs by row).
fn regional_layer(out: &Path, rows: &[Row]) -> Result<Regional> {
    let mut obs = Vec::new();
    for (i, _, file) in site_files(out, rows, SITES_GEOJSON) {
        obs.extend(regional::read_observations(i, &file)?);
    }
    Ok(Regional::build(&obs))
}

/// The names of the pairs (by row) that saw a site.
fn pair_names<'a>(rows: &'a [Row], seen: &'a [usize]) -> impl Iterator<Item = &'a str> + 'a {
    seen.iter().map(|&i| rows[i].pair.name.as_str())
}

fn merge_geojson(out: &Path, rows: &[Row], layer: &Regional) -> Result<()> {
    #[derive(serde::Deserialize)]
    struct Collection {
        #[serde(default)]
        bbox: Option<[f64; 4]>,
        features: Vec<Box<serde_json::value::RawValue>>,
    }
    let path = out.join(SITES_GEOJSON);
    let mut w = Streamed::create(&path)?;
    let mut bbox: Option<[f64; 4]> = None;
    let mut first = true;
    w.put("{\"type\":\"FeatureCollection\",\"features\":[")?;
    for (row, pair, file) in site_files(out, rows, SITES_GEOJSON) {
        // One pair's collection at a time: memory follows the largest pair.
        let text = std::fs::read_to_string(&file).map_err(|e| Error::input(&file, e))?;
        let fc: Collection = serde_json::from_str(&text)
            .map_err(|e| Error::input(&file, format!("not a sites GeoJSON: {e}")))?;
        if let Some(b) = fc.bbox {
            bbox = Some(match bbox {
                None => b,
                Some(a) => [
                    a[0].min(b[0]),
                    a[1].min(b[1]),
                    a[2].max(b[2]),
                    a[3].max(b[3]),
                ],
            });
        }
        for raw in fc.features {
            let mut f: Value = serde_json::from_str(raw.get())
                .map_err(|e| Error::input(&file, format!("not a sites GeoJSON: {e}")))?;
            let id = f["properties"]["id"].clone();
            // Another pair's observation of this site is kept instead.
            let Some(seen) = layer.seen_by(row, &regional::id_text(&id)) else {
                continue;
            };
            if let Some(p) = f["properties"].as_object_mut() {
                if let Some(Value::String(c)) = p.get("chip") {
                    let c = format!("{}/{c}", pair.name);
                    p.insert("chip".into(), Value::String(c));
                }
                p.insert("pair".into(), Value::String(pair.name.clone()));
                let names = pair_names(rows, &seen).map(|n| Value::String(n.into()));
                p.insert("pairs".into(), Value::Array(names.collect()));
            }
            f["id"] = Value::String(format!("{}/{}", pair.name, num(&id)));
            w.put(if first { "\n" } else { ",\n" })?;
            first = false;
            w.put(&f.to_string())?;
        }
    }
    w.put("\n]")?;
    if let Some(b) = bbox {
        w.put(&format!(",\"bbox\":[{},{},{},{}]", b[0], b[1], b[2], b[3]))?;
    }
    w.put("}\n")?;
    w.finish()
}

fn merge_csv(out: &Path, rows: &[Row], layer: &Regional) -> Result<()> {
    let path = out.join(SITES_CSV);
    let mut w = Streamed::create(&path)?;
    let mut head: Option<String> = None;
    let mut chip_col = None;
    let mut id_col = None;
    for (row, pair, file) in site_files(out, rows, SITES_CSV) {
        let text = std::fs::read_to_string(&file).map_err(|e| Error::input(&file, e))?;
        let mut lines = text.lines();
        let h = lines.next().unwrap_or("");
        match &head {
            None => {
                // Quoted fields never hold a comma in the header.
                chip_col = h.split(',').position(|c| c == "chip");
                id_col = h.split(',').position(|c| c == "id");
                w.put(&format!("pair,{h},pairs\n"))?;
                head = Some(h.to_string());
            }
            Some(first) if first != h => {
                return Err(Error::input(
                    &file,
                    "has other columns than the other pairs' sites.csv (runs of another dunewatch version?): run `dunewatch sites` on it again",
                ))
            }
            Some(_) => {}
        }
        let name = field(&pair.name);
        for line in lines {
            let seen = match id_col {
                Some(c) => layer.seen_by(row, &nth_field(line, c)),
                None => Some(vec![row]),
            };
            // Another pair's observation of this site is kept instead.
            let Some(seen) = seen else { continue };
            let line = match chip_col {
                Some(c) => prefix_field(line, c, &format!("{}/", pair.name)),
                None => line.to_string(),
            };
            let pairs = pair_names(rows, &seen).collect::<Vec<_>>().join(";");
            w.put(&format!("{name},{line},{pairs}\n"))?;
        }
    }
    if head.is_none() {
        w.put("pair\n")?;
    }
    w.finish()
}

/// Field `col` of an RFC 4180 row, unquoted.
fn nth_field(line: &str, col: usize) -> String {
    let (mut i, mut quoted, mut f) = (0usize, false, String::new());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                if i == col {
                    f.push('"');
                }
            }
            '"' => quoted = !quoted,
            ',' if !quoted => {
                if i == col {
                    break;
                }
                i += 1;
            }
            _ if i == col => f.push(c),
            _ => {}
        }
    }
    f
}

/// `line` with `prefix` put before field `col` when that field is not empty
/// (RFC 4180 fields; rows written by sites.csv hold no line breaks).
fn prefix_field(line: &str, col: usize, prefix: &str) -> String {
    let mut out = String::with_capacity(line.len() + prefix.len());
    let (mut i, mut quoted, mut at_start) = (0usize, false, true);
    for c in line.chars() {
        if at_start && i == col && c != ',' {
            out.push_str(prefix);
        }
        at_start = false;
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                i += 1;
                at_start = true;
            }
            _ => {}
        }
        out.push(c);
    }
    out
}

fn index_html(rows: &[Row], s: &IndexSummary) -> String {
    let mut h = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>dunewatch batch</title>\n\
         <style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}\
         td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}\
         .failed{color:#b00}.pending{color:#888}</style></head><body>\n",
    );
    let _ = writeln!(
        h,
        "<h1>dunewatch batch</h1>\n<p>{} pairs: {} done, {} failed, {} pending; {} sites. \
         All sites in one layer: <a href=\"{SITES_GEOJSON}\">{SITES_GEOJSON}</a>, \
         <a href=\"{SITES_CSV}\">{SITES_CSV}</a>; this table as <a href=\"{INDEX_CSV}\">{INDEX_CSV}</a>.</p>",
        rows.len(),
        s.done,
        s.failed,
        s.pending,
        s.sites
    );
    h.push_str("<table>\n<tr><th>pair</th><th>status</th><th>before</th><th>after</th><th>changed %</th><th>sites</th>");
    for k in KINDS {
        let _ = write!(h, "<th>{k}</th>");
    }
    h.push_str("<th>s</th></tr>\n");
    let null = Value::Null;
    for r in rows {
        let run = r.run.as_ref().unwrap_or(&null);
        let name = escape(&r.pair.name);
        let link = if run["sites"].is_object() {
            format!("<a href=\"{name}/report.html\">{name}</a>")
        } else {
            name.clone()
        };
        let status = match &r.state {
            PairState::Failed(m) => {
                format!("<span title=\"{}\">failed: {}</span>", escape(m), escape(m))
            }
            _ => r.status().to_string(),
        };
        let cell = |v: &Value| escape(&num(v).replace('"', ""));
        let _ = write!(
            h,
            "<tr class=\"{}\"><td>{link}</td><td>{status}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
            r.status(),
            cell(&run["before"]["date"]),
            cell(&run["after"]["date"]),
            run["detect"]["pixels"]["changed_fraction"]
                .as_f64()
                .map(|f| format!("{:.2}", 100.0 * f))
                .unwrap_or_default(),
            cell(&run["sites"]["sites"]),
        );
        for k in KINDS {
            let _ = write!(h, "<td>{}</td>", cell(&run["sites"]["by_kind"][k]));
        }
        let secs = run["timings_s"]["total"]
            .as_f64()
            .map(|d| {
                format!(
                    "{:.0}",
                    d + run["sites"]["timings_s"]["total"].as_f64().unwrap_or(0.0)
                )
            })
            .unwrap_or_default();
        let _ = writeln!(h, "<td>{secs}</td></tr>");
    }
    h.push_str("</table>\n</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chip_paths_get_the_pair_folder() {
        assert_eq!(
            prefix_field("1,2,chips/1.png,x", 2, "p/"),
            "1,2,p/chips/1.png,x"
        );
        assert_eq!(
            prefix_field("1,\"a,b\",chips/1.png", 2, "p/"),
            "1,\"a,b\",p/chips/1.png"
        );
        assert_eq!(prefix_field("1,2,,x", 2, "p/"), "1,2,,x");
        assert_eq!(prefix_field("chips/1.png,2", 0, "p/"), "p/chips/1.png,2");
    }

    #[test]
    fn fields_of_a_row() {
        assert_eq!(nth_field("12,3,x", 0), "12");
        assert_eq!(nth_field("12,\"a,\"\"b\"\"\",x", 1), "a,\"b\"");
        assert_eq!(nth_field("12,\"a,b\",x", 2), "x");
        assert_eq!(nth_field("12", 3), "");
    }
}
