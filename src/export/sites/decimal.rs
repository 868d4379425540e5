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

/// `v` as `(negative, m, d)` with `v = m / 10^d` (the first such `d` up to
/// [`MAX_PLACES`], `m` under 2^50), when there is one: then the digits of `m`
/// with the point `d` places from the right are the shortest decimal that
/// reads back as `v` (see the module's comment).
fn short(v: f64) -> Option<(bool, u64, usize)> {
    if !v.is_finite() {
        return None;
    }
    // Most numbers have the full count of places: one try at 8, whose
    // trailing zeros give the first `d` (if `v` is `n / 10^d`, `v * 10^8`
    // rounds to `n * 10^(8 - d)`: its error is under 2^50 * 2^-52).
    let n = (v * POW10[MAX_PLACES]).round();
    if n.abs() < (1u64 << 50) as f64 && n / POW10[MAX_PLACES] == v {
        return Some(trimmed(v.is_sign_negative(), n.abs() as u64, MAX_PLACES));
    }
    for (d, &p) in POW10.iter().enumerate() {
        let n = (v * p).round();
        // |n| < 2^50: n is exact, and v's rounding interval (an ulp of at
        // most 2^50 / 10^d * 2^-52) is under a quarter of 10^-d.
        if n.abs() >= (1u64 << 50) as f64 {
            break;
        }
        if n / p == v {
            return Some(trimmed(v.is_sign_negative(), n.abs() as u64, d));
        }
    }
    None
}

/// `m / 10^d` with the trailing zeros of `m` taken off.
fn trimmed(negative: bool, mut m: u64, mut d: usize) -> (bool, u64, usize) {
    while d > 0 && m.is_multiple_of(10) {
        m /= 10;
        d -= 1;
    }
    (negative, m, d)
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match short(self.0) {
            Some((negative, m, d)) => f.write_str(render(&mut [0u8; 26], negative, m, d, false)),
            None => fmt::Display::fmt(&self.0, f),
        }
    }
}

/// Writes `v` as serde_json writes a float number (`null` when not finite):
/// its shortest decimal, with `.0` on whole numbers, and an exponent outside
/// 1e-5 <= |v| < 1e16. The rounded numbers and zeros take the fast way;
/// the others go to serde_json.
pub fn json(out: &mut String, v: f64) {
    use std::fmt::Write as _;
    match short(v) {
        Some((negative, 0, _)) => out.push_str(if negative { "-0.0" } else { "0.0" }),
        // The first digit at 10^-5 or above (serde_json's fixed layout).
        Some((negative, m, d)) if m as f64 >= 1e-5 * POW10[d] => {
            out.push_str(render(&mut [0u8; 26], negative, m, d, true));
        }
        _ => match serde_json::Number::from_f64(v) {
            Some(n) => {
                let _ = write!(out, "{n}");
            }
            None => out.push_str("null"),
        },
    }
}

/// `-`(if `negative`) `m / 10^d` as [`write_fixed`] lays it out in `buf`,
/// with `.0` after a whole number when `point_zero`.
fn render(buf: &mut [u8; 26], negative: bool, m: u64, d: usize, point_zero: bool) -> &str {
    let mut len = write_fixed(buf, negative, m, d);
    if point_zero && d == 0 {
        buf[len..len + 2].copy_from_slice(b".0");
        len += 2;
    }
    // Only ASCII digits, '-' and '.' were written.
    std::str::from_utf8(&buf[..len]).unwrap_or_default()
}

/// Writes `-`(if `negative`) `m / 10^d` into `buf` (`m` has no trailing
/// zeros when `d > 0`, and `m < 2^50`, so at most 16 digits); returns the
/// length.
fn write_fixed(buf: &mut [u8; 26], negative: bool, mut m: u64, d: usize) -> usize {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
                                2021222324252627282930313233343536373839\
                                4041424344454647484950515253545556575859\
                                6061626364656667686970717273747576777879\
                                8081828384858687888990919293949596979899";
    // The digits at the end of `digits`, two at a time; the zeros before
    // them are the leading zeros of a number under 1.
    let mut digits = [b'0'; 24];
    let mut i = digits.len();
    while m >= 100 {
        let r = (m % 100) as usize;
        m /= 100;
        i -= 2;
        digits[i..i + 2].copy_from_slice(&PAIRS[2 * r..2 * r + 2]);
    }
    if m >= 10 {
        i -= 2;
        digits[i..i + 2].copy_from_slice(&PAIRS[2 * m as usize..2 * m as usize + 2]);
    } else {
        i -= 1;
        digits[i] = b'0' + m as u8;
    }
    // The whole part starts at the first digit, or at the units' zero.
    let whole = i.min(digits.len() - d - 1);
    let mut len = 0;
    let mut put = |b: &[u8]| {
        buf[len..len + b.len()].copy_from_slice(b);
        len += b.len();
    };
    if negative {
        put(b"-");
    }
    let point = digits.len() - d;
    put(&digits[whole..point]);
    if d > 0 {
        put(b".");
        put(&digits[point..]);
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
            0.00001,
            0.00009999,
            -0.0000123,
            1e15,
            999999999999999.9,
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
                fast += short(rv).is_some() as usize;
            }
            if i % 1000 == 0 {
                same(f64::from_bits(next()));
            }
        }
        // The rounded numbers take the fast way (1 174 315 of the 1.2 M),
        // but those of more than 15 digits (about 1e9 with 8 places).
        assert!(fast > 1_100_000, "{fast} of 1 200 000 took the fast way");
    }
}
