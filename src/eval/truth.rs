//! Detects how a truth (label) raster codes change, from the values present.
//!
//! Change labels come in several codings: 0/1 (the OSCD paper), 1/2 (the
//! OSCD files: 1 = no change, 2 = change) and 0/255 (masks saved as
//! images). The raster itself does not say which, so the coding is read from
//! a histogram of its values:
//! - largest value 255 → 0/255 (only 0 and 255 may occur);
//! - values within {1, 2} and no 0 → 1/2;
//! - otherwise → 0/1 (only 0 and 1 may occur).
//!
//! Any other value is an error: guessing would silently score against the
//! wrong labels. One ambiguity remains: a truth holding only the value 1
//! reads as 1/2, i.e. "no change anywhere".

use serde::Serialize;

/// A truth raster's coding of "no change" / "change".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TruthCoding {
    /// 0 = no change, 1 = change.
    #[serde(rename = "0/1")]
    ZeroOne,
    /// 1 = no change, 2 = change.
    #[serde(rename = "1/2")]
    OneTwo,
    /// 0 = no change, 255 = change.
    #[serde(rename = "0/255")]
    ZeroMax,
}

impl TruthCoding {
    /// Reads the coding from a histogram of truth values (`counts[v]` =
    /// number of pixels of value `v`). Errs with a message listing the
    /// values when they fit no coding.
    pub fn detect(counts: &[u64; 256]) -> std::result::Result<TruthCoding, String> {
        let present: Vec<u8> = (0..=255u8).filter(|&v| counts[v as usize] > 0).collect();
        let Some(&max) = present.last() else {
            return Err("has no pixels".to_string());
        };
        let coding = if max == 255 {
            TruthCoding::ZeroMax
        } else if present.iter().all(|&v| v == 1 || v == 2) {
            TruthCoding::OneTwo
        } else {
            TruthCoding::ZeroOne
        };
        let allowed = [coding.no_change(), coding.change()];
        let stray: Vec<u8> = present
            .iter()
            .copied()
            .filter(|v| !allowed.contains(v))
            .collect();
        if !stray.is_empty() {
            let list = |v: &[u8]| {
                v.iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(format!(
                "values {} do not fit a 0/1, 1/2 or 0/255 change coding (unexpected: {})",
                list(&present),
                list(&stray)
            ));
        }
        Ok(coding)
    }

    /// The value meaning "change".
    pub fn change(self) -> u8 {
        match self {
            TruthCoding::ZeroOne => 1,
            TruthCoding::OneTwo => 2,
            TruthCoding::ZeroMax => 255,
        }
    }

    /// The value meaning "no change".
    pub fn no_change(self) -> u8 {
        match self {
            TruthCoding::ZeroOne | TruthCoding::ZeroMax => 0,
            TruthCoding::OneTwo => 1,
        }
    }

    /// "0/1", "1/2" or "0/255".
    pub fn name(self) -> &'static str {
        match self {
            TruthCoding::ZeroOne => "0/1",
            TruthCoding::OneTwo => "1/2",
            TruthCoding::ZeroMax => "0/255",
        }
    }
}

/// A truth sample (read as f32 so any band type works) as a byte code; None
/// when it is not a whole number in 0..=255 (NaN, fractions, negatives).
pub fn code_of(v: f32) -> Option<u8> {
    if v.fract() == 0.0 && (0.0..=255.0).contains(&v) {
        Some(v as u8)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(values: &[(u8, u64)]) -> [u64; 256] {
        let mut h = [0u64; 256];
        for &(v, n) in values {
            h[v as usize] = n;
        }
        h
    }

    #[test]
    fn detects_each_coding() {
        assert_eq!(
            TruthCoding::detect(&hist(&[(0, 5), (1, 3)])),
            Ok(TruthCoding::ZeroOne)
        );
        assert_eq!(
            TruthCoding::detect(&hist(&[(1, 5), (2, 3)])),
            Ok(TruthCoding::OneTwo)
        );
        assert_eq!(
            TruthCoding::detect(&hist(&[(0, 5), (255, 3)])),
            Ok(TruthCoding::ZeroMax)
        );
    }

    #[test]
    fn single_valued_truths() {
        // All zero: no change anywhere, 0/1.
        assert_eq!(
            TruthCoding::detect(&hist(&[(0, 9)])),
            Ok(TruthCoding::ZeroOne)
        );
        // All one: read as 1/2 (no change), the documented ambiguity.
        assert_eq!(
            TruthCoding::detect(&hist(&[(1, 9)])),
            Ok(TruthCoding::OneTwo)
        );
        assert_eq!(
            TruthCoding::detect(&hist(&[(2, 9)])),
            Ok(TruthCoding::OneTwo)
        );
        assert_eq!(
            TruthCoding::detect(&hist(&[(255, 9)])),
            Ok(TruthCoding::ZeroMax)
        );
    }

    #[test]
    fn stray_values_are_errors() {
        let e = TruthCoding::detect(&hist(&[(0, 5), (1, 3), (2, 1)])).unwrap_err();
        assert!(e.contains("unexpected: 2"), "{e}");
        let e = TruthCoding::detect(&hist(&[(0, 5), (1, 3), (255, 1)])).unwrap_err();
        assert!(e.contains("unexpected: 1"), "{e}");
        assert!(TruthCoding::detect(&hist(&[(3, 1)])).is_err());
        assert!(TruthCoding::detect(&[0; 256]).is_err());
    }

    #[test]
    fn codes_of_samples() {
        assert_eq!(code_of(0.0), Some(0));
        assert_eq!(code_of(255.0), Some(255));
        assert_eq!(code_of(2.0), Some(2));
        assert_eq!(code_of(1.5), None);
        assert_eq!(code_of(-1.0), None);
        assert_eq!(code_of(256.0), None);
        assert_eq!(code_of(f32::NAN), None);
    }
}
