//! Connected components (8-connectivity) of a binary mask streamed row by
//! row, with union-find over runs.
//!
//! Why this way: a full Sentinel-2 tile is 10980 x 10980 pixels and the mask
//! is read in strips of rows; a site cut by a strip seam must still be one
//! site. Each row is cut into runs of change pixels; a run touching (8-way:
//! overlapping or diagonally adjacent) a run of the previous row joins its
//! component, and a run touching two earlier components merges them
//! (union-find with path halving). Nothing but the previous row's runs, the
//! union-find parents (one `u32` per provisional label) and one accumulator
//! per *open* component is held. A component that no run of the current row
//! touched is complete: it is kept when it reaches the minimum mapping unit
//! and dropped otherwise, so memory follows the number of sites, not pixels.
//!
//! Every row's provisional labels are handed back to the caller, as runs
//! ([`LabelRuns`]) or a row of pixels; [`Labeller::finish`] returns the sites and the
//! table that maps each provisional label to its site (0 = none).

use super::label_runs::LabelRuns;
use std::collections::HashMap;

/// What is accumulated per component while labelling.
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    pub pixels: u64,
    /// Ground area in m^2 (each row's pixel area, which varies with latitude
    /// on geographic grids).
    pub area_m2: f64,
    /// Inclusive pixel bounds: first/last column and row.
    pub col0: usize,
    pub row0: usize,
    pub col1: usize,
    pub row1: usize,
}

impl Component {
    fn merge(&mut self, o: &Component) {
        self.pixels += o.pixels;
        self.area_m2 += o.area_m2;
        self.col0 = self.col0.min(o.col0);
        self.row0 = self.row0.min(o.row0);
        self.col1 = self.col1.max(o.col1);
        self.row1 = self.row1.max(o.row1);
    }
    pub fn width(&self) -> usize {
        self.col1 - self.col0 + 1
    }
    pub fn height(&self) -> usize {
        self.row1 - self.row0 + 1
    }
}

#[derive(Debug, Clone, Copy)]
struct Run {
    start: usize,
    end: usize, // exclusive
    label: u32,
}

/// The streaming labeller.
pub struct Labeller {
    width: usize,
    row: usize,
    /// Union-find parents; index 0 is background.
    parent: Vec<u32>,
    prev: Vec<Run>,
    open: HashMap<u32, Component>,
    /// Completed components that passed the area test, with their root label.
    done: Vec<(u32, Component)>,
    min_area_m2: f64,
}

/// The result: components kept, and provisional label -> site number (1-based
/// index into `components`, 0 = not a site).
pub struct Labelled {
    pub components: Vec<Component>,
    pub site_of_label: Vec<u32>,
}

impl Labeller {
    pub fn new(width: usize, min_area_m2: f64) -> Self {
        Labeller {
            width,
            row: 0,
            parent: vec![0],
            prev: Vec::new(),
            open: HashMap::new(),
            done: Vec::new(),
            min_area_m2,
        }
    }

    fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let p = self.parent[x as usize];
            self.parent[x as usize] = self.parent[p as usize];
            x = self.parent[x as usize];
        }
        x
    }

    /// Merges the components of `a` and `b`; returns the surviving root.
    fn union(&mut self, a: u32, b: u32) -> u32 {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return ra;
        }
        let (keep, gone) = if ra < rb { (ra, rb) } else { (rb, ra) };
        self.parent[gone as usize] = keep;
        if let Some(g) = self.open.remove(&gone) {
            match self.open.get_mut(&keep) {
                Some(k) => k.merge(&g),
                None => {
                    self.open.insert(keep, g);
                }
            }
        }
        keep
    }

    /// Labels the next row. `pixel_area_m2` is the ground area of one pixel
    /// of this row. Returns the provisional label of every pixel (0 = none).
    pub fn push_row(&mut self, row: &[bool], pixel_area_m2: f64) -> Vec<u32> {
        self.advance(row, pixel_area_m2);
        let mut out = vec![0u32; self.width];
        for run in &self.prev {
            out[run.start..run.end].fill(run.label);
        }
        out
    }

    /// As [`Labeller::push_row`], with the row's provisional labels appended
    /// to `out` as runs.
    pub fn push_row_into(&mut self, row: &[bool], pixel_area_m2: f64, out: &mut LabelRuns) {
        self.advance(row, pixel_area_m2);
        out.push_row(self.prev.iter().map(|r| (r.start, r.end, r.label)));
    }

    /// Labels the next row; its runs, with their provisional labels, are
    /// left in `self.prev`.
    fn advance(&mut self, row: &[bool], pixel_area_m2: f64) {
        assert_eq!(row.len(), self.width, "row width");
        let r = self.row;
        let mut runs = Vec::new();
        let mut c = 0;
        while c < row.len() {
            if row[c] {
                let s = c;
                while c < row.len() && row[c] {
                    c += 1;
                }
                runs.push(Run {
                    start: s,
                    end: c,
                    label: 0,
                });
            } else {
                c += 1;
            }
        }

        // Join each run to the previous row's runs it touches (8-way).
        let prev = std::mem::take(&mut self.prev);
        let mut j = 0;
        for run in runs.iter_mut() {
            // Skip previous runs that end too far left to touch this one.
            while j < prev.len() && prev[j].end < run.start {
                j += 1;
            }
            let mut k = j;
            let mut label = 0u32;
            while k < prev.len() && prev[k].start <= run.end {
                label = if label == 0 {
                    self.find(prev[k].label)
                } else {
                    self.union(label, prev[k].label)
                };
                k += 1;
            }
            if label == 0 {
                label = self.parent.len() as u32;
                self.parent.push(label);
            }
            run.label = label;
        }

        // Accumulate.
        for run in &runs {
            let root = self.find(run.label);
            let n = run.end - run.start;
            let part = Component {
                pixels: n as u64,
                area_m2: n as f64 * pixel_area_m2,
                col0: run.start,
                row0: r,
                col1: run.end - 1,
                row1: r,
            };
            match self.open.get_mut(&root) {
                Some(acc) => acc.merge(&part),
                None => {
                    self.open.insert(root, part);
                }
            }
        }

        // Components no run of this row touched are complete.
        let mut live: Vec<u32> = runs.iter().map(|run| run.label).collect();
        for l in live.iter_mut() {
            *l = self.find(*l);
        }
        live.sort_unstable();
        live.dedup();
        let mut closed: Vec<u32> = prev.iter().map(|p| p.label).collect();
        for l in closed.iter_mut() {
            *l = self.find(*l);
        }
        closed.sort_unstable();
        closed.dedup();
        for root in closed {
            if live.binary_search(&root).is_err() {
                self.close(root);
            }
        }
        self.prev = runs;
        self.row += 1;
    }

    fn close(&mut self, root: u32) {
        if let Some(c) = self.open.remove(&root) {
            if c.area_m2 >= self.min_area_m2 {
                self.done.push((root, c));
            }
        }
    }

    /// Closes the components still open and resolves every provisional label.
    pub fn finish(mut self) -> Labelled {
        let roots: Vec<u32> = self.open.keys().copied().collect();
        for r in roots {
            self.close(r);
        }
        // Sites in reading order of their first pixel row, then column.
        self.done.sort_by_key(|(_, c)| (c.row0, c.col0));
        let mut site_of_root: HashMap<u32, u32> = HashMap::with_capacity(self.done.len());
        for (i, (root, _)) in self.done.iter().enumerate() {
            site_of_root.insert(*root, i as u32 + 1);
        }
        let n = self.parent.len();
        let mut site_of_label = vec![0u32; n];
        for l in 1..n as u32 {
            let r = self.find(l);
            site_of_label[l as usize] = site_of_root.get(&r).copied().unwrap_or(0);
        }
        Labelled {
            components: self.done.into_iter().map(|(_, c)| c).collect(),
            site_of_label,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(rows: &[&str], min_px: f64) -> (Labelled, Vec<Vec<u32>>) {
        let w = rows[0].len();
        let mut l = Labeller::new(w, min_px);
        let mut prov = Vec::new();
        for r in rows {
            let b: Vec<bool> = r.bytes().map(|c| c == b'#').collect();
            prov.push(l.push_row(&b, 1.0));
        }
        (l.finish(), prov)
    }

    fn sites(rows: &[&str], min_px: f64) -> Vec<Vec<u32>> {
        let (lab, prov) = label(rows, min_px);
        prov.iter()
            .map(|r| r.iter().map(|&p| lab.site_of_label[p as usize]).collect())
            .collect()
    }

    #[test]
    fn diagonal_touch_joins_and_gap_separates() {
        let s = sites(&["#..#", ".#..", "....", "##.#"], 0.0);
        assert_eq!(
            s,
            vec![
                vec![1, 0, 0, 2],
                vec![0, 1, 0, 0],
                vec![0, 0, 0, 0],
                vec![3, 3, 0, 4]
            ]
        );
    }

    #[test]
    fn u_shape_merges_late_with_accumulators() {
        // Two arms that only meet in the last row: one component, 9 pixels.
        let (lab, _) = label(&["#...#", "#...#", "#####"], 0.0);
        assert_eq!(lab.components.len(), 1);
        let c = &lab.components[0];
        assert_eq!((c.pixels, c.col0, c.row0, c.col1, c.row1), (9, 0, 0, 4, 2));
    }

    #[test]
    fn spiral_with_many_merges() {
        let rows = [
            "#######", "#.....#", "#.###.#", "#.#.#.#", "#.#...#", "#.#####", "#......", "#######",
        ];
        let (lab, _) = label(&rows, 0.0);
        let n: usize = rows
            .iter()
            .map(|r| r.bytes().filter(|&c| c == b'#').count())
            .sum();
        assert_eq!(lab.components.len(), 1);
        assert_eq!(lab.components[0].pixels as usize, n);
    }

    #[test]
    fn small_components_dropped_and_area_weighted_by_row() {
        let w = 6;
        let mut l = Labeller::new(w, 5.0);
        let rows = ["##...#", "##....", "......"];
        for (i, r) in rows.iter().enumerate() {
            let b: Vec<bool> = r.bytes().map(|c| c == b'#').collect();
            l.push_row(&b, 1.0 + i as f64); // rows 0, 1 weigh 1 and 2 m^2 per pixel
        }
        let lab = l.finish();
        assert_eq!(lab.components.len(), 1, "the 1-pixel site is under 5 m^2");
        assert_eq!(lab.components[0].area_m2, 2.0 + 4.0);
    }
}
