//! Where and in what order a COG's tiles are encoded and written: the
//! pools that encode them ([`Workers`]), batches of about 64 tiles, and the
//! pipeline that writes one batch on a thread of its own while the next is
//! encoded.

use crate::error::{Error, Result};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Where a COG's tiles are encoded: on `first` until `switch` is set, then
/// on `then` (checked before each batch of tiles).
///
/// Why: the score's COG is written while the sites are found. On workers
/// of their own in Linux's idle scheduling class, its tiles use the CPU time
/// the sites step leaves (it waits on its readers), instead of queueing
/// behind the sites' tasks on a shared pool; once the sites are done, the
/// rest goes to the run's ordinary workers, so that nothing stays in the
/// idle class (an unprivileged thread cannot leave it) where other
/// programs' work could starve it. On a machine busy with other programs,
/// what the idle workers have begun (one batch, about 64 tiles) waits for
/// idle CPU; the CPU is busy meanwhile.
#[derive(Clone, Copy)]
pub struct Workers<'a> {
    pub first: &'a rayon::ThreadPool,
    pub then: &'a rayon::ThreadPool,
    pub switch: &'a AtomicBool,
}

/// Runs `f` on the pool `workers` say, or on the current one.
pub fn on<R: Send>(workers: Option<Workers>, f: impl FnOnce() -> R + Send) -> R {
    match workers {
        Some(w) if !w.switch.load(Ordering::Relaxed) => w.first.install(f),
        Some(w) => w.then.install(f),
        None => f(),
    }
}

/// Tiles encoded in parallel between two writes: with a row at a time, the
/// workers idled at the end of every row (a full tile's row is 22 tiles;
/// the COG step ran on 1.4 of 2 cores once alone).
const BATCH_TILES: usize = 64;

/// The rows of a level `across` x `down` tiles in groups of about
/// [`BATCH_TILES`] tiles (whole rows, at least one).
pub fn batches(across: usize, down: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    let n = (BATCH_TILES / across.max(1)).max(1);
    (0..down).step_by(n).map(move |y| y..(y + n).min(down))
}

/// `produce` over `jobs` on this thread, `consume` of each result in order
/// on a thread of its own that owns `state`, one result ahead: the workers
/// encode the next batch while the last is written (written in turn, the
/// workers idled meanwhile). Returns the state, or the first error. On a
/// one-thread pool, one after the other on this thread (`--threads 1` keeps
/// the run on one core).
pub fn pipeline<J, R: Send, S: Send>(
    dst: &Path,
    jobs: impl IntoIterator<Item = J>,
    mut state: S,
    mut produce: impl FnMut(J) -> Result<R>,
    consume: impl Fn(&mut S, R) -> Result<()> + Send,
) -> Result<S> {
    if rayon::current_num_threads() == 1 {
        for job in jobs {
            consume(&mut state, produce(job)?)?;
        }
        return Ok(state);
    }
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<R>(1);
        let writer = scope.spawn(move || -> Result<S> {
            for r in rx {
                consume(&mut state, r)?;
            }
            Ok(state)
        });
        let mut failed = None;
        for job in jobs {
            match produce(job) {
                // A closed channel: the writer failed, and says why below.
                Ok(r) => {
                    if tx.send(r).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        drop(tx);
        let written = writer
            .join()
            .map_err(|_| Error::output(dst, "the COG writer panicked"))?;
        match failed {
            Some(e) => Err(e),
            None => written,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_run_on_the_first_pool_until_switched() {
        let pool = |n| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .unwrap()
        };
        let (first, then) = (pool(1), pool(3));
        let switch = AtomicBool::new(false);
        let w = Workers {
            first: &first,
            then: &then,
            switch: &switch,
        };
        assert_eq!(on(Some(w), rayon::current_num_threads), 1);
        switch.store(true, Ordering::Relaxed);
        assert_eq!(on(Some(w), rayon::current_num_threads), 3);
        let current = then.install(|| on(None, rayon::current_num_threads));
        assert_eq!(current, 3);
    }

    #[test]
    fn the_pipeline_consumes_in_order_and_reports_the_first_error() {
        let dst = Path::new("x.tif");
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let got = pipeline(
                    dst,
                    0..100,
                    Vec::new(),
                    |j| Ok(j * 2),
                    |v, r| {
                        v.push(r);
                        Ok(())
                    },
                );
                assert_eq!(got.unwrap(), (0..100).map(|j| j * 2).collect::<Vec<_>>());
                let failed = pipeline(
                    dst,
                    0..100,
                    Vec::new(),
                    |j| {
                        if j == 7 {
                            Err(Error::invalid("job 7"))
                        } else {
                            Ok(j)
                        }
                    },
                    |v, r| {
                        v.push(r);
                        Ok(())
                    },
                );
                assert!(failed.unwrap_err().to_string().contains("job 7"));
                let refused = pipeline(dst, 0..100, 0, Ok, |n, r| {
                    *n += 1;
                    if r == 3 {
                        Err(Error::invalid("write 3"))
                    } else {
                        Ok(())
                    }
                });
                assert!(refused.unwrap_err().to_string().contains("write 3"));
            });
        }
    }
}
