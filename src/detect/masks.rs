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

#[cfg(test)]
mod tests {
    use super::*;

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
