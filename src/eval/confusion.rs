//! Pixel confusion counts and the figures derived from them.
//!
//! Each pixel is counted once: predicted change (1) or no change (0) against
//! truth change or no change. Pixels the prediction masks (255: cloud, no
//! data) are counted apart in `masked` and take no part in any figure: the
//! detector made no claim there.
//!
//! Every figure is a ratio; when its denominator is 0 (e.g. precision with
//! no predicted change) the figure is defined as 0, never NaN, so JSON
//! stays valid and sums stay finite.

use serde::Serialize;

/// The prediction's "masked / no data" value.
pub const PRED_MASKED: u8 = 255;

/// Pixel counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Confusion {
    /// Predicted change, truth change.
    pub tp: u64,
    /// Predicted change, truth no change.
    pub fp: u64,
    /// Predicted no change, truth change.
    #[serde(rename = "fn")]
    pub fn_: u64,
    /// Predicted no change, truth no change.
    pub tn: u64,
    /// Masked in the prediction (not in the four counts above).
    pub masked: u64,
}

/// Counts and figures, as reported.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PixelScores {
    #[serde(flatten)]
    pub counts: Confusion,
    /// TP / (TP + FP).
    pub precision: f64,
    /// TP / (TP + FN).
    pub recall: f64,
    /// 2 TP / (2 TP + FP + FN).
    pub f1: f64,
    /// TP / (TP + FP + FN).
    pub iou: f64,
    /// Cohen's kappa: (po - pe) / (1 - pe).
    pub kappa: f64,
}

/// n / d, with 0 / 0 = 0.
pub fn ratio(n: f64, d: f64) -> f64 {
    if d == 0.0 {
        0.0
    } else {
        n / d
    }
}

impl Confusion {
    /// Counts one pixel: `pred` is 0, 1 or [`PRED_MASKED`] (checked by the
    /// caller; anything but 1 and 255 counts as "no change").
    #[inline]
    pub fn add(&mut self, pred: u8, truth_change: bool) {
        match (pred, truth_change) {
            (PRED_MASKED, _) => self.masked += 1,
            (1, true) => self.tp += 1,
            (1, false) => self.fp += 1,
            (_, true) => self.fn_ += 1,
            (_, false) => self.tn += 1,
        }
    }

    /// Adds another set of counts (e.g. to aggregate cities).
    pub fn merge(&mut self, o: &Confusion) {
        self.tp += o.tp;
        self.fp += o.fp;
        self.fn_ += o.fn_;
        self.tn += o.tn;
        self.masked += o.masked;
    }

    /// Scored pixels: TP + FP + FN + TN.
    pub fn scored(&self) -> u64 {
        self.tp + self.fp + self.fn_ + self.tn
    }

    pub fn precision(&self) -> f64 {
        ratio(self.tp as f64, (self.tp + self.fp) as f64)
    }

    pub fn recall(&self) -> f64 {
        ratio(self.tp as f64, (self.tp + self.fn_) as f64)
    }

    pub fn f1(&self) -> f64 {
        ratio(
            2.0 * self.tp as f64,
            (2 * self.tp + self.fp + self.fn_) as f64,
        )
    }

    pub fn iou(&self) -> f64 {
        ratio(self.tp as f64, (self.tp + self.fp + self.fn_) as f64)
    }

    /// Cohen's kappa in its closed binary form,
    /// 2 (TP·TN − FN·FP) / ((TP+FP)(FP+TN) + (TP+FN)(FN+TN)),
    /// which equals (po − pe) / (1 − pe) without the cancellation of
    /// subtracting two numbers near 1. 0 when the denominator is 0 (both
    /// prediction and truth constant and equal).
    pub fn kappa(&self) -> f64 {
        let (tp, fp, fn_, tn) = (
            self.tp as f64,
            self.fp as f64,
            self.fn_ as f64,
            self.tn as f64,
        );
        ratio(
            2.0 * (tp * tn - fn_ * fp),
            (tp + fp) * (fp + tn) + (tp + fn_) * (fn_ + tn),
        )
    }

    pub fn scores(&self) -> PixelScores {
        PixelScores {
            counts: *self,
            precision: self.precision(),
            recall: self.recall(),
            f1: self.f1(),
            iou: self.iou(),
            kappa: self.kappa(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(tp: u64, fp: u64, fn_: u64, tn: u64) -> Confusion {
        Confusion {
            tp,
            fp,
            fn_,
            tn,
            masked: 0,
        }
    }

    #[test]
    fn add_sorts_pixels() {
        let mut k = Confusion::default();
        for (p, t) in [
            (1, true),
            (1, false),
            (0, true),
            (0, false),
            (255, true),
            (255, false),
            (0, false),
        ] {
            k.add(p, t);
        }
        assert_eq!(
            k,
            Confusion {
                tp: 1,
                fp: 1,
                fn_: 1,
                tn: 2,
                masked: 2
            }
        );
        assert_eq!(k.scored(), 5);
    }

    #[test]
    fn figures_by_hand() {
        let k = c(6, 2, 4, 88);
        assert!((k.precision() - 0.75).abs() < 1e-12);
        assert!((k.recall() - 0.6).abs() < 1e-12);
        assert!((k.f1() - 12.0 / 18.0).abs() < 1e-12);
        assert!((k.iou() - 0.5).abs() < 1e-12);
        // po = 0.94, pe = (8*10 + 92*90) / 100^2 = 0.836
        let (po, pe) = (0.94, 0.836);
        assert!(
            (k.kappa() - (po - pe) / (1.0 - pe)).abs() < 1e-12,
            "{}",
            k.kappa()
        );
    }

    #[test]
    fn kappa_extremes() {
        assert!((c(5, 0, 0, 5).kappa() - 1.0).abs() < 1e-12);
        assert!((c(0, 5, 5, 0).kappa() + 1.0).abs() < 1e-12);
        // Prediction independent of truth: kappa 0.
        assert!(c(1, 1, 1, 1).kappa().abs() < 1e-12);
    }

    #[test]
    fn zero_over_zero_is_zero() {
        let k = c(0, 0, 0, 10);
        let s = k.scores();
        assert_eq!(
            (s.precision, s.recall, s.f1, s.iou, s.kappa),
            (0.0, 0.0, 0.0, 0.0, 0.0)
        );
        let s = Confusion::default().scores();
        assert_eq!(
            (s.precision, s.recall, s.f1, s.iou, s.kappa),
            (0.0, 0.0, 0.0, 0.0, 0.0)
        );
    }

    #[test]
    fn merge_adds() {
        let mut a = c(1, 2, 3, 4);
        a.merge(&Confusion {
            tp: 10,
            fp: 20,
            fn_: 30,
            tn: 40,
            masked: 5,
        });
        assert_eq!(
            a,
            Confusion {
                tp: 11,
                fp: 22,
                fn_: 33,
                tn: 44,
                masked: 5
            }
        );
    }
}
