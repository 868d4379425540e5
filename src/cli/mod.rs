//! One file per subcommand: its clap arguments (the help text) and the glue
//! that calls the library and prints.

pub mod batch;
pub mod detect;
pub mod eval;
pub mod limits;
pub mod progress;
pub mod sites;
pub mod tiles;
pub mod train;
