//! The "new structure" score in [0, 1] and the single-measure scores that
//! `--method` selects for comparison.
//!
//! The combined score asks two things of a pixel: did it change beyond what
//! the scene-wide radiometric relation between the dates explains (IR-MAD and
//! robust CVA must agree), and does the change look like ground being built
//! on rather than vegetation growing, a field's season, or water? Spatial
//! context (a 3x3 mean over compared pixels) then favours coherent patches
//! over single-pixel noise and edge misregistration.

use super::chi2::{chi2_cdf, chi2_cdf_even};
use super::clouds::CloudStats;
use super::cnn::CnnModel;
use super::cva::Cva;
use super::indices::Indices;
use super::irmad::IrMad;
use super::learned::{IndexStats, Learned, LearnedModel};
use super::masks::MaskReason;
use super::pixels::Pixels;
use super::sample::Sample;
use crate::align::Window;
use crate::error::{Error, Result};
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// Which measure becomes the score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// IR-MAD and CVA change evidence, weighed by index evidence of new
    /// built-up ground, with spatial context (default).
    Combined,
    /// Change vector analysis: chi-square CDF of standardised differences.
    Cva,
    /// IR-MAD: 1 - no-change probability.
    Irmad,
    /// Spectral index change only (built-up / bare up, vegetation and water down-weighted).
    Indices,
    /// Logistic regression over context features, trained on labelled pairs
    /// (`dunewatch train`; see detect/learned.rs).
    Learned,
    /// A small fully convolutional network over the learned method's
    /// features (`dunewatch train --arch`; see detect/cnn.rs).
    Cnn,
}

impl FromStr for Method {
    type Err = Error;
    fn from_str(s: &str) -> Result<Method> {
        match s.to_ascii_lowercase().as_str() {
            "combined" => Ok(Method::Combined),
            "cva" => Ok(Method::Cva),
            "irmad" | "ir-mad" => Ok(Method::Irmad),
            "indices" => Ok(Method::Indices),
            "learned" => Ok(Method::Learned),
            "cnn" => Ok(Method::Cnn),
            _ => Err(Error::usage(format!(
                "unknown method '{s}' (combined, cva, irmad, indices, learned, cnn)"
            ))),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Method::Combined => "combined",
            Method::Cva => "cva",
            Method::Irmad => "irmad",
            Method::Indices => "indices",
            Method::Learned => "learned",
            Method::Cnn => "cnn",
        })
    }
}

thread_local! {
    /// The feature planes of the learned and cnn methods, kept by each
    /// thread from one block to the next: a fresh allocation of their size
    /// (41 floats a pixel) is mapped and zeroed by the kernel page by page,
    /// which cost more than computing some of the features.
    static PLANES: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Frees the calling thread's kept feature planes: for the end of a score
/// pass, before the stages that need the memory.
pub fn release_planes() {
    drop(PLANES.take());
}

/// Misregistration tolerance, in pixels.
pub const SHIFT: usize = 1;
/// Radius of the spatial mean.
pub const SMOOTH: usize = 1;
/// Pixels of context each block needs on every side.
pub const HALO: usize = SHIFT + SMOOTH;

/// Smooth step from 0 at `a` to 1 at `b`.
#[inline]
fn step(a: f32, b: f32, v: f32) -> f32 {
    let t = ((v - a) / (b - a)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// Scene-wide fitted parameters and the scoring rule.
#[derive(Debug, Clone, Serialize)]
pub struct Model {
    pub method: Method,
    pub irmad: Option<IrMad>,
    pub cva: Cva,
    /// Scale factors that put the sample's median chi-square statistic at
    /// the chi-square median: the dates differ everywhere a little (season,
    /// sun, haze), and significance must be judged against that.
    pub irmad_calibration: f64,
    pub cva_calibration: f64,
    /// Scene-wide change the multi-temporal cloud test discounts.
    pub clouds: CloudStats,
    /// Index statistics and weights of the learned method.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub learned: Option<Learned>,
    /// The network of the cnn method (its architecture, cut and
    /// provenance are recorded; the weights are in its model file).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "cnn_summary"
    )]
    pub cnn: Option<CnnModel>,
}

/// run.json's record of a CNN model: everything but the weights.
fn cnn_summary<S: serde::Serializer>(
    m: &Option<CnnModel>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct;
    let Some(m) = m else {
        return s.serialize_none();
    };
    let mut st = s.serialize_struct("CnnModel", 7)?;
    st.serialize_field("format", &m.format)?;
    st.serialize_field("arch_name", &m.arch_name)?;
    st.serialize_field("arch", &m.arch)?;
    st.serialize_field("parameters", &m.params.len())?;
    st.serialize_field("probability_threshold", &m.probability_threshold)?;
    st.serialize_field("training", &m.training)?;
    st.serialize_field("provenance", &m.provenance)?;
    st.end()
}

fn median_of(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 1.0;
    }
    let mid = v.len() / 2;
    *v.select_nth_unstable_by(mid, |a, b| a.total_cmp(b)).1
}

/// Median of chi-square with p degrees of freedom (Wilson-Hilferty).
fn chi2_median(p: usize) -> f64 {
    let k = p as f64;
    k * (1.0 - 2.0 / (9.0 * k)).powi(3)
}

impl Method {
    /// The default cut on this method's score: the combined and IR-MAD
    /// scores are calibrated change probabilities, so a significance level;
    /// CVA and the indices use Otsu, as in the literature they reproduce.
    pub fn default_threshold(self) -> Option<f32> {
        match self {
            Method::Combined => Some(COMBINED_SIGNIFICANCE),
            Method::Irmad => Some(IRMAD_SIGNIFICANCE),
            // The learned score is shifted so the trained cut sits at 0.5.
            Method::Learned | Method::Cnn => Some(0.5),
            _ => None,
        }
    }
}

/// Default cut on the combined score (mean calibrated change probability
/// over the 3x3 neighbourhood).
pub const COMBINED_SIGNIFICANCE: f32 = 0.9;

/// Default cut on the IR-MAD score: its calibrated chi-square change
/// probability, judged at the 1 % level as IR-MAD's chi-square test is.
pub const IRMAD_SIGNIFICANCE: f32 = 0.99;

impl Model {
    /// Fits the scene statistics; the learned method gets the shipped model.
    pub fn fit(sample: &Sample, method: Method) -> Result<Model> {
        Self::fit_with(sample, method, None)
    }

    /// As [`Model::fit`], with the learned method's weights given (None:
    /// the shipped model).
    pub fn fit_with(
        sample: &Sample,
        method: Method,
        weights: Option<&LearnedModel>,
    ) -> Result<Model> {
        Self::fit_with_models(sample, method, weights, None)
    }

    /// As [`Model::fit_with`], with the cnn method's network given too
    /// (None: the shipped one).
    pub fn fit_with_models(
        sample: &Sample,
        method: Method,
        weights: Option<&LearnedModel>,
        network: Option<&CnnModel>,
    ) -> Result<Model> {
        let mut m = Self::fit_stats(sample, method)?;
        if method == Method::Learned {
            if let Some(l) = &mut m.learned {
                l.weights = Some(weights.cloned().unwrap_or_else(LearnedModel::shipped));
            }
        }
        if method == Method::Cnn {
            m.cnn = Some(network.cloned().unwrap_or_else(CnnModel::shipped));
        }
        Ok(m)
    }

    /// Pixels of context a block needs on every side.
    pub fn halo(&self) -> usize {
        match self.method {
            Method::Learned => super::learned::WINDOW_RADIUS + SHIFT,
            Method::Cnn => super::cnn::HALO,
            _ => HALO,
        }
    }

    /// Scene statistics only (the learned method without weights: training).
    pub fn fit_stats(sample: &Sample, method: Method) -> Result<Model> {
        if sample.len() < super::MIN_SAMPLE {
            return Err(Error::invalid(format!(
                "only {} comparable pixels: too few to fit the change statistics (is nearly everything masked?)",
                sample.len()
            )));
        }
        let cva = Cva::fit(sample);
        let irmad = match method {
            Method::Combined | Method::Irmad | Method::Learned | Method::Cnn => Some(
                IrMad::fit(sample, 30).ok_or_else(|| Error::invalid("IR-MAD failed: the band covariances are singular (constant or duplicated bands?)"))?,
            ),
            _ => None,
        };
        let p = sample.p;
        let cva_calibration = chi2_median(p)
            / median_of(
                (0..sample.len())
                    .map(|i| cva.magnitude2(sample.x(i), sample.y(i)))
                    .collect(),
            )
            .max(1e-9);
        let irmad_calibration = match &irmad {
            Some(m) => {
                chi2_median(p)
                    / median_of(
                        (0..sample.len())
                            .map(|i| m.chi2_f32(sample.x(i), sample.y(i)))
                            .collect(),
                    )
                    .max(1e-9)
            }
            None => 1.0,
        };
        let learned = matches!(method, Method::Learned | Method::Cnn).then(|| Learned {
            index_stats: IndexStats::fit(sample),
            weights: None,
        });
        Ok(Model {
            method,
            irmad,
            cva,
            clouds: CloudStats::fit(sample),
            irmad_calibration,
            cva_calibration,
            learned,
            cnn: None,
        })
    }

    /// Score of one compared pixel, before spatial context.
    pub fn pixel_score(&self, x: &[f32], y: &[f32]) -> f32 {
        let p = x.len();
        match self.method {
            Method::Cva => chi2_cdf(self.cva.magnitude2(x, y), p) as f32,
            // Calibrated like the combined score's: the re-weighted fit's
            // no-change spread is so narrow that, raw, nearly every pixel of
            // a real scene tests as changed.
            Method::Irmad => self.irmad.as_ref().map_or(0.0, |m| {
                chi2_cdf(m.chi2_f32(x, y) * self.irmad_calibration, p) as f32
            }),
            Method::Indices => {
                let (b, a) = (Indices::of(x), Indices::of(y));
                let built = (a.bsi - b.bsi)
                    .max(a.ndbi - b.ndbi)
                    .max(b.ndvi - a.ndvi)
                    .max((a.brightness - b.brightness).abs());
                step(0.02, 0.2, built) * not_natural(&b, &a)
            }
            Method::Combined | Method::Learned | Method::Cnn => {
                let ci =
                    self.irmad.as_ref().map_or(0.0, |m| m.chi2_f32(x, y)) * self.irmad_calibration;
                let cc = self.cva.magnitude2(x, y) * self.cva_calibration;
                let change = (chi2_cdf(ci, p) * chi2_cdf(cc, p)).sqrt() as f32;
                change * not_natural(&Indices::of(x), &Indices::of(y))
            }
        }
    }

    /// Scores the `block` part of pixels read over `read` (the block plus
    /// halo, clipped to the grid). Masked pixels get `None`.
    pub fn score_block(&self, px: &Pixels, read: Window, block: Window) -> Vec<Option<f32>> {
        let (rw, rh) = (read.w, read.h);
        let (ox, oy) = (block.x - read.x, block.y - read.y);
        if self.method == Method::Learned {
            let weights = self
                .learned
                .as_ref()
                .and_then(|l| l.weights.as_ref())
                .expect("the learned method carries weights when scoring");
            let feats = self.learned_planes(px, read.w, read.h, PLANES.take());
            let out = super::learned::score_block(weights, &feats, read, block);
            PLANES.set(feats.planes);
            return out;
        }
        if self.method == Method::Cnn {
            let net = self
                .cnn
                .as_ref()
                .expect("the cnn method carries its network when scoring");
            let feats = self.learned_planes(px, read.w, read.h, PLANES.take());
            let out = net.score_block(&feats, read, block);
            PLANES.set(feats.planes);
            return out;
        }
        if self.method != Method::Combined {
            let mut out = Vec::with_capacity(block.len());
            for r in 0..block.h {
                for c in 0..block.w {
                    let i = (oy + r) * rw + ox + c;
                    out.push(
                        (px.mask[i] == MaskReason::Valid)
                            .then(|| self.pixel_score(&px.x(i), &px.y(i))),
                    );
                }
            }
            return out;
        }
        let raw = self.combined_raw(px, rw, rh);
        let sm = SMOOTH;
        let mut out = Vec::with_capacity(block.len());
        // Window sums taken a whole row at a time (so they vectorise), each
        // pixel's terms added in the same order as a per-pixel loop over its
        // window (rows, then columns): the same sums to the bit. A masked
        // (NaN) neighbour adds an exact zero and no count.
        let (mut sum, mut cnt) = (vec![0.0f32; block.w], vec![0u32; block.w]);
        for r in 0..block.h {
            let rr = oy + r;
            sum.fill(0.0);
            cnt.fill(0);
            for dr in rr.saturating_sub(sm)..=(rr + sm).min(rh - 1) {
                let row = &raw[dr * rw..(dr + 1) * rw];
                for d in 0..=2 * sm {
                    // Output columns whose neighbour at offset d - sm exists.
                    let c0 = sm.saturating_sub(d + ox).min(block.w);
                    let c1 = (rw + sm).saturating_sub(d + ox).min(block.w);
                    if c0 >= c1 {
                        continue;
                    }
                    let src = &row[ox + c0 + d - sm..ox + c1 + d - sm];
                    for ((s, n), &v) in sum[c0..c1].iter_mut().zip(&mut cnt[c0..c1]).zip(src) {
                        let ok = !v.is_nan();
                        *s += if ok { v } else { 0.0 };
                        *n += ok as u32;
                    }
                }
            }
            let centre = &raw[rr * rw + ox..rr * rw + ox + block.w];
            out.extend(
                centre
                    .iter()
                    .zip(sum.iter().zip(&cnt))
                    .map(|(v, (s, n))| (!v.is_nan()).then(|| s / *n as f32)),
            );
        }
        out
    }

    /// The learned method's features of every pixel of a read window
    /// (`None` where masked): the same code for training and detection.
    pub fn learned_features(
        &self,
        px: &Pixels,
        rw: usize,
        rh: usize,
    ) -> Vec<Option<[f32; super::learned::NF]>> {
        let f = self.learned_planes(px, rw, rh, Vec::new());
        (0..f.len()).map(|i| f.get(i)).collect()
    }

    /// The learned method's features of every pixel of a read window, as
    /// planes (what scoring reads), stored in `buf` (any contents).
    pub fn learned_planes(
        &self,
        px: &Pixels,
        rw: usize,
        rh: usize,
        buf: Vec<f32>,
    ) -> super::learned::Features {
        let stats = &self
            .learned
            .as_ref()
            .expect("the learned method fits index statistics")
            .index_stats;
        let raw = self.combined_raw(px, rw, rh);
        super::learned::window_planes(&raw, &self.cva, stats, px, rw, rh, buf)
    }

    /// Combined score of every compared pixel of a window before smoothing
    /// (NaN where masked). Change is measured against the best-matching
    /// pixel of the other date within `SHIFT` pixels, in both directions, so
    /// that sub-pixel to one-pixel misregistration between dates (common
    /// across MGRS tiles) does not paint every edge as change.
    pub(crate) fn combined_raw(&self, px: &Pixels, rw: usize, rh: usize) -> Vec<f32> {
        let n = px.len();
        let irmad = self.irmad.as_ref().expect("combined method fits IR-MAD");
        let proj = Projections::new(irmad, &self.cva);
        // Canonical variates (u before, v after) and standardised reflectance
        // (xs, ys), one plane per band, on a grid padded by SHIFT pixels.
        // Masked and padding pixels hold FAR, so any distance to them is
        // huge and never the minimum: the neighbourhood loops need no
        // branches and vectorise.
        const FAR: f32 = 1e15;
        let sh = SHIFT;
        let (pw, ph) = (rw + 2 * sh, rh + 2 * sh);
        let side = 2 * sh + 1;
        // The planes are kept for the `side` padded rows the match looks at
        // only (a ring, row p in slot p % side): whole-block planes were 24
        // times the block's pixels in floats, out of cache, and the loops
        // below waited on memory.
        let ring = || vec![FAR; side * pw];
        let mut u: [Vec<f32>; P] = std::array::from_fn(|_| ring());
        let mut v: [Vec<f32>; P] = std::array::from_fn(|_| ring());
        let mut xs: [Vec<f32>; P] = std::array::from_fn(|_| ring());
        let mut ys: [Vec<f32>; P] = std::array::from_fn(|_| ring());
        let valid: Vec<bool> = px.mask.iter().map(|m| *m == MaskReason::Valid).collect();
        // Padded row p of the planes, band-major so the loops vectorise.
        // Padding columns are FAR from the start and never written.
        let plane_row = |u: &mut [Vec<f32>; P],
                         v: &mut [Vec<f32>; P],
                         xs: &mut [Vec<f32>; P],
                         ys: &mut [Vec<f32>; P],
                         p: usize| {
            let slot = (p % side) * pw;
            let at = slot + sh..slot + sh + rw;
            let Some(r) = p.checked_sub(sh).filter(|r| *r < rh) else {
                for plane in u
                    .iter_mut()
                    .chain(v.iter_mut())
                    .chain(xs.iter_mut())
                    .chain(ys.iter_mut())
                {
                    plane[at.clone()].fill(FAR);
                }
                return;
            };
            let row = r * rw..(r + 1) * rw;
            let xt: [&[f32]; P] = std::array::from_fn(|k| &px.before[k][row.clone()]);
            let yt: [&[f32]; P] = std::array::from_fn(|k| &px.after[k][row.clone()]);
            for j in 0..P {
                proj.lin_row(&proj.wx[j], proj.cx[j], &xt, &mut u[j][at.clone()]);
                proj.lin_row(&proj.wy[j], proj.cy[j], &yt, &mut v[j][at.clone()]);
                let (inv, med) = (proj.inv_scale[j], proj.median_y[j]);
                for (o, &x) in xs[j][at.clone()].iter_mut().zip(xt[j]) {
                    *o = x * inv;
                }
                for (o, &y) in ys[j][at.clone()].iter_mut().zip(yt[j]) {
                    *o = (y - med) * inv;
                }
            }
            for (c, _) in valid[row].iter().enumerate().filter(|(_, v)| !**v) {
                for plane in u
                    .iter_mut()
                    .chain(v.iter_mut())
                    .chain(xs.iter_mut())
                    .chain(ys.iter_mut())
                {
                    plane[at.start + c] = FAR;
                }
            }
        };
        // The match's squared distances, each computed once: the distance
        // between u at pixel s and v at s + d serves pixel s + d's match
        // against u's neighbours (ab) and pixel s's against v's (ba), so a
        // row of distances per offset, kept for the 2 * SHIFT + 1 rows a
        // centre row looks at, gives both directions (half the work of two
        // passes; the same sums, so the same minima to the bit).
        let noff = side * side;
        let mut d2 = [
            vec![f32::MAX; side * noff * pw],
            vec![f32::MAX; side * noff * pw],
        ];
        // Distances of padded row pr of v against rows pr - sh ..= pr + sh
        // of u, which the ring then holds.
        let fill = |d2: &mut [Vec<f32>; 2],
                    u: &[Vec<f32>; P],
                    v: &[Vec<f32>; P],
                    xs: &[Vec<f32>; P],
                    ys: &[Vec<f32>; P],
                    pr: usize| {
            let slot = pr % side;
            for dr in 0..side {
                // Rows of u this offset reaches outside the padded grid
                // are never asked for.
                let Some(ur) = (pr + dr).checked_sub(sh).filter(|ur| *ur < ph) else {
                    continue;
                };
                for dc in 0..side {
                    let o = dr * side + dc;
                    let lo = sh.saturating_sub(dc);
                    let hi = pw - dc.saturating_sub(sh);
                    let at = (slot * noff + o) * pw;
                    let (ia, ib) = ((ur % side) * pw + lo + dc - sh, slot * pw + lo);
                    d2_row(u, v, ia, ib, hi - lo, &mut d2[0][at + lo..at + hi]);
                    d2_row(xs, ys, ia, ib, hi - lo, &mut d2[1][at + lo..at + hi]);
                }
            }
        };
        // Plane rows computed so far; row pr's distances need up to pr + sh.
        let mut planes_done = 0;
        let mut fill_row = |d2: &mut [Vec<f32>; 2], pr: usize| {
            while planes_done <= (pr + sh).min(ph - 1) {
                plane_row(&mut u, &mut v, &mut xs, &mut ys, planes_done);
                planes_done += 1;
            }
            fill(d2, &u, &v, &xs, &ys, pr);
        };
        for pr in 0..(2 * sh).min(ph) {
            fill_row(&mut d2, pr);
        }
        let mut raw = vec![f32::NAN; n];
        let mut mins = [
            vec![0.0f32; rw],
            vec![0.0f32; rw],
            vec![0.0f32; rw],
            vec![0.0f32; rw],
        ];
        let mut weight = vec![0.0f32; rw];
        let (mut p_irmad, mut p_cva) = (vec![0.0f64; rw], vec![0.0f64; rw]);
        for r in 0..rh {
            if r + 2 * sh < ph {
                fill_row(&mut d2, r + 2 * sh);
            }
            for m in mins.iter_mut() {
                m.fill(f32::MAX);
            }
            let pr = r + sh;
            for dr in 0..side {
                for dc in 0..side {
                    let o = dr * side + dc;
                    // ab: u at the centre's neighbour (pr, c) + (dr, dc) - sh
                    // against v at the centre, stored at the centre.
                    let at = ((pr % side) * noff + o) * pw + sh;
                    // ba: u at the centre against v at its neighbour, stored
                    // at the neighbour under the opposite offset.
                    let opp = (side - 1 - dr) * side + (side - 1 - dc);
                    let bt = (((pr + dr - sh) % side) * noff + opp) * pw + sh + dc - sh;
                    let [ci_ab, ci_ba, cc_ab, cc_ba] = &mut mins;
                    min_into(ci_ab, &d2[0][at..at + rw]);
                    min_into(ci_ba, &d2[0][bt..bt + rw]);
                    min_into(cc_ab, &d2[1][at..at + rw]);
                    min_into(cc_ba, &d2[1][bt..bt + rw]);
                }
            }
            // The index weights of the whole row first: branch-free, so it
            // vectorises (the chi-square CDFs below stay scalar).
            let row = r * rw..(r + 1) * rw;
            let xb: [&[f32]; P] = std::array::from_fn(|k| &px.before[k][row.clone()]);
            let yb: [&[f32]; P] = std::array::from_fn(|k| &px.after[k][row.clone()]);
            for (c, w) in weight.iter_mut().enumerate() {
                let x: [f32; P] = std::array::from_fn(|k| xb[k][c]);
                let y: [f32; P] = std::array::from_fn(|k| yb[k][c]);
                *w = not_natural(&Indices::of(&x), &Indices::of(&y));
            }
            // Every pixel of the row, branch-free (the CDFs are in [0, 1],
            // so a natural change's zero weight gives 0 whatever they are),
            // then NaN where the pixel is masked.
            let out = &mut raw[row.clone()];
            let (ci_ab, ci_ba, cc_ab, cc_ba) = (&mins[0], &mins[1], &mins[2], &mins[3]);
            // One CDF per loop: with both in one loop the compiler paired
            // the two into one register and left the loop scalar.
            cdf_row(ci_ab, ci_ba, self.irmad_calibration, &mut p_irmad);
            cdf_row(cc_ab, cc_ba, self.cva_calibration, &mut p_cva);
            for (((o, &pi), &pc), &w) in out.iter_mut().zip(&p_irmad).zip(&p_cva).zip(&weight) {
                *o = (pi * pc).sqrt() as f32 * w;
            }
            for (o, &v) in out.iter_mut().zip(&valid[row]) {
                if !v {
                    *o = f32::NAN;
                }
            }
        }
        raw
    }
}

/// `out[c] = |a[.][ia + c] - b[.][ib + c]|^2` (summed in band order) for a
/// row of `len` pixels: one neighbour offset of the misregistration-tolerant
/// match.
#[inline]
fn d2_row(a: &[Vec<f32>; P], b: &[Vec<f32>; P], ia: usize, ib: usize, len: usize, out: &mut [f32]) {
    let a: [&[f32]; P] = std::array::from_fn(|k| &a[k][ia..ia + len]);
    let b: [&[f32]; P] = std::array::from_fn(|k| &b[k][ib..ib + len]);
    let out = &mut out[..len];
    for c in 0..len {
        let mut s = 0.0f32;
        for k in 0..P {
            let d = a[k][c] - b[k][c];
            s += d * d;
        }
        out[c] = s;
    }
}

/// `out[c]` = the chi-square CDF (P degrees of freedom) of the larger of
/// `ab[c]` and `ba[c]` times `calibration`.
#[inline]
fn cdf_row(ab: &[f32], ba: &[f32], calibration: f64, out: &mut [f64]) {
    for ((o, &a), &b) in out.iter_mut().zip(ab).zip(ba) {
        *o = chi2_cdf_even(a.max(b) as f64 * calibration, P);
    }
}

/// `out[c] = min(out[c], v[c])`.
#[inline]
fn min_into(out: &mut [f32], v: &[f32]) {
    for (o, &x) in out.iter_mut().zip(v) {
        *o = o.min(x);
    }
}

/// Bands compared.
const P: usize = super::STAT_BANDS.len();

/// The fitted per-pixel transforms of the combined score in single
/// precision: IR-MAD canonical variates scaled by the MAD standard
/// deviations (so their squared difference is the chi-square statistic) and
/// CVA's robust standardisation.
struct Projections {
    wx: [[f32; P]; P],
    cx: [f32; P],
    wy: [[f32; P]; P],
    cy: [f32; P],
    inv_scale: [f32; P],
    median_y: [f32; P],
}

impl Projections {
    fn new(m: &IrMad, cva: &Cva) -> Projections {
        let mut p = Projections {
            wx: [[0.0; P]; P],
            cx: [0.0; P],
            wy: [[0.0; P]; P],
            cy: [0.0; P],
            inv_scale: [0.0; P],
            median_y: [0.0; P],
        };
        for j in 0..P {
            let (mut ox, mut oy) = (0.0f64, 0.0f64);
            for k in 0..P {
                let a = m.a.get(k, j) / m.sigma[j];
                let b = m.b.get(k, j) / m.sigma[j];
                p.wx[j][k] = a as f32;
                p.wy[j][k] = b as f32;
                ox += a * m.mean_x[k];
                oy += b * m.mean_y[k];
            }
            p.cx[j] = -ox as f32;
            p.cy[j] = -oy as f32;
            p.inv_scale[j] = (1.0 / cva.scale[j]) as f32;
            p.median_y[j] = cva.median[j] as f32;
        }
        p
    }

    /// `out[c] = c0 + sum_k w[k] * x[k][c]` over a row (summed in band order).
    #[inline]
    fn lin_row(&self, w: &[f32; P], c0: f32, x: &[&[f32]; P], out: &mut [f32]) {
        // Pixel by pixel, the bands summed in a register and stored once
        // (the same sums, in band order).
        let n = out.len();
        let x: [&[f32]; P] = std::array::from_fn(|k| &x[k][..n]);
        for (c, o) in out.iter_mut().enumerate() {
            let mut s = c0;
            for k in 0..P {
                s += w[k] * x[k][c];
            }
            *o = s;
        }
    }
}

/// Down-weights changes that are natural: vegetation appearing, land staying
/// vegetated through a season, fields harvested or ploughed, and water
/// (after) — 1 means no objection.
fn not_natural(b: &Indices, a: &Indices) -> f32 {
    let veg_gain = step(0.05, 0.25, a.ndvi - b.ndvi);
    let stays_vegetated = step(0.3, 0.5, a.ndvi.min(b.ndvi));
    let water_after = step(-0.05, 0.2, a.mndwi);
    // Vegetation gone, but what replaced it is soil (residual NDVI of stubble
    // and bare fields, or a high bare-soil index) rather than an impervious
    // surface (NDVI under ~0.13): harvest or ploughing, not construction.
    let harvest = step(0.25, 0.4, b.ndvi) * step(0.13, 0.19, a.ndvi).max(step(0.13, 0.19, a.bsi));
    (1.0 - veg_gain) * (1.0 - stays_vegetated) * (1.0 - water_after) * (1.0 - harvest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_changes_are_down_weighted_construction_is_not() {
        let field = Indices::of(&[0.03, 0.06, 0.04, 0.40, 0.20, 0.10]);
        let ploughed = Indices::of(&[0.10, 0.13, 0.16, 0.26, 0.32, 0.25]);
        let concrete = Indices::of(&[0.16, 0.17, 0.18, 0.20, 0.22, 0.20]);
        let sand = Indices::of(&[0.18, 0.26, 0.34, 0.40, 0.50, 0.45]);
        let water = Indices::of(&[0.08, 0.07, 0.05, 0.03, 0.01, 0.005]);
        assert!(not_natural(&field, &ploughed) < 0.1, "harvest");
        assert!(
            not_natural(&field, &concrete) > 0.9,
            "vegetation cleared for concrete"
        );
        assert!(not_natural(&sand, &concrete) > 0.9, "new structure on sand");
        assert!(not_natural(&sand, &field) < 0.1, "vegetation growing");
        assert!(not_natural(&sand, &water) < 0.1, "flooding");
        assert!(not_natural(&field, &field) < 0.1, "stays vegetated");
    }

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 33) as f32) / (1u64 << 31) as f32
    }

    /// The combined score of one pixel by its definition: the IR-MAD and CVA
    /// statistics against the best-matching pixel of the other date within
    /// `SHIFT`, both ways, masked or missing neighbours standing at `far`.
    fn combined_by_definition(m: &Model, px: &Pixels, rw: usize, rh: usize, i: usize) -> f32 {
        let proj = Projections::new(m.irmad.as_ref().unwrap(), &m.cva);
        let far = [1e15f32; P];
        let at = |r: isize, c: isize| -> Option<usize> {
            (r >= 0 && c >= 0 && (r as usize) < rh && (c as usize) < rw)
                .then(|| r as usize * rw + c as usize)
                .filter(|&j| px.mask[j] == MaskReason::Valid)
        };
        let lin = |w: &[[f32; P]; P], c0: &[f32; P], x: [f32; P]| -> [f32; P] {
            std::array::from_fn(|j| {
                let mut o = c0[j];
                for k in 0..P {
                    o += w[j][k] * x[k];
                }
                o
            })
        };
        let planes = |j: Option<usize>| -> [[f32; P]; 4] {
            let Some(j) = j else { return [far; 4] };
            let (x, y) = (px.x(j), px.y(j));
            [
                lin(&proj.wx, &proj.cx, x),
                lin(&proj.wy, &proj.cy, y),
                std::array::from_fn(|k| x[k] * proj.inv_scale[k]),
                std::array::from_fn(|k| (y[k] - proj.median_y[k]) * proj.inv_scale[k]),
            ]
        };
        let d2 = |a: &[f32; P], b: &[f32; P]| {
            let mut s = 0.0f32;
            for k in 0..P {
                let d = a[k] - b[k];
                s += d * d;
            }
            s
        };
        let (r, c) = ((i / rw) as isize, (i % rw) as isize);
        let me = planes(Some(i));
        let mut mins = [f32::MAX; 4];
        let sh = SHIFT as isize;
        for dr in -sh..=sh {
            for dc in -sh..=sh {
                let o = planes(at(r + dr, c + dc));
                mins[0] = mins[0].min(d2(&o[0], &me[1]));
                mins[1] = mins[1].min(d2(&me[0], &o[1]));
                mins[2] = mins[2].min(d2(&o[2], &me[3]));
                mins[3] = mins[3].min(d2(&me[2], &o[3]));
            }
        }
        let w = not_natural(&Indices::of(&px.x(i)), &Indices::of(&px.y(i)));
        if w == 0.0 {
            return 0.0;
        }
        let ci = mins[0].max(mins[1]) as f64 * m.irmad_calibration;
        let cc = mins[2].max(mins[3]) as f64 * m.cva_calibration;
        (chi2_cdf(ci, P) * chi2_cdf(cc, P)).sqrt() as f32 * w
    }

    #[test]
    fn combined_match_is_its_definition_to_the_bit() {
        let mut seed = 11u64;
        let mut sample = Sample::new(P);
        for _ in 0..500 {
            let base = lcg(&mut seed);
            let x: Vec<f32> = (0..P)
                .map(|k| 0.1 + 0.3 * base + 0.02 * k as f32 + 0.02 * lcg(&mut seed))
                .collect();
            let y: Vec<f32> = x
                .iter()
                .map(|v| 1.1 * v + 0.01 + 0.01 * lcg(&mut seed))
                .collect();
            sample.push(&x, &y);
        }
        let model = Model::fit(&sample, Method::Combined).unwrap();
        // Shapes that make the padding, odd widths and one-row windows count.
        for (rw, rh) in [(9, 7), (1, 5), (13, 1), (33, 4)] {
            let n = rw * rh;
            let mut before: [Vec<f32>; P] = std::array::from_fn(|_| Vec::with_capacity(n));
            let mut after: [Vec<f32>; P] = std::array::from_fn(|_| Vec::with_capacity(n));
            let mut mask = vec![MaskReason::Valid; n];
            for (i, m) in mask.iter_mut().enumerate() {
                let base = lcg(&mut seed);
                // Every fifth pixel a new bright roof, some masked.
                let new = i % 5 == 2;
                for k in 0..P {
                    let x = 0.1 + 0.3 * base + 0.02 * k as f32 + 0.02 * lcg(&mut seed);
                    before[k].push(x);
                    after[k].push(if new {
                        0.45 + 0.02 * lcg(&mut seed)
                    } else {
                        1.1 * x + 0.01
                    });
                }
                if lcg(&mut seed) < 0.2 {
                    *m = MaskReason::NoData;
                }
            }
            let px = Pixels {
                shape: (rw, rh),
                before,
                after,
                mask,
            };
            let raw = model.combined_raw(&px, rw, rh);
            for (i, got) in raw.iter().enumerate() {
                if px.mask[i] != MaskReason::Valid {
                    assert!(got.is_nan());
                    continue;
                }
                let want = combined_by_definition(&model, &px, rw, rh, i);
                assert_eq!(
                    got.to_bits(),
                    want.to_bits(),
                    "{rw} x {rh}, pixel {i}: {got} != {want}"
                );
            }
        }
    }

    #[test]
    fn methods_parse() {
        assert_eq!("IR-MAD".parse::<Method>().unwrap(), Method::Irmad);
        assert!("nonsense".parse::<Method>().is_err());
        assert_eq!(
            Method::Combined.default_threshold(),
            Some(COMBINED_SIGNIFICANCE)
        );
        assert_eq!(Method::Cva.default_threshold(), None);
    }
}
