//! The `learned` method: a logistic regression over per-pixel features that
//! carry spatial context, trained on labelled pairs by `dunewatch train`
//! (see [`crate::train`]) and shipped as JSON with its provenance.
//!
//! Features are computed here, block by block with a halo, by the same code
//! for training and for detection, so the two always match:
//! - the `combined` score (IR-MAD and CVA agreement, misregistration
//!   tolerant, natural changes down-weighted) averaged over 3x3, 5x5, 9x9
//!   and 17x17 windows, and the logits of those means;
//! - the robust CVA change magnitude ln(1 + |z|^2) and its means over 3x3,
//!   7x7 and 13x13;
//! - per index (NDVI, NDBI, BSI, MNDWI, brightness): the before and after
//!   values, and the change as a scene-wide robust z-score (median / MAD of
//!   the pass-1 sample) with its 3x3 and 9x9 means;
//! - texture (3x3 coefficient of variation of brightness) before, after,
//!   their difference and its 5x5 mean.
//!
//! Scene-level statistics come only from the pass-1 sample, so the score
//! pass stays streamed. The model's output is a probability shifted so that
//! the cut chosen at training (by leave-one-pair-out) sits at 0.5.

use super::cva::Cva;
use super::indices::Indices;
use super::masks::MaskReason;
use super::pixels::Pixels;
use super::sample::Sample;
use crate::align::Window;
use crate::error::Result;
use serde::{Deserialize, Serialize};

/// Names of the features, in order.
pub const FEATURES: [&str; NF] = [
    "score_r1",
    "score_r2",
    "score_r4",
    "score_r8",
    "logit_score_r1",
    "logit_score_r2",
    "logit_score_r4",
    "logit_score_r8",
    "cva_mag",
    "cva_mag_r1",
    "cva_mag_r3",
    "cva_mag_r6",
    "ndvi_before",
    "ndvi_after",
    "ndvi_dz",
    "ndvi_dz_r1",
    "ndvi_dz_r4",
    "ndbi_before",
    "ndbi_after",
    "ndbi_dz",
    "ndbi_dz_r1",
    "ndbi_dz_r4",
    "bsi_before",
    "bsi_after",
    "bsi_dz",
    "bsi_dz_r1",
    "bsi_dz_r4",
    "mndwi_before",
    "mndwi_after",
    "mndwi_dz",
    "mndwi_dz_r1",
    "mndwi_dz_r4",
    "brightness_before",
    "brightness_after",
    "brightness_dz",
    "brightness_dz_r1",
    "brightness_dz_r4",
    "texture_before",
    "texture_after",
    "texture_change",
    "texture_change_r2",
];
/// Number of features.
pub const NF: usize = 41;
/// The largest window radius of the features: a block needs this much
/// context on every side, plus the combined score's own misregistration
/// search (see `score::Model::halo`).
pub const WINDOW_RADIUS: usize = 8;
/// Format tag of model files.
pub const FORMAT: &str = "dunewatch-learned/1";
/// Features are clipped to this magnitude before standardisation.
const CLIP: f32 = 20.0;

/// The model shipped with dunewatch (see its `provenance`).
pub const DEFAULT_MODEL_JSON: &str = include_str!("../../models/oscd_v1.json");

/// Scene-wide medians and robust spreads of the index changes (after minus
/// before), fitted on the pass-1 sample.
#[derive(Debug, Clone, Serialize)]
pub struct IndexStats {
    pub median: [f64; 5],
    pub scale: [f64; 5],
}

fn index_values(i: &Indices) -> [f32; 5] {
    [i.ndvi, i.ndbi, i.bsi, i.mndwi, i.brightness]
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mid = v.len() / 2;
    *v.select_nth_unstable_by(mid, |a, b| a.total_cmp(b)).1
}

impl IndexStats {
    pub fn fit(s: &Sample) -> IndexStats {
        let d: Vec<[f32; 5]> = (0..s.len())
            .map(|i| {
                let (b, a) = (
                    index_values(&Indices::of(s.x(i))),
                    index_values(&Indices::of(s.y(i))),
                );
                std::array::from_fn(|k| a[k] - b[k])
            })
            .collect();
        let mut med = [0.0; 5];
        let mut scale = [0.0; 5];
        for k in 0..5 {
            let mut v: Vec<f64> = d.iter().map(|r| r[k] as f64).collect();
            let m = median(&mut v);
            v.iter_mut().for_each(|x| *x = (*x - m).abs());
            med[k] = m;
            scale[k] = (median(&mut v) * 1.4826).max(1e-4);
        }
        IndexStats { median: med, scale }
    }
}

/// Where a model came from: what it was trained on, under which licence.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Provenance {
    /// Names of the labelled pairs trained on.
    pub trained_on: Vec<String>,
    /// Pairs left out on purpose (for leave-one-out figures).
    #[serde(default)]
    pub excluded: Vec<String>,
    pub labels: String,
    pub licence: String,
    pub citation: String,
    /// The command that made the model.
    pub command: String,
    pub tool_version: String,
    /// Training pixels used (after subsampling negatives).
    pub positives: u64,
    pub negatives: u64,
    /// How the probability cut was chosen, and the F1 it gave there.
    pub threshold_selection: String,
    pub selection_f1: f64,
}

/// A trained logistic regression over [`FEATURES`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LearnedModel {
    pub format: String,
    pub kind: String,
    pub features: Vec<String>,
    /// Standardisation: z = (clip(f) - mean) / scale.
    pub mean: Vec<f64>,
    pub scale: Vec<f64>,
    pub coef: Vec<f64>,
    pub intercept: f64,
    /// The probability cut chosen at training; scores are shifted so it
    /// falls at 0.5.
    pub probability_threshold: f64,
    pub provenance: Provenance,
}

/// The learned method's model files, as their errors say.
const FILE: super::model_file::Kind = super::model_file::Kind {
    format: FORMAT,
    name: "dunewatch model",
    reader: "this dunewatch",
};

impl LearnedModel {
    /// Parses and checks a model file's contents.
    pub fn from_json(s: &str, what: &str) -> Result<LearnedModel> {
        super::model_file::parse(s, what, &FILE, |m: &LearnedModel| {
            super::model_file::check_lengths(
                what,
                "weight",
                &[m.mean.len(), m.scale.len(), m.coef.len()],
            )
        })
    }

    /// Reads a model file.
    pub fn load(path: &std::path::Path) -> Result<LearnedModel> {
        super::model_file::load(path, Self::from_json)
    }

    /// The shipped model.
    pub fn shipped() -> LearnedModel {
        Self::from_json(DEFAULT_MODEL_JSON, "models/oscd_v1.json")
            .expect("the shipped model parses")
    }

    /// The linear predictor (log-odds) of one feature vector.
    pub fn logit(&self, f: &[f32; NF]) -> f64 {
        let mut z = self.intercept;
        for (k, &f) in f.iter().enumerate() {
            z += self.coef[k] * (clip(f) as f64 - self.mean[k]) / self.scale[k];
        }
        z
    }

    /// The score in [0, 1]: the probability, shifted so the chosen cut is 0.5.
    pub fn score(&self, f: &[f32; NF]) -> f32 {
        let t = self.probability_threshold;
        sigmoid(self.logit(f) - (t / (1.0 - t)).ln()) as f32
    }
}

/// A feature as standardisation takes it: NaN as 0, clipped to [`CLIP`].
#[inline]
pub(crate) fn clip(v: f32) -> f32 {
    if v.is_nan() {
        0.0
    } else {
        v.clamp(-CLIP, CLIP)
    }
}

#[inline]
pub fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Scene statistics for the features, and the weights when scoring.
#[derive(Debug, Clone, Serialize)]
pub struct Learned {
    pub index_stats: IndexStats,
    /// None while training (features only).
    pub weights: Option<LearnedModel>,
}

/// Means over (2r+1)^2 windows of the values where `valid`, clipped to the
/// window `rw` x `rh`; invalid pixels get 0. Sums are taken directly (rows,
/// then columns) in a fixed order, never from a running table, so a pixel's
/// mean is bit-identical whatever block it is computed in.
///
/// Invalid and outside pixels enter as +0.0, which leaves a sum unchanged
/// (a sum of finite values is never -0.0), so the loops need no branches and
/// run over whole rows: each window offset is one vectorised pass.
pub fn box_mean(v: &[f32], valid: &[bool], rw: usize, rh: usize, r: usize) -> Vec<f32> {
    box_mean_counted(v, valid, &box_counts(valid, rw, rh, r), rw, rh, r)
}

/// Compared pixels in every (2r+1)^2 window: the same for every feature
/// of a block, so counted once per radius.
pub fn box_counts(valid: &[bool], rw: usize, rh: usize, r: usize) -> Vec<u32> {
    let mut cm = vec![0u32; rw + 2 * r];
    let mut hn = vec![0u32; (rh + 2 * r) * rw];
    for y in 0..rh {
        for x in 0..rw {
            cm[r + x] = valid[y * rw + x] as u32;
        }
        let c = &mut hn[(y + r) * rw..(y + r + 1) * rw];
        for k in 0..=2 * r {
            for (o, &a) in c.iter_mut().zip(&cm[k..k + rw]) {
                *o += a;
            }
        }
    }
    let mut out = vec![0u32; rw * rh];
    for y in 0..rh {
        let c = &mut out[y * rw..(y + 1) * rw];
        for yy in y..=y + 2 * r {
            for (o, &a) in c.iter_mut().zip(&hn[yy * rw..(yy + 1) * rw]) {
                *o += a;
            }
        }
    }
    out
}

/// [`box_mean`] with the window counts of [`box_counts`] for radius `r`.
pub fn box_mean_counted(
    v: &[f32],
    valid: &[bool],
    counts: &[u32],
    rw: usize,
    rh: usize,
    r: usize,
) -> Vec<f32> {
    let mut out = vec![0.0f32; rw * rh];
    box_mean_into(
        v,
        valid,
        counts,
        rw,
        rh,
        r,
        &mut BoxScratch::default(),
        &mut out,
    );
    out
}

fn logit_of(p: f32) -> f32 {
    let p = p.clamp(1e-3, 1.0 - 1e-3);
    (p / (1.0 - p)).ln()
}

/// Features of every pixel of a read window as planes, from the window's
/// raw `combined` score (see `score::Model::learned_planes`), the
/// scene's CVA fit and its index statistics. `buf` is storage to reuse
/// for the planes (any contents).
pub fn window_planes(
    raw: &[f32],
    cva: &Cva,
    stats: &IndexStats,
    px: &Pixels,
    rw: usize,
    rh: usize,
    buf: Vec<f32>,
) -> Features {
    let n = px.len();
    let valid: Vec<bool> = px.mask.iter().map(|m| *m == MaskReason::Valid).collect();
    let raw: Vec<f32> = raw
        .iter()
        .map(|v| if v.is_nan() { 0.0 } else { *v })
        .collect();
    // Every value of every plane is written below, so a reused buffer
    // needs no clearing.
    let mut planes = buf;
    planes.resize(NF * n, 0.0);
    let mut br = [vec![0.0f32; n], vec![0.0f32; n]];
    let mut br2 = [vec![0.0f32; n], vec![0.0f32; n]];
    // The scene's constants of the index changes, hoisted.
    let (med, scale) = (stats.median, stats.scale);
    for i in 0..n {
        if !valid[i] {
            planes[8 * n + i] = 0.0;
            for k in 12..37 {
                planes[k * n + i] = 0.0;
            }
            continue;
        }
        let (x, y) = (&px.x(i), &px.y(i));
        planes[8 * n + i] = ((cva.magnitude2(x, y)).ln_1p()) as f32;
        let (b, a) = (index_values(&Indices::of(x)), index_values(&Indices::of(y)));
        for k in 0..5 {
            planes[(14 + 5 * k) * n + i] = ((((a[k] - b[k]) as f64) - med[k]) / scale[k]) as f32;
            planes[(12 + 5 * k) * n + i] = b[k];
            planes[(13 + 5 * k) * n + i] = a[k];
        }
        br[0][i] = b[4];
        br[1][i] = a[4];
        br2[0][i] = b[4] * b[4];
        br2[1][i] = a[4] * a[4];
    }
    // Window counts of the radii below, shared by every feature.
    let counts: Vec<Option<Vec<u32>>> = (0..=8)
        .map(|r| {
            [1, 2, 3, 4, 6, 8]
                .contains(&r)
                .then(|| box_counts(&valid, rw, rh, r))
        })
        .collect();
    let mut scratch = BoxScratch::default();
    let mut mean_into = |v: &[f32], r: usize, out: &mut [f32]| {
        let c = counts[r].as_deref().expect("a radius counted above");
        box_mean_into(v, &valid, c, rw, rh, r, &mut scratch, out);
    };
    for (j, r) in [1, 2, 4, 8].into_iter().enumerate() {
        mean_into(&raw, r, plane(&mut planes, n, j));
    }
    {
        let (sc, lg) = planes.split_at_mut(4 * n);
        for ((s, l), ok) in sc.iter().zip(&mut lg[..4 * n]).zip(valid.iter().cycle()) {
            *l = if *ok { logit_of(*s) } else { 0.0 };
        }
    }
    {
        let (lo, hi) = planes.split_at_mut(9 * n);
        let mag = &lo[8 * n..];
        for (j, r) in [1, 3, 6].into_iter().enumerate() {
            mean_into(mag, r, plane(hi, n, j));
        }
    }
    for k in 0..5 {
        let (lo, hi) = planes.split_at_mut((15 + 5 * k) * n);
        let d = &lo[(14 + 5 * k) * n..];
        mean_into(d, 1, plane(hi, n, 0));
        mean_into(d, 4, plane(hi, n, 1));
    }
    let mut m = vec![0.0f32; n];
    let mut m2 = vec![0.0f32; n];
    for d in 0..2 {
        mean_into(&br[d], 1, &mut m);
        mean_into(&br2[d], 1, &mut m2);
        let tex = plane(&mut planes, n, 37 + d);
        for i in 0..n {
            tex[i] = if valid[i] {
                let sd = (m2[i] - m[i] * m[i]).max(0.0).sqrt();
                sd / m[i].max(1e-3)
            } else {
                0.0
            };
        }
    }
    {
        let (tex, rest) = planes[37 * n..].split_at_mut(2 * n);
        let (dtex, dtex2) = rest.split_at_mut(n);
        for ((o, &a), &b) in dtex.iter_mut().zip(&tex[n..]).zip(&tex[..n]) {
            *o = a - b;
        }
        mean_into(dtex, 2, dtex2);
    }
    Features {
        w: rw,
        h: rh,
        valid,
        planes,
    }
}

/// Learned scores of the `block` part of a read window, from the features
/// of the whole read window. Each pixel's log-odds are summed in feature
/// order, as [`LearnedModel::logit`] does, a row of pixels at a time (so
/// the passes vectorise).
pub fn score_block(
    weights: &LearnedModel,
    feats: &Features,
    read: Window,
    block: Window,
) -> Vec<Option<f32>> {
    let (ox, oy) = (block.x - read.x, block.y - read.y);
    let t = weights.probability_threshold;
    let shift = (t / (1.0 - t)).ln();
    let mut out = Vec::with_capacity(block.len());
    let mut z = vec![0.0f64; block.w];
    for r in 0..block.h {
        let at = (oy + r) * read.w + ox;
        z.fill(weights.intercept);
        for k in 0..NF {
            let (c, m, s) = (weights.coef[k], weights.mean[k], weights.scale[k]);
            for (z, &f) in z.iter_mut().zip(&feats.plane(k)[at..at + block.w]) {
                *z += c * (clip(f) as f64 - m) / s;
            }
        }
        out.extend(
            z.iter()
                .zip(&feats.valid[at..at + block.w])
                .map(|(&z, &ok)| ok.then(|| sigmoid(z - shift) as f32)),
        );
    }
    out
}

/// The features of every pixel of a read window, one plane per feature
/// (`planes[k * n + i]` is feature `k` of pixel `i`), with the pixels that
/// have features (`valid`; the planes hold 0 elsewhere). Planes keep the
/// passes over a window vectorised and its memory one block of floats.
#[derive(Debug, Clone)]
pub struct Features {
    pub w: usize,
    pub h: usize,
    pub valid: Vec<bool>,
    pub planes: Vec<f32>,
}

impl Features {
    /// Pixels of the window.
    pub fn len(&self) -> usize {
        self.w * self.h
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Feature `k` of every pixel.
    pub fn plane(&self, k: usize) -> &[f32] {
        let n = self.len();
        &self.planes[k * n..(k + 1) * n]
    }

    /// The features of pixel `i` (`None` where it has none).
    pub fn get(&self, i: usize) -> Option<[f32; NF]> {
        let n = self.len();
        self.valid[i].then(|| std::array::from_fn(|k| self.planes[k * n + i]))
    }

    /// Planes of per-pixel feature vectors (`None`: no features).
    pub fn from_rows(w: usize, h: usize, rows: &[Option<[f32; NF]>]) -> Features {
        let n = w * h;
        let mut planes = vec![0.0f32; NF * n];
        for (i, f) in rows.iter().enumerate().take(n) {
            if let Some(f) = f {
                for k in 0..NF {
                    planes[k * n + i] = f[k];
                }
            }
        }
        Features {
            w,
            h,
            valid: rows.iter().take(n).map(Option::is_some).collect(),
            planes,
        }
    }
}

/// Plane `k` of `n`-pixel feature planes.
fn plane(planes: &mut [f32], n: usize, k: usize) -> &mut [f32] {
    &mut planes[k * n..(k + 1) * n]
}

/// Buffers [`box_mean_into`] reuses from one mean to the next.
#[derive(Default)]
struct BoxScratch {
    vm: Vec<f64>,
    hs: Vec<f64>,
    s: Vec<f64>,
}

/// [`box_mean_counted`] into `out`, with reused buffers.
#[allow(clippy::too_many_arguments)]
fn box_mean_into(
    v: &[f32],
    valid: &[bool],
    counts: &[u32],
    rw: usize,
    rh: usize,
    r: usize,
    sc: &mut BoxScratch,
    out: &mut [f32],
) {
    let pw = rw + 2 * r;
    // Rows padded by r zeros on each side.
    let vm = &mut sc.vm;
    vm.clear();
    vm.resize(pw, 0.0);
    // Row sums, padded by r zero rows above and below.
    let hs = &mut sc.hs;
    hs.clear();
    hs.resize((rh + 2 * r) * rw, 0.0);
    for y in 0..rh {
        let row = y * rw..(y + 1) * rw;
        for ((m, &x), &ok) in vm[r..r + rw]
            .iter_mut()
            .zip(&v[row.clone()])
            .zip(&valid[row])
        {
            *m = if ok { x as f64 } else { 0.0 };
        }
        let s = &mut hs[(y + r) * rw..(y + r + 1) * rw];
        for k in 0..=2 * r {
            for (o, &a) in s.iter_mut().zip(&vm[k..k + rw]) {
                *o += a;
            }
        }
    }
    let s = &mut sc.s;
    s.clear();
    s.resize(rw, 0.0);
    for y in 0..rh {
        s.fill(0.0);
        for yy in y..=y + 2 * r {
            for (o, &a) in s.iter_mut().zip(&hs[yy * rw..(yy + 1) * rw]) {
                *o += a;
            }
        }
        let row = y * rw..(y + 1) * rw;
        for (((o, &ok), &s), &c) in out[row.clone()]
            .iter_mut()
            .zip(&valid[row.clone()])
            .zip(s.iter())
            .zip(&counts[row])
        {
            *o = if ok {
                (s / c.max(1) as f64) as f32
            } else {
                0.0
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_mean_skips_invalid_pixels_and_clips_at_edges() {
        let v = [1.0, 2.0, 3.0, 4.0, 100.0, 6.0];
        let valid = [true, true, true, true, false, true];
        let m = box_mean(&v, &valid, 3, 2, 1);
        // (0,0): window 2x2 = 1, 2, 4 (5th invalid)
        assert!((m[0] - 7.0 / 3.0).abs() < 1e-6);
        assert_eq!(m[4], 0.0, "invalid pixel");
        // (2,1): 2, 3, 6
        assert!((m[5] - 11.0 / 3.0).abs() < 1e-6);
        let m0 = box_mean(&v, &valid, 3, 2, 0);
        assert_eq!(m0[3], 4.0);
    }

    /// The definition, pixel by pixel (the implementation above must give
    /// the same bits).
    fn box_mean_reference(v: &[f32], valid: &[bool], rw: usize, rh: usize, r: usize) -> Vec<f32> {
        let mut out = vec![0.0f32; rw * rh];
        for y in 0..rh {
            for x in 0..rw {
                if !valid[y * rw + x] {
                    continue;
                }
                let (mut s, mut c) = (0.0f64, 0u32);
                for yy in y.saturating_sub(r)..(y + r + 1).min(rh) {
                    let mut hs = 0.0f64;
                    for xx in x.saturating_sub(r)..(x + r + 1).min(rw) {
                        if valid[yy * rw + xx] {
                            hs += v[yy * rw + xx] as f64;
                            c += 1;
                        }
                    }
                    s += hs;
                }
                out[y * rw + x] = (s / c.max(1) as f64) as f32;
            }
        }
        out
    }

    #[test]
    fn box_mean_gives_the_bits_of_its_definition() {
        let (rw, rh) = (37, 23);
        // Values of both signs and magnitudes, about a fifth invalid.
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u32
        };
        let v: Vec<f32> = (0..rw * rh)
            .map(|_| (next() as f32 / u32::MAX as f32 - 0.3) * 10f32.powi((next() % 5) as i32 - 2))
            .collect();
        let valid: Vec<bool> = (0..rw * rh).map(|_| next() % 5 != 0).collect();
        for r in [0, 1, 2, 4, 8, 20] {
            let got = box_mean(&v, &valid, rw, rh, r);
            let want = box_mean_reference(&v, &valid, rw, rh, r);
            assert!(
                got.iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "radius {r}"
            );
        }
    }

    #[test]
    fn feature_names_match_count() {
        assert_eq!(FEATURES.len(), NF);
        let mut s: Vec<&str> = FEATURES.to_vec();
        s.sort();
        s.dedup();
        assert_eq!(s.len(), NF, "unique names");
    }

    #[test]
    fn shipped_model_parses_with_provenance() {
        let m = LearnedModel::shipped();
        assert!(!m.provenance.trained_on.is_empty());
        assert!(m.provenance.licence.contains("CC BY-NC-SA"));
        assert!(m.provenance.citation.contains("Daudt"));
    }

    #[test]
    fn score_is_half_at_the_chosen_threshold() {
        let mut m = LearnedModel::shipped();
        m.coef = vec![0.0; NF];
        m.intercept = (0.3f64 / 0.7).ln();
        m.probability_threshold = 0.3;
        assert!((m.score(&[0.0; NF]) - 0.5).abs() < 1e-6);
        let bad = serde_json::to_string(&LearnedModel {
            format: "other".into(),
            ..m.clone()
        })
        .unwrap();
        assert!(LearnedModel::from_json(&bad, "x").is_err());
    }
}
