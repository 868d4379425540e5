//! The pixels a site covers on the truth grid, for judging whether it is a
//! true site (see [`super::top_sites`]).
//!
//! A site **covers** pixel (c, r) when the pixel's centre (c + 0.5, r + 0.5)
//! lies inside its polygon: even-odd rule over the polygon's rings, so holes
//! are outside; a centre exactly on a left edge is inside, on a right edge
//! outside, so two polygons sharing an edge never both cover a pixel. For a
//! MultiPolygon a pixel is covered when a centre lies inside any part. This
//! is GDAL's default rasterization. dunewatch traces its sites along pixel
//! edges of the run grid, which is the truth grid, so the covered pixels are
//! exactly the site's own pixels (its `pixels` property): counting every
//! pixel the outline touches instead would add a ring of neighbours around
//! each site and halve the share of change in a small one.
//!
//! A site whose polygon covers no pixel centre (a Point, or a polygon
//! smaller or thinner than a pixel) **falls back to the pixels it touches**
//! (all-touched rasterization, [`Site::touches`]), so that it is still
//! judged by the pixel it lies in.
//!
//! Only pixels on the grid count. Rows are scanned one at a time: the
//! crossings of the row's centre line with the polygon's edges, sorted,
//! bound the runs of covered pixels, so the cost is rows × edges per site,
//! not pixels × edges.

use super::sites::Site;

/// Half-open column runs [c0, c1) of `width` whose centres on row `row` lie
/// inside the polygon `rings` (even-odd), appended to `out` in order.
fn polygon_runs(
    rings: &[Vec<(f64, f64)>],
    row: usize,
    width: usize,
    out: &mut Vec<(usize, usize)>,
) {
    let cy = row as f64 + 0.5;
    let mut xs: Vec<f64> = Vec::new();
    for ring in rings {
        let n = ring.len();
        for i in 0..n {
            let (a, b) = (ring[i], ring[(i + 1) % n]);
            // Same half-open test as `Site::touches`: a vertex on the line
            // counts for one of its two edges only.
            if (a.1 > cy) != (b.1 > cy) {
                xs.push(a.0 + (cy - a.1) * (b.0 - a.0) / (b.1 - a.1));
            }
        }
    }
    xs.sort_by(f64::total_cmp);
    // Centre x is inside when an odd number of crossings lie right of it:
    // x in [xs[2i], xs[2i + 1]).
    for pair in xs.chunks_exact(2) {
        let c0 = (pair[0] - 0.5).ceil().max(0.0);
        let c1 = (pair[1] - 0.5).ceil().min(width as f64);
        if c1 > c0 {
            out.push((c0 as usize, c1 as usize));
        }
    }
}

impl Site {
    /// Runs [c0, c1) of pixels on row `row` whose centres the site's polygons
    /// cover (union over the parts, merged, in column order).
    pub fn centre_runs(&self, row: usize, width: usize) -> Vec<(usize, usize)> {
        let mut runs = Vec::new();
        for poly in &self.polygons {
            polygon_runs(poly, row, width, &mut runs);
        }
        if self.polygons.len() > 1 {
            runs.sort_unstable();
            let mut merged: Vec<(usize, usize)> = Vec::with_capacity(runs.len());
            for (a, b) in runs {
                match merged.last_mut() {
                    Some(last) if a <= last.1 => last.1 = last.1.max(b),
                    _ => merged.push((a, b)),
                }
            }
            runs = merged;
        }
        runs
    }

    /// Whether the site covers no pixel centre and so is judged by the
    /// pixels it touches, and how many pixels it covers (or touches) on a
    /// grid of `width` × `height`. Sites off the grid cover nothing.
    pub fn cover(&self, width: usize, height: usize) -> (bool, u64) {
        let Some((c0, r0, c1, r1)) = self.range else {
            return (false, 0);
        };
        let centre: u64 = (r0..=r1.min(height - 1))
            .flat_map(|r| self.centre_runs(r, width))
            .map(|(a, b)| (b - a) as u64)
            .sum();
        if centre > 0 {
            return (false, centre);
        }
        let touched = (r0..=r1.min(height - 1))
            .map(|r| {
                (c0..=c1.min(width - 1))
                    .filter(|&c| self.touches(c, r))
                    .count() as u64
            })
            .sum();
        (true, touched)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rect(x0: f64, y0: f64, x1: f64, y1: f64) -> Vec<(f64, f64)> {
        vec![(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]
    }

    fn cells(s: &Site, w: usize, h: usize) -> Vec<(usize, usize)> {
        (0..h)
            .flat_map(|r| {
                s.centre_runs(r, w)
                    .into_iter()
                    .flat_map(move |(a, b)| (a..b).map(move |c| (c, r)))
            })
            .collect()
    }

    #[test]
    fn pixel_edge_outline_covers_exactly_its_pixels() {
        // Pixels 2..=4 x 1..=2, traced along pixel edges: 6 pixels, not the 20 it touches.
        let s = Site::from_pixel_polygons("a", vec![vec![rect(2.0, 1.0, 5.0, 3.0)]], 10, 10);
        assert_eq!(
            cells(&s, 10, 10),
            vec![(2, 1), (3, 1), (4, 1), (2, 2), (3, 2), (4, 2)]
        );
        assert_eq!(s.cover(10, 10), (false, 6));
    }

    #[test]
    fn centres_holes_parts_and_clipping() {
        // Cuts pixels: centres 2.5, 3.5 inside x in [2.2, 3.6); 1.5 inside y in [1.4, 1.6).
        let s = Site::from_pixel_polygons("a", vec![vec![rect(2.2, 1.4, 3.6, 1.6)]], 10, 10);
        assert_eq!(cells(&s, 10, 10), vec![(2, 1), (3, 1)]);
        // A 4 x 4 square with a 2 x 2 hole: 12 pixels; a second part overlapping it adds 1.
        let outer = rect(0.0, 0.0, 4.0, 4.0);
        let hole = rect(1.0, 1.0, 3.0, 3.0);
        let s = Site::from_pixel_polygons(
            "a",
            vec![vec![outer, hole], vec![rect(3.0, 3.0, 5.0, 4.0)]],
            10,
            10,
        );
        assert_eq!(s.cover(10, 10), (false, 13));
        assert!(!cells(&s, 10, 10).contains(&(1, 1)));
        // Hanging off the grid's right and bottom edges: only on-grid pixels.
        let s = Site::from_pixel_polygons("a", vec![vec![rect(8.0, 8.0, 14.0, 14.0)]], 10, 10);
        assert_eq!(s.cover(10, 10), (false, 4));
        let s = Site::from_pixel_polygons("a", vec![vec![rect(-3.0, -3.0, 1.0, 2.0)]], 10, 10);
        assert_eq!(s.cover(10, 10), (false, 2));
    }

    #[test]
    fn tiny_sites_fall_back_to_touched_pixels() {
        // Inside pixel (6, 6), no centre covered: judged by that one pixel.
        let s = Site::from_pixel_polygons("a", vec![vec![rect(6.1, 6.1, 6.4, 6.4)]], 10, 10);
        assert_eq!(s.cover(10, 10), (true, 1));
        // A point on the corner shared by four pixels touches all four.
        let s = Site::from_pixel_polygons("p", vec![vec![vec![(3.0, 3.0)]]], 10, 10);
        assert_eq!(s.cover(10, 10), (true, 4));
        // A sliver thinner than a pixel, between centre lines: pixels 1..=3 of row 2,
        // and 0 and 4, whose borders its ends lie on.
        let s = Site::from_pixel_polygons("a", vec![vec![rect(1.0, 2.6, 4.0, 2.9)]], 10, 10);
        assert_eq!(s.cover(10, 10), (true, 5));
        // Off the grid.
        let s = Site::from_pixel_polygons("a", vec![vec![rect(20.0, 20.0, 22.0, 22.0)]], 10, 10);
        assert_eq!(s.cover(10, 10), (false, 0));
    }
}
