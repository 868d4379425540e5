//! The sample types the COG writer handles (Float32 scores, byte masks)
//! and their encoding: bits, TIFF sample format, codec, predictor, and the
//! overview pyramid each takes.

use super::pyramid::{average_pyramid, nearest_pyramid, Level};
use super::tile_encode::{fp_predict_row, horizontal_predict_row, Encoder};
use gdal::raster::GdalType;

/// A sample type this writer handles, with its COG encoding.
pub trait Sample: GdalType + Copy + Send + Sync + 'static {
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
pub fn bytes_of<T: Sample>(v: &[T]) -> &[u8] {
    // SAFETY: f32 and u8 have no padding; u8 has no alignment or validity
    // requirements; the length covers exactly the samples' bytes.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast(), std::mem::size_of_val(v)) }
}

pub fn bytes_of_mut<T: Sample>(v: &mut [T]) -> &mut [u8] {
    // SAFETY: as `bytes_of`; every bit pattern is a valid f32 or u8.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast(), std::mem::size_of_val(v)) }
}
