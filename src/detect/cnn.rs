//! The `cnn` method: a small fully convolutional network over the learned
//! method's per-pixel features (see [`super::learned`]), trained on
//! labelled pairs by `dunewatch train --arch` (see [`crate::train::cnn`]).
//!
//! The logistic regression sees each pixel through fixed square windows; a
//! compound, a roof or a runway is a shape, which convolutions over a
//! coarser grid learn. The network is a two-level U-Net kept small enough to
//! run at full resolution on a whole tile:
//!
//! ```text
//! x (41 features, standardised)
//!  ├─ linear skip ───────────────────────────────────────────────┐
//!  └─ e0 = relu(1x1, c0)  (10 m) ──────────────────────────┐     │
//!      └ avg pool 2 → e1 = relu(3x3, c1)  (20 m) ────┐     │     │
//!          └ avg pool 2 → e2, e3 = relu(3x3, c2) x2 (40 m)   │     │
//!                      up 2 → [e1, ·] → d1 = relu(3x3, c1)   │     │
//!                                  up 2 → [e0, ·] → h = relu(1x1, c0)
//!                                              logit = 1x1(h) + skip
//! ```
//!
//! Pooling cells are anchored on the grid (every window the network runs
//! on starts at a multiple of [`ALIGN`], or at the grid's edge), and each
//! output depends on inputs within [`RECEPTIVE`] pixels only, so a block
//! read with a [`HALO`] gives the same bits whatever the block size, panel
//! or thread count. Every sum is taken in a fixed order (input channel,
//! then kernel row, then kernel column) that does not depend on where the
//! pixel lies in its window.

// Features are clipped before standardisation as the learned method does.
use super::learned::{clip, Features, Provenance, NF};
use crate::align::Window;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Format tag of CNN model files.
pub const FORMAT: &str = "dunewatch-cnn/1";
/// Pooling cells are 2 then 4 px: windows start on multiples of this.
pub const ALIGN: usize = 4;
/// An output pixel depends on input pixels at most this far away (in
/// pixels, along rows and columns; checked by a test).
pub const RECEPTIVE: usize = 16;
/// Context the features need: their widest window plus the combined
/// score's misregistration search.
pub const FEATURE_HALO: usize = super::learned::WINDOW_RADIUS + super::score::SHIFT;
/// Pixels of context a block needs on every side.
pub const HALO: usize = FEATURE_HALO + ALIGN - 1 + RECEPTIVE;

/// The model shipped with dunewatch (see its `provenance`).
pub const DEFAULT_MODEL_JSON: &str = include_str!("../../models/oscd_cnn_v1.json");

/// Channel widths: `c0` at 10 m, `c1` at 20 m, `c2` at 40 m.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Arch {
    pub c0: usize,
    pub c1: usize,
    pub c2: usize,
}

impl Arch {
    /// The named architectures `dunewatch train --arch` knows.
    pub fn named(name: &str) -> Result<Arch> {
        match name {
            "unet8" => Ok(Arch {
                c0: 8,
                c1: 16,
                c2: 16,
            }),
            "unet4" => Ok(Arch {
                c0: 4,
                c1: 8,
                c2: 8,
            }),
            "unet12" => Ok(Arch {
                c0: 12,
                c1: 24,
                c2: 24,
            }),
            _ => Err(Error::usage(format!(
                "unknown --arch '{name}' (unet4, unet8, unet12)"
            ))),
        }
    }

    /// Where each layer's weights and biases lie in the flat parameter
    /// vector.
    pub fn layout(&self) -> Layout {
        let (c0, c1, c2) = (self.c0, self.c1, self.c2);
        let mut at = 0;
        let mut take = |n: usize| {
            let r = at..at + n;
            at += n;
            r
        };
        let l = Layout {
            w0: take(c0 * NF),
            b0: take(c0),
            w1: take(c1 * c0 * 9),
            b1: take(c1),
            w2: take(c2 * c1 * 9),
            b2: take(c2),
            w3: take(c2 * c2 * 9),
            b3: take(c2),
            w4: take(c1 * (c1 + c2) * 9),
            b4: take(c1),
            w5: take(c0 * (c0 + c1)),
            b5: take(c0),
            w6: take(c0),
            b6: take(1),
            wl: take(NF),
            len: 0,
        };
        Layout { len: at, ..l }
    }

    /// Multiply-adds per output pixel (full-resolution equivalent).
    pub fn macs_per_pixel(&self) -> f64 {
        let (c0, c1, c2) = (self.c0 as f64, self.c1 as f64, self.c2 as f64);
        NF as f64 * c0
            + c1 * c0 * 9.0 / 4.0
            + (c2 * c1 + c2 * c2) * 9.0 / 16.0
            + c1 * (c1 + c2) * 9.0 / 4.0
            + c0 * (c0 + c1)
            + c0
            + NF as f64
    }
}

/// Ranges of the layers in the flat parameter vector.
#[derive(Debug, Clone)]
pub struct Layout {
    pub w0: std::ops::Range<usize>,
    pub b0: std::ops::Range<usize>,
    pub w1: std::ops::Range<usize>,
    pub b1: std::ops::Range<usize>,
    pub w2: std::ops::Range<usize>,
    pub b2: std::ops::Range<usize>,
    pub w3: std::ops::Range<usize>,
    pub b3: std::ops::Range<usize>,
    pub w4: std::ops::Range<usize>,
    pub b4: std::ops::Range<usize>,
    pub w5: std::ops::Range<usize>,
    pub b5: std::ops::Range<usize>,
    pub w6: std::ops::Range<usize>,
    pub b6: std::ops::Range<usize>,
    pub wl: std::ops::Range<usize>,
    pub len: usize,
}

/// How a model was trained (recorded in the model file).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrainingSettings {
    pub steps: usize,
    pub batch: usize,
    pub patch: usize,
    pub learning_rate: f64,
    pub seed: u64,
    pub augmentation: String,
    pub loss: String,
}

/// A trained network: its architecture, input standardisation, weights,
/// probability cut and provenance.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CnnModel {
    pub format: String,
    pub kind: String,
    pub arch_name: String,
    pub arch: Arch,
    pub features: Vec<String>,
    /// Standardisation: z = (clip(f) - mean) / scale; masked pixels are 0.
    pub mean: Vec<f32>,
    pub scale: Vec<f32>,
    /// Flat parameters in the order of [`Arch::layout`].
    pub params: Vec<f32>,
    /// The probability cut chosen at training; scores are shifted so it
    /// falls at 0.5.
    pub probability_threshold: f64,
    pub training: TrainingSettings,
    pub provenance: Provenance,
}

/// The cnn method's model files, as their errors say.
const FILE: super::model_file::Kind = super::model_file::Kind {
    format: FORMAT,
    name: "dunewatch CNN model",
    reader: "--method cnn",
};

impl CnnModel {
    /// Parses and checks a model file's contents.
    pub fn from_json(s: &str, what: &str) -> Result<CnnModel> {
        super::model_file::parse(s, what, &FILE, |m: &CnnModel| {
            super::model_file::check_lengths(
                what,
                "standardisation",
                &[m.mean.len(), m.scale.len()],
            )?;
            let want = m.arch.layout().len;
            if m.params.len() != want || m.params.iter().any(|v| !v.is_finite()) {
                return Err(Error::invalid(format!(
                    "{what}: {} parameters, the architecture needs {want} finite values",
                    m.params.len()
                )));
            }
            Ok(())
        })
    }

    /// Reads a model file.
    pub fn load(path: &std::path::Path) -> Result<CnnModel> {
        super::model_file::load(path, Self::from_json)
    }

    /// The shipped model.
    pub fn shipped() -> CnnModel {
        Self::from_json(DEFAULT_MODEL_JSON, "models/oscd_cnn_v1.json")
            .expect("the shipped CNN model parses")
    }

    /// The standardised input planes ([NF][h][w]) of the features of a
    /// window, masked pixels 0.
    pub fn standardise(&self, feats: &[Option<[f32; NF]>], n: usize) -> Vec<f32> {
        let mut x = vec![0.0f32; NF * n];
        for (i, f) in feats.iter().enumerate().take(n) {
            if let Some(f) = f {
                for k in 0..NF {
                    x[k * n + i] = (clip(f[k]) - self.mean[k]) / self.scale[k];
                }
            }
        }
        x
    }

    /// The score in [0, 1] of a logit: the probability, shifted so the
    /// chosen cut is 0.5.
    pub fn score(&self, logit: f32) -> f32 {
        sigmoid(logit, self.logit_shift())
    }

    /// Scores of the `block` part of a read window (`None` where masked),
    /// from the learned features of the whole read window.
    pub fn score_block(&self, feats: &Features, read: Window, block: Window) -> Vec<Option<f32>> {
        let (cx, cw) = net_span(read.x, read.w, block.x, block.w);
        let (cy, ch) = net_span(read.y, read.h, block.y, block.h);
        // The network's window, in place in the read window's rows.
        let at = (cy - read.y) * read.w + cx - read.x;
        let logit = self.logits(feats, at, ch, cw);
        let shift = self.logit_shift();
        let (ox, oy) = (block.x - cx, block.y - cy);
        let mut out = Vec::with_capacity(block.len());
        for r in 0..block.h {
            let v = &feats.valid[at + (oy + r) * read.w + ox..][..block.w];
            let l = &logit[(oy + r) * cw + ox..][..block.w];
            out.extend(v.iter().zip(l).map(|(&v, &l)| v.then(|| sigmoid(l, shift))));
        }
        out
    }

    /// `ln(t / (1 - t))` of the probability cut `t`: what [`Self::score`]
    /// takes off a logit.
    fn logit_shift(&self) -> f64 {
        let t = self.probability_threshold;
        (t / (1.0 - t)).ln()
    }

    /// The logits of [`forward`] on the `h` x `w` window of `feats` whose
    /// first pixel is `at` (rows `feats.w` apart), to the
    /// bit, without the activations training keeps: the 1x1 layers at full
    /// resolution run on runs of [`RUN`] pixels held in cache, the input
    /// planes, the concatenations and the upsampled planes are never
    /// stored.
    pub fn logits(&self, feats: &Features, at: usize, h: usize, w: usize) -> Vec<f32> {
        let (a, p) = (&self.arch, &self.params);
        let l = a.layout();
        let (c0, c1, c2) = (a.c0, a.c1, a.c2);
        let n = h * w;
        let (w0, b0, wl) = (&p[l.w0.clone()], &p[l.b0.clone()], &p[l.wl.clone()]);
        // Input layer and linear skip, a run of pixels at a time; the sums
        // in the order of `conv1x1` (bias, then input channels).
        let mut e0 = vec![0.0f32; c0 * n];
        let mut skip = vec![0.0f32; n];
        let mut x = [[0.0f32; RUN]; NF];
        let stride = feats.w;
        for r in 0..h {
            for x0 in (0..w).step_by(RUN) {
                let m = RUN.min(w - x0);
                let src = at + r * stride + x0;
                let at = r * w + x0;
                let valid = &feats.valid[src..src + m];
                for (k, xk) in x.iter_mut().enumerate() {
                    let (mean, scale) = (self.mean[k], self.scale[k]);
                    let f = &feats.plane(k)[src..src + m];
                    for ((o, &f), &ok) in xk[..m].iter_mut().zip(f).zip(valid) {
                        *o = if ok { (clip(f) - mean) / scale } else { 0.0 };
                    }
                }
                for o in 0..c0 {
                    let out = &mut e0[o * n + at..][..m];
                    out.fill(b0[o]);
                    for (xk, wv) in x.iter().zip(&w0[o * NF..(o + 1) * NF]) {
                        axpy(out, *wv, &xk[..m]);
                    }
                }
                let out = &mut skip[at..at + m];
                out.fill(0.0);
                for (xk, wv) in x.iter().zip(wl) {
                    axpy(out, *wv, &xk[..m]);
                }
            }
        }
        relu(&mut e0);
        // The coarse levels, as `forward` computes them.
        let (p1, h1, w1) = pool2(&e0, c0, h, w);
        let mut e1 = conv3(&p1, c0, h1, w1, &p[l.w1.clone()], &p[l.b1.clone()], c1);
        drop(p1);
        relu(&mut e1);
        let (p2, h2, w2) = pool2(&e1, c1, h1, w1);
        let mut e2 = conv3(&p2, c1, h2, w2, &p[l.w2.clone()], &p[l.b2.clone()], c2);
        relu(&mut e2);
        let mut e3 = conv3(&e2, c2, h2, w2, &p[l.w3.clone()], &p[l.b3.clone()], c2);
        relu(&mut e3);
        let mut cat1 = e1;
        cat1.extend(up2(&e3, c2, h2, w2, h1, w1));
        let w4 = &p[l.w4.clone()];
        let mut d1 = conv3(&cat1, c1 + c2, h1, w1, w4, &p[l.b4.clone()], c1);
        drop(cat1);
        relu(&mut d1);
        // Head at full resolution, a run at a time: h = relu(1x1 of
        // [e0, up 2 of d1]), logit = 1x1 of h, plus the skip.
        let (w5, b5) = (&p[l.w5.clone()], &p[l.b5.clone()]);
        let (w6, b6) = (&p[l.w6.clone()], p[l.b6.clone()][0]);
        let n1 = h1 * w1;
        let mut logit = skip;
        let mut up = vec![[0.0f32; RUN]; c1];
        let mut hd = vec![[0.0f32; RUN]; c0];
        let mut acc = [0.0f32; RUN];
        for r in 0..h {
            for x0 in (0..w).step_by(RUN) {
                let (m, at) = (RUN.min(w - x0), r * w + x0);
                for (k, u) in up.iter_mut().enumerate() {
                    let src = &d1[k * n1 + (r / 2) * w1..];
                    for (i, v) in u[..m].iter_mut().enumerate() {
                        *v = src[(x0 + i) / 2];
                    }
                }
                for (o, ho) in hd.iter_mut().enumerate() {
                    let ho = &mut ho[..m];
                    ho.fill(b5[o]);
                    let wo = &w5[o * (c0 + c1)..(o + 1) * (c0 + c1)];
                    for (i, wv) in wo[..c0].iter().enumerate() {
                        axpy(ho, *wv, &e0[i * n + at..][..m]);
                    }
                    for (u, wv) in up.iter().zip(&wo[c0..]) {
                        axpy(ho, *wv, &u[..m]);
                    }
                    relu(ho);
                }
                let acc = &mut acc[..m];
                acc.fill(b6);
                for (ho, wv) in hd.iter().zip(w6) {
                    axpy(acc, *wv, &ho[..m]);
                }
                for (o, a) in logit[at..at + m].iter_mut().zip(acc.iter()) {
                    // The skip added last, as `forward` does (addition
                    // commutes to the bit).
                    *o += *a;
                }
            }
        }
        logit
    }
}

/// Pixels of a row the full-resolution layers of [`CnnModel::logits`]
/// take at a time (their inputs stay in the first-level cache).
const RUN: usize = 64;

/// `out += a * x`, element by element.
#[inline]
fn axpy(out: &mut [f32], a: f32, x: &[f32]) {
    for (o, v) in out.iter_mut().zip(x) {
        *o += a * v;
    }
}

/// The probability of `logit` less `shift`, as [`CnnModel::score`].
#[inline]
fn sigmoid(logit: f32, shift: f64) -> f32 {
    let z = logit as f64 - shift;
    (1.0 / (1.0 + (-z).exp())) as f32
}

/// The span (start, length) along one axis that the network runs on,
/// inside a read window `read_at..read_at + read_len` grown by up to
/// [`HALO`] around the block: features within [`FEATURE_HALO`] of a read
/// edge that is not the grid's edge lack context and are left out, and the
/// span starts on a multiple of [`ALIGN`] so pooling cells lie on the grid.
/// A read edge closer to the block than the halo is the grid's edge.
pub fn net_span(
    read_at: usize,
    read_len: usize,
    block_at: usize,
    block_len: usize,
) -> (usize, usize) {
    let start = if read_at == 0 {
        0
    } else {
        (read_at + FEATURE_HALO).div_ceil(ALIGN) * ALIGN
    };
    let read_end = read_at + read_len;
    let end = if read_end < block_at + block_len + HALO {
        read_end
    } else {
        read_end - FEATURE_HALO
    };
    (start, end - start)
}

/// Every activation of one forward pass, planar ([channel][row][column]),
/// kept for training's backward pass.
#[derive(Debug, Clone)]
pub struct Acts {
    pub h: usize,
    pub w: usize,
    pub h1: usize,
    pub w1: usize,
    pub h2: usize,
    pub w2: usize,
    pub x: Vec<f32>,
    pub e0: Vec<f32>,
    pub p1: Vec<f32>,
    pub e1: Vec<f32>,
    pub p2: Vec<f32>,
    pub e2: Vec<f32>,
    pub e3: Vec<f32>,
    pub cat1: Vec<f32>,
    pub d1: Vec<f32>,
    pub cat0: Vec<f32>,
    pub hd: Vec<f32>,
    pub logit: Vec<f32>,
}

/// The network on the standardised planes `x` ([NF][h][w]).
pub fn forward(arch: &Arch, p: &[f32], x: Vec<f32>, h: usize, w: usize) -> Acts {
    let l = arch.layout();
    let (c0, c1, c2) = (arch.c0, arch.c1, arch.c2);
    let n = h * w;
    let mut e0 = conv1x1(&x, NF, n, &p[l.w0.clone()], &p[l.b0.clone()], c0);
    relu(&mut e0);
    let (p1, h1, w1) = pool2(&e0, c0, h, w);
    let mut e1 = conv3(&p1, c0, h1, w1, &p[l.w1.clone()], &p[l.b1.clone()], c1);
    relu(&mut e1);
    let (p2, h2, w2) = pool2(&e1, c1, h1, w1);
    let mut e2 = conv3(&p2, c1, h2, w2, &p[l.w2.clone()], &p[l.b2.clone()], c2);
    relu(&mut e2);
    let mut e3 = conv3(&e2, c2, h2, w2, &p[l.w3.clone()], &p[l.b3.clone()], c2);
    relu(&mut e3);
    let mut cat1 = e1.clone();
    cat1.extend(up2(&e3, c2, h2, w2, h1, w1));
    let mut d1 = conv3(
        &cat1,
        c1 + c2,
        h1,
        w1,
        &p[l.w4.clone()],
        &p[l.b4.clone()],
        c1,
    );
    relu(&mut d1);
    let mut cat0 = e0.clone();
    cat0.extend(up2(&d1, c1, h1, w1, h, w));
    let mut hd = conv1x1(&cat0, c0 + c1, n, &p[l.w5.clone()], &p[l.b5.clone()], c0);
    relu(&mut hd);
    let mut logit = conv1x1(&hd, c0, n, &p[l.w6.clone()], &p[l.b6.clone()], 1);
    let skip = conv1x1(&x, NF, n, &p[l.wl.clone()], &[0.0], 1);
    for (o, s) in logit.iter_mut().zip(&skip) {
        *o += s;
    }
    Acts {
        h,
        w,
        h1,
        w1,
        h2,
        w2,
        x,
        e0,
        p1,
        e1,
        p2,
        e2,
        e3,
        cat1,
        d1,
        cat0,
        hd,
        logit,
    }
}

pub(crate) fn relu(v: &mut [f32]) {
    for x in v {
        *x = x.max(0.0);
    }
}

/// 1x1 convolution of `ci` planes of `n` pixels into `co` planes.
pub(crate) fn conv1x1(
    inp: &[f32],
    ci: usize,
    n: usize,
    w: &[f32],
    b: &[f32],
    co: usize,
) -> Vec<f32> {
    let mut out = vec![0.0f32; co * n];
    for o in 0..co {
        let row = &mut out[o * n..(o + 1) * n];
        row.fill(b[o]);
        for i in 0..ci {
            let wv = w[o * ci + i];
            for (r, s) in row.iter_mut().zip(&inp[i * n..(i + 1) * n]) {
                *r += wv * s;
            }
        }
    }
    out
}

/// 3x3 convolution, zero padded, same size; weights [co][ci][3][3].
pub(crate) fn conv3(
    inp: &[f32],
    ci: usize,
    h: usize,
    w: usize,
    wt: &[f32],
    b: &[f32],
    co: usize,
) -> Vec<f32> {
    let n = h * w;
    let mut out = vec![0.0f32; co * n];
    // Every output pixel sums bias, then per input channel its kernel rows
    // top to bottom, each row's left, centre and right taps (taps outside
    // the grid left out). Rows outermost: one output row's input rows stay
    // in cache across the output channels.
    for y in 0..h {
        for o in 0..co {
            let orow = &mut out[o * n + y * w..][..w];
            orow.fill(b[o]);
            for i in 0..ci {
                let k = (o * ci + i) * 9;
                let row = |ky: usize| {
                    (y + ky)
                        .checked_sub(1)
                        .filter(|s| *s < h)
                        .map(|sy| &inp[i * n + sy * w..][..w])
                };
                match (row(0), row(1), row(2)) {
                    (Some(r0), Some(r1), Some(r2)) if w >= 2 => {
                        taps3(orow, [r0, r1, r2], &wt[k..k + 9]);
                    }
                    rows => {
                        for (ky, srow) in [rows.0, rows.1, rows.2].into_iter().enumerate() {
                            if let Some(srow) = srow {
                                taps1(orow, srow, &wt[k + 3 * ky..k + 3 * ky + 3]);
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

/// One kernel row's taps `t` (left, centre, right) over a row.
fn taps1(orow: &mut [f32], srow: &[f32], t: &[f32]) {
    let w = orow.len();
    let (a, bb, c) = (t[0], t[1], t[2]);
    if w == 1 {
        orow[0] += bb * srow[0];
        return;
    }
    orow[0] += bb * srow[0];
    orow[0] += c * srow[1];
    let m = w - 2;
    let (l, ce, r) = (&srow[..m], &srow[1..m + 1], &srow[2..m + 2]);
    for (j, o) in orow[1..m + 1].iter_mut().enumerate() {
        let mut s = *o;
        s += a * l[j];
        s += bb * ce[j];
        s += c * r[j];
        *o = s;
    }
    orow[w - 1] += a * srow[w - 2];
    orow[w - 1] += bb * srow[w - 1];
}

/// Three kernel rows' taps `t` ([row][left, centre, right]) over three
/// rows, in one pass, in the order of three [`taps1`] calls.
fn taps3(orow: &mut [f32], rows: [&[f32]; 3], t: &[f32]) {
    let w = orow.len();
    let m = w - 2;
    let mut s = orow[0];
    for (ky, row) in rows.iter().enumerate() {
        s += t[3 * ky + 1] * row[0];
        s += t[3 * ky + 2] * row[1];
    }
    orow[0] = s;
    let mut s = orow[w - 1];
    for (ky, row) in rows.iter().enumerate() {
        s += t[3 * ky] * row[w - 2];
        s += t[3 * ky + 1] * row[w - 1];
    }
    orow[w - 1] = s;
    let [r0, r1, r2] = rows;
    let (l0, c0, q0) = (&r0[..m], &r0[1..m + 1], &r0[2..m + 2]);
    let (l1, c1, q1) = (&r1[..m], &r1[1..m + 1], &r1[2..m + 2]);
    let (l2, c2, q2) = (&r2[..m], &r2[1..m + 1], &r2[2..m + 2]);
    for (j, o) in orow[1..m + 1].iter_mut().enumerate() {
        let mut s = *o;
        s += t[0] * l0[j];
        s += t[1] * c0[j];
        s += t[2] * q0[j];
        s += t[3] * l1[j];
        s += t[4] * c1[j];
        s += t[5] * q1[j];
        s += t[6] * l2[j];
        s += t[7] * c2[j];
        s += t[8] * q2[j];
        *o = s;
    }
}

/// 2x2 mean pooling (cells at an odd edge average the pixels they hold).
pub(crate) fn pool2(inp: &[f32], c: usize, h: usize, w: usize) -> (Vec<f32>, usize, usize) {
    let (ph, pw) = (h.div_ceil(2), w.div_ceil(2));
    let mut out = vec![0.0f32; c * ph * pw];
    for k in 0..c {
        for y in 0..ph {
            // Whole cells (the sum from 0 in the order of the general
            // loop below, over 4).
            let full = if 2 * y + 1 < h { w / 2 } else { 0 };
            let (a, b) = (
                &inp[k * h * w + 2 * y * w..][..w],
                &inp[k * h * w + (2 * y + 1).min(h - 1) * w..][..w],
            );
            let dst = &mut out[k * ph * pw + y * pw..][..pw];
            for (x, d) in dst[..full].iter_mut().enumerate() {
                let mut s = 0.0f32;
                s += a[2 * x];
                s += a[2 * x + 1];
                s += b[2 * x];
                s += b[2 * x + 1];
                *d = s / 4.0;
            }
            for x in full..pw {
                let (mut s, mut cnt) = (0.0f32, 0.0f32);
                for yy in 2 * y..(2 * y + 2).min(h) {
                    for xx in 2 * x..(2 * x + 2).min(w) {
                        s += inp[k * h * w + yy * w + xx];
                        cnt += 1.0;
                    }
                }
                out[k * ph * pw + y * pw + x] = s / cnt;
            }
        }
    }
    (out, ph, pw)
}

/// Nearest-neighbour upsampling by 2 onto an `h` x `w` grid.
pub(crate) fn up2(inp: &[f32], c: usize, ih: usize, iw: usize, h: usize, w: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; c * h * w];
    for k in 0..c {
        for y in 0..h {
            let src = &inp[k * ih * iw + (y / 2) * iw..k * ih * iw + (y / 2 + 1) * iw];
            let dst = &mut out[k * h * w + y * w..k * h * w + (y + 1) * w];
            for (x, d) in dst.iter_mut().enumerate() {
                *d = src[x / 2];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 33) as f32) / (1u64 << 31) as f32 - 0.5
    }

    fn random_params(arch: &Arch, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..arch.layout().len).map(|_| lcg(&mut s)).collect()
    }

    #[test]
    fn receptive_field_is_within_its_bound() {
        let arch = Arch::named("unet4").unwrap();
        let p = random_params(&arch, 3);
        let (h, w) = (72, 76);
        let mut s = 9u64;
        let x: Vec<f32> = (0..NF * h * w).map(|_| lcg(&mut s)).collect();
        let base = forward(&arch, &p, x.clone(), h, w).logit;
        // Perturb one pixel (all channels) at pixel positions of every
        // phase of the pooling cells.
        let mut widest = 0usize;
        for (py, px) in [(33, 35), (34, 36), (35, 37), (36, 38)] {
            let mut y2 = x.clone();
            for k in 0..NF {
                y2[k * h * w + py * w + px] += 3.0;
            }
            let out = forward(&arch, &p, y2, h, w).logit;
            for yy in 0..h {
                for xx in 0..w {
                    if out[yy * w + xx] != base[yy * w + xx] {
                        let d = yy.abs_diff(py).max(xx.abs_diff(px));
                        widest = widest.max(d);
                    }
                }
            }
        }
        assert!(widest >= 8, "the network sees context ({widest})");
        assert!(widest <= RECEPTIVE, "reach {widest} > {RECEPTIVE}");
    }

    #[test]
    fn outputs_do_not_depend_on_the_window() {
        // A pixel's score from windows anchored anywhere on the ALIGN
        // lattice, with enough context, is the same to the bit.
        let arch = Arch::named("unet4").unwrap();
        let p = random_params(&arch, 5);
        let (h, w) = (96, 100);
        let mut s = 1u64;
        let x: Vec<f32> = (0..NF * h * w).map(|_| lcg(&mut s)).collect();
        let full = forward(&arch, &p, x.clone(), h, w).logit;
        let crop = |y0: usize, x0: usize, ch: usize, cw: usize| {
            let mut v = vec![0.0f32; NF * ch * cw];
            for k in 0..NF {
                for r in 0..ch {
                    for c in 0..cw {
                        v[k * ch * cw + r * cw + c] = x[k * h * w + (y0 + r) * w + x0 + c];
                    }
                }
            }
            forward(&arch, &p, v, ch, cw).logit
        };
        // Window from (8, 12), 40 x 52: interior pixels at least RECEPTIVE
        // from its inner edges.
        let (y0, x0, ch, cw) = (8, 12, 40 + 24, 52 + 16);
        let part = crop(y0, x0, ch, cw);
        for r in RECEPTIVE..ch - RECEPTIVE {
            for c in RECEPTIVE..cw - RECEPTIVE {
                let a = part[r * cw + c];
                let b = full[(y0 + r) * w + x0 + c];
                assert_eq!(a.to_bits(), b.to_bits(), "({r}, {c})");
            }
        }
        // Against the grid's bottom-right edge.
        let part = crop(16, 20, h - 16, w - 20);
        for r in RECEPTIVE..h - 16 {
            for c in RECEPTIVE..w - 20 {
                let a = part[r * (w - 20) + c];
                assert_eq!(a.to_bits(), full[(16 + r) * w + 20 + c].to_bits());
            }
        }
    }

    /// The 3x3 convolution and pooling as first written (one output plane
    /// at a time, one kernel row at a time): the sums the faster loops must
    /// take in the same order.
    fn conv3_plain(
        inp: &[f32],
        ci: usize,
        h: usize,
        w: usize,
        wt: &[f32],
        b: &[f32],
        co: usize,
    ) -> Vec<f32> {
        let n = h * w;
        let mut out = vec![0.0f32; co * n];
        for o in 0..co {
            for y in 0..h {
                for x in 0..w {
                    let mut s = b[o];
                    for i in 0..ci {
                        for ky in 0..3 {
                            let Some(sy) = (y + ky).checked_sub(1).filter(|s| *s < h) else {
                                continue;
                            };
                            for kx in 0..3 {
                                let Some(sx) = (x + kx).checked_sub(1).filter(|s| *s < w) else {
                                    continue;
                                };
                                s +=
                                    wt[((o * ci + i) * 3 + ky) * 3 + kx] * inp[i * n + sy * w + sx];
                            }
                        }
                    }
                    out[o * n + y * w + x] = s;
                }
            }
        }
        out
    }

    fn pool2_plain(inp: &[f32], c: usize, h: usize, w: usize) -> Vec<f32> {
        let (ph, pw) = (h.div_ceil(2), w.div_ceil(2));
        let mut out = vec![0.0f32; c * ph * pw];
        for k in 0..c {
            for y in 0..ph {
                for x in 0..pw {
                    let (mut s, mut cnt) = (0.0f32, 0.0f32);
                    for yy in 2 * y..(2 * y + 2).min(h) {
                        for xx in 2 * x..(2 * x + 2).min(w) {
                            s += inp[k * h * w + yy * w + xx];
                            cnt += 1.0;
                        }
                    }
                    out[k * ph * pw + y * pw + x] = s / cnt;
                }
            }
        }
        out
    }

    #[test]
    fn conv3_and_pool2_sum_in_the_plain_order() {
        let mut s = 21u64;
        for (h, w) in [(1, 1), (1, 2), (2, 1), (3, 3), (4, 7), (9, 12), (33, 66)] {
            let (ci, co) = (3, 2);
            let inp: Vec<f32> = (0..ci * h * w).map(|_| lcg(&mut s)).collect();
            let wt: Vec<f32> = (0..co * ci * 9).map(|_| lcg(&mut s)).collect();
            let b = [lcg(&mut s), lcg(&mut s)];
            let got = conv3(&inp, ci, h, w, &wt, &b, co);
            let want = conv3_plain(&inp, ci, h, w, &wt, &b, co);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "conv3 {h}x{w}");
            let (got, _, _) = pool2(&inp, ci, h, w);
            assert_eq!(
                bits(&got),
                bits(&pool2_plain(&inp, ci, h, w)),
                "pool2 {h}x{w}"
            );
        }
    }

    #[test]
    fn inference_gives_the_logits_of_the_training_forward_pass_to_the_bit() {
        // Random weights (every layer active), masked pixels, values to
        // clip, windows of every parity and a row stride wider than the
        // window.
        let mut s = 11u64;
        for name in ["unet4", "unet8"] {
            let mut m = CnnModel::shipped();
            m.arch = Arch::named(name).unwrap();
            m.params = random_params(&m.arch, 7);
            for (h, w) in [(1, 1), (1, 2), (2, 3), (5, 7), (37, 70), (64, 131)] {
                let stride = w + 5;
                let feats: Vec<Option<[f32; NF]>> = (0..(h + 1) * stride)
                    .map(|i| {
                        (i % 13 != 4).then(|| {
                            std::array::from_fn(|k| match (i + k) % 97 {
                                0 => f32::NAN,
                                1 => 1e6,
                                _ => 8.0 * lcg(&mut s),
                            })
                        })
                    })
                    .collect();
                let mut win = Vec::new();
                for r in 0..h {
                    win.extend_from_slice(&feats[stride + 2 + r * stride..][..w]);
                }
                let want = forward(&m.arch, &m.params, m.standardise(&win, h * w), h, w).logit;
                let planes = Features::from_rows(stride, h + 1, &feats);
                let got = m.logits(&planes, stride + 2, h, w);
                assert_eq!(want.len(), got.len());
                for (i, (a, b)) in want.iter().zip(&got).enumerate() {
                    assert_eq!(a.to_bits(), b.to_bits(), "{name} {h}x{w} pixel {i}");
                }
            }
        }
    }

    #[test]
    fn net_span_aligns_and_leaves_out_the_features_without_context() {
        // Interior block: read = block +- HALO.
        let (s, l) = net_span(1000 - HALO, 256 + 2 * HALO, 1000, 256);
        assert_eq!(s % ALIGN, 0);
        assert!(s >= 1000 - HALO + FEATURE_HALO && s + RECEPTIVE <= 1000);
        assert_eq!(s + l, 1256 + HALO - FEATURE_HALO);
        // At the grid's edges.
        assert_eq!(net_span(0, 100 + HALO - 5, 0, 100), (0, 100 + HALO - 5));
        // A read that ends a full halo past the block is taken as inner.
        assert_eq!(
            net_span(0, 100 + HALO, 0, 100),
            (0, 100 + HALO - FEATURE_HALO)
        );
        let (s, l) = net_span(500 - HALO, 20 + HALO, 500, 20);
        assert_eq!(s + l, 520, "the grid ends at the read's end");
    }

    #[test]
    fn layout_counts_parameters() {
        let a = Arch::named("unet8").unwrap();
        let l = a.layout();
        assert_eq!(l.wl.end, l.len);
        assert!(l.len < 20_000, "{}", l.len);
        assert!(Arch::named("nonsense").is_err());
    }
}
