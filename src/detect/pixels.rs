//! One window of both dates on the output grid: reflectance of the
//! statistics bands, pixel-major, and the mask reason of every pixel.

use super::masks::{looks_cloudy, scl_reason, MaskReason};
use super::STAT_BANDS;
use crate::align::reader::Date;
use crate::align::{AlignedPair, SceneReader, Window};
use crate::error::Result;
use crate::read::Band;

pub struct Pixels {
    /// Pixels in the buffer (cols, rows); smaller than the window for decimated reads.
    pub shape: (usize, usize),
    /// Reflectance, `P` values per pixel, pixel-major.
    pub before: Vec<f32>,
    pub after: Vec<f32>,
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
    pub fn x(&self, i: usize) -> &[f32] {
        &self.before[i * P..(i + 1) * P]
    }
    pub fn y(&self, i: usize) -> &[f32] {
        &self.after[i * P..(i + 1) * P]
    }
}

fn read_date(
    reader: &mut SceneReader,
    date: Date,
    win: Window,
    shape: (usize, usize),
) -> Result<Vec<f32>> {
    let n = shape.0 * shape.1;
    let mut out = vec![0.0f32; n * P];
    for (k, b) in STAT_BANDS.iter().enumerate() {
        let v = reader.reflectance(date, *b, win, shape)?;
        for (i, r) in v.into_iter().enumerate() {
            out[i * P + k] = r;
        }
    }
    Ok(out)
}

/// Reads both dates over `win` into `shape` and works out the mask.
pub fn read_pixels(
    reader: &mut SceneReader,
    pair: &AlignedPair,
    win: Window,
    shape: (usize, usize),
) -> Result<Pixels> {
    let n = shape.0 * shape.1;
    let before = read_date(reader, Date::Before, win, shape)?;
    let after = read_date(reader, Date::After, win, shape)?;
    let mut mask = vec![MaskReason::Valid; n];

    if let Some(aoi) = &pair.aoi {
        let v = reader.raw(aoi, win, shape)?;
        for (m, a) in mask.iter_mut().zip(v) {
            if a != 1.0 {
                *m = MaskReason::OutsideAoi;
            }
        }
    }
    for (date, refl, scene) in [
        (Date::Before, &before, &pair.before),
        (Date::After, &after, &pair.after),
    ] {
        let cirrus = match scene.bands.get(&Band::B10) {
            Some(_) if scene.scl.is_none() => {
                Some(reader.reflectance(date, Band::B10, win, shape)?)
            }
            _ => None,
        };
        let scl = match &scene.scl {
            Some(ab) => Some(reader.raw(ab, win, shape)?),
            None => None,
        };
        for i in 0..n {
            if mask[i] != MaskReason::Valid
                && mask[i] != MaskReason::Cloud
                && mask[i] != MaskReason::CloudShadow
            {
                continue;
            }
            let r = &refl[i * P..(i + 1) * P];
            let reason = if r.iter().any(|v| v.is_nan()) {
                MaskReason::NoData
            } else if r.iter().any(|v| v.is_infinite()) {
                MaskReason::Saturated
            } else if let Some(s) = &scl {
                scl_reason(s[i])
            } else if looks_cloudy(r, cirrus.as_ref().map(|c| c[i]).filter(|c| c.is_finite())) {
                MaskReason::Cloud
            } else {
                MaskReason::Valid
            };
            // No data and saturation outrank cloud.
            if reason != MaskReason::Valid
                && (mask[i] == MaskReason::Valid || (reason as u8) < (mask[i] as u8))
            {
                mask[i] = reason;
            }
        }
    }
    Ok(Pixels {
        shape,
        before,
        after,
        mask,
    })
}
