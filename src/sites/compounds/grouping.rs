//! Groups sites into candidate compounds: single linkage on the gap between
//! their hulls, then linear sites attached to the group they approach.
//!
//! Why single linkage: the parts of a base (buildings, aprons, a perimeter
//! berm) are each close to some other part, not all to one centre, and the
//! chain is what an analyst follows by eye. Why linear sites apart: a road
//! or a track is close to everything along it, so it would chain unrelated
//! groups into one; it joins the nearest group it comes within the distance
//! of, and never merges two groups.
//!
//! Candidate pairs come from a uniform grid of cells one linkage distance
//! wide (each site listed in every cell its bounds cover), so the work is
//! about linear in the number of sites; the bounds' gap is a cheap lower
//! bound checked before the hulls' gap.

use super::hull::{self, Pt};
use crate::union_find::UnionFind;
use std::collections::HashMap;

/// How a site takes part in grouping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Links groups (structures and other man-made change).
    Core,
    /// Joins the nearest group it approaches (roads, tracks, berms, runways).
    Linear,
    /// Left out (vegetation, water, haze).
    None,
}

/// A site's footprint in metres.
#[derive(Debug, Clone)]
pub struct Footprint {
    pub hull: Vec<Pt>,
    pub bounds: [f64; 4],
    pub role: Role,
}

impl Footprint {
    pub fn new(hull: Vec<Pt>, role: Role) -> Footprint {
        Footprint {
            bounds: hull::bounds(&hull),
            hull,
            role,
        }
    }
}

/// Cells of side `cell` covered by `b`.
fn cells(b: &[f64; 4], cell: f64) -> impl Iterator<Item = (i64, i64)> {
    let c = |v: f64| (v / cell).floor() as i64;
    let (x0, y0, x1, y1) = (c(b[0]), c(b[1]), c(b[2]), c(b[3]));
    (y0..=y1).flat_map(move |y| (x0..=x1).map(move |x| (x, y)))
}

/// Groups of footprint indices: the core footprints linked by gaps of at
/// most `distance` metres, each with the linear footprints that come
/// within `distance` of one of its cores (attached to the nearest such
/// group only). Groups of fewer than two footprints, or without a core,
/// are left out. Members ascend; groups are ordered by their first member.
pub fn group(fp: &[Footprint], distance: f64) -> Vec<Vec<usize>> {
    let d = distance.max(0.0);
    // Cells at least a metre wide: a zero distance still groups touching sites.
    let cell = d.max(1.0);
    let mut grid: HashMap<(i64, i64), Vec<usize>> = HashMap::new();
    for (i, f) in fp.iter().enumerate() {
        if f.role == Role::Core && !f.hull.is_empty() {
            for c in cells(&f.bounds, cell) {
                grid.entry(c).or_default().push(i);
            }
        }
    }
    let grown = |b: &[f64; 4]| [b[0] - d, b[1] - d, b[2] + d, b[3] + d];
    // Cores within `d` of footprint `i` (each once, ascending), with the gap.
    let near = |i: usize, seen: &mut Vec<usize>| -> Vec<(usize, f64)> {
        let f = &fp[i];
        seen.clear();
        for c in cells(&grown(&f.bounds), cell) {
            if let Some(v) = grid.get(&c) {
                seen.extend(v.iter().copied().filter(|&j| j != i));
            }
        }
        seen.sort_unstable();
        seen.dedup();
        seen.iter()
            .filter(|&&j| hull::bounds_gap(&f.bounds, &fp[j].bounds) <= d)
            .filter_map(|&j| {
                let g = hull::distance(&f.hull, &fp[j].hull);
                (g <= d).then_some((j, g))
            })
            .collect()
    };
    let has = |i: usize, role: Role| fp[i].role == role && !fp[i].hull.is_empty();
    let mut dsu = UnionFind::new(fp.len());
    let mut seen = Vec::new();
    for i in 0..fp.len() {
        if has(i, Role::Core) {
            for (j, _) in near(i, &mut seen) {
                if j > i {
                    dsu.union(i, j);
                }
            }
        }
    }
    let mut groups: Vec<Vec<usize>> = vec![Vec::new(); fp.len()];
    for i in 0..fp.len() {
        if has(i, Role::Core) {
            let r = dsu.find(i);
            groups[r].push(i);
        }
    }
    for i in 0..fp.len() {
        if has(i, Role::Linear) {
            // The nearest core; ties to the lower index.
            let best = near(i, &mut seen)
                .into_iter()
                .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
            if let Some((j, _)) = best {
                let r = dsu.find(j);
                groups[r].push(i);
            }
        }
    }
    let mut out: Vec<Vec<usize>> = groups
        .into_iter()
        .filter(|g| g.len() >= 2)
        .map(|mut g| {
            g.sort_unstable();
            g
        })
        .collect();
    out.sort_by_key(|g| g[0]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sq(x: f64, y: f64, s: f64, role: Role) -> Footprint {
        Footprint::new(vec![(x, y), (x + s, y), (x + s, y + s), (x, y + s)], role)
    }

    #[test]
    fn single_linkage_chains_near_sites_and_leaves_far_ones() {
        let fp = vec![
            sq(0.0, 0.0, 50.0, Role::Core),
            // 200 m east of the first: linked at 250 m.
            sq(250.0, 0.0, 50.0, Role::Core),
            // 240 m beyond the second: chained through it.
            sq(540.0, 0.0, 50.0, Role::Core),
            // 2 km away: alone, so not a compound.
            sq(2600.0, 0.0, 50.0, Role::Core),
            // Vegetation beside the first: never a member.
            sq(60.0, 0.0, 50.0, Role::None),
        ];
        assert_eq!(group(&fp, 250.0), vec![vec![0, 1, 2]]);
        // At 220 m the chain breaks at its 240 m link.
        assert_eq!(group(&fp, 220.0), vec![vec![0, 1]]);
        // Same groups whatever the order the sites come in.
        let rev: Vec<Footprint> = fp.iter().rev().cloned().collect();
        let g = group(&rev, 250.0);
        assert_eq!(g, vec![vec![2, 3, 4]]);
    }

    #[test]
    fn a_road_joins_the_nearest_group_and_does_not_merge_two() {
        let fp = vec![
            sq(0.0, 0.0, 50.0, Role::Core),
            sq(100.0, 0.0, 50.0, Role::Core),
            sq(1000.0, 0.0, 50.0, Role::Core),
            sq(1100.0, 0.0, 50.0, Role::Core),
            // A road from one group to the other: 30 m from the first,
            // 100 m from the second.
            Footprint::new(
                vec![(180.0, 20.0), (900.0, 20.0), (900.0, 30.0), (180.0, 30.0)],
                Role::Linear,
            ),
            // A track far from everything.
            Footprint::new(vec![(0.0, 5000.0), (800.0, 5000.0)], Role::Linear),
        ];
        assert_eq!(group(&fp, 250.0), vec![vec![0, 1, 4], vec![2, 3]]);
        // Linear sites alone never make a compound.
        let roads = vec![fp[4].clone(), fp[5].clone()];
        assert!(group(&roads, 5000.0).is_empty());
    }

    #[test]
    fn a_ring_groups_with_what_it_encloses() {
        // A hollow square's hull holds the building in its middle, however
        // far the building is from the ring's pixels.
        let ring = sq(0.0, 0.0, 400.0, Role::Core);
        let inside = sq(180.0, 180.0, 40.0, Role::Core);
        assert_eq!(group(&[ring, inside], 10.0), vec![vec![0, 1]]);
    }
}
