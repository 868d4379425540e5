//! `dunewatch eval`: scores a change mask against a labelled truth raster.

use anyhow::{Context, Result};
use clap::Args;
use dunewatch::eval::{self, objects::ClassRecall, EvalOptions, EvalReport};
use std::fmt::Write as _;
use std::path::PathBuf;

const RULES: &str = "\
Rules:
  - Prediction pixels of 255 (masked) are counted apart and take no part in any figure.
  - Truth coding is read from its values: largest value 255 -> 0/255; only 1 and 2 (no 0) -> 1/2;
    otherwise 0/1. Other values are an error. A truth holding only 1 reads as 1/2 (no change).
  - A truth without georeferencing must have the prediction's size and is taken to lie on its grid;
    two georeferenced rasters must share the grid.
  - Every ratio with a zero denominator (e.g. precision with no predicted change, kappa when both
    rasters are constant and equal) is reported as 0.
  - Objects are 8-connected components of truth change pixels. An object is detected when at least
    one of its pixels is predicted change; objects entirely masked are counted apart.
    Size classes: under 0.1 ha (< 1000 m2), 0.1-1 ha, over 1 ha (> 10000 m2), from the pixel area of
    the prediction's grid (geographic grids: at the centre latitude; no georeferencing: 10 m pixels).
  - Site precision: share of sites (on the grid) whose polygon touches a truth change pixel.
  - Top-k site precision (k = 10, 20, 50): of the first k sites by their `rank` property (file order
    when absent), the share of true sites. A site is true when at least 30% of its pixels, or at
    least 5 of them, are truth change. A site's pixels are those whose centre lies inside its
    polygon (holes excluded); a site covering no pixel centre (a point, a sliver) is judged on the
    pixels it touches. With fewer than k sites the precision is over the sites there are (shown
    as true/sites). Sites entirely off the grid are not judged.";

/// Scores a change mask against a labelled truth raster: pixel confusion and
/// figures, object recall by size class and, given sites, site precision and
/// the precision of the top 10, 20 and 50 sites by rank.
///
/// Examples:
///   dunewatch eval --pred out/run --truth labels/abudhabi/abudhabi-cm.tif
///   dunewatch eval --pred out/run --truth label.tif --json
#[derive(Args, Debug)]
#[command(verbatim_doc_comment, after_long_help = RULES)]
pub struct EvalArgs {
    /// Change mask GeoTIFF (0 = no change, 1 = change, 255 = masked), or a run
    /// folder: its change_mask.tif, and its sites.geojson when present.
    #[arg(long, value_name = "MASK|RUN_DIR")]
    pub pred: PathBuf,
    /// Truth label raster, coded 0/1, 1/2 (1 = no change, 2 = change) or 0/255
    /// (detected from its values). May lack georeferencing if it has the
    /// prediction's size.
    #[arg(long, value_name = "LABEL")]
    pub truth: PathBuf,
    /// Sites GeoJSON (lon/lat polygons, properties `kind` and `rank`) to score:
    /// share of sites touching a truth change pixel, and top-k precision.
    /// Overrides a run folder's sites.geojson.
    #[arg(long, value_name = "GEOJSON")]
    pub sites: Option<PathBuf>,
    /// Print one JSON object with every figure instead of the table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &EvalArgs) -> Result<()> {
    let input = eval::resolve_prediction(&args.pred)?;
    let sites = args.sites.clone().or(input.sites);
    let report = eval::evaluate(
        &input.mask,
        &args.truth,
        sites.as_deref(),
        &EvalOptions::default(),
    )?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).context("cannot write the report as JSON")?
        );
    } else {
        print!("{}", table(&report));
    }
    Ok(())
}

fn class_line(out: &mut String, name: &str, c: &ClassRecall) {
    let _ = writeln!(
        out,
        "  {name:<10} {:>9} {:>9} {:>8.4} {:>8}",
        c.objects, c.detected, c.recall, c.masked
    );
}

/// One line with what an analyst reads first: pixel F1, top-k site
/// precision and object recall by size class.
fn summary(r: &EvalReport) -> String {
    let mut line = format!("pixel F1 {:.3}", r.pixels.f1);
    match &r.sites {
        Some(s) => {
            for t in &s.top {
                let _ = write!(
                    line,
                    " | top-{} {:.3} ({}/{})",
                    t.k, t.precision, t.true_sites, t.sites
                );
            }
        }
        None => line.push_str(" | top-k: no sites file"),
    }
    let ob = &r.objects;
    let _ = write!(
        line,
        " | object recall < 0.1 ha {:.3}, 0.1-1 ha {:.3}, > 1 ha {:.3}",
        ob.under_0_1_ha.recall, ob.from_0_1_to_1_ha.recall, ob.over_1_ha.recall
    );
    line
}

/// The report as a terminal table.
fn table(r: &EvalReport) -> String {
    let mut o = String::new();
    let p = &r.pixels;
    let k = &p.counts;
    let _ = writeln!(o, "prediction  {}", r.prediction.display());
    let _ = writeln!(
        o,
        "truth       {} (coding {})",
        r.truth.display(),
        r.truth_coding.name()
    );
    let _ = writeln!(o, "size        {} x {} pixels", r.width, r.height);
    let _ = writeln!(o);
    let _ = writeln!(o, "Summary");
    let _ = writeln!(o, "  {}", summary(r));
    let _ = writeln!(o);
    let _ = writeln!(o, "Pixels");
    let _ = writeln!(
        o,
        "  TP      {:>12}    precision {:>8.4}",
        k.tp, p.precision
    );
    let _ = writeln!(o, "  FP      {:>12}    recall    {:>8.4}", k.fp, p.recall);
    let _ = writeln!(o, "  FN      {:>12}    F1        {:>8.4}", k.fn_, p.f1);
    let _ = writeln!(o, "  TN      {:>12}    IoU       {:>8.4}", k.tn, p.iou);
    let _ = writeln!(
        o,
        "  masked  {:>12}    kappa     {:>8.4}",
        k.masked, p.kappa
    );
    let _ = writeln!(o);
    let ob = &r.objects;
    let _ = writeln!(
        o,
        "Objects (8-connected truth change; detected = at least one pixel predicted change; pixel {:.1} m2{})",
        ob.pixel_area_m2,
        if ob.pixel_area_assumed { ", assumed" } else { "" }
    );
    let _ = writeln!(
        o,
        "  {:<10} {:>9} {:>9} {:>8} {:>8}",
        "size", "objects", "detected", "recall", "masked"
    );
    class_line(&mut o, "all", &ob.all);
    class_line(&mut o, "< 0.1 ha", &ob.under_0_1_ha);
    class_line(&mut o, "0.1-1 ha", &ob.from_0_1_to_1_ha);
    class_line(&mut o, "> 1 ha", &ob.over_1_ha);
    if let Some(s) = &r.sites {
        let _ = writeln!(o);
        let _ = writeln!(o, "Sites ({})", s.file.display());
        let _ = writeln!(
            o,
            "  {:<14} {:>7} {:>9} {:>9} {:>6}",
            "kind", "sites", "touching", "precision", "true"
        );
        for (kind, v) in &s.by_kind {
            let _ = writeln!(
                o,
                "  {kind:<14} {:>7} {:>9} {:>9.4} {:>6}",
                v.sites, v.touching, v.precision, v.true_sites
            );
        }
        let _ = writeln!(
            o,
            "  {:<14} {:>7} {:>9} {:>9.4} {:>6}",
            "all", s.sites, s.touching, s.precision, s.true_sites
        );
        if s.outside > 0 {
            let _ = writeln!(o, "  ({} sites off the grid, not scored)", s.outside);
        }
        let _ = writeln!(
            o,
            "  top-k by {} (true = at least 30% or 5 of its pixels truth change):",
            s.ranked_by
        );
        for t in &s.top {
            let short = if (t.sites as usize) < t.k {
                format!("  (only {} sites)", t.sites)
            } else {
                String::new()
            };
            let _ = writeln!(
                o,
                "  top {:<3} {:>4}/{:<4} precision {:>6.4}{short}",
                t.k, t.true_sites, t.sites, t.precision
            );
        }
    }
    if !r.notes.is_empty() {
        let _ = writeln!(o);
        for n in &r.notes {
            let _ = writeln!(o, "note: {n}");
        }
    }
    o
}
