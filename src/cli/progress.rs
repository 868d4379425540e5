//! A progress bar per stage, with ETA, on stderr when it is a terminal and
//! `--quiet` is not given; nothing otherwise (logs and pipes stay clean).

use dunewatch::progress::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

pub struct Bar(Option<ProgressBar>);

impl Bar {
    pub fn new(quiet: bool) -> Bar {
        if quiet || !std::io::stderr().is_terminal() {
            return Bar(None);
        }
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{prefix:>12} [{bar:30}] {pos}/{len} {elapsed} (ETA {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        Bar(Some(bar))
    }
}

impl Progress for Bar {
    fn start(&self, stage: &'static str, total: u64) {
        if let Some(b) = &self.0 {
            b.set_prefix(stage);
            b.set_length(total);
            b.set_position(0);
            b.reset_eta();
            b.reset_elapsed();
        }
    }
    fn advance(&self, n: u64) {
        if let Some(b) = &self.0 {
            b.inc(n);
        }
    }
    fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}
