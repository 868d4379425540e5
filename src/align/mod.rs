//! One grid for both dates. The output grid is the before scene's 10 m grid
//! (or `--resolution`), cut to where both scenes (and the AOI) overlap.
//! Bands already on that grid are read directly; bands on the same grid at
//! a whole multiple of its pixel size (Sentinel-2's 20 and 60 m bands) are
//! upsampled block by block in [`upsample`]; everything else (an after scene
//! from another MGRS tile or CRS, `--resolution`) is read through a GDAL
//! warped VRT. Nothing is ever resampled whole into memory.

pub mod coregister;
pub mod grid;
pub mod read_ahead;
pub mod reader;
pub mod transcode;
pub mod upsample;
mod warp;

pub use grid::{Grid, Window};
pub use reader::SceneReader;

use crate::error::{gdal_msg, Error, Result};
use crate::read::{Band, BandFile, Scene};
use gdal::spatial_ref::AxisMappingStrategy;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where an aligned band's pixels come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// The file is on the output grid already, shifted by whole pixels.
    Direct {
        path: String,
        index: usize,
        x_off: usize,
        y_off: usize,
    },
    /// The file is on the output grid's lattice at `factor` times its
    /// pixel size: read natively and interpolated (see [`upsample`]). Also
    /// a band shifted by part of a pixel (co-registration; `factor` 1).
    Upsampled {
        path: String,
        index: usize,
        /// Source pixel size over grid pixel size (2 for 20 m onto 10 m).
        factor: usize,
        /// Offset of the grid's origin from the source's, in grid pixels
        /// (whole unless the band is shifted by [`coregister`]).
        x_off: f64,
        y_off: f64,
        /// Source size in its own pixels.
        src_w: usize,
        src_h: usize,
        /// Nearest neighbour (class codes) instead of bilinear.
        nearest: bool,
    },
    /// A warped VRT on exactly the output grid.
    Warped { vrt: String },
}

impl Source {
    /// How the band reaches the grid, for run.json.
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Direct { .. } => "direct",
            Source::Upsampled { factor: 1, .. } => "shifted",
            Source::Upsampled { .. } => "upsampled",
            Source::Warped { .. } => "warped",
        }
    }
}

/// One band on the output grid.
#[derive(Debug, Clone)]
pub struct AlignedBand {
    pub file: BandFile,
    pub source: Source,
    /// Value that marks no data in the source (Sentinel-2: 0).
    pub nodata: f64,
    /// Value that marks saturation (UInt16 products: 65535).
    pub saturated: Option<f64>,
}

#[derive(Debug)]
pub struct AlignedScene {
    pub scene: Scene,
    pub bands: BTreeMap<Band, AlignedBand>,
    pub scl: Option<AlignedBand>,
}

/// Both scenes on one grid, ready for block reads.
#[derive(Debug)]
pub struct AlignedPair {
    pub grid: Grid,
    pub before: AlignedScene,
    pub after: AlignedScene,
    /// 1 inside the area of interest, 0 outside (a byte raster on the grid).
    pub aoi: Option<AlignedBand>,
    /// Holds the warped VRTs; removed when the pair is dropped.
    _tmp: tempfile::TempDir,
}

/// An area of interest: a vector file read as it is (any CRS), or an area
/// resolved from a place, a region or a point (lon/lat polygons in memory).
#[derive(Debug, Clone, PartialEq)]
pub enum Aoi {
    File(PathBuf),
    Area(crate::scenes::area::Area),
}

impl Aoi {
    /// What the user typed: an existing file stays a file (read in its own
    /// CRS); anything else resolves as in [`crate::scenes::area::Area::resolve`]
    /// (`LAT,LON`, a preset place with a box of half-side `buffer_km`, a region).
    pub fn resolve(spec: &str, buffer_km: f64) -> Result<Aoi> {
        let p = Path::new(spec);
        if p.is_file() {
            return Ok(Aoi::File(p.to_path_buf()));
        }
        Ok(Aoi::Area(crate::scenes::area::Area::resolve(
            spec, buffer_km,
        )?))
    }

    /// The file, or a description of the area (for messages and run.json).
    pub fn label(&self) -> PathBuf {
        match self {
            Aoi::File(p) => p.clone(),
            Aoi::Area(a) => PathBuf::from(a.describe()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct AlignOptions {
    /// Output pixel size in metres (default: the before scene's 10 m bands).
    /// On a geographic grid it becomes degrees at the before scene's centre
    /// latitude (see [`grid_at_resolution`]).
    pub resolution: Option<f64>,
    /// Output pixel size in grid CRS units (x, y), overriding `resolution`:
    /// how a run's exact grid is rebuilt (metres to degrees depends on the
    /// latitude, so metres do not round-trip).
    pub pixel_size: Option<(f64, f64)>,
    /// Polygon(s) to clip to.
    pub aoi: Option<Aoi>,
    /// Estimate the after scene's misregistration and shift it onto the
    /// before scene (see [`coregister`]; done after [`align`], by the
    /// caller, once the pixels can be read).
    pub coregister: bool,
}

impl Default for AlignOptions {
    fn default() -> Self {
        AlignOptions {
            resolution: None,
            pixel_size: None,
            aoi: None,
            coregister: true,
        }
    }
}

/// The largest output grid, in pixels: about 8 full Sentinel-2 tiles at
/// 10 m (10980 x 10980 each). The score, mask and per-pixel statistics grow
/// with the grid, so a finer `--resolution` or a larger scene is refused.
pub const MAX_GRID_PIXELS: usize = 1 << 30;

/// The largest band file, in pixels (2^31: 17 full Sentinel-2 tiles at
/// 10 m). A small compressed file can declare any size; reading one larger
/// than this (even decimated, through the warper) is refused before any read.
pub const MAX_SOURCE_PIXELS: usize = 1 << 31;

/// `grid` unless it has more than [`MAX_GRID_PIXELS`] pixels.
fn checked_grid(grid: Grid, path: &str) -> Result<Grid> {
    let n = grid.width as u128 * grid.height as u128;
    if n > MAX_GRID_PIXELS as u128 {
        return Err(Error::usage(format!(
            "the output grid would be {} x {} pixels ({n}), over the limit of {MAX_GRID_PIXELS} pixels (defined by {path}): use a coarser --resolution or an --aoi",
            grid.width, grid.height
        )));
    }
    Ok(grid)
}

/// The before scene's grid `full` (its extent) at `metres` per pixel. On a
/// geographic grid the metres become degrees at the grid's centre latitude,
/// once: every later step reuses the resulting pixel size in degrees.
pub fn grid_at_resolution(full: &Grid, metres: f64, path: &str) -> Result<Grid> {
    if metres <= 0.0 || !metres.is_finite() {
        return Err(Error::usage(format!(
            "--resolution must be a positive number of metres, got {metres}"
        )));
    }
    let (mx, my) = full.metres_per_unit();
    checked_grid(full.with_pixel_size(metres / mx, metres / my), path)
}

/// Bands that define the reference grid, in order of preference.
const GRID_BANDS: [Band; 4] = [Band::B04, Band::B03, Band::B02, Band::B08];

fn reference_band(scene: &Scene) -> Result<&BandFile> {
    GRID_BANDS
        .iter()
        .find_map(|b| scene.bands.get(b))
        .ok_or_else(|| {
            Error::input(
                &scene.source,
                format!(
                    "no 10 m band (B02, B03, B04 or B08) to define the grid; bands found: {}",
                    scene.band_list()
                ),
            )
        })
}

fn open(path: &str) -> Result<gdal::Dataset> {
    gdal::Dataset::open(path)
        .map_err(|e| Error::input(path, format!("cannot open raster: {}", gdal_msg(&e))))
}

/// Puts `needed` bands (and optional ones, when present) of both scenes on one grid.
pub fn align(
    before: Scene,
    after: Scene,
    needed: &[Band],
    optional: &[Band],
    opts: &AlignOptions,
) -> Result<AlignedPair> {
    for scene in [&before, &after] {
        for b in needed {
            scene.band(*b, "change detection")?;
        }
    }
    let ref_before = reference_band(&before)?;
    let ref_after = reference_band(&after)?;
    let full = Grid::from_dataset(&open(&ref_before.path)?, &ref_before.path)?;
    let after_grid = Grid::from_dataset(&open(&ref_after.path)?, &ref_after.path)?;

    let mut grid = match (opts.pixel_size, opts.resolution) {
        (Some((dx, dy)), _) => checked_grid(full.with_pixel_size(dx, dy), &ref_before.path)?,
        (None, Some(r)) => grid_at_resolution(&full, r, &ref_before.path)?,
        (None, None) => checked_grid(full.clone(), &ref_before.path)?,
    };

    // Keep only the overlap of the two footprints.
    let after_bounds =
        grid::transform_bounds(after_grid.bounds(), &after_grid.srs()?, &grid.srs()?)?;
    let win = grid.window_of_bounds(after_bounds).ok_or_else(|| {
        Error::invalid(format!(
            "{} and {} do not overlap: nothing to compare",
            before.source.display(),
            after.source.display()
        ))
    })?;
    grid = grid.subgrid(win);

    let aoi_geoms = match &opts.aoi {
        Some(aoi) => {
            let path = aoi.label();
            let (geoms, bounds) = read_aoi(aoi, &grid)?;
            let w = grid.window_of_bounds(bounds).ok_or_else(|| {
                Error::input(&path, "the area of interest does not overlap the scenes")
            })?;
            grid = grid.subgrid(w);
            Some((path, geoms))
        }
        None => None,
    };

    let tmp = tempfile::Builder::new()
        .prefix("dunewatch-align-")
        .tempdir()
        .map_err(|e| {
            Error::output(
                std::env::temp_dir(),
                format!("cannot create a temporary folder: {e}"),
            )
        })?;
    let mut counter = 0usize;
    let mut place = |file: &BandFile, categorical: bool| -> Result<AlignedBand> {
        counter += 1;
        place_band(file, &grid, tmp.path(), counter, categorical)
    };

    let mut aligned = Vec::new();
    for scene in [&before, &after] {
        let mut bands = BTreeMap::new();
        for b in needed.iter().chain(optional.iter()) {
            if let Some(f) = scene.bands.get(b) {
                bands.insert(*b, place(f, false)?);
            }
        }
        let scl = match &scene.scl {
            Some(f) => Some(place(f, true)?),
            None => None,
        };
        aligned.push((bands, scl));
    }
    let aoi = match aoi_geoms {
        Some((path, geoms)) => Some(warp::rasterize_aoi(&path, &geoms, &grid, tmp.path())?),
        None => None,
    };
    let (ab, asc) = aligned.pop().unwrap();
    let (bb, bsc) = aligned.pop().unwrap();
    Ok(AlignedPair {
        grid,
        before: AlignedScene {
            scene: before,
            bands: bb,
            scl: bsc,
        },
        after: AlignedScene {
            scene: after,
            bands: ab,
            scl: asc,
        },
        aoi,
        _tmp: tmp,
    })
}

/// Direct read when the file is on the grid, else a warped VRT.
fn place_band(
    file: &BandFile,
    grid: &Grid,
    tmp: &Path,
    n: usize,
    categorical: bool,
) -> Result<AlignedBand> {
    let ds = open(&file.path)?;
    if file.index > ds.raster_count() {
        return Err(Error::input(
            &file.path,
            format!("has no band {}", file.index),
        ));
    }
    let (w, h) = ds.raster_size();
    if w as u128 * h as u128 > MAX_SOURCE_PIXELS as u128 {
        return Err(Error::input(
            &file.path,
            format!(
                "declares {w} x {h} pixels, over the limit of {MAX_SOURCE_PIXELS} pixels per band file"
            ),
        ));
    }
    let band = ds
        .rasterband(file.index)
        .map_err(|e| Error::input(&file.path, gdal_msg(&e)))?;
    let nodata = band.no_data_value().unwrap_or(0.0);
    let saturated = match band.band_type() {
        gdal::raster::GdalDataType::UInt16 if !categorical => Some(65535.0),
        _ => None,
    };
    let src_grid = Grid::from_dataset(&ds, &file.path)?;
    let source = match (
        offset_on_grid(&src_grid, grid)?,
        upsampling_onto(&src_grid, grid)?,
    ) {
        (Some((x_off, y_off)), _) => Source::Direct {
            path: file.path.clone(),
            index: file.index,
            x_off,
            y_off,
        },
        (None, Some((factor, x_off, y_off))) => Source::Upsampled {
            path: file.path.clone(),
            index: file.index,
            factor,
            x_off: x_off as f64,
            y_off: y_off as f64,
            src_w: src_grid.width,
            src_h: src_grid.height,
            nearest: categorical,
        },
        (None, None) => {
            let vrt = tmp.join(format!("band{n}.vrt"));
            warp::warp_to_vrt(file, &ds, grid, &vrt, categorical, nodata)?;
            Source::Warped {
                vrt: vrt.to_string_lossy().into_owned(),
            }
        }
    };
    Ok(AlignedBand {
        file: file.clone(),
        source,
        nodata,
        saturated,
    })
}

fn same_crs(a: &Grid, b: &Grid) -> Result<bool> {
    let mut s1 = a.srs()?;
    let mut s2 = b.srs()?;
    s1.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    s2.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    Ok(s1 == s2)
}

/// Whole-pixel offset of `grid` inside `src`, if `src` has the same CRS and
/// pixel size and covers all of `grid`.
fn offset_on_grid(src: &Grid, grid: &Grid) -> Result<Option<(usize, usize)>> {
    let (sg, gg) = (&src.geotransform, &grid.geotransform);
    let same_px =
        (sg[1] - gg[1]).abs() <= 1e-9 * gg[1].abs() && (sg[5] - gg[5]).abs() <= 1e-9 * gg[5].abs();
    if !same_px || !same_crs(src, grid)? {
        return Ok(None);
    }
    let Some((x, y)) = whole_offset((gg[0] - sg[0]) / sg[1], (gg[3] - sg[3]) / sg[5]) else {
        return Ok(None);
    };
    if x + grid.width > src.width || y + grid.height > src.height {
        return Ok(None);
    }
    Ok(Some((x, y)))
}

/// A non-negative offset in pixels that is whole to within 1/1000 pixel.
fn whole_offset(fx: f64, fy: f64) -> Option<(usize, usize)> {
    let whole = |f: f64| (f - f.round()).abs() <= 1e-3 && f.round() >= 0.0;
    (whole(fx) && whole(fy)).then(|| (fx.round() as usize, fy.round() as usize))
}

/// `(factor, x_off, y_off)` when `src` is in the grid's CRS with pixels a
/// whole `factor` (2 to 8) times the grid's, its edges on the grid's pixel
/// edges, and it covers the grid: then upsampling is a fixed-weight
/// interpolation that needs no warper.
fn upsampling_onto(src: &Grid, grid: &Grid) -> Result<Option<(usize, usize, usize)>> {
    let (sg, gg) = (&src.geotransform, &grid.geotransform);
    let kx = sg[1] / gg[1];
    let ky = sg[5] / gg[5];
    let k = kx.round();
    if !(2.0..=8.0).contains(&k)
        || (kx - k).abs() > 1e-6 * k
        || (ky - k).abs() > 1e-6 * k
        || !same_crs(src, grid)?
    {
        return Ok(None);
    }
    let Some((x, y)) = whole_offset((gg[0] - sg[0]) / gg[1], (gg[3] - sg[3]) / gg[5]) else {
        return Ok(None);
    };
    let k = k as usize;
    if x + grid.width > src.width * k || y + grid.height > src.height * k {
        return Ok(None);
    }
    Ok(Some((k, x, y)))
}

/// The area's polygons in the grid CRS, with their bounds.
fn read_aoi(aoi: &Aoi, grid: &Grid) -> Result<(Vec<gdal::vector::Geometry>, [f64; 4])> {
    let path = match aoi {
        Aoi::File(p) => p,
        Aoi::Area(a) => {
            let label = aoi.label();
            let g = a
                .to_ogr()?
                .transform_to(&grid.srs()?)
                .map_err(|e| Error::input(&label, format!("cannot reproject: {}", gdal_msg(&e))))?;
            let env = g.envelope();
            return Ok((vec![g], [env.MinX, env.MinY, env.MaxX, env.MaxY]));
        }
    };
    read_aoi_file(path, grid)
}

/// Reads polygons from a vector file and returns them in the grid CRS, with
/// their bounds.
fn read_aoi_file(path: &Path, grid: &Grid) -> Result<(Vec<gdal::vector::Geometry>, [f64; 4])> {
    use gdal::vector::LayerAccess;
    let ds = gdal::Dataset::open(path).map_err(|e| {
        Error::input(
            path,
            format!("cannot open area of interest: {}", gdal_msg(&e)),
        )
    })?;
    let target = grid.srs()?;
    let mut geoms = Vec::new();
    let mut b = [
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    ];
    for mut layer in ds.layers() {
        // GeoJSON without a crs member is WGS 84 (RFC 7946).
        let layer_srs = layer.spatial_ref();
        for feature in layer.features() {
            let Some(g) = feature.geometry() else {
                continue;
            };
            let mut g = g.clone();
            let mut src = match &layer_srs {
                Some(s) => s.clone(),
                None => gdal::spatial_ref::SpatialRef::from_epsg(4326)
                    .map_err(|e| Error::input(path, gdal_msg(&e)))?,
            };
            src.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
            g.set_spatial_ref(src);
            let g = g
                .transform_to(&target)
                .map_err(|e| Error::input(path, format!("cannot reproject: {}", gdal_msg(&e))))?;
            let env = g.envelope();
            b = [
                b[0].min(env.MinX),
                b[1].min(env.MinY),
                b[2].max(env.MaxX),
                b[3].max(env.MaxY),
            ];
            geoms.push(g);
        }
    }
    if geoms.is_empty() {
        return Err(Error::input(path, "has no geometries"));
    }
    Ok((geoms, b))
}
