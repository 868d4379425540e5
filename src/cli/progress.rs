//! A progress bar per stage, with ETA, on stderr when it is a terminal and
//! `--quiet` is not given; nothing otherwise (logs and pipes stay clean).
//!
//! Each stage gets a bar of its own, set up hidden and shown only once its
//! name, length and position are all set: changing one bar's length and
//! position in turn let a redraw in between show the last stage's count
//! over the new stage's length ("20/2"). Counts are kept within the
//! length, so an advance that arrives late from the stage before cannot
//! push a stage past its end.

use dunewatch::progress::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;

pub struct Bar {
    /// The current stage's bar; None when nothing is shown.
    bar: Option<Mutex<ProgressBar>>,
    /// Where bars draw (stderr; hidden in tests).
    target: fn() -> ProgressDrawTarget,
}

impl Bar {
    pub fn new(quiet: bool) -> Bar {
        if quiet || !std::io::stderr().is_terminal() {
            return Bar {
                bar: None,
                target: ProgressDrawTarget::hidden,
            };
        }
        Bar::drawing_to(ProgressDrawTarget::stderr)
    }

    fn drawing_to(target: fn() -> ProgressDrawTarget) -> Bar {
        Bar {
            bar: Some(Mutex::new(stage_bar("", 0, target))),
            target,
        }
    }
}

/// A bar for one stage, fully set up before it is shown.
fn stage_bar(stage: &'static str, total: u64, target: fn() -> ProgressDrawTarget) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
    let style =
        ProgressStyle::with_template("{prefix:>14} [{bar:30}] {pos}/{len} {elapsed} (ETA {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(stage);
    bar.set_draw_target(target());
    bar
}

impl Progress for Bar {
    fn start(&self, stage: &'static str, total: u64) {
        if let Some(m) = &self.bar {
            let mut b = m.lock().unwrap_or_else(|e| e.into_inner());
            b.finish_and_clear();
            *b = stage_bar(stage, total, self.target);
        }
    }
    fn advance(&self, n: u64) {
        if let Some(m) = &self.bar {
            let b = m.lock().unwrap_or_else(|e| e.into_inner());
            let len = b.length().unwrap_or(u64::MAX);
            b.set_position((b.position() + n).min(len));
        }
    }
    fn finish(&self) {
        if let Some(m) = &self.bar {
            m.lock()
                .unwrap_or_else(|e| e.into_inner())
                .finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(b: &Bar) -> (String, u64, Option<u64>) {
        let g = b.bar.as_ref().unwrap().lock().unwrap();
        (g.prefix(), g.position(), g.length())
    }

    #[test]
    fn a_new_stage_starts_at_zero_of_its_own_length() {
        let b = Bar::drawing_to(ProgressDrawTarget::hidden);
        b.start("describe sites", 41);
        b.advance(20);
        assert_eq!(shown(&b), ("describe sites".into(), 20, Some(41)));
        b.start("write COGs", 2);
        assert_eq!(shown(&b), ("write COGs".into(), 0, Some(2)));
        b.advance(1);
        assert_eq!(shown(&b), ("write COGs".into(), 1, Some(2)));
    }

    #[test]
    fn counts_never_pass_the_length() {
        let b = Bar::drawing_to(ProgressDrawTarget::hidden);
        b.start("write COGs", 2);
        // Late advances of the stage before, then the stage's own.
        for _ in 0..20 {
            b.advance(1);
        }
        assert_eq!(shown(&b), ("write COGs".into(), 2, Some(2)));
        // From several threads at once.
        b.start("chips", 100);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..40 {
                        b.advance(1);
                    }
                });
            }
        });
        assert_eq!(shown(&b), ("chips".into(), 100, Some(100)));
    }

    #[test]
    fn quiet_shows_nothing_and_takes_every_call() {
        let b = Bar::new(true);
        assert!(b.bar.is_none());
        b.start("score", 3);
        b.advance(5);
        b.finish();
    }
}
