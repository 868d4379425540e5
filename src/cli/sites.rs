//! `dunewatch sites`.

use anyhow::Result;
use clap::Args;
use dunewatch::progress::Progress;
use dunewatch::sites::{run_sites_with, SitesOptions};
use std::path::PathBuf;

/// Turn the changed pixels of a finished `detect` run into ranked sites, and
/// write sites.geojson, sites.csv, sites.kml, chips/<id>.png and report.html
/// into the run folder, with the candidate compounds (groups of nearby sites
/// ranked by how much they look like a base) in compounds.geojson and
/// compounds.csv. The change mask is read, not recomputed; the scenes
/// named in run.json are re-read for the spectral features and the chips.
/// The run folder is rebuilt beside it (its other files carried over) and
/// swapped in whole: a failed or interrupted run leaves it as it was.
///
/// The mask is cleaned with a 3x3 opening then closing, cut into 8-connected
/// sites, and sites under --min-area are dropped. Each site gets shape,
/// score and index/texture change features, a kind (structure, linear,
/// vegetation, water, cloud_or_haze, other) with reasons, and a structure
/// score in [0, 1] that ranks them.
///
/// Examples:
///   dunewatch sites out/abudhabi
///   dunewatch sites out/kufra --watchlist camps.geojson --watch-distance 3000 --chips 40
///   dunewatch sites out/kufra --compound-distance 400
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct SitesArgs {
    /// Output folder of `dunewatch detect` (holds change_mask.tif and run.json).
    pub run_dir: PathBuf,
    #[command(flatten)]
    pub flags: SiteFlags,
    /// The before scene, when it moved since `detect` ran (default: from run.json).
    #[arg(long)]
    pub before: Option<PathBuf>,
    /// The after scene, when it moved since `detect` ran (default: from run.json).
    #[arg(long)]
    pub after: Option<PathBuf>,
    /// Worker threads (0 = one per core).
    #[arg(long, default_value_t = 0, value_parser = crate::cli::limits::threads)]
    pub threads: usize,
    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
    /// The site register --new-only compares against (read, not written).
    #[arg(long, value_name = "FILE.gpkg")]
    pub register: Option<PathBuf>,
}

/// How changed pixels become sites; shared by `detect` and `sites`.
#[derive(Args, Debug, Clone)]
pub struct SiteFlags {
    /// Minimum site area in m2. The default keeps a 30 m x 30 m hangar (900 m2),
    /// which a 10 m grid often shows as 8 pixels after cleaning.
    #[arg(long, default_value_t = 800.0)]
    pub min_area: f64,
    /// Named points (GeoJSON points with a "name" property), a preset region
    /// (its places), or "none"; nearby sites are tagged. Default: the places
    /// of the preset region the scene lies in (see `dunewatch places`), if any.
    #[arg(long, value_name = "GEOJSON|REGION|none")]
    pub watchlist: Option<PathBuf>,
    /// Distance in metres within which a site is tagged with a watch point.
    #[arg(long, default_value_t = 5000.0)]
    pub watch_distance: f64,
    /// Write chips for the top N sites.
    #[arg(long, default_value_t = 20)]
    pub chips: usize,
    /// Skip the 3x3 opening (keeps features under 3 pixels wide, and speckle).
    #[arg(long)]
    pub no_opening: bool,
    /// Skip the 3x3 closing.
    #[arg(long)]
    pub no_closing: bool,
    /// Sites listed in report.html (all are in the vector files).
    #[arg(long, default_value_t = 500)]
    pub report_rows: usize,
    /// Keep only what is new since the register's last run and unreviewed
    /// (sites matching no register site, or only sites its last run added
    /// and nobody reviewed) in report.html and the sites files. Needs --register.
    #[arg(long)]
    pub new_only: bool,
    /// Sites closer than this many metres (gap between their outlines' hulls)
    /// are grouped into a candidate compound; roads and tracks join the
    /// group they come this close to. Written to compounds.geojson and
    /// compounds.csv, ranked by base-likeness, and at the top of report.html.
    #[arg(long, default_value_t = dunewatch::sites::compounds::DEFAULT_DISTANCE_M, value_name = "METRES")]
    pub compound_distance: f64,
}

impl SiteFlags {
    pub fn options(&self, threads: usize) -> SitesOptions {
        SitesOptions {
            min_area_m2: self.min_area,
            opening: !self.no_opening,
            closing: !self.no_closing,
            watchlist: self.watchlist.clone(),
            watch_distance_m: self.watch_distance,
            chips: self.chips,
            report_rows: self.report_rows,
            compound_distance_m: self.compound_distance,
            threads,
            ..Default::default()
        }
    }
}

pub fn run(a: &SitesArgs) -> Result<()> {
    let mut opts = SitesOptions {
        before: a.before.clone(),
        after: a.after.clone(),
        ..a.flags.options(a.threads)
    };
    if a.flags.new_only {
        let reg = a
            .register
            .clone()
            .ok_or_else(|| anyhow::anyhow!("--new-only needs --register FILE.gpkg"))?;
        opts.filter = Some(crate::cli::register::new_only_filter(
            reg,
            Default::default(),
        ));
    }
    let bar = crate::cli::progress::Bar::new(a.quiet);
    let s = run_sites_with(&a.run_dir, &opts, &bar);
    bar.finish();
    let s = s?;
    if !a.quiet {
        print_summary(&a.run_dir, &s);
    }
    Ok(())
}

/// One line: how many sites of which kind, and what was written.
pub fn print_summary(run_dir: &std::path::Path, s: &dunewatch::sites::SitesSummary) {
    let kinds: Vec<String> = s
        .by_kind
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    println!(
        "{}: {} sites ({}), {} compounds, {} chips, {:.1} s -> {}",
        run_dir.display(),
        s.sites,
        if kinds.is_empty() {
            "none".to_string()
        } else {
            kinds.join(", ")
        },
        s.compounds,
        s.chips,
        s.timings_s.get("total").copied().unwrap_or(0.0),
        s.outputs.join(", ")
    );
}
