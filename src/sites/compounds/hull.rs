//! Convex hulls in a metric plane, and the few measures the compounds need
//! of them: area, point containment and the distance between two hulls.
//!
//! Why hulls: a compound's outline is the convex hull of its members'
//! outlines (what an analyst would draw round a base), and the gap between
//! two sites is measured between their hulls. A hull has a few dozen
//! vertices where a traced outline can have thousands, and for the compact
//! and straight outlines that matter here the hull gap is the outline gap;
//! for a hollow ring it is zero to anything inside it, which is what
//! grouping wants (the ring and what it encloses are one compound).

/// A point in metres (x right, y in either direction: every measure here
/// is independent of the handedness).
pub type Pt = (f64, f64);

/// The convex hull of `pts` (Andrew's monotone chain), counter-clockwise
/// in a y-up frame; fewer than 3 points when they are fewer or collinear.
pub fn hull(pts: Vec<Pt>) -> Vec<Pt> {
    crate::sites::shape::convex_hull(pts)
}

/// Area of a simple polygon (shoelace), whatever its orientation.
pub fn area(poly: &[Pt]) -> f64 {
    let n = poly.len();
    if n < 3 {
        return 0.0;
    }
    let s: f64 = (0..n)
        .map(|i| {
            let (a, b) = (poly[i], poly[(i + 1) % n]);
            a.0 * b.1 - b.0 * a.1
        })
        .sum();
    s.abs() / 2.0
}

/// Mean of the vertices (a hull's centre; the sites' centroids come from
/// their pixels).
pub fn centre(poly: &[Pt]) -> Pt {
    let n = poly.len().max(1) as f64;
    let (x, y) = poly.iter().fold((0.0, 0.0), |(x, y), p| (x + p.0, y + p.1));
    (x / n, y / n)
}

fn cross(o: Pt, a: Pt, b: Pt) -> f64 {
    (a.0 - o.0) * (b.1 - o.1) - (a.1 - o.1) * (b.0 - o.0)
}

/// Whether `p` lies inside or on the convex polygon `poly` (either
/// orientation). Fewer than 3 vertices: on one of its points or segment.
pub fn contains(poly: &[Pt], p: Pt) -> bool {
    let n = poly.len();
    if n < 3 {
        return match n {
            0 => false,
            1 => dist2(poly[0], p) < 1e-18,
            _ => seg_dist2(p, poly[0], poly[1]) < 1e-18,
        };
    }
    let (mut pos, mut neg) = (false, false);
    for i in 0..n {
        let c = cross(poly[i], poly[(i + 1) % n], p);
        pos |= c > 1e-12;
        neg |= c < -1e-12;
        if pos && neg {
            return false;
        }
    }
    true
}

fn dist2(a: Pt, b: Pt) -> f64 {
    (a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)
}

/// Squared distance from `p` to the segment `a`-`b`.
fn seg_dist2(p: Pt, a: Pt, b: Pt) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let l = dx * dx + dy * dy;
    if l == 0.0 {
        return dist2(p, a);
    }
    let t = (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / l).clamp(0.0, 1.0);
    dist2(p, (a.0 + t * dx, a.1 + t * dy))
}

fn segments_cross(a: Pt, b: Pt, c: Pt, d: Pt) -> bool {
    let d1 = cross(c, d, a);
    let d2 = cross(c, d, b);
    let d3 = cross(a, b, c);
    let d4 = cross(a, b, d);
    ((d1 > 0.0 && d2 < 0.0) || (d1 < 0.0 && d2 > 0.0))
        && ((d3 > 0.0 && d4 < 0.0) || (d3 < 0.0 && d4 > 0.0))
}

/// The edges of a polygon (a lone point is a zero-length edge).
fn edges(p: &[Pt]) -> impl Iterator<Item = (Pt, Pt)> + '_ {
    let n = p.len();
    (0..n).map(move |i| (p[i], p[if n > 1 { (i + 1) % n } else { i }]))
}

/// Distance between two convex polygons (0 when they overlap or one holds
/// the other).
pub fn distance(a: &[Pt], b: &[Pt]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return f64::INFINITY;
    }
    if contains(a, b[0]) || contains(b, a[0]) {
        return 0.0;
    }
    let mut best = f64::INFINITY;
    for (p, q) in edges(a) {
        for (r, s) in edges(b) {
            if segments_cross(p, q, r, s) {
                return 0.0;
            }
            best = best
                .min(seg_dist2(p, r, s))
                .min(seg_dist2(q, r, s))
                .min(seg_dist2(r, p, q))
                .min(seg_dist2(s, p, q));
        }
    }
    best.sqrt()
}

/// Axis-aligned bounds: x0, y0, x1, y1.
pub fn bounds(poly: &[Pt]) -> [f64; 4] {
    poly.iter().fold(
        [
            f64::INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
        ],
        |b, p| [b[0].min(p.0), b[1].min(p.1), b[2].max(p.0), b[3].max(p.1)],
    )
}

/// Gap between two axis-aligned bounds (0 when they overlap): a lower
/// bound of the hulls' [`distance`].
pub fn bounds_gap(a: &[f64; 4], b: &[f64; 4]) -> f64 {
    let dx = (b[0] - a[2]).max(a[0] - b[2]).max(0.0);
    let dy = (b[1] - a[3]).max(a[1] - b[3]).max(0.0);
    dx.hypot(dy)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(x: f64, y: f64, s: f64) -> Vec<Pt> {
        vec![(x, y), (x + s, y), (x + s, y + s), (x, y + s)]
    }

    #[test]
    fn hull_of_an_l_shape_and_its_area() {
        // An L of three unit squares: the hull cuts the inner corner.
        let pts = vec![
            (0.0, 0.0),
            (2.0, 0.0),
            (2.0, 1.0),
            (1.0, 1.0),
            (1.0, 2.0),
            (0.0, 2.0),
            (0.5, 0.5),
        ];
        let h = hull(pts);
        assert_eq!(h.len(), 5, "{h:?}");
        assert!((area(&h) - 3.5).abs() < 1e-12);
        assert!(contains(&h, (1.4, 1.4)), "inner corner is inside the hull");
        assert!(!contains(&h, (1.8, 1.8)));
    }

    #[test]
    fn distances_between_hulls() {
        let a = square(0.0, 0.0, 10.0);
        assert_eq!(distance(&a, &square(13.0, 0.0, 5.0)), 3.0);
        // Diagonal gap: corner to corner.
        let d = distance(&a, &square(13.0, 14.0, 5.0));
        assert!((d - 5.0).abs() < 1e-12, "{d}");
        // Overlap, containment, crossing without a vertex inside.
        assert_eq!(distance(&a, &square(5.0, 5.0, 10.0)), 0.0);
        assert_eq!(distance(&a, &square(2.0, 2.0, 1.0)), 0.0);
        let cross = vec![(-5.0, 4.0), (15.0, 4.0), (15.0, 6.0), (-5.0, 6.0)];
        assert_eq!(distance(&a, &cross), 0.0);
        // The bounds' gap never exceeds the hulls'.
        let tri = vec![(20.0, 0.0), (30.0, 0.0), (30.0, 10.0)];
        assert!(bounds_gap(&bounds(&a), &bounds(&tri)) <= distance(&a, &tri));
        assert_eq!(bounds_gap(&bounds(&a), &bounds(&tri)), 10.0);
        // A point and a segment are hulls too.
        assert_eq!(distance(&[(0.0, 20.0)], &a), 10.0);
        assert_eq!(distance(&[(-3.0, 20.0), (13.0, 20.0)], &a), 10.0);
    }
}
