//! Overlap matching of a run's sites against the register's, in a common
//! metric frame.
//!
//! Why a frame of its own: runs come on different grids and tiles (a UTM
//! zone each, or lon/lat), so outlines are compared as lon/lat polygons
//! projected to one sinusoidal (equal-area) projection centred on the run.
//! A site matches a register site when, grown by a tolerance (a pixel, so
//! runs a pixel apart still match), it covers at least `min_overlap` of the
//! smaller of the two: a site that grew still matches its earlier outline.
//! Candidates come from a grid index over the register's bounding boxes, so
//! matching costs about one intersection per true neighbour, not n x m.

use crate::error::{Error, Result};
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use gdal::vector::Geometry;
use std::collections::HashMap;

/// Lon/lat to metres in a sinusoidal projection centred on `lon0`.
pub struct Frame {
    to_m: CoordTransform,
}

impl Frame {
    pub fn new(lon0: f64) -> Result<Frame> {
        let mut ll = SpatialRef::from_epsg(4326).map_err(|e| Error::invalid(e))?;
        ll.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
        let mut m = SpatialRef::from_proj4(&format!(
            "+proj=sinu +lon_0={lon0} +x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs"
        ))
        .map_err(|e| Error::invalid(e))?;
        m.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
        let to_m = CoordTransform::new(&ll, &m).map_err(|e| Error::invalid(e))?;
        Ok(Frame { to_m })
    }

    /// The outline in metres, with its area and bounding box.
    pub fn shape(&self, lonlat: &Geometry) -> Result<Shape> {
        let geom = lonlat
            .transform(&self.to_m)
            .map_err(|e| Error::invalid(format!("projecting an outline: {e}")))?;
        let area = geom.area();
        let e = geom.envelope();
        Ok(Shape {
            geom,
            area,
            bbox: [e.MinX, e.MinY, e.MaxX, e.MaxY],
        })
    }
}

/// An outline in the frame.
pub struct Shape {
    pub geom: Geometry,
    pub area: f64,
    pub bbox: [f64; 4],
}

/// A uniform grid over bounding boxes: cell -> indices of the boxes touching it.
pub struct GridIndex {
    cell: f64,
    cells: HashMap<(i64, i64), Vec<usize>>,
}

impl GridIndex {
    pub fn new(boxes: &[[f64; 4]], cell: f64) -> GridIndex {
        let mut cells: HashMap<(i64, i64), Vec<usize>> = HashMap::new();
        for (i, b) in boxes.iter().enumerate() {
            let (x0, y0, x1, y1) = Self::range(cell, b);
            for x in x0..=x1 {
                for y in y0..=y1 {
                    cells.entry((x, y)).or_default().push(i);
                }
            }
        }
        GridIndex { cell, cells }
    }

    fn range(cell: f64, b: &[f64; 4]) -> (i64, i64, i64, i64) {
        let f = |v: f64| (v / cell).floor() as i64;
        (f(b[0]), f(b[1]), f(b[2]).max(f(b[0])), f(b[3]).max(f(b[1])))
    }

    /// Indices of the boxes that may intersect `b`, each once, ascending.
    pub fn query(&self, b: &[f64; 4]) -> Vec<usize> {
        let (x0, y0, x1, y1) = Self::range(self.cell, b);
        let mut out = Vec::new();
        for x in x0..=x1 {
            for y in y0..=y1 {
                if let Some(v) = self.cells.get(&(x, y)) {
                    out.extend_from_slice(v);
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

fn boxes_meet(a: &[f64; 4], b: &[f64; 4]) -> bool {
    a[0] <= b[2] && b[0] <= a[2] && a[1] <= b[3] && b[1] <= a[3]
}

/// How two outlines are matched.
#[derive(Debug, Clone, Copy)]
pub struct MatchOptions {
    /// Tolerance in metres the new outline is grown by (one 10 m pixel).
    pub tolerance_m: f64,
    /// Share of the smaller outline the grown one must cover.
    pub min_overlap: f64,
}

impl Default for MatchOptions {
    fn default() -> Self {
        MatchOptions {
            tolerance_m: 10.0,
            min_overlap: 0.5,
        }
    }
}

/// For each new shape, the register shapes it matches with their overlap
/// (intersection area over the smaller area), best first.
pub fn match_shapes(
    new: &[Shape],
    reg: &[Shape],
    opts: &MatchOptions,
) -> Result<Vec<Vec<(usize, f64)>>> {
    // Cells about the size of a large site: few cells per box, few boxes per cell.
    let index = GridIndex::new(&reg.iter().map(|s| s.bbox).collect::<Vec<_>>(), 250.0);
    let t = opts.tolerance_m;
    let mut out = Vec::with_capacity(new.len());
    for n in new {
        let b = [n.bbox[0] - t, n.bbox[1] - t, n.bbox[2] + t, n.bbox[3] + t];
        let cands: Vec<usize> = index
            .query(&b)
            .into_iter()
            .filter(|&i| boxes_meet(&b, &reg[i].bbox))
            .collect();
        let mut found = Vec::new();
        if !cands.is_empty() {
            let grown = if t > 0.0 {
                n.geom
                    .buffer(t, 2)
                    .map_err(|e| Error::invalid(format!("buffering an outline: {e}")))?
            } else {
                n.geom.clone()
            };
            for i in cands {
                let r = &reg[i];
                if !grown.intersects(&r.geom) {
                    continue;
                }
                let inter = grown.intersection(&r.geom).map(|g| g.area()).unwrap_or(0.0);
                let smaller = n.area.min(r.area).max(1e-9);
                let ratio = (inter / smaller).min(1.0);
                if ratio >= opts.min_overlap {
                    found.push((i, ratio));
                }
            }
            found.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        }
        out.push(found);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(lon: f64, lat: f64, d: f64) -> Geometry {
        Geometry::from_wkt(&format!(
            "POLYGON(({lon} {lat},{x} {lat},{x} {y},{lon} {y},{lon} {lat}))",
            x = lon + d,
            y = lat + d
        ))
        .unwrap()
    }

    #[test]
    fn index_finds_overlapping_boxes_only() {
        let idx = GridIndex::new(
            &[[0.0, 0.0, 10.0, 10.0], [1000.0, 1000.0, 1010.0, 1010.0]],
            250.0,
        );
        assert_eq!(idx.query(&[5.0, 5.0, 6.0, 6.0]), vec![0]);
        assert!(idx.query(&[500.0, 500.0, 600.0, 600.0]).is_empty());
    }

    #[test]
    fn a_pixel_shift_and_growth_match_a_neighbour_does_not() {
        let f = Frame::new(54.5).unwrap();
        // About 40 m squares at 24.3 N.
        let d = 0.0004;
        let reg = vec![
            f.shape(&square(54.5, 24.3, d)).unwrap(),
            f.shape(&square(54.51, 24.3, d)).unwrap(),
        ];
        let shifted = f.shape(&square(54.5 + 0.0001, 24.3, d)).unwrap();
        let grown = f.shape(&square(54.5, 24.3, 2.0 * d)).unwrap();
        // 2 pixels east of the first square's edge: no overlap.
        let beside = f.shape(&square(54.5 + d + 0.0002, 24.3, d)).unwrap();
        let m = match_shapes(&[shifted, grown, beside], &reg, &MatchOptions::default()).unwrap();
        assert_eq!(m[0].len(), 1);
        assert_eq!(m[0][0].0, 0);
        assert_eq!(m[1][0].0, 0);
        assert!(m[2].is_empty(), "{:?}", m[2]);
    }
}
