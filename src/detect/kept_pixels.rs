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
//! Layout: per block, the kept pixels in row order, one plane per band
//! (before's bands, then after's), f32 in native byte order; the index (a
//! bitmap of kept pixels and the count before each row) stays in memory.

use super::pixels::Pixels;
use super::{mask_value, MASK_CHANGE, STAT_BANDS};
use crate::align::reader::Date;
use crate::align::Window;
use crate::error::{Error, Result};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
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
    fn kept(&self) -> usize {
        self.row_start[self.win.h] as usize
    }

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

    fn is_kept(&self, r: usize, c: usize) -> bool {
        self.bits[r * self.words + c / 64] >> (c % 64) & 1 == 1
    }
}

/// One block's kept pixels, made by a scoring worker for the writer.
pub struct KeptBlock {
    index: BlockIndex,
    /// `PLANES` planes of the kept pixels, f32 in native byte order.
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
        for y in 0..h {
            row_start.push(from.len() as u32);
            let rows = y.saturating_sub(REACH)..(y + REACH + 1).min(h);
            let edge_row = y < REACH || y + REACH >= h;
            for x in 0..w {
                let keep = edge_row
                    || x < REACH
                    || x + REACH >= w
                    || rows.clone().any(|r| along[r * w + x]);
                if keep {
                    bits[y * words + x / 64] |= 1 << (x % 64);
                    from.push((oy + y) * sub_read.w + ox + x);
                }
            }
        }
        row_start.push(from.len() as u32);
        let n = from.len();
        let mut bytes = Vec::with_capacity(n * PLANES * 4);
        for plane in sub.before.iter().chain(sub.after.iter()) {
            for &i in &from {
                bytes.extend_from_slice(&plane[i].to_ne_bytes());
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
    out: Option<BufWriter<File>>,
    offset: u64,
    index: Vec<(BlockIndex, u64)>,
}

impl KeptWriter {
    pub fn create(path: &Path) -> Result<KeptWriter> {
        let f = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|e| Error::output(path, e))?;
        Ok(KeptWriter {
            path: path.to_path_buf(),
            out: Some(BufWriter::with_capacity(1 << 20, f)),
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
            .into_inner()
            .map_err(|e| Error::output(&self.path, e.error()))?;
        let mut index = std::mem::take(&mut self.index);
        index.sort_by_key(|(b, _)| (b.win.y, b.win.x));
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
    file: File,
    bytes: u64,
    /// Blocks by (row, column), with their offsets in the file.
    index: Vec<(BlockIndex, u64)>,
}

impl KeptPixels {
    /// Size of the staging file.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Plane `plane` (see [`PLANES`]) over a window of the run grid at full
    /// resolution, row-major: the kept values, NaN where not kept or not
    /// finite (as the scenes read for the sites are).
    pub fn read(&self, plane: usize, win: Window) -> Result<Vec<f32>> {
        assert!(plane < PLANES);
        let mut out = vec![f32::NAN; win.len()];
        let (wy1, wx1) = (win.y + win.h, win.x + win.w);
        // Blocks of a strip share their rows; the strips are in order.
        let first = self
            .index
            .partition_point(|(b, _)| b.win.y + b.win.h <= win.y);
        for (b, offset) in &self.index[first..] {
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
            // The rows' kept values in one read, then the window's columns.
            let mut buf = vec![0u8; (z - a) * 4];
            let at = offset + ((plane * b.kept() + a) * 4) as u64;
            self.file
                .read_exact_at(&mut buf, at)
                .map_err(|e| Error::output(&self.path, e))?;
            let (c0, c1) = (x0 - b.win.x, x1 - b.win.x);
            for r in r0..r1 {
                let mut k = b.row_start[r] as usize - a + b.before_col(r, c0);
                let dst = (b.win.y + r - win.y) * win.w + b.win.x - win.x;
                for c in c0..c1 {
                    if b.is_kept(r, c) {
                        let v = f32::from_ne_bytes(buf[4 * k..4 * k + 4].try_into().unwrap());
                        out[dst + c] = if v.is_finite() { v } else { f32::NAN };
                        k += 1;
                    }
                }
            }
        }
        Ok(out)
    }

    /// The statistics bands of one date over `win`, band-major.
    pub fn read_bands(&self, date: Date, win: Window) -> Result<Vec<Vec<f32>>> {
        let first = match date {
            Date::Before => 0,
            Date::After => STAT_BANDS.len(),
        };
        (first..first + STAT_BANDS.len())
            .map(|p| self.read(p, win))
            .collect()
    }
}

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
        for p in 0..PLANES {
            let v = k.read(p, all).unwrap();
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
        let whole = k.read(3, all).unwrap();
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
            let got = k.read(3, win).unwrap();
            let want: Vec<f32> = (win.y..win.y + win.h)
                .flat_map(|y| whole[y * 40 + win.x..y * 40 + win.x + win.w].to_vec())
                .collect();
            assert_eq!(got, want, "{win:?}");
        }
        let after = k
            .read_bands(
                Date::After,
                Window {
                    x: 2,
                    y: 3,
                    w: 1,
                    h: 1,
                },
            )
            .unwrap();
        assert_eq!(after.len(), STAT_BANDS.len());
        assert_eq!(after[0][0], value(STAT_BANDS.len(), 2, 3));
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
