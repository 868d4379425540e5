//! Cloud-Optimized GeoTIFFs of the run's working rasters, written here
//! rather than by GDAL's COG driver: the same layout as GDAL's (header, its
//! structural metadata, every IFD, then the tiles from the smallest overview
//! to full resolution, each with GDAL's size leader and repeated trailer),
//! the same tags, predictors and codecs, the same pixels.
//!
//! Why: after the score pass, GDAL's copy ran on one thread for the
//! overviews and through its block cache and libtiff's byte-at-a-time
//! floating-point predictor for the tiles, about 3 CPU s on a full tile.
//! Here tiles are read straight from the uncompressed working raster and
//! encoded in batches on every worker of a rayon pool (the current one, or
//! those [`Workers`] name), each batch written on a thread of its own while
//! the next is encoded (`pipeline`).
//!
//! The overviews are [`average_pyramid`] (scores) or [`nearest_pyramid`]
//! (masks) of each 512 px tile, as [`super::raster::add_overviews`] makes
//! them. They go through anonymous temporary files, one per level, so that
//! memory stays a few rows of tiles whatever the raster's size.
//!
//! The GeoTIFF tags (CRS keys, tie point, pixel scale) and GDAL's nodata tag
//! are copied from a 1 x 1 GeoTIFF GDAL writes on the same grid, so the CRS
//! is encoded exactly as GDAL encodes it.

use super::direct_file::DirectFile;
use super::raster::{average_pyramid, nearest_pyramid, overview_factors, Level, COG_BLOCK};
use super::tile_encode::{fp_predict_row, horizontal_predict_row, Encoder};
use crate::error::{gdal_msg, Error, Result};
use crate::read::tiff_tiles::Ifd;
use gdal::raster::GdalType;
use rayon::prelude::*;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// GDAL's structural metadata for a COG (GDAL 3.1 and later), byte for byte.
const GHOST: &[u8] = b"GDAL_STRUCTURAL_METADATA_SIZE=000140 bytes\n\
LAYOUT=IFDS_BEFORE_DATA\n\
BLOCK_ORDER=ROW_MAJOR\n\
BLOCK_LEADER=SIZE_AS_UINT4\n\
BLOCK_TRAILER=LAST_4_BYTES_REPEATED\n\
KNOWN_INCOMPATIBLE_EDITION=NO\n ";

/// Tags copied from GDAL's GeoTIFF onto the full-resolution image:
/// ModelPixelScale, ModelTiepoint, ModelTransformation, GeoKeyDirectory,
/// GeoDoubleParams, GeoAsciiParams, GDAL_METADATA.
const GEO_TAGS: [u16; 7] = [33550, 33922, 34264, 34735, 34736, 34737, 42112];
/// GDAL_NODATA, on every image.
const NODATA_TAG: u16 = 42113;

/// A sample type this writer handles, with its COG encoding.
pub(crate) trait Sample: GdalType + Copy + Send + Sync + 'static {
    const BITS: u16;
    /// TIFF SampleFormat: 1 unsigned, 3 float.
    const FORMAT: u16;
    /// TIFF Compression: 8 DEFLATE, 50000 ZSTD.
    const COMPRESSION: u16;
    /// TIFF Predictor: 2 horizontal, 3 floating point.
    const PREDICTOR: u16;
    fn from_f64(v: f64) -> Self;
    fn pyramid(v: &[Self], w: usize, h: usize, nodata: Self, levels: usize) -> Vec<Level<Self>>;
    fn encoder() -> Option<Encoder>;
    /// A tile's rows, `w` samples each, predicted into `out`.
    fn predict(tile: &[Self], w: usize, scratch: &mut Vec<u8>, out: &mut Vec<u8>);
}

impl Sample for f32 {
    const BITS: u16 = 32;
    const FORMAT: u16 = 3;
    const COMPRESSION: u16 = 50000;
    const PREDICTOR: u16 = 3;
    fn from_f64(v: f64) -> f32 {
        v as f32
    }
    fn pyramid(v: &[f32], w: usize, h: usize, nodata: f32, levels: usize) -> Vec<Level<f32>> {
        average_pyramid(v, w, h, nodata, levels)
    }
    fn encoder() -> Option<Encoder> {
        // The fastest level: float mantissas barely compress (see to_cog).
        Encoder::zstd(1)
    }
    fn predict(tile: &[f32], w: usize, scratch: &mut Vec<u8>, out: &mut Vec<u8>) {
        scratch.resize(4 * w, 0);
        out.resize(4 * tile.len(), 0);
        for (row, o) in tile.chunks_exact(w).zip(out.chunks_exact_mut(4 * w)) {
            fp_predict_row(row, scratch, o);
        }
    }
}

impl Sample for u8 {
    const BITS: u16 = 8;
    const FORMAT: u16 = 1;
    const COMPRESSION: u16 = 8;
    const PREDICTOR: u16 = 2;
    fn from_f64(v: f64) -> u8 {
        v as u8
    }
    fn pyramid(v: &[u8], w: usize, h: usize, _nodata: u8, levels: usize) -> Vec<Level<u8>> {
        nearest_pyramid(v, w, h, levels)
    }
    fn encoder() -> Option<Encoder> {
        // Level 4: see to_cog.
        Encoder::deflate(4)
    }
    fn predict(tile: &[u8], w: usize, _scratch: &mut Vec<u8>, out: &mut Vec<u8>) {
        out.resize(tile.len(), 0);
        for (row, o) in tile.chunks_exact(w).zip(out.chunks_exact_mut(w)) {
            horizontal_predict_row(row, o);
        }
    }
}

/// The bytes of a slice of samples (little-endian machines only: the
/// writer checks the working raster is little-endian TIFF, which GDAL only
/// writes on such machines).
fn bytes_of<T: Sample>(v: &[T]) -> &[u8] {
    // SAFETY: f32 and u8 have no padding; u8 has no alignment or validity
    // requirements; the length covers exactly the samples' bytes.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast(), std::mem::size_of_val(v)) }
}

fn bytes_of_mut<T: Sample>(v: &mut [T]) -> &mut [u8] {
    // SAFETY: as `bytes_of`; every bit pattern is a valid f32 or u8.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast(), std::mem::size_of_val(v)) }
}

/// A working raster: tiled 512 x 512, uncompressed, one band, read by tile
/// straight from the file (tiles GDAL never wrote read as nodata).
struct Working {
    file: File,
    width: usize,
    height: usize,
    across: usize,
    offsets: Vec<u64>,
    counts: Vec<u64>,
}

impl Working {
    fn open<T: Sample>(path: &Path) -> Option<Working> {
        let file = File::open(path).ok()?;
        let ifd = Ifd::first(&file)?;
        let one = |tag| ifd.values(&file, tag).and_then(|v| v.first().copied());
        let (width, height) = (one(256)? as usize, one(257)? as usize);
        let plain = one(258)? == T::BITS as u64
            && one(259).unwrap_or(1) == 1
            && one(277).unwrap_or(1) == 1
            && one(322)? == COG_BLOCK as u64
            && one(323)? == COG_BLOCK as u64
            && one(339).unwrap_or(1) == T::FORMAT as u64;
        if !plain {
            return None;
        }
        let (offsets, counts) = (ifd.values(&file, 324)?, ifd.values(&file, 325)?);
        let across = width.div_ceil(COG_BLOCK);
        let n = across * height.div_ceil(COG_BLOCK);
        let tile_bytes = (COG_BLOCK * COG_BLOCK * T::BITS as usize / 8) as u64;
        if offsets.len() != n
            || counts.len() != n
            || counts.iter().any(|&c| c != 0 && c != tile_bytes)
        {
            return None;
        }
        Some(Working {
            file,
            width,
            height,
            across,
            offsets,
            counts,
        })
    }

    /// Tile (tx, ty), 512 x 512, a tile GDAL never wrote as `nodata`;
    /// pixels outside the raster are 0, as in GDAL's COGs.
    fn tile<T: Sample>(&self, tx: usize, ty: usize, nodata: T) -> std::io::Result<Vec<T>> {
        let i = ty * self.across + tx;
        let mut v = vec![nodata; COG_BLOCK * COG_BLOCK];
        if self.offsets[i] != 0 && self.counts[i] != 0 {
            self.file
                .read_exact_at(bytes_of_mut(&mut v), self.offsets[i])?;
        }
        let (bw, bh) = self.valid(tx, ty);
        if bw < COG_BLOCK {
            for row in v.chunks_exact_mut(COG_BLOCK) {
                row[bw..].fill(T::from_f64(0.0));
            }
        }
        v[bh * COG_BLOCK..].fill(T::from_f64(0.0));
        Ok(v)
    }

    /// The raster's columns and rows in tile (tx, ty).
    fn valid(&self, tx: usize, ty: usize) -> (usize, usize) {
        (
            COG_BLOCK.min(self.width - tx * COG_BLOCK),
            COG_BLOCK.min(self.height - ty * COG_BLOCK),
        )
    }
}

/// One IFD entry: tag, TIFF type, count, value bytes (little-endian).
struct Entry(u16, u16, u64, Vec<u8>);

fn short(tag: u16, v: u16) -> Entry {
    Entry(tag, 3, 1, v.to_le_bytes().to_vec())
}

fn long(tag: u16, v: u32) -> Entry {
    Entry(tag, 4, 1, v.to_le_bytes().to_vec())
}

/// An image's directory: its entries, tag order, with tile offsets and byte
/// counts as given.
fn entries<T: Sample>(
    size: (usize, usize),
    overview: bool,
    tiles: (&[u64], &[u64]),
    big: bool,
    copied: &[Entry],
) -> Vec<Entry> {
    let dim = |tag, v: usize| match u16::try_from(v) {
        Ok(v) => short(tag, v),
        Err(_) => long(tag, v as u32),
    };
    let array = |tag, v: &[u64]| {
        if big {
            Entry(
                tag,
                16,
                v.len() as u64,
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )
        } else {
            Entry(
                tag,
                4,
                v.len() as u64,
                v.iter().flat_map(|&x| (x as u32).to_le_bytes()).collect(),
            )
        }
    };
    let mut e = Vec::new();
    if overview {
        e.push(long(254, 1));
    }
    e.extend([
        dim(256, size.0),
        dim(257, size.1),
        short(258, T::BITS),
        short(259, T::COMPRESSION),
        short(262, 1),
        short(277, 1),
        short(284, 1),
        short(317, T::PREDICTOR),
        short(322, COG_BLOCK as u16),
        short(323, COG_BLOCK as u16),
        array(324, tiles.0),
        array(325, tiles.1),
        short(339, T::FORMAT),
    ]);
    for c in copied {
        if !overview || c.0 == NODATA_TAG {
            e.push(Entry(c.0, c.1, c.2, c.3.clone()));
        }
    }
    e.sort_by_key(|x| x.0);
    e
}

/// The bytes of a directory written at `at`: count, entries, the next
/// directory's offset, then the values that do not fit in an entry.
fn ifd_bytes(entries: &[Entry], at: u64, next: u64, big: bool) -> Vec<u8> {
    let (count_len, entry_len, inline) = if big { (8, 20, 8) } else { (2, 12, 4) };
    let head = count_len + entries.len() * entry_len + inline;
    let mut out = Vec::with_capacity(head);
    let mut extra: Vec<u8> = Vec::new();
    let put = |out: &mut Vec<u8>, v: u64| {
        if big {
            out.extend(v.to_le_bytes());
        } else {
            out.extend((v as u32).to_le_bytes());
        }
    };
    if big {
        out.extend((entries.len() as u64).to_le_bytes());
    } else {
        out.extend((entries.len() as u16).to_le_bytes());
    }
    for Entry(tag, typ, count, data) in entries {
        out.extend(tag.to_le_bytes());
        out.extend(typ.to_le_bytes());
        put(&mut out, *count);
        if data.len() <= inline {
            let mut field = data.clone();
            field.resize(inline, 0);
            out.extend(field);
        } else {
            // Word-aligned, as TIFF asks.
            let off = at + (head + extra.len()) as u64;
            put(&mut out, off);
            extra.extend(data);
            if extra.len() % 2 == 1 {
                extra.push(0);
            }
        }
    }
    put(&mut out, next);
    out.extend(extra);
    out
}

/// Writes `src`, a working raster of [`super::raster::create_working`], as a
/// COG at `dst`: AVERAGE overviews and ZSTD for Float32, NEAREST and
/// DEFLATE for bytes. Returns false, writing nothing, when `src` is not of
/// the form this writer handles (then GDAL's COG driver does it).
pub fn write_cog(src: &Path, dst: &Path, workers: Option<Workers>) -> Result<bool> {
    let ds = gdal::Dataset::open(src).map_err(|e| Error::output(src, gdal_msg(&e)))?;
    let band = ds
        .rasterband(1)
        .map_err(|e| Error::output(src, gdal_msg(&e)))?;
    match band.band_type() {
        gdal::raster::GdalDataType::Float32 => write::<f32>(src, dst, &ds, false, workers),
        gdal::raster::GdalDataType::UInt8 => write::<u8>(src, dst, &ds, false, workers),
        _ => Ok(false),
    }
}

/// [`write_cog`] for samples of type `T`; `bigtiff` forces BigTIFF (which
/// otherwise only rasters of gigabytes get).
fn write<T: Sample>(
    src: &Path,
    dst: &Path,
    ds: &gdal::Dataset,
    bigtiff: bool,
    workers: Option<Workers>,
) -> Result<bool> {
    let oerr = |e: std::io::Error| Error::output(dst, e);
    let nodata = match ds.rasterband(1).ok().and_then(|b| b.no_data_value()) {
        Some(v) => v,
        None => return Ok(false),
    };
    let Some(work) = Working::open::<T>(src) else {
        return Ok(false);
    };
    if (work.width, work.height) != ds.raster_size() {
        return Ok(false);
    }
    let factors = overview_factors(work.width, work.height);
    // Each tile's pyramid is its own only down to one pixel per tile.
    if factors.last().is_some_and(|&f| f as usize > COG_BLOCK) {
        return Ok(false);
    }
    let nd = T::from_f64(nodata);
    let copied = geo_entries::<T>(ds, nodata, dst)?;
    let nlev = factors.len();
    let sizes: Vec<(usize, usize)> = std::iter::once((work.width, work.height))
        .chain(factors.iter().map(|&f| {
            let f = f as usize;
            (work.width.div_ceil(f), work.height.div_ceil(f))
        }))
        .collect();
    let ntiles = |(w, h): (usize, usize)| w.div_ceil(COG_BLOCK) * h.div_ceil(COG_BLOCK);

    // Pass 1: the overviews, into temporary files.
    let mut raws = overview_files(&work, &sizes, nd, workers, (src, dst))?;

    // Where everything goes: the directories' sizes do not depend on the
    // offsets they hold, so they are laid out with zeros first.
    let raw_total: u64 = sizes
        .iter()
        .map(|&s| (ntiles(s) * COG_BLOCK * COG_BLOCK * T::BITS as usize / 8) as u64)
        .sum();
    // Compressed tiles can outgrow raw ones by a little (codec framing).
    let big = bigtiff || raw_total + raw_total / 64 + (1 << 24) > u32::MAX as u64;
    let zeros: Vec<(Vec<u64>, Vec<u64>)> = sizes
        .iter()
        .map(|&s| (vec![0; ntiles(s)], vec![0; ntiles(s)]))
        .collect();
    let header_len: u64 = if big { 16 } else { 8 };
    let first_ifd = (header_len + GHOST.len() as u64).next_multiple_of(2);
    let lens: Vec<u64> = (0..=nlev)
        .map(|k| {
            let e = entries::<T>(sizes[k], k > 0, (&zeros[k].0, &zeros[k].1), big, &copied);
            ifd_bytes(&e, 0, 0, big).len() as u64
        })
        .collect();
    let ifd_at: Vec<u64> = lens
        .iter()
        .scan(first_ifd, |at, len| {
            let here = *at;
            *at += len;
            Some(here)
        })
        .collect();
    let data_start = (ifd_at[nlev] + lens[nlev]).next_multiple_of(8);

    // Pass 2: the tiles, smallest overview first, a few rows of tiles at a
    // time encoded in parallel and written in order.
    // Past the page cache: the tiles are the bulk of the file, written once
    // and not read back here (see `direct_file`).
    // A batch is written on a thread of its own while the next is encoded.
    let out = DirectFile::create(dst, data_start).map_err(oerr)?;
    let tiles: Vec<(Vec<u64>, Vec<u64>)> = vec![(Vec::new(), Vec::new()); nlev + 1];
    let jobs = (0..=nlev).rev().flat_map(|k| {
        let (lw, lh) = sizes[k];
        batches(lw.div_ceil(COG_BLOCK), lh.div_ceil(COG_BLOCK)).map(move |b| (k, b))
    });
    let written = (out, data_start, tiles);
    let (out, pos, tiles) = pipeline(
        dst,
        jobs,
        written,
        |(k, batch)| {
            let (lw, lh) = sizes[k];
            let across = lw.div_ceil(COG_BLOCK);
            if k > 0 && batch.start == 0 {
                raws[k - 1].seek(SeekFrom::Start(0)).map_err(oerr)?;
            }
            {
                // The overview's rows under these tiles (none at full resolution:
                // its tiles are read from the working raster).
                let strips: Vec<Vec<T>> = batch
                    .clone()
                    .map(|ty| {
                        if k == 0 {
                            return Ok(Vec::new());
                        }
                        let mut s = vec![nd; lw * COG_BLOCK.min(lh - ty * COG_BLOCK)];
                        raws[k - 1].read_exact(bytes_of_mut(&mut s)).map_err(oerr)?;
                        Ok(s)
                    })
                    .collect::<Result<_>>()?;
                let y0 = batch.start;
                let (strips, work) = (&strips, &work);
                let encoded = on(workers, || {
                    (batch.start * across..batch.end * across)
                        .into_par_iter()
                        .map_init(
                            || (T::encoder(), Vec::new(), Vec::new()),
                            |(enc, scratch, pred), i| -> Result<Vec<u8>> {
                                let (tx, ty) = (i % across, i / across);
                                let tile = if k == 0 {
                                    work.tile(tx, ty, nd).map_err(|e| Error::output(src, e))?
                                } else {
                                    let strip = &strips[ty - y0];
                                    let rows = COG_BLOCK.min(lh - ty * COG_BLOCK);
                                    let mut t = vec![T::from_f64(0.0); COG_BLOCK * COG_BLOCK];
                                    let (x0, w) =
                                        (tx * COG_BLOCK, COG_BLOCK.min(lw - tx * COG_BLOCK));
                                    for r in 0..rows {
                                        t[r * COG_BLOCK..r * COG_BLOCK + w]
                                            .copy_from_slice(&strip[r * lw + x0..r * lw + x0 + w]);
                                    }
                                    t
                                };
                                T::predict(&tile, COG_BLOCK, scratch, pred);
                                enc.as_mut().and_then(|e| e.compress(pred)).ok_or_else(|| {
                                    Error::output(dst, "a tile could not be compressed")
                                })
                            },
                        )
                        .collect::<Result<Vec<_>>>()
                })?;
                Ok((k, encoded))
            }
        },
        |(out, pos, tiles), (k, encoded)| {
            for data in encoded {
                // GDAL's leader (the size) and trailer (the last 4 bytes).
                let n = data.len();
                out.write_all(&(n as u32).to_le_bytes()).map_err(oerr)?;
                out.write_all(&data).map_err(oerr)?;
                out.write_all(&data[n.saturating_sub(4)..]).map_err(oerr)?;
                tiles[k].0.push(*pos + 4);
                tiles[k].1.push(n as u64);
                *pos += 4 + n as u64 + n.min(4) as u64;
            }
            Ok(())
        },
    )?;
    if !big && pos > u32::MAX as u64 {
        return Err(Error::output(
            dst,
            "the compressed tiles outgrew a classic TIFF",
        ));
    }
    debug_assert_eq!(out.position(), pos);
    let file = out.finish().map_err(oerr)?;

    let mut head = Vec::with_capacity(data_start as usize);
    if big {
        head.extend(b"II");
        head.extend(43u16.to_le_bytes());
        head.extend(8u16.to_le_bytes());
        head.extend(0u16.to_le_bytes());
        head.extend(first_ifd.to_le_bytes());
    } else {
        head.extend(b"II");
        head.extend(42u16.to_le_bytes());
        head.extend((first_ifd as u32).to_le_bytes());
    }
    head.extend(GHOST);
    head.resize(first_ifd as usize, 0);
    for k in 0..=nlev {
        let e = entries::<T>(sizes[k], k > 0, (&tiles[k].0, &tiles[k].1), big, &copied);
        let next = if k < nlev { ifd_at[k + 1] } else { 0 };
        let b = ifd_bytes(&e, ifd_at[k], next, big);
        debug_assert_eq!(b.len() as u64, lens[k]);
        head.extend(b);
    }
    head.resize(data_start as usize, 0);
    file.write_all_at(&head, 0).map_err(oerr)?;
    Ok(true)
}

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
fn on<R: Send>(workers: Option<Workers>, f: impl FnOnce() -> R + Send) -> R {
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
fn batches(across: usize, down: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    let n = (BATCH_TILES / across.max(1)).max(1);
    (0..down).step_by(n).map(move |y| y..(y + n).min(down))
}

/// The overviews of `work` (read from `src`; levels `sizes[1..]`), a few
/// rows of tiles at a time ([`batches`]), each level into a temporary file beside `dst` as
/// row-major samples.
fn overview_files<T: Sample>(
    work: &Working,
    sizes: &[(usize, usize)],
    nd: T,
    workers: Option<Workers>,
    (src, dst): (&Path, &Path),
) -> Result<Vec<File>> {
    let nlev = sizes.len() - 1;
    let dir = dst.parent().unwrap_or(Path::new("."));
    let raws: Vec<File> = (0..nlev)
        .map(|_| tempfile::tempfile_in(dir))
        .collect::<std::io::Result<_>>()
        .map_err(|e| Error::output(dst, e))?;
    if nlev == 0 {
        return Ok(raws);
    }
    // A batch's levels are written on a thread of their own while the next
    // batch's pyramids are computed.
    let across = work.across;
    let jobs = batches(across, work.height.div_ceil(COG_BLOCK));
    pipeline(
        dst,
        jobs,
        raws,
        |batch| {
            on(workers, || {
                (batch.start * across..batch.end * across)
                    .into_par_iter()
                    .map(|i| {
                        let (tx, ty) = (i % across, i / across);
                        let tile = work.tile(tx, ty, nd).map_err(|e| Error::output(src, e))?;
                        let (bw, bh) = work.valid(tx, ty);
                        let block: Vec<T> = if bw == COG_BLOCK {
                            tile[..bh * COG_BLOCK].to_vec()
                        } else {
                            tile.chunks_exact(COG_BLOCK)
                                .take(bh)
                                .flat_map(|r| r[..bw].iter().copied())
                                .collect()
                        };
                        Ok(T::pyramid(&block, bw, bh, nd, nlev))
                    })
                    .collect::<Result<Vec<_>>>()
            })
        },
        |raws, pyramids| {
            for row in pyramids.chunks(across) {
                for (k, raw) in raws.iter_mut().enumerate() {
                    let f = 2usize << k;
                    let lw = sizes[k + 1].0;
                    let rows = row[0][k].1;
                    let mut strip = vec![nd; lw * rows];
                    for (tx, p) in row.iter().enumerate() {
                        let (pw, ph, v) = &p[k];
                        let x0 = tx * COG_BLOCK / f;
                        for r in 0..*ph {
                            strip[r * lw + x0..r * lw + x0 + pw]
                                .copy_from_slice(&v[r * pw..(r + 1) * pw]);
                        }
                    }
                    raw.write_all(bytes_of(&strip))
                        .map_err(|e| Error::output(dst, e))?;
                }
            }
            Ok(())
        },
    )
}

/// `produce` over `jobs` on this thread, `consume` of each result in order
/// on a thread of its own that owns `state`, one result ahead: the workers
/// encode the next batch while the last is written (written in turn, the
/// workers idled meanwhile). Returns the state, or the first error. On a
/// one-thread pool, one after the other on this thread (`--threads 1` keeps
/// the run on one core).
fn pipeline<J, R: Send, S: Send>(
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

/// The GeoTIFF and nodata tags GDAL writes for `ds`'s grid, read back from
/// a 1 x 1 GeoTIFF it writes beside `dst` (then removed).
fn geo_entries<T: Sample>(ds: &gdal::Dataset, nodata: f64, dst: &Path) -> Result<Vec<Entry>> {
    let path = dst.with_extension("grid.tif");
    let err = |e: gdal::errors::GdalError| Error::output(&path, gdal_msg(&e));
    let drv = gdal::DriverManager::get_driver_by_name("GTiff").map_err(err)?;
    {
        let mut t = drv
            .create_with_band_type::<T, _>(&path, 1, 1, 1)
            .map_err(err)?;
        t.set_geo_transform(&ds.geo_transform().map_err(err)?)
            .map_err(err)?;
        t.set_projection(&ds.projection()).map_err(err)?;
        t.rasterband(1)
            .map_err(err)?
            .set_no_data_value(Some(nodata))
            .map_err(err)?;
        t.close().map_err(err)?;
    }
    let file = File::open(&path).map_err(|e| Error::output(&path, e))?;
    let ifd = Ifd::first(&file).ok_or_else(|| Error::output(&path, "not a little-endian TIFF"))?;
    let out = GEO_TAGS
        .iter()
        .chain(&[NODATA_TAG])
        .filter_map(|&tag| {
            ifd.raw(&file, tag)
                .map(|(typ, count, data)| Entry(tag, typ, count, data))
        })
        .collect();
    drop(file);
    let _ = std::fs::remove_file(&path);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::align::Grid;
    use crate::export::raster::{create_working, to_cog};
    use gdal::Metadata;

    fn grid(w: usize, h: usize) -> Grid {
        let srs = gdal::spatial_ref::SpatialRef::from_epsg(32634).unwrap();
        Grid {
            width: w,
            height: h,
            geotransform: [600_000.0, 10.0, 0.0, 2_500_000.0, 0.0, -10.0],
            wkt: srs.to_wkt().unwrap(),
            epsg: Some(32634),
        }
    }

    /// A working raster of `w` x `h` with `value(x, y)`, written by block as
    /// the score pass does (some blocks left unwritten when `skip` says so).
    fn working<T: Sample>(
        path: &Path,
        g: &Grid,
        nodata: f64,
        value: impl Fn(usize, usize) -> T,
        skip: impl Fn(usize, usize) -> bool,
    ) {
        let ds = create_working::<T>(path, g, nodata).unwrap();
        let mut band = ds.rasterband(1).unwrap();
        for by in (0..g.height).step_by(300) {
            for bx in (0..g.width).step_by(300) {
                if skip(bx, by) {
                    continue;
                }
                let (bw, bh) = (300.min(g.width - bx), 300.min(g.height - by));
                let v: Vec<T> = (0..bw * bh)
                    .map(|i| value(bx + i % bw, by + i / bw))
                    .collect();
                let mut buf = gdal::raster::Buffer::new((bw, bh), v);
                band.write((bx as isize, by as isize), (bw, bh), &mut buf)
                    .unwrap();
            }
        }
        ds.close().unwrap();
    }

    fn read_level<T: Sample>(ds: &gdal::Dataset, level: Option<usize>) -> (usize, usize, Vec<T>) {
        let b = ds.rasterband(1).unwrap();
        let b = match level {
            Some(k) => b.overview(k).unwrap(),
            None => b,
        };
        let (w, h) = b.size();
        let v = b.read_as::<T>((0, 0), (w, h), (w, h), None).unwrap();
        (w, h, v.data().to_vec())
    }

    fn check_same_as_gdal<T: Sample + PartialEq + std::fmt::Debug>(
        value: impl Fn(usize, usize) -> T,
        nodata: f64,
        resampling: &str,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let g = grid(1100, 700);
        let src = dir.path().join("work.tif");
        // Two blocks never written: sparse tiles read as nodata.
        working::<T>(&src, &g, nodata, value, |bx, by| bx == 600 && by <= 300);
        let ours = dir.path().join("ours.tif");
        assert!(write_cog(&src, &ours, None).unwrap());
        // GDAL's COG driver on the same working raster, with the same
        // overviews (add_overviews writes them into a copy).
        let src2 = dir.path().join("work2.tif");
        std::fs::copy(&src, &src2).unwrap();
        let gdals = dir.path().join("gdal.tif");
        super::super::raster::add_overviews(&src2, resampling).unwrap();
        {
            let ds = gdal::Dataset::open(&src2).unwrap();
            let drv = gdal::DriverManager::get_driver_by_name("COG").unwrap();
            let opts = gdal::raster::RasterCreationOptions::from_iter([
                "BLOCKSIZE=512",
                "OVERVIEWS=FORCE_USE_EXISTING",
            ]);
            ds.create_copy(&drv, &gdals, &opts)
                .unwrap()
                .close()
                .unwrap();
        }
        let (a, b) = (
            gdal::Dataset::open(&ours).unwrap(),
            gdal::Dataset::open(&gdals).unwrap(),
        );
        assert_eq!(a.raster_size(), (1100, 700));
        assert_eq!(a.geo_transform().unwrap(), g.geotransform);
        assert_eq!(
            a.spatial_ref().unwrap().auth_code().unwrap(),
            b.spatial_ref().unwrap().auth_code().unwrap()
        );
        assert_eq!(
            a.rasterband(1).unwrap().no_data_value(),
            b.rasterband(1).unwrap().no_data_value()
        );
        assert_eq!(
            a.metadata_item("LAYOUT", "IMAGE_STRUCTURE").as_deref(),
            Some("COG")
        );
        let ov = a.rasterband(1).unwrap().overview_count().unwrap();
        // 1100 -> 550 -> 275 columns.
        assert_eq!(ov, 2);
        assert_eq!(ov, b.rasterband(1).unwrap().overview_count().unwrap());
        for level in [None, Some(0), Some(1)] {
            let (x, y) = (read_level::<T>(&a, level), read_level::<T>(&b, level));
            assert_eq!((x.0, x.1), (y.0, y.1));
            let same =
                x.2.iter()
                    .zip(&y.2)
                    .all(|(p, q)| bytes_of(&[*p]) == bytes_of(&[*q]));
            assert!(same, "level {level:?} differs from GDAL's");
        }
        // to_cog takes this path and leaves nothing beside its output.
        let via = dir.path().join("out").join("via.tif");
        std::fs::create_dir(via.parent().unwrap()).unwrap();
        to_cog(&src, &via, resampling, 1, None).unwrap();
        assert_eq!(std::fs::read(&via).unwrap(), std::fs::read(&ours).unwrap());
        assert_eq!(std::fs::read_dir(via.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn float_cog_has_gdals_pixels_overviews_and_georeferencing() {
        check_same_as_gdal::<f32>(
            |x, y| match (x * 7 + y * 13) % 11 {
                0 => f32::NAN,
                1 => -1.0,
                k => (x as f32 * 0.01).sin() * k as f32 + y as f32 * 1e-3,
            },
            -1.0,
            "AVERAGE",
        );
    }

    #[test]
    fn byte_cog_has_gdals_pixels_overviews_and_georeferencing() {
        check_same_as_gdal::<u8>(|x, y| ((x / 3 + y / 5) % 3) as u8 * 127, 255.0, "NEAREST");
    }

    #[test]
    fn bigtiff_cogs_read_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let g = grid(700, 600);
        let src = dir.path().join("work.tif");
        working::<f32>(
            &src,
            &g,
            -1.0,
            |x, y| (x * y % 97) as f32 / 97.0,
            |_, _| false,
        );
        let ds = gdal::Dataset::open(&src).unwrap();
        let (classic, big) = (dir.path().join("classic.tif"), dir.path().join("big.tif"));
        assert!(write::<f32>(&src, &classic, &ds, false, None).unwrap());
        assert!(write::<f32>(&src, &big, &ds, true, None).unwrap());
        // BigTIFF's magic number, 43.
        assert_eq!(&std::fs::read(&big).unwrap()[..4], b"II+\0");
        let (a, b) = (
            gdal::Dataset::open(&classic).unwrap(),
            gdal::Dataset::open(&big).unwrap(),
        );
        assert_eq!(
            b.metadata_item("LAYOUT", "IMAGE_STRUCTURE").as_deref(),
            Some("COG")
        );
        assert_eq!(b.geo_transform().unwrap(), g.geotransform);
        assert_eq!(b.rasterband(1).unwrap().no_data_value(), Some(-1.0));
        for level in [None, Some(0)] {
            let (x, y) = (read_level::<f32>(&a, level), read_level::<f32>(&b, level));
            assert_eq!((x.0, x.1), (y.0, y.1));
            assert_eq!(bytes_of(&x.2), bytes_of(&y.2), "level {level:?}");
        }
    }

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

    #[test]
    fn rasters_of_other_forms_are_left_to_gdal() {
        let dir = tempfile::tempdir().unwrap();
        let g = grid(40, 30);
        let src = dir.path().join("i16.tif");
        let ds = create_working::<i16>(&src, &g, 0.0).unwrap();
        ds.close().unwrap();
        assert!(!write_cog(&src, &dir.path().join("x.tif"), None).unwrap());
        assert!(!dir.path().join("x.tif").exists());
    }
}
