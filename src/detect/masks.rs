//! What cannot be compared: no data, saturation, cloud, cloud shadow and
//! pixels outside the area of interest. L2A scenes carry ESA's scene
//! classification (SCL); for L1C a conservative spectral cloud test is used
//! (thick cloud is bright and spectrally flat in the visible; cirrus shows in
//! B10 at 1375 nm, where the ground is hidden by water vapour).

use serde::Serialize;

/// Why a pixel is masked; 0 means it is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[repr(u8)]
pub enum MaskReason {
    Valid = 0,
    NoData = 1,
    Saturated = 2,
    Cloud = 3,
    CloudShadow = 4,
    OutsideAoi = 5,
}

pub const REASONS: [MaskReason; 6] = [
    MaskReason::Valid,
    MaskReason::NoData,
    MaskReason::Saturated,
    MaskReason::Cloud,
    MaskReason::CloudShadow,
    MaskReason::OutsideAoi,
];

impl MaskReason {
    pub fn name(self) -> &'static str {
        match self {
            MaskReason::Valid => "valid",
            MaskReason::NoData => "no_data",
            MaskReason::Saturated => "saturated",
            MaskReason::Cloud => "cloud",
            MaskReason::CloudShadow => "cloud_shadow",
            MaskReason::OutsideAoi => "outside_aoi",
        }
    }
}

/// Scene classification (L2A SCL) to mask reason.
pub fn scl_reason(class: f32) -> MaskReason {
    match class as i32 {
        0 => MaskReason::NoData,
        1 => MaskReason::Saturated,
        3 => MaskReason::CloudShadow,
        8..=10 => MaskReason::Cloud,
        _ => MaskReason::Valid,
    }
}

/// Spectral cloud test for scenes without SCL; `r` holds B02 B03 B04 B08 B11
/// B12 reflectance, `cirrus` B10 when the scene has it.
pub fn looks_cloudy(r: &[f32], cirrus: Option<f32>) -> bool {
    if cirrus.is_some_and(|c| c > 0.03) {
        return true;
    }
    let (blue, green, red, nir, swir1) = (r[0], r[1], r[2], r[3], r[4]);
    let vis = (blue + green + red) / 3.0;
    // Thick cloud: bright blue, flat visible spectrum, bright in NIR and
    // SWIR too. Desert sand is brighter in red than in blue, which keeps it
    // out. A new white or metal roof looks the same in these bands, but it
    // is dark at 1375 nm where clouds, being above most water vapour, are
    // not: with B10 a cloud must show there too; without it, only very
    // bright flat pixels count.
    let flat = (blue - vis).abs() < 0.12 * vis && (red - vis).abs() < 0.12 * vis;
    let bright_enough = match cirrus {
        Some(c) => blue > 0.30 && c > 0.01,
        None => blue > 0.40,
    };
    bright_enough && flat && nir > 0.8 * vis && swir1 > 0.15
}

/// [`looks_cloudy`] over a row of pixels: `bands` holds the B02 B03 B04 B08
/// B11 planes (B12 is not used), `cirrus` the B10 plane (a non-finite value
/// counts as no B10, as [`looks_cloudy`] is called). The same tests without
/// branches, so the loop vectorises: the mask of every block runs it on
/// both dates, and per pixel it had been a fifth of assembling a block.
pub fn looks_cloudy_row(bands: [&[f32]; 5], cirrus: Option<&[f32]>, out: &mut [bool]) {
    let [blue, green, red, nir, swir1] = bands;
    let n = out.len();
    let (blue, green, red, nir, swir1) =
        (&blue[..n], &green[..n], &red[..n], &nir[..n], &swir1[..n]);
    // Everything but the brightness test, which depends on B10. Inlined
    // into the loops: called, it kept them scalar.
    #[inline(always)]
    fn common(b: f32, g: f32, r: f32, nir: f32, swir1: f32) -> bool {
        let vis = (b + g + r) / 3.0;
        let flat = ((b - vis).abs() < 0.12 * vis) & ((r - vis).abs() < 0.12 * vis);
        flat & (nir > 0.8 * vis) & (swir1 > 0.15)
    }
    match cirrus {
        Some(c) => {
            let c = &c[..n];
            for i in 0..n {
                let (b, ci) = (blue[i], c[i]);
                let known = ci.is_finite();
                let bright = (known & (b > 0.30) & (ci > 0.01)) | (!known & (b > 0.40));
                out[i] = (known & (ci > 0.03))
                    | (bright & common(b, green[i], red[i], nir[i], swir1[i]));
            }
        }
        None => {
            for i in 0..n {
                let b = blue[i];
                out[i] = (b > 0.40) & common(b, green[i], red[i], nir[i], swir1[i]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_row_cloud_test_is_the_pixel_test() {
        // Reflectances around every threshold, and NaN / infinite values.
        let vals = [
            f32::NAN,
            f32::INFINITY,
            -0.01,
            0.0,
            0.009,
            0.011,
            0.029,
            0.031,
            0.1,
            0.149,
            0.151,
            0.2,
            0.29,
            0.31,
            0.35,
            0.39,
            0.41,
            0.45,
            0.5,
            0.8,
            1.2,
        ];
        let mut seed = 7u64;
        let mut pick = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let k = (seed >> 33) as usize;
            // Half the time near-flat bright spectra, where the tests decide.
            if k.is_multiple_of(2) {
                vals[k / 2 % vals.len()]
            } else {
                0.4 + ((k >> 8) % 100) as f32 * 0.001
            }
        };
        let n = 20_000;
        let planes: Vec<Vec<f32>> = (0..6).map(|_| (0..n).map(|_| pick()).collect()).collect();
        let cirrus: Vec<f32> = (0..n).map(|_| pick() * 0.08).collect();
        for with_cirrus in [false, true] {
            let mut row = vec![false; n];
            let bands = [
                &planes[0][..],
                &planes[1],
                &planes[2],
                &planes[3],
                &planes[4],
            ];
            looks_cloudy_row(bands, with_cirrus.then_some(&cirrus[..]), &mut row);
            for (i, &got) in row.iter().enumerate() {
                let px: Vec<f32> = planes.iter().map(|p| p[i]).collect();
                let c = with_cirrus.then(|| cirrus[i]).filter(|c| c.is_finite());
                assert_eq!(got, looks_cloudy(&px, c), "pixel {i}: {px:?}, cirrus {c:?}");
            }
            assert!(row.iter().any(|&c| c) && row.iter().any(|&c| !c));
        }
    }

    #[test]
    fn clouds_and_sand() {
        assert!(looks_cloudy(&[0.45, 0.44, 0.45, 0.47, 0.30, 0.20], None));
        assert!(looks_cloudy(
            &[0.35, 0.34, 0.35, 0.37, 0.30, 0.20],
            Some(0.02)
        ));
        // A new white roof: bright and flat, but dark at 1375 nm.
        assert!(!looks_cloudy(
            &[0.35, 0.34, 0.35, 0.37, 0.30, 0.20],
            Some(0.002)
        ));
        assert!(!looks_cloudy(&[0.35, 0.36, 0.37, 0.38, 0.30, 0.25], None));
        assert!(!looks_cloudy(&[0.18, 0.26, 0.34, 0.40, 0.50, 0.45], None));
        assert!(!looks_cloudy(&[0.05, 0.07, 0.06, 0.30, 0.15, 0.08], None));
        assert!(looks_cloudy(&[0.1, 0.1, 0.1, 0.2, 0.2, 0.1], Some(0.05)));
        assert_eq!(scl_reason(9.0), MaskReason::Cloud);
        assert_eq!(scl_reason(3.0), MaskReason::CloudShadow);
        assert_eq!(scl_reason(5.0), MaskReason::Valid);
    }
}
