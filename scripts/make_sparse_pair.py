#!/usr/bin/env python3
"""A full-tile pair with few changes, for timing the sites step as a desert
tile with a few dozen new structures would have it (the mirrored bench pair
has tens of thousands of sites, repeated with the tiling).

    /usr/bin/python3 scripts/make_sparse_pair.py [bench_data dir]

Reads <dir>/full/cog/before (made by scripts/make_bench_scene.sh) and writes
<dir>/full/sparse/before (links to those files) and <dir>/full/sparse/after:
the same bands with 40 rectangles of 4 to 25 px (10 m) pasted at fixed
random places (seed 7), half a bright metal roof (reflectance 0.45 in every
band), half dark asphalt (0.09). DEFLATE COGs as make_bench_scene.sh writes.
Time: about a minute on 2 cores.
"""
import os
import sys

import numpy as np
from osgeo import gdal

gdal.UseExceptions()
root = sys.argv[1] if len(sys.argv) > 1 else "bench_data"
src = os.path.join(root, "full", "cog", "before")
out = os.path.join(root, "full", "sparse")
if not os.path.isdir(src):
    sys.exit(f"make_sparse_pair: {src} is missing: run scripts/make_bench_scene.sh first")
os.makedirs(os.path.join(out, "before"), exist_ok=True)
os.makedirs(os.path.join(out, "after"), exist_ok=True)

rng = np.random.default_rng(7)
ref = gdal.Open(os.path.join(src, "B02.tif"))
size = ref.RasterXSize
# (row, col, height, width) in 10 m pixels, and the roof value.
rects = [
    (int(rng.integers(50, size - 80)), int(rng.integers(50, size - 80)),
     int(rng.integers(4, 26)), int(rng.integers(4, 26)), 4500 if k % 2 == 0 else 900)
    for k in range(40)
]
for name in sorted(os.listdir(src)):
    if not name.endswith(".tif"):
        continue
    link = os.path.join(out, "before", name)
    if not os.path.lexists(link):
        os.symlink(os.path.abspath(os.path.join(src, name)), link)
    ds = gdal.Open(os.path.join(src, name))
    a = ds.GetRasterBand(1).ReadAsArray()
    f = ds.RasterXSize / size  # 1 for 10 m bands, 0.5 for 20 m
    for r, c, h, w, v in rects:
        r0, c0 = int(r * f), int(c * f)
        a[r0:r0 + max(1, int(h * f)), c0:c0 + max(1, int(w * f))] = v
    mem = gdal.GetDriverByName("MEM").Create("", ds.RasterXSize, ds.RasterYSize, 1, gdal.GDT_UInt16)
    mem.SetGeoTransform(ds.GetGeoTransform())
    mem.SetProjection(ds.GetProjection())
    mem.GetRasterBand(1).WriteArray(a)
    mem.GetRasterBand(1).SetNoDataValue(0)
    gdal.GetDriverByName("COG").CreateCopy(
        os.path.join(out, "after", name), mem,
        options=["COMPRESS=DEFLATE", "PREDICTOR=YES", "BLOCKSIZE=1024", "NUM_THREADS=2", "BIGTIFF=IF_SAFER"])
    print(f"make_sparse_pair: {name}", flush=True)
