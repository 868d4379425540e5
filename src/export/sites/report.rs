//! report.html: one self-contained page for analysts that opens offline (no
//! scripts, fonts or images fetched: the overview and the chips are PNG
//! data URIs). It holds the scene summary (dates, area, cloud-masked and
//! changed fractions from run.json, counts by kind), an overview map of the
//! after scene with every site outlined in its kind's colour and the top
//! sites numbered by rank, and a table of sites sorted by structure score
//! with chip, coordinates, area, kind and reasons (one `tr.site` row per
//! listed site).

use super::chips::{true_colour, Chip};
use super::image::{enlarge, format_metres, nice_length, text_width, Canvas};
use super::kml::escape;
use super::Context;
use crate::align::{SceneReader, Window};
use crate::error::{Error, Result};
use crate::sites::classify::KINDS;
use crate::sites::pixel_metres;
use crate::sites::scenes::Scenes;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

/// Longest side of the overview image, PNG pixels.
const OVERVIEW: usize = 960;
/// Sites numbered on the overview.
const NUMBERED: usize = 30;

/// Standard base64 (RFC 4648) with padding.
pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        s.push(T[(n >> 18) as usize & 63] as char);
        s.push(T[(n >> 12) as usize & 63] as char);
        s.push(if c.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        s.push(if c.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    s
}

/// The after scene with site outlines and rank numbers.
pub fn overview(ctx: &Context, scenes: &Scenes) -> Result<(Canvas, f64)> {
    let g = &ctx.run.grid;
    let long = g.width.max(g.height);
    let d = long.div_ceil(OVERVIEW).max(1);
    let shape = (g.width.div_ceil(d), g.height.div_ceil(d));
    let mut reader = SceneReader::new(&scenes.pair);
    let (_, after) = true_colour(
        &mut reader,
        scenes,
        Window {
            x: 0,
            y: 0,
            w: g.width,
            h: g.height,
        },
        shape,
    )?;
    let k = if long < OVERVIEW / 2 {
        OVERVIEW / long
    } else {
        1
    };
    let mut c = enlarge(&after, k);
    let sc = c.w as f64 / g.width as f64;
    // Dim the scene so outlines stand out.
    for v in c.data.iter_mut() {
        *v = (*v as f32 * 0.8) as u8;
    }
    for s in ctx.sites.iter().rev() {
        let rings: Vec<Vec<(f64, f64)>> = s
            .outline_px
            .iter()
            .flatten()
            .map(|r| r.iter().map(|&(x, y)| (x * sc, y * sc)).collect())
            .collect();
        c.rings(
            &rings,
            s.kind.colour(),
            if s.rank as usize <= NUMBERED { 2 } else { 1 },
        );
    }
    for s in ctx.sites.iter().take(NUMBERED) {
        let [c0, r0, c1, _] = s.bbox_px;
        let label = s.rank.to_string();
        let x = ((c0 + c1 + 1) as f64 / 2.0 * sc) as i64 - text_width(&label, 2) / 2;
        let y = (r0 as f64 * sc) as i64 - 14;
        c.text(x, y.max(2), &label, 2, [255, 255, 255]);
    }
    let mid = g.pixel_center(0.0, g.height as f64 / 2.0).1;
    let (mx, _) = pixel_metres(g, if g.is_geographic() { mid } else { 0.0 });
    let m_per_px = mx / sc;
    let bar = nice_length(0.25 * c.w as f64 * m_per_px);
    c.scale_bar(10, c.h as i64 - 10, bar, m_per_px);
    Ok((c, bar))
}

fn pct(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |f| format!("{:.2}%", 100.0 * f))
}

const CSS: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px;color:#1d1d22;background:#fafafa}\
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:22px 0 8px}.muted{color:#666}\
table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:6px 8px;text-align:left;vertical-align:top;font-size:13px}\
th{background:#eceef2;position:sticky;top:0}table.summary td:first-child{color:#555;width:190px}\
.kind{display:inline-block;padding:1px 7px;border-radius:9px;color:#fff;font-size:12px;white-space:nowrap}\
.swatch{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:5px;vertical-align:-1px}\
img.chip{width:auto;max-width:640px;image-rendering:pixelated;display:block;margin-top:6px}img.overview{max-width:100%;image-rendering:pixelated;border:1px solid #ccc}\
ul.reasons{margin:0;padding-left:16px}td.num{text-align:right;font-variant-numeric:tabular-nums}";

/// Writes the report; `chips` are embedded for the sites that have one.
/// The report's overview image: PNG bytes and the scale bar's length in
/// metres. Apart from [`write()`], so it can be drawn while the chips and
/// the text files are written.
pub fn overview_png(ctx: &Context, scenes: &Scenes) -> Result<(Vec<u8>, f64)> {
    let (ov, ov_bar) = overview(ctx, scenes)?;
    let png = ov.png(&[
        ("Title", "dunewatch overview".to_string()),
        ("Scale", format!("scale bar {}", format_metres(ov_bar))),
    ])?;
    Ok((png, ov_bar))
}

/// Writes report.html, given the overview ([`overview_png`]) and the chips.
pub fn write(
    path: &Path,
    ctx: &Context,
    (ov_png, ov_bar): (Vec<u8>, f64),
    compound_chips: &[Chip],
    chips: &[Chip],
) -> Result<()> {
    let sc = ctx.scene;
    let chip_of: HashMap<u32, &Chip> = chips.iter().map(|c| (c.id, c)).collect();
    let dates = format!(
        "{} → {}",
        sc.before_date.as_deref().unwrap_or("?"),
        sc.after_date.as_deref().unwrap_or("?")
    );

    let mut o = String::new();
    let _ = write!(o, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>dunewatch sites {}</title><style>{CSS}</style></head><body>\n", escape(&dates));
    let _ = writeln!(o, "<h1>New sites, {}</h1>", escape(&dates));
    let _ = writeln!(
        o,
        "<p class=\"muted\">dunewatch {} · run folder {}</p>",
        crate::VERSION,
        escape(&ctx.run.dir.display().to_string())
    );

    super::report_compounds::section(&mut o, ctx, compound_chips);

    let _ = writeln!(o, "<h2>Scene</h2><table class=\"summary\" id=\"summary\">");
    let rows: Vec<(&str, String)> = vec![
        (
            "Before",
            format!(
                "{} ({})",
                sc.before_date.as_deref().unwrap_or("date unknown"),
                sc.before.display()
            ),
        ),
        (
            "After",
            format!(
                "{} ({})",
                sc.after_date.as_deref().unwrap_or("date unknown"),
                sc.after.display()
            ),
        ),
        (
            "Area",
            format!(
                "{:.1} km² ({} × {} pixels of {:.1} × {:.1} m)",
                sc.area_km2, sc.width, sc.height, sc.pixel_size_m[0], sc.pixel_size_m[1]
            ),
        ),
        (
            "Extent (lon/lat)",
            format!(
                "{:.5}, {:.5} to {:.5}, {:.5}",
                sc.bounds_lonlat[0], sc.bounds_lonlat[1], sc.bounds_lonlat[2], sc.bounds_lonlat[3]
            ),
        ),
        ("Cloud-masked", pct(sc.cloud_masked_fraction)),
        ("Changed (of compared)", pct(sc.changed_fraction)),
        ("Minimum site area", format!("{:.0} m²", sc.min_area_m2)),
        ("Sites", ctx.sites.len().to_string()),
    ];
    for (k, v) in rows {
        let _ = writeln!(o, "<tr><td>{}</td><td>{}</td></tr>", escape(k), escape(&v));
    }
    let _ = writeln!(o, "</table>");

    let _ = writeln!(o, "<h2>Sites by kind</h2><p id=\"kinds\">");
    for k in KINDS {
        let c = k.colour();
        let _ = write!(
            o,
            "<span style=\"margin-right:16px\"><span class=\"swatch\" style=\"background:rgb({},{},{})\"></span>{} <b>{}</b></span>",
            c[0],
            c[1],
            c[2],
            k.name().replace('_', " "),
            ctx.by_kind.get(k.name()).copied().unwrap_or(0)
        );
    }
    let _ = writeln!(o, "</p>");

    let _ = writeln!(
        o,
        "<h2>Overview</h2><p class=\"muted\">After scene, sites outlined by kind, top {} numbered by rank; scale bar {}.</p><img class=\"overview\" alt=\"overview map\" src=\"data:image/png;base64,{}\">",
        NUMBERED.min(ctx.sites.len()),
        format_metres(ov_bar),
        base64(&ov_png)
    );
    // The numbers on the map, linked to their rows.
    let listed = ctx.sites.len().min(ctx.opts.report_rows);
    let numbered: Vec<String> = ctx
        .sites
        .iter()
        .take(NUMBERED.min(listed))
        .map(|s| format!("<a href=\"#site-{}\">{}</a>", s.id, s.rank))
        .collect();
    if !numbered.is_empty() {
        let _ = writeln!(
            o,
            "<p id=\"numbered\" class=\"muted\">Numbered on the map: {}</p>",
            numbered.join(" · ")
        );
    }

    let _ = writeln!(o, "<h2>Sites by structure score</h2>");
    if listed < ctx.sites.len() {
        let _ = writeln!(o, "<p class=\"muted\">The top {listed} of {} sites; all are in sites.geojson, sites.csv and sites.kml.</p>", ctx.sites.len());
    }
    super::report_table::controls(&mut o);
    let _ = writeln!(o, "<table id=\"sites\"><thead><tr><th data-sort=\"rank\">Rank</th><th>Site</th><th>Kind</th><th data-sort=\"score\">Structure score (0–1)</th><th data-sort=\"area\">Changed area (m²)</th><th>Centroid (lon, lat)</th><th>Watch</th><th>Reasons; chip: before | after | change</th></tr></thead><tbody>");
    for s in ctx.sites.iter().take(listed) {
        let c = s.kind.colour();
        let watch = match s.watch.first() {
            Some(h) => format!("{} ({})", escape(&h.name), format_metres(h.distance_m)),
            None => String::new(),
        };
        let reasons: String = s
            .reasons
            .iter()
            .map(|r| format!("<li>{}</li>", escape(r)))
            .collect();
        let chip = match chip_of.get(&s.id) {
            Some(ch) => format!(
                "<img class=\"chip\" alt=\"site {} chip\" src=\"data:image/png;base64,{}\"><span class=\"muted\">scale bar {}</span>",
                s.id,
                base64(&ch.png),
                format_metres(ch.scale_bar_m)
            ),
            None => String::new(),
        };
        let _ = writeln!(
            o,
            "<tr class=\"site\" id=\"site-{id}\" data-rank=\"{rank}\" data-kind=\"{kname}\" data-score=\"{score:.4}\" data-area=\"{area:.1}\"><td class=\"num\">{rank}</td><td class=\"num\">{id}</td><td><span class=\"kind\" style=\"background:rgb({r},{g},{b})\">{kind}</span></td><td class=\"num\">{score:.3}</td><td class=\"num\">{area:.0}</td><td class=\"num\">{lon:.6}, {lat:.6}<br>{links}</td><td>{watch}</td><td><ul class=\"reasons\">{reasons}</ul>{chip}</td></tr>",
            id = s.id,
            rank = s.rank,
            r = c[0],
            g = c[1],
            b = c[2],
            kind = s.kind.name().replace('_', " "),
            kname = s.kind.name(),
            links = super::links::html(s.lat, s.lon),
            score = s.score,
            area = s.area_m2,
            lon = s.lon,
            lat = s.lat,
        );
    }
    let _ = writeln!(o, "</tbody></table>");
    let _ = writeln!(o, "{}", super::report_table::SCRIPT);
    let _ = writeln!(o, "<p class=\"muted\">Structure score in [0, 1] (detector confidence × built-like shape × material change × edges × plausible size × not vegetation, water or haze). Chips: true colour B04/B03/B02, 2–98% stretch shared by both dates; change panel: change mask orange, site red, masked blue; outline yellow.</p>");
    let _ = writeln!(o, "</body></html>");
    std::fs::write(path, o).map_err(|e| Error::output(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_vectors() {
        // RFC 4648 test vectors.
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }
}
