#!/usr/bin/python3
"""Builds desert change scenarios: base-like structures pasted into the after
scene of real desert backgrounds, and unchanged desert pairs.

    /usr/bin/python3 scripts/make_desert_scenarios.py [--oscd DIR] [--out DIR] [--seed N]
                                                      [--pasted-per-window N]

A regression check for the mission's case (new structures in open desert),
not a replacement for real labels: the structures are pasted, not built.

Backgrounds. The sandy parts of the OSCD Abu Dhabi and Dubai pairs (those of
the two present in --oscd; real
Sentinel-2 L1C, both dates). Every band of both dates is warped to UTM 40N
(EPSG:32640) at its native resolution (10, 20 or 60 m) on one grid whose
origin is a multiple of 60 m, so 20 m and 60 m pixels nest exactly in 10 m
ones. The after date is first shifted onto the before date by the
displacement `dunewatch detect` estimates on the full pair (run.json
coregistration.shift_m). Windows of 1.2 x 1.2 km are then chosen
automatically, two per city, as the ones with the least urban cover:
- every band of both dates has data;
- no labelled change (Abu Dhabi's label), no vegetation (NDVI > 0.25) and
  no water (MNDWI > 0) on more than 0.5 % of the window;
- lowest texture: mean over 60 m blocks of the standard deviation of red
  (B04) reflectance, the larger of the two dates, plus the mean absolute
  change of B04 between the dates (roads, buildings and construction are
  textured; open sand is smooth and stable).
Each window is mirror-tiled 3 x 3 (alternate copies flipped so edges match;
both dates tiled alike) into a 3.6 x 3.6 km scene, big enough for a 3 km
runway. (The project's bench tiles, scripts/make_bench_scene.sh, are the
same Abu Dhabi sample tiled the same way, so they add no other desert.)

Structures (sizes in metres; positions, angles and sizes drawn from the seed):
- compound: a ring berm 150-500 m across (circle or square), 12-20 m wide,
  with 2-5 buildings of 15-40 m inside;
- apron: a paved rectangle 80-250 x 50-120 m;
- hangar: a rectangle 30-60 m long, 30 m to its length wide;
- runway: a strip 30-45 m wide and 1-3 km long (an extension in open sand);
- tent_camp: rows of 6-10 m tents 15-25 m apart over 80-200 x 60-150 m,
  with some gaps.
Pixel values come from real labelled new-construction pixels of the OSCD
cities: the after-date values, all 13 bands each read at its own native
resolution, at the centres of pixels labelled change in the seven labelled
cities. Each part of a structure (a berm, a building, a runway) draws its
pixels from the change pixels within 100 m of one randomly chosen change
pixel of one city, so a part has one real material; each 10 m cell of it
takes one donor pixel's spectrum. Structures are drawn on a 2.5 m grid;
a band pixel at 10, 20 or 60 m becomes the area-weighted mix of its cells'
donor spectra and the background (so a 6 m tent is a mixed pixel, as in a
real scene).

Truth: a 10 m pixel is change when a structure covers at least 25 % of it.

Output, per scenario <out>/<name>/:
- imgs_1/<name>_Bxx.tif, imgs_2/<name>_Bxx.tif: the 13 bands, UInt16 L1C
  counts, nodata 0, EPSG:32640 (the OSCD folder layout, read by
  `dunewatch detect --before .../imgs_1 --after .../imgs_2`);
- truth.tif: Byte 0/1 on the 10 m grid (nodata 255);
- structures.json: the scene, its background window, and each structure
  with its id, type, size, centre and pixel footprint (10 m [col, row]);
and <out>/scenarios.json listing every scenario with its kind ("pasted" or
"unchanged") and area. Same seed, same files.

Needs /usr/bin/python3 with GDAL and numpy (stdlib otherwise).
"""

import argparse
import glob
import json
import math
import os
import shutil
import sys

import numpy as np
from osgeo import gdal, osr

gdal.UseExceptions()

BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]
RES = {"B01": 60, "B02": 10, "B03": 10, "B04": 10, "B05": 20, "B06": 20, "B07": 20, "B08": 10,
       "B8A": 20, "B09": 60, "B10": 60, "B11": 20, "B12": 20}
EPSG = 32640
# After-date displacement (east, south) in metres onto the before date, as
# `dunewatch detect` estimates it on the full OSCD pairs.
AFTER_SHIFT_M = {"abudhabi": (5.74, 12.97), "dubai": (6.35, 1.81)}
BACKGROUNDS = ["abudhabi", "dubai"]
LABELLED = ["abudhabi", "aguasclaras", "beihai", "bordeaux", "hongkong", "nantes", "paris"]
WIN = 120          # window side, 10 m pixels (1.2 km); a multiple of 6
TILES = 3          # mirror tiling TILES x TILES
SCENE = TILES * WIN  # scene side, 10 m pixels (3.6 km)
FINE = 4           # 2.5 m drawing cells per 10 m pixel
TRUTH_MIN = 4      # of FINE * FINE cells covered: 25 %


def band_file(folder, band):
    f = sorted(glob.glob(os.path.join(folder, f"*_{band}.tif")))
    if len(f) != 1:
        sys.exit(f"make_desert_scenarios: no single *_{band}.tif in {folder}")
    return f[0]


def srs(epsg):
    s = osr.SpatialReference()
    s.ImportFromEPSG(epsg)
    s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return s


# ----------------------------------------------------------------- backgrounds

def utm_extent(path):
    """The 60 m-snapped UTM box inside the raster at `path` (EPSG:4326)."""
    ds = gdal.Open(path)
    gt, w, h = ds.GetGeoTransform(), ds.RasterXSize, ds.RasterYSize
    ct = osr.CoordinateTransformation(srs(4326), srs(EPSG))
    pts = [ct.TransformPoint(gt[0] + px * gt[1], gt[3] + py * gt[5])[:2] for px, py in [(0, 0), (w, 0), (0, h), (w, h)]]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    # Inner box: the largest of the left/bottom edges, the smallest of the right/top ones.
    x0 = math.ceil(max(xs[0], xs[2]) / 60) * 60
    x1 = math.floor(min(xs[1], xs[3]) / 60) * 60
    y0 = math.ceil(max(ys[2], ys[3]) / 60) * 60
    y1 = math.floor(min(ys[0], ys[1]) / 60) * 60
    return x0, y0, x1, y1


def warp_city(oscd, city):
    """Both dates of `city`, every band on one UTM grid: {(date, band): array}, the extent."""
    img = os.path.join(oscd, "images", city)
    ext = utm_extent(band_file(os.path.join(img, "imgs_1"), "B02"))
    arrays = {}
    for date, folder in ((1, "imgs_1"), (2, "imgs_2")):
        dx, dy = AFTER_SHIFT_M[city] if date == 2 else (0.0, 0.0)
        # Pixel p of the after grid samples the after scene at p + shift.
        bounds = (ext[0] + dx, ext[1] - dy, ext[2] + dx, ext[3] - dy)
        for b in BANDS:
            r = RES[b]
            ds = gdal.Warp("", band_file(os.path.join(img, folder), b), format="MEM", dstSRS=f"EPSG:{EPSG}",
                           outputBounds=bounds, xRes=r, yRes=r, resampleAlg="bilinear", srcNodata=0, dstNodata=0)
            arrays[(date, b)] = ds.GetRasterBand(1).ReadAsArray()
    label = None
    lab_path = os.path.join(oscd, "labels", city, f"{city}-cm.tif")
    if os.path.exists(lab_path):
        # The label lies on the before B02 grid without georeferencing: give it that grid.
        ref = gdal.Open(band_file(os.path.join(img, "imgs_1"), "B02"))
        src = gdal.Translate("", lab_path, format="MEM")
        src.SetGeoTransform(ref.GetGeoTransform())
        src.SetProjection(ref.GetProjection())
        ds = gdal.Warp("", src, format="MEM", dstSRS=f"EPSG:{EPSG}", outputBounds=ext, xRes=10, yRes=10,
                       resampleAlg="near")
        label = ds.GetRasterBand(1).ReadAsArray() == 2
    return arrays, ext, label


def at10(a, band):
    """A band array repeated onto the 10 m grid."""
    f = RES[band] // 10
    return np.repeat(np.repeat(a, f, axis=0), f, axis=1)


def choose_windows(arrays, label, count):
    """Top-left 10 m pixels of the `count` least urban windows (see the module doc)."""
    h, w = arrays[(1, "B02")].shape
    h, w = h - h % 6, w - w % 6
    valid = np.ones((h, w), bool)
    for (d, b), a in arrays.items():
        valid &= at10(a, b)[:h, :w] > 0
    f = {}
    for d in (1, 2):
        g = lambda b: at10(arrays[(d, b)], b)[:h, :w].astype(np.float64)
        red, nir, green, swir = g("B04"), g("B08"), g("B03"), g("B11")
        ndvi = (nir - red) / np.maximum(nir + red, 1)
        mndwi = (green - swir) / np.maximum(green + swir, 1)
        f[d] = red
        f[f"bad{d}"] = (ndvi > 0.25) | (mndwi > 0)
        blocks = red.reshape(h // 6, 6, w // 6, 6)
        f[f"tex{d}"] = blocks.std(axis=(1, 3))
    bad = f["bad1"] | f["bad2"] | ~valid
    if label is not None:
        bad |= label[:h, :w]
    tex = np.maximum(f["tex1"], f["tex2"])
    dif = np.abs(f[2] - f[1]).reshape(h // 6, 6, w // 6, 6).mean(axis=(1, 3))
    cands = []
    for r in range(0, h - WIN + 1, 30):
        for c in range(0, w - WIN + 1, 30):
            if not valid[r:r + WIN, c:c + WIN].all() or bad[r:r + WIN, c:c + WIN].mean() > 0.005:
                continue
            score = tex[r // 6:(r + WIN) // 6, c // 6:(c + WIN) // 6].mean() + \
                dif[r // 6:(r + WIN) // 6, c // 6:(c + WIN) // 6].mean()
            cands.append((score, r, c))
    cands.sort()
    chosen = []
    for score, r, c in cands:
        if all(abs(r - r2) >= WIN or abs(c - c2) >= WIN for _, r2, c2 in chosen):
            chosen.append((score, r, c))
        if len(chosen) == count:
            break
    if len(chosen) < count:
        sys.exit(f"make_desert_scenarios: only {len(chosen)} desert windows found, {count} wanted")
    return chosen


def mirror_tile(a):
    """TILES x TILES mirror tiling: alternate copies flipped, so edges match across copies."""
    row = np.concatenate([a if i % 2 == 0 else a[:, ::-1] for i in range(TILES)], axis=1)
    return np.concatenate([row if i % 2 == 0 else row[::-1, :] for i in range(TILES)], axis=0)


# ----------------------------------------------------------------- donor spectra

def donor_spectra(oscd):
    """Per labelled city: (rows, cols) of its change pixels on the label grid and their
    after-date spectra (N x 13, each band read at its native resolution)."""
    out = {}
    for city in LABELLED:
        lab_path = os.path.join(oscd, "labels", city, f"{city}-cm.tif")
        img = os.path.join(oscd, "images", city)
        if not os.path.exists(lab_path):
            continue
        lab = gdal.Open(lab_path)  # kept open while its band is read
        label = lab.GetRasterBand(1).ReadAsArray()
        gt1 = gdal.Open(band_file(os.path.join(img, "imgs_1"), "B02")).GetGeoTransform()
        rows, cols = np.nonzero(label == 2)
        lon = gt1[0] + (cols + 0.5) * gt1[1]
        lat = gt1[3] + (rows + 0.5) * gt1[5]
        spec = np.zeros((len(rows), len(BANDS)), np.float64)
        for i, b in enumerate(BANDS):
            ds = gdal.Open(band_file(os.path.join(img, "imgs_2"), b))
            gt = ds.GetGeoTransform()
            a = ds.GetRasterBand(1).ReadAsArray()
            px = np.clip(np.floor((lon - gt[0]) / gt[1]).astype(int), 0, a.shape[1] - 1)
            py = np.clip(np.floor((lat - gt[3]) / gt[5]).astype(int), 0, a.shape[0] - 1)
            spec[:, i] = a[py, px]
        ok = (spec > 0).all(axis=1)
        out[city] = (rows[ok], cols[ok], spec[ok])
    if not out:
        sys.exit(f"make_desert_scenarios: no labelled city in {oscd}/labels")
    return out


def material(rng, donors):
    """The donor spectra of one part: the change pixels within 100 m of one random change pixel."""
    cities = sorted(donors)
    while True:
        rows, cols, spec = donors[cities[rng.integers(len(cities))]]
        k = rng.integers(len(rows))
        near = (np.abs(rows - rows[k]) <= 10) & (np.abs(cols - cols[k]) <= 10)
        if near.sum() >= 15:
            return spec[near]


# ----------------------------------------------------------------- drawing

class Canvas:
    """Structures drawn on 2.5 m cells of a scene: coverage and donor spectra."""

    def __init__(self, n10):
        self.n10 = n10
        self.n = n10 * FINE
        self.owner = np.zeros((self.n, self.n), np.int32)  # structure id per cell, 0 = none
        self.spec = np.zeros((n10, n10, len(BANDS)), np.float64)  # donor spectrum per 10 m cell
        self.occupied = np.zeros((n10, n10), bool)  # 10 m cells reserved (with a margin)

    def centres(self, x0, y0, x1, y1):
        """Cell index ranges and centre coordinates (m) of the cells in a metre box."""
        c0, r0 = max(int(x0 / 2.5), 0), max(int(y0 / 2.5), 0)
        c1, r1 = min(int(math.ceil(x1 / 2.5)), self.n), min(int(math.ceil(y1 / 2.5)), self.n)
        ys, xs = np.mgrid[r0:r1, c0:c1]
        return (r0, r1, c0, c1), (xs + 0.5) * 2.5, (ys + 0.5) * 2.5

    def paint(self, sid, inside_fn, box, rng, mat):
        """Marks the cells of a box where inside_fn(x, y) holds as structure `sid`, made of `mat`."""
        (r0, r1, c0, c1), x, y = self.centres(*box)
        if r1 <= r0 or c1 <= c0:
            return
        inside = inside_fn(x, y)
        self.owner[r0:r1, c0:c1][inside] = sid
        # Each 10 m cell this part touches takes one donor spectrum.
        cells = np.zeros((self.n10, self.n10), bool)
        rr, cc = np.nonzero(inside)
        cells[(rr + r0) // FINE, (cc + c0) // FINE] = True
        idx = np.nonzero(cells)
        self.spec[idx] = mat[rng.integers(len(mat), size=len(idx[0]))]


def rect_fn(cx, cy, length, width, angle):
    ca, sa = math.cos(angle), math.sin(angle)

    def f(x, y):
        u = (x - cx) * ca + (y - cy) * sa
        v = -(x - cx) * sa + (y - cy) * ca
        return (np.abs(u) <= length / 2) & (np.abs(v) <= width / 2)
    return f


def rect_box(cx, cy, length, width, angle):
    hx = abs(math.cos(angle)) * length / 2 + abs(math.sin(angle)) * width / 2
    hy = abs(math.sin(angle)) * length / 2 + abs(math.cos(angle)) * width / 2
    return cx - hx, cy - hy, cx + hx, cy + hy


def place(canvas, rng, half_x, half_y, tries=400):
    """A centre (m) where a box of half-sides (half_x, half_y) lies on free ground, 60 m
    from the scene's edges."""
    side = canvas.n10 * 10.0
    if half_x + 60 > side / 2 or half_y + 60 > side / 2:
        return None
    for _ in range(tries):
        cx = rng.uniform(half_x + 60, side - half_x - 60)
        cy = rng.uniform(half_y + 60, side - half_y - 60)
        c0, c1 = int((cx - half_x) / 10), int(math.ceil((cx + half_x) / 10))
        r0, r1 = int((cy - half_y) / 10), int(math.ceil((cy + half_y) / 10))
        if not canvas.occupied[r0:r1, c0:c1].any():
            return cx, cy
    return None


def reserve(canvas, sid, margin_px=6):
    """Marks structure `sid`'s 10 m cells, widened by `margin_px`, as taken."""
    n = canvas.n10
    m = (canvas.owner == sid).reshape(n, FINE, n, FINE).any(axis=(1, 3))
    for _ in range(margin_px):
        g = np.pad(m, 1)
        m = g[1:-1, 1:-1] | g[:-2, 1:-1] | g[2:, 1:-1] | g[1:-1, :-2] | g[1:-1, 2:] \
            | g[:-2, :-2] | g[:-2, 2:] | g[2:, :-2] | g[2:, 2:]
    canvas.occupied |= m


def draw_structure(kind, sid, canvas, rng, donors):
    """Draws one structure of `kind`; returns its description, or None when it did not fit."""
    if kind == "runway":
        width, length, angle = rng.uniform(30, 45), rng.uniform(1000, 3000), rng.uniform(0, math.pi)
        b = rect_box(0, 0, length, width, angle)
        c = place(canvas, rng, b[2], b[3])
        if c is None:
            return None
        canvas.paint(sid, rect_fn(c[0], c[1], length, width, angle), rect_box(c[0], c[1], length, width, angle),
                     rng, material(rng, donors))
        return {"length_m": length, "width_m": width, "angle_deg": math.degrees(angle), "centre_m": c}
    if kind in ("apron", "hangar"):
        if kind == "apron":
            length, width = rng.uniform(80, 250), rng.uniform(50, 120)
        else:
            length = rng.uniform(30, 60)
            width = rng.uniform(30, length)
        angle = rng.uniform(0, math.pi)
        b = rect_box(0, 0, length, width, angle)
        c = place(canvas, rng, b[2], b[3])
        if c is None:
            return None
        canvas.paint(sid, rect_fn(c[0], c[1], length, width, angle), rect_box(c[0], c[1], length, width, angle),
                     rng, material(rng, donors))
        return {"length_m": length, "width_m": width, "angle_deg": math.degrees(angle), "centre_m": c}
    if kind == "compound":
        across, berm = rng.uniform(150, 500), rng.uniform(12, 20)
        shape = "circle" if rng.random() < 0.5 else "square"
        angle = rng.uniform(0, math.pi / 2)
        half = across / 2 * (math.sqrt(2) if shape == "square" else 1.0)
        c = place(canvas, rng, half, half)
        if c is None:
            return None
        cx, cy = c
        if shape == "circle":
            def ring(x, y):
                d = np.hypot(x - cx, y - cy)
                return (d <= across / 2) & (d >= across / 2 - berm)
        else:
            outer = rect_fn(cx, cy, across, across, angle)
            inner = rect_fn(cx, cy, across - 2 * berm, across - 2 * berm, angle)

            def ring(x, y):
                return outer(x, y) & ~inner(x, y)
        canvas.paint(sid, ring, (cx - half, cy - half, cx + half, cy + half), rng, material(rng, donors))
        buildings = []
        inner_r = across / 2 - berm - 30
        for _ in range(int(rng.integers(2, 6))):
            for _ in range(50):
                bl, bw, ba = rng.uniform(15, 40), rng.uniform(15, 40), rng.uniform(0, math.pi)
                r, t = rng.uniform(0, max(inner_r - 25, 1)), rng.uniform(0, 2 * math.pi)
                bx, by = cx + r * math.cos(t), cy + r * math.sin(t)
                box = rect_box(bx, by, bl, bw, ba)
                (r0, r1, c0, c1), _, _ = canvas.centres(*box)
                if (canvas.owner[r0:r1, c0:c1] == 0).all():
                    canvas.paint(sid, rect_fn(bx, by, bl, bw, ba), box, rng, material(rng, donors))
                    buildings.append({"length_m": bl, "width_m": bw, "centre_m": (bx, by)})
                    break
        return {"across_m": across, "berm_width_m": berm, "shape": shape, "centre_m": c, "buildings": buildings}
    if kind == "tent_camp":
        lx, ly, angle = rng.uniform(80, 200), rng.uniform(60, 150), rng.uniform(0, math.pi)
        tent, step = rng.uniform(6, 10), rng.uniform(15, 25)
        b = rect_box(0, 0, lx, ly, angle)
        c = place(canvas, rng, b[2], b[3])
        if c is None:
            return None
        mat = material(rng, donors)
        ca, sa = math.cos(angle), math.sin(angle)
        tents = 0
        for u in np.arange(-lx / 2 + tent / 2, lx / 2 - tent / 2 + 1e-9, step):
            for v in np.arange(-ly / 2 + tent / 2, ly / 2 - tent / 2 + 1e-9, step):
                if rng.random() < 0.15:  # gaps
                    continue
                tx, ty = c[0] + u * ca - v * sa, c[1] + u * sa + v * ca
                canvas.paint(sid, rect_fn(tx, ty, tent, tent, angle), rect_box(tx, ty, tent, tent, angle), rng, mat)
                tents += 1
        return {"length_m": lx, "width_m": ly, "tent_m": tent, "spacing_m": step, "tents": tents,
                "angle_deg": math.degrees(angle), "centre_m": c}
    raise ValueError(kind)


def render(bg, canvas):
    """The after bands with the canvas's structures mixed in: {band: array}."""
    covered = (canvas.owner > 0).reshape(canvas.n10, FINE, canvas.n10, FINE).sum(axis=(1, 3)).astype(np.float64)
    out = {}
    for i, b in enumerate(BANDS):
        f = RES[b] // 10
        m = canvas.n10 // f
        cnt = covered.reshape(m, f, m, f).sum(axis=(1, 3))
        num = (covered * canvas.spec[:, :, i]).reshape(m, f, m, f).sum(axis=(1, 3))
        frac = cnt / (FINE * FINE * f * f)
        struct = np.where(cnt > 0, num / np.maximum(cnt, 1), 0)
        a = bg[b].astype(np.float64)
        out[b] = np.clip(np.rint(frac * struct + (1 - frac) * a), 1, 65535).astype(np.uint16)
    return out


# ----------------------------------------------------------------- writing

def write_tif(path, a, x0, y0, res, dtype, nodata):
    drv = gdal.GetDriverByName("GTiff")
    ds = drv.Create(path, a.shape[1], a.shape[0], 1, dtype, options=["COMPRESS=DEFLATE"])
    ds.SetGeoTransform((x0, res, 0, y0, 0, -res))
    ds.SetProjection(srs(EPSG).ExportToWkt())
    band = ds.GetRasterBand(1)
    band.SetNoDataValue(nodata)
    band.WriteArray(a)
    ds = None


def write_pair(folder, name, before, after, x0, y0):
    for date, bands in (("imgs_1", before), ("imgs_2", after)):
        os.makedirs(os.path.join(folder, date))
        for b in BANDS:
            write_tif(os.path.join(folder, date, f"{name}_{b}.tif"), bands[b], x0, y0, RES[b], gdal.GDT_UInt16, 0)


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--oscd", default=os.path.join(os.path.dirname(root), "shared", "oscd"))
    ap.add_argument("--out", default=os.path.join(root, "out", "desert_scenarios"))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--windows-per-city", type=int, default=2)
    ap.add_argument("--pasted-per-window", type=int, default=2)
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    donors = donor_spectra(args.oscd)
    print("donor change pixels: " + ", ".join(f"{c} {len(v[0])}" for c, v in sorted(donors.items())), file=sys.stderr)
    tmp = args.out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    listing = []
    backgrounds = [c for c in BACKGROUNDS if os.path.isdir(os.path.join(args.oscd, "images", c, "imgs_1"))]
    if not backgrounds:
        sys.exit(f"make_desert_scenarios: none of {', '.join(BACKGROUNDS)} in {args.oscd}/images")
    for city in backgrounds:
        arrays, ext, label = warp_city(args.oscd, city)
        for wi, (score, r, c) in enumerate(choose_windows(arrays, label, args.windows_per_city)):
            x0, y0 = ext[0] + c * 10, ext[3] - r * 10
            window = {"city": city, "utm_epsg": EPSG, "x0": x0, "y0": y0, "size_m": WIN * 10, "score": float(score)}
            dates = {}
            for d in (1, 2):
                dates[d] = {}
                for b in BANDS:
                    f = RES[b] // 10
                    a = arrays[(d, b)][r // f:(r + WIN) // f, c // f:(c + WIN) // f]
                    dates[d][b] = mirror_tile(a)
            base = f"{city}{wi + 1}"
            area = (SCENE * 10 / 1000.0) ** 2
            # Unchanged: the real pair as it is.
            name = f"{base}_unchanged"
            write_pair(os.path.join(tmp, name), name, dates[1], dates[2], x0, y0)
            write_tif(os.path.join(tmp, name, "truth.tif"), np.zeros((SCENE, SCENE), np.uint8), x0, y0, 10,
                      gdal.GDT_Byte, 255)
            with open(os.path.join(tmp, name, "structures.json"), "w") as fh:
                json.dump({"scene": name, "kind": "unchanged", "window": window, "area_km2": area,
                           "structures": []}, fh, indent=1)
            listing.append({"name": name, "kind": "unchanged", "area_km2": area, "background": city})
            for k in range(args.pasted_per_window):
                name = f"{base}_pasted{k + 1}"
                canvas = Canvas(SCENE)
                kinds = ["runway", "compound", "apron", "hangar", "hangar", "tent_camp"]
                structs = []
                for kind in kinds:
                    sid = len(structs) + 1
                    d = draw_structure(kind, sid, canvas, rng, donors)
                    if d is None:
                        print(f"{name}: no room for a {kind}", file=sys.stderr)
                        continue
                    reserve(canvas, sid)
                    structs.append({"id": sid, "type": kind, **d})
                owned = canvas.owner.reshape(SCENE, FINE, SCENE, FINE)
                truth = np.zeros((SCENE, SCENE), np.uint8)
                for s in structs:
                    cells = (owned == s["id"]).sum(axis=(1, 3)) >= TRUTH_MIN
                    rr, cc = np.nonzero(cells)
                    truth[cells] = 1
                    s["pixels"] = int(len(rr))
                    s["footprint"] = [[int(a), int(b)] for a, b in zip(cc, rr)]
                after = render(dates[2], canvas)
                write_pair(os.path.join(tmp, name), name, dates[1], after, x0, y0)
                write_tif(os.path.join(tmp, name, "truth.tif"), truth, x0, y0, 10, gdal.GDT_Byte, 255)
                with open(os.path.join(tmp, name, "structures.json"), "w") as fh:
                    json.dump({"scene": name, "kind": "pasted", "window": window, "area_km2": area,
                               "truth_rule": "10 m pixel covered >= 25 % by the structure",
                               "footprint": "[col, row] of truth.tif", "structures": structs}, fh)
                listing.append({"name": name, "kind": "pasted", "area_km2": area, "background": city,
                                "structures": {t: sum(s["type"] == t for s in structs) for t in sorted(set(kinds))}})
            print(f"{city} window {wi + 1}: x0 {x0} y0 {y0} (score {score:.1f})", file=sys.stderr)
    with open(os.path.join(tmp, "scenarios.json"), "w") as fh:
        json.dump({"seed": args.seed, "oscd": os.path.abspath(args.oscd), "scenarios": listing}, fh, indent=1)
    shutil.rmtree(args.out, ignore_errors=True)
    os.rename(tmp, args.out)
    print(f"{len(listing)} scenarios in {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
