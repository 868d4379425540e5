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
//! The overviews are [`super::pyramid`]s (AVERAGE for scores, NEAREST for
//! masks) of each 512 px tile, as [`super::to_cog::add_overviews`] makes
//! them. They go through anonymous temporary files, one per level, so that
//! memory stays a few rows of tiles whatever the raster's size.
//!
//! The directories' bytes are [`super::tiff_layout`]'s; the sample types
//! and their codecs [`super::cog_sample`]'s; the threads
//! [`super::cog_pipeline`]'s.

pub use super::cog_pipeline::Workers;

use super::cog_pipeline::{batches, on, pipeline};
use super::cog_sample::{bytes_of, bytes_of_mut, Sample};
use super::direct_file::DirectFile;
use super::pyramid::{overview_factors, COG_BLOCK};
use super::tiff_layout::{entries, geo_entries, ifd_bytes, GHOST};
use crate::error::{gdal_msg, Error, Result};
use crate::read::tiff_ifd::Ifd;
use rayon::prelude::*;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::raster::create_working;
    use crate::export::raster::testing::{grid, read_level, working};
    use gdal::Metadata;

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
