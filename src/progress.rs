//! Progress of the long stages, for a progress bar on a terminal. The
//! library only counts; the binary decides whether and how to show it.

/// Receives stage starts and advances. Every method has a silent default.
pub trait Progress: Sync {
    /// A stage of `total` units starts (replacing the previous one).
    fn start(&self, _stage: &'static str, _total: u64) {}
    /// `n` more units of the current stage are done.
    fn advance(&self, _n: u64) {}
    /// The whole job is done.
    fn finish(&self) {}
}

/// Shows nothing.
pub struct Silent;

impl Progress for Silent {}
