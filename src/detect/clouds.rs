//! Multi-temporal cloud and cloud-shadow test: masks where one date is
//! under (thin) cloud or cloud shadow that the other date does not have.
//!
//! The single-date L1C test ([`super::masks::looks_cloudy`]) must keep new
//! white roofs, so thin low clouds (no cirrus signal at 1375 nm) and their
//! shadows pass it and show as large "new structure" sites. Comparing the
//! dates separates them by physics that construction does not share:
//!
//! - **Thin cloud** mixes the ground with a white, spatially smooth layer:
//!   `after = (1 - a) before + a C`, C flat across the visible. Blue rises
//!   and the visible colour moves towards grey: |ln(blue/red)| falls (both
//!   net of the scene-wide change, which is haze, sun and season). Over
//!   sand (red above blue) a cloud turns it bluer; over dark TOA urban
//!   ground (blue above red from Rayleigh scattering) it turns it redder.
//!   Ground that brightens by albedo (graded sand, new concrete) keeps or
//!   deepens its colour.
//! - **Cloud shadow** removes the direct sunlight: NIR and SWIR (lit almost
//!   only by the sun) darken well beyond the scene-wide ratio, the visible
//!   (partly lit by the blue sky) less, but does not brighten.
//! - **Extent**: a cloud or shadow covers nearly every pixel of a patch of
//!   hundreds of metres; construction changes part of a parcel. So pixels
//!   are only counted per cell of [`CELL`] px, and an object needs a core of
//!   [`MIN_CORE_CELLS`] connected cells where nearly every pixel
//!   ([`CORE`]) agrees, grown over neighbouring cells where most do ([`GROW`]).
//! - **Geometry** (as Fmask): a shadow lies away from the sun of its cloud.
//!   Darkening alone is common in the desert (sand paved or built on), so a
//!   shadow object is only masked when a cloud object of the same date lies
//!   towards the sun from it, at a distance a cloud up to [`MAX_CLOUD_HEIGHT_M`]
//!   high would cast it. The sun is estimated from the grid's latitude and
//!   the acquisition date at Sentinel-2's 10:30 mean local solar time. A
//!   cloud is masked without a shadow (it may fall outside the scene).
//!
//! Cloud in the before date is the mirror image and is masked the same way.
//!   The whitening must also be in proportion: at least a third of what
//!   the most lenient mixing model (a cloud of reflectance 0.8) predicts for
//!   the blue rise seen; graded sand turns a little greyer as it brightens,
//!   far less than a cloud that bright would make it.
//! - **Soft edge**: a cloud thins out over hundreds of metres, so the ring
//!   of cells around the object holds many pixels with a faint blue rise
//!   and the same whitening; a new white roof, as bright and flat as a
//!   cloud, ends at its outline with unchanged ground around it.
//!
//! The constants are physical round numbers (a blue rise of 0.03 reflectance
//! is several times the noise and the scene's own spread; a shadow removes
//! at least a fifth of NIR+SWIR; objects of at least a quarter of a square
//! kilometre), not fitted to a city. On the seven OSCD cities they mask no
//! labelled change pixel except 18 next to the paris shadow (cell edges),
//! and remove its two thin clouds and the shadow; they find nothing in the
//! other six, nor in dubai and chongqing with their large new roofs.
//!
//! Streaming: the score pass only counts, per cell, the compared pixels and
//! the candidates of each kind (integer counts, so the result is the same
//! for any block order or thread count); [`super::cloud_cells::decide`]
//! then works on the coarse grid (a full tile is 1373 x 1373 cells) and the
//! mask pass applies it.
//!
//! This file owns the per-pixel tests, the scene-wide statistics they are
//! net of, and the per-cell counts; the objects, their soft edges and the
//! shadows' geometry are [`super::cloud_cells`]'s, the sun's position
//! [`super::sun`]'s.

use super::masks::MaskReason;
use super::pixels::Pixels;
use super::sample::Sample;
use serde::Serialize;

/// Cell side in pixels.
pub const CELL: usize = 8;
/// Blue rise (reflectance, beyond the scene's median change) of a cloud candidate.
pub const BLUE_RISE: f32 = 0.03;
/// Blue rise of a cloud's faint fringe (a third of [`BLUE_RISE`]).
pub const FAINT_RISE: f32 = 0.01;
/// Share of faint-fringe pixels in the ring of cells around a cloud object
/// it needs (a fraction and a multiple of the scene's share).
pub const FRINGE: (u64, u64) = (3, 20);
pub const FRINGE_OVER_SCENE: u64 = 2;
/// NIR+SWIR1 ratio (after / before, relative to the scene's median ratio)
/// below which a pixel may be in shadow.
pub const SHADOW_RATIO: f32 = 0.8;
/// Share of a cell's compared pixels that must be candidates for a core cell.
pub const CORE: (u32, u32) = (9, 10);
/// ... and for a cell that extends an object.
pub const GROW: (u32, u32) = (1, 2);
/// Connected core cells an object needs (4 cells of 80 m: 0.26 km²).
pub const MIN_CORE_CELLS: usize = 4;
/// Highest cloud considered when looking for a shadow's cloud.
pub const MAX_CLOUD_HEIGHT_M: f64 = 8000.0;
/// Sun azimuth tolerance (overpass time across the swath, parallax), degrees.
pub const AZIMUTH_TOLERANCE_DEG: f64 = 15.0;

/// Candidate kinds, as bits.
pub const CLOUD_AFTER: u8 = 1;
pub const CLOUD_BEFORE: u8 = 2;
pub const SHADOW_AFTER: u8 = 4;
pub const SHADOW_BEFORE: u8 = 8;
/// A faint blue rise with the same whitening: a cloud's thin fringe.
pub const FAINT_AFTER: u8 = 16;
pub const FAINT_BEFORE: u8 = 32;
const KINDS: [u8; 6] = [
    CLOUD_BEFORE,
    CLOUD_AFTER,
    SHADOW_BEFORE,
    SHADOW_AFTER,
    FAINT_BEFORE,
    FAINT_AFTER,
];
/// Index in [`Counts`] of the compared pixels and of each kind.
pub(crate) const VALID: usize = 0;
pub(crate) const fn at(kind: usize) -> usize {
    kind + 1
}
pub(crate) const FAINT: usize = 4;

/// Scene-wide change between the dates (medians of the pass-1 sample), so
/// haze, sun and season do not count as cloud.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CloudStats {
    /// Median of after - before in blue.
    pub blue_change: f32,
    /// Median of (NIR + SWIR1) after / before.
    pub nir_swir_ratio: f32,
    /// Median of (blue + green + red) after / before.
    pub visible_ratio: f32,
    /// exp(-median of ln(blue/red) after - ln(blue/red) before): undoes the
    /// scene-wide shift of the visible colour (haze, sun, season).
    pub colour_gain: f32,
}

impl Default for CloudStats {
    fn default() -> Self {
        CloudStats {
            blue_change: 0.0,
            nir_swir_ratio: 1.0,
            visible_ratio: 1.0,
            colour_gain: 1.0,
        }
    }
}

fn median(mut v: Vec<f32>, default: f32) -> f32 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return default;
    }
    let mid = v.len() / 2;
    *v.select_nth_unstable_by(mid, |a, b| a.total_cmp(b)).1
}

fn ir_ratio(x: &[f32], y: &[f32]) -> f32 {
    (y[3] + y[4]) / (x[3] + x[4]).max(1e-4)
}

fn blue_red(r: &[f32]) -> f32 {
    r[0].max(1e-4) / r[2].max(1e-4)
}

/// Brightest thin cloud at the top of the atmosphere, any band: the most
/// lenient mixing model (it predicts the least whitening per blue rise).
pub const CLOUD_WHITE: f32 = 0.8;
/// Share of the mixing model's whitening (in |ln(blue/red)|) a cloud pixel
/// must show at least: clouds are not exactly grey, and noise.
pub const WHITENING_SHARE: i32 = 3;

/// Whether `cloudy` (blue, red) looks like `ground` mixed with a grey cloud
/// that raised blue by `rise`: the colour moved towards grey, by at least a
/// [`WHITENING_SHARE`]-th of what a cloud of brightness [`CLOUD_WHITE`]
/// mixed in by a = rise / (white - blue) would do. Ground that brightens
/// by albedo keeps its colour; graded or paved sand may turn a little greyer
/// but far less than a cloud as bright would make it. Branch-free (the
/// cases where the test does not apply fold into the result), so a row of
/// it vectorises ([`CloudStats::colour_bits_row`]).
#[inline(always)]
fn whitened(ground: [f32; 2], cloudy: [f32; 2], rise: f32) -> bool {
    // |ln(blue / red)| as max(q, 1/q), which orders the same, no logarithm.
    let grey_distance = |b: f32, r: f32| {
        let q = b.max(1e-4) / r.max(1e-4);
        q.max(1.0 / q)
    };
    let g = grey_distance(ground[0], ground[1]);
    let c = grey_distance(cloudy[0], cloudy[1]);
    // Already greyer before, or ground as white as the cloud: no test.
    let applies = !((c >= g) | (ground[0] >= CLOUD_WHITE));
    let a = (rise / (CLOUD_WHITE - ground[0])).min(1.0);
    let model = grey_distance(ground[0] + rise, ground[1] + a * (CLOUD_WHITE - ground[1]));
    // ln(g / c) >= ln(g / model) / share, without logarithms.
    applies & ((g / c).powi(WHITENING_SHARE) >= g / model)
}

fn vis_ratio(x: &[f32], y: &[f32]) -> f32 {
    (y[0] + y[1] + y[2]) / (x[0] + x[1] + x[2]).max(1e-4)
}

impl CloudStats {
    pub fn fit(s: &Sample) -> CloudStats {
        let n = s.len();
        CloudStats {
            blue_change: median((0..n).map(|i| s.y(i)[0] - s.x(i)[0]).collect(), 0.0),
            nir_swir_ratio: median((0..n).map(|i| ir_ratio(s.x(i), s.y(i))).collect(), 1.0)
                .max(1e-3),
            visible_ratio: median((0..n).map(|i| vis_ratio(s.x(i), s.y(i))).collect(), 1.0)
                .max(1e-3),
            colour_gain: (-median(
                (0..n)
                    .map(|i| (blue_red(s.y(i)) / blue_red(s.x(i))).ln())
                    .collect(),
                0.0,
            ))
            .exp(),
        }
    }

    /// Counts the compared pixels of `range` (one row of `px`, at grid
    /// column `x0` and row `y`) and their candidates into `cells`.
    ///
    /// The row is classified in two passes: the shadow test and whether the
    /// colour needs a look (`shadow_bits`) for every pixel, in a
    /// branch-free loop that vectorises, then the colour test for the few
    /// pixels whose blue changed. Then a cell's run of pixels at a time.
    pub fn count_row(
        &self,
        px: &Pixels,
        range: std::ops::Range<usize>,
        x0: usize,
        y: usize,
        cells: &mut CellCounts,
    ) {
        let n = range.len();
        let xb: [&[f32]; 6] = std::array::from_fn(|k| &px.before[k][range.clone()]);
        let yb: [&[f32]; 6] = std::array::from_fn(|k| &px.after[k][range.clone()]);
        let mut kinds = vec![0u8; n];
        let mut look = vec![false; n];
        for (c, (k, l)) in kinds.iter_mut().zip(look.iter_mut()).enumerate() {
            let x: [f32; 6] = std::array::from_fn(|b| xb[b][c]);
            let y: [f32; 6] = std::array::from_fn(|b| yb[b][c]);
            (*k, *l) = self.shadow_bits(&x, &y);
        }
        let mut colour = vec![0u8; n];
        self.colour_bits_row(xb, yb, &mut colour);
        for ((k, &l), &c) in kinds.iter_mut().zip(&look).zip(&colour) {
            *k |= c * l as u8;
        }
        let mask = &px.mask[range];
        let mut c = 0;
        while c < n {
            // Up to the end of this pixel's cell.
            let end = (((x0 + c) / CELL + 1) * CELL - x0).min(n);
            let mut run: Counts = [0; 7];
            for i in c..end {
                if mask[i] != MaskReason::Valid {
                    continue;
                }
                run[VALID] += 1;
                let k = kinds[i];
                if k != 0 {
                    for (j, bit) in KINDS.iter().enumerate() {
                        run[at(j)] += (k & bit != 0) as u8;
                    }
                }
            }
            let cell =
                &mut cells.counts[(y / CELL - cells.y0) * cells.w + (x0 + c) / CELL - cells.x0];
            for (a, b) in cell.iter_mut().zip(run) {
                *a += b;
            }
            c = end;
        }
    }

    /// Candidate kinds of one compared pixel (`x`, `y`: B02 B03 B04 B08 B11
    /// B12 before and after).
    #[inline]
    pub fn classify(&self, x: &[f32], y: &[f32]) -> u8 {
        let (k, look) = self.shadow_bits(x, y);
        if look {
            k | self.colour_bits(x, y)
        } else {
            k
        }
    }

    /// The shadow candidate bits, and whether the blue changed enough for
    /// the colour test; nothing for water in both dates (turbidity and glint
    /// change its colour). Branch-free, so a row of it vectorises.
    #[inline]
    fn shadow_bits(&self, x: &[f32], y: &[f32]) -> (u8, bool) {
        let water = |r: &[f32]| r[1] > r[3].max(r[4]);
        let land = !(water(x) & water(y));
        let rise = y[0] - x[0] - self.blue_change;
        // The ratios against the scene's, as products (no division per pixel):
        // what NIR+SWIR1 and the visible would be after at the median ratio.
        let ir_expected = self.nir_swir_ratio * (x[3] + x[4]).max(1e-4);
        let vis_expected = self.visible_ratio * (x[0] + x[1] + x[2]).max(1e-4);
        let (ir, vis) = (y[3] + y[4], y[0] + y[1] + y[2]);
        let after = (ir < SHADOW_RATIO * ir_expected) & (vis < vis_expected);
        let before = (SHADOW_RATIO * ir > ir_expected) & (vis > vis_expected);
        let k = (after as u8 * SHADOW_AFTER) | (before as u8 * SHADOW_BEFORE);
        // Most pixels: no blue change worth a look at the colour.
        (k * land as u8, land & (rise.abs() > FAINT_RISE))
    }

    /// The cloud and faint-fringe bits of a pixel whose blue changed.
    fn colour_bits(&self, x: &[f32], y: &[f32]) -> u8 {
        let mut k = 0;
        let rise = y[0] - x[0] - self.blue_change;
        // The after date's blue and red net of the scene-wide colour shift.
        let after = [y[0], y[2] / self.colour_gain];
        let before = [x[0], x[2]];
        if rise > 0.0 && whitened(before, after, rise) {
            k |= if rise > BLUE_RISE {
                CLOUD_AFTER
            } else {
                FAINT_AFTER
            };
        }
        if rise < 0.0 && whitened(after, before, -rise) {
            k |= if -rise > BLUE_RISE {
                CLOUD_BEFORE
            } else {
                FAINT_BEFORE
            };
        }
        k
    }

    /// `colour_bits` of every pixel of a row (`xb`, `yb`: the bands'
    /// rows before and after), branch-free so that it vectorises: on a
    /// scene with much change the blue moves at most pixels, and the test
    /// pixel by pixel was the largest part of the cloud counts. Each pixel
    /// takes the one direction its blue moved in, as `colour_bits` does.
    pub fn colour_bits_row(&self, xb: [&[f32]; 6], yb: [&[f32]; 6], out: &mut [u8]) {
        let n = out.len();
        let (x0, x2, y0, y2) = (&xb[0][..n], &xb[2][..n], &yb[0][..n], &yb[2][..n]);
        for (i, o) in out.iter_mut().enumerate() {
            let rise = y0[i] - x0[i] - self.blue_change;
            let after = [y0[i], y2[i] / self.colour_gain];
            let before = [x0[i], x2[i]];
            let (up, down) = (rise > 0.0, rise < 0.0);
            let (ground, cloudy) = if up { (before, after) } else { (after, before) };
            let w = whitened(ground, cloudy, if up { rise } else { -rise });
            let big = rise.abs() > BLUE_RISE;
            let (cloud, faint) = if up {
                (CLOUD_AFTER, FAINT_AFTER)
            } else {
                (CLOUD_BEFORE, FAINT_BEFORE)
            };
            let bit = if big { cloud } else { faint };
            *o = bit * ((up | down) & w) as u8;
        }
    }
}

/// Per cell: compared pixels, then candidates of each kind in `KINDS`
/// order. A cell holds at most 64 pixels, so bytes suffice.
pub type Counts = [u8; 7];

/// Cell counts over a window of cells.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CellCounts {
    pub x0: usize,
    pub y0: usize,
    pub w: usize,
    pub h: usize,
    pub counts: Vec<Counts>,
}

impl CellCounts {
    /// Empty counts for the cells a pixel window (x, y, w, h) touches.
    pub fn for_pixels(x: usize, y: usize, w: usize, h: usize) -> CellCounts {
        let (x0, y0) = (x / CELL, y / CELL);
        let (x1, y1) = ((x + w).div_ceil(CELL), (y + h).div_ceil(CELL));
        CellCounts {
            x0,
            y0,
            w: x1 - x0,
            h: y1 - y0,
            counts: vec![[0; 7]; (x1 - x0) * (y1 - y0)],
        }
    }

    /// Counts a compared pixel at grid position (x, y) with candidate bits `k`.
    #[inline]
    pub fn add(&mut self, x: usize, y: usize, k: u8) {
        let c = &mut self.counts[(y / CELL - self.y0) * self.w + x / CELL - self.x0];
        c[VALID] += 1;
        if k == 0 {
            return;
        }
        for (j, bit) in KINDS.iter().enumerate() {
            c[at(j)] += (k & bit != 0) as u8;
        }
    }

    /// Adds the counts of `o` (a window inside this one). Integer sums: the
    /// order of merging does not matter.
    pub fn merge(&mut self, o: &CellCounts) {
        for r in 0..o.h {
            for c in 0..o.w {
                let d = &mut self.counts[(o.y0 + r - self.y0) * self.w + o.x0 + c - self.x0];
                for (a, b) in d.iter_mut().zip(o.counts[r * o.w + c]) {
                    *a += b;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATS: CloudStats = CloudStats {
        blue_change: 0.0,
        nir_swir_ratio: 1.0,
        visible_ratio: 1.0,
        colour_gain: 1.0,
    };
    // Dark urban ground at TOA (bluish from Rayleigh scattering) and sand.
    const URBAN: [f32; 6] = [0.13, 0.10, 0.09, 0.12, 0.12, 0.09];
    const SAND: [f32; 6] = [0.18, 0.25, 0.33, 0.40, 0.50, 0.45];

    fn mix(g: &[f32; 6], a: f32, c: [f32; 6]) -> [f32; 6] {
        std::array::from_fn(|k| (1.0 - a) * g[k] + a * c[k])
    }
    const CLOUD: [f32; 6] = [0.5, 0.5, 0.5, 0.5, 0.4, 0.3];

    #[test]
    fn thin_cloud_is_a_candidate_brighter_ground_is_not() {
        for g in [URBAN, SAND] {
            let after = mix(&g, 0.3, CLOUD);
            assert_eq!(STATS.classify(&g, &after) & CLOUD_AFTER, CLOUD_AFTER);
            // The mirror image: the cloud was there before.
            assert_eq!(STATS.classify(&after, &g) & CLOUD_BEFORE, CLOUD_BEFORE);
            // Albedo brightening (graded sand, new roof of the same colour):
            // blue rises but the colour keeps.
            let brighter: [f32; 6] = std::array::from_fn(|k| g[k] * 1.5);
            assert_eq!(STATS.classify(&g, &brighter) & CLOUD_AFTER, 0);
        }
        // Graded sand: brighter, a little greyer, but far less than a cloud
        // raising blue as much would make it.
        let graded = [0.24, 0.31, 0.42, 0.48, 0.58, 0.52];
        assert_eq!(STATS.classify(&SAND, &graded) & CLOUD_AFTER, 0);
        // A cloud's thin fringe.
        let fringe = mix(&URBAN, 0.05, CLOUD);
        assert_eq!(STATS.classify(&URBAN, &fringe) & FAINT_AFTER, FAINT_AFTER);
        // Blue rise within the scene's own change is not a cloud.
        let s = CloudStats {
            blue_change: 0.1,
            ..STATS
        };
        assert_eq!(
            s.classify(&URBAN, &mix(&URBAN, 0.3, CLOUD)) & CLOUD_AFTER,
            0
        );
        // A scene turning greyer all over (haze, a lower sun) does not make
        // every brightened pixel whiter than its surroundings.
        let s = CloudStats {
            colour_gain: 1.3,
            ..STATS
        };
        let after = mix(&URBAN, 0.3, CLOUD);
        assert_eq!(s.classify(&URBAN, &after) & CLOUD_AFTER, 0);
        // Water in both dates (turbidity) is left alone.
        let water = [0.10, 0.08, 0.05, 0.03, 0.02, 0.01];
        assert_eq!(STATS.classify(&water, &mix(&water, 0.3, CLOUD)), 0);
    }

    #[test]
    fn shadow_darkens_nir_swir_most() {
        // Direct light removed: NIR/SWIR to 40 %, the sky-lit visible less.
        let shade = [0.8, 0.7, 0.6, 0.4, 0.4, 0.4];
        let after: [f32; 6] = std::array::from_fn(|k| URBAN[k] * shade[k]);
        // (Shade also turns the ground bluer, not whiter: never a cloud.)
        let strong = SHADOW_AFTER | SHADOW_BEFORE | CLOUD_AFTER | CLOUD_BEFORE;
        assert_eq!(STATS.classify(&URBAN, &after) & strong, SHADOW_AFTER);
        assert_eq!(STATS.classify(&after, &URBAN) & strong, SHADOW_BEFORE);
        // Vegetation cleared for a building: NIR falls but red rises.
        let veg = [0.08, 0.09, 0.06, 0.35, 0.20, 0.10];
        let built = [0.12, 0.13, 0.14, 0.18, 0.22, 0.18];
        assert_eq!(STATS.classify(&veg, &built) & SHADOW_AFTER, 0);
    }

    #[test]
    fn a_row_counts_as_pixel_by_pixel() {
        // 21 pixels from grid column 5: a partial cell, a whole one, a
        // partial one; some masked, some cloud, some shadow.
        let n = 21;
        let (x0, y) = (5, 13);
        let shade = |g: &[f32; 6]| -> [f32; 6] { std::array::from_fn(|k| g[k] * 0.5) };
        let pick = |i: usize| match i % 3 {
            0 => (URBAN, URBAN),
            1 => (URBAN, mix(&URBAN, 0.3, CLOUD)),
            _ => (URBAN, shade(&URBAN)),
        };
        let px = Pixels {
            shape: (n, 1),
            before: std::array::from_fn(|k| (0..n).map(|i| pick(i).0[k]).collect()),
            after: std::array::from_fn(|k| (0..n).map(|i| pick(i).1[k]).collect()),
            mask: (0..n)
                .map(|i| match i % 4 {
                    3 => MaskReason::Cloud,
                    _ => MaskReason::Valid,
                })
                .collect(),
        };
        let mut row = CellCounts::for_pixels(x0, y, n, 1);
        STATS.count_row(&px, 0..n, x0, y, &mut row);
        let mut one = CellCounts::for_pixels(x0, y, n, 1);
        for i in 0..n {
            if px.mask[i] == MaskReason::Valid {
                one.add(x0 + i, y, STATS.classify(&px.x(i), &px.y(i)));
            }
        }
        assert_eq!(row, one);
        assert_eq!(row.counts.len(), 4);
        assert!(row.counts.iter().any(|c| c[at(1)] > 0) && row.counts.iter().any(|c| c[at(3)] > 0));
    }

    #[test]
    fn the_row_colour_test_is_the_pixel_test() {
        // Blue and red around the thresholds (the cloud's whiteness, the
        // rises, grey and coloured ground), NaN and infinite values, over
        // scenes with and without a colour shift.
        let vals = [
            f32::NAN,
            f32::INFINITY,
            0.0,
            1e-5,
            0.02,
            0.05,
            0.09,
            0.1,
            0.11,
            0.13,
            0.15,
            0.2,
            0.33,
            0.5,
            0.79,
            0.8,
            0.81,
            1.2,
        ];
        for stats in [
            STATS,
            CloudStats {
                blue_change: 0.01,
                colour_gain: 1.3,
                ..STATS
            },
        ] {
            let mut cols: [Vec<f32>; 4] = Default::default();
            for &a in &vals {
                for &b in &vals {
                    for &c in &vals {
                        for &d in &vals {
                            for (v, x) in cols.iter_mut().zip([a, b, c, d]) {
                                v.push(x);
                            }
                        }
                    }
                }
            }
            let n = cols[0].len();
            let zero = vec![0.3f32; n];
            let xb = [&cols[0][..], &zero, &cols[1][..], &zero, &zero, &zero];
            let yb = [&cols[2][..], &zero, &cols[3][..], &zero, &zero, &zero];
            let mut row = vec![0u8; n];
            stats.colour_bits_row(xb, yb, &mut row);
            let (mut set, mut seen) = (0, 0u8);
            for (i, &r) in row.iter().enumerate() {
                let x = [cols[0][i], 0.3, cols[1][i], 0.3, 0.3, 0.3];
                let y = [cols[2][i], 0.3, cols[3][i], 0.3, 0.3, 0.3];
                assert_eq!(r, stats.colour_bits(&x, &y), "{x:?} {y:?}");
                set += (r != 0) as usize;
                seen |= r;
            }
            assert!(set > 100, "{set} pixels with a colour bit");
            let every = CLOUD_AFTER | CLOUD_BEFORE | FAINT_AFTER | FAINT_BEFORE;
            assert_eq!(seen, every, "the grid reaches every kind");
        }
    }

    #[test]
    fn counts_merge_in_any_order() {
        let mut a = CellCounts::for_pixels(0, 0, 32, 16);
        let mut p = CellCounts::for_pixels(0, 0, 12, 16);
        let mut q = CellCounts::for_pixels(12, 0, 20, 16);
        for y in 0..16 {
            for x in 0..32 {
                let k = ((x * 7 + y * 3) % 16) as u8;
                a.add(x, y, k);
                if x < 12 {
                    p.add(x, y, k)
                } else {
                    q.add(x, y, k)
                }
            }
        }
        let mut m1 = CellCounts::for_pixels(0, 0, 32, 16);
        m1.merge(&p);
        m1.merge(&q);
        let mut m2 = CellCounts::for_pixels(0, 0, 32, 16);
        m2.merge(&q);
        m2.merge(&p);
        assert_eq!(m1, a);
        assert_eq!(m2, a);
    }
}
