//! One value per rayon worker thread, made on first use and kept for the
//! whole parallel loop.
//!
//! rayon's `map_init` calls its init once per *job*, and work stealing splits
//! a loop into many jobs: a GDAL dataset opened there (a warped VRT above
//! all, whose warper and block cache start cold) would be opened again and
//! again. Measured on a 3140 x 3196 scene, 2 threads ran slower than 1.

use std::sync::Mutex;

pub struct PerThread<T> {
    slots: Vec<Mutex<Option<T>>>,
}

impl<T: Send> PerThread<T> {
    /// Slots for the current rayon pool's threads, plus one for callers
    /// outside the pool.
    pub fn new() -> Self {
        let n = rayon::current_num_threads() + 1;
        PerThread {
            slots: (0..n).map(|_| Mutex::new(None)).collect(),
        }
    }

    /// Runs `f` on this thread's value, making it with `init` the first time.
    /// `init` errors are returned and retried on the next call.
    pub fn with<R, E>(
        &self,
        init: impl FnOnce() -> Result<T, E>,
        f: impl FnOnce(&mut T) -> Result<R, E>,
    ) -> Result<R, E> {
        let i = rayon::current_thread_index()
            .map_or(self.slots.len() - 1, |i| i.min(self.slots.len() - 2));
        // Only this thread uses slot i, so the lock is never contended; a
        // panic in a previous use leaves the value usable.
        let mut slot = self.slots[i].lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(init()?);
        }
        f(slot.as_mut().unwrap())
    }
}

impl<T: Send> Default for PerThread<T> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn one_init_per_thread() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let inits = AtomicUsize::new(0);
        pool.install(|| {
            let pt: PerThread<u64> = PerThread::new();
            let sum: u64 = (0..10_000u64)
                .into_par_iter()
                .map(|i| {
                    pt.with(
                        || {
                            inits.fetch_add(1, Ordering::SeqCst);
                            Ok::<_, ()>(0)
                        },
                        |v| {
                            *v += 1;
                            Ok(i)
                        },
                    )
                    .unwrap()
                })
                .sum();
            assert_eq!(sum, 10_000 * 9_999 / 2);
        });
        assert!(
            inits.load(Ordering::SeqCst) <= 2,
            "{} inits",
            inits.load(Ordering::SeqCst)
        );
    }
}
