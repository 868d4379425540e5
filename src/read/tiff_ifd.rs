//! A TIFF's first image file directory (classic TIFF or BigTIFF,
//! little-endian): where each tag's values are, read straight from the file.
//! Used by the tile reader here and by the COG writer (its working rasters,
//! and the GeoTIFF tags GDAL writes).

use std::fs::File;
use std::os::unix::fs::FileExt;

/// A TIFF's first image file directory: where each tag's values are.
pub struct Ifd {
    big: bool,
    /// (tag, type, count, the entry's value/offset field as raw bytes).
    entries: Vec<(u16, u16, u64, [u8; 8])>,
}

impl Ifd {
    /// Little-endian TIFF or BigTIFF only (what GDAL writes on this kind of
    /// machine); anything else is None.
    pub fn first(file: &File) -> Option<Ifd> {
        if cfg!(target_endian = "big") {
            return None;
        }
        let mut head = [0u8; 16];
        file.read_exact_at(&mut head, 0).ok()?;
        if &head[0..2] != b"II" {
            return None;
        }
        let u16_at = |b: &[u8], i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        let (big, ifd_at) = match u16_at(&head, 2) {
            42 => (
                false,
                u32::from_le_bytes(head[4..8].try_into().ok()?) as u64,
            ),
            43 => (true, u64::from_le_bytes(head[8..16].try_into().ok()?)),
            _ => return None,
        };
        let (count_len, entry_len) = if big { (8, 20) } else { (2, 12) };
        let mut count = [0u8; 8];
        file.read_exact_at(&mut count[..count_len], ifd_at).ok()?;
        let n = u64::from_le_bytes(count) as usize;
        if n == 0 || n > 4096 {
            return None;
        }
        let mut raw = vec![0u8; n * entry_len];
        file.read_exact_at(&mut raw, ifd_at + count_len as u64)
            .ok()?;
        let entries = raw
            .chunks_exact(entry_len)
            .map(|e| {
                let mut field = [0u8; 8];
                let (count, value) = if big {
                    (u64::from_le_bytes(e[4..12].try_into().unwrap()), &e[12..20])
                } else {
                    (
                        u32::from_le_bytes(e[4..8].try_into().unwrap()) as u64,
                        &e[8..12],
                    )
                };
                field[..value.len()].copy_from_slice(value);
                (u16_at(e, 0), u16_at(e, 2), count, field)
            })
            .collect();
        Some(Ifd { big, entries })
    }

    /// `tag`'s type, count and value bytes (inline or at their offset), as
    /// they are in the file: what a writer needs to copy the entry.
    pub fn raw(&self, file: &File, tag: u16) -> Option<(u16, u64, Vec<u8>)> {
        let &(_, typ, count, field) = self.entries.iter().find(|e| e.0 == tag)?;
        let size = match typ {
            1 | 2 | 6 | 7 => 1,
            3 | 8 => 2,
            4 | 9 | 11 => 4,
            _ => 8,
        };
        let bytes = usize::try_from(count).ok().filter(|&c| c <= 1 << 24)? * size;
        let inline = if self.big { 8 } else { 4 };
        let data = if bytes <= inline {
            field[..bytes].to_vec()
        } else {
            let at = if self.big {
                u64::from_le_bytes(field)
            } else {
                u32::from_le_bytes(field[..4].try_into().ok()?) as u64
            };
            let mut v = vec![0u8; bytes];
            file.read_exact_at(&mut v, at).ok()?;
            v
        };
        Some((typ, count, data))
    }

    /// The integer values of `tag` (SHORT, LONG or LONG8), inline or at
    /// their offset.
    pub fn values(&self, file: &File, tag: u16) -> Option<Vec<u64>> {
        let (typ, _, data) = self.raw(file, tag)?;
        let size = match typ {
            3 => 2,  // SHORT
            4 => 4,  // LONG
            16 => 8, // LONG8
            _ => return None,
        };
        Some(
            data.chunks_exact(size)
                .map(|c| match size {
                    2 => u16::from_le_bytes([c[0], c[1]]) as u64,
                    4 => u32::from_le_bytes(c.try_into().unwrap()) as u64,
                    _ => u64::from_le_bytes(c.try_into().unwrap()),
                })
                .collect(),
        )
    }
}
