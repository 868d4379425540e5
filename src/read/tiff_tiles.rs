//! Full-resolution window reads of tiled or stripped UInt16 GeoTIFFs (COGs
//! from a cloud archive, OSCD and ESA-style band files) decoded here instead
//! of by GDAL: the tile's bytes are read from the file, inflated with
//! libdeflate (the system's, which GDAL's libtiff uses too; see
//! [`super::tile_codecs`]), and TIFF's horizontal predictor is undone in a
//! register ([`super::predictor`]). The file's directory is
//! [`super::tiff_ifd`]'s.
//!
//! Why: Sentinel-2 COGs are DEFLATE with the horizontal predictor, and
//! libtiff undoes that predictor with a read-modify-write of memory per
//! sample, each waiting on the store before it (about 5 cycles a sample): on
//! a full tile pair it cost more CPU than the inflating. GDAL then copies
//! each tile through its block cache into the caller's buffer. Here a sample
//! costs one add, and tiles go straight from the decoder to the window.
//!
//! Only the plain layout is handled: a little-endian (Big)TIFF whose first
//! image is tiled or stripped, one 16-bit unsigned sample per pixel, DEFLATE,
//! ZSTD (dunewatch's decoded JPEG2000 copies) or no compression, predictor
//! none or horizontal. Anything else (other codecs or types, JPEG2000, VRTs, `/vsizip/` paths) returns `None`
//! from [`TiffTiles::open`] and is read through GDAL as before. The numbers
//! are GDAL's to the bit: the same integers, converted to f32.

pub use super::tiff_ifd::Ifd;

use super::predictor::undo_horizontal_predictor;
use super::tile_codecs::{Inflated, Inflater, Unzstd, PREFIX_SLACK};
use crate::align::Window;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// A tiled UInt16 TIFF's first image, with a small cache of decoded tiles.
pub struct TiffTiles {
    file: File,
    width: usize,
    height: usize,
    tile_w: usize,
    tile_h: usize,
    tiles_across: usize,
    stripped: bool,
    offsets: Vec<u64>,
    counts: Vec<u64>,
    codec: Codec,
    predictor: bool,
    /// What a tile the file does not hold (offset 0: GDAL's sparse files)
    /// reads as: the band's nodata, else 0, as GDAL fills it.
    fill: u16,
    /// Decoded tiles: (tile index, last use, rows decoded, samples).
    cache: Vec<(usize, u64, usize, Vec<u16>)>,
    /// Tiles kept: two rows of the widest read so far, so a pass of strips
    /// top to bottom decodes every tile once.
    capacity: usize,
    clock: u64,
    /// Tiles under a panel's last columns, which the next panel's read
    /// wants again: the score pass reads the scene in panels of columns,
    /// and a 20 m band's taps reach one source column past a panel's edge
    /// on either side, so the tiles on both sides of a seam were decoded
    /// twice. Evicted from `cache`, such a tile is kept here (at most two
    /// columns of tiles) until it is asked for again, then goes back to
    /// `cache`.
    seam: Vec<(usize, Vec<u16>)>,
    wanted: Vec<bool>,
    /// Tiles decoded so far (what the caches save is measured by it).
    decoded: u64,
    /// Decode a tile only down to the last row a read needs (see
    /// [`TiffTiles::shallow`]).
    shallow: bool,
    inflater: Inflater,
    compressed: Vec<u8>,
}

/// Columns a panel's read overlaps the one before it by, at most (see
/// `TiffTiles::seam`): the upsampling's taps are one source column.
const OVERLAP: usize = 8;

// TIFF tags read.
const IMAGE_WIDTH: u16 = 256;
const IMAGE_LENGTH: u16 = 257;
const BITS_PER_SAMPLE: u16 = 258;
const COMPRESSION: u16 = 259;
const STRIP_OFFSETS: u16 = 273;
const SAMPLES_PER_PIXEL: u16 = 277;
const ROWS_PER_STRIP: u16 = 278;
const STRIP_BYTE_COUNTS: u16 = 279;
const PLANAR_CONFIG: u16 = 284;
const PREDICTOR: u16 = 317;
const TILE_WIDTH: u16 = 322;
const TILE_LENGTH: u16 = 323;
const TILE_OFFSETS: u16 = 324;
const TILE_BYTE_COUNTS: u16 = 325;
const SAMPLE_FORMAT: u16 = 339;

impl TiffTiles {
    /// The file's first image, when its layout is one this module decodes
    /// and its size is `size` (GDAL's view of the band, as a check); `nodata`
    /// fills tiles the file leaves out.
    pub fn open(path: &Path, size: (usize, usize), nodata: Option<f64>) -> Option<TiffTiles> {
        let file = File::open(path).ok()?;
        let ifd = Ifd::first(&file)?;
        let one = |tag| ifd.values(&file, tag).and_then(|v| v.first().copied());
        let width = one(IMAGE_WIDTH)? as usize;
        let height = one(IMAGE_LENGTH)? as usize;
        // Strips are tiles as wide as the image (the last one only as tall
        // as the rows left).
        let stripped = one(TILE_WIDTH).is_none();
        let (tile_w, tile_h) = if stripped {
            (
                width,
                (one(ROWS_PER_STRIP).unwrap_or(u32::MAX as u64) as usize).min(height),
            )
        } else {
            (one(TILE_WIDTH)? as usize, one(TILE_LENGTH)? as usize)
        };
        let compression = one(COMPRESSION).unwrap_or(1);
        let predictor = one(PREDICTOR).unwrap_or(1);
        let plain = (width, height) == size
            && one(BITS_PER_SAMPLE)? == 16
            && one(SAMPLES_PER_PIXEL).unwrap_or(1) == 1
            && one(PLANAR_CONFIG).unwrap_or(1) == 1
            && one(SAMPLE_FORMAT).unwrap_or(1) == 1
            && matches!(compression, 1 | 8 | 32946 | 50000)
            && matches!(predictor, 1 | 2)
            && tile_w > 0
            && tile_h > 0
            && tile_w * tile_h <= 1 << 26;
        if !plain {
            return None;
        }
        let (offsets, counts) = if stripped {
            (
                ifd.values(&file, STRIP_OFFSETS)?,
                ifd.values(&file, STRIP_BYTE_COUNTS)?,
            )
        } else {
            (
                ifd.values(&file, TILE_OFFSETS)?,
                ifd.values(&file, TILE_BYTE_COUNTS)?,
            )
        };
        let tiles_across = width.div_ceil(tile_w);
        let n = tiles_across * height.div_ceil(tile_h);
        if offsets.len() != n || counts.len() != n {
            return None;
        }
        let fill = match nodata {
            Some(v) if (0.0..=65535.0).contains(&v) && v.fract() == 0.0 => v as u16,
            _ => 0,
        };
        Some(TiffTiles {
            file,
            width,
            height,
            tile_w,
            tile_h,
            tiles_across,
            stripped,
            offsets,
            counts,
            codec: match compression {
                1 => Codec::None,
                50000 => Codec::Zstd(Unzstd::new()?),
                _ => Codec::Deflate,
            },
            predictor: predictor == 2,
            fill,
            cache: Vec::new(),
            capacity: 2,
            clock: 0,
            seam: Vec::new(),
            wanted: vec![false; n],
            decoded: 0,
            shallow: false,
            inflater: Inflater::new()?,
            compressed: Vec::new(),
        })
    }

    /// The pixels of `win` as f32, row-major. Errors are one line saying
    /// what is wrong with the file's data.
    pub fn read(&mut self, win: Window) -> Result<Vec<f32>, String> {
        if win.x + win.w > self.width || win.y + win.h > self.height {
            return Err(format!(
                "window {}x{} at ({}, {}) lies outside the {}x{} raster",
                win.w, win.h, win.x, win.y, self.width, self.height
            ));
        }
        if win.w == 0 || win.h == 0 {
            return Ok(vec![0.0; win.len()]);
        }
        // Written tile by tile without zeroing it first: the tiles partition
        // the raster, so their parts cover the window exactly once.
        let mut out: Vec<f32> = Vec::with_capacity(win.len());
        let dst_all = &mut out.spare_capacity_mut()[..win.len()];
        let (tx0, tx1) = (win.x / self.tile_w, (win.x + win.w - 1) / self.tile_w);
        let (ty0, ty1) = (win.y / self.tile_h, (win.y + win.h - 1) / self.tile_h);
        // Two rows of the tiles a window spans (more when it spans more, as
        // strips a few rows tall do).
        self.capacity = self.capacity.max((tx1 - tx0 + 1) * (ty1 - ty0 + 1).max(2));
        // A read a tile wide or wider that stops inside a tile short of the
        // raster's right edge is a panel whose next one starts in that
        // tile, or at most OVERLAP columns before its end (the 20 m taps):
        // the tiles under those columns are wanted again (see `seam`).
        let end = win.x + win.w;
        if win.w >= self.tile_w && end < self.width && !end.is_multiple_of(self.tile_w) {
            for tx in end.saturating_sub(OVERLAP).max(win.x) / self.tile_w..=tx1 {
                for ty in ty0..=ty1 {
                    self.wanted[ty * self.tiles_across + tx] = true;
                }
            }
        }
        for ty in ty0..=ty1 {
            for tx in tx0..=tx1 {
                // The part of the window this tile covers.
                let (x0, y0) = (tx * self.tile_w, ty * self.tile_h);
                let cx = win.x.max(x0)..(win.x + win.w).min(x0 + self.tile_w);
                let cy = win.y.max(y0)..(win.y + win.h).min(y0 + self.tile_h);
                let t = self.tile(ty * self.tiles_across + tx, cy.end - y0)?;
                let samples = &self.cache[t].3;
                for y in cy {
                    let src = &samples[(y - y0) * self.tile_w..][cx.start - x0..cx.end - x0];
                    let dst = &mut dst_all[(y - win.y) * win.w..][cx.start - win.x..cx.end - win.x];
                    for (d, &s) in dst.iter_mut().zip(src) {
                        d.write(s as f32);
                    }
                }
            }
        }
        // SAFETY: the loop above wrote every element of `dst_all`, the first
        // `win.len()` of the capacity (see its comment).
        unsafe { out.set_len(win.len()) };
        Ok(out)
    }

    /// Scattered reads (the statistics windows): each tile is decoded only
    /// down to the last row a read needs, plus what the decoder needs to
    /// stop there. DEFLATE can only be inflated from a tile's start, and a
    /// window a quarter of a tile high in its middle otherwise paid for the
    /// whole tile. A pass that reads a tile again further down (strips, top
    /// to bottom) wants it whole the first time: off by default.
    pub fn shallow(&mut self, on: bool) {
        self.shallow = on;
    }

    /// The cache slot of tile `i`, its first `rows` rows decoded at least:
    /// decoded when it is not cached (or not that deep).
    fn tile(&mut self, i: usize, rows: usize) -> Result<usize, String> {
        self.clock += 1;
        if let Some(k) = self.cache.iter().position(|e| e.0 == i) {
            if self.cache[k].2 >= rows {
                self.cache[k].1 = self.clock;
                return Ok(k);
            }
            // Decoded too shallow for this read: again, deeper.
            let (_, _, _, mut v) = self.cache.swap_remove(k);
            let got = self.decode(i, rows, &mut v)?;
            self.cache.push((i, self.clock, got, v));
            return Ok(self.cache.len() - 1);
        }
        // Back from the seam store (wanted no more), or decoded.
        let kept = self.seam.iter().position(|(t, _)| *t == i).map(|k| {
            self.wanted[i] = false;
            self.seam.remove(k).1
        });
        let spare = if self.cache.len() >= self.capacity {
            // Reuse the least recently used tile's buffer, unless a later
            // read wants that tile.
            let k = (0..self.cache.len())
                .min_by_key(|&k| self.cache[k].1)
                .expect("a full cache holds tiles");
            let (t, _, got, v) = self.cache.swap_remove(k);
            if self.wanted[t] && got >= self.rows_of(t) {
                self.keep_for_later(t, v)
            } else {
                v
            }
        } else {
            Vec::new()
        };
        let (got, samples) = match kept {
            Some(v) => (self.tile_h, v),
            None => {
                let mut v = spare;
                let got = self.decode(i, rows, &mut v)?;
                (got, v)
            }
        };
        self.cache.push((i, self.clock, got, samples));
        Ok(self.cache.len() - 1)
    }

    /// Puts tile `t` in the seam store, and returns a buffer to decode
    /// into: the oldest stored tile's when the store holds two columns of
    /// tiles already, else a new one.
    fn keep_for_later(&mut self, t: usize, v: Vec<u16>) -> Vec<u16> {
        let columns = 2 * (self.offsets.len() / self.tiles_across);
        let free = if self.seam.len() >= columns {
            let (old, buf) = self.seam.remove(0);
            self.wanted[old] = false;
            buf
        } else {
            Vec::new()
        };
        self.seam.push((t, v));
        free
    }

    /// Tiles decoded so far.
    pub fn decoded(&self) -> u64 {
        self.decoded
    }

    /// Rows of tile `i`: a tile is whole even at the image's edge; the last
    /// strip is not.
    fn rows_of(&self, i: usize) -> usize {
        if self.stripped {
            self.tile_h
                .min(self.height - (i / self.tiles_across) * self.tile_h)
        } else {
            self.tile_h
        }
    }

    /// Decodes tile `i` into `samples` (sized to the whole tile): all of
    /// it, or when [`TiffTiles::shallow`] its first `need` rows at least.
    /// Returns the rows decoded.
    fn decode(&mut self, i: usize, need: usize, samples: &mut Vec<u16>) -> Result<usize, String> {
        self.decoded += 1;
        let rows = self.rows_of(i);
        let n = self.tile_w * rows;
        let (offset, count) = (self.offsets[i], self.counts[i] as usize);
        if offset == 0 || count == 0 {
            samples.clear();
            samples.resize(n, self.fill);
            return Ok(rows);
        }
        // A reused buffer is not zeroed first: the tile's bytes overwrite
        // all of it (a short tile is an error), or all the rows returned.
        samples.resize(n, 0);
        let mut want = if self.shallow { need.min(rows) } else { rows };
        let row_bytes = self.tile_w * 2;
        let bytes: &mut [u8] = bytemuck_u16(samples);
        let corrupt =
            |what: &str| format!("tile {i} of the TIFF is {what} (truncated or corrupt file?)");
        if !matches!(self.codec, Codec::None) {
            self.compressed.resize(count, 0);
            self.file
                .read_exact_at(&mut self.compressed, offset)
                .map_err(|e| corrupt(&format!("unreadable: {e}")))?;
        }
        match &mut self.codec {
            // Whole: a ZSTD tile decodes fast enough that stopping early
            // is not worth a streaming decoder.
            Codec::Zstd(z) => match z.decompress(&self.compressed, bytes) {
                Some(got) if got == bytes.len() => want = rows,
                Some(_) => return Err(corrupt("short")),
                None => return Err(corrupt("not valid ZSTD data")),
            },
            Codec::Deflate => {
                let cap = want * row_bytes + PREFIX_SLACK;
                if cap < bytes.len() {
                    // The rows wanted and the slack, and no further.
                    match self.inflater.zlib(&self.compressed, &mut bytes[..cap]) {
                        Inflated::Whole(_) => return Err(corrupt("short")),
                        Inflated::Full => {}
                        Inflated::Bad => return Err(corrupt("not valid DEFLATE data")),
                    }
                } else {
                    match self.inflater.zlib(&self.compressed, bytes) {
                        Inflated::Whole(got) if got == bytes.len() => want = rows,
                        Inflated::Whole(_) => return Err(corrupt("short")),
                        Inflated::Full | Inflated::Bad => {
                            return Err(corrupt("not valid DEFLATE data"))
                        }
                    }
                }
            }
            Codec::None => {
                let take = want * row_bytes;
                if count < take {
                    return Err(corrupt("short"));
                }
                self.file
                    .read_exact_at(&mut bytes[..take], offset)
                    .map_err(|e| corrupt(&format!("unreadable: {e}")))?;
            }
        }
        if self.predictor {
            for row in samples.chunks_exact_mut(self.tile_w).take(want) {
                undo_horizontal_predictor(row);
            }
        }
        Ok(want)
    }
}

/// How the file's tiles are compressed.
enum Codec {
    None,
    Deflate,
    /// dunewatch's own decoded JPEG2000 copies (`align::transcode`).
    Zstd(Unzstd),
}

/// The bytes of a u16 buffer (the file's little-endian samples land in it
/// as they are, on a little-endian machine).
fn bytemuck_u16(v: &mut [u16]) -> &mut [u8] {
    // SAFETY: u8 has no alignment or validity requirements, and the length
    // covers exactly the u16s' bytes.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut u8, std::mem::size_of_val(v)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gdal::raster::{Buffer, RasterCreationOptions};

    /// A `w` x `h` UInt16 GeoTIFF with `opts`, its pixels a pattern with
    /// jumps (so the predictor's wrap-around is exercised).
    fn write(path: &Path, w: usize, h: usize, opts: &[&str]) -> Vec<u16> {
        let v: Vec<u16> = (0..w * h)
            .map(|i| ((i * 7919 + (i / w) * 104729) % 65536) as u16)
            .collect();
        let drv = gdal::DriverManager::get_driver_by_name("GTiff").unwrap();
        let o = RasterCreationOptions::from_iter(opts.iter().copied());
        let ds = drv
            .create_with_band_type_with_options::<u16, _>(path, w, h, 1, &o)
            .unwrap();
        let mut buf = Buffer::new((w, h), v.clone());
        ds.rasterband(1)
            .unwrap()
            .write((0, 0), (w, h), &mut buf)
            .unwrap();
        ds.close().unwrap();
        v
    }

    fn gdal_read(path: &Path, win: Window) -> Vec<f32> {
        let ds = gdal::Dataset::open(path).unwrap();
        let b = ds.rasterband(1).unwrap();
        b.read_as::<f32>(
            (win.x as isize, win.y as isize),
            (win.w, win.h),
            (win.w, win.h),
            None,
        )
        .unwrap()
        .into_shape_and_vec()
        .1
    }

    #[test]
    fn panels_overlapping_at_a_seam_decode_each_tile_once() {
        // As the score pass reads an upsampled band: panels of columns, each
        // in strips top to bottom, each panel's read reaching one column
        // past its edge on both sides; the seams at 64 and 128 fall on tile
        // edges, so the columns on either side are in other tiles.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("panels.tif");
        let (w, h) = (200, 96);
        let opts = [
            "TILED=YES",
            "BLOCKXSIZE=32",
            "BLOCKYSIZE=16",
            "COMPRESS=DEFLATE",
            "PREDICTOR=2",
        ];
        write(&p, w, h, &opts);
        let mut t = TiffTiles::open(&p, (w, h), None).unwrap();
        for (x0, x1) in [(0, 65), (63, 129), (127, 200)] {
            for y in (0..h).step_by(8) {
                let win = Window {
                    x: x0,
                    y: y.saturating_sub(1),
                    w: x1 - x0,
                    h: (y + 9).min(h) - y.saturating_sub(1),
                };
                assert_eq!(t.read(win).unwrap(), gdal_read(&p, win), "{win:?}");
            }
        }
        let tiles = w.div_ceil(32) * h.div_ceil(16);
        assert_eq!(t.decoded(), tiles as u64, "every tile once");
        assert!(
            t.seam.len() <= 2 * h.div_ceil(16),
            "at most two columns kept"
        );
        // Reads that end on a tile edge keep nothing: the next panel starts
        // there.
        let mut t = TiffTiles::open(&p, (w, h), None).unwrap();
        for y in (0..h).step_by(8) {
            let win = Window {
                x: 0,
                y,
                w: 64,
                h: 8,
            };
            t.read(win).unwrap();
        }
        assert!(t.seam.is_empty());
    }

    #[test]
    fn windows_read_as_gdal_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let (w, h) = (300, 170);
        for (name, opts) in [
            (
                "deflate_pred.tif",
                &[
                    "TILED=YES",
                    "BLOCKXSIZE=64",
                    "BLOCKYSIZE=32",
                    "COMPRESS=DEFLATE",
                    "PREDICTOR=2",
                ][..],
            ),
            (
                "deflate.tif",
                &[
                    "TILED=YES",
                    "BLOCKXSIZE=128",
                    "BLOCKYSIZE=128",
                    "COMPRESS=DEFLATE",
                ][..],
            ),
            (
                "raw_big.tif",
                &["TILED=YES", "BLOCKXSIZE=16", "BLOCKYSIZE=16", "BIGTIFF=YES"][..],
            ),
            // 170 rows in strips of 7: the last strip holds 2.
            (
                "strips.tif",
                &["COMPRESS=DEFLATE", "PREDICTOR=2", "BLOCKYSIZE=7"][..],
            ),
            ("one_strip.tif", &["BLOCKYSIZE=170"][..]),
            // As the decoded JPEG2000 copies are written.
            (
                "zstd_pred.tif",
                &[
                    "TILED=YES",
                    "BLOCKXSIZE=64",
                    "BLOCKYSIZE=32",
                    "COMPRESS=ZSTD",
                    "ZSTD_LEVEL=1",
                    "PREDICTOR=2",
                ][..],
            ),
            ("zstd_strips.tif", &["COMPRESS=ZSTD", "BLOCKYSIZE=7"][..]),
        ] {
            let p = dir.path().join(name);
            write(&p, w, h, opts);
            let mut t = TiffTiles::open(&p, (w, h), None).unwrap_or_else(|| panic!("{name}"));
            for win in [
                Window { x: 0, y: 0, w, h },
                Window {
                    x: 63,
                    y: 31,
                    w: 2,
                    h: 2,
                },
                Window {
                    x: 100,
                    y: 5,
                    w: 200,
                    h: 165,
                },
                Window {
                    x: 299,
                    y: 169,
                    w: 1,
                    h: 1,
                },
                Window {
                    x: 0,
                    y: 100,
                    w: 300,
                    h: 3,
                },
            ] {
                assert_eq!(t.read(win).unwrap(), gdal_read(&p, win), "{name} {win:?}");
            }
            assert!(t
                .read(Window {
                    x: 290,
                    y: 0,
                    w: 11,
                    h: 1
                })
                .is_err());
        }
    }

    #[test]
    fn other_layouts_are_left_to_gdal() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lzw.tif");
        write(
            &p,
            50,
            40,
            &[
                "TILED=YES",
                "BLOCKXSIZE=16",
                "BLOCKYSIZE=16",
                "COMPRESS=LZW",
            ],
        );
        assert!(TiffTiles::open(&p, (50, 40), None).is_none());
        let p = dir.path().join("ok.tif");
        write(&p, 50, 40, &["TILED=YES", "BLOCKXSIZE=16", "BLOCKYSIZE=16"]);
        // A size other than GDAL's means another image than GDAL's band.
        assert!(TiffTiles::open(&p, (25, 20), None).is_none());
        assert!(TiffTiles::open(&p, (50, 40), None).is_some());
    }

    #[test]
    fn a_corrupt_tile_is_an_error_not_garbage() {
        let dir = tempfile::tempdir().unwrap();
        for codec in ["DEFLATE", "ZSTD"] {
            let p = dir.path().join(format!("{codec}.tif"));
            let compress = format!("COMPRESS={codec}");
            write(
                &p,
                64,
                64,
                &["TILED=YES", "BLOCKXSIZE=32", "BLOCKYSIZE=32", &compress],
            );
            let mut t = TiffTiles::open(&p, (64, 64), None).unwrap();
            // Overwrite the first tile's data with zeros.
            let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
            f.write_all_at(&vec![0u8; t.counts[0] as usize], t.offsets[0])
                .unwrap();
            let e = t
                .read(Window {
                    x: 0,
                    y: 0,
                    w: 4,
                    h: 4,
                })
                .unwrap_err();
            assert!(e.contains("tile 0") && e.contains(codec), "{e}");
        }
    }

    #[test]
    fn a_shallow_decode_gives_the_rows_a_whole_one_does() {
        // Tiles of 256 x 256 (128 KiB decoded), deep enough for a shallow
        // decode to stop early: one file that compresses and one of noise
        // (stored blocks, the slack's reason, are tested on their own
        // below).
        let dir = tempfile::tempdir().unwrap();
        let (w, h) = (600, 520);
        let smooth = dir.path().join("smooth.tif");
        let noise = dir.path().join("noise.tif");
        let opts = [
            "TILED=YES",
            "BLOCKXSIZE=256",
            "BLOCKYSIZE=256",
            "COMPRESS=DEFLATE",
        ];
        write(&smooth, w, h, &[&opts[..], &["PREDICTOR=2"]].concat());
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let v: Vec<u16> = (0..w * h)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u16
            })
            .collect();
        let drv = gdal::DriverManager::get_driver_by_name("GTiff").unwrap();
        let o = RasterCreationOptions::from_iter(opts);
        let ds = drv
            .create_with_band_type_with_options::<u16, _>(&noise, w, h, 1, &o)
            .unwrap();
        let mut buf = Buffer::new((w, h), v);
        ds.rasterband(1)
            .unwrap()
            .write((0, 0), (w, h), &mut buf)
            .unwrap();
        ds.close().unwrap();
        let win = |x, y, w, h| Window { x, y, w, h };
        for p in [&smooth, &noise] {
            // Windows near a tile's top, in its middle, across a tile edge,
            // then one reaching deeper into a tile read shallow before.
            let mut t = TiffTiles::open(p, (w, h), None).unwrap();
            t.shallow(true);
            for wn in [
                win(10, 0, 50, 3),
                win(300, 260, 200, 40),
                win(100, 200, 60, 100),
                win(10, 100, 50, 120),
                win(0, 500, 600, 20),
            ] {
                assert_eq!(t.read(wn).unwrap(), gdal_read(p, wn), "{p:?} {wn:?}");
            }
            // The first window's tile was decoded a few rows deep only.
            let mut t = TiffTiles::open(p, (w, h), None).unwrap();
            t.shallow(true);
            t.read(win(10, 0, 50, 3)).unwrap();
            assert!(t.cache[0].2 < 256, "{p:?}: {} rows", t.cache[0].2);
        }
    }
}
