//! `dunewatch detect`.

use anyhow::Result;
use clap::Args;
use dunewatch::align::{AlignOptions, Aoi};
use dunewatch::detect::{DetectOptions, Method};
use dunewatch::progress::Progress;
use dunewatch::run::{run_detect_with, set_in_run_json, DetectRequest};
use dunewatch::sites::{record_in_run_json, run_info::working_run, stage_sites};
use std::path::{Path, PathBuf};

/// Compare a before and an after Sentinel-2 scene and write a change score
/// and change mask (Cloud-Optimized GeoTIFFs on the before scene's 10 m grid)
/// and run.json into the output folder; then turn the changed pixels into
/// ranked sites: sites.geojson, sites.csv, sites.kml, chips/ and report.html
/// (as `dunewatch sites` does; `--no-sites` skips this step).
///
/// A scene is any of: a folder of per-band rasters (`*_B04.tif`,
/// `T34QEK_20240105T083241_B04_10m.jp2`, `B04.tif`), a SAFE product (L1C or
/// L2A, folder or .zip), or a multi-band GeoTIFF whose band descriptions name
/// the bands.
///
/// Examples:
///   dunewatch detect --before sample_tiles/abudhabi/before --after sample_tiles/abudhabi/after --out out/abudhabi
///   dunewatch detect --before S2A_MSIL2A_2023...SAFE.zip --after S2B_MSIL2A_2024...SAFE.zip --out out/kufra --aoi kufra.geojson
///   dunewatch detect --before T34RGM_2023.SAFE.zip --after T34RGM_2024.SAFE.zip --out out/kufra --aoi Kufra --buffer-km 15
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct DetectArgs {
    /// The earlier scene (defines the output grid).
    #[arg(long)]
    pub before: PathBuf,
    /// The later scene (warped onto the before grid when needed).
    #[arg(long)]
    pub after: PathBuf,
    /// Output folder (created if missing; must not be or hold an input). The
    /// run is built beside it and swapped in whole when it succeeded: an
    /// existing run folder is replaced only then (its old files all go), and
    /// a failed or interrupted run leaves it untouched. An existing folder
    /// that is not a dunewatch run is refused.
    #[arg(long)]
    pub out: PathBuf,
    /// Area of interest: clip and mask to it. A GeoJSON or any OGR vector
    /// file, a LAT,LON point or a preset place name (a box of half-side
    /// --buffer-km around it), or a preset region (see `dunewatch places`).
    #[arg(
        long,
        value_name = "FILE|PLACE|REGION|LAT,LON",
        allow_hyphen_values = true
    )]
    pub aoi: Option<String>,
    #[command(flatten)]
    pub flags: DetectFlags,
}

/// How a pair is compared and its sites found; shared by `detect` and `batch`.
#[derive(Args, Debug, Clone)]
pub struct DetectFlags {
    /// Change measure: learned (default: a logistic regression over per-pixel
    /// features, the most accurate method in leave-one-city-out; its shipped
    /// weights derive from the OSCD change labels, CC BY-NC-SA 4.0, for
    /// non-commercial use only), combined (the label-free new-structure
    /// score), cva, irmad, indices (classic single measures, for comparison;
    /// where little changed, Otsu's cut on cva flags much of the scene), cnn (a
    /// small convolutional network over the learned method's features,
    /// `dunewatch train --arch`; its shipped weights derive from the same
    /// non-commercial labels). See --model.
    #[arg(long, default_value = "learned")]
    pub method: String,
    /// Model for --method learned (default: the shipped models/oscd_v1.json)
    /// or --method cnn (default: models/oscd_cnn_v1.json).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Score threshold in [0, 1]. Default: 0.9 for the combined score (a
    /// calibrated change probability), 0.99 for irmad (its calibrated
    /// chi-square test), 0.5 for learned and cnn (their trained cut),
    /// Otsu's automatic cut for cva and indices.
    #[arg(long, value_parser = crate::cli::limits::threshold)]
    pub threshold: Option<f32>,
    /// Output pixel size in metres (default: the before scene's 10 m bands).
    /// On a geographic (EPSG:4326) scene it becomes degrees at the scene's
    /// centre latitude. The grid may have at most 2^30 pixels.
    #[arg(long, value_parser = crate::cli::limits::resolution)]
    pub resolution: Option<f64>,
    /// Half-side in km of the box around a place or LAT,LON given as the AOI.
    #[arg(long, default_value_t = 10.0)]
    pub buffer_km: f64,
    /// Do not correct the after scene's misregistration (by default it is
    /// estimated by phase correlation and, from a quarter pixel up, the after
    /// scene is shifted onto the before scene; run.json records both).
    #[arg(long)]
    pub no_coregister: bool,
    /// Width in pixels of the parallel score pass's column blocks (each 128
    /// rows tall), 16 to 16384; the scores do not depend on it.
    #[arg(long, default_value_t = dunewatch::detect::BLOCK_COLS, value_parser = crate::cli::limits::block_size)]
    pub block_size: usize,
    /// Worker threads (0 = one per core); the run keeps to about this many
    /// cores. At most 1024, and at most 64 per core.
    #[arg(long, default_value_t = 0, value_parser = crate::cli::limits::threads)]
    pub threads: usize,
    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
    /// Stop after the change mask: no sites, chips or report.
    #[arg(long)]
    pub no_sites: bool,
    #[command(flatten)]
    pub sites: crate::cli::sites::SiteFlags,
    /// Add the run's sites to this site register (a GeoPackage, created if
    /// missing; see `dunewatch register`).
    #[arg(long, value_name = "FILE.gpkg")]
    pub register: Option<PathBuf>,
    #[command(flatten)]
    pub matching: crate::cli::register::MatchFlags,
}

/// The parts of the flags that do not depend on the pair, checked once.
pub struct Prepared {
    method: Method,
    model: Option<dunewatch::detect::learned::LearnedModel>,
    cnn: Option<dunewatch::detect::cnn::CnnModel>,
    sites: dunewatch::sites::SitesOptions,
    pub register: dunewatch::register::AddOptions,
}

impl DetectFlags {
    /// Checks the options and loads the model (before any pair is read).
    pub fn prepare(&self) -> Result<Prepared> {
        let method: Method = self.method.parse()?;
        let (model, cnn) = match &self.model {
            Some(p) if method == Method::Cnn => {
                (None, Some(dunewatch::detect::cnn::CnnModel::load(p)?))
            }
            Some(p) => {
                if method != Method::Learned {
                    return Err(crate::cli::limits::Usage(
                        "--model needs --method learned or cnn".into(),
                    )
                    .into());
                }
                (
                    Some(dunewatch::detect::learned::LearnedModel::load(p)?),
                    None,
                )
            }
            None => (None, None),
        };
        let mut sites = self.sites.options(self.threads);
        if self.sites.new_only {
            let reg = self
                .register
                .clone()
                .ok_or_else(|| anyhow::anyhow!("--new-only needs --register FILE.gpkg"))?;
            sites.filter = Some(crate::cli::register::new_only_filter(
                reg,
                self.matching.options()?.matching,
            ));
        }
        anyhow::ensure!(
            self.register.is_none() || !self.no_sites,
            "--register needs the run's sites: drop --no-sites"
        );
        let register = self.matching.options()?;
        if !self.no_sites {
            dunewatch::sites::check_options(&sites)?;
        }
        Ok(Prepared {
            method,
            model,
            cnn,
            sites,
            register,
        })
    }
}

pub fn run(a: &DetectArgs) -> Result<()> {
    let prep = a.flags.prepare()?;
    detect_pair(
        &a.before,
        &a.after,
        &a.out,
        a.aoi.as_deref().map(Path::new),
        &a.flags,
        &prep,
    )
}

impl DetectFlags {
    /// The fingerprint of a run of these flags on these inputs (see
    /// [`dunewatch::batch::fingerprint`]): the options that shape the
    /// outputs (not --threads, --block-size or --quiet, which do not).
    pub fn fingerprint(
        &self,
        before: &Path,
        after: &Path,
        aoi: Option<&Path>,
    ) -> serde_json::Value {
        let s = &self.sites;
        let options = serde_json::json!({
            "method": self.method,
            "model": self.model,
            "threshold": self.threshold,
            "resolution": self.resolution,
            "no_coregister": self.no_coregister,
            "no_sites": self.no_sites,
            "aoi": aoi,
            "min_area": s.min_area,
            "watchlist": s.watchlist,
            "watch_distance": s.watch_distance,
            "chips": s.chips,
            "no_opening": s.no_opening,
            "no_closing": s.no_closing,
            "report_rows": s.report_rows,
        });
        let mut inputs = vec![before, after];
        inputs.extend(aoi);
        inputs.extend(self.model.as_deref());
        inputs.extend(s.watchlist.as_deref());
        dunewatch::batch::fingerprint::fingerprint(&inputs, options)
    }
}

/// Where a trained method's weights came from and the licence their labels
/// carry, said plainly in run.json: the shipped weights derive from
/// non-commercial (CC BY-NC-SA) labels. None for label-free methods.
fn weights_notice(prep: &Prepared) -> Option<serde_json::Value> {
    let (source, p) = match prep.method {
        Method::Learned => match &prep.model {
            Some(m) => ("--model", m.provenance.clone()),
            None => (
                "shipped models/oscd_v1.json",
                dunewatch::detect::learned::LearnedModel::shipped().provenance,
            ),
        },
        Method::Cnn => match &prep.cnn {
            Some(m) => ("--model", m.provenance.clone()),
            None => (
                "shipped models/oscd_cnn_v1.json",
                dunewatch::detect::cnn::CnnModel::shipped().provenance,
            ),
        },
        _ => return None,
    };
    let p = &p;
    Some(serde_json::json!({
        "source": source,
        "trained_on": p.trained_on,
        "labels": p.labels,
        "licence": p.licence,
        "citation": p.citation,
        "notice": format!(
            "The {} method's weights derive from training labels under this licence: {}. \
             Use --method combined for a method without trained weights.",
            prep.method, p.licence
        ),
    }))
}

/// One detect run (and its sites unless --no-sites), as `dunewatch detect`
/// does it; `batch` calls this for every pair.
pub fn detect_pair(
    before: &Path,
    after: &Path,
    out: &Path,
    aoi: Option<&Path>,
    a: &DetectFlags,
    prep: &Prepared,
) -> Result<()> {
    // Taken before the run reads anything: what it was made from.
    let fingerprint = a.fingerprint(before, after, aoi);
    let req = DetectRequest {
        before: before.to_path_buf(),
        after: after.to_path_buf(),
        out: out.to_path_buf(),
        align: AlignOptions {
            resolution: a.resolution,
            pixel_size: None,
            aoi: aoi
                .map(|p| Aoi::resolve(&p.to_string_lossy(), a.buffer_km))
                .transpose()?,
            coregister: !a.no_coregister,
        },
        detect: DetectOptions {
            method: prep.method,
            block_size: a.block_size,
            threshold: a.threshold,
            model: prep.model.clone(),
            cnn: prep.cnn.clone(),
            ..Default::default()
        },
        threads: a.threads,
        keep_for_sites: !a.no_sites,
    };
    let bar = crate::cli::progress::Bar::new(a.quiet);
    let sites_opts = &prep.sites;
    // The sites are found from the working rasters while the COGs are
    // written, into the staged run folder: the run is published whole, with
    // its sites, or not at all.
    let res = run_detect_with(&req, &bar, |w| {
        if a.no_sites {
            return Ok(None);
        }
        let run = working_run(w.dir, w.mask, w.score, w.record)?;
        // On the run's threads, beside the COGs' tiles.
        let pool = Some(w.pool);
        let kept = w.kept.lock().ok().and_then(|mut k| k.take());
        stage_sites(&run, sites_opts, w.decoded, kept, pool, &bar, w.staging).map(Some)
    });
    bar.finish();
    let staged = res?;
    if let Some(s) = &staged.during {
        record_in_run_json(staged.dir(), s)?;
    }
    set_in_run_json(staged.dir(), "inputs", fingerprint)?;
    if let Some(notice) = weights_notice(prep) {
        set_in_run_json(staged.dir(), "weights", notice)?;
    }
    let (rec, sites) = staged.publish()?;
    if !a.quiet {
        let p = &rec.detect.pixels;
        println!(
            "{}: {} x {} px, {} compared, {} changed ({:.2}%), threshold {:.3} ({}), {:.1} s",
            out.display(),
            rec.grid.grid.width,
            rec.grid.grid.height,
            p.compared,
            p.changed,
            100.0 * p.changed_fraction,
            rec.detect.threshold,
            rec.detect.threshold_source,
            rec.timings_s.get("total").copied().unwrap_or(0.0)
        );
    }
    if let Some(s) = sites {
        if !a.quiet {
            crate::cli::sites::print_summary(out, &s);
        }
    }
    if let Some(reg) = &a.register {
        crate::cli::register::add(reg, &[out.to_path_buf()], &prep.register, a.quiet)?;
    }
    Ok(())
}
