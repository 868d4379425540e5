//! Object-level recall: connected components of the truth's change pixels,
//! labelled row by row, and their recall by size class.
//!
//! Why objects: a 30 m hangar missed entirely and a 3 km runway missed by
//! one pixel weigh the same in pixel recall's numerator, but not in what an
//! analyst cares about. Each truth object (8-connected component of truth
//! change pixels) counts as **detected when at least one of its pixels is
//! predicted change**. An object whose pixels are *all* masked in the
//! prediction (255) could not be judged: it is counted apart as `masked` and
//! left out of the recall, like masked pixels are left out of pixel figures.
//! Partly masked objects count normally.
//!
//! Size classes use the object's area (pixels × pixel area in m²):
//! under 0.1 ha (< 1 000 m²), 0.1–1 ha (1 000 m² ≤ area ≤ 10 000 m²) and
//! over 1 ha (> 10 000 m²).
//!
//! How: rasters may be 10 980 × 10 980, so there is no label image. Each row
//! is cut into runs of change pixels; a run touching a run of the previous
//! row (8-connectivity: column ranges overlap once widened by one pixel)
//! joins that run's component, and a run touching several merges them in a
//! union-find. Only the previous row's runs are kept, so rows can come in
//! strips of any height and labels carry across strip borders. The
//! union-find holds one node per run that starts a new component (not one
//! per pixel or per run), with each root carrying its component's figures.

use super::confusion::{ratio, PRED_MASKED};
use serde::Serialize;

/// Upper bound (inclusive-exclusive) of the smallest class, m² (0.1 ha).
pub const SMALL_MAX_M2: f64 = 1_000.0;
/// Upper bound (inclusive) of the middle class, m² (1 ha).
pub const MEDIUM_MAX_M2: f64 = 10_000.0;

/// One truth object once labelling is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Object {
    /// Pixels in the object.
    pub pixels: u64,
    /// At least one pixel predicted change.
    pub detected: bool,
    /// Every pixel masked in the prediction.
    pub fully_masked: bool,
}

#[derive(Debug, Clone, Copy)]
struct Stats {
    pixels: u64,
    detected: bool,
    /// Some pixel is not masked.
    seen: bool,
}

#[derive(Debug, Clone, Copy)]
struct Run {
    start: usize,
    /// Exclusive.
    end: usize,
    node: u32,
}

/// Row-by-row 8-connected component labeller (see the module doc).
pub struct ObjectLabeller {
    width: usize,
    parent: Vec<u32>,
    stats: Vec<Stats>,
    prev: Vec<Run>,
    cur: Vec<Run>,
}

impl ObjectLabeller {
    pub fn new(width: usize) -> Self {
        ObjectLabeller {
            width,
            parent: Vec::new(),
            stats: Vec::new(),
            prev: Vec::new(),
            cur: Vec::new(),
        }
    }

    fn find(&mut self, mut i: u32) -> u32 {
        while self.parent[i as usize] != i {
            let gp = self.parent[self.parent[i as usize] as usize];
            self.parent[i as usize] = gp; // path halving
            i = gp;
        }
        i
    }

    fn union(&mut self, a: u32, b: u32) -> u32 {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return ra;
        }
        // The bigger component stays root.
        let (root, child) = if self.stats[ra as usize].pixels >= self.stats[rb as usize].pixels {
            (ra, rb)
        } else {
            (rb, ra)
        };
        self.parent[child as usize] = root;
        let c = self.stats[child as usize];
        let r = &mut self.stats[root as usize];
        r.pixels += c.pixels;
        r.detected |= c.detected;
        r.seen |= c.seen;
        root
    }

    /// Adds the next row: `truth_change[i]` whether pixel i is truth change,
    /// `pred[i]` the prediction (0, 1 or 255). Both `width` long.
    pub fn push_row(&mut self, truth_change: &[bool], pred: &[u8]) {
        assert_eq!(truth_change.len(), self.width, "truth row length");
        assert_eq!(pred.len(), self.width, "prediction row length");
        std::mem::swap(&mut self.prev, &mut self.cur);
        self.cur.clear();
        let mut k = 0; // first previous run that may still touch
        let mut x = 0;
        while x < self.width {
            if !truth_change[x] {
                x += 1;
                continue;
            }
            let start = x;
            let (mut detected, mut seen) = (false, false);
            while x < self.width && truth_change[x] {
                detected |= pred[x] == 1;
                seen |= pred[x] != PRED_MASKED;
                x += 1;
            }
            let end = x;
            // Previous runs [s, e) touch [start, end) when s <= end and e >= start
            // (diagonal neighbours included). Runs are sorted and disjoint.
            while k < self.prev.len() && self.prev[k].end < start {
                k += 1;
            }
            let mut node: Option<u32> = None;
            let mut j = k;
            while j < self.prev.len() && self.prev[j].start <= end {
                let p = self.prev[j].node;
                node = Some(match node {
                    None => self.find(p),
                    Some(n) => self.union(n, p),
                });
                j += 1;
            }
            // The last touching previous run may also touch the next run.
            k = j.saturating_sub(1).max(k);
            let node = match node {
                Some(n) => n,
                None => {
                    let n = u32::try_from(self.parent.len()).expect("more than 4 billion objects");
                    self.parent.push(n);
                    self.stats.push(Stats {
                        pixels: 0,
                        detected: false,
                        seen: false,
                    });
                    n
                }
            };
            let s = &mut self.stats[node as usize];
            s.pixels += (end - start) as u64;
            s.detected |= detected;
            s.seen |= seen;
            self.cur.push(Run { start, end, node });
        }
    }

    /// The objects found (in no particular order).
    pub fn finish(mut self) -> Vec<Object> {
        let mut out = Vec::new();
        for i in 0..self.parent.len() as u32 {
            if self.find(i) == i {
                let s = self.stats[i as usize];
                out.push(Object {
                    pixels: s.pixels,
                    detected: s.detected,
                    fully_masked: !s.seen,
                });
            }
        }
        out
    }
}

/// Recall over one set of objects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ClassRecall {
    /// Objects judged (not fully masked).
    pub objects: u64,
    /// Of which detected.
    pub detected: u64,
    /// Objects fully masked in the prediction (not in `objects`).
    pub masked: u64,
    /// detected / objects (0 when there are none).
    pub recall: f64,
}

impl ClassRecall {
    fn add(&mut self, o: &Object) {
        if o.fully_masked {
            self.masked += 1;
        } else {
            self.objects += 1;
            self.detected += o.detected as u64;
        }
        self.recall = ratio(self.detected as f64, self.objects as f64);
    }
}

/// Object recall overall and by size class.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ObjectScores {
    /// Area of one pixel, m².
    pub pixel_area_m2: f64,
    /// True when no raster was georeferenced and 10 m pixels were assumed.
    pub pixel_area_assumed: bool,
    pub all: ClassRecall,
    /// Objects under 0.1 ha.
    pub under_0_1_ha: ClassRecall,
    /// Objects of 0.1 to 1 ha.
    pub from_0_1_to_1_ha: ClassRecall,
    /// Objects over 1 ha.
    pub over_1_ha: ClassRecall,
}

/// Sorts objects into size classes and counts detections.
pub fn score_objects(
    objects: &[Object],
    pixel_area_m2: f64,
    pixel_area_assumed: bool,
) -> ObjectScores {
    let mut s = ObjectScores {
        pixel_area_m2,
        pixel_area_assumed,
        all: ClassRecall::default(),
        under_0_1_ha: ClassRecall::default(),
        from_0_1_to_1_ha: ClassRecall::default(),
        over_1_ha: ClassRecall::default(),
    };
    for o in objects {
        s.all.add(o);
        let area = o.pixels as f64 * pixel_area_m2;
        let class = if area < SMALL_MAX_M2 {
            &mut s.under_0_1_ha
        } else if area <= MEDIUM_MAX_M2 {
            &mut s.from_0_1_to_1_ha
        } else {
            &mut s.over_1_ha
        };
        class.add(o);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Labels an ASCII picture: '#' truth change predicted 0, 'D' truth
    /// change predicted 1, 'M' truth change masked, 'p' predicted change
    /// without truth, anything else nothing.
    fn label(pic: &[&str]) -> Vec<Object> {
        let w = pic[0].len();
        let mut l = ObjectLabeller::new(w);
        for row in pic {
            let t: Vec<bool> = row
                .bytes()
                .map(|c| matches!(c, b'#' | b'D' | b'M'))
                .collect();
            let p: Vec<u8> = row
                .bytes()
                .map(|c| match c {
                    b'D' | b'p' => 1,
                    b'M' => 255,
                    _ => 0,
                })
                .collect();
            l.push_row(&t, &p);
        }
        let mut v = l.finish();
        v.sort_by_key(|o| (o.pixels, o.detected, o.fully_masked));
        v
    }

    fn obj(pixels: u64, detected: bool) -> Object {
        Object {
            pixels,
            detected,
            fully_masked: false,
        }
    }

    #[test]
    fn separate_and_diagonal() {
        let v = label(&["#..#", ".#..", "....", "##.#"]);
        // Top-left diagonal pair joins (8-connectivity); (0,3) and (3,3) are apart.
        assert_eq!(
            v,
            vec![obj(1, false), obj(1, false), obj(2, false), obj(2, false)]
        );
    }

    #[test]
    fn u_shape_merges_late() {
        let v = label(&["#.#.#", "#.#.#", "#####"]);
        assert_eq!(v, vec![obj(11, false)]);
    }

    #[test]
    fn detection_spreads_over_merges() {
        let v = label(&["#..D", "#..#", "####", "....", "p.##"]);
        assert_eq!(v, vec![obj(2, false), obj(8, true)]);
    }

    #[test]
    fn fully_masked_objects() {
        let v = label(&["MM..M#", "......"]);
        assert_eq!(
            v,
            vec![
                Object {
                    pixels: 2,
                    detected: false,
                    fully_masked: false
                },
                Object {
                    pixels: 2,
                    detected: false,
                    fully_masked: true
                }
            ]
        );
    }

    #[test]
    fn anti_diagonal_chain_and_run_reuse() {
        // One long run touching two runs below it, and a diagonal chain.
        let v = label(&["######..", "#....#..", "......#.", ".......#"]);
        assert_eq!(v, vec![obj(10, false)]);
        let v = label(&["...#", "..#.", ".#..", "#..."]);
        assert_eq!(v, vec![obj(4, false)]);
    }

    #[test]
    fn runs_do_not_touch_across_a_gap() {
        let v = label(&["##..##", "..##.."]);
        // The middle run touches both diagonally.
        assert_eq!(v, vec![obj(6, false)]);
        let v = label(&["##...##", "...#..."]);
        assert_eq!(v, vec![obj(1, false), obj(2, false), obj(2, false)]);
    }

    /// Whole-image flood fill (8-connectivity): the obvious labelling, to
    /// check the run-based one against.
    fn flood(t: &[bool], p: &[u8], w: usize, h: usize) -> Vec<Object> {
        let mut seen = vec![false; t.len()];
        let mut out = Vec::new();
        for s in 0..t.len() {
            if !t[s] || seen[s] {
                continue;
            }
            let mut o = Object {
                pixels: 0,
                detected: false,
                fully_masked: true,
            };
            let mut stack = vec![s];
            seen[s] = true;
            while let Some(i) = stack.pop() {
                o.pixels += 1;
                o.detected |= p[i] == 1;
                o.fully_masked &= p[i] == PRED_MASKED;
                let (x, y) = ((i % w) as i64, (i / w) as i64);
                for dy in -1..=1 {
                    for dx in -1..=1 {
                        let (nx, ny) = (x + dx, y + dy);
                        if nx < 0 || ny < 0 || nx >= w as i64 || ny >= h as i64 {
                            continue;
                        }
                        let j = ny as usize * w + nx as usize;
                        if t[j] && !seen[j] {
                            seen[j] = true;
                            stack.push(j);
                        }
                    }
                }
            }
            out.push(o);
        }
        out
    }

    #[test]
    fn matches_flood_fill_on_random_images() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for case in 0..300 {
            let (w, h) = (1 + (next() % 23) as usize, 1 + (next() % 17) as usize);
            let density = [20, 45, 60, 75][case % 4];
            let t: Vec<bool> = (0..w * h).map(|_| next() % 100 < density).collect();
            let p: Vec<u8> = (0..w * h)
                .map(|_| [0, 0, 0, 1, 255, 255][(next() % 6) as usize])
                .collect();
            let mut l = ObjectLabeller::new(w);
            for r in 0..h {
                l.push_row(&t[r * w..(r + 1) * w], &p[r * w..(r + 1) * w]);
            }
            let key = |o: &Object| (o.pixels, o.detected, o.fully_masked);
            let mut got = l.finish();
            let mut want = flood(&t, &p, w, h);
            got.sort_by_key(key);
            want.sort_by_key(key);
            assert_eq!(got, want, "case {case}: {w} x {h}");
        }
    }

    #[test]
    fn size_classes() {
        let objs = [
            obj(9, true),
            obj(10, false),
            obj(100, true),
            obj(101, true),
            obj(5000, false),
        ];
        let mut masked = obj(3, false);
        masked.fully_masked = true;
        let mut all = objs.to_vec();
        all.push(masked);
        let s = score_objects(&all, 100.0, false);
        assert_eq!(
            (
                s.under_0_1_ha.objects,
                s.under_0_1_ha.detected,
                s.under_0_1_ha.masked
            ),
            (1, 1, 1)
        );
        assert_eq!(
            (s.from_0_1_to_1_ha.objects, s.from_0_1_to_1_ha.detected),
            (2, 1)
        );
        assert_eq!((s.over_1_ha.objects, s.over_1_ha.detected), (2, 1));
        assert_eq!((s.all.objects, s.all.detected, s.all.masked), (5, 3, 1));
        assert!((s.all.recall - 0.6).abs() < 1e-12);
        assert!((s.from_0_1_to_1_ha.recall - 0.5).abs() < 1e-12);
        let empty = score_objects(&[], 100.0, false);
        assert_eq!(empty.all.recall, 0.0);
    }
}
