//! The reflectance the score pass keeps for the sites step: the statistics
//! bands of both dates at every pixel within two pixels of a changed one.
//!
//! Why: describing the sites needs both scenes' reflectance over each site
//! and the pixels around it (spectral means over the site, 3x3 texture and
//! edge windows along its edge). Read from the scenes again, that decoded
//! about 1.4 scenes' worth of file tiles on a full tile (DEFLATE, the
//! predictor, the 20 m bands' upsampling), more than the score pass itself.
//! The score pass holds those values anyway: it keeps the ones the sites
//! will ask for, raw, in a staging file that the sites read back with plain
//! reads. Same values to the bit, so the same sites.
//!
//! Which pixels: a site's pixels are the change mask after a 3x3 opening
//! and closing, so they lie within one pixel of a changed pixel, and the
//! texture windows reach one pixel further: every pixel within two
//! (Chebyshev) of a changed pixel is kept. A block sees only its own scores,
//! so it also keeps its two-pixel border (a changed pixel of the next block
//! may be that close). The cloud-cell fixup after the pass only ever turns
//! changed pixels into masked ones, so what was kept covers the final mask.
//! On the full bench tile (7% changed) that is 22% of the pixels, 1.3 GB.
//!
//! Layout: per block, the kept pixels in row order, each pixel's bands
//! together (before's, then after's), f32 in native byte order, so a site's
//! window is one read per block it overlaps; the index (a bitmap of kept
//! pixels and the count before each row) stays in memory.
//!
//! The file is written and read past the page cache
//! ([`crate::export::direct_file`]): on the bench VM, putting its 1.3 GB
//! through the cache cost about 1.5 CPU s of system time while both cores
//! were busy, where direct I/O costs next to none. The sites step reads it
//! in pieces of a strip's rows ([`KeptPixels::load`]) ahead of use, so the
//! device's latency is not waited on per site.

use super::pixels::Pixels;
use super::{mask_value, MASK_CHANGE, STAT_BANDS};
use crate::align::Window;
use crate::error::{Error, Result};
use crate::export::direct_file::{DirectFile, DirectReader};
use std::path::{Path, PathBuf};

/// Planes kept per pixel: the statistics bands before, then after.
pub const PLANES: usize = 2 * STAT_BANDS.len();

/// How far from a changed pixel pixels are kept (see the module comment).
const REACH: usize = 2;

/// Which pixels of a block are kept.
#[derive(Debug, Clone)]
struct BlockIndex {
    win: Window,
    /// Bit `x` of row `y`: word `y * words + x / 64`, bit `x % 64`.
    bits: Vec<u64>,
    words: usize,
    /// Kept pixels before each row (`h + 1` entries).
    row_start: Vec<u32>,
}

impl BlockIndex {
    /// Kept pixels of row `r` before column `c` (block coordinates).
    fn before_col(&self, r: usize, c: usize) -> usize {
        let row = &self.bits[r * self.words..(r + 1) * self.words];
        let full: u32 = row[..c / 64].iter().map(|w| w.count_ones()).sum();
        let part = match c % 64 {
            0 => 0,
            b => (row[c / 64] & ((1u64 << b) - 1)).count_ones(),
        };
        (full + part) as usize
    }

    /// Calls `put(c - cols.start, k)` for each kept column `c` of row `r`
    /// in `cols`, `k` counting them from 0, word by word over the set bits.
    #[inline]
    fn for_kept(&self, r: usize, cols: std::ops::Range<usize>, mut put: impl FnMut(usize, usize)) {
        let row = &self.bits[r * self.words..(r + 1) * self.words];
        let mut k = 0;
        for (wi, &w) in row
            .iter()
            .enumerate()
            .take(cols.end.div_ceil(64))
            .skip(cols.start / 64)
        {
            let base = wi * 64;
            let mut word = w;
            if base < cols.start {
                word &= !0u64 << (cols.start - base);
            }
            if cols.end - base < 64 {
                word &= (1u64 << (cols.end - base)) - 1;
            }
            while word != 0 {
                put(base + word.trailing_zeros() as usize - cols.start, k);
                k += 1;
                word &= word - 1;
            }
        }
    }
}

/// One block's kept pixels, made by a scoring worker for the writer.
pub struct KeptBlock {
    index: BlockIndex,
    /// The kept pixels' `PLANES` values each, f32 in native byte order.
    bytes: Vec<u8>,
}

impl KeptBlock {
    /// The pixels of `block` to keep, given its scores (`block.len()` of
    /// them, row-major) and the mask threshold, with their reflectance from
    /// `sub`, the block's pixels read over `sub_read` (which holds `block`).
    pub fn keep(
        sub: &Pixels,
        sub_read: Window,
        block: Window,
        scores: &[f32],
        threshold: f32,
    ) -> KeptBlock {
        let (w, h) = (block.w, block.h);
        debug_assert_eq!(scores.len(), w * h);
        // Within REACH of a changed pixel: along rows, then along columns.
        let mut along = vec![false; w * h];
        for (row, out) in scores.chunks_exact(w).zip(along.chunks_exact_mut(w)) {
            for (x, s) in row.iter().enumerate() {
                if mask_value(*s, threshold) == MASK_CHANGE {
                    out[x.saturating_sub(REACH)..(x + REACH + 1).min(w)].fill(true);
                }
            }
        }
        let words = w.div_ceil(64);
        let mut bits = vec![0u64; words * h];
        let mut row_start = Vec::with_capacity(h + 1);
        let mut from = Vec::new(); // offsets in `sub` of the kept pixels
        let (ox, oy) = (block.x - sub_read.x, block.y - sub_read.y);
        let mut near = vec![true; w];
        for y in 0..h {
            row_start.push(from.len() as u32);
            // Then along columns (the border rows and columns are all kept).
            if y >= REACH && y + REACH < h {
                near.fill(false);
                for r in y - REACH..=y + REACH {
                    for (n, &a) in near.iter_mut().zip(&along[r * w..(r + 1) * w]) {
                        *n |= a;
                    }
                }
                near[..REACH.min(w)].fill(true);
                near[w.saturating_sub(REACH)..].fill(true);
            } else {
                near.fill(true);
            }
            for (x, _) in near.iter().enumerate().filter(|(_, n)| **n) {
                bits[y * words + x / 64] |= 1 << (x % 64);
                from.push((oy + y) * sub_read.w + ox + x);
            }
        }
        row_start.push(from.len() as u32);
        let planes: [&[f32]; PLANES] = std::array::from_fn(|k| {
            let (date, band) = (k / STAT_BANDS.len(), k % STAT_BANDS.len());
            if date == 0 {
                &sub.before[band][..]
            } else {
                &sub.after[band][..]
            }
        });
        // Gathered into a buffer sized once: pushing 4 bytes at a time was
        // most of this function on a full tile's many kept pixels.
        let mut bytes = vec![0u8; from.len() * PLANES * 4];
        for (px, &i) in bytes.chunks_exact_mut(PLANES * 4).zip(&from) {
            for (v, plane) in px.chunks_exact_mut(4).zip(planes) {
                v.copy_from_slice(&plane[i].to_ne_bytes());
            }
        }
        KeptBlock {
            index: BlockIndex {
                win: block,
                bits,
                words,
                row_start,
            },
            bytes,
        }
    }
}

/// Appends blocks to the staging file; one thread owns it (the score
/// pass's writer).
pub struct KeptWriter {
    path: PathBuf,
    out: Option<DirectFile>,
    offset: u64,
    index: Vec<(BlockIndex, u64)>,
}

impl KeptWriter {
    pub fn create(path: &Path) -> Result<KeptWriter> {
        let f = DirectFile::create(path, 0).map_err(|e| Error::output(path, e))?;
        Ok(KeptWriter {
            path: path.to_path_buf(),
            out: Some(f),
            offset: 0,
            index: Vec::new(),
        })
    }

    pub fn push(&mut self, b: KeptBlock) -> Result<()> {
        let out = self.out.as_mut().expect("not finished");
        out.write_all(&b.bytes)
            .map_err(|e| Error::output(&self.path, e))?;
        self.index.push((b.index, self.offset));
        self.offset += b.bytes.len() as u64;
        Ok(())
    }

    /// The kept pixels, ready to be read.
    pub fn finish(mut self) -> Result<KeptPixels> {
        let file = self
            .out
            .take()
            .expect("finished once")
            .finish()
            .map_err(|e| Error::output(&self.path, e))?;
        drop(file);
        let mut index = std::mem::take(&mut self.index);
        index.sort_by_key(|(b, _)| (b.win.y, b.win.x));
        let file = DirectReader::open(&self.path).map_err(|e| Error::output(&self.path, e))?;
        Ok(KeptPixels {
            path: std::mem::take(&mut self.path),
            file,
            bytes: self.offset,
            index,
        })
    }
}

impl Drop for KeptWriter {
    fn drop(&mut self) {
        if self.out.is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The kept pixels of a run, read by the sites step (any number of threads
/// at once); the staging file goes when this does.
pub struct KeptPixels {
    path: PathBuf,
    file: DirectReader,
    bytes: u64,
    /// Blocks by (row, column), with their offsets in the file.
    index: Vec<(BlockIndex, u64)>,
}

/// The kept values of a window's rows, as read from the file: for each
/// block the window overlaps, those rows' kept pixels (over all the
/// block's columns). Windows of it are cut with [`KeptPiece::fill`].
pub struct KeptPiece {
    win: Window,
    parts: Vec<Part>,
}

/// One block's rows of a [`KeptPiece`].
struct Part {
    /// The block's place in [`KeptPixels::index`].
    block: usize,
    rows: std::ops::Range<usize>,
    /// The rows' values are `buf[at]` as f32s (see [`Part::values`]).
    buf: Vec<u8>,
    at: std::ops::Range<usize>,
}

impl Part {
    fn values(&self) -> &[f32] {
        // SAFETY: every bit pattern is an f32, and the file holds them in
        // native byte order. `align_to` puts nothing in the prefix here: the
        // values start at a multiple of 4 bytes in the file, so at an
        // aligned address (see `DirectReader::read_at`); checked below.
        let (head, vals, _) = unsafe { self.buf[self.at.clone()].align_to::<f32>() };
        assert!(head.is_empty(), "kept values aligned");
        vals
    }
}

impl KeptPixels {
    /// Removes the file now; the last holder lets it go on a thread of its
    /// own: closing it frees its blocks, which took 0.2 s of the end of a
    /// full tile's run (1.3 GB) with every other step done.
    pub fn discard(this: std::sync::Arc<KeptPixels>) {
        let _ = std::fs::remove_file(&this.path);
        std::thread::spawn(move || drop(this));
    }

    /// Size of the staging file.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Reads the kept pixels of `win`'s rows in the blocks `win` overlaps:
    /// one read per block, straight from the device (the file was written
    /// past the page cache).
    pub fn load(&self, win: Window) -> Result<KeptPiece> {
        let (wy1, wx1) = (win.y + win.h, win.x + win.w);
        // Blocks of a strip share their rows; the strips are in order.
        let first = self
            .index
            .partition_point(|(b, _)| b.win.y + b.win.h <= win.y);
        let mut parts = Vec::new();
        for (k, (b, offset)) in self.index.iter().enumerate().skip(first) {
            if b.win.y >= wy1 {
                break;
            }
            let (x0, x1) = (win.x.max(b.win.x), wx1.min(b.win.x + b.win.w));
            let (y0, y1) = (win.y.max(b.win.y), wy1.min(b.win.y + b.win.h));
            if x0 >= x1 || y0 >= y1 {
                continue;
            }
            let (r0, r1) = (y0 - b.win.y, y1 - b.win.y);
            let (a, z) = (b.row_start[r0] as usize, b.row_start[r1] as usize);
            if a == z {
                continue;
            }
            let mut buf = Vec::new();
            let at = self
                .file
                .read_at(
                    offset + (a * PLANES * 4) as u64,
                    (z - a) * PLANES * 4,
                    &mut buf,
                )
                .map_err(|e| Error::output(&self.path, e))?;
            parts.push(Part {
                block: k,
                rows: r0..r1,
                buf,
                at,
            });
        }
        Ok(KeptPiece { win, parts })
    }

    /// Every plane (see [`PLANES`]) over a window of the run grid at full
    /// resolution, row-major: the kept values, NaN where not kept or not
    /// finite (as the scenes read for the sites are).
    pub fn read(&self, win: Window) -> Result<Vec<Vec<f32>>> {
        let mut out = vec![vec![f32::NAN; win.len()]; PLANES];
        self.load(win)?.fill(self, win, &mut out);
        Ok(out)
    }

    /// [`KeptPixels::read`] as the statistics bands before and after.
    pub fn read_dates(&self, win: Window) -> Result<DatePlanes> {
        let mut before = self.read(win)?;
        let after = before.split_off(STAT_BANDS.len());
        Ok((before, after))
    }
}

impl KeptPiece {
    /// The window it was read over.
    pub fn window(&self) -> Window {
        self.win
    }

    /// Writes the kept values of the part of `win` this piece holds into
    /// `out` (`PLANES` planes over `win`, row-major); NaN for kept values
    /// that are not finite. Pixels not kept are left as they are.
    pub fn fill(&self, kept: &KeptPixels, win: Window, out: &mut [Vec<f32>]) {
        let (wy1, wx1) = (win.y + win.h, win.x + win.w);
        for part in &self.parts {
            let b = &kept.index[part.block].0;
            let vals = part.values();
            let (x0, x1) = (
                win.x.max(b.win.x).max(self.win.x),
                wx1.min(b.win.x + b.win.w).min(self.win.x + self.win.w),
            );
            let (y0, y1) = (
                win.y.max(b.win.y + part.rows.start),
                wy1.min(b.win.y + part.rows.end),
            );
            if x0 >= x1 || y0 >= y1 {
                continue;
            }
            let a = b.row_start[part.rows.start] as usize;
            let (c0, c1) = (x0 - b.win.x, x1 - b.win.x);
            for r in y0 - b.win.y..y1 - b.win.y {
                let first = b.row_start[r] as usize - a + b.before_col(r, c0);
                let dst = (b.win.y + r - win.y) * win.w + x0 - win.x;
                b.for_kept(r, c0..c1, |c, k| {
                    let px = &vals[(first + k) * PLANES..(first + k + 1) * PLANES];
                    for (plane, &v) in out.iter_mut().zip(px) {
                        plane[dst + c] = if v.is_finite() { v } else { f32::NAN };
                    }
                });
            }
        }
    }
}

/// The statistics bands' planes before and after, one `Vec` per band.
pub type DatePlanes = (Vec<Vec<f32>>, Vec<Vec<f32>>);

impl Drop for KeptPixels {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::masks::MaskReason;
    use crate::detect::SCORE_NODATA;

    const T: f32 = 10.0;

    /// Pixels over `read` whose plane `p` at (x, y) holds `p * 1e6 + y * 1000 + x`.
    fn pixels(read: Window) -> Pixels {
        let plane = |p: usize| -> Vec<f32> {
            (read.y..read.y + read.h)
                .flat_map(|y| {
                    (read.x..read.x + read.w).map(move |x| (p * 1_000_000 + y * 1000 + x) as f32)
                })
                .collect()
        };
        Pixels {
            shape: (read.w, read.h),
            before: std::array::from_fn(plane),
            after: std::array::from_fn(|k| plane(k + STAT_BANDS.len())),
            mask: vec![MaskReason::Valid; read.len()],
        }
    }

    fn value(p: usize, x: usize, y: usize) -> f32 {
        (p * 1_000_000 + y * 1000 + x) as f32
    }

    /// A 40 x 24 grid in four blocks (two strips of two), changed where
    /// `changed` says, written block by block in a scrambled order.
    fn kept(dir: &Path, changed: &dyn Fn(usize, usize) -> bool) -> KeptPixels {
        let (gw, gh) = (40, 24);
        let blocks = [
            (20, 12, 20, 12),
            (0, 0, 20, 12),
            (20, 0, 20, 12),
            (0, 12, 20, 12),
        ];
        let mut wr = KeptWriter::create(&dir.join("kept.bin")).unwrap();
        for (x, y, w, h) in blocks {
            let block = Window { x, y, w, h };
            // The read has a halo of 1, clipped to the grid.
            let read = crate::detect::expand(block, 1, gw, gh);
            let sub = pixels(read);
            let scores: Vec<f32> = (y..y + h)
                .flat_map(|r| (x..x + w).map(move |c| (r, c)))
                .map(|(r, c)| {
                    if r == 5 && c == 5 {
                        SCORE_NODATA
                    } else if changed(c, r) {
                        T + 1.0
                    } else {
                        T - 1.0
                    }
                })
                .collect();
            wr.push(KeptBlock::keep(&sub, read, block, &scores, T))
                .unwrap();
        }
        wr.finish().unwrap()
    }

    #[test]
    fn every_pixel_within_two_of_a_change_reads_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let changed =
            |x: usize, y: usize| (x == 19 && y == 6) || (x == 30 && y == 18) || (x, y) == (5, 5);
        let k = kept(dir.path(), &changed);
        let all = Window {
            x: 0,
            y: 0,
            w: 40,
            h: 24,
        };
        let planes = k.read(all).unwrap();
        for (p, v) in planes.iter().enumerate() {
            for y in 0..24usize {
                for x in 0..40usize {
                    let near = |cx: usize, cy: usize| x.abs_diff(cx) <= 2 && y.abs_diff(cy) <= 2;
                    let got = v[y * 40 + x];
                    if near(19, 6) || near(30, 18) {
                        assert_eq!(got, value(p, x, y), "plane {p} at ({x}, {y})");
                    } else if got.is_finite() {
                        // Kept only on a block's border.
                        assert!(
                            x % 20 < 2 || x % 20 >= 18 || y % 12 < 2 || y % 12 >= 10,
                            "({x}, {y}) kept"
                        );
                        assert_eq!(got, value(p, x, y));
                    }
                }
            }
            // The masked pixel (score nodata) is no change: nothing around it.
            assert!(v[7 * 40 + 7].is_nan());
        }
    }

    #[test]
    fn windows_read_across_blocks_equal_the_same_cut_from_the_whole() {
        let dir = tempfile::tempdir().unwrap();
        let k = kept(dir.path(), &|x, y| (x + 3 * y) % 7 == 0);
        let all = Window {
            x: 0,
            y: 0,
            w: 40,
            h: 24,
        };
        let whole = k.read(all).unwrap().swap_remove(3);
        // Dense enough that every pixel is within two of a change.
        assert!(whole.iter().all(|v| v.is_finite()));
        for win in [
            Window {
                x: 15,
                y: 9,
                w: 10,
                h: 6,
            },
            Window {
                x: 0,
                y: 11,
                w: 40,
                h: 2,
            },
            Window {
                x: 39,
                y: 23,
                w: 1,
                h: 1,
            },
            Window {
                x: 21,
                y: 0,
                w: 3,
                h: 24,
            },
        ] {
            let got = k.read(win).unwrap().swap_remove(3);
            let want: Vec<f32> = (win.y..win.y + win.h)
                .flat_map(|y| whole[y * 40 + win.x..y * 40 + win.x + win.w].to_vec())
                .collect();
            assert_eq!(got, want, "{win:?}");
        }
        let (before, after) = k
            .read_dates(Window {
                x: 2,
                y: 3,
                w: 1,
                h: 1,
            })
            .unwrap();
        assert_eq!(
            (before.len(), after.len()),
            (STAT_BANDS.len(), STAT_BANDS.len())
        );
        assert_eq!(before[1][0], value(1, 2, 3));
        assert_eq!(after[0][0], value(STAT_BANDS.len(), 2, 3));
    }

    #[test]
    fn a_window_filled_from_pieces_of_rows_equals_the_window_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let k = kept(dir.path(), &|x, y| {
            [(10, 8), (25, 14), (12, 15)].contains(&(x, y))
        });
        let piece = |y, h| Window { x: 5, y, w: 30, h };
        // Two pieces of rows, as the sites step holds them; the window
        // crosses both and the blocks' edges (x 20, y 12).
        let pieces = [
            k.load(piece(0, 10)).unwrap(),
            k.load(piece(10, 14)).unwrap(),
        ];
        assert_eq!(pieces[1].window(), piece(10, 14));
        let win = Window {
            x: 8,
            y: 6,
            w: 22,
            h: 12,
        };
        let mut got = vec![vec![f32::NAN; win.len()]; PLANES];
        for p in &pieces {
            p.fill(&k, win, &mut got);
        }
        let want = k.read(win).unwrap();
        assert!(want[2].iter().any(|v| v.is_finite()) && want[2].iter().any(|v| v.is_nan()));
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.len(), w.len());
            assert!(g.iter().zip(w).all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }

    #[test]
    fn wide_rows_read_back_whole_words_and_single_bits_alike() {
        // One 150 x 6 block: rows 0-5 all kept (within two of the changed
        // row 2 or 3), except column runs far from the changed columns.
        let dir = tempfile::tempdir().unwrap();
        let block = Window {
            x: 0,
            y: 0,
            w: 150,
            h: 8,
        };
        let mut sub = pixels(block);
        sub.before[0][3 * 150 + 70] = f32::INFINITY;
        let scores: Vec<f32> = (0..8usize)
            .flat_map(|y| (0..150usize).map(move |x| (x, y)))
            .map(|(x, y)| {
                let changed = (y == 3 && x < 100) || (y == 4 && x == 140);
                if changed {
                    T + 1.0
                } else {
                    T - 1.0
                }
            })
            .collect();
        let mut wr = KeptWriter::create(&dir.path().join("kept.bin")).unwrap();
        wr.push(KeptBlock::keep(&sub, block, block, &scores, T))
            .unwrap();
        let k = wr.finish().unwrap();
        for (x0, x1) in [(0, 150), (3, 140), (64, 128), (70, 75), (99, 145), (63, 65)] {
            let win = Window {
                x: x0,
                y: 0,
                w: x1 - x0,
                h: 8,
            };
            let got = k.read(win).unwrap().swap_remove(0);
            for y in 0..8usize {
                for x in x0..x1 {
                    let near = (y.abs_diff(3) <= 2 && x < 102)
                        || (y.abs_diff(4) <= 2 && x.abs_diff(140) <= 2)
                        || !(2..6).contains(&y)
                        || !(2..148).contains(&x);
                    let v = got[y * win.w + x - x0];
                    if (x, y) == (70, 3) {
                        assert!(v.is_nan(), "not finite reads as NaN");
                    } else if near {
                        assert_eq!(v, value(0, x, y), "({x}, {y}) in {x0}..{x1}");
                    } else {
                        assert!(v.is_nan(), "({x}, {y}) in {x0}..{x1} not kept");
                    }
                }
            }
        }
    }

    #[test]
    fn the_file_goes_with_the_reader_and_with_an_unfinished_writer() {
        let dir = tempfile::tempdir().unwrap();
        let k = kept(dir.path(), &|_, _| false);
        let path = dir.path().join("kept.bin");
        assert!(path.is_file() && k.bytes() > 0, "borders are kept");
        drop(k);
        assert!(!path.exists());
        let w = KeptWriter::create(&path).unwrap();
        drop(w);
        assert!(!path.exists());
    }
}
