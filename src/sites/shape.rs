//! Shape measures of a site from its traced outline, in metres.
//!
//! Why: the kind of a site (a building, a runway, a round irrigation pivot, a
//! ragged patch of drifting sand) shows in its shape. Measures:
//!
//! - **perimeter**: length of the outline through the midpoints of its pixel
//!   edges (every pixel corner cut by a diagonal). The raw pixel-edge length
//!   overstates slanted and round outlines by up to 4/pi, which would make a
//!   digital disc look *less* compact than a square; the midpoint outline is
//!   exact for straight edges at 0 and 45 degrees and within a few percent
//!   otherwise.
//! - **compactness** 4 pi A / P^2: 1 for a disc, 0.785 for a square, small for
//!   thin or ragged outlines (capped at 1).
//! - **minimum-area rectangle** of the convex hull (rotating calipers: one
//!   side of the optimal rectangle lies on a hull edge):
//!   **rectangularity** A / rectangle area (1 for a rectangle, pi/4 for a
//!   disc), **elongation** long side / short side, and **orientation**, the
//!   long side's azimuth in degrees clockwise from north, in [0, 180).
//! - **mean width** 2A/P: the width of a long thin strip.
//!
//! Coordinates are pixel corners scaled to metres with one scale per axis
//! (for geographic grids, metres per degree at the site's latitude: a site is
//! small enough for the scale to be constant over it).

use super::outline::Polygon;
use serde::Serialize;

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Shape {
    pub perimeter_m: f64,
    pub compactness: f64,
    pub rectangularity: f64,
    pub elongation: f64,
    pub orientation_deg: f64,
    pub mean_width_m: f64,
    pub min_rect_length_m: f64,
    pub min_rect_width_m: f64,
}

/// Perimeter in metres of the midpoint outline of the polygons; `sx`, `sy`
/// are metres per pixel-coordinate unit along x and y.
pub fn perimeter(polys: &[Polygon], sx: f64, sy: f64) -> f64 {
    let cut = 0.5 * sx + 0.5 * sy - (0.5 * sx).hypot(0.5 * sy);
    let mut p = 0.0;
    for poly in polys {
        for r in std::iter::once(&poly.exterior).chain(poly.holes.iter()) {
            let n = r.len();
            for i in 0..n {
                let (a, b) = (r[i], r[(i + 1) % n]);
                p += ((b.0 - a.0) as f64 * sx).abs() + ((b.1 - a.1) as f64 * sy).abs();
            }
            // Every vertex left is a corner.
            p -= n as f64 * cut;
        }
    }
    p
}

fn cross(o: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    (a.0 - o.0) * (b.1 - o.1) - (a.1 - o.1) * (b.0 - o.0)
}

/// Convex hull (Andrew's monotone chain), counter-clockwise in a y-up frame.
pub fn convex_hull(mut pts: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    pts.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    pts.dedup();
    if pts.len() < 3 {
        return pts;
    }
    let mut lower: Vec<(f64, f64)> = Vec::new();
    for &p in &pts {
        while lower.len() >= 2 && cross(lower[lower.len() - 2], lower[lower.len() - 1], p) <= 0.0 {
            lower.pop();
        }
        lower.push(p);
    }
    let mut upper: Vec<(f64, f64)> = Vec::new();
    for &p in pts.iter().rev() {
        while upper.len() >= 2 && cross(upper[upper.len() - 2], upper[upper.len() - 1], p) <= 0.0 {
            upper.pop();
        }
        upper.push(p);
    }
    lower.pop();
    upper.pop();
    lower.extend(upper);
    lower
}

/// Minimum-area enclosing rectangle of a convex hull: (area, long side,
/// short side, unit vector along the long side).
pub fn min_area_rect(hull: &[(f64, f64)]) -> (f64, f64, f64, (f64, f64)) {
    let n = hull.len();
    if n < 3 {
        return (0.0, 0.0, 0.0, (1.0, 0.0));
    }
    let mut best = (f64::INFINITY, 0.0, 0.0, (1.0, 0.0));
    for i in 0..n {
        let (a, b) = (hull[i], hull[(i + 1) % n]);
        let len = (b.0 - a.0).hypot(b.1 - a.1);
        if len == 0.0 {
            continue;
        }
        let u = ((b.0 - a.0) / len, (b.1 - a.1) / len);
        let (mut s0, mut s1, mut t0, mut t1) = (
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
        );
        for p in hull {
            let s = p.0 * u.0 + p.1 * u.1;
            let t = -p.0 * u.1 + p.1 * u.0;
            s0 = s0.min(s);
            s1 = s1.max(s);
            t0 = t0.min(t);
            t1 = t1.max(t);
        }
        let (ls, lt) = (s1 - s0, t1 - t0);
        let area = ls * lt;
        if area < best.0 {
            best = if ls >= lt {
                (area, ls, lt, u)
            } else {
                (area, lt, ls, (-u.1, u.0))
            };
        }
    }
    best
}

/// All shape measures of a site of ground area `area_m2` whose outline
/// (pixel coordinates, y down) is `polys`.
pub fn measure(polys: &[Polygon], area_m2: f64, sx: f64, sy: f64) -> Shape {
    let perimeter_m = perimeter(polys, sx, sy);
    // Metres, y up (north), so angles read as on a map.
    let pts: Vec<(f64, f64)> = polys
        .iter()
        .flat_map(|p| p.exterior.iter())
        .map(|&(x, y)| (x as f64 * sx, -(y as f64) * sy))
        .collect();
    let hull = convex_hull(pts);
    let (rect_area, long, short, u) = min_area_rect(&hull);
    let compactness = if perimeter_m > 0.0 {
        (4.0 * std::f64::consts::PI * area_m2 / (perimeter_m * perimeter_m)).min(1.0)
    } else {
        0.0
    };
    let rectangularity = if rect_area > 0.0 {
        (area_m2 / rect_area).min(1.0)
    } else {
        0.0
    };
    let elongation = if short > 0.0 { long / short } else { 1.0 };
    // Azimuth of the long side: clockwise from north (x east, y north).
    let mut orientation_deg = u.0.atan2(u.1).to_degrees().rem_euclid(180.0);
    if orientation_deg >= 179.95 {
        orientation_deg = 0.0;
    }
    Shape {
        perimeter_m,
        compactness,
        rectangularity,
        elongation,
        orientation_deg,
        mean_width_m: if perimeter_m > 0.0 {
            2.0 * area_m2 / perimeter_m
        } else {
            0.0
        },
        min_rect_length_m: long,
        min_rect_width_m: short,
    }
}

#[cfg(test)]
mod tests {
    use super::super::outline::trace;
    use super::*;

    fn shape_of(f: impl Fn(i64, i64) -> bool, w: usize, h: usize) -> Shape {
        let m: Vec<bool> = (0..h as i64)
            .flat_map(|y| (0..w as i64).map(move |x| (x, y)))
            .map(|(x, y)| f(x, y))
            .collect();
        let n = m.iter().filter(|&&b| b).count();
        let polys = trace(&m, w, h);
        measure(&polys, n as f64 * 100.0, 10.0, 10.0)
    }

    #[test]
    fn disc_is_compact_but_not_rectangular() {
        let s = shape_of(
            |x, y| ((x - 30) as f64 + 0.5).hypot((y - 30) as f64 + 0.5) <= 25.0,
            61,
            61,
        );
        assert!(s.compactness > 0.9, "{s:?}");
        assert!(
            (s.rectangularity - std::f64::consts::FRAC_PI_4).abs() < 0.04,
            "{s:?}"
        );
        assert!(s.elongation < 1.1, "{s:?}");
    }

    #[test]
    fn rectangle_measures() {
        // 20 x 6 pixels = 200 m x 60 m, long side east-west.
        let s = shape_of(|x, y| (2..22).contains(&x) && (3..9).contains(&y), 24, 12);
        assert!((s.rectangularity - 1.0).abs() < 1e-9, "{s:?}");
        assert!((s.elongation - 200.0 / 60.0).abs() < 1e-9, "{s:?}");
        assert!((s.orientation_deg - 90.0).abs() < 1e-6, "{s:?}");
        // Perimeter: 520 m of edges, 4 corners each cut by 10 - 7.07 m.
        assert!(
            (s.perimeter_m - (520.0 - 4.0 * (10.0 - 50f64.sqrt()))).abs() < 1e-9,
            "{s:?}"
        );
        let sq = shape_of(|x, y| (0..10).contains(&x) && (0..10).contains(&y), 10, 10);
        assert!((sq.compactness - 0.81).abs() < 0.03, "square: {sq:?}");
    }

    #[test]
    fn diagonal_strip_is_elongated_and_oriented() {
        // A 45-degree strip running from the top-left (north-west) down to the
        // bottom-right: azimuth 135 degrees.
        let s = shape_of(|x, y| (x - y).abs() <= 2 && (5..75).contains(&x), 80, 80);
        assert!(s.elongation > 8.0, "{s:?}");
        assert!((s.orientation_deg - 135.0).abs() < 2.0, "{s:?}");
        assert!(s.compactness < 0.25, "{s:?}");
    }

    #[test]
    fn staircase_perimeter_is_the_diagonal_length() {
        // The midpoint outline of a 45-degree staircase is straight: both long
        // sides of a two-pixel-wide diagonal band of n rows are n sqrt 2 long
        // (the raw pixel edges would give 2 n each).
        let n = 40;
        let m: Vec<bool> = (0..n * n)
            .map(|i| i % n == i / n || i % n == i / n + 1)
            .collect();
        let polys = trace(&m, n, n);
        let p = perimeter(&polys, 1.0, 1.0);
        assert!((p - 2.0 * n as f64 * 2f64.sqrt()).abs() < 4.0, "{p}");
    }
}
