//! A kind for each site, the reasons for it, and a structure score in [0, 1]
//! that ranks sites for analysts.
//!
//! Why rules and not a fitted model: there is no labelled set of sites to
//! fit to, and analysts must be able to read why a site ranks where it does.
//! Each rule uses a physical property with a threshold chosen from what the
//! surfaces are, not from one scene; spectral changes are taken relative to
//! the scene's typical change (see [`super::spectral`]):
//!
//! - **water**: MNDWI (green vs SWIR1) is positive over open water and
//!   negative over soil, sand, vegetation and roofs; water appeared when the
//!   after MNDWI is positive and rose by 0.2 more than the scene's.
//! - **vegetation**: NDVI of bare ground and built surfaces stays under about
//!   0.1 and green vegetation exceeds 0.2. Growth: NDVI up 0.1 more than the
//!   scene and at least 0.2 after. Seasonal loss: NDVI down 0.1 from
//!   vegetation (0.3 or more) to still-vegetated soil (0.15 or more). An
//!   irrigation pivot is round (compactness 0.85 or more, where a digital
//!   disc's outline gives 0.9 or more and a square's about 0.8, and
//!   rectangularity 0.85 or less, where a disc gives pi/4 and a rectangle 1)
//!   with vegetation on either date and an NDVI change.
//! - **cloud_or_haze**: haze and thin cloud add path radiance, so every band
//!   is brighter, and the more so at short wavelengths (scattering falls
//!   with wavelength; thin cloud is about flat), so blue rises at least as
//!   much as SWIR2; they wash out contrast, so edges weaken; and they are
//!   diffuse (ragged or unrectangular outline). All four are required: fresh
//!   sand or fill also brightens every band but most in the SWIR, and a new
//!   bright roof is compact, rectangular and adds edges.
//! - **linear**: a minimum-area rectangle at least 4 times as long as wide:
//!   roads, runways, berms, tracks, canals.
//! - **structure**: new built-up surface on formerly bare ground: the
//!   material changed (the spectral angle between dates exceeds the scene's
//!   by 1-6 degrees) or the surface became less like bare soil (BSI, high
//!   for sand and soil, lower for the flatter spectra of concrete, asphalt
//!   and roofs, fell), it did not become *more* like bare soil, and the
//!   outline is built-like (rectangular, not ragged).
//! - **other**: the rest, e.g. clearing, demolition or sand cover (BSI rose
//!   by 0.03 or more on ground that was not vegetated) and drifting sand
//!   (same material, only the brightness changed, irregular outline).
//!
//! The structure score is detector confidence (the site's mean change
//! score) x plausible size x not natural x (0.2 + 0.8 E), where the evidence
//! E weighs soft (smooth-step) memberships: material change 0.3, towards
//! built rather than bare 0.3, edges gained 0.2 (walls and shadows add
//! contrast) and built-like shape 0.2. Shape only counts in proportion to
//! how many pixels define it: after a 3x3 opening any site of about 9
//! pixels is a square whatever it was, so shape confidence rises from 9 to
//! 50 pixels. Size favours sites of several minimum mapping units (more
//! pixels, less chance of noise) and disfavours ones over 20 ha (a single
//! structure or compound is well under a square kilometre). Sites of a
//! natural kind keep a fifth of their score and ground turning bare half,
//! so they never outrank comparable structures.

use super::shape::Shape;
use super::spectral::Spectral;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Structure,
    Linear,
    Vegetation,
    Water,
    CloudOrHaze,
    Other,
}

pub const KINDS: [Kind; 6] = [
    Kind::Structure,
    Kind::Linear,
    Kind::Vegetation,
    Kind::Water,
    Kind::CloudOrHaze,
    Kind::Other,
];

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Structure => "structure",
            Kind::Linear => "linear",
            Kind::Vegetation => "vegetation",
            Kind::Water => "water",
            Kind::CloudOrHaze => "cloud_or_haze",
            Kind::Other => "other",
        }
    }
    pub fn is_natural(self) -> bool {
        matches!(self, Kind::Vegetation | Kind::Water | Kind::CloudOrHaze)
    }
    /// Display colour (RGB) for maps, chips and KML.
    pub fn colour(self) -> [u8; 3] {
        match self {
            Kind::Structure => [230, 30, 40],
            Kind::Linear => [255, 140, 0],
            Kind::Vegetation => [40, 170, 60],
            Kind::Water => [30, 110, 230],
            Kind::CloudOrHaze => [170, 170, 190],
            Kind::Other => [200, 80, 220],
        }
    }
}

pub const NDVI_GAIN: f32 = 0.10;
pub const NDVI_GREEN: f32 = 0.20;
pub const NDVI_VEGETATED: f32 = 0.30;
pub const NDVI_SOIL_VEGETATED: f32 = 0.15;
pub const MNDWI_GAIN: f32 = 0.20;
pub const ROUND_COMPACTNESS: f64 = 0.85;
pub const ROUND_RECTANGULARITY_MAX: f64 = 0.85;
pub const LINEAR_ELONGATION: f64 = 4.0;
/// Every band at least this much brighter (reflectance) than the scene's change.
pub const HAZE_BAND_RISE: f32 = 0.01;
/// A BSI rise (vs the scene) from which bare ground gained, rather than lost.
pub const BSI_GAIN: f32 = 0.03;
/// Pixels from which the outline says nothing (the 3x3 opening's square) and
/// from which it is fully informative.
pub const SHAPE_PIXELS: (f64, f64) = (9.0, 50.0);
/// Areas (m^2) over which a site stops looking like one structure or compound.
pub const LARGE_AREA_M2: (f64, f64) = (200_000.0, 2_000_000.0);

/// What the rules look at.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    pub area_m2: f64,
    /// Pixels of the site.
    pub pixels: u64,
    pub min_area_m2: f64,
    /// Mean change score of the site's pixels (None: the run has no score raster).
    pub mean_score: Option<f64>,
    pub shape: &'a Shape,
    pub spectral: &'a Spectral,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub kind: Kind,
    pub score: f64,
    pub reasons: Vec<String>,
}

/// 0 below `a`, 1 above `b`, smooth in between.
pub fn smooth(x: f64, a: f64, b: f64) -> f64 {
    if b <= a {
        return if x >= b { 1.0 } else { 0.0 };
    }
    let t = ((x - a) / (b - a)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

fn ha(m2: f64) -> String {
    if m2 >= 10_000.0 {
        format!("{:.1} ha", m2 / 10_000.0)
    } else {
        format!("{m2:.0} m2")
    }
}

pub fn classify(e: &Evidence) -> Verdict {
    let s = e.shape;
    let sp = e.spectral;
    let d = &sp.delta_rel;
    let mut reasons = Vec::new();
    let has_spectra = sp.pixels > 0;

    let round = s.compactness >= ROUND_COMPACTNESS && s.rectangularity < ROUND_RECTANGULARITY_MAX;
    let veg_max = sp.before.ndvi.max(sp.after.ndvi);
    let water = has_spectra && sp.after.mndwi > 0.0 && d.mndwi >= MNDWI_GAIN;
    let growth = has_spectra && d.ndvi >= NDVI_GAIN && sp.after.ndvi >= NDVI_GREEN;
    let seasonal = has_spectra
        && d.ndvi <= -NDVI_GAIN
        && sp.before.ndvi >= NDVI_VEGETATED
        && sp.after.ndvi >= NDVI_SOIL_VEGETATED;
    let pivot = has_spectra && round && veg_max >= NDVI_GREEN && d.ndvi.abs() >= NDVI_GAIN / 2.0;
    let all_brighter = has_spectra && sp.band_delta_rel.iter().all(|&v| v >= HAZE_BAND_RISE);
    // Scattering: the blue rise at least the SWIR2 rise (0.01 of slack).
    let scattering = sp.band_delta_rel[0] >= sp.band_delta_rel[5] - 0.01;
    let contrast_down = sp.edge_density_after < sp.edge_density_before;
    let diffuse = s.compactness < 0.3 || s.rectangularity < 0.6;
    let haze = all_brighter && scattering && contrast_down && diffuse;
    let linear = s.elongation >= LINEAR_ELONGATION;

    // Material change: spectral angle beyond the scene's.
    let angle = sp.spectral_angle_excess_deg as f64;
    let dbright = d.brightness as f64;
    let material = if has_spectra {
        smooth(angle, 1.0, 6.0)
    } else {
        0.5
    };
    // Towards built (BSI down) or towards bare (BSI up), on ground that was
    // not vegetated (clearing vegetation raises BSI whatever replaces it).
    let unvegetated_before = sp.before.ndvi < NDVI_GREEN;
    let built = if has_spectra && unvegetated_before {
        smooth(-d.bsi as f64, -0.02, 0.04)
    } else {
        0.5
    };
    let bare_gain = has_spectra && unvegetated_before && d.bsi >= BSI_GAIN;
    let shape_q =
        0.6 * smooth(s.rectangularity, 0.5, 0.85) + 0.4 * smooth(s.compactness, 0.1, 0.45);
    let shape_conf = smooth(e.pixels as f64, SHAPE_PIXELS.0, SHAPE_PIXELS.1);
    let shape_e = 0.5 + (shape_q - 0.5) * shape_conf;
    let edges_gain = (sp.edge_density_after - sp.edge_density_before) as f64;
    let edges = if has_spectra {
        smooth(edges_gain, -0.01, 0.03)
    } else {
        0.5
    };
    let evidence = 0.3 * material + 0.3 * built + 0.2 * edges + 0.2 * shape_e;
    let conf = e.mean_score.map_or(1.0, |m| m.clamp(0.0, 1.0));
    let size_f = (0.5 + 0.5 * smooth(e.area_m2, e.min_area_m2, 6.0 * e.min_area_m2))
        * (1.0 - 0.7 * smooth(e.area_m2, LARGE_AREA_M2.0, LARGE_AREA_M2.1));
    // Natural only when the after surface looks like it: green (NDVI) or
    // wet (MNDWI > 0). Sand turning into any flat-spectrum surface raises
    // MNDWI and lowers NDVI without being water or vegetation.
    let p_veg = (smooth(d.ndvi as f64, 0.05, 0.15) * smooth(sp.after.ndvi as f64, 0.1, 0.25))
        .max(if pivot || seasonal { 1.0 } else { 0.0 });
    let p_water = smooth(d.mndwi as f64, 0.1, 0.3) * smooth(sp.after.mndwi as f64, -0.05, 0.1);
    let natural = if has_spectra {
        1.0 - p_veg.max(p_water).max(if haze { 1.0 } else { 0.0 })
    } else {
        1.0
    };
    let mut score = conf * size_f * natural * (0.2 + 0.8 * evidence);

    let kind = if water {
        reasons.push(format!(
            "MNDWI {:+.2} vs scene, {:.2} after: open water",
            d.mndwi, sp.after.mndwi
        ));
        Kind::Water
    } else if pivot {
        reasons.push(format!(
            "round (compactness {:.2}, rectangularity {:.2}) with NDVI {:+.2}: irrigation pivot",
            s.compactness, s.rectangularity, d.ndvi
        ));
        Kind::Vegetation
    } else if growth {
        reasons.push(format!(
            "NDVI {:+.2} vs scene, {:.2} after: vegetation growth",
            d.ndvi, sp.after.ndvi
        ));
        Kind::Vegetation
    } else if seasonal {
        reasons.push(format!(
            "NDVI {:+.2} vs scene from {:.2}: harvest or seasonal vegetation",
            d.ndvi, sp.before.ndvi
        ));
        Kind::Vegetation
    } else if haze {
        reasons.push(format!(
            "brighter in all bands ({:+.3}), blue {:+.3} vs SWIR2 {:+.3}: scattering",
            dbright, sp.band_delta_rel[0], sp.band_delta_rel[5]
        ));
        reasons.push(format!(
            "contrast down (edges {:.3} -> {:.3}) and diffuse outline: haze or thin cloud",
            sp.edge_density_before, sp.edge_density_after
        ));
        Kind::CloudOrHaze
    } else if linear {
        reasons.push(format!(
            "elongated {:.1}:1, {:.0} m long, {:.0} m wide: road, runway, berm or track",
            s.elongation, s.min_rect_length_m, s.min_rect_width_m
        ));
        Kind::Linear
    } else if !bare_gain
        && (material >= 0.5 || built >= 0.5)
        && s.rectangularity >= 0.5
        && s.compactness >= 0.15
    {
        Kind::Structure
    } else {
        Kind::Other
    };

    // Evidence for and against a structure, for every kind.
    if !kind.is_natural() {
        if has_spectra && angle >= 1.0 {
            reasons.push(format!(
                "material changed (spectral angle {:+.1} deg vs scene)",
                angle
            ));
        }
        if has_spectra && dbright.abs() >= 0.02 {
            reasons.push(format!(
                "{} ({:+.3} reflectance vs scene)",
                if dbright > 0.0 { "brighter" } else { "darker" },
                dbright
            ));
        }
        if has_spectra && unvegetated_before && d.bsi <= -0.02 {
            reasons.push(format!("less like bare soil (BSI {:+.2} vs scene)", d.bsi));
        }
        if bare_gain {
            reasons.push(format!("more like bare soil or sand (BSI {:+.2} vs scene): clearing, demolition or sand cover", d.bsi));
        }
        if has_spectra && edges_gain >= 0.01 {
            reasons.push(format!(
                "more edges ({:.3} -> {:.3})",
                sp.edge_density_before, sp.edge_density_after
            ));
        }
        if s.rectangularity >= 0.75 {
            reasons.push(format!("rectangular ({:.2})", s.rectangularity));
        }
        if kind == Kind::Other {
            if has_spectra && material < 0.5 && built < 0.5 && !bare_gain {
                reasons.push(format!("same material (angle {:+.1} deg vs scene): drifting sand, moisture or illumination", angle));
            }
            if s.compactness < 0.15 || s.rectangularity < 0.5 {
                reasons.push(format!(
                    "ragged outline (compactness {:.2}, rectangularity {:.2})",
                    s.compactness, s.rectangularity
                ));
            }
        }
        if round && kind == Kind::Structure {
            reasons.push(format!(
                "round (compactness {:.2}): tank, roundabout or pivot without vegetation",
                s.compactness
            ));
        }
    }
    if e.area_m2 >= LARGE_AREA_M2.0 {
        reasons.push(format!("large ({}): diffuse change", ha(e.area_m2)));
    }
    if !has_spectra {
        reasons.push("no valid reflectance on both dates: shape only".to_string());
    }
    if kind.is_natural() {
        score *= 0.2;
    } else if bare_gain {
        // Ground turning bare is the opposite of construction.
        score *= 0.5;
    }
    Verdict {
        kind,
        score: score.clamp(0.0, 1.0),
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::indices::Indices;

    fn shape(compactness: f64, rectangularity: f64, elongation: f64) -> Shape {
        Shape {
            compactness,
            rectangularity,
            elongation,
            min_rect_length_m: 100.0,
            min_rect_width_m: 100.0 / elongation,
            ..Default::default()
        }
    }

    fn spectral(before: [f32; 6], after: [f32; 6], edges: (f32, f32)) -> Spectral {
        let (ib, ia) = (Indices::of(&before), Indices::of(&after));
        let angle = super::super::spectral::spectral_angle(&before, &after);
        let d = Indices {
            ndvi: ia.ndvi - ib.ndvi,
            ndbi: ia.ndbi - ib.ndbi,
            bsi: ia.bsi - ib.bsi,
            mndwi: ia.mndwi - ib.mndwi,
            brightness: ia.brightness - ib.brightness,
        };
        Spectral {
            pixels: 100,
            before: ib,
            after: ia,
            delta: d,
            delta_rel: d,
            band_before: before,
            band_after: after,
            band_delta_rel: std::array::from_fn(|k| after[k] - before[k]),
            spectral_angle_deg: angle,
            spectral_angle_excess_deg: angle,
            edge_density_before: edges.0,
            edge_density_after: edges.1,
            ..Default::default()
        }
    }

    const SAND: [f32; 6] = [0.18, 0.26, 0.34, 0.40, 0.50, 0.45];
    const ROOF: [f32; 6] = [0.45, 0.47, 0.48, 0.50, 0.52, 0.47];
    const CROP: [f32; 6] = [0.04, 0.08, 0.05, 0.45, 0.25, 0.12];
    const FALLOW: [f32; 6] = [0.12, 0.16, 0.20, 0.26, 0.34, 0.30];

    fn verdict(sh: Shape, sp: Spectral) -> Verdict {
        classify(&Evidence {
            area_m2: 5000.0,
            pixels: 50,
            min_area_m2: 800.0,
            mean_score: Some(0.8),
            shape: &sh,
            spectral: &sp,
        })
    }

    #[test]
    fn bright_rectangle_is_a_structure() {
        let v = verdict(shape(0.7, 0.95, 1.5), spectral(SAND, ROOF, (0.02, 0.06)));
        assert_eq!(v.kind, Kind::Structure, "{v:?}");
        assert!(v.score > 0.5, "{v:?}");
    }

    #[test]
    fn pivot_and_growth_are_vegetation_and_score_low() {
        let pivot = verdict(shape(0.93, 0.78, 1.0), spectral(FALLOW, CROP, (0.02, 0.03)));
        assert_eq!(pivot.kind, Kind::Vegetation);
        assert!(pivot.reasons[0].contains("pivot"), "{pivot:?}");
        let harvested = verdict(shape(0.93, 0.78, 1.0), spectral(CROP, FALLOW, (0.02, 0.03)));
        assert_eq!(harvested.kind, Kind::Vegetation, "{harvested:?}");
        let growth = verdict(shape(0.3, 0.6, 1.8), spectral(FALLOW, CROP, (0.02, 0.03)));
        assert_eq!(growth.kind, Kind::Vegetation);
        let roof = verdict(shape(0.7, 0.95, 1.5), spectral(SAND, ROOF, (0.02, 0.06)));
        for v in [&pivot, &harvested, &growth] {
            assert!(v.score < 0.2 * roof.score + 1e-9, "{v:?} vs {roof:?}");
        }
    }

    #[test]
    fn drifting_sand_is_other_and_runway_linear() {
        let darker = SAND.map(|v| v * 0.85);
        let drift = verdict(shape(0.12, 0.4, 2.0), spectral(SAND, darker, (0.02, 0.02)));
        assert_eq!(drift.kind, Kind::Other, "{drift:?}");
        let asphalt = [0.08, 0.09, 0.10, 0.12, 0.14, 0.12];
        let runway = verdict(
            shape(0.15, 0.95, 30.0),
            spectral(SAND, asphalt, (0.02, 0.03)),
        );
        assert_eq!(runway.kind, Kind::Linear);
        let roof = verdict(shape(0.7, 0.95, 1.5), spectral(SAND, ROOF, (0.02, 0.06)));
        assert!(drift.score < 0.5 * roof.score, "{drift:?}");
    }

    #[test]
    fn ground_turning_bare_is_clearing_not_a_structure() {
        // A roof replaced by sand: the material changed, but towards bare soil.
        let v = verdict(shape(0.7, 0.95, 1.5), spectral(ROOF, SAND, (0.06, 0.02)));
        assert_eq!(v.kind, Kind::Other, "{v:?}");
        assert!(v.reasons.iter().any(|r| r.contains("clearing")), "{v:?}");
        let roof = verdict(shape(0.7, 0.95, 1.5), spectral(SAND, ROOF, (0.02, 0.06)));
        assert!(v.score < 0.6 * roof.score, "{v:?} vs {roof:?}");
    }

    #[test]
    fn shape_of_a_few_pixels_is_not_evidence() {
        let sp = spectral(SAND, ROOF, (0.02, 0.06));
        let e = |pixels, sh: &Shape| {
            classify(&Evidence {
                area_m2: 900.0,
                pixels,
                min_area_m2: 800.0,
                mean_score: Some(0.8),
                shape: sh,
                spectral: &sp,
            })
            .score
        };
        let (square, ragged) = (shape(0.8, 1.0, 1.0), shape(0.1, 0.3, 1.0));
        assert!(
            (e(9, &square) - e(9, &ragged)).abs() < 1e-9,
            "9 pixels: the opening's square"
        );
        assert!(e(60, &square) > e(60, &ragged) + 0.05);
    }

    #[test]
    fn haze_needs_brightening_lost_contrast_and_diffuse_outline() {
        let hazy = SAND.map(|v| v + 0.08);
        let v = verdict(shape(0.1, 0.4, 1.5), spectral(SAND, hazy, (0.05, 0.02)));
        assert_eq!(v.kind, Kind::CloudOrHaze, "{v:?}");
        // Sand cover brightens every band, most in the SWIR: not haze.
        let sand_cover = [0.20, 0.28, 0.38, 0.45, 0.62, 0.58];
        let darker_ground = SAND.map(|v| v * 0.8);
        let v2 = verdict(
            shape(0.1, 0.4, 1.5),
            spectral(darker_ground, sand_cover, (0.05, 0.02)),
        );
        assert_ne!(v2.kind, Kind::CloudOrHaze, "{v2:?}");
        // The same brightening in a compact rectangle that adds edges is a roof.
        let v = verdict(shape(0.7, 0.95, 1.5), spectral(SAND, hazy, (0.02, 0.05)));
        assert_ne!(v.kind, Kind::CloudOrHaze, "{v:?}");
    }

    #[test]
    fn water() {
        let water = [0.08, 0.07, 0.05, 0.03, 0.01, 0.005];
        let v = verdict(shape(0.5, 0.7, 1.5), spectral(SAND, water, (0.02, 0.01)));
        assert_eq!(v.kind, Kind::Water);
    }
}
