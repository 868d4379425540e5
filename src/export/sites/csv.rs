//! sites.csv: one row per site in rank order (RFC 4180 quoting), with
//! `lon`/`lat` columns for the centroid so GIS tools and spreadsheets place
//! the sites directly, then the same fields as the GeoJSON properties
//! (reasons joined with "; ") and every feature as its own column.

use super::decimal::Decimal;
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

/// The columns, in order.
pub fn header() -> Vec<&'static str> {
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
    head.iter()
        .copied()
        .chain(feat_names.iter().copied())
        .collect()
}

/// Each column's OGR type, for sites.csvt.
pub fn column_types() -> Vec<&'static str> {
    header()
        .into_iter()
        .map(|c| match c {
            "id" | "rank" | "pixels" | "valid_pixels" | "decimation" => "Integer",
            c if c.starts_with("bbox_col") || c.starts_with("bbox_row") => "Integer",
            "kind" | "watch_name" | "chip" | "reasons" => "String",
            "before_date" | "after_date" => "Date",
            _ => "Real",
        })
        .collect()
}

pub fn write(path: &Path, ctx: &Context) -> Result<()> {
    let mut out = Sink::create(path)?;
    let header = header();
    // The features follow the 13 fixed columns.
    let feat_names = &header[13..];
    let _ = writeln!(out, "{}", header.join(","));
    let (before_date, after_date) = (
        ctx.scene.before_date.as_deref().unwrap_or_default(),
        ctx.scene.after_date.as_deref().unwrap_or_default(),
    );
    // Fields written straight into the row: a full tile's tens of thousands
    // of sites made the CSV mostly allocation when each was its own String.
    out.write_each(ctx.sites, |out, _, s| {
        let _ = write!(
            out,
            "{},{},{},{},{},{},{},{before_date},{after_date},",
            s.id,
            s.rank,
            s.kind.name(),
            Decimal(round(s.score, 4)),
            Decimal(round(s.lon, 7)),
            Decimal(round(s.lat, 7)),
            Decimal(round(s.area_m2, 1)),
        );
        if let Some((n, d)) = nearest_watch(s) {
            let _ = write!(out, "{},{d}", field(n));
        } else {
            out.push(',');
        }
        out.push(',');
        if (s.rank as usize) <= ctx.opts.chips {
            let _ = write!(out, "chips/{}.png", s.id);
        }
        let _ = write!(out, ",{}", field(&s.reasons.join("; ")));
        // A site's features are the header's in the same order, some
        // optional ones left out: those columns stay empty.
        let mut have = feature_pairs(s).into_iter().peekable();
        for n in feat_names {
            out.push(',');
            if let Some((_, v)) = have.next_if(|(k, _)| k == n) {
                let _ = write!(out, "{}", Decimal(v));
            }
        }
        debug_assert!(have.next().is_none(), "features out of the header's order");
        out.push('\n');
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
