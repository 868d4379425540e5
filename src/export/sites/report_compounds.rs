//! The report's compounds: a table at the top of report.html, one row per
//! compound in rank order (`tr.compound`, id `compound-<id>`), with its
//! members linked to their rows in the sites table, the counts by kind,
//! the areas, the reasons, links to web maps and its chip.

use super::chips::Chip;
use super::image::format_metres;
use super::kml::escape;
use super::report::base64;
use super::Context;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

/// Compounds listed in the report (all are in compounds.geojson and .csv).
pub const ROWS: usize = 50;

pub fn section(o: &mut String, ctx: &Context, chips: &[Chip]) {
    let chip_of: HashMap<u32, &Chip> = chips.iter().map(|c| (c.id, c)).collect();
    let listed_sites: HashSet<u32> = ctx
        .sites
        .iter()
        .take(ctx.opts.report_rows)
        .map(|s| s.id)
        .collect();
    let _ = writeln!(o, "<h2>Candidate compounds</h2>");
    if ctx.compounds.is_empty() {
        let _ = writeln!(
            o,
            "<p class=\"muted\" id=\"no-compounds\">No compounds: no two man-made sites within {:.0} m of each other.</p>",
            ctx.opts.compound_distance_m
        );
        return;
    }
    let listed = ctx.compounds.len().min(ROWS);
    let _ = writeln!(
        o,
        "<p class=\"muted\">Sites within {:.0} m of each other grouped, with the roads and tracks that reach them; ranked by base-likeness. {}</p>",
        ctx.opts.compound_distance_m,
        if listed < ctx.compounds.len() {
            format!(
                "The top {listed} of {}; all are in compounds.geojson and compounds.csv.",
                ctx.compounds.len()
            )
        } else {
            String::new()
        }
    );
    let _ = writeln!(o, "<table id=\"compounds\"><thead><tr><th>Rank</th><th>Compound</th><th>Base-likeness (0–1)</th><th>Sites</th><th>Changed area (m²)</th><th>Outline area (ha)</th><th>Centre (lon, lat)</th><th>Reasons; chip: before | after | change</th></tr></thead><tbody>");
    for c in ctx.compounds.iter().take(listed) {
        let kinds: Vec<String> = c
            .by_kind
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| format!("{n} {}", k.replace('_', " ")))
            .collect();
        let members: Vec<String> = c
            .members
            .iter()
            .map(|m| {
                if listed_sites.contains(m) {
                    format!("<a href=\"#site-{m}\">{m}</a>")
                } else {
                    m.to_string()
                }
            })
            .collect();
        let reasons: String = c
            .reasons
            .iter()
            .map(|r| format!("<li>{}</li>", escape(r)))
            .collect();
        let chip = match chip_of.get(&c.id) {
            Some(ch) => format!(
                "<img class=\"chip compound\" alt=\"compound {} chip\" src=\"data:image/png;base64,{}\"><span class=\"muted\">scale bar {}</span>",
                c.id,
                base64(&ch.png),
                format_metres(ch.scale_bar_m)
            ),
            None => String::new(),
        };
        let _ = writeln!(
            o,
            "<tr class=\"compound\" id=\"compound-{id}\"><td class=\"num\">{rank}</td><td class=\"num\">{id}</td><td class=\"num\">{score:.3}</td><td>{kinds}<br><span class=\"muted\">sites {members}</span></td><td class=\"num\">{area:.0}</td><td class=\"num\">{hull:.1}</td><td class=\"num\">{lon:.6}, {lat:.6}<br>{links}</td><td><ul class=\"reasons\">{reasons}</ul>{chip}</td></tr>",
            id = c.id,
            rank = c.rank,
            score = c.score,
            kinds = kinds.join(", "),
            members = members.join(", "),
            area = c.area_m2,
            hull = c.hull_area_m2 / 10_000.0,
            lon = c.lon,
            lat = c.lat,
            links = super::links::html(c.lat, c.lon),
        );
    }
    let _ = writeln!(o, "</tbody></table>");
}
