//! The dunewatch command line: a thin layer over the library.

mod cli;

#[global_allocator]
static ALLOC: dunewatch::huge_pages::HugePages = dunewatch::huge_pages::HugePages;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Finds new structures (buildings, hangars, aprons, runways, berms, tracks)
/// in two Sentinel-2 scenes of the same place.
#[derive(Parser)]
#[command(name = "dunewatch", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    // `about` (not a doc comment) on each variant: a doc comment here would
    // hide the long help with examples that each command's arguments carry.
    #[command(about = "Compare two scenes: change score, change mask and run.json")]
    Detect(cli::detect::DetectArgs),
    #[command(about = "Score a change mask against labels: pixel and object accuracy")]
    Eval(cli::eval::EvalArgs),
    #[command(
        about = "Turn a run's changed pixels into ranked sites: GeoJSON, CSV, KML, chips, report"
    )]
    Sites(cli::sites::SitesArgs),
    #[command(
        about = "Run detect on many scene pairs (a CSV list or a folder of pairs), resumable, shardable"
    )]
    Batch(cli::batch::BatchArgs),
    #[command(
        about = "Train the learned method on labelled pairs; writes a model JSON with provenance"
    )]
    Train(cli::train::TrainArgs),
    #[command(about = "List the Sentinel-2 tiles covering a place, region, point or AOI file")]
    Tiles(cli::tiles::TilesArgs),
    #[command(about = "List the preset regions and named places")]
    Places(cli::tiles::PlacesArgs),
    #[command(about = "Print a shell completion script (bash, zsh, fish, elvish, powershell)")]
    Completions(cli::completions::CompletionsArgs),
    #[command(about = "Print the man page (roff): dunewatch man > dunewatch.1")]
    Man(cli::completions::ManArgs),
    #[command(about = "The site register: add runs, report what is new and what was reviewed")]
    Register(cli::register::RegisterArgs),
    #[command(about = "Compare dated scenes in date order and follow each site in a register")]
    Watch(cli::watch::WatchArgs),
    #[command(
        about = "Search a STAC API for Sentinel-2 scenes over an area; suggest a before/after pair"
    )]
    Scenes(cli::scenes::ScenesArgs),
    #[command(about = "Save an area's crops of STAC items (COGs and item JSON) for offline runs")]
    Fetch(cli::fetch::FetchArgs),
}

fn main() {
    dunewatch::run::tune_allocator();
    let cli = Cli::parse();
    // SIGINT, SIGTERM and SIGHUP remove the run's partial outputs first.
    dunewatch::cleanup::install_signal_handlers();
    // GDAL's own messages would print before ours; its errors reach us as
    // return values and are reported once, in one line, naming the file.
    // With CPL_DEBUG set (troubleshooting GDAL), its messages go to stderr.
    if std::env::var_os("CPL_DEBUG").is_none() {
        gdal::config::set_error_handler(|_, _, _| {});
    }
    if let Err(e) = run(cli) {
        eprintln!("dunewatch: error: {e:#}");
        std::process::exit(exit_code(&e));
    }
}

/// 2 for a usage error (an option out of range, as clap's own parse
/// errors), 1 for everything else (bad input, a failed write).
fn exit_code(e: &anyhow::Error) -> i32 {
    let usage = e.chain().any(|c| {
        matches!(
            c.downcast_ref::<dunewatch::error::Error>(),
            Some(dunewatch::error::Error::Usage(_))
        ) || c.downcast_ref::<cli::limits::Usage>().is_some()
    });
    if usage {
        2
    } else {
        1
    }
}

fn run(cli: Cli) -> Result<()> {
    // Listings piped into `head` end quietly when the reader closes, as
    // other Unix tools do (Rust ignores SIGPIPE, so println! would panic).
    // Only for commands that write nothing but stdout: a run's staged files
    // are cleaned up by the handlers above, which SIGPIPE would bypass.
    if matches!(
        cli.command,
        Command::Tiles(_) | Command::Places(_) | Command::Completions(_) | Command::Man(_)
    ) {
        // SAFETY: restoring a signal's default action; no handler involved.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    match cli.command {
        Command::Detect(a) => cli::detect::run(&a),
        Command::Eval(a) => cli::eval::run(&a),
        Command::Sites(a) => cli::sites::run(&a),
        Command::Train(a) => cli::train::run(&a),
        Command::Batch(a) => cli::batch::run(&a),
        Command::Tiles(a) => cli::tiles::run(&a),
        Command::Places(a) => cli::tiles::run_places(&a),
        Command::Completions(a) => cli::completions::run_completions(&a),
        Command::Man(a) => cli::completions::run_man(&a),
        Command::Register(a) => cli::register::run(&a),
        Command::Watch(a) => cli::watch::run(&a),
        Command::Scenes(a) => cli::scenes::run(&a),
        Command::Fetch(a) => cli::fetch::run(&a),
    }
}
