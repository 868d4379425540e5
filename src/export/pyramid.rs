//! Overview pyramids of one 512 px block: the overview factors a COG
//! gets, and each level's pixels by AVERAGE (scores) or NEAREST (masks), as
//! GDAL defines them. A 512 px block holds whole pixels of every level up
//! to 1/512, so each block's pyramid is its own and blocks are done in
//! parallel.

/// Block side of the COGs, and of the blocks the overviews are made from.
pub const COG_BLOCK: usize = 512;

/// The overview factors GDAL's COG driver makes for a `w` x `h` raster:
/// halving until the overview fits in one block.
pub fn overview_factors(w: usize, h: usize) -> Vec<i32> {
    let mut out = Vec::new();
    let mut f = 1;
    while w.max(h).div_ceil(f) > COG_BLOCK {
        f *= 2;
        out.push(f as i32);
    }
    out
}

/// One level of a block's pyramid: (columns, rows, values).
pub type Level<T> = (usize, usize, Vec<T>);

/// `levels` overviews of a `w` x `h` block, each half the previous (sizes
/// rounded up): the mean of the valid pixels (not `nodata`, not NaN) each
/// overview pixel covers, or `nodata` where there are none. Sums and counts
/// are carried from level to level, so every level is the exact mean over
/// the block's own pixels.
pub fn average_pyramid(
    v: &[f32],
    w: usize,
    h: usize,
    nodata: f32,
    levels: usize,
) -> Vec<Level<f32>> {
    let valid = |x: f32| !x.is_nan() && x != nodata;
    let mut sum: Vec<f64> = v
        .iter()
        .map(|&x| if valid(x) { x as f64 } else { 0.0 })
        .collect();
    let mut cnt: Vec<u32> = v.iter().map(|&x| valid(x) as u32).collect();
    let (mut cw, mut ch) = (w, h);
    let mut out = Vec::with_capacity(levels);
    for _ in 0..levels {
        let (nw, nh) = (cw.div_ceil(2), ch.div_ceil(2));
        let mut ns = vec![0.0f64; nw * nh];
        let mut nc = vec![0u32; nw * nh];
        for y in 0..ch {
            for x in 0..cw {
                let (i, o) = (y * cw + x, (y / 2) * nw + x / 2);
                ns[o] += sum[i];
                nc[o] += cnt[i];
            }
        }
        let values = ns
            .iter()
            .zip(&nc)
            .map(|(&s, &c)| {
                if c == 0 {
                    nodata
                } else {
                    (s / c as f64) as f32
                }
            })
            .collect();
        out.push((nw, nh, values));
        (sum, cnt, cw, ch) = (ns, nc, nw, nh);
    }
    out
}

/// `levels` overviews of a `w` x `h` block by nearest neighbour: the first
/// (top-left) pixel of the 2^k square an overview pixel covers, which is
/// what GDAL's NEAREST takes at the first level.
pub fn nearest_pyramid(v: &[u8], w: usize, h: usize, levels: usize) -> Vec<Level<u8>> {
    (1..=levels)
        .map(|k| {
            let f = 1usize << k;
            let (nw, nh) = (w.div_ceil(f), h.div_ceil(f));
            let mut out = Vec::with_capacity(nw * nh);
            for y in 0..nh {
                out.extend(v[y * f * w..].iter().step_by(f).take(nw));
            }
            (nw, nh, out)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overview_factors_are_those_of_the_cog_driver() {
        // gdalinfo of COGs GDAL made: 10980 -> 5490 ... 344; 5490 -> ... 344.
        assert_eq!(overview_factors(10980, 10980), vec![2, 4, 8, 16, 32]);
        assert_eq!(overview_factors(5490, 5490), vec![2, 4, 8, 16]);
        assert_eq!(overview_factors(512, 300), Vec::<i32>::new());
        assert_eq!(overview_factors(513, 10), vec![2]);
    }

    #[test]
    fn average_pyramid_means_valid_pixels_only() {
        let nd = -1.0;
        // 3 x 3: the odd column and row make 1-pixel-wide edge windows.
        let v = [1.0, 3.0, 5.0, nd, 4.0, f32::NAN, 7.0, 9.0, nd];
        let levels = average_pyramid(&v, 3, 3, nd, 2);
        assert_eq!(levels[0].0, 2);
        assert_eq!(levels[0].1, 2);
        assert_eq!(levels[0].2, vec![8.0 / 3.0, 5.0, 8.0, nd]);
        // The second level is the mean of all six valid pixels, not of the means.
        assert_eq!(levels[1], (1, 1, vec![29.0 / 6.0]));
    }

    #[test]
    fn nearest_pyramid_takes_the_first_pixel_of_each_square() {
        let v: Vec<u8> = (0..25).collect(); // 5 x 5, row-major
        let levels = nearest_pyramid(&v, 5, 5, 2);
        // Factor 2: rows and columns 0, 2, 4.
        assert_eq!(levels[0], (3, 3, vec![0, 2, 4, 10, 12, 14, 20, 22, 24]));
        // Factor 4: rows and columns 0, 4.
        assert_eq!(levels[1], (2, 2, vec![0, 4, 20, 24]));
    }
}
