//! `dunewatch eval` (being written).

use anyhow::Result;
use clap::Args;

/// Scores a change mask against a labelled truth raster.
#[derive(Args, Debug)]
pub struct EvalArgs {}

pub fn run(_args: &EvalArgs) -> Result<()> {
    anyhow::bail!("eval is not implemented yet")
}
