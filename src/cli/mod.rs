//! One file per subcommand: its clap arguments (the help text) and the glue
//! that calls the library and prints.

pub mod batch;
pub mod detect;
pub mod eval;
pub mod fetch;
pub mod progress;
pub mod scenes;
pub mod sites;
pub mod train;
