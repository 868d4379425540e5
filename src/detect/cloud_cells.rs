//! The cloud decision on the grid of cells the score pass counted
//! ([`super::clouds`]): objects with a core of nearly all candidate pixels,
//! grown over neighbouring cells, kept as clouds when their edge is soft;
//! shadows kept only when a cloud of the same date lies towards the sun at a
//! distance a cloud could cast them ([`Geometry`]).

use super::clouds::{
    at, CellCounts, Counts, AZIMUTH_TOLERANCE_DEG, CELL, CORE, FAINT, FRINGE, FRINGE_OVER_SCENE,
    GROW, MAX_CLOUD_HEIGHT_M, MIN_CORE_CELLS, VALID,
};
use super::sun::{day_of_year, sun_at_overpass};
use crate::align::{AlignedPair, Grid};

/// How shadows are looked for on the cell grid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geometry {
    /// Sun (elevation, azimuth) in degrees at the before and after dates;
    /// None when the date is unknown (then no shadow is masked).
    pub sun: [Option<(f64, f64)>; 2],
    /// Cell size in metres along x and y (the grid is north up).
    pub cell_m: (f64, f64),
}

impl Geometry {
    pub fn of(pair: &AlignedPair) -> Geometry {
        let g = &pair.grid;
        let lat = centre_latitude(g);
        let sun = |d: &Option<String>| {
            let doy = d.as_deref().and_then(day_of_year)?;
            Some(sun_at_overpass(lat?, doy))
        };
        let (mx, my) = g.metres_per_unit();
        let (px, py) = g.pixel_size();
        Geometry {
            sun: [sun(&pair.before.scene.date), sun(&pair.after.scene.date)],
            cell_m: ((px * mx).abs() * CELL as f64, (py * my).abs() * CELL as f64),
        }
    }
}

fn centre_latitude(g: &Grid) -> Option<f64> {
    let ct = g.to_lonlat().ok()?;
    let (x, y) = g.pixel_center(g.width as f64 / 2.0, g.height as f64 / 2.0);
    let (mut xs, mut ys, mut zs) = ([x], [y], [0.0]);
    ct.transform_coords(&mut xs, &mut ys, &mut zs).ok()?;
    ys[0].is_finite().then_some(ys[0])
}

/// What a cell is masked as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum CellMask {
    Clear = 0,
    Cloud = 1,
    Shadow = 2,
}

/// The decision on the cell grid.
#[derive(Debug, Clone, PartialEq)]
pub struct CloudCells {
    pub w: usize,
    pub h: usize,
    pub cells: Vec<CellMask>,
}

impl CloudCells {
    /// What the pixel at grid position (x, y) is masked as.
    #[inline]
    pub fn at(&self, x: usize, y: usize) -> CellMask {
        self.cells[(y / CELL) * self.w + x / CELL]
    }
    pub fn any(&self) -> bool {
        self.cells.iter().any(|c| *c != CellMask::Clear)
    }
}

/// 8-connected components of `m` (w x h): a label per cell (0 = not in `m`),
/// numbered in raster order of their first cell, and the count.
fn components(m: &[bool], w: usize, h: usize) -> (Vec<u32>, u32) {
    let mut lab = vec![0u32; m.len()];
    let mut n = 0;
    let mut stack = Vec::new();
    for start in 0..m.len() {
        if !m[start] || lab[start] != 0 {
            continue;
        }
        n += 1;
        lab[start] = n;
        stack.push(start);
        while let Some(i) = stack.pop() {
            let (x, y) = ((i % w) as isize, (i / w) as isize);
            for dy in -1..=1 {
                for dx in -1..=1 {
                    let (xx, yy) = (x + dx, y + dy);
                    if xx < 0 || yy < 0 || xx >= w as isize || yy >= h as isize {
                        continue;
                    }
                    let j = yy as usize * w + xx as usize;
                    if m[j] && lab[j] == 0 {
                        lab[j] = n;
                        stack.push(j);
                    }
                }
            }
        }
    }
    (lab, n)
}

/// Objects of one candidate kind: components of cells where most compared
/// pixels are candidates that hold a core of [`MIN_CORE_CELLS`] connected
/// cells where nearly all are.
fn objects(counts: &CellCounts, kind: usize) -> Vec<bool> {
    let share = |c: &Counts, (a, b): (u32, u32)| {
        let v = c[VALID] as u32;
        // Cells mostly outside the grid or masked say nothing.
        2 * v >= (CELL * CELL) as u32 && b * c[at(kind)] as u32 >= a * v
    };
    let (w, h) = (counts.w, counts.h);
    let core: Vec<bool> = counts.counts.iter().map(|c| share(c, CORE)).collect();
    let grow: Vec<bool> = counts.counts.iter().map(|c| share(c, GROW)).collect();
    let (lab, n) = components(&core, w, h);
    let mut size = vec![0usize; n as usize + 1];
    for &l in &lab {
        size[l as usize] += 1;
    }
    let (glab, gn) = components(&grow, w, h);
    let mut keep = vec![false; gn as usize + 1];
    for (i, &l) in lab.iter().enumerate() {
        if l != 0 && size[l as usize] >= MIN_CORE_CELLS {
            // CORE implies GROW, so a core cell is in a grown component.
            keep[glab[i] as usize] = true;
        }
    }
    glab.iter().map(|&l| l != 0 && keep[l as usize]).collect()
}

/// The objects of `obj` with a soft edge: a cloud thins out over hundreds
/// of metres, so the ring of cells around it holds many faint-fringe
/// pixels ([`FRINGE`] of its compared pixels, and [`FRINGE_OVER_SCENE`]
/// times the scene's share); a new roof or paved lot ends at its outline
/// and the ground around it is unchanged.
fn soft_edged(obj: &[bool], counts: &CellCounts, faint: usize) -> Vec<bool> {
    let (w, h) = (counts.w, counts.h);
    let (scene_valid, scene_faint) = counts.counts.iter().fold((0u64, 0u64), |(v, f), c| {
        (v + c[VALID] as u64, f + c[at(faint)] as u64)
    });
    let (lab, n) = components(obj, w, h);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); n as usize + 1];
    for (i, &l) in lab.iter().enumerate() {
        if l != 0 {
            members[l as usize].push(i);
        }
    }
    // Which component last counted a ring cell, so each counts once.
    let mut seen = vec![0u32; w * h];
    let mut out = vec![false; w * h];
    for (l, cells) in members.iter().enumerate().skip(1) {
        let (mut valid, mut fringe) = (0u64, 0u64);
        for &i in cells {
            let (x, y) = (i % w, i / w);
            for yy in y.saturating_sub(1)..(y + 2).min(h) {
                for xx in x.saturating_sub(1)..(x + 2).min(w) {
                    let j = yy * w + xx;
                    if !obj[j] && seen[j] != l as u32 {
                        seen[j] = l as u32;
                        valid += counts.counts[j][VALID] as u64;
                        fringe += counts.counts[j][at(faint)] as u64;
                    }
                }
            }
        }
        let (a, b) = FRINGE;
        if valid > 0
            && b * fringe >= a * valid
            && fringe * scene_valid >= FRINGE_OVER_SCENE * scene_faint * valid
        {
            for &i in cells {
                out[i] = true;
            }
        }
    }
    out
}

/// The shadow objects of `shadow` that have a cloud of `cloud` towards the
/// sun, at a distance a cloud up to [`MAX_CLOUD_HEIGHT_M`] high casts it:
/// shifted along the sun's azimuth (within the tolerance), at least half of
/// the object's cells that stay in the scene (and at least a quarter of it)
/// land on cloud.
fn matched_shadows(
    shadow: &[bool],
    cloud: &[bool],
    w: usize,
    h: usize,
    geo: &Geometry,
    sun: (f64, f64),
) -> Vec<bool> {
    let (el, az) = sun;
    let mut out = vec![false; shadow.len()];
    if el <= 1.0 || !cloud.iter().any(|&c| c) {
        return out;
    }
    let step_m = geo.cell_m.0.min(geo.cell_m.1);
    let reach = MAX_CLOUD_HEIGHT_M / el.to_radians().tan();
    let steps = (reach / step_m).ceil() as usize;
    let (lab, n) = components(shadow, w, h);
    let mut members: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n as usize + 1];
    for (i, &l) in lab.iter().enumerate() {
        if l != 0 {
            members[l as usize].push((i % w, i / w));
        }
    }
    let tol = AZIMUTH_TOLERANCE_DEG as i32;
    for cells in members.iter().skip(1) {
        let need = 4.max(cells.len() / 4);
        let found = (-tol..=tol).step_by(5).any(|da| {
            let a = (az + da as f64).to_radians();
            // Towards the sun: east by sin(az), north (up, fewer rows) by cos(az).
            let (ux, uy) = (a.sin() / geo.cell_m.0, -a.cos() / geo.cell_m.1);
            (1..=steps).any(|s| {
                let d = s as f64 * step_m;
                let (sx, sy) = ((ux * d).round() as isize, (uy * d).round() as isize);
                let (mut inside, mut hit) = (0usize, 0usize);
                for &(x, y) in cells {
                    let (xx, yy) = (x as isize + sx, y as isize + sy);
                    if xx >= 0 && yy >= 0 && (xx as usize) < w && (yy as usize) < h {
                        inside += 1;
                        hit += cloud[yy as usize * w + xx as usize] as usize;
                    }
                }
                inside >= need && 2 * hit >= inside
            })
        });
        if found {
            for &(x, y) in cells {
                out[y * w + x] = true;
            }
        }
    }
    out
}

/// `m` grown by one cell (8-neighbourhood): a cloud's soft edge and the
/// cells it only partly covers.
fn dilate(m: &[bool], w: usize, h: usize) -> Vec<bool> {
    let mut out = m.to_vec();
    for y in 0..h {
        for x in 0..w {
            if !m[y * w + x] {
                continue;
            }
            for yy in y.saturating_sub(1)..(y + 2).min(h) {
                for xx in x.saturating_sub(1)..(x + 2).min(w) {
                    out[yy * w + xx] = true;
                }
            }
        }
    }
    out
}

/// Decides the cloud and shadow cells from the whole grid's counts.
pub fn decide(counts: &CellCounts, geo: &Geometry) -> CloudCells {
    let (w, h) = (counts.w, counts.h);
    let cloud = [0, 1].map(|d| soft_edged(&objects(counts, d), counts, FAINT + d));
    let mut shadow = vec![false; w * h];
    for (d, cloud) in cloud.iter().enumerate() {
        if let Some(sun) = geo.sun[d] {
            let s = matched_shadows(&objects(counts, 2 + d), cloud, w, h, geo, sun);
            for (a, b) in shadow.iter_mut().zip(s) {
                *a |= b;
            }
        }
    }
    let any_cloud: Vec<bool> = cloud[0].iter().zip(&cloud[1]).map(|(a, b)| a | b).collect();
    let cloud = dilate(&any_cloud, w, h);
    let shadow = dilate(&shadow, w, h);
    CloudCells {
        w,
        h,
        cells: cloud
            .iter()
            .zip(&shadow)
            .map(|(&c, &s)| match (c, s) {
                (true, _) => CellMask::Cloud,
                (false, true) => CellMask::Shadow,
                _ => CellMask::Clear,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A grid of cells, every cell fully compared, with the candidates
    /// (kind index, pixels) that `f` gives each cell.
    fn grid(w: usize, h: usize, f: impl Fn(usize, usize) -> Vec<(usize, u8)>) -> CellCounts {
        let mut c = CellCounts::for_pixels(0, 0, w * CELL, h * CELL);
        for y in 0..h {
            for x in 0..w {
                let cell = &mut c.counts[y * w + x];
                cell[VALID] = 64;
                for (kind, n) in f(x, y) {
                    cell[at(kind)] = n;
                }
            }
        }
        c
    }

    fn geo(el: f64, az: f64) -> Geometry {
        Geometry {
            sun: [Some((el, az)), Some((el, az))],
            cell_m: (80.0, 80.0),
        }
    }

    const CLOUD_A: usize = 1;
    const SHADOW_A: usize = 3;
    const FAINT_A: usize = FAINT + 1;

    /// An after-date cloud over cells x0..x1, y0..y1 (`n` candidates a
    /// cell), with a fringe of faint pixels (`fringe` a cell) around it.
    fn cloud(x: usize, y: usize, r: [usize; 4], n: u8, fringe: u8) -> Vec<(usize, u8)> {
        let [x0, x1, y0, y1] = r;
        if (x0..x1).contains(&x) && (y0..y1).contains(&y) {
            vec![(CLOUD_A, n)]
        } else if (x0 - 2..x1 + 2).contains(&x) && (y0 - 2..y1 + 2).contains(&y) {
            vec![(FAINT_A, fringe)]
        } else {
            vec![(FAINT_A, 2)]
        }
    }

    #[test]
    fn a_large_cloud_and_its_shadow_are_masked_a_parcel_is_not() {
        // Cloud in the after date: 4 x 4 cells at (20..24, 30..34); its
        // shadow 10 cells north (the sun is in the south, 45 degrees up:
        // 800 m for a cloud 800 m high); a parcel of 3 cells elsewhere.
        let c = grid(40, 40, |x, y| {
            if (20..24).contains(&x) && (20..24).contains(&y) {
                vec![(SHADOW_A, 60)]
            } else if (2..5).contains(&x) && y == 2 {
                vec![(CLOUD_A, 64)]
            } else {
                cloud(x, y, [20, 24, 30, 34], 64, 20)
            }
        });
        let d = decide(&c, &geo(45.0, 180.0));
        let at = |x: usize, y: usize| d.cells[y * d.w + x];
        assert_eq!(at(21, 31), CellMask::Cloud);
        // Grown by a cell for the soft edge.
        assert_eq!(at(19, 29), CellMask::Cloud);
        assert_eq!(at(18, 29), CellMask::Clear);
        assert_eq!(at(21, 21), CellMask::Shadow);
        assert_eq!(at(3, 2), CellMask::Clear);
        // The same dark patch with the sun in the north has no cloud
        // towards the sun: darkening alone (paving sand) is kept.
        let d = decide(&c, &geo(45.0, 0.0));
        assert_eq!(d.cells[21 * d.w + 21], CellMask::Clear);
        assert_eq!(d.cells[31 * d.w + 21], CellMask::Cloud);
        // Unknown date: no shadow.
        let g = Geometry {
            sun: [None, None],
            ..geo(45.0, 180.0)
        };
        assert_eq!(decide(&c, &g).cells[21 * d.w + 21], CellMask::Clear);
    }

    #[test]
    fn a_sharp_edged_white_patch_is_not_a_cloud() {
        // A large new white roof: whiter and brighter all over, but the
        // ground around it is as unchanged as the rest of the scene.
        let c = grid(30, 30, |x, y| cloud(x, y, [10, 16, 10, 16], 64, 2));
        assert!(!decide(&c, &geo(45.0, 180.0)).any());
        // The scene's share of faint pixels sets the bar: a scene hazy all
        // over does not make every bright patch soft-edged.
        let c = grid(30, 30, |x, y| {
            let mut v = cloud(x, y, [10, 16, 10, 16], 64, 20);
            v.retain(|k| k.0 != FAINT_A);
            v.push((FAINT_A, 20));
            v
        });
        assert!(!decide(&c, &geo(45.0, 180.0)).any());
        let c = grid(30, 30, |x, y| cloud(x, y, [10, 16, 10, 16], 64, 20));
        assert!(decide(&c, &geo(45.0, 180.0)).any());
    }

    #[test]
    fn cores_need_nearly_every_pixel() {
        // 85 % of every pixel in a big patch: most, not nearly all.
        let c = grid(20, 20, |x, y| cloud(x, y, [5, 15, 5, 15], 54, 20));
        assert!(!decide(&c, &geo(45.0, 180.0)).any());
        let c = grid(20, 20, |x, y| cloud(x, y, [5, 15, 5, 15], 58, 20));
        assert!(decide(&c, &geo(45.0, 180.0)).any());
    }
}
