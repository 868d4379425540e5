//! Upsampling a coarse band (Sentinel-2's 20 and 60 m bands) onto the 10 m
//! grid it shares edges with, one read window at a time.
//!
//! Why not GDAL's warper: for a whole-factor, edge-aligned upsampling every
//! output pixel has the same two-by-two source neighbourhood and fixed
//! weights, so a separable interpolation over the coarse window is all it
//! takes; the warper spends most of a full-tile run on per-chunk set-up,
//! masks and generic kernels for the same result.
//!
//! Bilinear weights follow pixel centres: grid column `J` (in the source's
//! frame, counted in grid pixels) has its centre at `(J + 0.5) / k - 0.5`
//! source pixels. Source no-data pixels get no weight (the others are
//! renormalised, as GDAL does); an output pixel touched by a saturated
//! source pixel is saturated; one with no valid source pixel is no data.
//! Nearest neighbour (class codes) takes source pixel `J / k`.
//!
//! The same taps shift a band by a fraction of a pixel (factor 1, or any
//! factor, with a fractional first pixel): that is how the after scene is
//! co-registered (see [`super::coregister`]). Output pixels whose centre
//! falls outside the source are no data, never an edge pixel repeated.

/// The two source pixels and the weight of the second, for every output
/// column (or row) of a read, relative to the first source pixel read.
#[derive(Debug, Clone, PartialEq)]
pub struct Taps {
    /// First source pixel to read.
    pub start: usize,
    /// Source pixels to read.
    pub len: usize,
    /// Per output pixel: (first tap, second tap, weight of the second), as
    /// offsets from `start`.
    pub taps: Vec<(u32, u32, f32)>,
    /// Output pixels whose centre lies on the source: `valid.0..valid.1`
    /// (all of them unless the read is shifted past the source's edge).
    pub valid: (usize, usize),
    /// Output pixels `run.0..run.1` repeat their taps every `period` pixels
    /// one source pixel on: one weight throughout for a shift by part of a
    /// pixel (period 1), `factor` weights in turn for an upsampling. They
    /// are interpolated over slices, a phase at a time.
    pub run: (usize, usize),
    /// See `run`.
    pub period: usize,
}

/// Taps for reading grid pixels `[first, first + span)` (in the source's
/// frame, counted in grid pixels; `first` is fractional when the read is
/// shifted by part of a pixel) into `out` pixels: `out == span` for a
/// full-resolution read, fewer for a decimated one (output pixel `o` then
/// samples grid pixel `first + (o + 0.5) span / out`, as GDAL's nearest
/// neighbour reads do). `src_len` is the source size in its own pixels.
pub fn taps(
    first: f64,
    span: usize,
    out: usize,
    factor: usize,
    src_len: usize,
    nearest: bool,
) -> Taps {
    assert!(factor >= 1 && src_len >= 1 && out >= 1 && span >= 1);
    let last = src_len as i64 - 1;
    let k = factor as f64;
    let mut valid = (out, out);
    let raw: Vec<(i64, i64, f32)> = (0..out)
        .map(|o| {
            let j = if out == span {
                first + o as f64
            } else {
                first + ((o as f64 + 0.5) * span as f64 / out as f64) as usize as f64
            };
            // The pixel's centre, in source pixels.
            let centre = (j + 0.5) / k;
            if (0.0..=src_len as f64).contains(&centre) {
                valid = (valid.0.min(o), o + 1);
            }
            if nearest {
                let i = (centre.floor() as i64).clamp(0, last);
                return (i, i, 0.0);
            }
            let t = centre - 0.5;
            let i = t.floor();
            let w = (t - i) as f32;
            let i = i as i64;
            (i.clamp(0, last), (i + 1).clamp(0, last), w)
        })
        .collect();
    let start = raw.iter().map(|t| t.0).min().unwrap_or(0);
    let end = raw.iter().map(|t| t.1).max().unwrap_or(0);
    let taps: Vec<(u32, u32, f32)> = raw
        .into_iter()
        .map(|(a, b, w)| ((a - start) as u32, (b - start) as u32, w))
        .collect();
    let valid = (valid.0.min(valid.1), valid.1);
    // Full-resolution reads only: a decimated read's taps skip unevenly.
    let (run, period) = match (nearest, out == span) {
        (false, true) => [1, factor]
            .into_iter()
            .filter(|&p| p <= MAX_PERIOD)
            .map(|p| (periodic_run(&taps, valid, p), p))
            .max_by_key(|((lo, hi), p)| (hi - lo, usize::MAX - p))
            .expect("period 1 is always tried"),
        _ => ((0, 0), 1),
    };
    Taps {
        start: start as usize,
        len: (end - start + 1) as usize,
        run,
        period,
        taps,
        valid,
    }
}

/// The longest period [`interpolate`] has a loop for (20 m onto 10 m).
const MAX_PERIOD: usize = 2;

/// The longest stretch of valid taps `(c, c + 1, w)` where each tap is the
/// one `period` before it moved on by one source pixel, a whole number of
/// periods long, if worth a loop of its own.
fn periodic_run(t: &[(u32, u32, f32)], valid: (usize, usize), period: usize) -> (usize, usize) {
    let pair = |o: usize| t[o].1 == t[o].0 + 1;
    let next = |o: usize| t[o].0 == t[o - period].0 + 1 && t[o].2 == t[o - period].2;
    let mut best = (0, 0);
    let mut o = valid.0;
    while o < valid.1 {
        if !pair(o) {
            o += 1;
            continue;
        }
        let mut e = o + 1;
        while e < valid.1 && pair(e) && (e < o + period || next(e)) {
            e += 1;
        }
        let whole = o + (e - o) / period * period;
        if whole - o > best.1 - best.0 {
            best = (o, whole);
        }
        o = e;
    }
    if best.1 - best.0 >= 16 {
        best
    } else {
        (0, 0)
    }
}

/// Output pixels `o, o + K, o + 2K, ...` from the taps of the first `K`
/// (`c`: first source pixel, `w`: the four weights) over source rows `a`
/// and `b`, appended to `out` in order: `n` periods. The expression is the
/// one of the tap-by-tap path, so the values are the same to the bit.
fn periodic<const K: usize>(
    a: &[f32],
    b: &[f32],
    c: [usize; K],
    w: [[f32; 4]; K],
    n: usize,
    out: &mut Vec<f32>,
) {
    let den: [f32; K] = std::array::from_fn(|q| w[q][0] + w[q][1] + w[q][2] + w[q][3]);
    let a: [&[f32]; K] = std::array::from_fn(|q| &a[c[q]..c[q] + n + 1]);
    let b: [&[f32]; K] = std::array::from_fn(|q| &b[c[q]..c[q] + n + 1]);
    // Written in place, not zeroed first: a zeroing pass over every 20 m
    // band's upsampled rows cost about 0.2 CPU s on a full tile pair.
    let at = out.len();
    out.reserve(n * K);
    let dst = &mut out.spare_capacity_mut()[..n * K];
    for (m, o) in dst.chunks_exact_mut(K).enumerate() {
        for q in 0..K {
            let (a, b, w) = (a[q], b[q], w[q]);
            o[q].write((a[m] * w[0] + a[m + 1] * w[1] + b[m] * w[2] + b[m + 1] * w[3]) / den[q]);
        }
    }
    // SAFETY: the loop wrote all `n * K` elements after the first `at`.
    unsafe { out.set_len(at + n * K) };
}

/// Interpolates the output from `src`, the source window given by `cols`
/// and `rows` (row-major, `cols.len` wide). Values equal to `nodata` (or
/// NaN) are no data; values at or above `saturated` are saturated. Output
/// pixels off the source (outside the taps' `valid` ranges) are NaN.
pub fn interpolate(
    src: &[f32],
    cols: &Taps,
    rows: &Taps,
    nodata: f32,
    saturated: Option<f32>,
) -> Vec<f32> {
    let sw = cols.len;
    debug_assert_eq!(src.len(), sw * rows.len);
    let sat = saturated.unwrap_or(f32::INFINITY);
    // Source rows with no special value take the fast path below.
    let clean: Vec<bool> = src
        .chunks_exact(sw)
        .map(|row| row.iter().all(|&v| v != nodata && v < sat && !v.is_nan()))
        .collect();
    let mut out = Vec::with_capacity(cols.taps.len() * rows.taps.len());
    for (r, &(r0, r1, wy)) in rows.taps.iter().enumerate() {
        if !(rows.valid.0..rows.valid.1).contains(&r) {
            out.resize(out.len() + cols.taps.len(), f32::NAN);
            continue;
        }
        let (a, b) = (
            &src[r0 as usize * sw..][..sw],
            &src[r1 as usize * sw..][..sw],
        );
        if clean[r0 as usize] && clean[r1 as usize] {
            // The general rule below with every tap valid; zero weights add
            // exact zeros, so the result is the same to the bit.
            let weights = |wx: f32| {
                [
                    (1.0 - wx) * (1.0 - wy),
                    wx * (1.0 - wy),
                    (1.0 - wx) * wy,
                    wx * wy,
                ]
            };
            let each = |taps: &[(u32, u32, f32)], out: &mut Vec<f32>| {
                for &(c0, c1, wx) in taps {
                    let (c0, c1) = (c0 as usize, c1 as usize);
                    let w = weights(wx);
                    let s = a[c0] * w[0] + a[c1] * w[1] + b[c0] * w[2] + b[c1] * w[3];
                    out.push(s / (w[0] + w[1] + w[2] + w[3]));
                }
            };
            let (lo, hi) = cols.run;
            each(&cols.taps[..lo], &mut out);
            if hi > lo && cols.period == 2 {
                let t = &cols.taps[lo..lo + 2];
                let c = [t[0].0 as usize, t[1].0 as usize];
                periodic::<2>(
                    a,
                    b,
                    c,
                    [weights(t[0].2), weights(t[1].2)],
                    (hi - lo) / 2,
                    &mut out,
                );
            } else if hi > lo {
                // The same expression over slices, so it vectorises.
                let (c, n) = (cols.taps[lo].0 as usize, hi - lo);
                let w = weights(cols.taps[lo].2);
                let den = w[0] + w[1] + w[2] + w[3];
                let (a0, a1, b0, b1) = (
                    &a[c..c + n],
                    &a[c + 1..c + 1 + n],
                    &b[c..c + n],
                    &b[c + 1..c + 1 + n],
                );
                out.extend(
                    a0.iter()
                        .zip(a1)
                        .zip(b0.iter().zip(b1))
                        .map(|((p, q), (u, v))| (p * w[0] + q * w[1] + u * w[2] + v * w[3]) / den),
                );
            }
            each(&cols.taps[hi.max(lo)..], &mut out);
            continue;
        }
        for &(c0, c1, wx) in &cols.taps {
            let (c0, c1) = (c0 as usize, c1 as usize);
            let v = [a[c0], a[c1], b[c0], b[c1]];
            let w = [
                (1.0 - wx) * (1.0 - wy),
                wx * (1.0 - wy),
                (1.0 - wx) * wy,
                wx * wy,
            ];
            let (mut s, mut ws) = (0.0f32, 0.0f32);
            let mut saturated = false;
            for (v, w) in v.into_iter().zip(w) {
                if w == 0.0 || v == nodata || v.is_nan() {
                    continue;
                }
                if v >= sat {
                    saturated = true;
                }
                s += v * w;
                ws += w;
            }
            out.push(if saturated {
                sat
            } else if ws > 0.0 {
                s / ws
            } else {
                nodata
            });
        }
    }
    if cols.valid != (0, cols.taps.len()) {
        let w = cols.taps.len();
        for row in out.chunks_exact_mut(w) {
            row[..cols.valid.0].fill(f32::NAN);
            row[cols.valid.1..].fill(f32::NAN);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_metre_onto_ten_metre_weights() {
        // Grid pixels 0..4 over source pixels 0..1: centres at -0.25, 0.25, 0.75, 1.25.
        let t = taps(0.0, 4, 4, 2, 2, false);
        assert_eq!(t.start, 0);
        assert_eq!(t.len, 2);
        assert_eq!(
            t.taps,
            vec![(0, 0, 0.75), (0, 1, 0.25), (0, 1, 0.75), (1, 1, 0.25)]
        );
        let row = taps(0.0, 1, 1, 2, 1, false);
        let v = interpolate(&[100.0, 200.0], &t, &row, 0.0, None);
        assert_eq!(v, vec![100.0, 125.0, 175.0, 200.0]);
    }

    #[test]
    fn offset_windows_read_only_what_they_need() {
        let t = taps(10.0, 4, 4, 2, 100, false);
        // Centres 4.75 .. 6.25: source pixels 4 to 7.
        assert_eq!((t.start, t.len), (4, 4));
        let n = taps(10.0, 4, 4, 2, 100, true);
        assert_eq!((n.start, n.len), (5, 2));
        assert_eq!(
            n.taps,
            vec![(0, 0, 0.0), (0, 0, 0.0), (1, 1, 0.0), (1, 1, 0.0)]
        );
    }

    #[test]
    fn nodata_is_renormalised_and_saturation_wins() {
        let cols = taps(1.0, 2, 2, 2, 2, false);
        let rows = taps(0.0, 1, 1, 2, 1, false);
        // Second source pixel no data: the first's value everywhere it reaches.
        assert_eq!(
            interpolate(&[100.0, 0.0], &cols, &rows, 0.0, None),
            vec![100.0, 100.0]
        );
        assert_eq!(
            interpolate(&[0.0, 0.0], &cols, &rows, 0.0, None),
            vec![0.0, 0.0]
        );
        assert_eq!(
            interpolate(&[100.0, 65535.0], &cols, &rows, 0.0, Some(65535.0)),
            vec![65535.0, 65535.0]
        );
    }

    #[test]
    fn a_fractional_first_pixel_shifts_the_read_and_leaves_no_edge_copies() {
        // Factor 1, first pixel -0.75: output pixel 0 (centre -0.25) is off
        // the source, pixel 1 sits a quarter of the way from source pixel 0
        // to 1; the last output's centre (3.75) is on source pixel 3.
        let cols = taps(-0.75, 5, 5, 1, 4, false);
        assert_eq!(cols.valid, (1, 5));
        assert_eq!((cols.start, cols.len), (0, 4));
        let rows = taps(0.0, 1, 1, 1, 1, false);
        let v = interpolate(&[10.0, 20.0, 40.0, 80.0], &cols, &rows, 0.0, None);
        assert!(v[0].is_nan(), "{v:?}");
        assert_eq!(&v[1..], &[12.5, 25.0, 50.0, 80.0]);
        // Shifted the other way, past the far edge.
        let cols = taps(1.5, 4, 4, 1, 4, false);
        assert_eq!(cols.valid, (0, 3));
        assert_eq!((cols.start, cols.len), (1, 3));
        let v = interpolate(&[20.0, 40.0, 80.0], &cols, &rows, 0.0, None);
        assert_eq!(&v[..2], &[30.0, 60.0]);
        assert_eq!(v[2], 80.0, "centre 3.5 is the last pixel's centre");
        assert!(v[3].is_nan());
        // Whole rows off the source, and nearest neighbour for class codes.
        let rows = taps(-1.5, 2, 2, 1, 1, false);
        assert_eq!(rows.valid, (1, 2));
        let n = taps(0.6, 3, 3, 2, 2, true);
        // Centres 0.55, 1.05, 1.55 source pixels: pixels 0, 1, 1.
        assert_eq!(n.taps, vec![(0, 0, 0.0), (1, 1, 0.0), (1, 1, 0.0)]);
    }

    /// A patterned source interpolated with `cols`' run, and tap by tap.
    fn with_and_without_run(cols: &Taps, rows: &Taps) -> (Vec<f32>, Vec<f32>) {
        let src: Vec<f32> = (0..cols.len * rows.len)
            .map(|i| (i * i % 97) as f32 + 0.3)
            .collect();
        let tap_by_tap = Taps {
            run: (0, 0),
            ..cols.clone()
        };
        (
            interpolate(&src, cols, rows, 0.0, None),
            interpolate(&src, &tap_by_tap, rows, 0.0, None),
        )
    }

    #[test]
    fn shifted_reads_interpolate_over_slices_as_tap_by_tap() {
        let cols = taps(3.3, 40, 40, 1, 45, false);
        assert_eq!(cols.run, (0, 40), "{:?}", cols.taps);
        let rows = taps(-0.6, 3, 3, 1, 3, false);
        let (fast, slow) = with_and_without_run(&cols, &rows);
        assert_eq!(fast.len(), 120);
        assert!(
            fast[..40].iter().all(|v| v.is_nan()),
            "first row off the source"
        );
        assert!(fast[40..]
            .iter()
            .zip(&slow[40..])
            .all(|(f, s)| f.to_bits() == s.to_bits()));
        // Past the far edge the last taps repeat a pixel: the run stops there.
        let edge = taps(9.5, 40, 40, 1, 45, false);
        assert_eq!(edge.run, (0, 35));
        // Nearest neighbour has no run.
        assert_eq!(taps(0.5, 64, 64, 1, 80, true).run, (0, 0));
    }

    #[test]
    fn upsampling_interpolates_by_phase_as_tap_by_tap() {
        // 20 m onto 10 m: weights 0.75 and 0.25 in turn, the first and last
        // output pixels on clamped taps.
        let cols = taps(0.0, 64, 64, 2, 32, false);
        assert_eq!((cols.run, cols.period), ((1, 63), 2), "{:?}", cols.taps);
        // An odd start: the run starts on the other phase.
        let odd = taps(5.0, 41, 41, 2, 32, false);
        assert_eq!(odd.period, 2);
        assert_eq!((odd.run.1 - odd.run.0) % 2, 0);
        assert!(odd.run.1 - odd.run.0 >= 38, "{:?}", odd.run);
        for cols in [cols, odd] {
            let rows = taps(3.0, 5, 5, 2, 32, false);
            let (fast, slow) = with_and_without_run(&cols, &rows);
            assert_eq!(fast.len(), cols.taps.len() * 5);
            assert!(fast
                .iter()
                .zip(&slow)
                .all(|(f, s)| f.to_bits() == s.to_bits()));
        }
    }

    #[test]
    fn decimated_reads_sample_like_gdal() {
        // 8 grid pixels into 2: samples grid pixels 2 and 6.
        let t = taps(0.0, 8, 2, 2, 4, true);
        assert_eq!((t.start, t.len), (1, 3));
        assert_eq!(t.taps, vec![(0, 0, 0.0), (2, 2, 0.0)]);
    }
}
