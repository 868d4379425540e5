//! sites.csv: one row per site in rank order (RFC 4180 quoting), with
//! `lon`/`lat` columns for the centroid so GIS tools and spreadsheets place
//! the sites directly, then the same fields as the GeoJSON properties
//! (reasons joined with "; ") and every feature as its own column.

use super::{feature_pairs, nearest_watch, round, Context, Sink};
use crate::error::Result;
use std::fmt::Write as _;
use std::path::Path;

/// Quotes a field when it holds a comma, quote or line break.
pub fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\"").replace(['\n', '\r'], " "))
    } else {
        s.to_string()
    }
}

pub fn write(path: &Path, ctx: &Context) -> Result<()> {
    let mut out = Sink::create(path)?;
    let head = [
        "id",
        "rank",
        "kind",
        "score",
        "lon",
        "lat",
        "area_m2",
        "before_date",
        "after_date",
        "watch_name",
        "watch_distance_m",
        "chip",
        "reasons",
    ];
    // Columns from a site with every optional feature, so all rows align.
    let feat_names: Vec<&str> = feature_pairs(&empty_site())
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let header: Vec<&str> = head
        .iter()
        .copied()
        .chain(feat_names.iter().copied())
        .collect();
    let _ = writeln!(out, "{}", header.join(","));
    out.write_each(ctx.sites, |out, _, s| {
        let (wn, wd) = match nearest_watch(s) {
            Some((n, d)) => (n.to_string(), d.to_string()),
            None => (String::new(), String::new()),
        };
        let chip = if (s.rank as usize) <= ctx.opts.chips {
            format!("chips/{}.png", s.id)
        } else {
            String::new()
        };
        let mut row = vec![
            s.id.to_string(),
            s.rank.to_string(),
            s.kind.name().to_string(),
            round(s.score, 4).to_string(),
            round(s.lon, 7).to_string(),
            round(s.lat, 7).to_string(),
            round(s.area_m2, 1).to_string(),
            ctx.scene.before_date.clone().unwrap_or_default(),
            ctx.scene.after_date.clone().unwrap_or_default(),
            field(&wn),
            wd,
            chip,
            field(&s.reasons.join("; ")),
        ];
        let by_name: std::collections::HashMap<&str, f64> = feature_pairs(s).into_iter().collect();
        for n in &feat_names {
            row.push(by_name.get(n).map(|v| v.to_string()).unwrap_or_default());
        }
        let _ = writeln!(out, "{}", row.join(","));
    });
    out.finish()
}

/// A site with every optional feature present, for the header.
pub(crate) fn empty_site() -> crate::sites::Site {
    crate::sites::Site {
        id: 0,
        rank: 0,
        kind: crate::sites::classify::Kind::Other,
        score: 0.0,
        reasons: Vec::new(),
        area_m2: 0.0,
        pixels: 0,
        lon: 0.0,
        lat: 0.0,
        x: 0.0,
        y: 0.0,
        bbox_px: [0; 4],
        bbox_lonlat: [0.0; 4],
        mean_score: Some(0.0),
        max_score: Some(0.0),
        shape: Default::default(),
        spectral: Default::default(),
        watch: Vec::new(),
        decimation: 1,
        outline_px: Vec::new(),
        outline_lonlat: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a, b"), "\"a, b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
