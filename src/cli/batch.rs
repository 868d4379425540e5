//! `dunewatch batch`.

use crate::cli::detect::{detect_pair, DetectFlags};
use anyhow::Result;
use clap::Args;
use dunewatch::batch::{self, index, PairState, Shard};
use std::path::PathBuf;
use std::time::Instant;

/// Run `detect` (with sites, unless --no-sites) on many scene pairs, one
/// after another, each into its own folder `<out>/<name>/`, then write an
/// index of all of them into <out>: batch.csv (status, dates, changed
/// pixels, sites by kind, time, error of every pair), sites.geojson and
/// sites.csv (every pair's sites in one layer, with a `pair` field) and
/// index.html (links to each pair's report).
///
/// PAIRS is a CSV file whose header names the columns name, before, after
/// (and optionally aoi), paths relative to the CSV's folder; or a folder with
/// one sub-folder per pair holding a `before` and an `after` scene (and
/// optionally aoi.geojson), as sample_tiles/ does. Scenes are any form
/// `detect` reads.
///
/// A pair whose folder already holds a finished run of the same scenes is
/// skipped (--force runs it again), so a stopped batch resumes where it
/// stopped. A pair that fails is reported in one line and the batch goes on;
/// the exit status is 1 if any pair of this run failed.
///
/// Several machines share a batch with --shard K/N over one output folder
/// (a network drive): machine K of N runs pairs K, K+N, K+2N, ... of the
/// same list, and each rewrites the index from what the folder holds when
/// it finishes; `--index-only` rebuilds it without running anything.
///
/// In a Slurm job array (`sbatch --array=1-N`) without --shard, the shard
/// is the array task's: K = SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN + 1,
/// N = SLURM_ARRAY_TASK_COUNT (scripts/slurm/batch.sbatch, docs/slurm.md).
///
/// Examples:
///   dunewatch batch sample_tiles --out out/batch
///   dunewatch batch watch.csv --out /mnt/watch --method learned
///   dunewatch batch watch.csv --out /mnt/watch --shard 2/3     (on the second of three machines)
///   dunewatch batch watch.csv --out /mnt/watch --index-only
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct BatchArgs {
    /// The pairs: a CSV file (name,before,after[,aoi]) or a folder of pair folders.
    pub pairs: PathBuf,
    /// Output folder: one run folder per pair, and the index.
    #[arg(long)]
    pub out: PathBuf,
    /// Run only this machine's share of the pairs: K/N takes pairs K, K+N, ... (1-based).
    /// Default: the Slurm array task's shard, if any, else all pairs.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<Shard>,
    /// Run pairs again even when their folder holds a finished run.
    #[arg(long)]
    pub force: bool,
    /// Only rewrite the index from the runs the output folder holds.
    #[arg(long)]
    pub index_only: bool,
    #[command(flatten)]
    pub flags: DetectFlags,
}

pub fn run(a: &BatchArgs) -> Result<()> {
    let pairs = batch::read_pairs(&a.pairs)?;
    let prep = a.flags.prepare()?;
    std::fs::create_dir_all(&a.out)
        .map_err(|e| anyhow::anyhow!("{}: cannot create output folder: {e}", a.out.display()))?;
    let say = |s: String| {
        if !a.flags.quiet {
            println!("{s}");
        }
    };
    let shard = match a.shard {
        Some(s) => Some(s),
        None if a.index_only => None,
        None => {
            let s = batch::shard::from_slurm_env(|k| std::env::var(k).ok())?;
            if let Some(s) = s {
                let var = |k| std::env::var(k).unwrap_or_default();
                say(format!(
                    "batch: shard {s} from Slurm array task {} (SLURM_ARRAY_TASK_MIN={}, SLURM_ARRAY_TASK_COUNT={})",
                    var("SLURM_ARRAY_TASK_ID"),
                    var("SLURM_ARRAY_TASK_MIN"),
                    var("SLURM_ARRAY_TASK_COUNT")
                ));
            }
            s
        }
    };
    let all = Shard { k: 1, n: 1 };
    let mine: Vec<_> = pairs
        .iter()
        .enumerate()
        .filter(|(i, _)| shard.unwrap_or(all).takes(*i))
        .map(|(_, p)| p)
        .collect();
    let mut failed = 0usize;
    if !a.index_only {
        let t0 = Instant::now();
        for (i, pair) in mine.iter().enumerate() {
            let head = format!("[{}/{}] {}", i + 1, mine.len(), pair.name);
            match batch::state(&a.out, pair) {
                Ok(PairState::Done) if !a.force => {
                    say(format!("{head}: done already, skipped"));
                    continue;
                }
                Err(e) => {
                    // A folder holding a run of other scenes is left as it is.
                    eprintln!("dunewatch: error: {head}: {e}");
                    failed += 1;
                    continue;
                }
                _ => {}
            }
            say(format!(
                "{head}: {} -> {}",
                pair.before.display(),
                pair.after.display()
            ));
            let dir = batch::run_dir(&a.out, pair);
            let res = detect_pair(
                &pair.before,
                &pair.after,
                &dir,
                pair.aoi.as_deref(),
                &a.flags,
                &prep,
            );
            let msg = res.as_ref().err().map(|e| format!("{e:#}"));
            if let Some(m) = &msg {
                eprintln!("dunewatch: error: {head}: {m}");
                failed += 1;
                // The run left nothing finished; an empty folder would look like a pair.
                let _ = std::fs::remove_dir(&dir);
            }
            batch::record_error(&a.out, pair, msg.as_deref())?;
        }
        say(format!(
            "batch{}: {} run, {} failed, {:.1} s",
            shard.map(|s| format!(" (shard {s})")).unwrap_or_default(),
            pairs_n(mine.len()),
            failed,
            t0.elapsed().as_secs_f64()
        ));
    }
    let s = index::write_index(&a.out, &pairs)?;
    say(format!(
        "{}: {}: {} done, {} failed, {} pending; {} sites{} -> {}, {}, {}, {}",
        a.out.display(),
        pairs_n(pairs.len()),
        s.done,
        s.failed,
        s.pending,
        s.sites - s.merged,
        if s.merged > 0 {
            format!(" ({} observations by a second pair merged)", s.merged)
        } else {
            String::new()
        },
        index::INDEX_CSV,
        index::SITES_GEOJSON,
        index::SITES_CSV,
        index::INDEX_HTML
    ));
    anyhow::ensure!(
        failed == 0,
        "{failed} of {} pairs failed (see {})",
        mine.len(),
        a.out.join(index::INDEX_CSV).display()
    );
    Ok(())
}

/// "1 pair", "2 pairs".
fn pairs_n(n: usize) -> String {
    format!("{n} pair{}", if n == 1 { "" } else { "s" })
}
