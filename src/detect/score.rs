//! The "new structure" score in [0, 1] and the single-measure scores that
//! `--method` selects for comparison.
//!
//! The combined score asks two things of a pixel: did it change beyond what
//! the scene-wide radiometric relation between the dates explains (IR-MAD and
//! robust CVA must agree), and does the change look like ground being built
//! on rather than vegetation growing, a field's season, or water? Spatial
//! context (a 3x3 mean over compared pixels) then favours coherent patches
//! over single-pixel noise and edge misregistration.

use super::chi2::chi2_cdf;
use super::cva::Cva;
use super::indices::Indices;
use super::irmad::IrMad;
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
}

impl FromStr for Method {
    type Err = Error;
    fn from_str(s: &str) -> Result<Method> {
        match s.to_ascii_lowercase().as_str() {
            "combined" => Ok(Method::Combined),
            "cva" => Ok(Method::Cva),
            "irmad" | "ir-mad" => Ok(Method::Irmad),
            "indices" => Ok(Method::Indices),
            _ => Err(Error::invalid(format!("unknown method '{s}' (combined, cva, irmad, indices)"))),
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
        })
    }
}

/// Pixels of context each block needs on every side.
pub const HALO: usize = 1;

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
}

impl Model {
    pub fn fit(sample: &Sample, method: Method) -> Result<Model> {
        if sample.len() < 100 {
            return Err(Error::invalid(format!(
                "only {} comparable pixels: too few to fit the change statistics (is nearly everything masked?)",
                sample.len()
            )));
        }
        let cva = Cva::fit(sample);
        let irmad = match method {
            Method::Combined | Method::Irmad => Some(
                IrMad::fit(sample, 50).ok_or_else(|| Error::invalid("IR-MAD failed: the band covariances are singular (constant or duplicated bands?)"))?,
            ),
            _ => None,
        };
        Ok(Model { method, irmad, cva })
    }

    /// Score of one compared pixel, before spatial context.
    pub fn pixel_score(&self, x: &[f32], y: &[f32]) -> f32 {
        let p = x.len();
        match self.method {
            Method::Cva => chi2_cdf(self.cva.magnitude2(x, y), p) as f32,
            Method::Irmad => self.irmad.as_ref().map_or(0.0, |m| m.change_probability(x, y) as f32),
            Method::Indices => {
                let (b, a) = (Indices::of(x), Indices::of(y));
                let built = (a.bsi - b.bsi).max(a.ndbi - b.ndbi).max(b.ndvi - a.ndvi).max((a.brightness - b.brightness).abs());
                step(0.02, 0.2, built) * not_natural(&b, &a)
            }
            Method::Combined => {
                let p_irmad = self.irmad.as_ref().map_or(0.0, |m| m.change_probability(x, y));
                let p_cva = chi2_cdf(self.cva.magnitude2(x, y), p);
                let change = (p_irmad * p_cva).sqrt() as f32;
                change * not_natural(&Indices::of(x), &Indices::of(y))
            }
        }
    }

    /// Scores the `block` part of pixels read over `read` (the block plus
    /// halo, clipped to the grid). Masked pixels get `None`.
    pub fn score_block(&self, px: &Pixels, read: Window, block: Window) -> Vec<Option<f32>> {
        let (rw, rh) = (read.w, read.h);
        let raw: Vec<Option<f32>> =
            (0..px.len()).map(|i| if px.mask[i] == MaskReason::Valid { Some(self.pixel_score(px.x(i), px.y(i))) } else { None }).collect();
        let (ox, oy) = (block.x - read.x, block.y - read.y);
        let mut out = Vec::with_capacity(block.len());
        for r in 0..block.h {
            for c in 0..block.w {
                let (rr, cc) = (oy + r, ox + c);
                let centre = raw[rr * rw + cc];
                if centre.is_none() {
                    out.push(None);
                    continue;
                }
                if self.method != Method::Combined {
                    out.push(centre);
                    continue;
                }
                let (mut s, mut n) = (0.0f32, 0u32);
                for dr in rr.saturating_sub(HALO)..=(rr + HALO).min(rh - 1) {
                    for dc in cc.saturating_sub(HALO)..=(cc + HALO).min(rw - 1) {
                        if let Some(v) = raw[dr * rw + dc] {
                            s += v;
                            n += 1;
                        }
                    }
                }
                out.push(Some(s / n as f32));
            }
        }
        out
    }
}

/// Down-weights changes that are natural: vegetation appearing, land staying
/// vegetated through a season, and water (after) — 1 means no objection.
fn not_natural(b: &Indices, a: &Indices) -> f32 {
    let veg_gain = step(0.05, 0.25, a.ndvi - b.ndvi);
    let stays_vegetated = step(0.3, 0.5, a.ndvi.min(b.ndvi));
    let water_after = step(-0.05, 0.2, a.mndwi);
    (1.0 - veg_gain) * (1.0 - stays_vegetated) * (1.0 - water_after)
}
