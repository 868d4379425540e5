//! `dunewatch watch`.

use crate::cli::detect::{detect_pair, DetectFlags};
use anyhow::{Context, Result};
use clap::Args;
use dunewatch::batch::scene_list;
use dunewatch::read::open_scene;
use std::path::{Path, PathBuf};

/// Compare dated scenes of one place in date order and follow each site in
/// a register: for each consecutive pair (d1, d2) of the scenes, run
/// `detect` into <out>/<d1>_<d2>/ and add the run to the register (--register,
/// required). Each site gets the interval in which it appeared
/// (`appeared_after`: the last date without it, `appeared_by`: the first
/// date with it); its confidence rises (low, medium, high) as later
/// comparisons find the change still there, and a change that a later
/// comparison undoes (it appears, then vanishes) is marked transient.
///
/// SCENES are any form `detect` reads (paths, STAC items as .json files or
/// URLs), one folder holding them (each entry a scene), or a list that
/// `dunewatch scenes` wrote (--items, or --pairs: a .csv; its area is the
/// --aoi unless one is given). Their dates come from their metadata (an
/// item's datetime) or file names. A pair whose folder holds a finished run
/// already is not run again.
///
/// Examples:
///   dunewatch watch scenes/ --register kufra.gpkg --out out/kufra
///   dunewatch scenes --aoi kufra.geojson --from 2024-01-01 --to 2024-12-31 --max-cloud 10 --items kufra.csv
///   dunewatch watch kufra.csv --register kufra.gpkg --out out/kufra
///   dunewatch watch https://earth-search.aws.element84.com/v1/collections/sentinel-2-l2a/items/S2A_34RFS_20240105_0_L2A item2.json item3.json --register k.gpkg --out out/k
///   dunewatch watch S2A_..._20240105.SAFE.zip S2B_..._20240204.SAFE.zip S2A_..._20240305.SAFE.zip --register k.gpkg --out out/k
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct WatchArgs {
    /// Dated scenes (paths, STAC item files or URLs), one folder of them,
    /// or a .csv list written by `dunewatch scenes --items` or `--pairs`.
    #[arg(required = true)]
    pub scenes: Vec<PathBuf>,
    /// Output folder: one run folder per consecutive pair.
    #[arg(long)]
    pub out: PathBuf,
    /// Area of interest (GeoJSON or any OGR vector file).
    #[arg(long)]
    pub aoi: Option<PathBuf>,
    #[command(flatten)]
    pub flags: DetectFlags,
}

/// Scenes with their dates (YYYY-MM-DD).
type Dated = Vec<(String, PathBuf)>;

/// The scenes with their dates, oldest first, and the area of a scene
/// list that names one.
pub fn dated_scenes(args: &[PathBuf]) -> Result<(Dated, Option<PathBuf>)> {
    let mut paths = args.to_vec();
    let mut aoi = None;
    if args.len() == 1 && scene_list::is_scene_list(&args[0]) {
        let list = scene_list::read_scene_list(&args[0])?;
        paths = list.scenes;
        aoi = list.aoi;
    } else if args.len() == 1 && args[0].is_dir() {
        // A folder whose entries are scenes (a band folder holds files,
        // not scenes, so this finds fewer than two).
        let dir = &args[0];
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("{}: cannot read folder", dir.display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                !p.file_name()
                    .map(|n| n.to_string_lossy().starts_with('.'))
                    .unwrap_or(true)
            })
            .collect();
        entries.sort();
        let scenes: Vec<PathBuf> = entries
            .into_iter()
            .filter(|p| {
                open_scene(p)
                    .map(|s| !s.bands.is_empty() && s.date.is_some())
                    .unwrap_or(false)
            })
            .collect();
        if scenes.len() >= 2 {
            paths = scenes;
        }
    }
    let mut out = Vec::new();
    for p in paths {
        let s = open_scene(&p)?;
        let d = s.date.ok_or_else(|| {
            anyhow::anyhow!(
                "{}: no acquisition date in its metadata or file names; watch orders scenes by date",
                p.display()
            )
        })?;
        out.push((d, p));
    }
    out.sort();
    for w in out.windows(2) {
        anyhow::ensure!(
            w[0].0 != w[1].0,
            "{} and {} have the same date {}: pass one scene per date",
            w[0].1.display(),
            w[1].1.display(),
            w[0].0
        );
    }
    anyhow::ensure!(
        out.len() >= 2,
        "watch needs at least two dated scenes, got {}",
        out.len()
    );
    Ok((out, aoi))
}

fn finished(dir: &Path) -> bool {
    dir.join("run.json").is_file() && dir.join("sites.geojson").is_file()
}

pub fn run(a: &WatchArgs) -> Result<()> {
    let register = a
        .flags
        .register
        .clone()
        .ok_or_else(|| anyhow::anyhow!("watch needs --register FILE.gpkg"))?;
    let prep = a.flags.prepare()?;
    let (scenes, list_aoi) = dated_scenes(&a.scenes)?;
    let aoi = a.aoi.clone().or(list_aoi);
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("{}: cannot create output folder", a.out.display()))?;
    let n = scenes.len() - 1;
    for (i, w) in scenes.windows(2).enumerate() {
        let ((d1, before), (d2, after)) = (&w[0], &w[1]);
        let dir = a.out.join(format!("{d1}_{d2}"));
        if !a.flags.quiet {
            println!(
                "[{}/{n}] {d1} -> {d2}: {} -> {}",
                i + 1,
                before.display(),
                after.display()
            );
        }
        if finished(&dir) {
            // Resumed: the comparison exists; the register skips it if it
            // holds it already.
            crate::cli::register::add(&register, &[dir], &prep.register, a.flags.quiet)?;
            continue;
        }
        detect_pair(before, after, &dir, aoi.as_deref(), &a.flags, &prep)?;
    }
    Ok(())
}
