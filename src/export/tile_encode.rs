//! Encoding one COG tile the way libtiff stores it: TIFF's predictor, then
//! the codec. Float scores: the floating-point predictor (tag 317 = 3) and
//! ZSTD; byte masks: the horizontal predictor (317 = 2) and DEFLATE (zlib
//! stream, compression 8).
//!
//! Why not libtiff: its floating-point predictor shuffles and differences a
//! byte at a time (about 1.2 CPU s of a full tile's score), and GDAL's COG
//! copy goes through its block cache on top. The codecs are the system's
//! libzstd and libdeflate, the ones GDAL's libtiff uses (both come with
//! libgdal-dev).

use std::ffi::{c_int, c_uint, c_void};
use std::ptr::NonNull;

/// TIFF's floating-point predictor on one row of f32 samples, as libtiff's
/// `fpDiff` writes it: the samples' bytes split into planes, the most
/// significant first, then every byte of the row minus the one before it
/// (mod 256), across the planes. `scratch` and `out` are 4 x `row.len()`.
pub fn fp_predict_row(row: &[f32], scratch: &mut [u8], out: &mut [u8]) {
    let n = row.len();
    let (p3, rest) = scratch[..4 * n].split_at_mut(n);
    let (p2, rest) = rest.split_at_mut(n);
    let (p1, p0) = rest.split_at_mut(n);
    for (i, v) in row.iter().enumerate() {
        let b = v.to_bits();
        p3[i] = (b >> 24) as u8;
        p2[i] = (b >> 16) as u8;
        p1[i] = (b >> 8) as u8;
        p0[i] = b as u8;
    }
    difference(&scratch[..4 * n], &mut out[..4 * n]);
}

/// TIFF's horizontal predictor on one row of bytes: each byte minus the one
/// before it (mod 256).
pub fn horizontal_predict_row(row: &[u8], out: &mut [u8]) {
    difference(row, &mut out[..row.len()]);
}

/// `out[0] = v[0]`, `out[i] = v[i] - v[i - 1]` (mod 256).
#[inline]
fn difference(v: &[u8], out: &mut [u8]) {
    if v.is_empty() {
        return;
    }
    out[0] = v[0];
    for ((o, &a), &b) in out[1..].iter_mut().zip(&v[1..]).zip(v) {
        *o = a.wrapping_sub(b);
    }
}

/// A tile's codec, with its compressor state (one per thread: neither
/// library's compressor may be shared).
pub enum Encoder {
    /// ZSTD at a level.
    Zstd(NonNull<c_void>, c_int),
    /// libdeflate's zlib stream.
    Deflate(NonNull<c_void>),
}

// SAFETY: the compressors hold no thread-affine state; an Encoder is used by
// one thread at a time (&mut self).
unsafe impl Send for Encoder {}

#[link(name = "zstd")]
extern "C" {
    fn ZSTD_createCCtx() -> *mut c_void;
    fn ZSTD_freeCCtx(c: *mut c_void) -> usize;
    fn ZSTD_compressBound(n: usize) -> usize;
    fn ZSTD_isError(code: usize) -> c_uint;
    fn ZSTD_compressCCtx(
        c: *mut c_void,
        dst: *mut c_void,
        cap: usize,
        src: *const c_void,
        n: usize,
        level: c_int,
    ) -> usize;
}

#[link(name = "deflate")]
extern "C" {
    fn libdeflate_alloc_compressor(level: c_int) -> *mut c_void;
    fn libdeflate_free_compressor(c: *mut c_void);
    fn libdeflate_zlib_compress_bound(c: *mut c_void, n: usize) -> usize;
    fn libdeflate_zlib_compress(
        c: *mut c_void,
        src: *const c_void,
        n: usize,
        dst: *mut c_void,
        cap: usize,
    ) -> usize;
}

impl Encoder {
    /// ZSTD at `level`; None if libzstd cannot allocate a context.
    pub fn zstd(level: i32) -> Option<Encoder> {
        // SAFETY: allocates a context, or returns null.
        NonNull::new(unsafe { ZSTD_createCCtx() }).map(|c| Encoder::Zstd(c, level))
    }

    /// DEFLATE (zlib stream) at `level`; None if libdeflate cannot allocate
    /// a compressor.
    pub fn deflate(level: i32) -> Option<Encoder> {
        // SAFETY: allocates a compressor, or returns null.
        NonNull::new(unsafe { libdeflate_alloc_compressor(level) }).map(Encoder::Deflate)
    }

    /// `data` compressed, or None on a codec error.
    pub fn compress(&mut self, data: &[u8]) -> Option<Vec<u8>> {
        // SAFETY: every buffer is valid for the length passed, the output
        // is sized by the library's own bound, and the state is ours alone.
        unsafe {
            match self {
                Encoder::Zstd(c, level) => {
                    let cap = ZSTD_compressBound(data.len());
                    let mut out = Vec::<u8>::with_capacity(cap);
                    let n = ZSTD_compressCCtx(
                        c.as_ptr(),
                        out.as_mut_ptr().cast(),
                        cap,
                        data.as_ptr().cast(),
                        data.len(),
                        *level,
                    );
                    if ZSTD_isError(n) != 0 {
                        return None;
                    }
                    out.set_len(n);
                    Some(out)
                }
                Encoder::Deflate(c) => {
                    let cap = libdeflate_zlib_compress_bound(c.as_ptr(), data.len());
                    let mut out = Vec::<u8>::with_capacity(cap);
                    let n = libdeflate_zlib_compress(
                        c.as_ptr(),
                        data.as_ptr().cast(),
                        data.len(),
                        out.as_mut_ptr().cast(),
                        cap,
                    );
                    if n == 0 {
                        return None;
                    }
                    out.set_len(n);
                    Some(out)
                }
            }
        }
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        // SAFETY: allocated by the matching constructor, freed once.
        unsafe {
            match self {
                Encoder::Zstd(c, _) => {
                    ZSTD_freeCCtx(c.as_ptr());
                }
                Encoder::Deflate(c) => libdeflate_free_compressor(c.as_ptr()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// libtiff's `fpDiff`, transcribed: copy, byte-shuffle, then difference
    /// from the end backwards in place.
    fn libtiff_fp_diff(row: &[f32]) -> Vec<u8> {
        let bps = 4;
        let wc = row.len();
        let tmp: Vec<u8> = row.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut cp = vec![0u8; tmp.len()];
        for count in 0..wc {
            for byte in 0..bps {
                cp[(bps - byte - 1) * wc + count] = tmp[bps * count + byte];
            }
        }
        for i in (1..cp.len()).rev() {
            cp[i] = cp[i].wrapping_sub(cp[i - 1]);
        }
        cp
    }

    #[test]
    fn fp_predictor_is_libtiffs() {
        let row: Vec<f32> = (0..37)
            .map(|i| match i % 7 {
                0 => f32::NAN,
                1 => -1.0,
                2 => 0.0,
                _ => (i as f32 * 0.137).sin() * 1e3,
            })
            .collect();
        let (mut scratch, mut out) = (vec![0u8; 4 * 37], vec![0u8; 4 * 37]);
        fp_predict_row(&row, &mut scratch, &mut out);
        assert_eq!(out, libtiff_fp_diff(&row));
    }

    #[test]
    fn horizontal_predictor_differences_bytes() {
        let mut out = [0u8; 4];
        horizontal_predict_row(&[5, 3, 255, 0], &mut out);
        assert_eq!(out, [5, 254, 252, 1]);
    }

    #[test]
    fn codecs_compress_what_their_decoders_restore() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251 / 7) as u8).collect();
        let z = Encoder::zstd(1).unwrap().compress(&data).unwrap();
        assert!(z.len() < data.len() / 10);
        // The zstd frame header's magic number.
        assert_eq!(&z[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
        let d = Encoder::deflate(4).unwrap().compress(&data).unwrap();
        assert!(d.len() < data.len() / 10);
        // A zlib stream: CMF 0x78, and the header is a multiple of 31.
        assert_eq!(d[0], 0x78);
        assert_eq!((d[0] as u16 * 256 + d[1] as u16) % 31, 0);
    }
}
