//! Spectral and texture change of a site between the two dates.
//!
//! Why: the shape says little about *what* changed. Over a site's pixels this
//! measures the mean of each index (NDVI vegetation, NDBI built-up, BSI bare
//! soil, MNDWI water, brightness) on both dates, the spectral angle between
//! each pixel's before and after spectra (a change of material, e.g. sand to
//! concrete, turns the spectrum; a change of illumination or of sand cover
//! only scales it), and two contrast measures of the brightness image:
//! **texture**, the mean local coefficient of variation in 3x3 windows, and
//! **edge density**, the mean Sobel gradient magnitude per pixel relative to
//! the local brightness. New buildings add walls, shadows and edges; haze and
//! thin cloud wash contrast out.
//!
//! Two dates always differ a little everywhere (season, sun, atmosphere, L1C
//! top-of-atmosphere values), so every change is also given relative to the
//! scene's typical change: the median over a lattice sample of unchanged
//! pixels ([`Background`]). Rules then read "NDVI rose 0.2 more than the
//! scene did", which holds for any scene without fitting constants to one.

use crate::detect::indices::Indices;
use serde::Serialize;

/// Bands in the order of [`crate::detect::STAT_BANDS`]: B02 B03 B04 B08 B11 B12.
pub const NB: usize = 6;

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Background {
    /// Median after - before of each index over unchanged pixels.
    pub delta: Indices,
    /// Median after - before reflectance per band.
    pub band_delta: [f32; NB],
    /// Median and robust spread (1.4826 MAD) of the spectral angle, degrees.
    pub angle_deg: f32,
    pub angle_spread_deg: f32,
    pub pixels: usize,
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Spectral {
    /// Site pixels with valid reflectance on both dates.
    pub pixels: u64,
    pub before: Indices,
    pub after: Indices,
    /// after - before.
    pub delta: Indices,
    /// after - before, minus the scene's median change.
    pub delta_rel: Indices,
    /// Mean reflectance per band.
    pub band_before: [f32; NB],
    pub band_after: [f32; NB],
    /// after - before per band, minus the scene's median change.
    pub band_delta_rel: [f32; NB],
    /// Mean spectral angle between the dates, and its excess over the scene's median.
    pub spectral_angle_deg: f32,
    pub spectral_angle_excess_deg: f32,
    pub texture_before: f32,
    pub texture_after: f32,
    pub edge_density_before: f32,
    pub edge_density_after: f32,
}

/// Angle in degrees between two spectra.
pub fn spectral_angle(a: &[f32], b: &[f32]) -> f32 {
    let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y) in a.iter().zip(b) {
        ab += (*x as f64) * (*y as f64);
        aa += (*x as f64) * (*x as f64);
        bb += (*y as f64) * (*y as f64);
    }
    if aa <= 0.0 || bb <= 0.0 {
        return 0.0;
    }
    (ab / (aa.sqrt() * bb.sqrt()))
        .clamp(-1.0, 1.0)
        .acos()
        .to_degrees() as f32
}

fn median(mut v: Vec<f32>) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    let mid = v.len() / 2;
    *v.select_nth_unstable_by(mid, |a, b| a.total_cmp(b)).1
}

fn index_fields(i: &Indices) -> [f32; 5] {
    [i.ndvi, i.ndbi, i.bsi, i.mndwi, i.brightness]
}

fn from_fields(f: [f32; 5]) -> Indices {
    Indices {
        ndvi: f[0],
        ndbi: f[1],
        bsi: f[2],
        mndwi: f[3],
        brightness: f[4],
    }
}

fn sub(a: &Indices, b: &Indices) -> Indices {
    let (x, y) = (index_fields(a), index_fields(b));
    from_fields(std::array::from_fn(|k| x[k] - y[k]))
}

/// Collects unchanged pixels' spectra into the scene's typical change.
#[derive(Default)]
pub struct BackgroundSample {
    d_idx: [Vec<f32>; 5],
    d_band: [Vec<f32>; NB],
    angle: Vec<f32>,
}

impl BackgroundSample {
    /// Adds one pixel's spectra (B02 B03 B04 B08 B11 B12) if both are valid.
    pub fn push(&mut self, x: &[f32; NB], y: &[f32; NB]) {
        if x.iter().chain(y.iter()).any(|v| !v.is_finite()) {
            return;
        }
        let d = sub(&Indices::of(y), &Indices::of(x));
        for (k, v) in index_fields(&d).into_iter().enumerate() {
            self.d_idx[k].push(v);
        }
        for k in 0..NB {
            self.d_band[k].push(y[k] - x[k]);
        }
        self.angle.push(spectral_angle(x, y));
    }

    pub fn finish(self) -> Background {
        let pixels = self.angle.len();
        let angle = median(self.angle.clone());
        let spread = 1.4826 * median(self.angle.iter().map(|a| (a - angle).abs()).collect());
        let [a, b, c, d, e] = self.d_idx;
        Background {
            delta: from_fields([median(a), median(b), median(c), median(d), median(e)]),
            band_delta: self.d_band.map(median),
            angle_deg: angle,
            angle_spread_deg: spread,
            pixels,
        }
    }
}

/// Per-pixel brightness (mean of the bands), NaN where any band is invalid.
fn brightness(bands: &[Vec<f32>], n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let s: f32 = bands.iter().map(|b| b[i]).sum();
            s / bands.len() as f32
        })
        .collect()
}

/// Mean over the site of the local 3x3 coefficient of variation and of the
/// relative Sobel gradient of a brightness image (w x h; NaN = invalid,
/// missing neighbours replaced by the centre value).
fn contrast(br: &[f32], w: usize, h: usize, members: &[bool]) -> (f32, f32) {
    let (mut tex, mut edge, mut n) = (0.0f64, 0.0f64, 0usize);
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let c = br[i];
            if !members[i] || !c.is_finite() || c <= 0.0 {
                continue;
            }
            // The 3x3 neighbourhood, row by row, gathered once (each value
            // was looked up twice or three times, with its bounds checks).
            let mut nb = [c; 9];
            for (k, v) in nb.iter_mut().enumerate() {
                let (xx, yy) = (
                    x as isize + k as isize % 3 - 1,
                    y as isize + k as isize / 3 - 1,
                );
                if xx >= 0 && yy >= 0 && xx < w as isize && yy < h as isize {
                    let b = br[yy as usize * w + xx as usize];
                    if b.is_finite() {
                        *v = b;
                    }
                }
            }
            let mut s = 0.0f64;
            let mut s2 = 0.0f64;
            for &v in &nb {
                let v = v as f64;
                s += v;
                s2 += v * v;
            }
            let mean = s / 9.0;
            let var = (s2 / 9.0 - mean * mean).max(0.0);
            let gx = (nb[2] + 2.0 * nb[5] + nb[8] - nb[0] - 2.0 * nb[3] - nb[6]) as f64 / 8.0;
            let gy = (nb[6] + 2.0 * nb[7] + nb[8] - nb[0] - 2.0 * nb[1] - nb[2]) as f64 / 8.0;
            tex += var.sqrt() / mean;
            edge += gx.hypot(gy) / c as f64;
            n += 1;
        }
    }
    if n == 0 {
        return (0.0, 0.0);
    }
    ((tex / n as f64) as f32, (edge / n as f64) as f32)
}

/// Spectral features of the site pixels `members` of a w x h window, from
/// band-major reflectance of both dates.
pub fn measure(
    before: &[Vec<f32>],
    after: &[Vec<f32>],
    members: &[bool],
    w: usize,
    h: usize,
    bg: &Background,
) -> Spectral {
    let n = w * h;
    assert_eq!(members.len(), n);
    let (mut ib, mut ia) = ([0.0f64; 5], [0.0f64; 5]);
    let (mut bb, mut ba) = ([0.0f64; NB], [0.0f64; NB]);
    let (mut angle, mut count) = (0.0f64, 0u64);
    for i in 0..n {
        if !members[i] {
            continue;
        }
        let x: [f32; NB] = std::array::from_fn(|k| before[k][i]);
        let y: [f32; NB] = std::array::from_fn(|k| after[k][i]);
        if x.iter().chain(y.iter()).any(|v| !v.is_finite()) {
            continue;
        }
        for (k, v) in index_fields(&Indices::of(&x)).into_iter().enumerate() {
            ib[k] += v as f64;
        }
        for (k, v) in index_fields(&Indices::of(&y)).into_iter().enumerate() {
            ia[k] += v as f64;
        }
        for k in 0..NB {
            bb[k] += x[k] as f64;
            ba[k] += y[k] as f64;
        }
        angle += spectral_angle(&x, &y) as f64;
        count += 1;
    }
    if count == 0 {
        return Spectral::default();
    }
    let c = count as f64;
    let before_i = from_fields(ib.map(|v| (v / c) as f32));
    let after_i = from_fields(ia.map(|v| (v / c) as f32));
    let delta = sub(&after_i, &before_i);
    let band_before = bb.map(|v| (v / c) as f32);
    let band_after = ba.map(|v| (v / c) as f32);
    let (tb, eb) = contrast(&brightness(before, n), w, h, members);
    let (ta, ea) = contrast(&brightness(after, n), w, h, members);
    let angle = (angle / c) as f32;
    Spectral {
        pixels: count,
        before: before_i,
        after: after_i,
        delta,
        delta_rel: sub(&delta, &bg.delta),
        band_before,
        band_after,
        band_delta_rel: std::array::from_fn(|k| band_after[k] - band_before[k] - bg.band_delta[k]),
        spectral_angle_deg: angle,
        spectral_angle_excess_deg: angle - bg.angle_deg,
        texture_before: tb,
        texture_after: ta,
        edge_density_before: eb,
        edge_density_after: ea,
    }
}

#[cfg(test)]
mod tests {
    /// The contrast as first written, neighbour by neighbour.
    fn contrast_reference(br: &[f32], w: usize, h: usize, members: &[bool]) -> (f32, f32) {
        let (mut tex, mut edge, mut n) = (0.0f64, 0.0f64, 0usize);
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                let c = br[i];
                if !members[i] || !c.is_finite() || c <= 0.0 {
                    continue;
                }
                let at = |dx: isize, dy: isize| -> f32 {
                    let (xx, yy) = (x as isize + dx, y as isize + dy);
                    if xx < 0 || yy < 0 || xx >= w as isize || yy >= h as isize {
                        return c;
                    }
                    let v = br[yy as usize * w + xx as usize];
                    if v.is_finite() {
                        v
                    } else {
                        c
                    }
                };
                let mut s = 0.0f64;
                let mut s2 = 0.0f64;
                for dy in -1..=1 {
                    for dx in -1..=1 {
                        let v = at(dx, dy) as f64;
                        s += v;
                        s2 += v * v;
                    }
                }
                let mean = s / 9.0;
                let var = (s2 / 9.0 - mean * mean).max(0.0);
                let gx = (at(1, -1) + 2.0 * at(1, 0) + at(1, 1)
                    - at(-1, -1)
                    - 2.0 * at(-1, 0)
                    - at(-1, 1)) as f64
                    / 8.0;
                let gy = (at(-1, 1) + 2.0 * at(0, 1) + at(1, 1)
                    - at(-1, -1)
                    - 2.0 * at(0, -1)
                    - at(1, -1)) as f64
                    / 8.0;
                tex += var.sqrt() / mean;
                edge += gx.hypot(gy) / c as f64;
                n += 1;
            }
        }
        if n == 0 {
            return (0.0, 0.0);
        }
        ((tex / n as f64) as f32, (edge / n as f64) as f32)
    }

    #[test]
    fn contrast_is_the_neighbourhood_rule_to_the_bit() {
        let (w, h) = (23, 17);
        let mut seed = 7u64;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as u32
        };
        for _ in 0..20 {
            let br: Vec<f32> = (0..w * h)
                .map(|_| match next() % 10 {
                    0 => f32::NAN,
                    1 => 0.0,
                    _ => (next() % 5000) as f32 / 1000.0 + 0.01,
                })
                .collect();
            let members: Vec<bool> = (0..w * h).map(|_| next() % 3 != 0).collect();
            let (t, e) = contrast(&br, w, h, &members);
            let (rt, re) = contrast_reference(&br, w, h, &members);
            assert_eq!((t.to_bits(), e.to_bits()), (rt.to_bits(), re.to_bits()));
            assert!(t > 0.0 && e > 0.0);
        }
    }

    use super::*;

    const SAND: [f32; NB] = [0.18, 0.26, 0.34, 0.40, 0.50, 0.45];
    const CONCRETE: [f32; NB] = [0.30, 0.31, 0.32, 0.33, 0.34, 0.31];

    fn window(spec: impl Fn(usize, usize) -> [f32; NB], w: usize, h: usize) -> Vec<Vec<f32>> {
        (0..NB)
            .map(|k| (0..w * h).map(|i| spec(i % w, i / w)[k]).collect())
            .collect()
    }

    #[test]
    fn angle_separates_material_from_brightness() {
        let darker: Vec<f32> = SAND.iter().map(|v| v * 0.7).collect();
        assert!(spectral_angle(&SAND, &darker) < 1e-3);
        assert!(spectral_angle(&SAND, &CONCRETE) > 8.0);
    }

    #[test]
    fn relative_to_the_scene_background() {
        let mut s = BackgroundSample::default();
        for _ in 0..11 {
            // The whole scene got 0.02 brighter in every band.
            let y = SAND.map(|v| v + 0.02);
            s.push(&SAND, &y);
        }
        let bg = s.finish();
        assert!((bg.band_delta[0] - 0.02).abs() < 1e-6);
        let (w, h) = (6, 6);
        let members: Vec<bool> = (0..w * h)
            .map(|i| (1..5).contains(&(i % w)) && (1..5).contains(&(i / w)))
            .collect();
        let before = window(|_, _| SAND, w, h);
        let after = window(
            |x, y| {
                if (1..5).contains(&x) && (1..5).contains(&y) {
                    CONCRETE
                } else {
                    SAND.map(|v| v + 0.02)
                }
            },
            w,
            h,
        );
        let f = measure(&before, &after, &members, w, h, &bg);
        assert_eq!(f.pixels, 16);
        assert!(
            (f.delta.ndbi - (Indices::of(&CONCRETE).ndbi - Indices::of(&SAND).ndbi)).abs() < 1e-5
        );
        assert!((f.band_delta_rel[0] - (0.30 - 0.18 - 0.02)).abs() < 1e-5);
        assert!(f.spectral_angle_excess_deg > 8.0, "{f:?}");
        // Uniform surfaces inside; contrast only where the 3x3 window reaches the sand around.
        assert!(f.texture_before < 1e-6 && f.texture_after > 0.0);
    }

    #[test]
    fn edges_measure_contrast() {
        let (w, h) = (8, 8);
        let members = vec![true; w * h];
        let flat = window(|_, _| SAND, w, h);
        let checker = window(
            |x, y| {
                if (x + y) % 2 == 0 {
                    SAND
                } else {
                    SAND.map(|v| v * 0.5)
                }
            },
            w,
            h,
        );
        let (_, e_flat) = contrast(&brightness(&flat, w * h), w, h, &members);
        let (t_chk, _) = contrast(&brightness(&checker, w * h), w, h, &members);
        assert!(e_flat.abs() < 1e-6, "{e_flat}");
        assert!(t_chk > 0.2);
    }
}
