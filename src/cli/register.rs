//! `dunewatch register`.

use anyhow::Result;
use clap::{Args, Subcommand};
use dunewatch::register::{self, AddOptions, AddSummary};
use std::path::{Path, PathBuf};

/// The site register: one GeoPackage that remembers every site over all
/// runs (layers sites, observations, runs, compounds), what the analyst
/// said about each (`review` = unreviewed / confirmed / dismissed / watch,
/// and `note`: set with `register review`, or edited in QGIS; no run
/// overwrites them), and when each appeared.
///
/// Examples:
///   dunewatch register add out/jan out/feb --into watch.gpkg
///   dunewatch register report watch.gpkg --out out/register
///   dunewatch register review watch.gpkg --site 12 --set dismissed --note greenhouses
///   dunewatch detect --before a --after b --out out/mar --register watch.gpkg
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct RegisterArgs {
    #[command(subcommand)]
    pub command: RegisterCommand,
}

#[derive(Subcommand, Debug)]
pub enum RegisterCommand {
    /// Add finished run folders (each with run.json and sites.geojson) to a
    /// register, creating it if missing. Runs are added oldest comparison
    /// first, in one transaction; a run already in the register (same
    /// inputs, options and dates) changes nothing.
    ///
    /// Examples:
    ///   dunewatch register add out/abudhabi --into watch.gpkg
    ///   dunewatch register add out/batch/* --into watch.gpkg --grow-factor 2
    #[command(verbatim_doc_comment)]
    Add {
        /// Finished run folders.
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// The register (a GeoPackage, created if missing).
        #[arg(long, value_name = "FILE.gpkg")]
        into: PathBuf,
        #[command(flatten)]
        opts: MatchFlags,
        /// Print nothing but errors.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Write a self-contained HTML report of the whole register into
    /// <out>/register.html: every site, unreviewed first, with its history
    /// (dates, area, score and the chip of each run whose folder holds one),
    /// then every compound, counted by status, unreviewed first, with its
    /// member sites.
    ///
    /// Example:
    ///   dunewatch register report watch.gpkg --out out/register
    #[command(verbatim_doc_comment)]
    Report {
        /// The register.
        register: PathBuf,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
    },
    /// Record the analyst's review of sites or compounds: sets `review`,
    /// `reviewed_at` (now, UTC) and `reviewed_by`, and `note` when given.
    /// Every id must exist in the register, or nothing is changed. Later
    /// runs never overwrite a review; a dismissed site comes back only as
    /// `changed_since_review`, when it grows.
    ///
    /// Examples:
    ///   dunewatch register review watch.gpkg --site 12 --set dismissed --note greenhouses
    ///   dunewatch register review watch.gpkg --site 3 --site 7 --set confirmed
    ///   dunewatch register review watch.gpkg --compound 2 --set watch --by analyst1
    #[command(verbatim_doc_comment)]
    Review {
        /// The register.
        register: PathBuf,
        /// A site's register id (`site_id`, as register.html shows it); repeatable.
        #[arg(
            long = "site",
            value_name = "ID",
            required_unless_present = "compounds",
            conflicts_with = "compounds"
        )]
        sites: Vec<i64>,
        /// A compound's register id (`compound_id`); repeatable.
        #[arg(long = "compound", value_name = "ID")]
        compounds: Vec<i64>,
        /// The review.
        #[arg(long = "set", value_name = "REVIEW", value_parser = clap::builder::PossibleValuesParser::new(register::review::REVIEWS))]
        review: String,
        /// The note (replaces the row's note; kept when not given).
        #[arg(long)]
        note: Option<String>,
        /// Who reviewed (default: $USER).
        #[arg(long)]
        by: Option<String>,
    },
}

/// How runs are matched to the register; shared by `register add`,
/// `detect --register`, `batch --register` and `watch`.
#[derive(Args, Debug, Clone)]
pub struct MatchFlags {
    /// Area ratio beyond which a site seen again is `grown`, and a dismissed
    /// site comes back as `changed_since_review` (over its area when reviewed).
    #[arg(long, default_value_t = 1.5)]
    pub grow_factor: f64,
    /// Distance in metres a site's outline is grown by when matched (one
    /// pixel: runs a pixel apart still match).
    #[arg(long, default_value_t = 10.0)]
    pub match_tolerance: f64,
    /// Share of the smaller of two outlines the other must cover to match.
    #[arg(long, default_value_t = 0.5)]
    pub min_overlap: f64,
}

impl MatchFlags {
    pub fn options(&self) -> Result<AddOptions> {
        anyhow::ensure!(
            self.grow_factor >= 1.0,
            "--grow-factor must be at least 1, got {}",
            self.grow_factor
        );
        anyhow::ensure!(
            self.match_tolerance >= 0.0,
            "--match-tolerance must not be negative"
        );
        anyhow::ensure!(
            self.min_overlap > 0.0 && self.min_overlap <= 1.0,
            "--min-overlap must be in (0, 1]"
        );
        let mut o = AddOptions::default();
        o.policy.grow_factor = self.grow_factor;
        o.matching.tolerance_m = self.match_tolerance;
        o.matching.min_overlap = self.min_overlap;
        Ok(o)
    }
}

/// The `--new-only` filter: sites new since the register's last run and unreviewed.
pub fn new_only_filter(
    register: PathBuf,
    m: dunewatch::register::matching::MatchOptions,
) -> dunewatch::sites::SiteFilter {
    dunewatch::sites::SiteFilter(std::sync::Arc::new(move |outlines| {
        register::novelty::keep_new(&register, outlines, &m)
    }))
}

/// Adds runs and prints one line per run.
pub fn add(register: &Path, runs: &[PathBuf], opts: &AddOptions, quiet: bool) -> Result<()> {
    let sums = register::add_runs(register, runs, opts)?;
    if !quiet {
        for s in &sums {
            print_summary(register, s);
        }
    }
    Ok(())
}

pub fn print_summary(register: &Path, s: &AddSummary) {
    if s.already {
        println!(
            "{}: {} is in the register already (run {}), nothing changed",
            register.display(),
            s.run_dir.display(),
            s.run_id
        );
    } else {
        println!(
            "{}: {} (run {}): {} sites: {} new, {} seen again, {} grown, {} changed since review, \
             {} split, {} merged, {} transient; {} not seen since",
            register.display(),
            s.run_dir.display(),
            s.run_id,
            s.sites,
            s.new,
            s.seen_again,
            s.grown,
            s.changed_since_review,
            s.split,
            s.merged,
            s.transient,
            s.not_seen_since
        );
        if s.compounds > 0 || s.compounds_not_seen_since > 0 {
            println!(
                "{}: {} compounds: {} new, {} seen again, {} split, {} merged; {} not seen since",
                register.display(),
                s.compounds,
                s.compounds_new,
                s.compounds_seen_again,
                s.compounds_split,
                s.compounds_merged,
                s.compounds_not_seen_since
            );
        }
    }
}

pub fn run(a: &RegisterArgs) -> Result<()> {
    match &a.command {
        RegisterCommand::Add {
            runs,
            into,
            opts,
            quiet,
        } => add(into, runs, &opts.options()?, *quiet),
        RegisterCommand::Report { register, out } => {
            let p = register::report::write_report(register, out)?;
            println!("{}", p.display());
            Ok(())
        }
        RegisterCommand::Review {
            register,
            sites,
            compounds,
            review,
            note,
            by,
        } => {
            use register::review::{set_review, Review, Target};
            let (target, ids) = if compounds.is_empty() {
                (Target::Sites, sites)
            } else {
                (Target::Compounds, compounds)
            };
            let by = by
                .clone()
                .or_else(|| std::env::var("USER").ok())
                .unwrap_or_default();
            let r = Review {
                review,
                note: note.as_deref(),
                by: &by,
            };
            let n = set_review(register, target, ids, &r)?;
            println!(
                "{}: {n} {}{} set to {review}",
                register.display(),
                target.noun(),
                if n == 1 { "" } else { "s" }
            );
            Ok(())
        }
    }
}
