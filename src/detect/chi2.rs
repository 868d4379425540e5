//! Chi-square distribution function, through the regularised lower
//! incomplete gamma function P(k/2, x/2) (series below a+1, continued
//! fraction above; Numerical Recipes' split). IR-MAD's no-change
//! probability is 1 - chi2_cdf.

/// ln Γ(x) for x > 0 (Lanczos, g = 7).
fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + 7.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Regularised lower incomplete gamma P(a, x).
pub fn gamma_p(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if !x.is_finite() {
        return 1.0;
    }
    let gln = ln_gamma(a);
    if x < a + 1.0 {
        let mut ap = a;
        let mut sum = 1.0 / a;
        let mut del = sum;
        for _ in 0..500 {
            ap += 1.0;
            del *= x / ap;
            sum += del;
            if del.abs() < sum.abs() * 1e-15 {
                break;
            }
        }
        (sum * (-x + a * x.ln() - gln).exp()).clamp(0.0, 1.0)
    } else {
        // Lentz's continued fraction for Q(a, x).
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..500 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let del = d * c;
            h *= del;
            if (del - 1.0).abs() < 1e-15 {
                break;
            }
        }
        (1.0 - (-x + a * x.ln() - gln).exp() * h).clamp(0.0, 1.0)
    }
}

/// P(X <= x) for X ~ chi-square with `dof` degrees of freedom.
#[inline(always)]
pub fn chi2_cdf(x: f64, dof: usize) -> f64 {
    if dof.is_multiple_of(2) && dof > 0 && x >= 0.0 {
        return chi2_cdf_even(x, dof);
    }
    gamma_p(dof as f64 / 2.0, x / 2.0)
}

/// [`chi2_cdf`] for an even `dof` (the usual 6 bands) and `x >= 0`: a short
/// closed form, 1 - e^{-x/2} sum_{i<dof/2} (x/2)^i / i!, far cheaper than the
/// general series, and without branches or library calls, so a loop over
/// pixels vectorises.
#[inline(always)]
pub fn chi2_cdf_even(x: f64, dof: usize) -> f64 {
    let h = x / 2.0;
    let (mut term, mut sum) = (1.0, 1.0);
    for i in 1..dof / 2 {
        term *= h / i as f64;
        sum += term;
    }
    (1.0 - exp_neg(h) * sum).clamp(0.0, 1.0)
}

/// e^-h for h >= 0 (to within 2 ulp; e^-708 for anything larger, where the
/// chi-square tails are 1 to the last bit anyway), branch-free: h = n ln 2 -
/// r with |r| <= ln 2 / 2, e^-r by its Taylor series to degree 13 (the
/// remainder is below 1e-17), times 2^-n built from its bits. Why not libm's
/// exp: it is a call, so the combined score's loop over a row's pixels ran
/// scalar, two calls a pixel.
#[inline(always)]
pub fn exp_neg(h: f64) -> f64 {
    const LOG2_E: f64 = std::f64::consts::LOG2_E;
    // ln 2 in two parts, the first with its low bits zero, so n * LN2_HI is
    // exact for the n that occur.
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
    let x = (-h).max(-708.0);
    let n = (x * LOG2_E + 0.5).floor();
    let r = (x - n * LN2_HI) - n * LN2_LO;
    // 1/k! for k = 13 down to 1.
    const C: [f64; 13] = [
        1.0 / 6_227_020_800.0,
        1.0 / 479_001_600.0,
        1.0 / 39_916_800.0,
        1.0 / 3_628_800.0,
        1.0 / 362_880.0,
        1.0 / 40_320.0,
        1.0 / 5_040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        1.0 / 2.0,
        1.0,
    ];
    let mut p = C[0];
    for c in &C[1..] {
        p = p * r + c;
    }
    let p = p * r + 1.0;
    p * f64::from_bits(((n as i64 + 1023) as u64) << 52)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_neg_is_exp_to_two_ulp() {
        let mut h = 0.0f64;
        while h < 700.0 {
            let (got, want) = (exp_neg(h), (-h).exp());
            assert!(
                (got - want).abs() <= 2.0 * f64::EPSILON * want,
                "h={h}: {got} vs {want}"
            );
            h = h * 1.01 + 1e-3;
        }
        assert_eq!(exp_neg(0.0), 1.0);
        assert!(exp_neg(1e6) < 1e-300 && exp_neg(f64::INFINITY) >= 0.0);
    }

    #[test]
    fn known_values() {
        // Even dof has a closed form: 1 - e^{-x/2} sum_{i<k/2} (x/2)^i / i!
        for &x in &[0.5, 2.0, 6.0, 12.6, 30.0] {
            let h: f64 = x / 2.0;
            let closed = 1.0 - (-h).exp() * (1.0 + h + h * h / 2.0);
            assert!((chi2_cdf(x, 6) - closed).abs() < 1e-10, "x={x}");
            assert!((gamma_p(3.0, x / 2.0) - closed).abs() < 1e-10, "x={x}");
        }
        // 95% quantile of chi2(1) is 3.841459.
        assert!((chi2_cdf(3.841_459, 1) - 0.95).abs() < 1e-6);
        assert_eq!(chi2_cdf(0.0, 4), 0.0);
    }
}
