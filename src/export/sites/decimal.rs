//! Numbers as Rust's `{}` writes an `f64`, fast for the outputs' rounded
//! numbers.
//!
//! The CSV and KML hold a few hundred numbers per site, each already rounded
//! to a few decimals ([`super::round`]). `{}` finds the shortest decimal that
//! reads back as the same `f64` with a general algorithm (Grisu, Dragon as
//! fallback): a third of the CSV and KML writers' time on a full tile with
//! 77 000 sites. A number `v` that equals `n / 10^d` for a small `d` (the
//! first such `d`) and an integer `n` well inside the exact range is written
//! as the digits of `n` with the point `d` places from the right: no shorter
//! decimal reads back as `v` (any other decimal with `d` or fewer places is at
//! least `10^-d` away, while `v`'s own rounding interval is narrower than a
//! quarter of that), so that is what `{}` writes, without an exponent, as
//! `{}` never uses one. Anything else goes to `{}` itself.

use std::fmt;

/// Displays an `f64` exactly as `{}` does.
#[derive(Clone, Copy)]
pub struct Decimal(pub f64);

/// Decimals tried (the outputs round to at most 8).
const MAX_PLACES: usize = 8;

const POW10: [f64; MAX_PLACES + 1] = [1.0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8];

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        if !v.is_finite() {
            return fmt::Display::fmt(&v, f);
        }
        // Most numbers have the full count of places: one try at 8, whose
        // trailing zeros give the first `d` (if `v` is `n / 10^d`, `v * 10^8`
        // rounds to `n * 10^(8 - d)`: its error is under 2^50 * 2^-52).
        let n = (v * POW10[MAX_PLACES]).round();
        if n.abs() < (1u64 << 50) as f64 && n / POW10[MAX_PLACES] == v {
            return fixed(f, v.is_sign_negative(), n.abs() as u64, MAX_PLACES);
        }
        for (d, &p) in POW10.iter().enumerate() {
            let n = (v * p).round();
            // |n| < 2^50: n is exact, and v's rounding interval (an ulp of
            // at most 2^50 / 10^d * 2^-52) is under a quarter of 10^-d.
            if n.abs() >= (1u64 << 50) as f64 {
                break;
            }
            if n / p == v {
                return fixed(f, v.is_sign_negative(), n.abs() as u64, d);
            }
        }
        fmt::Display::fmt(&v, f)
    }
}

/// Writes `-`(if `negative`) `m / 10^d` as [`write_fixed`] lays it out.
fn fixed(f: &mut fmt::Formatter<'_>, negative: bool, m: u64, d: usize) -> fmt::Result {
    let mut buf = [0u8; 24];
    let len = write_fixed(&mut buf, negative, m, d);
    // Only ASCII digits, '-' and '.' were written.
    f.write_str(std::str::from_utf8(&buf[..len]).map_err(|_| fmt::Error)?)
}

/// Writes `-`(if `negative`) `m / 10^d` with its trailing zeros (and point)
/// dropped into `buf`; returns the length.
fn write_fixed(buf: &mut [u8; 24], negative: bool, mut m: u64, mut d: usize) -> usize {
    while d > 0 && m.is_multiple_of(10) {
        m /= 10;
        d -= 1;
    }
    // Digits, last first, with the point after `d` of them.
    let mut rev = [0u8; 24];
    let mut k = 0;
    loop {
        if k == d && d > 0 {
            rev[k] = b'.';
            k += 1;
        }
        rev[k] = b'0' + (m % 10) as u8;
        k += 1;
        m /= 10;
        if m == 0 && k > d {
            break;
        }
    }
    let mut len = 0;
    if negative {
        buf[0] = b'-';
        len = 1;
    }
    for &b in rev[..k].iter().rev() {
        buf[len] = b;
        len += 1;
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(v: f64) {
        assert_eq!(
            Decimal(v).to_string(),
            v.to_string(),
            "{v:e} ({:#x})",
            v.to_bits()
        );
    }

    #[test]
    fn writes_what_display_writes() {
        for v in [
            0.0,
            -0.0,
            1.0,
            -1.0,
            10.0,
            0.1,
            0.5,
            -0.0000001,
            0.0000001,
            1e-8,
            1e-9,
            123456789.0,
            12.3456789,
            -17.25,
            1e15,
            1e16,
            1e300,
            5e-324,
            f64::MAX,
            f64::MIN_POSITIVE,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.1 + 0.2,
            (1u64 << 50) as f64 / 1e3,
        ] {
            same(v);
        }
    }

    #[test]
    fn rounded_and_raw_numbers_read_as_display_writes_them() {
        let mut seed = 0x9e3779b97f4a7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut fast = 0;
        for i in 0..200_000 {
            let r = next();
            // Magnitudes from 1e-9 to 1e9, either sign.
            let mag = 10f64.powi((r % 19) as i32 - 9);
            let unit = (next() >> 11) as f64 / (1u64 << 53) as f64;
            let v = if r & (1 << 40) != 0 {
                -unit * mag
            } else {
                unit * mag
            };
            same(v);
            for d in [0, 1, 3, 4, 7, 8] {
                let p = 10f64.powi(d);
                let rv = (v * p).round() / p;
                same(rv);
                fast += 1;
            }
            if i % 1000 == 0 {
                same(f64::from_bits(next()));
            }
        }
        assert!(fast > 1_000_000);
    }
}
