//! Spectral indices of built-up and bare ground, vegetation and water.
//! Inputs are reflectances in the order of [`super::STAT_BANDS`]:
//! B02 blue, B03 green, B04 red, B08 NIR, B11 SWIR1, B12 SWIR2.

use serde::Serialize;

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Indices {
    /// Vegetation: (NIR - red) / (NIR + red).
    pub ndvi: f32,
    /// Built-up: (SWIR1 - NIR) / (SWIR1 + NIR) (Zha et al. 2003).
    pub ndbi: f32,
    /// Bare soil: ((SWIR1 + red) - (NIR + blue)) / ((SWIR1 + red) + (NIR + blue)).
    pub bsi: f32,
    /// Open water: (green - SWIR1) / (green + SWIR1) (Xu 2006).
    pub mndwi: f32,
    /// Mean reflectance of the six bands.
    pub brightness: f32,
}

#[inline]
fn nd(a: f32, b: f32) -> f32 {
    let s = a + b;
    if s.abs() < 1e-6 {
        0.0
    } else {
        (a - b) / s
    }
}

impl Indices {
    pub fn of(r: &[f32]) -> Indices {
        let (blue, green, red, nir, swir1, swir2) = (r[0], r[1], r[2], r[3], r[4], r[5]);
        Indices {
            ndvi: nd(nir, red),
            ndbi: nd(swir1, nir),
            bsi: nd(swir1 + red, nir + blue),
            mndwi: nd(green, swir1),
            brightness: (blue + green + red + nir + swir1 + swir2) / 6.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typical_surfaces() {
        let veg = Indices::of(&[0.03, 0.06, 0.04, 0.40, 0.20, 0.10]);
        let water = Indices::of(&[0.08, 0.07, 0.05, 0.03, 0.01, 0.005]);
        let sand = Indices::of(&[0.18, 0.26, 0.34, 0.40, 0.50, 0.45]);
        assert!(veg.ndvi > 0.7 && water.ndvi < 0.0);
        assert!(water.mndwi > 0.5 && sand.mndwi < 0.0);
        assert!(sand.bsi > veg.bsi && sand.ndbi > 0.0);
    }
}
