//! Streams the rasters of a run of windows to the caller, read on reader
//! threads while the caller works on the window before.
//!
//! Why: in a strip pass, reading (decoding, upsampling 20 m bands) is about
//! half the work. Read and compute in turns, and a core idles while the other
//! finishes the slowest read. Each reader thread owns its GDAL handles and
//! always reads the same items (item `i` on thread `i % readers`), so the
//! file tiles it decoded for one window are still in its handles' cache for
//! the next; one bounded channel per reader keeps it at most one window
//! ahead, which bounds memory. Reading blocks with halos in the workers
//! instead decodes every tile on a block border again for each neighbour.

use super::Window;
use crate::error::{Error, Result};
use std::sync::mpsc::sync_channel;

/// Reads items `0..n_items` over each of `windows`, in order, and hands them
/// to `consume(k, items of windows[k])` on the calling thread.
///
/// `readers` threads read (each with its own state from `open`); with 0 the
/// calling thread reads too, so a one-thread run keeps to one core. The
/// first error, of a read or of `consume`, stops the pass and is returned.
pub fn read_ahead<S, T: Send>(
    windows: &[Window],
    n_items: usize,
    readers: usize,
    open: impl Fn() -> Result<S> + Sync,
    read: impl Fn(&mut S, usize, Window) -> Result<T> + Sync,
    mut consume: impl FnMut(usize, Vec<T>) -> Result<()>,
) -> Result<()> {
    let readers = readers.min(n_items);
    if readers == 0 {
        let mut state = open()?;
        for (k, &w) in windows.iter().enumerate() {
            let items = (0..n_items)
                .map(|i| read(&mut state, i, w))
                .collect::<Result<Vec<T>>>()?;
            consume(k, items)?;
        }
        return Ok(());
    }
    let mine = |t: usize| (t..n_items).step_by(readers);
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..readers)
        .map(|t| sync_channel::<(usize, Result<T>)>(mine(t).count()))
        .unzip();
    std::thread::scope(|scope| {
        for (t, tx) in txs.into_iter().enumerate() {
            let (open, read) = (&open, &read);
            scope.spawn(move || {
                let mut state = match open() {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = tx.send((t, Err(e)));
                        return;
                    }
                };
                for &w in windows {
                    for i in mine(t) {
                        let v = read(&mut state, i, w);
                        let failed = v.is_err();
                        // A closed channel means the consumer has stopped.
                        if tx.send((i, v)).is_err() || failed {
                            return;
                        }
                    }
                }
            });
        }
        let consumed = (|| -> Result<()> {
            for k in 0..windows.len() {
                let mut items: Vec<Option<T>> = (0..n_items).map(|_| None).collect();
                for (t, rx) in rxs.iter().enumerate() {
                    for _ in mine(t) {
                        let (i, v) = rx
                            .recv()
                            .map_err(|_| Error::invalid("a reader thread stopped"))?;
                        items[i] = Some(v?);
                    }
                }
                consume(k, items.into_iter().map(|v| v.expect("read")).collect())?;
            }
            Ok(())
        })();
        // Unblocks and stops the readers when the pass ends early.
        drop(rxs);
        consumed
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn windows(n: usize) -> Vec<Window> {
        (0..n)
            .map(|y| Window {
                x: 0,
                y,
                w: 3,
                h: 1,
            })
            .collect()
    }

    #[test]
    fn every_item_of_every_window_arrives_in_order_whatever_the_readers() {
        let ws = windows(7);
        for readers in [0, 1, 2, 3, 8] {
            let mut seen = Vec::new();
            read_ahead(
                &ws,
                5,
                readers,
                || Ok(()),
                |_, i, w| Ok(w.y * 10 + i),
                |k, items| {
                    assert_eq!(items, (0..5).map(|i| k * 10 + i).collect::<Vec<_>>());
                    seen.push(k);
                    Ok(())
                },
            )
            .unwrap();
            assert_eq!(seen, (0..7).collect::<Vec<_>>(), "{readers} readers");
        }
    }

    #[test]
    fn a_read_error_stops_the_pass_and_is_returned() {
        let ws = windows(50);
        for readers in [0, 2] {
            let consumed = AtomicUsize::new(0);
            let err = read_ahead(
                &ws,
                4,
                readers,
                || Ok(()),
                |_, i, w| {
                    if w.y == 3 && i == 1 {
                        Err(Error::invalid("bad tile"))
                    } else {
                        Ok(i)
                    }
                },
                |_, _| {
                    consumed.fetch_add(1, Ordering::Relaxed);
                    Ok(())
                },
            )
            .unwrap_err();
            assert!(err.to_string().contains("bad tile"), "{err}");
            assert_eq!(consumed.load(Ordering::Relaxed), 3);
        }
    }

    #[test]
    fn a_consumer_error_stops_the_readers() {
        let ws = windows(1000);
        let reads = AtomicUsize::new(0);
        let err = read_ahead(
            &ws,
            2,
            2,
            || Ok(()),
            |_, _, _| {
                reads.fetch_add(1, Ordering::Relaxed);
                Ok(0u8)
            },
            |k, _| {
                if k == 2 {
                    Err(Error::invalid("disk full"))
                } else {
                    Ok(())
                }
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("disk full"));
        // At most one window ahead (plus the one being read) per reader.
        assert!(reads.load(Ordering::Relaxed) <= 2 * 6, "{reads:?}");
    }
}
