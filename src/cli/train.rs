//! `dunewatch train`.

use anyhow::{Context, Result};
use clap::Args;
use dunewatch::progress::Progress;
use dunewatch::train::{self, TrainPair};
use std::path::PathBuf;

/// Train the `learned` method (a logistic regression over change features
/// with spatial context) on labelled before/after pairs, and write the model
/// as JSON with its provenance (pairs, label licence, citation, command).
///
/// Pairs come from an OSCD-style folder (`images/<name>/imgs_1`,
/// `images/<name>/imgs_2`, `labels/<name>/<name>-cm.tif`) and/or from
/// `--pair BEFORE AFTER LABEL` (the label on the before scene's 10 m grid;
/// 0/1, 1/2 or 0/255 coding). The probability cut is chosen by
/// leave-one-pair-out over the training pairs. Use the model with
/// `dunewatch detect --method learned --model model.json`.
///
/// With `--arch` it trains the `cnn` method instead: a small fully
/// convolutional network (unet4, unet8 or unet12) over the same features,
/// on random patches with flips, quarter turns and the dates swapped, by
/// Adam from a fixed seed (the same model for any thread count). Use it with
/// `dunewatch detect --method cnn --model model.json`.
///
/// Examples:
///   dunewatch train --oscd ../shared/oscd --out models/oscd_v1.json
///   dunewatch train --oscd ../shared/oscd --exclude paris --out /tmp/no_paris.json
///   dunewatch train --pair before/ after/ label.tif --out model.json
///   dunewatch train --oscd ../shared/oscd --arch unet4 --out models/oscd_cnn_v1.json
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct TrainArgs {
    /// OSCD-style folder: every labelled pair in it is used.
    #[arg(long)]
    pub oscd: Option<PathBuf>,
    /// Leave this pair of the --oscd folder out (repeatable), e.g. for
    /// leave-one-city-out figures.
    #[arg(long)]
    pub exclude: Vec<String>,
    /// A labelled pair: before scene, after scene, label raster (repeatable).
    #[arg(long, num_args = 3, value_names = ["BEFORE", "AFTER", "LABEL"])]
    pub pair: Vec<PathBuf>,
    /// Where to write the model (JSON).
    #[arg(long)]
    pub out: PathBuf,
    /// Train the cnn method's network of this architecture (unet4, unet8,
    /// unet12) instead of the logistic regression.
    #[arg(long)]
    pub arch: Option<String>,
    /// Training steps of the network (--arch).
    #[arg(long, default_value_t = 1500)]
    pub steps: usize,
    /// Seed of the network's initialisation and patch draws (--arch).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Also train on patches with their dates swapped (--arch; off by
    /// default: it lowered leave-one-city-out F1).
    #[arg(long)]
    pub date_swap: bool,
    /// Start the network from random weights instead of the learned
    /// method's logistic regression (--arch).
    #[arg(long)]
    pub random_start: bool,
    /// Worker threads (0 = one per core).
    #[arg(long, default_value_t = 0, value_parser = crate::cli::limits::threads)]
    pub threads: usize,
    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn run(a: &TrainArgs) -> Result<()> {
    dunewatch::run::configure_gdal();
    let mut pairs: Vec<TrainPair> = match &a.oscd {
        Some(dir) => train::oscd_pairs(dir, &a.exclude)?,
        None => {
            anyhow::ensure!(a.exclude.is_empty(), "--exclude needs --oscd");
            Vec::new()
        }
    };
    for (i, p) in a.pair.chunks(3).enumerate() {
        pairs.push(TrainPair {
            name: format!(
                "pair{}:{}",
                i + 1,
                p[0].file_name().unwrap_or_default().to_string_lossy()
            ),
            before: p[0].clone(),
            after: p[1].clone(),
            label: p[2].clone(),
        });
    }
    anyhow::ensure!(
        !pairs.is_empty(),
        "no labelled pairs: give --oscd <dir> and/or --pair BEFORE AFTER LABEL"
    );
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.threads)
        .build()
        .context("cannot start worker threads")?;
    let bar = crate::cli::progress::Bar::new(a.quiet);
    if let Some(arch) = &a.arch {
        dunewatch::detect::cnn::Arch::named(arch)?;
        return train_cnn(a, arch, &pairs, &pool);
    }
    let res = pool.install(|| -> dunewatch::Result<_> {
        let mut data = Vec::new();
        for p in &pairs {
            if !a.quiet {
                eprintln!("{}: features ...", p.name);
            }
            data.push(train::collect_pair(p, &bar)?);
        }
        let command = std::env::args().collect::<Vec<_>>().join(" ");
        train::train(&data, &a.exclude, &command, &bar)
    });
    bar.finish();
    let model = res?;
    let json = serde_json::to_string_pretty(&model)?;
    if let Some(d) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(d).with_context(|| format!("{}: cannot create", d.display()))?;
    }
    // Whole or not at all: a full disk leaves the earlier model as it was.
    dunewatch::export::write_file_atomic(&a.out, (json + "\n").as_bytes())?;
    if !a.quiet {
        println!(
            "{}: trained on {} ({} change, {} no-change pixels), cut {:.2} (F1 {:.3}, {})",
            a.out.display(),
            model.provenance.trained_on.join(", "),
            model.provenance.positives,
            model.provenance.negatives,
            model.probability_threshold,
            model.provenance.selection_f1,
            if pairs.len() > 1 {
                "leave-one-pair-out"
            } else {
                "in-sample"
            }
        );
    }
    Ok(())
}

fn train_cnn(
    a: &TrainArgs,
    arch: &str,
    pairs: &[TrainPair],
    pool: &rayon::ThreadPool,
) -> Result<()> {
    use dunewatch::train::cnn;
    let bar = crate::cli::progress::Bar::new(a.quiet);
    let t = std::time::Instant::now();
    let res = pool.install(|| -> dunewatch::Result<_> {
        let mut data = Vec::new();
        for p in pairs {
            if !a.quiet {
                eprintln!("{}: features ...", p.name);
            }
            data.push(cnn::collect_raster(p, a.date_swap, &bar)?);
        }
        let settings = cnn::Settings {
            arch_name: arch.to_string(),
            steps: a.steps,
            seed: a.seed,
            date_swap: a.date_swap,
            start_linear: !a.random_start,
            ..Default::default()
        };
        let command = std::env::args().collect::<Vec<_>>().join(" ");
        cnn::train(&data, &settings, &a.exclude, &command, &bar)
    });
    bar.finish();
    let model = res?;
    let json = serde_json::to_string(&model)?;
    if let Some(d) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(d).with_context(|| format!("{}: cannot create", d.display()))?;
    }
    dunewatch::export::write_file_atomic(&a.out, (json + "\n").as_bytes())?;
    if !a.quiet {
        println!(
            "{}: {} ({} parameters) trained on {} in {:.0} s, cut {:.2} (in-sample F1 {:.3})",
            a.out.display(),
            model.arch_name,
            model.params.len(),
            model.provenance.trained_on.join(", "),
            t.elapsed().as_secs_f64(),
            model.probability_threshold,
            model.provenance.selection_f1,
        );
    }
    Ok(())
}
