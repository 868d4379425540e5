//! TIFF's horizontal predictor undone on rows of 16-bit samples: a running
//! sum mod 2^16, kept in a register (32 samples at a time with AVX-512BW).

/// TIFF's horizontal predictor (tag 317 = 2) on one row of 16-bit samples:
/// each sample was stored as its difference from the one before (mod 2^16).
/// The running sum stays in a register, unlike libtiff's loop.
#[inline]
pub fn undo_horizontal_predictor(row: &mut [u16]) {
    #[cfg(all(target_arch = "x86_64", target_feature = "avx512bw"))]
    {
        // SAFETY: the build targets AVX-512BW (cfg above).
        unsafe { prefix_sum_avx512(row) }
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "avx512bw")))]
    prefix_sum_from(row, 0);
}

/// Running sum of `row` (mod 2^16), continuing from `acc`.
#[inline]
pub fn prefix_sum_from(row: &mut [u16], mut acc: u16) {
    for v in row.iter_mut() {
        acc = acc.wrapping_add(*v);
        *v = acc;
    }
}

/// [`prefix_sum_from`] 32 samples at a time: each chunk's running sum in
/// five shift-and-add steps within a register, plus the sum carried from
/// the chunk before (a one-sample-a-cycle dependency chain in scalar code;
/// it was 2-3% of a full tile run's CPU). Integer adds mod 2^16: the same
/// numbers in any order.
#[cfg(all(target_arch = "x86_64", target_feature = "avx512bw"))]
#[target_feature(enable = "avx512bw")]
unsafe fn prefix_sum_avx512(row: &mut [u16]) {
    use std::arch::x86_64::*;
    const IOTA: [u16; 32] = {
        let mut a = [0u16; 32];
        let mut i = 0;
        while i < 32 {
            a[i] = i as u16;
            i += 1;
        }
        a
    };
    let iota = _mm512_loadu_si512(IOTA.as_ptr().cast());
    // Lane i takes lane i - k, for lanes i >= k.
    let shift = |k: i16| _mm512_sub_epi16(iota, _mm512_set1_epi16(k));
    let steps = [
        (shift(1), !0u32 << 1),
        (shift(2), !0u32 << 2),
        (shift(4), !0u32 << 4),
        (shift(8), !0u32 << 8),
        (shift(16), !0u32 << 16),
    ];
    let last = _mm512_set1_epi16(31);
    let mut carry = _mm512_setzero_si512();
    let mut chunks = row.chunks_exact_mut(32);
    for ch in &mut chunks {
        let mut x = _mm512_loadu_si512(ch.as_ptr().cast());
        for (idx, lanes) in steps {
            x = _mm512_add_epi16(x, _mm512_maskz_permutexvar_epi16(lanes, idx, x));
        }
        x = _mm512_add_epi16(x, carry);
        _mm512_storeu_si512(ch.as_mut_ptr().cast(), x);
        carry = _mm512_permutexvar_epi16(last, x);
    }
    let acc = _mm_extract_epi16::<0>(_mm512_castsi512_si128(carry)) as u16;
    prefix_sum_from(chunks.into_remainder(), acc);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_predictor_gives_the_scalar_running_sum_at_every_length() {
        let mut seed = 12345u64;
        for len in [0, 1, 5, 31, 32, 33, 63, 64, 65, 1000, 1024] {
            let row: Vec<u16> = (0..len)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (seed >> 40) as u16
                })
                .collect();
            let (mut a, mut b) = (row.clone(), row);
            undo_horizontal_predictor(&mut a);
            prefix_sum_from(&mut b, 0);
            assert_eq!(a, b, "length {len}");
        }
    }

    #[test]
    fn the_predictor_is_a_wrapping_running_sum() {
        let mut row = [65535u16, 2, 0, 65534];
        undo_horizontal_predictor(&mut row);
        assert_eq!(row, [65535, 1, 1, 65535]);
    }
}
