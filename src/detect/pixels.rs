//! One window of both dates on the output grid: reflectance of the
//! statistics bands, pixel-major, and the mask reason of every pixel.

use super::masks::{looks_cloudy_row, MaskReason, REASONS};
use super::STAT_BANDS;
use crate::align::reader::Date;
use crate::align::{AlignedPair, SceneReader, Window};
use crate::error::Result;
use crate::read::Band;

pub struct Pixels {
    /// Pixels in the buffer (cols, rows); smaller than the window for decimated reads.
    pub shape: (usize, usize),
    /// Reflectance, one plane per statistics band (band-major, as the
    /// rasters are read: assembling is a copy of rows, and the score's
    /// per-band passes vectorise).
    pub before: [Vec<f32>; P],
    pub after: [Vec<f32>; P],
    pub mask: Vec<MaskReason>,
}

const P: usize = STAT_BANDS.len();

impl Pixels {
    pub fn len(&self) -> usize {
        self.mask.len()
    }
    pub fn is_empty(&self) -> bool {
        self.mask.is_empty()
    }
    /// Before reflectance of pixel `i`, band by band.
    #[inline]
    pub fn x(&self, i: usize) -> [f32; P] {
        std::array::from_fn(|k| self.before[k][i])
    }
    /// After reflectance of pixel `i`.
    #[inline]
    pub fn y(&self, i: usize) -> [f32; P] {
        std::array::from_fn(|k| self.after[k][i])
    }
}

/// One raster a window read needs, in the order [`items`] lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    /// Reflectance of a statistics band.
    Reflectance(Date, Band),
    /// B10 for the L1C cloud test (scenes without a scene classification).
    Cirrus(Date),
    /// The L2A scene classification.
    Scl(Date),
    /// The area-of-interest raster.
    Aoi,
}

/// The rasters a window of `pair` is made from.
pub fn items(pair: &AlignedPair) -> Vec<Item> {
    let mut v = Vec::new();
    for (date, scene) in [(Date::Before, &pair.before), (Date::After, &pair.after)] {
        v.extend(STAT_BANDS.iter().map(|b| Item::Reflectance(date, *b)));
        if scene.scl.is_some() {
            v.push(Item::Scl(date));
        } else if scene.bands.contains_key(&Band::B10) {
            v.push(Item::Cirrus(date));
        }
    }
    if pair.aoi.is_some() {
        v.push(Item::Aoi);
    }
    v
}

/// Reads one item over `win` into `shape`.
pub fn read_item(
    reader: &mut SceneReader,
    pair: &AlignedPair,
    item: Item,
    win: Window,
    shape: (usize, usize),
) -> Result<Vec<f32>> {
    let scene = |d: Date| match d {
        Date::Before => &pair.before,
        Date::After => &pair.after,
    };
    match item {
        Item::Reflectance(d, b) => reader.reflectance(d, b, win, shape),
        Item::Cirrus(d) => reader.reflectance(d, Band::B10, win, shape),
        Item::Scl(d) => reader.raw(scene(d).scl.as_ref().expect("listed"), win, shape),
        Item::Aoi => reader.raw(pair.aoi.as_ref().expect("listed"), win, shape),
    }
}

/// Reads both dates over `win` into `shape` and works out the mask.
pub fn read_pixels(
    reader: &mut SceneReader,
    pair: &AlignedPair,
    win: Window,
    shape: (usize, usize),
) -> Result<Pixels> {
    let items = items(pair);
    let data = items
        .iter()
        .map(|it| read_item(reader, pair, *it, win, shape))
        .collect::<Result<Vec<_>>>()?;
    Ok(assemble(&items, data, shape))
}

/// [`super::masks::scl_reason`]'s code, without branches.
#[inline]
fn scl_code(class: f32) -> u8 {
    let c = class as i32;
    (c == 0) as u8
        | (((c == 1) as u8) << 1)
        | (3 * ((8..=10).contains(&c) as u8))
        | (((c == 3) as u8) << 2)
}

/// Merges a date's reasons into the mask's codes: `bad` bit 0 no data, bit
/// 1 saturated, else `base` (cloud, shadow or valid). Only compared, cloud
/// and shadow pixels take a reason, and a reason replaces a higher code.
#[inline]
fn merge_reasons(codes: &mut [u8], bad: &[u8], base: &[u8]) {
    for ((m, &b), &c) in codes.iter_mut().zip(bad).zip(base) {
        let r = if b & 1 != 0 {
            1
        } else if b != 0 {
            2
        } else {
            c
        };
        let open = (*m == 0) | (*m == 3) | (*m == 4);
        let take = open & (r != 0) & ((*m == 0) | (r < *m));
        *m = if take { r } else { *m };
    }
}

/// Pixels from the items' rasters (`data[i]` is `items[i]` over the window).
pub fn assemble(items: &[Item], data: Vec<Vec<f32>>, shape: (usize, usize)) -> Pixels {
    assemble_cols(items, &data, shape.0, 0..shape.0)
}

/// Pixels of columns `cols` of the items' rasters (`data[i]` is `items[i]`,
/// `width` columns a row), read in place: a strip's column blocks are made
/// without copying their columns out first.
pub fn assemble_cols(
    items: &[Item],
    data: &[Vec<f32>],
    width: usize,
    cols: std::ops::Range<usize>,
) -> Pixels {
    let rows = data.first().map_or(0, |v| v.len() / width.max(1));
    let shape = (cols.len(), rows);
    let n = shape.0 * shape.1;
    // Item values of this window, row by row.
    let window = |v: &'_ [f32]| -> Vec<f32> {
        let mut out = Vec::with_capacity(n);
        for row in v.chunks_exact(width) {
            out.extend_from_slice(&row[cols.clone()]);
        }
        out
    };
    let mut before: [Vec<f32>; P] = std::array::from_fn(|_| Vec::new());
    let mut after: [Vec<f32>; P] = std::array::from_fn(|_| Vec::new());
    // Mask reasons as their codes (the `MaskReason` discriminants).
    let mut codes = vec![MaskReason::Valid as u8; n];
    let (mut cirrus, mut scl) = ([None, None], [None, None]);
    let slot = |d: Date| (d == Date::After) as usize;
    for (item, v) in items.iter().zip(data) {
        match *item {
            Item::Reflectance(d, b) => {
                let k = STAT_BANDS
                    .iter()
                    .position(|s| *s == b)
                    .expect("a statistics band");
                let out = if d == Date::Before {
                    &mut before[k]
                } else {
                    &mut after[k]
                };
                *out = window(v);
            }
            Item::Cirrus(d) => cirrus[slot(d)] = Some(window(v)),
            Item::Scl(d) => scl[slot(d)] = Some(window(v)),
            Item::Aoi => {
                let values = v.chunks_exact(width).flat_map(|row| &row[cols.clone()]);
                for (m, &a) in codes.iter_mut().zip(values) {
                    if a != 1.0 {
                        *m = MaskReason::OutsideAoi as u8;
                    }
                }
            }
        }
    }
    // Each date's reason, plane by plane (so the loops vectorise), then the
    // mask: no data and saturation outrank cloud, and the other date's
    // reason is kept where it outranks this one.
    let mut cloudy = vec![false; n];
    let mut bad = vec![0u8; n];
    let mut base = vec![0u8; n];
    for (s, refl) in [(0, &before), (1, &after)] {
        let (cirrus, scl) = (&cirrus[s], &scl[s]);
        bad.fill(0);
        for plane in refl.iter() {
            for (b, &v) in bad.iter_mut().zip(plane) {
                *b |= v.is_nan() as u8 | (v.is_infinite() as u8) << 1;
            }
        }
        if scl.is_none() {
            let bands = std::array::from_fn(|k| &refl[k][..]);
            looks_cloudy_row(bands, cirrus.as_deref(), &mut cloudy);
        }
        // This date's own reason (bar no data and saturation), then the
        // merge, without branches so that both vectorise.
        match scl {
            Some(s) => {
                for (o, &c) in base.iter_mut().zip(s) {
                    *o = scl_code(c);
                }
            }
            None => {
                for (o, &c) in base.iter_mut().zip(&cloudy) {
                    *o = 3 * c as u8;
                }
            }
        }
        merge_reasons(&mut codes, &bad, &base);
    }
    let mask = codes.iter().map(|&c| REASONS[c as usize]).collect();
    Pixels {
        shape,
        before,
        after,
        mask,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scl_codes_are_the_scl_reasons() {
        for v in (0..=12).flat_map(|c| [c as f32, c as f32 + 0.5]).chain([
            f32::NAN,
            -1.0,
            255.0,
            f32::INFINITY,
        ]) {
            assert_eq!(scl_code(v), scl_reason(v) as u8, "class {v}");
        }
    }

    #[test]
    fn merged_reasons_follow_the_rules_for_every_combination() {
        // Every mask code, bad bits and base reason, against the rules
        // written out with branches.
        for m in 0..=5u8 {
            for b in 0..=3u8 {
                for c in [0u8, 3, 4] {
                    let mut codes = [m];
                    merge_reasons(&mut codes, &[b], &[c]);
                    let r = if b & 1 != 0 {
                        1
                    } else if b != 0 {
                        2
                    } else {
                        c
                    };
                    let want = if ![0, 3, 4].contains(&m) || r == 0 {
                        m
                    } else if m == 0 || r < m {
                        r
                    } else {
                        m
                    };
                    assert_eq!(codes[0], want, "mask {m}, bad {b}, base {c}");
                }
            }
        }
    }
    use crate::detect::masks::{looks_cloudy, scl_reason};

    /// The mask by its definition, pixel by pixel: the area of interest,
    /// then each date's reason where the pixel is compared, cloud or shadow,
    /// kept when it outranks the reason there.
    fn by_definition(items: &[Item], data: &[Vec<f32>], n: usize) -> Vec<MaskReason> {
        use MaskReason::*;
        let find = |it: Item| items.iter().position(|x| *x == it).map(|k| &data[k]);
        let mut mask = vec![Valid; n];
        if let Some(a) = find(Item::Aoi) {
            for (m, &v) in mask.iter_mut().zip(a) {
                if v != 1.0 {
                    *m = OutsideAoi;
                }
            }
        }
        for d in [Date::Before, Date::After] {
            let refl: Vec<&Vec<f32>> = STAT_BANDS
                .iter()
                .map(|b| find(Item::Reflectance(d, *b)).unwrap())
                .collect();
            let (scl, cirrus) = (find(Item::Scl(d)), find(Item::Cirrus(d)));
            for i in 0..n {
                if !matches!(mask[i], Valid | Cloud | CloudShadow) {
                    continue;
                }
                let px: Vec<f32> = refl.iter().map(|p| p[i]).collect();
                let reason = if px.iter().any(|v| v.is_nan()) {
                    NoData
                } else if px.iter().any(|v| v.is_infinite()) {
                    Saturated
                } else if let Some(s) = scl {
                    scl_reason(s[i])
                } else if looks_cloudy(&px, cirrus.map(|c| c[i])) {
                    Cloud
                } else {
                    Valid
                };
                if reason != Valid && (mask[i] == Valid || (reason as u8) < (mask[i] as u8)) {
                    mask[i] = reason;
                }
            }
        }
        mask
    }

    #[test]
    fn the_mask_is_its_definition_pixel_by_pixel() {
        let (w, h) = (50, 40);
        let n = w * h;
        let mut seed = 7u64;
        let mut pick = |choices: &[f32]| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            choices[(seed >> 33) as usize % choices.len()]
        };
        let refl = [
            0.05,
            0.1,
            0.2,
            0.3,
            0.45,
            0.46,
            0.47,
            0.6,
            f32::NAN,
            f32::INFINITY,
        ];
        let scl: Vec<f32> = (0..12).map(|c| c as f32).collect();
        // The before date with a scene classification, the after one with
        // B10, and an area of interest.
        let mut items = Vec::new();
        for d in [Date::Before, Date::After] {
            items.extend(STAT_BANDS.iter().map(|b| Item::Reflectance(d, *b)));
        }
        items.extend([
            Item::Scl(Date::Before),
            Item::Cirrus(Date::After),
            Item::Aoi,
        ]);
        let data: Vec<Vec<f32>> = items
            .iter()
            .map(|it| {
                (0..n)
                    .map(|_| match it {
                        // Mostly fine values, so that every reason occurs.
                        Item::Reflectance(..) if pick(&[0.0, 1.0, 1.0, 1.0]) == 0.0 => pick(&refl),
                        Item::Reflectance(..) => pick(&[0.1, 0.2, 0.45, 0.46, 0.47, 0.5]),
                        Item::Scl(_) => pick(&scl),
                        Item::Cirrus(_) => pick(&[0.0, 0.01, 0.05]),
                        Item::Aoi => pick(&[1.0, 1.0, 1.0, 0.0]),
                    })
                    .collect()
            })
            .collect();
        let want = by_definition(&items, &data, n);
        let got = assemble_cols(&items, &data, w, 0..w);
        assert_eq!(got.mask, want);
        for r in crate::detect::masks::REASONS {
            assert!(want.contains(&r), "{r:?} does not occur");
        }
        // Columns of a wider raster give the same reasons as their own.
        let cols = assemble_cols(&items, &data, w, 10..30);
        for y in 0..h {
            assert_eq!(
                cols.mask[y * 20..(y + 1) * 20],
                want[y * w + 10..y * w + 30]
            );
        }
    }
}
