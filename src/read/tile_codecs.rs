//! The decompressors of GeoTIFF tiles read without GDAL: the system's
//! libdeflate (zlib streams, whole or a prefix of rows) and libzstd (the
//! ZSTD copies of decoded JPEG2000 bands), called through their C APIs.

/// Output bytes past the last one wanted that a shallow decode asks
/// libdeflate for. Given a buffer too small for the stream, libdeflate
/// writes the output in order and stops, with `LIBDEFLATE_INSUFFICIENT_SPACE`,
/// at the first literal, match (at most 258 bytes) or stored block (at most
/// 65 535 bytes) that would overrun it: everything before that point is
/// written, so with this much slack every wanted byte is. (The API leaves
/// the buffer's content unspecified then; the tests
/// `a_buffer_too_small_still_gets_every_byte_before_the_slack` here and
/// `a_shallow_decode_gives_the_rows_a_whole_one_does` in `tiff_tiles` hold
/// it to this.)
pub const PREFIX_SLACK: usize = 1 << 16;

/// What came of inflating a stream into a buffer.
#[derive(Debug, PartialEq)]
pub enum Inflated {
    /// The whole stream, this many bytes.
    Whole(usize),
    /// The buffer filled before the stream ended (see [`PREFIX_SLACK`]).
    Full,
    /// Not a valid stream.
    Bad,
}

/// The system's libzstd decompression context (the library the COG writer
/// and GDAL's libtiff use).
pub struct Unzstd(std::ptr::NonNull<std::ffi::c_void>);

#[link(name = "zstd")]
extern "C" {
    fn ZSTD_createDCtx() -> *mut std::ffi::c_void;
    fn ZSTD_freeDCtx(d: *mut std::ffi::c_void) -> usize;
    fn ZSTD_decompressDCtx(
        d: *mut std::ffi::c_void,
        dst: *mut std::ffi::c_void,
        dst_capacity: usize,
        src: *const std::ffi::c_void,
        src_size: usize,
    ) -> usize;
    fn ZSTD_isError(code: usize) -> std::ffi::c_uint;
}

impl Unzstd {
    pub fn new() -> Option<Unzstd> {
        // SAFETY: allocates a context, or returns null.
        std::ptr::NonNull::new(unsafe { ZSTD_createDCtx() }).map(Unzstd)
    }

    /// Decompresses the frames of `input` into `out`; the bytes written,
    /// or None when the data is not valid or does not fit.
    pub fn decompress(&mut self, input: &[u8], out: &mut [u8]) -> Option<usize> {
        // SAFETY: both buffers are valid for the lengths passed; the
        // context is ours alone (&mut self).
        let r = unsafe {
            ZSTD_decompressDCtx(
                self.0.as_ptr(),
                out.as_mut_ptr().cast(),
                out.len(),
                input.as_ptr().cast(),
                input.len(),
            )
        };
        // SAFETY: a pure function of the code.
        (unsafe { ZSTD_isError(r) } == 0).then_some(r)
    }
}

impl Drop for Unzstd {
    fn drop(&mut self) {
        // SAFETY: created by ZSTD_createDCtx, freed once.
        unsafe {
            ZSTD_freeDCtx(self.0.as_ptr());
        }
    }
}

// SAFETY: a context holds no thread-affine state; one thread at a time
// uses it (&mut self).
unsafe impl Send for Unzstd {}

/// libdeflate's zlib decompressor: the system's libdeflate (Debian
/// libdeflate-dev, which libgdal-dev depends on), the one GDAL's libtiff
/// uses. A copy built into the binary would serve GDAL's calls too (its
/// symbols would be exported), with another version than GDAL was built for.
pub struct Inflater(std::ptr::NonNull<std::ffi::c_void>);

#[link(name = "deflate")]
extern "C" {
    fn libdeflate_alloc_decompressor() -> *mut std::ffi::c_void;
    fn libdeflate_free_decompressor(d: *mut std::ffi::c_void);
    fn libdeflate_zlib_decompress(
        d: *mut std::ffi::c_void,
        input: *const std::ffi::c_void,
        in_nbytes: usize,
        out: *mut std::ffi::c_void,
        out_nbytes_avail: usize,
        actual_out_nbytes: *mut usize,
    ) -> std::ffi::c_int;
}

impl Inflater {
    pub fn new() -> Option<Inflater> {
        // SAFETY: allocates a decompressor, or returns null.
        std::ptr::NonNull::new(unsafe { libdeflate_alloc_decompressor() }).map(Inflater)
    }

    /// Inflates the zlib stream `input` into `out`.
    pub fn zlib(&mut self, input: &[u8], out: &mut [u8]) -> Inflated {
        let mut got = 0usize;
        // SAFETY: both buffers are valid for the lengths passed; the
        // decompressor is ours alone (&mut self).
        let r = unsafe {
            libdeflate_zlib_decompress(
                self.0.as_ptr(),
                input.as_ptr().cast(),
                input.len(),
                out.as_mut_ptr().cast(),
                out.len(),
                &mut got,
            )
        };
        // libdeflate_result: SUCCESS 0, BAD_DATA 1, SHORT_OUTPUT 2
        // (not returned when the size is asked for), INSUFFICIENT_SPACE 3.
        match r {
            0 => Inflated::Whole(got),
            3 => Inflated::Full,
            _ => Inflated::Bad,
        }
    }
}

impl Drop for Inflater {
    fn drop(&mut self) {
        // SAFETY: allocated by libdeflate_alloc_decompressor, freed once.
        unsafe { libdeflate_free_decompressor(self.0.as_ptr()) }
    }
}

// SAFETY: a decompressor holds no thread-affine state; it is used by one
// thread at a time (&mut self).
unsafe impl Send for Inflater {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_too_small_still_gets_every_byte_before_the_slack() {
        // A zlib stream of stored (uncompressed) blocks, the largest single
        // steps libdeflate takes, and none of them written when it would
        // overrun the buffer.
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 31 % 251) as u8).collect();
        let mut z = vec![0x78, 0x01];
        let blocks: Vec<&[u8]> = data.chunks(65_535).collect();
        for (k, b) in blocks.iter().enumerate() {
            z.push((k + 1 == blocks.len()) as u8);
            z.extend((b.len() as u16).to_le_bytes());
            z.extend((!(b.len() as u16)).to_le_bytes());
            z.extend_from_slice(b);
        }
        let (mut s1, mut s2) = (1u32, 0u32);
        for &b in &data {
            s1 = (s1 + b as u32) % 65_521;
            s2 = (s2 + s1) % 65_521;
        }
        z.extend(((s2 << 16) | s1).to_be_bytes());
        let mut inf = Inflater::new().unwrap();
        let mut out = vec![0u8; data.len()];
        assert_eq!(inf.zlib(&z, &mut out), Inflated::Whole(data.len()));
        assert_eq!(out, data);
        for want in [1, 1000, 65_535, 70_000, 130_000] {
            let mut out = vec![0u8; want + PREFIX_SLACK];
            assert_eq!(inf.zlib(&z, &mut out), Inflated::Full);
            assert_eq!(out[..want], data[..want], "{want} bytes wanted");
        }
    }
}
