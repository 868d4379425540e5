//! Outlines of a site: boundary tracing along pixel edges.
//!
//! Why: analysts need the site as a polygon (GeoJSON, KML, drawn on chips),
//! and the outline gives the shape measures (perimeter, hull). Every edge
//! between a site pixel and a non-site pixel is a unit segment directed so
//! the site lies on its right (in image coordinates, rows down); the
//! segments are chained into closed rings of pixel corners. Where two site
//! pixels touch only at a corner, the tracer turns right, keeping each ring
//! around one 4-connected part: the rings then never cross or touch
//! themselves, so a site whose parts touch diagonally becomes a
//! MultiPolygon of parts that share a vertex, which is valid in OGC simple
//! features (and RFC 7946). Exterior rings have positive signed area in image
//! coordinates, holes negative; each hole is given to the smallest exterior
//! holding it.

/// A closed ring of pixel corners (first vertex not repeated), collinear
/// vertices removed; coordinates in pixels, x right and y down.
pub type Ring = Vec<(i64, i64)>;

/// One polygon: its exterior ring and holes.
#[derive(Debug, Clone, PartialEq)]
pub struct Polygon {
    pub exterior: Ring,
    pub holes: Vec<Ring>,
}

const DIRS: [(i64, i64); 4] = [(1, 0), (0, 1), (-1, 0), (0, -1)]; // E S W N (image: S is down)

/// Twice the signed area (shoelace) of a ring in image coordinates.
pub fn signed_area2(r: &[(i64, i64)]) -> i64 {
    let n = r.len();
    (0..n)
        .map(|i| r[i].0 * r[(i + 1) % n].1 - r[(i + 1) % n].0 * r[i].1)
        .sum()
}

/// Whether point (px, py) lies inside the ring (even-odd rule).
fn contains(r: &[(i64, i64)], px: f64, py: f64) -> bool {
    let n = r.len();
    let mut inside = false;
    for i in 0..n {
        let (ax, ay) = (r[i].0 as f64, r[i].1 as f64);
        let (bx, by) = (r[(i + 1) % n].0 as f64, r[(i + 1) % n].1 as f64);
        if (ay > py) != (by > py) && px < ax + (py - ay) * (bx - ax) / (by - ay) {
            inside = !inside;
        }
    }
    inside
}

/// A point a quarter pixel right of the middle of the ring's first edge:
/// inside the site pixel that edge borders, never on any pixel edge.
fn probe(r: &[(i64, i64)]) -> (f64, f64) {
    let (a, b) = (r[0], r[1 % r.len()]);
    let (dx, dy) = ((b.0 - a.0).signum() as f64, (b.1 - a.1).signum() as f64);
    // Right of (dx, dy) in image coordinates (y down) is (-dy, dx).
    (
        a.0 as f64 + 0.5 * dx - 0.25 * dy,
        a.1 as f64 + 0.5 * dy + 0.25 * dx,
    )
}

/// Cuts a closed vertex sequence wherever it comes back to a vertex it
/// already passed, so every piece is a simple ring. Where the background
/// reaches in through a corner, the pinched-off loop runs the other way
/// round: it becomes a hole touching the exterior at that one vertex.
/// `at` is scratch over the vertex grid (`key` gives a vertex's index),
/// all `NONE` on entry and on return.
fn split_pinches(
    ring: &[(i64, i64)],
    key: impl Fn((i64, i64)) -> usize,
    at: &mut [usize],
) -> Vec<Vec<(i64, i64)>> {
    let mut pieces = Vec::new();
    let mut stack: Vec<(i64, i64)> = Vec::with_capacity(ring.len());
    for &v in ring {
        let j = at[key(v)];
        if j != NONE {
            let piece: Vec<_> = stack.drain(j..).collect();
            for p in &piece[1..] {
                at[key(*p)] = NONE;
            }
            stack.push(v);
            pieces.push(piece);
        } else {
            at[key(v)] = stack.len();
            stack.push(v);
        }
    }
    for p in &stack {
        at[key(*p)] = NONE;
    }
    pieces.push(stack);
    pieces
}

/// An empty slot of [`split_pinches`]' scratch.
const NONE: usize = usize::MAX;

/// Drops vertices where the ring goes straight on.
fn corners_only(r: &[(i64, i64)]) -> Ring {
    let n = r.len();
    let dir = |i: usize| {
        let (a, b) = (r[i % n], r[(i + 1) % n]);
        ((b.0 - a.0).signum(), (b.1 - a.1).signum())
    };
    (0..n)
        .filter(|&i| dir(i) != dir(i + n - 1))
        .map(|i| r[i])
        .collect()
}

/// Traces the outline of the `true` pixels of a `w` x `h` raster.
pub fn trace(inside: &[bool], w: usize, h: usize) -> Vec<Polygon> {
    assert_eq!(inside.len(), w * h);
    let at = |x: i64, y: i64| {
        x >= 0
            && y >= 0
            && (x as usize) < w
            && (y as usize) < h
            && inside[y as usize * w + x as usize]
    };
    // Outgoing edge directions per vertex, as bits, over the (w + 1) x
    // (h + 1) pixel corners (a dense grid: a site's box is small, and
    // hashing the corners was most of the tracing time).
    let key = |(x, y): (i64, i64)| y as usize * (w + 1) + x as usize;
    let mut out = vec![0u8; (w + 1) * (h + 1)];
    let mut starts = Vec::new();
    for y in 0..h as i64 {
        for x in 0..w as i64 {
            if !at(x, y) {
                continue;
            }
            // (start vertex, direction) of each boundary side, site on the right.
            let sides = [
                (!at(x, y - 1), (x, y), 0u8),       // top, going E
                (!at(x + 1, y), (x + 1, y), 1),     // right, going S
                (!at(x, y + 1), (x + 1, y + 1), 2), // bottom, going W
                (!at(x - 1, y), (x, y + 1), 3),     // left, going N
            ];
            for (edge, v, d) in sides {
                if edge {
                    out[key(v)] |= 1 << d;
                    starts.push((v, d));
                }
            }
        }
    }

    let mut rings: Vec<Ring> = Vec::new();
    let mut scratch = vec![NONE; out.len()];
    for (v0, d0) in starts {
        if out[key(v0)] & (1 << d0) == 0 {
            continue; // already part of a ring
        }
        let mut ring = Vec::new();
        let (mut v, mut d) = (v0, d0);
        loop {
            out[key(v)] &= !(1 << d);
            ring.push(v);
            // A boundary edge ends on a corner of the grid.
            let nv = (v.0 + DIRS[d as usize].0, v.1 + DIRS[d as usize].1);
            let avail = out[key(nv)];
            // Right turn first, then straight on, then left.
            let next = [(d + 1) % 4, d, (d + 3) % 4]
                .into_iter()
                .find(|&nd| avail & (1 << nd) != 0);
            match next {
                Some(nd) if !(nv == v0 && nd == d0) => {
                    v = nv;
                    d = nd;
                }
                _ => break,
            }
        }
        for r in split_pinches(&ring, key, &mut scratch) {
            rings.push(corners_only(&r));
        }
    }

    let mut polys: Vec<Polygon> = Vec::new();
    let mut holes = Vec::new();
    for r in rings {
        if signed_area2(&r) > 0 {
            polys.push(Polygon {
                exterior: r,
                holes: Vec::new(),
            });
        } else {
            let probe = probe(&r);
            holes.push((r, probe));
        }
    }
    let areas: Vec<i64> = polys.iter().map(|p| signed_area2(&p.exterior)).collect();
    for (hole, probe) in holes {
        let best = (0..polys.len())
            .filter(|&i| contains(&polys[i].exterior, probe.0, probe.1))
            .min_by_key(|&i| areas[i]);
        if let Some(i) = best {
            polys[i].holes.push(hole);
        }
    }
    polys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raster(rows: &[&str]) -> (Vec<bool>, usize, usize) {
        let w = rows[0].len();
        (
            rows.iter()
                .flat_map(|r| r.bytes().map(|b| b == b'#'))
                .collect(),
            w,
            rows.len(),
        )
    }

    #[test]
    fn rectangle_is_four_corners_positive() {
        let (m, w, h) = raster(&["....", ".##.", ".##.", "...."]);
        let p = trace(&m, w, h);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].exterior, vec![(1, 1), (3, 1), (3, 3), (1, 3)]);
        assert!(p[0].holes.is_empty());
        assert_eq!(signed_area2(&p[0].exterior), 2 * 4);
    }

    #[test]
    fn ring_with_hole() {
        let (m, w, h) = raster(&["###", "#.#", "###"]);
        let p = trace(&m, w, h);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].holes.len(), 1);
        assert_eq!(signed_area2(&p[0].holes[0]), -2);
        let total: i64 =
            signed_area2(&p[0].exterior) + p[0].holes.iter().map(|h| signed_area2(h)).sum::<i64>();
        assert_eq!(total, 2 * 8, "area = pixel count");
    }

    #[test]
    fn diagonal_parts_become_two_polygons_sharing_a_vertex() {
        let (m, w, h) = raster(&["#.", ".#"]);
        let p = trace(&m, w, h);
        assert_eq!(p.len(), 2);
        for poly in &p {
            assert_eq!(
                poly.exterior.len(),
                4,
                "each ring is a simple square: {:?}",
                poly.exterior
            );
        }
    }

    #[test]
    fn area_matches_pixel_count_for_irregular_shapes() {
        let rows = [
            ".#####..", "##...##.", "#..#..#.", "##.#.##.", ".#####.#", "......##",
        ];
        let (m, w, h) = raster(&rows);
        let p = trace(&m, w, h);
        let area2: i64 = p
            .iter()
            .map(|q| {
                signed_area2(&q.exterior) + q.holes.iter().map(|r| signed_area2(r)).sum::<i64>()
            })
            .sum();
        assert_eq!(area2 as usize, 2 * m.iter().filter(|&&b| b).count());
        // Every ring is simple: no vertex repeated.
        for q in &p {
            for r in std::iter::once(&q.exterior).chain(q.holes.iter()) {
                let mut v = r.clone();
                v.sort();
                v.dedup();
                assert_eq!(v.len(), r.len(), "ring revisits a vertex: {r:?}");
            }
        }
    }

    #[test]
    fn background_reaching_in_at_a_corner_becomes_a_touching_hole() {
        // (1, 1) is background joined to the outside only through the corner
        // it shares with (2, 0): one exterior and a hole touching it at (2, 1).
        let (m, w, h) = raster(&["##.", "#.#", "###"]);
        let p = trace(&m, w, h);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].holes.len(), 1);
        assert_eq!(signed_area2(&p[0].holes[0]), -2);
        assert!(p[0].exterior.contains(&(2, 1)) && p[0].holes[0].contains(&(2, 1)));
        for r in std::iter::once(&p[0].exterior).chain(p[0].holes.iter()) {
            let mut v = r.clone();
            v.sort();
            v.dedup();
            assert_eq!(v.len(), r.len(), "ring revisits a vertex: {r:?}");
        }
    }

    #[test]
    fn island_in_hole_keeps_its_own_polygon() {
        let (m, w, h) = raster(&["#####", "#...#", "#.#.#", "#...#", "#####"]);
        let p = trace(&m, w, h);
        assert_eq!(p.len(), 2);
        let big = p.iter().find(|q| signed_area2(&q.exterior) == 50).unwrap();
        let small = p.iter().find(|q| signed_area2(&q.exterior) == 2).unwrap();
        assert_eq!(big.holes.len(), 1);
        assert!(small.holes.is_empty());
    }
}
