//! Co-registration: the after scene's displacement from the before scene,
//! one translation for the whole scene, estimated by phase correlation and
//! applied to the after scene's sources by sub-pixel interpolation.
//!
//! Why: two Sentinel-2 scenes of one place are often misregistered by a
//! pixel or so (before the 2019 global reference image, between S2A and
//! S2B, across relative orbits; on the OSCD pairs 0.7 to 1.4 px in four of
//! nine). Every edge of a town or road then looks like change, and the
//! score's one-pixel search only partly hides it. Orbits are nearly
//! parallel and a tile is small, so one translation is what is left to
//! correct.
//!
//! How: on windows of 256 px spread over the scene (a 3 x 3 spread of the
//! statistics sample's on large scenes, so their file tiles are decoded once
//! for both), the summed gradient magnitude of B04 and B08 of each date (edges
//! match across seasons and sun angles where brightness does not) is
//! Hann-tapered and Fourier transformed; the normalised cross-power spectra
//! of all windows are summed, so the shared translation adds up while
//! changes and noise do not, and the inverse transform peaks at the
//! displacement. The peak is searched within [`MAX_SHIFT`] px (a larger
//! offset is a georeferencing error, not misregistration) and refined to a
//! fraction of a pixel by a parabola through its neighbours. It is applied
//! when it is at least [`MIN_SHIFT`] px (below that the estimate's own
//! error is as large) and the peak stands out ([`MIN_CONFIDENCE`] times the
//! highest correlation farther out).

use super::{warp, AlignedBand, AlignedPair, Grid, SceneReader, Source, Window};
use crate::align::reader::Date;
use crate::error::{gdal_msg, Error, Result};
use crate::read::Band;
use rayon::prelude::*;
use rustfft::{num_complex::Complex, FftPlanner};
use serde::Serialize;

/// Side of the correlation windows, px.
pub const WINDOW: usize = 256;
/// Largest displacement searched, px.
pub const MAX_SHIFT: usize = 4;
/// Smallest displacement applied, px.
pub const MIN_SHIFT: f64 = 0.25;
/// The peak over the highest correlation outside the search square.
pub const MIN_CONFIDENCE: f64 = 2.0;
/// Windows with more invalid pixels than this share are left out.
const MAX_INVALID: f64 = 0.1;
/// The bands whose edges are matched: red (soil, built-up) and near
/// infrared (vegetation); the other visible bands repeat red's edges.
const BANDS: [Band; 2] = [Band::B04, Band::B08];

/// What was estimated and done, for run.json.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Coregistration {
    /// Where the after scene shows what the before scene has at a pixel,
    /// relative to it, in grid pixels: x to the right (columns), y down
    /// (rows). None when it could not be estimated.
    pub shift_px: Option<[f64; 2]>,
    /// The same in metres (x east, y south on a north-up grid).
    pub shift_m: Option<[f64; 2]>,
    /// Correlation peak over the highest correlation outside the search
    /// square.
    pub confidence: Option<f64>,
    /// Windows that went into the estimate.
    pub windows: usize,
    /// Whether the after scene was shifted onto the before scene.
    pub applied: bool,
    /// Why it was or was not applied.
    pub reason: String,
}

/// The correlation windows of a `width` x `height` grid, in rounds: on
/// large scenes first every other one of the statistics sample's along each
/// axis (see [`crate::detect::sample::windows`]; 3 x 3 on a full tile), then
/// the rest of them, read only when the first round had fewer than
/// `MIN_WINDOWS` clear of no data (a tile at the edge of the swath); on
/// small ones 256 px windows tiling the scene; a scene smaller than a window
/// is one window.
pub fn windows(width: usize, height: usize) -> Vec<Vec<Window>> {
    use crate::detect::sample;
    if width * height > sample::SAMPLE_ALL_UP_TO {
        let all: Vec<Window> = sample::windows(width, height)
            .into_iter()
            .filter(|w| w.w == sample::WINDOW && w.h == sample::WINDOW)
            .collect();
        let distinct = |f: fn(&Window) -> usize| {
            let mut v: Vec<usize> = all.iter().map(f).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let (xs, ys) = (distinct(|w| w.x), distinct(|w| w.y));
        let even = |v: &[usize], x: usize| v.iter().position(|&u| u == x).unwrap_or(0) % 2 == 0;
        let (first, rest) = all
            .into_iter()
            .partition(|w| even(&xs, w.x) && even(&ys, w.y));
        return vec![first, rest];
    }
    let (w, h) = (WINDOW.min(width), WINDOW.min(height));
    if w == 0 || h == 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    for y in (0..=height - h).step_by(h) {
        for x in (0..=width - w).step_by(w) {
            out.push(Window { x, y, w, h });
        }
    }
    vec![out]
}

/// Windows enough for an estimate before a next round is read.
const MIN_WINDOWS: usize = 3;

/// Estimates the after scene's displacement on `pair`'s current alignment,
/// reading the windows on the current rayon pool, and shifts the after
/// scene's sources by it when it passes the tests above.
pub fn coregister(pair: &mut AlignedPair) -> Result<Coregistration> {
    let g = &pair.grid;
    let rounds = windows(g.width, g.height);
    let Some(&first) = rounds.first().and_then(|r| r.first()) else {
        return Ok(not_estimated(
            0,
            "the scene is too small to estimate a shift",
        ));
    };
    let (w, h) = (first.w, first.h);
    if w < 8 * MAX_SHIFT || h < 8 * MAX_SHIFT {
        return Ok(not_estimated(
            0,
            "the scene is too small to estimate a shift",
        ));
    }
    let readers = crate::per_thread::PerThread::new();
    let pair_ref: &AlignedPair = pair;
    let mut sum = vec![Complex::new(0.0, 0.0); w * h];
    let mut n = 0;
    for round in &rounds {
        if n >= MIN_WINDOWS {
            break;
        }
        let spectra: Vec<Option<Vec<Complex<f64>>>> = round
            .par_iter()
            .map(|&win| {
                readers.with(
                    || Ok(SceneReader::scattered(pair_ref)),
                    |reader| -> Result<Option<Vec<Complex<f64>>>> {
                        let (Some(b), Some(a)) = (
                            edges(reader, Date::Before, win)?,
                            edges(reader, Date::After, win)?,
                        ) else {
                            return Ok(None);
                        };
                        Ok(Some(cross_power(&b, &a, w, h)))
                    },
                )
            })
            .collect::<Result<_>>()?;
        // Summed in window order: the same estimate for any thread count.
        for s in spectra.into_iter().flatten() {
            for (t, v) in sum.iter_mut().zip(s) {
                *t += v;
            }
            n += 1;
        }
    }
    if n == 0 {
        return Ok(not_estimated(
            0,
            "no correlation window is clear of no data and saturation",
        ));
    }
    let Some(peak) = find_peak(sum, w, h) else {
        return Ok(not_estimated(n, "no correlation peak"));
    };
    let (mx, my) = pair.grid.metres_per_unit();
    let (px, py) = pair.grid.pixel_size();
    let [dx, dy] = peak.shift;
    let mut c = Coregistration {
        shift_px: Some(peak.shift),
        shift_m: Some([dx * px * mx, dy * py * my]),
        confidence: Some(peak.confidence),
        windows: n,
        applied: false,
        reason: String::new(),
    };
    let size = dx.hypot(dy);
    c.reason = if peak.confidence < MIN_CONFIDENCE {
        format!("the correlation peak does not stand out (confidence under {MIN_CONFIDENCE})")
    } else if dx.abs().max(dy.abs()) > MAX_SHIFT as f64 - 0.5 {
        format!("the peak is at the edge of the {MAX_SHIFT} px search: not a misregistration")
    } else if size < MIN_SHIFT {
        format!("under {MIN_SHIFT} px: within the estimate's own error")
    } else {
        shift_after(pair, peak.shift)?;
        c.applied = true;
        "the after scene was shifted onto the before scene".into()
    };
    Ok(c)
}

impl Coregistration {
    /// Not attempted, for `why`.
    pub fn skipped(why: &str) -> Coregistration {
        not_estimated(0, why)
    }
}

fn not_estimated(windows: usize, why: &str) -> Coregistration {
    Coregistration {
        shift_px: None,
        shift_m: None,
        confidence: None,
        windows,
        applied: false,
        reason: why.into(),
    }
}

/// Summed gradient magnitude of [`BANDS`] over `win` (row-major), or None
/// when too many pixels are invalid; invalid pixels take the mean.
fn edges(reader: &mut SceneReader, date: Date, win: Window) -> Result<Option<Vec<f64>>> {
    let (w, h) = (win.w, win.h);
    let mut sum = vec![0.0f64; w * h];
    for band in BANDS {
        let v = reader.reflectance(date, band, win, (w, h))?;
        let valid = v.iter().filter(|x| x.is_finite()).count();
        if ((w * h - valid) as f64) > MAX_INVALID * (w * h) as f64 {
            return Ok(None);
        }
        let mean = v
            .iter()
            .filter(|x| x.is_finite())
            .map(|&x| x as f64)
            .sum::<f64>()
            / valid as f64;
        let v: Vec<f64> = v
            .iter()
            .map(|&x| if x.is_finite() { x as f64 } else { mean })
            .collect();
        // Central differences inside, one-sided at the edges.
        let d = |i0: usize, i1: usize, span: usize| (v[i1] - v[i0]) / span as f64;
        for r in 0..h {
            let (r0, r1) = (r.saturating_sub(1), (r + 1).min(h - 1));
            for c in 0..w {
                let (c0, c1) = (c.saturating_sub(1), (c + 1).min(w - 1));
                let gx = d(r * w + c0, r * w + c1, c1 - c0);
                let gy = d(r0 * w + c, r1 * w + c, r1 - r0);
                sum[r * w + c] += gx.hypot(gy);
            }
        }
    }
    Ok(Some(sum))
}

/// 2-D FFT of a row-major `w` x `h` array, in place.
fn fft2(data: &mut [Complex<f64>], w: usize, h: usize, inverse: bool) {
    let mut planner = FftPlanner::new();
    let (fw, fh) = if inverse {
        (planner.plan_fft_inverse(w), planner.plan_fft_inverse(h))
    } else {
        (planner.plan_fft_forward(w), planner.plan_fft_forward(h))
    };
    fw.process(data);
    let mut t = vec![Complex::new(0.0, 0.0); w * h];
    for r in 0..h {
        for c in 0..w {
            t[c * h + r] = data[r * w + c];
        }
    }
    fh.process(&mut t);
    for c in 0..w {
        for r in 0..h {
            data[r * w + c] = t[c * h + r];
        }
    }
}

/// The normalised cross-power spectrum `A* B / |A* B|` of the tapered,
/// mean-free windows `a` (before) and `b` (after): its inverse transform
/// peaks at the displacement of `b` from `a`.
fn cross_power(a: &[f64], b: &[f64], w: usize, h: usize) -> Vec<Complex<f64>> {
    let hann = |n: usize| -> Vec<f64> {
        (0..n)
            .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / (n - 1) as f64).cos())
            .collect()
    };
    let (hx, hy) = (hann(w), hann(h));
    let spectrum = |v: &[f64]| {
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let mut s: Vec<Complex<f64>> = v
            .iter()
            .enumerate()
            .map(|(i, &x)| Complex::new((x - mean) * hx[i % w] * hy[i / w], 0.0))
            .collect();
        fft2(&mut s, w, h, false);
        s
    };
    let (fa, fb) = (spectrum(a), spectrum(b));
    fa.iter()
        .zip(&fb)
        .map(|(a, b)| {
            let p = a.conj() * b;
            let m = p.norm();
            if m > 1e-300 {
                p / m
            } else {
                Complex::new(0.0, 0.0)
            }
        })
        .collect()
}

#[derive(Debug, Clone, Copy)]
struct Peak {
    shift: [f64; 2],
    confidence: f64,
}

/// The correlation peak within [`MAX_SHIFT`] of zero of the summed
/// cross-power spectrum: the highest of the integer lattice, then refined
/// on the band-limited correlation surface itself (evaluated off the
/// lattice from the spectrum, on finer and finer steps: Guizar-Sicairos et
/// al. 2008), which unlike a parabola through the lattice values is
/// unbiased between whole pixels.
fn find_peak(spectrum: Vec<Complex<f64>>, w: usize, h: usize) -> Option<Peak> {
    let mut r = spectrum.clone();
    fft2(&mut r, w, h, true);
    let r: Vec<f64> = r.iter().map(|c| c.re).collect();
    let at = |dy: isize, dx: isize| {
        r[(dy.rem_euclid(h as isize) as usize) * w + dx.rem_euclid(w as isize) as usize]
    };
    let k = MAX_SHIFT as isize;
    let (mut best, mut pos) = (f64::NEG_INFINITY, (0isize, 0isize));
    for dy in -k..=k {
        for dx in -k..=k {
            if at(dy, dx) > best {
                (best, pos) = (at(dy, dx), (dy, dx));
            }
        }
    }
    // The highest correlation outside the search square (and its one-pixel
    // rim, where the peak's own shoulders are).
    let mut outside = f64::NEG_INFINITY;
    for y in 0..h as isize {
        for x in 0..w as isize {
            let (dy, dx) = (wrap(y, h), wrap(x, w));
            if dy.abs() > k + 1 || dx.abs() > k + 1 {
                outside = outside.max(at(dy, dx));
            }
        }
    }
    if !best.is_finite() || best <= 0.0 {
        return None;
    }
    let (mut cx, mut cy) = (pos.1 as f64, pos.0 as f64);
    // Steps of 1/16, then 1/256 pixel, over the step before on either side.
    let mut half = 1.0;
    for step in [1.0 / 16.0, 1.0 / 256.0] {
        (cx, cy) = refine(&spectrum, w, h, (cx, cy), half, step);
        half = step;
    }
    Some(Peak {
        shift: [cx, cy],
        confidence: if outside > 0.0 {
            best / outside
        } else {
            f64::INFINITY
        },
    })
}

/// The highest point of the correlation surface on a lattice of `step`
/// within `half` of `centre`, each point summed from the spectrum (its
/// Nyquist terms left out: they have no sign of frequency).
fn refine(
    spectrum: &[Complex<f64>],
    w: usize,
    h: usize,
    centre: (f64, f64),
    half: f64,
    step: f64,
) -> (f64, f64) {
    let n = (half / step).round() as isize;
    let offsets: Vec<f64> = (-n..=n).map(|i| i as f64 * step).collect();
    let freq = |i: usize, len: usize| -> Option<f64> {
        let f = wrap(i as isize, len);
        (2 * f.unsigned_abs() != len).then_some(f as f64 / len as f64)
    };
    let tau = 2.0 * std::f64::consts::PI;
    // Columns first: t[row][j] = sum over column frequencies at x_j.
    let xs: Vec<f64> = offsets.iter().map(|o| centre.0 + o).collect();
    let col_phase: Vec<Vec<Complex<f64>>> = (0..w)
        .map(|c| match freq(c, w) {
            Some(f) => xs
                .iter()
                .map(|x| Complex::from_polar(1.0, tau * f * x))
                .collect(),
            None => vec![Complex::new(0.0, 0.0); xs.len()],
        })
        .collect();
    let mut t = vec![Complex::new(0.0, 0.0); h * xs.len()];
    for r in 0..h {
        let row = &spectrum[r * w..(r + 1) * w];
        let out = &mut t[r * xs.len()..(r + 1) * xs.len()];
        for (v, ph) in row.iter().zip(&col_phase) {
            for (o, p) in out.iter_mut().zip(ph) {
                *o += v * p;
            }
        }
    }
    let mut best = (f64::NEG_INFINITY, centre);
    for oy in &offsets {
        let y = centre.1 + oy;
        let mut sums = vec![Complex::new(0.0, 0.0); xs.len()];
        for r in 0..h {
            let Some(f) = freq(r, h) else { continue };
            let p = Complex::from_polar(1.0, tau * f * y);
            for (s, v) in sums.iter_mut().zip(&t[r * xs.len()..(r + 1) * xs.len()]) {
                *s += v * p;
            }
        }
        for (s, x) in sums.iter().zip(&xs) {
            if s.re > best.0 {
                best = (s.re, (*x, y));
            }
        }
    }
    best.1
}

/// `i` in `0..n` as a signed offset in `-n/2..n/2`.
fn wrap(i: isize, n: usize) -> isize {
    if i > n as isize / 2 {
        i - n as isize
    } else {
        i
    }
}

/// Shifts every band of the after scene by `shift` (see
/// [`Coregistration::shift_px`]): the pixel at grid position `p` is then
/// read from where the after scene has it, `p + shift`. Bands read natively
/// are interpolated (bilinear; nearest for class codes) with their pixels
/// off the source marked no data; warped bands are warped again onto the
/// grid moved by `shift`.
pub fn shift_after(pair: &mut AlignedPair, shift: [f64; 2]) -> Result<()> {
    let [dx, dy] = shift;
    let moved = pair.grid.translated(dx, dy);
    let tmp = pair._tmp.path().to_path_buf();
    let scl = pair.after.scl.iter_mut().map(|ab| (ab, true));
    let bands = pair.after.bands.values_mut().map(|ab| (ab, false));
    for (n, (ab, categorical)) in bands.chain(scl).enumerate() {
        shift_band(
            ab,
            categorical,
            dx,
            dy,
            &moved,
            &tmp.join(format!("shifted{n}.vrt")),
        )?;
    }
    Ok(())
}

fn shift_band(
    ab: &mut AlignedBand,
    categorical: bool,
    dx: f64,
    dy: f64,
    moved: &Grid,
    vrt: &std::path::Path,
) -> Result<()> {
    let open =
        |p: &str| gdal::Dataset::open(p).map_err(|e| Error::input(&ab.file.path, gdal_msg(&e)));
    let shifted = match &ab.source {
        Source::Upsampled { .. } => None,
        Source::Direct {
            path,
            index,
            x_off,
            y_off,
        } => {
            let (src_w, src_h) = open(path)?.raster_size();
            Some(Source::Upsampled {
                path: path.clone(),
                index: *index,
                factor: 1,
                x_off: *x_off as f64,
                y_off: *y_off as f64,
                src_w,
                src_h,
                nearest: categorical,
            })
        }
        Source::Warped { .. } => {
            warp::warp_to_vrt(
                &ab.file,
                &open(&ab.file.path)?,
                moved,
                vrt,
                categorical,
                ab.nodata,
            )?;
            ab.source = Source::Warped {
                vrt: vrt.to_string_lossy().into_owned(),
            };
            return Ok(());
        }
    };
    if let Some(s) = shifted {
        ab.source = s;
    }
    if let Source::Upsampled { x_off, y_off, .. } = &mut ab.source {
        *x_off += dx;
        *y_off += dy;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random ground blurred as an optical system does (a Gaussian of
    /// about one pixel) and displaced by exactly `-s` (a phase ramp, so a
    /// true sub-pixel shift, as between two acquisitions).
    fn texture(w: usize, h: usize, sx: f64, sy: f64) -> Vec<f64> {
        let mut seed = 7u64;
        let mut v: Vec<Complex<f64>> = (0..w * h)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                Complex::new((seed >> 11) as f64 / (1u64 << 53) as f64, 0.0)
            })
            .collect();
        fft2(&mut v, w, h, false);
        let tau = 2.0 * std::f64::consts::PI;
        for r in 0..h {
            for c in 0..w {
                let (fx, fy) = (
                    wrap(c as isize, w) as f64 / w as f64,
                    wrap(r as isize, h) as f64 / h as f64,
                );
                let blur = (-(fx * fx + fy * fy) * 10.0).exp();
                let nyquist = 2 * c == w || 2 * r == h;
                v[r * w + c] *= if nyquist {
                    Complex::new(0.0, 0.0)
                } else {
                    Complex::from_polar(blur, tau * (fx * sx + fy * sy))
                };
            }
        }
        fft2(&mut v, w, h, true);
        v.iter().map(|c| c.re).collect()
    }

    fn estimate(a: &[f64], b: &[f64], w: usize, h: usize) -> Peak {
        find_peak(cross_power(a, b, w, h), w, h).unwrap()
    }

    #[test]
    fn recovers_a_known_displacement_with_its_sign() {
        let (w, h) = (128, 96);
        let before = texture(w, h, 0.0, 0.0);
        for (dx, dy) in [(1.0, 0.0), (0.0, -2.0), (0.6, -1.3), (-0.3, 0.8)] {
            // The after scene shows at p + d what the before scene has at p.
            let after = texture(w, h, -dx, -dy);
            let p = estimate(&before, &after, w, h);
            assert!(
                (p.shift[0] - dx).abs() < 0.05 && (p.shift[1] - dy).abs() < 0.05,
                "d = ({dx}, {dy}): estimated {:?}",
                p.shift
            );
            assert!(p.confidence > MIN_CONFIDENCE, "{}", p.confidence);
        }
    }

    #[test]
    fn unrelated_scenes_have_no_confident_peak() {
        let (w, h) = (64, 64);
        let a = texture(w, h, 0.0, 0.0);
        // Pseudo-random noise shares no edges with the texture.
        let mut x = 12345u64;
        let b: Vec<f64> = (0..w * h)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 33) as f64 / (1u64 << 31) as f64
            })
            .collect();
        assert!(estimate(&a, &b, w, h).confidence < MIN_CONFIDENCE);
    }

    #[test]
    fn windows_tile_small_scenes_and_sample_large_ones() {
        let w = windows(600, 300);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].len(), 2);
        assert!(w[0].iter().all(|w| w.w == 256 && w.h == 256));
        let one = Window {
            x: 0,
            y: 0,
            w: 100,
            h: 80,
        };
        assert_eq!(windows(100, 80), vec![vec![one]]);
        let rounds = windows(10980, 10980);
        assert_eq!(rounds.len(), 2);
        let w = &rounds[0];
        assert_eq!(w.len(), 9);
        assert!(w.iter().all(|w| w.w == WINDOW && w.h == WINDOW));
        assert!(w.iter().any(|v| v.x < 2048) && w.iter().any(|v| v.x > 8000));
        assert!(w.iter().any(|v| v.y < 2048) && w.iter().any(|v| v.y > 8000));
        // Both rounds together are the sample's whole windows, each once.
        let key = |w: &Window| (w.y, w.x);
        let mut both: Vec<Window> = rounds.concat();
        let mut sample: Vec<Window> = crate::detect::sample::windows(10980, 10980)
            .into_iter()
            .filter(|w| w.w == WINDOW && w.h == WINDOW)
            .collect();
        both.sort_by_key(key);
        sample.sort_by_key(key);
        assert_eq!(both, sample);
        assert!(rounds[1].len() > 9);
    }
}
