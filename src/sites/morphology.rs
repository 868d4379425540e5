//! Streamed 3x3 binary morphology: erosion and dilation as row filters that
//! hold three rows each, chained into an opening (erode, dilate) followed
//! by a closing (dilate, erode).
//!
//! Why: a change mask thresholded pixel by pixel is speckled (single noisy
//! pixels, one-pixel notches and holes, one-pixel bridges that join two
//! separate buildings). The opening removes everything that does not hold a
//! full 3x3 square (features narrower than 3 pixels, i.e. 30 m at 10 m), the
//! closing then fills one-pixel gaps and holes inside what remains. Rows are
//! streamed so a full 10980 x 10980 tile never has to be in memory: the chain
//! lags [`Morphology::LAG`] rows behind its input.
//!
//! At the grid edge, the opening's erosion takes the minimum over the
//! neighbours that exist, so a site cut by the scene edge is not shaved
//! off. The closing's erosion counts the outside as no change (so a
//! one-pixel strip between a site and the edge is not filled in) and keeps
//! every pixel that was change before the closing (a closing never removes
//! change). Masked pixels (255 in the change mask)
//! are not change; the cleaned mask is also cleared where the input was
//! masked, so a closing never turns a masked pixel into change.

/// A cleaned-mask pixel: bit 0 = change, bit 1 = valid (not masked),
/// bit 2 = change before the closing.
const FG: u8 = 1;
const VALID: u8 = 2;
const KEEP: u8 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Erosion; missing neighbours (outside the grid) are ignored.
    Erode,
    /// Dilation.
    Dilate,
    /// The closing's dilation: also remembers the pixel's change in KEEP.
    DilateKeep,
    /// The closing's erosion: the outside counts as no change; pixels marked
    /// KEEP stay change.
    ErodeKeep,
}

/// One 3x3 filter over a stream of rows; emits row r once row r+1 arrived.
struct Stage {
    op: Op,
    prev: Option<Vec<u8>>,
    cur: Option<Vec<u8>>,
}

impl Stage {
    fn new(op: Op) -> Self {
        Stage {
            op,
            prev: None,
            cur: None,
        }
    }

    /// Filters `cur` with its neighbours `prev` and `next` (absent at the grid edge).
    /// Branch-free loops over whole rows (the edges are handled once), so
    /// they vectorise: this runs on every pixel of the scene.
    fn apply(op: Op, prev: Option<&[u8]>, cur: &[u8], next: Option<&[u8]>) -> Vec<u8> {
        let w = cur.len();
        let erode = matches!(op, Op::Erode | Op::ErodeKeep);
        // Outside value for ErodeKeep: no change; for the others: neutral.
        let outside = if op == Op::ErodeKeep { Some(0u8) } else { None };
        let comb = |dst: &mut [u8], src: &[u8]| {
            if erode {
                dst.iter_mut().zip(src).for_each(|(d, s)| *d &= s);
            } else {
                dst.iter_mut().zip(src).for_each(|(d, s)| *d |= s);
            }
        };
        let comb_one = |d: &mut u8, o: u8| *d = if erode { *d & o } else { *d | o };
        // Vertical pass over the rows that exist (or the outside value).
        let mut col: Vec<u8> = cur.iter().map(|v| v & FG).collect();
        for r in [prev, next] {
            match (r, outside) {
                (Some(r), _) => {
                    let fg: Vec<u8> = r.iter().map(|v| v & FG).collect();
                    comb(&mut col, &fg);
                }
                (None, Some(o)) => col.iter_mut().for_each(|d| comb_one(d, o)),
                (None, None) => {}
            }
        }
        // Horizontal pass: left and right neighbours.
        let mut out = col.clone();
        if w > 1 {
            comb(&mut out[1..], &col[..w - 1]);
            comb(&mut out[..w - 1], &col[1..]);
        }
        if let (Some(o), true) = (outside, w > 0) {
            comb_one(&mut out[0], o);
            comb_one(&mut out[w - 1], o);
        }
        // Valid and keep bits come from the centre pixel.
        let pairs = out.iter_mut().zip(cur);
        match op {
            Op::Erode | Op::Dilate => pairs.for_each(|(v, c)| *v |= c & (VALID | KEEP)),
            // KEEP = FG << 2: remember the pixel's change.
            Op::DilateKeep => pairs.for_each(|(v, c)| *v |= (c & VALID) | ((c & FG) << 2)),
            // Pixels marked KEEP stay change.
            Op::ErodeKeep => pairs.for_each(|(v, c)| *v |= (c & VALID) | ((c & KEEP) >> 2)),
        }
        out
    }

    fn push(&mut self, row: Vec<u8>) -> Option<Vec<u8>> {
        let out = self
            .cur
            .as_ref()
            .map(|cur| Self::apply(self.op, self.prev.as_deref(), cur, Some(&row)));
        self.prev = self.cur.take();
        self.cur = Some(row);
        out
    }

    fn finish(&mut self) -> Option<Vec<u8>> {
        let cur = self.cur.take()?;
        let out = Self::apply(self.op, self.prev.as_deref(), &cur, None);
        self.prev = None;
        Some(out)
    }
}

/// A chain of 3x3 filters over mask rows.
pub struct Morphology {
    stages: Vec<Stage>,
}

impl Morphology {
    /// Rows of delay of the full opening + closing chain.
    pub const LAG: usize = 4;

    /// Opening then closing, each optional.
    pub fn new(opening: bool, closing: bool) -> Self {
        let mut ops = Vec::new();
        if opening {
            ops.extend([Op::Erode, Op::Dilate]);
        }
        if closing {
            ops.extend([Op::DilateKeep, Op::ErodeKeep]);
        }
        Self::with_ops(&ops)
    }

    pub fn with_ops(ops: &[Op]) -> Self {
        Morphology {
            stages: ops.iter().map(|&op| Stage::new(op)).collect(),
        }
    }

    /// Feeds one change-mask row (0 no change, 1 change, 255 masked); returns
    /// the cleaned rows that became ready (0 or 1 of them), as booleans.
    pub fn push(&mut self, mask_row: &[u8]) -> Vec<Vec<bool>> {
        let row: Vec<u8> = mask_row
            .iter()
            .map(|&v| match v {
                1 => FG | VALID,
                255 => 0,
                _ => VALID,
            })
            .collect();
        let mut out = Vec::new();
        self.feed(0, row, &mut out);
        out
    }

    /// Flushes the rows still held by the chain, in order.
    pub fn finish(&mut self) -> Vec<Vec<bool>> {
        let mut out = Vec::new();
        for s in 0..self.stages.len() {
            if let Some(r) = self.stages[s].finish() {
                self.feed(s + 1, r, &mut out);
            }
        }
        out
    }

    /// Pushes a row into stage `from` and on down the chain.
    fn feed(&mut self, from: usize, row: Vec<u8>, out: &mut Vec<Vec<bool>>) {
        let mut row = Some(row);
        for s in from..self.stages.len() {
            match row.take() {
                Some(r) => row = self.stages[s].push(r),
                None => return,
            }
        }
        if let Some(r) = row {
            out.push(r.iter().map(|&v| v & (FG | VALID) == FG | VALID).collect());
        }
    }
}

/// Filters a whole small mask at once (tests, chips): same result as streaming.
pub fn clean_mask(mask: &[u8], width: usize, opening: bool, closing: bool) -> Vec<bool> {
    let mut m = Morphology::new(opening, closing);
    let mut out = Vec::with_capacity(mask.len());
    for row in mask.chunks(width) {
        for r in m.push(row) {
            out.extend(r);
        }
    }
    for r in m.finish() {
        out.extend(r);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The filter written pixel by pixel, as the definition reads.
    fn reference(op: Op, prev: Option<&[u8]>, cur: &[u8], next: Option<&[u8]>) -> Vec<u8> {
        let w = cur.len();
        let erode = matches!(op, Op::Erode | Op::ErodeKeep);
        let outside = if op == Op::ErodeKeep { Some(0u8) } else { None };
        let comb = |a: u8, b: u8| if erode { a & b } else { a | b };
        let mut col = vec![0u8; w];
        for c in 0..w {
            let mut v = cur[c] & FG;
            for r in [prev, next] {
                match (r, outside) {
                    (Some(r), _) => v = comb(v, r[c] & FG),
                    (None, Some(o)) => v = comb(v, o),
                    (None, None) => {}
                }
            }
            col[c] = v;
        }
        (0..w)
            .map(|c| {
                let mut v = col[c];
                for n in [c.checked_sub(1), Some(c + 1).filter(|&k| k < w)] {
                    match (n, outside) {
                        (Some(k), _) => v = comb(v, col[k]),
                        (None, Some(o)) => v = comb(v, o),
                        (None, None) => {}
                    }
                }
                match op {
                    Op::Erode | Op::Dilate => v | (cur[c] & (VALID | KEEP)),
                    Op::DilateKeep => {
                        v | (cur[c] & VALID) | if cur[c] & FG != 0 { KEEP } else { 0 }
                    }
                    Op::ErodeKeep => v | (cur[c] & VALID) | if cur[c] & KEEP != 0 { FG } else { 0 },
                }
            })
            .collect()
    }

    #[test]
    fn row_filter_equals_the_pixel_by_pixel_definition() {
        // A small xorshift: every bit pattern of the three flags, any width.
        let mut x = 0x2545f491u32;
        let mut row = |w: usize| -> Vec<u8> {
            (0..w)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    (x & 7) as u8
                })
                .collect()
        };
        for w in [1, 2, 3, 17, 64] {
            for op in [Op::Erode, Op::Dilate, Op::DilateKeep, Op::ErodeKeep] {
                for _ in 0..20 {
                    let (p, c, n) = (row(w), row(w), row(w));
                    for (pp, nn) in [
                        (Some(&p[..]), Some(&n[..])),
                        (None, Some(&n[..])),
                        (Some(&p[..]), None),
                        (None, None),
                    ] {
                        assert_eq!(
                            Stage::apply(op, pp, &c, nn),
                            reference(op, pp, &c, nn),
                            "{op:?} width {w}"
                        );
                    }
                }
            }
        }
    }

    fn grid(s: &[&str]) -> (Vec<u8>, usize) {
        let w = s[0].len();
        let v = s
            .iter()
            .flat_map(|r| {
                r.bytes().map(|b| {
                    if b == b'#' {
                        1
                    } else if b == b'x' {
                        255
                    } else {
                        0
                    }
                })
            })
            .collect();
        (v, w)
    }

    fn show(v: &[bool], w: usize) -> Vec<String> {
        v.chunks(w)
            .map(|r| r.iter().map(|&b| if b { '#' } else { '.' }).collect())
            .collect()
    }

    #[test]
    fn opening_removes_speckle_and_thin_lines_keeps_squares() {
        let (m, w) = grid(&[
            "#.......", //
            "...###..", //
            "...###..", //
            "...###..", //
            "........", //
            "##.#####", //
            "........",
        ]);
        let out = clean_mask(&m, w, true, false);
        assert_eq!(
            show(&out, w),
            ["........", "...###..", "...###..", "...###..", "........", "........", "........"]
        );
    }

    #[test]
    fn closing_fills_one_pixel_hole_and_gap() {
        let (m, w) = grid(&[
            "..........", //
            ".###.####.", //
            ".###.#.##.", //
            ".###.####.", //
            "..........",
        ]);
        let out = clean_mask(&m, w, false, true);
        assert_eq!(
            show(&out, w),
            [
                "..........",
                ".########.",
                ".########.",
                ".########.",
                ".........."
            ]
        );
    }

    #[test]
    fn edges_do_not_erode_and_masked_stays_out() {
        // A block touching the top-left corner survives the opening whole.
        let (m, w) = grid(&["###..", "###..", "###..", ".....", "....."]);
        let out = clean_mask(&m, w, true, true);
        assert_eq!(show(&out, w), ["###..", "###..", "###..", ".....", "....."]);
        // A masked pixel inside a block is not filled by the closing.
        let (m, w) = grid(&["#####", "##x##", "#####"]);
        let out = clean_mask(&m, w, false, true);
        assert_eq!(show(&out, w), ["#####", "##.##", "#####"]);
    }

    #[test]
    fn streaming_emits_every_row_once_in_order() {
        let (m, w) = grid(&["###", "###", "###", "...", "###", "###", "###"]);
        let mut morph = Morphology::new(true, true);
        let mut rows = Vec::new();
        for (i, r) in m.chunks(w).enumerate() {
            let got = morph.push(r);
            if i < Morphology::LAG {
                assert!(got.is_empty(), "row {i}: the chain lags 4 rows");
            }
            rows.extend(got);
        }
        rows.extend(morph.finish());
        assert_eq!(rows.len(), 7);
        // The closing joins the two blocks across the one-row gap, except at
        // the grid edge (the outside counts as no change).
        assert_eq!(
            show(&rows.concat(), w),
            ["###", "###", "###", ".#.", "###", "###", "###"]
        );
    }
}
