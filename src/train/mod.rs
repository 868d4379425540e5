//! `dunewatch train`: fits the learned method's logistic regression on
//! labelled before/after pairs.
//!
//! For every pair the scenes are read and aligned exactly as `detect` does,
//! the pass-1 sample gives the scene statistics, and the block pass computes
//! the features with [`crate::detect::score::Model::learned_features`], the code
//! `detect --method learned` uses. Kept pixels: every change pixel (on a
//! lattice when there are very many) and the no-change pixels on a regular
//! lattice; each kept pixel stands for the pixels its lattice cell holds.
//! Pixels the multi-temporal cloud test masks in detect are left out here
//! too (see [`crate::detect::clouds`]).
//!
//! The fit is class-balanced per pair (each pair's change and no-change
//! pixels weigh the same in total), so the scene's share of change does not
//! set the prior; a pair's weight grows as the square root of its change
//! pixels, between equal weights per pair (a pair with a few hundred change
//! pixels would weigh as much as one with tens of thousands) and pooled
//! pixels (the largest pairs would dominate). Chosen by leave-one-city-out
//! on OSCD: F1 0.372 against 0.364 with equal pair weights. The probability cut is chosen by
//! leave-one-pair-out inside the training pairs: the model trained on the
//! other pairs scores the left-out pair, the confusion counts are summed
//! over pairs at every cut on a grid, and the cut with the best summed F1 is
//! kept. A model's own training pixels never choose its cut (unless there
//! is one pair only).

pub mod cnn;

use crate::align::Window;
use crate::align::{self, AlignOptions, AlignedPair, SceneReader};
use crate::detect::cloud_cells::{self, CellMask, CloudCells};
use crate::detect::clouds::CellCounts;
use crate::detect::learned::{self, sigmoid, LearnedModel, Provenance, FEATURES, NF};
use crate::detect::masks::MaskReason;
use crate::detect::pixels::Pixels;
use crate::detect::sample::Sample;
use crate::detect::{collect_sample, expand, pixels, Method, Model, OPTIONAL_BANDS, STAT_BANDS};
use crate::error::{gdal_msg, Error, Result};
use crate::eval::truth::TruthCoding;
use crate::per_thread::PerThread;
use crate::progress::Progress;
use crate::read;
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// One labelled pair.
#[derive(Debug, Clone)]
pub struct TrainPair {
    pub name: String,
    pub before: PathBuf,
    pub after: PathBuf,
    /// Change label on the before scene's 10 m grid (0/1, 1/2 or 0/255).
    pub label: PathBuf,
}

/// The labelled pairs of an OSCD-style folder (`images/<city>/imgs_1`,
/// `images/<city>/imgs_2`, `labels/<city>/<city>-cm.tif`), by name, less
/// `exclude`.
pub fn oscd_pairs(dir: &Path, exclude: &[String]) -> Result<Vec<TrainPair>> {
    let labels = dir.join("labels");
    let rd = std::fs::read_dir(&labels)
        .map_err(|e| Error::input(&labels, format!("cannot list labels: {e}")))?;
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for x in exclude {
        if !names.contains(x) {
            return Err(Error::invalid(format!(
                "--exclude {x}: no such labelled pair in {}",
                dir.display()
            )));
        }
    }
    let pairs: Vec<TrainPair> = names
        .into_iter()
        .filter(|n| !exclude.contains(n))
        .map(|n| TrainPair {
            before: dir.join("images").join(&n).join("imgs_1"),
            after: dir.join("images").join(&n).join("imgs_2"),
            label: labels.join(&n).join(format!("{n}-cm.tif")),
            name: n,
        })
        .filter(|p| p.before.is_dir() && p.after.is_dir() && p.label.is_file())
        .collect();
    Ok(pairs)
}

/// Training pixels of one pair.
#[derive(Debug, Clone, Default)]
pub struct PairData {
    pub name: String,
    pub features: Vec<[f32; NF]>,
    pub change: Vec<bool>,
    /// Pixels each kept pixel stands for (its lattice cell).
    pub weight: Vec<f32>,
}

impl PairData {
    pub fn len(&self) -> usize {
        self.change.len()
    }
    pub fn is_empty(&self) -> bool {
        self.change.is_empty()
    }
}

/// About this many no-change (and at most this many change) pixels are kept
/// per pair.
pub const KEEP_PER_CLASS: usize = 60_000;

pub(crate) fn lattice_step(n: u64) -> usize {
    ((n as f64 / KEEP_PER_CLASS as f64).sqrt().ceil() as usize).max(1)
}

/// The label as change flags on the pair's grid.
pub(crate) fn read_label(path: &Path, pair: &AlignedPair) -> Result<(Vec<bool>, u64)> {
    let ds = crate::error::open_raster(path)?;
    let (w, h) = ds.raster_size();
    if (w, h) != (pair.grid.width, pair.grid.height) {
        return Err(Error::input(
            path,
            format!(
                "label is {w} x {h} px, the before scene's grid is {} x {} px",
                pair.grid.width, pair.grid.height
            ),
        ));
    }
    let band = ds
        .rasterband(1)
        .map_err(|e| Error::input(path, gdal_msg(&e)))?;
    let v = band
        .read_as::<u8>((0, 0), (w, h), (w, h), None)
        .map_err(|e| Error::input(path, gdal_msg(&e)))?
        .into_shape_and_vec()
        .1;
    let mut counts = [0u64; 256];
    for &x in &v {
        counts[x as usize] += 1;
    }
    let coding = TruthCoding::detect(&counts).map_err(|e| Error::input(path, e))?;
    let c = coding.change();
    let (npos, total) = (counts[c as usize], (w * h) as u64);
    if npos == 0 || npos == total {
        let which = if npos == 0 { "no-change" } else { "change" };
        return Err(Error::input(
            path,
            format!(
                "label has one class only (every pixel is {which}): unusable for training, which needs both change and no-change pixels"
            ),
        ));
    }
    Ok((v.iter().map(|&x| x == c).collect(), counts[c as usize]))
}

/// One block's kept pixels, their grid positions, and its cells' counts
/// for the multi-temporal cloud test.
type BlockPart = (PairData, Vec<(usize, usize)>, CellCounts);

/// A labelled pair read as `detect` reads it, for training on it.
pub(crate) struct OpenedPair {
    pub pair: AlignedPair,
    /// The label's change flags on the pair's grid, and their count.
    pub label: Vec<bool>,
    pub npos: u64,
    /// The pass-1 sample and the learned method's statistics fitted on it.
    pub sample: Sample,
    pub model: Model,
}

/// Reads, aligns and co-registers a pair (as detect does, so the features
/// are those detect will compute), its label and its pass-1 sample.
pub(crate) fn open_pair(p: &TrainPair, progress: &dyn Progress) -> Result<OpenedPair> {
    let before = read::open_scene(&p.before)?;
    let after = read::open_scene(&p.after)?;
    let mut pair = align::align(
        before,
        after,
        &STAT_BANDS,
        &OPTIONAL_BANDS,
        &AlignOptions::default(),
    )?;
    align::coregister::coregister(&mut pair)?;
    let (label, npos) = read_label(&p.label, &pair)?;
    let (sample, _) = collect_sample(&pair, 1 << 18, progress)?;
    let model = Model::fit_stats(&sample, Method::Learned)?;
    Ok(OpenedPair {
        pair,
        label,
        npos,
        sample,
        model,
    })
}

/// A block's pixels read with the model's halo: the window read, its
/// pixels and their learned features (None where masked).
pub(crate) type BlockFeatures = (Window, Pixels, Vec<Option<[f32; NF]>>);

/// One block's pixels read with the model's halo, and their learned
/// features.
pub(crate) fn block_features(
    reader: &mut SceneReader,
    pair: &AlignedPair,
    model: &Model,
    block: Window,
) -> Result<BlockFeatures> {
    let g = &pair.grid;
    let read = expand(block, model.halo(), g.width, g.height);
    let px = pixels::read_pixels(reader, pair, read, (read.w, read.h))?;
    let feats = model.learned_features(&px, read.w, read.h);
    Ok((read, px, feats))
}

/// The cells the multi-temporal cloud test masks (as detect does), from
/// the blocks' counts.
pub(crate) fn cloud_mask<'a>(
    pair: &AlignedPair,
    blocks: impl IntoIterator<Item = &'a CellCounts>,
) -> CloudCells {
    let mut counts = CellCounts::for_pixels(0, 0, pair.grid.width, pair.grid.height);
    for c in blocks {
        counts.merge(c);
    }
    cloud_cells::decide(&counts, &cloud_cells::Geometry::of(pair))
}

/// Reads, aligns and featurises one pair.
pub fn collect_pair(p: &TrainPair, progress: &dyn Progress) -> Result<PairData> {
    let OpenedPair {
        pair,
        label,
        npos,
        model,
        ..
    } = open_pair(p, progress)?;
    let g = &pair.grid;
    let sn = lattice_step((g.width * g.height) as u64);
    let sp = lattice_step(npos);
    let blocks = g.blocks(512);
    progress.start("features", blocks.len() as u64);
    let readers = PerThread::new();
    // Each block's kept pixels (with their positions) and its cells' counts
    // for the multi-temporal cloud test, which detect masks as well.
    let parts: Vec<BlockPart> = blocks
        .par_iter()
        .map(|&block| {
            readers.with(
                || Ok(SceneReader::new(&pair)),
                |reader| -> Result<BlockPart> {
                    let (read, px, feats) = block_features(reader, &pair, &model, block)?;
                    let mut out = PairData::default();
                    let mut pos = Vec::new();
                    let mut cells = CellCounts::for_pixels(block.x, block.y, block.w, block.h);
                    for r in 0..block.h {
                        for c in 0..block.w {
                            let (x, y) = (block.x + c, block.y + r);
                            let i = (y - read.y) * read.w + x - read.x;
                            if px.mask[i] != MaskReason::Valid {
                                continue;
                            }
                            cells.add(x, y, model.clouds.classify(&px.x(i), &px.y(i)));
                            let change = label[y * g.width + x];
                            let s = if change { sp } else { sn };
                            if x % s != 0 || y % s != 0 {
                                continue;
                            }
                            if let Some(f) = feats[i] {
                                out.features.push(f);
                                out.change.push(change);
                                out.weight.push((s * s) as f32);
                                pos.push((x, y));
                            }
                        }
                    }
                    progress.advance(1);
                    Ok((out, pos, cells))
                },
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let clouds = cloud_mask(&pair, parts.iter().map(|p| &p.2));
    let mut d = PairData {
        name: p.name.clone(),
        ..Default::default()
    };
    for (part, pos, _) in parts {
        for (k, (x, y)) in pos.into_iter().enumerate() {
            if clouds.at(x, y) == CellMask::Clear {
                d.features.push(part.features[k]);
                d.change.push(part.change[k]);
                d.weight.push(part.weight[k]);
            }
        }
    }
    Ok(d)
}

/// A trained model's provenance: the pairs trained on and left out, the
/// labels' licence and citation, the command, the training pixels
/// (positives, negatives) and how the probability cut was chosen.
pub(crate) fn provenance(
    trained_on: Vec<String>,
    excluded: &[String],
    command: &str,
    (positives, negatives): (u64, u64),
    threshold_selection: String,
    selection_f1: f64,
) -> Provenance {
    Provenance {
        trained_on,
        excluded: excluded.to_vec(),
        labels: "change labels of the given pairs (for OSCD: Onera Satellite Change Detection dataset, urban change)".to_string(),
        licence: "OSCD labels: CC BY-NC-SA 4.0 (Creative Commons Attribution-NonCommercial-ShareAlike); images: modified Copernicus Sentinel data".to_string(),
        citation: "R. Caye Daudt, B. Le Saux, A. Boulch, Y. Gousseau, Urban change detection for multispectral earth observation using convolutional neural networks, IGARSS 2018".to_string(),
        command: command.to_string(),
        tool_version: crate::VERSION.to_string(),
        positives,
        negatives,
        threshold_selection,
        selection_f1: selection_f1.max(0.0),
    }
}

/// A fitted logistic regression (before the cut is chosen).
#[derive(Debug, Clone)]
pub struct Logistic {
    pub mean: Vec<f64>,
    pub scale: Vec<f64>,
    pub coef: Vec<f64>,
    pub intercept: f64,
}

impl Logistic {
    pub fn probability(&self, f: &[f32; NF]) -> f64 {
        let m = LearnedModel {
            format: String::new(),
            kind: String::new(),
            features: Vec::new(),
            mean: self.mean.clone(),
            scale: self.scale.clone(),
            coef: self.coef.clone(),
            intercept: self.intercept,
            probability_threshold: 0.5,
            provenance: empty_provenance(),
        };
        sigmoid(m.logit(f))
    }
}

fn empty_provenance() -> Provenance {
    Provenance {
        trained_on: vec![],
        excluded: vec![],
        labels: String::new(),
        licence: String::new(),
        citation: String::new(),
        command: String::new(),
        tool_version: String::new(),
        positives: 0,
        negatives: 0,
        threshold_selection: String::new(),
        selection_f1: 0.0,
    }
}

/// L2 penalty on the standardised coefficients, relative to the total weight.
pub const L2: f64 = 1e-2;

/// Weights of one pair's change and no-change pixels in the fit: both
/// classes sum to sqrt(npos), so the classes balance within the pair and a
/// pair weighs as the square root of its change pixels.
pub fn class_weights(npos: f64, nneg: f64) -> (f64, f64) {
    (1.0 / npos.sqrt(), npos.sqrt() / nneg)
}

/// Class-balanced (per pair, pairs weighted by the square root of their
/// change pixels), L2-penalised logistic regression by Newton's method.
pub fn fit_logistic(pairs: &[&PairData]) -> Result<Logistic> {
    let rows: usize = pairs.iter().map(|p| p.len()).sum();
    if rows == 0 {
        return Err(Error::invalid("no training pixels"));
    }
    let clipf = |v: f32| -> f64 {
        (if v.is_nan() {
            0.0
        } else {
            v.clamp(-20.0, 20.0)
        }) as f64
    };
    // Standardisation over all rows.
    let mut mean = vec![0.0f64; NF];
    let mut sq = vec![0.0f64; NF];
    for p in pairs {
        for f in &p.features {
            for k in 0..NF {
                let v = clipf(f[k]);
                mean[k] += v;
                sq[k] += v * v;
            }
        }
    }
    let n = rows as f64;
    let scale: Vec<f64> = (0..NF)
        .map(|k| {
            mean[k] /= n;
            ((sq[k] / n - mean[k] * mean[k]).max(0.0).sqrt()) + 1e-6
        })
        .collect();
    // Rows: standardised features + 1, class-balanced weight, target.
    let d = NF + 1;
    let mut z = Vec::with_capacity(rows * d);
    let mut w = Vec::with_capacity(rows);
    let mut t = Vec::with_capacity(rows);
    for p in pairs {
        let npos = p.change.iter().filter(|&&c| c).count().max(1) as f64;
        let nneg = p.change.iter().filter(|&&c| !c).count().max(1) as f64;
        for (f, &c) in p.features.iter().zip(&p.change) {
            for k in 0..NF {
                z.push((clipf(f[k]) - mean[k]) / scale[k]);
            }
            z.push(1.0);
            let (wp, wn) = class_weights(npos, nneg);
            w.push(if c { wp } else { wn });
            t.push(if c { 1.0 } else { 0.0 });
        }
    }
    let wsum: f64 = w.iter().sum();
    let lam = L2 * wsum;
    let mut b = vec![0.0f64; d];
    for _ in 0..50 {
        let mut g = vec![0.0f64; d];
        let mut h = vec![0.0f64; d * d];
        for i in 0..rows {
            let zi = &z[i * d..(i + 1) * d];
            let eta: f64 = zi.iter().zip(&b).map(|(a, c)| a * c).sum();
            let p = sigmoid(eta);
            let r = w[i] * (p - t[i]);
            let q = w[i] * p * (1.0 - p);
            for a in 0..d {
                g[a] += r * zi[a];
                let qa = q * zi[a];
                for c in 0..=a {
                    h[a * d + c] += qa * zi[c];
                }
            }
        }
        for a in 0..d {
            for c in 0..a {
                h[c * d + a] = h[a * d + c];
            }
            if a < NF {
                g[a] += lam * b[a];
                h[a * d + a] += lam;
            }
        }
        let step = solve_spd(&h, &g, d)
            .ok_or_else(|| {
                let names: Vec<&str> = pairs.iter().map(|p| p.name.as_str()).collect();
                Error::invalid(format!(
                    "the labels of {} are unusable for training: the change and no-change pixels cannot be told apart by any weighting (logistic regression: singular Hessian)",
                    names.join(", ")
                ))
            })?;
        let mut big = 0.0f64;
        for a in 0..d {
            b[a] -= step[a];
            big = big.max(step[a].abs());
        }
        if big < 1e-7 {
            break;
        }
    }
    Ok(Logistic {
        mean,
        scale,
        coef: b[..NF].to_vec(),
        intercept: b[NF],
    })
}

/// Solves A x = b for symmetric positive definite A (Cholesky).
fn solve_spd(a: &[f64], b: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0f64; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= l[i * n + k] * l[j * n + k];
            }
            if i == j {
                if s <= 0.0 {
                    return None;
                }
                l[i * n + i] = s.sqrt();
            } else {
                l[i * n + j] = s / l[j * n + j];
            }
        }
    }
    let mut y = vec![0.0f64; n];
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= l[i * n + k] * y[k];
        }
        y[i] = s / l[i * n + i];
    }
    let mut x = vec![0.0f64; n];
    for i in (0..n).rev() {
        let mut s = y[i];
        for k in i + 1..n {
            s -= l[k * n + i] * x[k];
        }
        x[i] = s / l[i * n + i];
    }
    Some(x)
}

/// Cuts tried when choosing the probability threshold.
pub fn threshold_grid() -> Vec<f64> {
    (1..50).map(|i| i as f64 * 0.02).collect()
}

/// Weighted (tp, fp, fn) of `model` on `data` at every cut of the grid.
fn confusion(model: &Logistic, data: &PairData, grid: &[f64]) -> Vec<[f64; 3]> {
    let mut c = vec![[0.0f64; 3]; grid.len()];
    for ((f, &ch), &w) in data.features.iter().zip(&data.change).zip(&data.weight) {
        let p = model.probability(f);
        for (k, &t) in grid.iter().enumerate() {
            let pred = p >= t;
            match (pred, ch) {
                (true, true) => c[k][0] += w as f64,
                (true, false) => c[k][1] += w as f64,
                (false, true) => c[k][2] += w as f64,
                _ => {}
            }
        }
    }
    c
}

pub(crate) fn f1(c: &[f64; 3]) -> f64 {
    let d = 2.0 * c[0] + c[1] + c[2];
    if d > 0.0 {
        2.0 * c[0] / d
    } else {
        0.0
    }
}

/// Trains on `data` and chooses the cut by leave-one-pair-out (in-sample
/// when there is one pair).
pub fn train(
    data: &[PairData],
    excluded: &[String],
    command: &str,
    progress: &dyn Progress,
) -> Result<LearnedModel> {
    if data.is_empty() {
        return Err(Error::invalid("no labelled pairs to train on"));
    }
    let grid = threshold_grid();
    let mut summed = vec![[0.0f64; 3]; grid.len()];
    progress.start("fit", data.len() as u64 + 1);
    let selection = if data.len() >= 2 {
        for i in 0..data.len() {
            let others: Vec<&PairData> = data
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, d)| d)
                .collect();
            let m = fit_logistic(&others)?;
            for (s, c) in summed.iter_mut().zip(confusion(&m, &data[i], &grid)) {
                for (s, c) in s.iter_mut().zip(c) {
                    *s += c;
                }
            }
            progress.advance(1);
        }
        format!(
            "leave-one-pair-out over the {} training pairs: the cut on a 0.02 grid with the best F1 of the summed confusion counts",
            data.len()
        )
    } else {
        progress.advance(1);
        "in-sample (one training pair only): the cut on a 0.02 grid with the best F1".to_string()
    };
    let all: Vec<&PairData> = data.iter().collect();
    let m = fit_logistic(&all)?;
    progress.advance(1);
    if data.len() < 2 {
        summed = confusion(&m, &data[0], &grid);
    }
    let (best, best_f1) = summed
        .iter()
        .enumerate()
        .map(|(k, c)| (k, f1(c)))
        .fold((0, -1.0), |a, b| if b.1 > a.1 { b } else { a });
    let positives = data
        .iter()
        .map(|d| d.change.iter().filter(|&&c| c).count() as u64)
        .sum();
    let negatives = data.iter().map(|d| d.len() as u64).sum::<u64>() - positives;
    Ok(LearnedModel {
        format: learned::FORMAT.to_string(),
        kind: "logistic_regression".to_string(),
        features: FEATURES.iter().map(|s| s.to_string()).collect(),
        mean: m.mean,
        scale: m.scale,
        coef: m.coef,
        intercept: m.intercept,
        probability_threshold: grid[best],
        provenance: provenance(
            data.iter().map(|d| d.name.clone()).collect(),
            excluded,
            command,
            (positives, negatives),
            selection,
            best_f1,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synthetic(name: &str, n: usize, shift: f32) -> PairData {
        let mut d = PairData {
            name: name.into(),
            ..Default::default()
        };
        for i in 0..n {
            let change = i % 5 == 0;
            let mut f = [0.0f32; NF];
            // Feature 0 separates the classes; feature 1 is noise.
            f[0] = if change { 1.0 } else { -1.0 } + ((i * 7919) % 100) as f32 / 60.0 - 0.8;
            f[1] = ((i * 104729) % 97) as f32 / 97.0 + shift;
            d.features.push(f);
            d.change.push(change);
            d.weight.push(1.0);
        }
        d
    }

    #[test]
    fn classes_balance_within_a_pair_and_pairs_weigh_as_sqrt_of_change() {
        for (np, nn) in [(400.0, 60_000.0), (23_000.0, 55_000.0)] {
            let (wp, wn) = class_weights(np, nn);
            assert!((wp * np - wn * nn).abs() < 1e-9 * wp * np);
            assert!((wp * np - f64::sqrt(np)).abs() < 1e-9 * wp * np);
        }
    }

    #[test]
    fn solves_spd_systems() {
        let a = [4.0, 2.0, 2.0, 3.0];
        let x = solve_spd(&a, &[2.0, 1.0], 2).unwrap();
        assert!((4.0 * x[0] + 2.0 * x[1] - 2.0).abs() < 1e-12);
        assert!((2.0 * x[0] + 3.0 * x[1] - 1.0).abs() < 1e-12);
        assert!(solve_spd(&[0.0, 0.0, 0.0, 0.0], &[1.0, 1.0], 2).is_none());
    }

    #[test]
    fn logistic_regression_learns_the_separating_feature() {
        let a = synthetic("a", 2000, 0.0);
        let b = synthetic("b", 1500, 0.3);
        let m = fit_logistic(&[&a, &b]).unwrap();
        assert!(m.coef[0] > 1.0, "{:?}", &m.coef[..2]);
        assert!(m.coef[0] > 5.0 * m.coef[1].abs());
        let mut pos = [0.0f32; NF];
        pos[0] = 1.2;
        let mut neg = [0.0f32; NF];
        neg[0] = -1.2;
        assert!(m.probability(&pos) > 0.9 && m.probability(&neg) < 0.1);
    }

    #[test]
    fn training_picks_a_cut_by_leave_one_pair_out_and_records_provenance() {
        let data = vec![
            synthetic("a", 1000, 0.0),
            synthetic("b", 1000, 0.2),
            synthetic("c", 1000, -0.2),
        ];
        let m = train(&data, &["d".into()], "test", &crate::progress::Silent).unwrap();
        assert_eq!(m.provenance.trained_on, vec!["a", "b", "c"]);
        assert_eq!(m.provenance.excluded, vec!["d"]);
        assert!(m
            .provenance
            .threshold_selection
            .contains("leave-one-pair-out"));
        assert!(m.provenance.selection_f1 > 0.9);
        // It reads back from JSON as a model.
        let s = serde_json::to_string(&m).unwrap();
        let back = LearnedModel::from_json(&s, "t").unwrap();
        assert_eq!(back.provenance, m.provenance);
        for (a, b) in back.coef.iter().zip(&m.coef) {
            assert!((a - b).abs() <= 1e-12 * a.abs().max(1.0));
        }
    }
}
