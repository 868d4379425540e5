//! `dunewatch train --arch`: trains the `cnn` method's network (see
//! [`crate::detect::cnn`]) on labelled pairs.
//!
//! Each pair is read, aligned and co-registered as `detect` does, and the
//! learned method's features are computed over the whole pair by the
//! detection code, for both date orders (the dates swapped is an
//! augmentation: the scene statistics are refitted with the dates
//! exchanged). Pixels masked in detect (no data, clouds) carry no loss.
//!
//! Training: square patches drawn at random (pairs drawn with probability
//! growing as the square root of their change pixels, as the learned
//! method weighs them), each flipped, rotated by a multiple of 90 degrees
//! and its dates swapped at random; class-balanced binary cross-entropy
//! per pair; Adam with a cosine learning-rate decay. Backward passes are
//! written out by hand below. The patches of a step are computed in
//! parallel and their gradients summed in patch order, and every random
//! draw comes from one seeded generator, so a model is the same for any
//! thread count. The probability cut is the best F1 of the confusion
//! counts summed over the training pairs.

use super::TrainPair;
use crate::align::SceneReader;
use crate::detect::cloud_cells::CellMask;
use crate::detect::clouds::CellCounts;
use crate::detect::cnn::{self, forward, Acts, Arch, CnnModel, TrainingSettings, ALIGN};
use crate::detect::learned::{FEATURES, NF};
use crate::detect::masks::MaskReason;
use crate::detect::sample::Sample;
use crate::detect::{Method, Model};
use crate::error::{Error, Result};
use crate::per_thread::PerThread;
use crate::progress::Progress;
use rayon::prelude::*;

/// One pair's features over its whole grid, both date orders.
#[derive(Debug, Clone)]
pub struct PairRaster {
    pub name: String,
    pub h: usize,
    pub w: usize,
    /// Raw features, planar [NF][h][w]; `swapped` with the dates exchanged.
    pub features: Vec<f32>,
    pub swapped: Vec<f32>,
    /// Compared and not cloud.
    pub valid: Vec<bool>,
    pub change: Vec<bool>,
}

impl PairRaster {
    pub fn positives(&self) -> usize {
        self.change
            .iter()
            .zip(&self.valid)
            .filter(|(c, v)| **c && **v)
            .count()
    }
    pub fn compared(&self) -> usize {
        self.valid.iter().filter(|v| **v).count()
    }
}

/// Reads, aligns and featurises one pair over its whole grid.
/// With `swapped` false, the features of the swapped dates are left empty.
pub fn collect_raster(p: &TrainPair, swapped: bool, progress: &dyn Progress) -> Result<PairRaster> {
    let super::OpenedPair {
        pair,
        label,
        sample,
        model,
        ..
    } = super::open_pair(p, progress)?;
    let g = &pair.grid;
    let (w, h) = (g.width, g.height);
    let swapped_sample = Sample {
        p: sample.p,
        before: sample.after.clone(),
        after: sample.before.clone(),
    };
    let model_sw = Model::fit_stats(&swapped_sample, Method::Learned)?;
    let blocks = g.blocks(512);
    progress.start("features", blocks.len() as u64);
    let readers = PerThread::new();
    type Part = (
        crate::align::Window,
        Vec<f32>,
        Vec<f32>,
        Vec<bool>,
        CellCounts,
    );
    let parts: Vec<Part> = blocks
        .par_iter()
        .map(|&block| {
            readers.with(
                || Ok(SceneReader::new(&pair)),
                |reader| -> Result<Part> {
                    let (read, mut px, fw) = super::block_features(reader, &pair, &model, block)?;
                    let mut cells = CellCounts::for_pixels(block.x, block.y, block.w, block.h);
                    let n = block.len();
                    let mut f = vec![0.0f32; NF * n];
                    let mut valid = vec![false; n];
                    for r in 0..block.h {
                        for c in 0..block.w {
                            let i = (block.y + r - read.y) * read.w + block.x + c - read.x;
                            if px.mask[i] != MaskReason::Valid {
                                continue;
                            }
                            cells.add(
                                block.x + c,
                                block.y + r,
                                model.clouds.classify(&px.x(i), &px.y(i)),
                            );
                            if let Some(v) = fw[i] {
                                valid[r * block.w + c] = true;
                                for k in 0..NF {
                                    f[k * n + r * block.w + c] = v[k];
                                }
                            }
                        }
                    }
                    if !swapped {
                        progress.advance(1);
                        return Ok((block, f, Vec::new(), valid, cells));
                    }
                    std::mem::swap(&mut px.before, &mut px.after);
                    let fs = model_sw.learned_features(&px, read.w, read.h);
                    let mut s = vec![0.0f32; NF * n];
                    for r in 0..block.h {
                        for c in 0..block.w {
                            let i = (block.y + r - read.y) * read.w + block.x + c - read.x;
                            if let Some(v) = fs[i] {
                                for k in 0..NF {
                                    s[k * n + r * block.w + c] = v[k];
                                }
                            }
                        }
                    }
                    progress.advance(1);
                    Ok((block, f, s, valid, cells))
                },
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let clouds = super::cloud_mask(&pair, parts.iter().map(|p| &p.4));
    let n = w * h;
    let mut out = PairRaster {
        name: p.name.clone(),
        h,
        w,
        features: vec![0.0; NF * n],
        swapped: if swapped {
            vec![0.0; NF * n]
        } else {
            Vec::new()
        },
        valid: vec![false; n],
        change: label,
    };
    for (b, f, s, valid, _) in parts {
        let bn = b.len();
        for r in 0..b.h {
            for c in 0..b.w {
                let (x, y) = (b.x + c, b.y + r);
                let (i, j) = (y * w + x, r * b.w + c);
                out.valid[i] = valid[j] && clouds.at(x, y) == CellMask::Clear;
                for k in 0..NF {
                    out.features[k * n + i] = f[k * bn + j];
                }
                if swapped {
                    for k in 0..NF {
                        out.swapped[k * n + i] = s[k * bn + j];
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Training settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub arch_name: String,
    pub steps: usize,
    pub batch: usize,
    pub patch: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub seed: u64,
    pub date_swap: bool,
    /// Start from the learned method's logistic regression: its weights
    /// in the linear skip, the convolutional path's last layer at zero, so
    /// training learns what the shapes add to it.
    pub start_linear: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            arch_name: "unet4".into(),
            steps: 1500,
            batch: 8,
            patch: 64,
            learning_rate: 1e-3,
            weight_decay: 1e-4,
            seed: 1,
            date_swap: false,
            start_linear: true,
        }
    }
}

/// splitmix64: every random draw of training.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: usize) -> usize {
        (self.uniform() * n as f64) as usize % n.max(1)
    }
    fn normal(&mut self) -> f64 {
        let u = self.uniform().max(1e-300);
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// He-initialised parameters (the linear skip and biases at 0).
fn init_params(arch: &Arch, rng: &mut Rng) -> Vec<f32> {
    let l = arch.layout();
    let mut p = vec![0.0f32; l.len];
    let (c0, c1, c2) = (arch.c0, arch.c1, arch.c2);
    for (r, fan_in) in [
        (l.w0.clone(), NF),
        (l.w1.clone(), c0 * 9),
        (l.w2.clone(), c1 * 9),
        (l.w3.clone(), c2 * 9),
        (l.w4.clone(), (c1 + c2) * 9),
        (l.w5.clone(), c0 + c1),
        (l.w6.clone(), c0),
    ] {
        let sd = (2.0 / fan_in as f64).sqrt();
        for v in &mut p[r] {
            *v = (rng.normal() * sd) as f32;
        }
    }
    p
}

/// One training patch: where, and how it is transformed.
#[derive(Debug, Clone, Copy)]
struct PatchSpec {
    pair: usize,
    y: usize,
    x: usize,
    /// Quarter turns, then a mirror of the columns.
    rot: u8,
    flip: bool,
    swap: bool,
}

/// The standardised input planes, targets and loss weights of a patch.
fn make_patch(
    d: &PairRaster,
    z: &[Vec<f32>; 2],
    spec: &PatchSpec,
    size: usize,
    wpos: f32,
    wneg: f32,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let n = size * size;
    let src = &z[spec.swap as usize];
    let dn = d.h * d.w;
    let mut x = vec![0.0f32; NF * n];
    let mut t = vec![0.0f32; n];
    let mut wt = vec![0.0f32; n];
    for r in 0..size {
        for c in 0..size {
            // Output (r, c) reads the source at the transformed position.
            let (mut sr, mut sc) = (r, c);
            if spec.flip {
                sc = size - 1 - sc;
            }
            for _ in 0..spec.rot {
                (sr, sc) = (sc, size - 1 - sr);
            }
            let si = (spec.y + sr) * d.w + spec.x + sc;
            let o = r * size + c;
            if !d.valid[si] {
                continue;
            }
            for k in 0..NF {
                x[k * n + o] = src[k * dn + si];
            }
            let ch = d.change[si];
            t[o] = ch as u8 as f32;
            wt[o] = if ch { wpos } else { wneg } / n as f32;
        }
    }
    (x, t, wt)
}

/// Standardises a pair's features in place (masked pixels 0).
fn standardise(raw: &[f32], valid: &[bool], mean: &[f32], scale: &[f32]) -> Vec<f32> {
    let n = valid.len();
    let mut z = vec![0.0f32; raw.len()];
    for k in 0..NF {
        for i in 0..n {
            if valid[i] {
                let v = raw[k * n + i];
                let v = if v.is_nan() {
                    0.0
                } else {
                    v.clamp(-20.0, 20.0)
                };
                z[k * n + i] = (v - mean[k]) / scale[k];
            }
        }
    }
    z
}

/// Trains the network on `data`.
pub fn train(
    data: &[PairRaster],
    s: &Settings,
    excluded: &[String],
    command: &str,
    progress: &dyn Progress,
) -> Result<CnnModel> {
    let arch = Arch::named(&s.arch_name)?;
    if data.is_empty() {
        return Err(Error::invalid("no labelled pairs to train on"));
    }
    if !s.patch.is_multiple_of(ALIGN) || s.patch < 16 {
        return Err(Error::usage(format!(
            "--patch must be a multiple of {ALIGN}, at least 16"
        )));
    }
    for d in data {
        if d.h < s.patch || d.w < s.patch {
            return Err(Error::invalid(format!(
                "{}: {} x {} px, smaller than the {} px training patches",
                d.name, d.w, d.h, s.patch
            )));
        }
        if d.positives() == 0 {
            return Err(Error::invalid(format!(
                "{}: no change pixel is compared: unusable for training",
                d.name
            )));
        }
    }
    // Standardisation over every compared pixel of the training pairs.
    let mut sum = vec![0.0f64; NF];
    let mut sq = vec![0.0f64; NF];
    let mut cnt = 0.0f64;
    for d in data {
        let n = d.h * d.w;
        for k in 0..NF {
            for i in 0..n {
                if d.valid[i] {
                    let v = d.features[k * n + i];
                    let v = if v.is_nan() {
                        0.0
                    } else {
                        v.clamp(-20.0, 20.0)
                    } as f64;
                    sum[k] += v;
                    sq[k] += v * v;
                }
            }
        }
        cnt += d.compared() as f64;
    }
    let mean: Vec<f32> = sum.iter().map(|s| (s / cnt) as f32).collect();
    let scale: Vec<f32> = (0..NF)
        .map(|k| {
            let m = sum[k] / cnt;
            ((sq[k] / cnt - m * m).max(0.0).sqrt() + 1e-6) as f32
        })
        .collect();
    let z: Vec<[Vec<f32>; 2]> = data
        .iter()
        .map(|d| {
            [
                standardise(&d.features, &d.valid, &mean, &scale),
                if s.date_swap {
                    standardise(&d.swapped, &d.valid, &mean, &scale)
                } else {
                    Vec::new()
                },
            ]
        })
        .collect();
    // Pair draw probabilities and class weights.
    let pw: Vec<f64> = data.iter().map(|d| (d.positives() as f64).sqrt()).collect();
    let total: f64 = pw.iter().sum();
    let cw: Vec<(f32, f32)> = data
        .iter()
        .map(|d| {
            let (np, nc) = (d.positives() as f64, d.compared() as f64);
            (
                (0.5 * nc / np) as f32,
                (0.5 * nc / (nc - np).max(1.0)) as f32,
            )
        })
        .collect();

    let mut rng = Rng(s.seed);
    let mut params = init_params(&arch, &mut rng);
    let l = arch.layout();
    if s.start_linear {
        let lr = fit_linear(data)?;
        // The regression's z_lr = (f - m_lr) / s_lr in the network's
        // standardisation z = (f - mean) / scale.
        let mut b = lr.intercept;
        for k in 0..NF {
            let c = lr.coef[k] / lr.scale[k];
            params[l.wl.start + k] = (c * scale[k] as f64) as f32;
            b += c * (mean[k] as f64 - lr.mean[k]);
        }
        params[l.b6.start] = b as f32;
        params[l.w6.clone()].iter_mut().for_each(|v| *v = 0.0);
    }
    let decays: Vec<bool> = {
        let mut v = vec![false; l.len];
        for r in [&l.w0, &l.w1, &l.w2, &l.w3, &l.w4, &l.w5, &l.w6, &l.wl] {
            v[r.clone()].iter_mut().for_each(|b| *b = true);
        }
        v
    };
    let (mut m1, mut m2) = (vec![0.0f64; l.len], vec![0.0f64; l.len]);
    let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8f64);
    progress.start("train", s.steps as u64);
    for step in 0..s.steps {
        let specs: Vec<PatchSpec> = (0..s.batch)
            .map(|_| {
                let mut u = rng.uniform() * total;
                let mut pair = data.len() - 1;
                for (i, w) in pw.iter().enumerate() {
                    if u < *w {
                        pair = i;
                        break;
                    }
                    u -= w;
                }
                let d = &data[pair];
                PatchSpec {
                    pair,
                    y: rng.below(d.h - s.patch + 1),
                    x: rng.below(d.w - s.patch + 1),
                    rot: rng.below(4) as u8,
                    flip: rng.below(2) == 1,
                    swap: s.date_swap && rng.below(2) == 1,
                }
            })
            .collect();
        let grads: Vec<Vec<f32>> = specs
            .par_iter()
            .map(|spec| {
                let (wp, wn) = cw[spec.pair];
                let (x, t, wt) = make_patch(&data[spec.pair], &z[spec.pair], spec, s.patch, wp, wn);
                let acts = forward(&arch, &params, x, s.patch, s.patch);
                let dlogit: Vec<f32> = acts
                    .logit
                    .iter()
                    .zip(&t)
                    .zip(&wt)
                    .map(|((&zv, &tv), &wv)| wv * (sigmoid(zv) - tv))
                    .collect();
                backward(&arch, &params, &acts, &dlogit)
            })
            .collect();
        let mut g = vec![0.0f64; l.len];
        for gr in &grads {
            for (a, b) in g.iter_mut().zip(gr) {
                *a += *b as f64;
            }
        }
        let lr = s.learning_rate
            * (0.02
                + 0.98 * 0.5 * (1.0 + (std::f64::consts::PI * step as f64 / s.steps as f64).cos()));
        let t = (step + 1) as i32;
        for k in 0..l.len {
            let gk = g[k] / s.batch as f64;
            m1[k] = b1 * m1[k] + (1.0 - b1) * gk;
            m2[k] = b2 * m2[k] + (1.0 - b2) * gk * gk;
            let mh = m1[k] / (1.0 - b1.powi(t));
            let vh = m2[k] / (1.0 - b2.powi(t));
            let mut p = params[k] as f64;
            if decays[k] {
                p -= lr * s.weight_decay * p;
            }
            p -= lr * mh / (vh.sqrt() + eps);
            params[k] = p as f32;
        }
        progress.advance(1);
    }

    // The cut: best F1 of the counts summed over the training pairs.
    // Cuts on the logit: class-balanced training puts the best cut well
    // above 0.5.
    let grid: Vec<f64> = (0..=150)
        .map(|i| sigmoid(-5.0 + 0.1 * i as f32) as f64)
        .collect();
    let mut summed = vec![[0.0f64; 3]; grid.len()];
    for (d, zz) in data.iter().zip(&z) {
        let acts = forward(&arch, &params, zz[0].clone(), d.h, d.w);
        for (i, &lg) in acts.logit.iter().enumerate() {
            if !d.valid[i] {
                continue;
            }
            let p = sigmoid(lg) as f64;
            for (k, &t) in grid.iter().enumerate() {
                match (p >= t, d.change[i]) {
                    (true, true) => summed[k][0] += 1.0,
                    (true, false) => summed[k][1] += 1.0,
                    (false, true) => summed[k][2] += 1.0,
                    _ => {}
                }
            }
        }
    }
    let (best, best_f1) = summed
        .iter()
        .enumerate()
        .map(|(k, c)| (k, super::f1(c)))
        .fold((0, -1.0), |a, b| if b.1 > a.1 { b } else { a });
    let positives = data.iter().map(|d| d.positives() as u64).sum();
    let compared: u64 = data.iter().map(|d| d.compared() as u64).sum();
    Ok(CnnModel {
        format: cnn::FORMAT.to_string(),
        kind: "fully_convolutional_network".to_string(),
        arch_name: s.arch_name.clone(),
        arch,
        features: FEATURES.iter().map(|s| s.to_string()).collect(),
        mean,
        scale,
        params,
        probability_threshold: grid[best],
        training: TrainingSettings {
            steps: s.steps,
            batch: s.batch,
            patch: s.patch,
            learning_rate: s.learning_rate,
            seed: s.seed,
            augmentation: format!(
                "{}{}",
                if s.start_linear {
                    "started from the logistic regression of the learned method; "
                } else {
                    ""
                },
                format_args!(
                    "random flips and quarter turns{}",
                    if s.date_swap { ", dates swapped" } else { "" }
                )
            ),
            loss: "binary cross-entropy, classes balanced within each pair, pairs drawn as the square root of their change pixels".to_string(),
        },
        provenance: super::provenance(
            data.iter().map(|d| d.name.clone()).collect(),
            excluded,
            command,
            (positives, compared - positives),
            format!(
                "in-sample over the {} training pairs: the cut (logits -5 to 10 by 0.1) with the best F1 of the summed confusion counts",
                data.len()
            ),
            best_f1,
        ),
    })
}

/// The learned method's logistic regression on the pairs' compared pixels
/// (kept on the lattices `dunewatch train` uses for it).
fn fit_linear(data: &[PairRaster]) -> Result<super::Logistic> {
    let parts: Vec<super::PairData> = data
        .iter()
        .map(|d| {
            let n = d.h * d.w;
            let sn = super::lattice_step(n as u64);
            let sp = super::lattice_step(d.positives() as u64);
            let mut out = super::PairData {
                name: d.name.clone(),
                ..Default::default()
            };
            for y in 0..d.h {
                for x in 0..d.w {
                    let i = y * d.w + x;
                    let ch = d.change[i];
                    let st = if ch { sp } else { sn };
                    if !d.valid[i] || x % st != 0 || y % st != 0 {
                        continue;
                    }
                    out.features
                        .push(std::array::from_fn(|k| d.features[k * n + i]));
                    out.change.push(ch);
                    out.weight.push((st * st) as f32);
                }
            }
            out
        })
        .collect();
    let refs: Vec<&super::PairData> = parts.iter().collect();
    super::fit_logistic(&refs)
}

#[inline]
fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

/// Gradient of the loss with respect to every parameter, given the
/// gradient with respect to the logits.
pub fn backward(arch: &Arch, p: &[f32], a: &Acts, dlogit: &[f32]) -> Vec<f32> {
    let l = arch.layout();
    let (c0, c1, c2) = (arch.c0, arch.c1, arch.c2);
    let (h, w, h1, w1, h2, w2) = (a.h, a.w, a.h1, a.w1, a.h2, a.w2);
    let n = h * w;
    let mut g = vec![0.0f32; l.len];
    // logit = w6 . hd + b6 + wl . x
    {
        let (gw, _) = split(&mut g, &l.wl);
        conv1x1_bwd(&a.x, NF, n, dlogit, 1, gw, None, None, &p[l.wl.clone()]);
    }
    let mut dhd = vec![0.0f32; c0 * n];
    {
        let (gw6, gb6) = split2(&mut g, &l.w6, &l.b6);
        conv1x1_bwd(
            &a.hd,
            c0,
            n,
            dlogit,
            1,
            gw6,
            Some(gb6),
            Some(&mut dhd),
            &p[l.w6.clone()],
        );
    }
    relu_bwd(&mut dhd, &a.hd);
    let mut dcat0 = vec![0.0f32; (c0 + c1) * n];
    {
        let (gw5, gb5) = split2(&mut g, &l.w5, &l.b5);
        conv1x1_bwd(
            &a.cat0,
            c0 + c1,
            n,
            &dhd,
            c0,
            gw5,
            Some(gb5),
            Some(&mut dcat0),
            &p[l.w5.clone()],
        );
    }
    let mut de0 = dcat0[..c0 * n].to_vec();
    let mut dd1 = up2_bwd(&dcat0[c0 * n..], c1, h, w, h1, w1);
    relu_bwd(&mut dd1, &a.d1);
    let n1 = h1 * w1;
    let mut dcat1 = vec![0.0f32; (c1 + c2) * n1];
    {
        let (gw4, gb4) = split2(&mut g, &l.w4, &l.b4);
        conv3_bwd(
            &a.cat1,
            c1 + c2,
            h1,
            w1,
            &p[l.w4.clone()],
            c1,
            &dd1,
            gw4,
            gb4,
            Some(&mut dcat1),
        );
    }
    let mut de1 = dcat1[..c1 * n1].to_vec();
    let mut de3 = up2_bwd(&dcat1[c1 * n1..], c2, h1, w1, h2, w2);
    relu_bwd(&mut de3, &a.e3);
    let n2 = h2 * w2;
    let mut de2 = vec![0.0f32; c2 * n2];
    {
        let (gw3, gb3) = split2(&mut g, &l.w3, &l.b3);
        conv3_bwd(
            &a.e2,
            c2,
            h2,
            w2,
            &p[l.w3.clone()],
            c2,
            &de3,
            gw3,
            gb3,
            Some(&mut de2),
        );
    }
    relu_bwd(&mut de2, &a.e2);
    let mut dp2 = vec![0.0f32; c1 * n2];
    {
        let (gw2, gb2) = split2(&mut g, &l.w2, &l.b2);
        conv3_bwd(
            &a.p2,
            c1,
            h2,
            w2,
            &p[l.w2.clone()],
            c2,
            &de2,
            gw2,
            gb2,
            Some(&mut dp2),
        );
    }
    for (a, b) in de1.iter_mut().zip(pool2_bwd(&dp2, c1, h1, w1)) {
        *a += b;
    }
    relu_bwd(&mut de1, &a.e1);
    let mut dp1 = vec![0.0f32; c0 * n1];
    {
        let (gw1, gb1) = split2(&mut g, &l.w1, &l.b1);
        conv3_bwd(
            &a.p1,
            c0,
            h1,
            w1,
            &p[l.w1.clone()],
            c1,
            &de1,
            gw1,
            gb1,
            Some(&mut dp1),
        );
    }
    for (a, b) in de0.iter_mut().zip(pool2_bwd(&dp1, c0, h, w)) {
        *a += b;
    }
    relu_bwd(&mut de0, &a.e0);
    {
        let (gw0, gb0) = split2(&mut g, &l.w0, &l.b0);
        conv1x1_bwd(
            &a.x,
            NF,
            n,
            &de0,
            c0,
            gw0,
            Some(gb0),
            None,
            &p[l.w0.clone()],
        );
    }
    g
}

fn split<'a>(g: &'a mut [f32], r: &std::ops::Range<usize>) -> (&'a mut [f32], ()) {
    (&mut g[r.clone()], ())
}

/// Two disjoint ranges of `g`, the first before the second.
fn split2<'a>(
    g: &'a mut [f32],
    a: &std::ops::Range<usize>,
    b: &std::ops::Range<usize>,
) -> (&'a mut [f32], &'a mut [f32]) {
    debug_assert!(a.end <= b.start);
    let (lo, hi) = g.split_at_mut(b.start);
    (&mut lo[a.clone()], &mut hi[..b.len()])
}

fn relu_bwd(d: &mut [f32], out: &[f32]) {
    for (g, o) in d.iter_mut().zip(out) {
        if *o <= 0.0 {
            *g = 0.0;
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn conv1x1_bwd(
    inp: &[f32],
    ci: usize,
    n: usize,
    dout: &[f32],
    co: usize,
    gw: &mut [f32],
    gb: Option<&mut [f32]>,
    dinp: Option<&mut [f32]>,
    w: &[f32],
) {
    for o in 0..co {
        let d = &dout[o * n..(o + 1) * n];
        for i in 0..ci {
            let s: f32 = d
                .iter()
                .zip(&inp[i * n..(i + 1) * n])
                .map(|(a, b)| a * b)
                .sum();
            gw[o * ci + i] += s;
        }
    }
    if let Some(gb) = gb {
        for o in 0..co {
            gb[o] += dout[o * n..(o + 1) * n].iter().sum::<f32>();
        }
    }
    if let Some(di) = dinp {
        for o in 0..co {
            let d = &dout[o * n..(o + 1) * n];
            for i in 0..ci {
                let wv = w[o * ci + i];
                for (a, b) in di[i * n..(i + 1) * n].iter_mut().zip(d) {
                    *a += wv * b;
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn conv3_bwd(
    inp: &[f32],
    ci: usize,
    h: usize,
    w: usize,
    wt: &[f32],
    co: usize,
    dout: &[f32],
    gw: &mut [f32],
    gb: &mut [f32],
    mut dinp: Option<&mut [f32]>,
) {
    let n = h * w;
    for o in 0..co {
        for y in 0..h {
            let drow = &dout[o * n + y * w..o * n + (y + 1) * w];
            gb[o] += drow.iter().sum::<f32>();
            for i in 0..ci {
                for ky in 0..3 {
                    let Some(sy) = (y + ky).checked_sub(1).filter(|s| *s < h) else {
                        continue;
                    };
                    let srow = &inp[i * n + sy * w..i * n + (sy + 1) * w];
                    let k = ((o * ci + i) * 3 + ky) * 3;
                    if w > 1 {
                        gw[k] += drow[1..]
                            .iter()
                            .zip(&srow[..w - 1])
                            .map(|(a, b)| a * b)
                            .sum::<f32>();
                        gw[k + 2] += drow[..w - 1]
                            .iter()
                            .zip(&srow[1..])
                            .map(|(a, b)| a * b)
                            .sum::<f32>();
                    }
                    gw[k + 1] += drow.iter().zip(srow).map(|(a, b)| a * b).sum::<f32>();
                    if let Some(di) = dinp.as_deref_mut() {
                        let drs = &mut di[i * n + sy * w..i * n + (sy + 1) * w];
                        let (a, b, c) = (wt[k], wt[k + 1], wt[k + 2]);
                        for x in 0..w {
                            let d = drow[x];
                            if x >= 1 {
                                drs[x - 1] += a * d;
                            }
                            drs[x] += b * d;
                            if x + 1 < w {
                                drs[x + 1] += c * d;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Gradient of [`cnn::pool2`] onto the `h` x `w` input.
fn pool2_bwd(dout: &[f32], c: usize, h: usize, w: usize) -> Vec<f32> {
    let (ph, pw) = (h.div_ceil(2), w.div_ceil(2));
    let mut din = vec![0.0f32; c * h * w];
    for k in 0..c {
        for y in 0..h {
            let cy = if (y / 2) * 2 + 1 < h { 2.0 } else { 1.0 };
            for x in 0..w {
                let cx = if (x / 2) * 2 + 1 < w { 2.0 } else { 1.0 };
                din[k * h * w + y * w + x] = dout[k * ph * pw + (y / 2) * pw + x / 2] / (cy * cx);
            }
        }
    }
    din
}

/// Gradient of [`cnn::up2`] onto the `ih` x `iw` input.
fn up2_bwd(dout: &[f32], c: usize, h: usize, w: usize, ih: usize, iw: usize) -> Vec<f32> {
    let mut din = vec![0.0f32; c * ih * iw];
    for k in 0..c {
        for y in 0..h {
            for x in 0..w {
                din[k * ih * iw + (y / 2) * iw + x / 2] += dout[k * h * w + y * w + x];
            }
        }
    }
    din
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backward_matches_finite_differences() {
        let arch = Arch::named("unet4").unwrap();
        let mut rng = Rng(7);
        let mut p = init_params(&arch, &mut rng);
        let l = arch.layout();
        for v in &mut p[l.wl.clone()] {
            *v = (rng.normal() * 0.1) as f32;
        }
        for v in p.iter_mut() {
            *v += (rng.normal() * 0.05) as f32;
        }
        // Odd sizes exercise the partial pooling cells.
        let (h, w) = (11, 13);
        let x: Vec<f32> = (0..NF * h * w).map(|_| rng.normal() as f32).collect();
        let t: Vec<f32> = (0..h * w)
            .map(|i| ((i * 7) % 5 == 0) as u8 as f32)
            .collect();
        let loss = |p: &[f32]| -> f64 {
            let a = forward(&arch, p, x.clone(), h, w);
            a.logit
                .iter()
                .zip(&t)
                .map(|(&z, &t)| {
                    let z = z as f64;
                    z.max(0.0) - z * t as f64 + (-z.abs()).exp().ln_1p()
                })
                .sum()
        };
        let a = forward(&arch, &p, x.clone(), h, w);
        let dl: Vec<f32> = a
            .logit
            .iter()
            .zip(&t)
            .map(|(&z, &t)| sigmoid(z) - t)
            .collect();
        let g = backward(&arch, &p, &a, &dl);
        // Central differences; a step can cross a ReLU's kink, so a few
        // parameters may disagree, never most.
        let (mut checked, mut bad) = (0, Vec::new());
        for k in (0..l.len).step_by(3) {
            let eps = 2e-3f32;
            let mut pp = p.clone();
            pp[k] += eps;
            let up = loss(&pp);
            pp[k] -= 2.0 * eps;
            let down = loss(&pp);
            let num = (up - down) / (2.0 * eps as f64);
            let tol = 2e-2 * num.abs().max(g[k].abs() as f64) + 1e-2;
            if (num - g[k] as f64).abs() > tol {
                bad.push((k, num, g[k]));
            }
            checked += 1;
        }
        assert!(checked > 500);
        assert!(
            bad.len() * 50 <= checked,
            "{} of {checked}: {:?}",
            bad.len(),
            &bad[..bad.len().min(20)]
        );
    }

    #[test]
    fn patch_transforms_are_the_dihedral_group() {
        // A 4x4 pair with one marked pixel: each of the 8 transforms puts it
        // at a distinct place.
        let (h, w) = (4, 4);
        let mut d = PairRaster {
            name: "t".into(),
            h,
            w,
            features: vec![0.0; NF * 16],
            swapped: vec![0.0; NF * 16],
            valid: vec![true; 16],
            change: vec![false; 16],
        };
        d.change[1] = true;
        let z = [d.features.clone(), d.swapped.clone()];
        let mut seen = std::collections::BTreeSet::new();
        for rot in 0..4 {
            for flip in [false, true] {
                let spec = PatchSpec {
                    pair: 0,
                    y: 0,
                    x: 0,
                    rot,
                    flip,
                    swap: false,
                };
                let (_, t, _) = make_patch(&d, &z, &spec, 4, 1.0, 1.0);
                let at = t.iter().position(|v| *v == 1.0).unwrap();
                seen.insert(at);
            }
        }
        assert_eq!(seen.len(), 8);
    }
}
