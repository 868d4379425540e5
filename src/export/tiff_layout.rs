//! The byte layout of a COG's TIFF directories (IFDs): GDAL's structural
//! metadata block, the entries of each image (classic TIFF or BigTIFF),
//! and the GeoTIFF and nodata tags copied from a GeoTIFF GDAL writes on the
//! same grid, so the CRS is encoded exactly as GDAL encodes it.

use super::cog_sample::Sample;
use super::pyramid::COG_BLOCK;
use crate::error::{gdal_msg, Error, Result};
use crate::read::tiff_ifd::Ifd;
use gdal::Metadata as _;
use std::fs::File;
use std::path::Path;

/// GDAL's structural metadata for a COG (GDAL 3.1 and later), byte for byte.
pub const GHOST: &[u8] = b"GDAL_STRUCTURAL_METADATA_SIZE=000140 bytes\n\
LAYOUT=IFDS_BEFORE_DATA\n\
BLOCK_ORDER=ROW_MAJOR\n\
BLOCK_LEADER=SIZE_AS_UINT4\n\
BLOCK_TRAILER=LAST_4_BYTES_REPEATED\n\
KNOWN_INCOMPATIBLE_EDITION=NO\n ";

/// Tags copied from GDAL's GeoTIFF onto the full-resolution image:
/// ModelPixelScale, ModelTiepoint, ModelTransformation, GeoKeyDirectory,
/// GeoDoubleParams, GeoAsciiParams, GDAL_METADATA.
pub const GEO_TAGS: [u16; 7] = [33550, 33922, 34264, 34735, 34736, 34737, 42112];
/// GDAL_NODATA, on every image.
pub const NODATA_TAG: u16 = 42113;
/// Photometric and ColorMap, on every image when the source has a colour
/// table (a palette image needs its map on each IFD).
pub const PALETTE_TAGS: [u16; 2] = [262, 320];

/// One IFD entry: tag, TIFF type, count, value bytes (little-endian).
pub struct Entry(pub u16, pub u16, pub u64, pub Vec<u8>);

fn short(tag: u16, v: u16) -> Entry {
    Entry(tag, 3, 1, v.to_le_bytes().to_vec())
}

fn long(tag: u16, v: u32) -> Entry {
    Entry(tag, 4, 1, v.to_le_bytes().to_vec())
}

/// An image's directory: its entries, tag order, with tile offsets and byte
/// counts as given.
pub fn entries<T: Sample>(
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
        short(277, 1),
        short(284, 1),
        short(317, T::PREDICTOR),
        short(322, COG_BLOCK as u16),
        short(323, COG_BLOCK as u16),
        array(324, tiles.0),
        array(325, tiles.1),
        short(339, T::FORMAT),
    ]);
    if !copied.iter().any(|c| c.0 == 262) {
        e.push(short(262, 1));
    }
    for c in copied {
        if !overview || c.0 == NODATA_TAG || PALETTE_TAGS.contains(&c.0) {
            e.push(Entry(c.0, c.1, c.2, c.3.clone()));
        }
    }
    e.sort_by_key(|x| x.0);
    e
}

/// The bytes of a directory written at `at`: count, entries, the next
/// directory's offset, then the values that do not fit in an entry.
pub fn ifd_bytes(entries: &[Entry], at: u64, next: u64, big: bool) -> Vec<u8> {
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

/// The GeoTIFF and nodata tags GDAL writes for `ds`'s grid, read back from
/// a 1 x 1 GeoTIFF it writes beside `dst` (then removed), with the band's
/// description (in GDAL_METADATA) and colour table (palette photometric and
/// ColorMap) when `ds` has them.
pub fn geo_entries<T: Sample>(ds: &gdal::Dataset, nodata: f64, dst: &Path) -> Result<Vec<Entry>> {
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
        let src = ds.rasterband(1).map_err(err)?;
        let mut band = t.rasterband(1).map_err(err)?;
        band.set_no_data_value(Some(nodata)).map_err(err)?;
        if let Some(d) = src.description().ok().filter(|d| !d.is_empty()) {
            band.set_description(&d).map_err(err)?;
        }
        if let Some(ct) = src.color_table() {
            band.set_color_table(&ct);
        }
        t.close().map_err(err)?;
    }
    let file = File::open(&path).map_err(|e| Error::output(&path, e))?;
    let ifd = Ifd::first(&file).ok_or_else(|| Error::output(&path, "not a little-endian TIFF"))?;
    let out = GEO_TAGS
        .iter()
        .chain(&[NODATA_TAG])
        .chain(&PALETTE_TAGS)
        .filter_map(|&tag| {
            ifd.raw(&file, tag)
                .map(|(typ, count, data)| Entry(tag, typ, count, data))
        })
        .collect();
    drop(file);
    let _ = std::fs::remove_file(&path);
    Ok(out)
}
