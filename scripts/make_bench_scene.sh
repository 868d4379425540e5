#!/usr/bin/env bash
# Builds a benchmark pair the size of a real Sentinel-2 tile from the shipped
# OSCD Abu Dhabi sample (sample_tiles/abudhabi/before and after).
#
#   bash scripts/make_bench_scene.sh [out dir] [--half] [--no-jp2]
#
# Default out dir: bench_data (gitignored). Without --half: the full pair,
# 10980 x 10980 px at 10 m (5490 x 5490 at 20 m), in <out>/full/; with --half
# the half-size pair, 5490 x 5490 at 10 m, in <out>/half/. Each is written in
# two encodings:
#
#   <out>/<size>/cog/{before,after}/B02.tif ...       DEFLATE COGs (COG-archive names)
#   <out>/<size>/safe/{before,after}/S2?_MSIL2A_*.SAFE  JPEG2000 L2A SAFE product
#
# How: every band of both dates is first warped from EPSG:4326 to UTM 40N
# (EPSG:32640) at its own resolution (10 m: B02 B03 B04 B08; 20 m: B05 B06
# B07 B8A B11 B12), cropped to the part where every band of both dates has
# data (a tile of ~776 x 788 px at 10 m), then the big raster is that tile
# repeated with alternate tiles mirrored (left-right on odd columns, top-bottom
# on odd rows) so that tile edges match. Both dates are tiled the same way, so
# they are on one grid (origin 199980 E, 2700000 N: MGRS tile 40QBM's corner).
# The after sample is first shifted onto the before sample (it lies 6.0 m
# east and 12.8 m south of it: the displacement `dunewatch detect` estimates
# on sample_tiles/abudhabi, run.json coregistration.shift_m), because the
# mirrored copies would otherwise carry that misregistration in alternate
# directions, which no real pair does.
#
# COG: UInt16 DN = reflectance x 10000 (the OSCD L1C counts as they are),
# nodata 0, DEFLATE + horizontal predictor, 1024 px tiles, overviews.
# SAFE: UInt16 DN + 1000 with BOA_ADD_OFFSET -1000 (processing baseline
# 04.00+), lossless JPEG2000 (JP2OpenJPEG, REVERSIBLE=YES, QUALITY=100,
# 1024 px tiles, 6 resolution levels, as ESA's products), an SCL band at 20 m
# (vegetation / not vegetated / water from NDVI and MNDWI: no cloud), and an
# MTD_MSIL2A.xml made from tests/fixtures/safe/L2A_N0509 listing exactly
# these files. GDAL 3.6's JPEG2000 encoder is single-threaded, so the files
# are encoded two at a time (one per core).
#
# Needs /usr/bin/python3 with numpy and GDAL (Debian: python3-numpy
# python3-gdal; installed here when missing). Time on 2 cores (AMD EPYC):
# full pair ~8 min (COG ~1 min, JPEG2000 the rest); half pair ~2 min.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=bench_data
HALF=0
JP2=1
for a in "$@"; do
  case "$a" in
    --half) HALF=1 ;;
    --no-jp2) JP2=0 ;;
    -h|--help) sed -n 2,36p "$0"; exit 0 ;;
    -*) echo "make_bench_scene.sh: unknown option $a" >&2; exit 2 ;;
    *) OUT="$a" ;;
  esac
done

PY=/usr/bin/python3
if ! "$PY" -c 'import numpy; from osgeo import gdal' >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-numpy python3-gdal
fi

mkdir -p "$OUT"
start=$(date +%s)
"$PY" - "$OUT" "$HALF" "$JP2" <<'PYEOF'
import os, re, sys, glob, time, shutil
import multiprocessing as mp
import numpy as np
from osgeo import gdal, osr

gdal.UseExceptions()
out_root, half, want_jp2 = sys.argv[1], sys.argv[2] == "1", sys.argv[3] == "1"
SIZE10 = 5490 if half else 10980
ORIGIN = (199980.0, 2700000.0)
EPSG = 32640
BANDS10 = ["B02", "B03", "B04", "B08"]
BANDS20 = ["B05", "B06", "B07", "B8A", "B11", "B12"]
DATES = {
    "before": dict(src="sample_tiles/abudhabi/before", sat="S2A", t="20160120T065432", orbit="R063", proc="20160120T093011", day="2016-01-20", abs="A003020"),
    "after": dict(src="sample_tiles/abudhabi/after", sat="S2B", t="20180328T065919", orbit="R063", proc="20180328T091245", day="2018-03-28", abs="A005530"),
}
TILE = "T40QBM"
# Where the after sample shows what the before sample has, in metres east
# and south (see the header).
AFTER_SHIFT_M = (6.0, 12.8)
size_dir = os.path.join(out_root, "half" if half else "full")
tiles_dir = os.path.join(out_root, "tiles")
os.makedirs(tiles_dir, exist_ok=True)


def log(msg):
    print(f"make_bench_scene: {msg}", flush=True)


def src_file(date, band):
    f = glob.glob(os.path.join(DATES[date]["src"], f"*_{band}.tif"))
    if len(f) != 1:
        sys.exit(f"make_bench_scene: no single {band} file in {DATES[date]['src']}")
    return f[0]


# 1. Warp each sample band to UTM at its resolution, on one extent snapped to 20 m.
def utm_extent():
    ds = gdal.Open(src_file("before", "B04"))
    gt, w, h = ds.GetGeoTransform(), ds.RasterXSize, ds.RasterYSize
    s = osr.SpatialReference(); s.ImportFromEPSG(4326); s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    t = osr.SpatialReference(); t.ImportFromEPSG(EPSG); t.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    ct = osr.CoordinateTransformation(s, t)
    xs, ys = [], []
    for px, py in [(0, 0), (w, 0), (0, h), (w, h)]:
        x, y, _ = ct.TransformPoint(gt[0] + px * gt[1], gt[3] + py * gt[5])
        xs.append(x); ys.append(y)
    snap = lambda v, up: (np.ceil(v / 20) if up else np.floor(v / 20)) * 20
    return snap(min(xs), False), snap(min(ys), False), snap(max(xs), True), snap(max(ys), True)


def build_tiles():
    marker = os.path.join(tiles_dir, "done-registered")
    if os.path.exists(marker):
        return
    ext = utm_extent()
    arrays = {}
    for date in DATES:
        # Pixel p of the after tile samples the after scene at p + shift.
        dx, dy = AFTER_SHIFT_M if date == "after" else (0.0, 0.0)
        bounds = (ext[0] + dx, ext[1] - dy, ext[2] + dx, ext[3] - dy)
        for b in BANDS10 + BANDS20:
            res = 10 if b in BANDS10 else 20
            ds = gdal.Warp("", src_file(date, b), format="MEM", dstSRS=f"EPSG:{EPSG}", outputBounds=bounds,
                           xRes=res, yRes=res, resampleAlg="bilinear", srcNodata=0, dstNodata=0)
            arrays[(date, b)] = ds.GetRasterBand(1).ReadAsArray()
    # Where every band of both dates has data, on the 20 m grid.
    valid = None
    for (date, b), a in arrays.items():
        v = a > 0
        if b in BANDS10:
            h2, w2 = v.shape[0] // 2, v.shape[1] // 2
            v = v[: 2 * h2, : 2 * w2].reshape(h2, 2, w2, 2).all(axis=(1, 3))
        valid = v if valid is None else valid[: v.shape[0], : v.shape[1]] & v[: valid.shape[0], : valid.shape[1]]
    h20, w20 = valid.shape
    m = 0
    while not valid[m : h20 - m, m : w20 - m].all():
        m += 1
    log(f"sample warped to EPSG:{EPSG}: {w20} x {h20} px at 20 m, cropped by {m} px for the rotated footprint")
    for (date, b), a in arrays.items():
        if b in BANDS10:
            t = a[2 * m : 2 * (h20 - m), 2 * m : 2 * (w20 - m)]
        else:
            t = a[m : h20 - m, m : w20 - m]
        assert (t > 0).all()
        np.save(os.path.join(tiles_dir, f"{date}_{b}.npy"), t)
    open(marker, "w").write("ok\n")


def mirrored(tile, n):
    """An n x n raster of `tile` repeated, odd tiles mirrored so edges match."""
    top = np.concatenate([tile, tile[:, ::-1]], axis=1)
    sup = np.concatenate([top, top[::-1, :]], axis=0)
    reps = (-(-n // sup.shape[0]), -(-n // sup.shape[1]))
    return np.ascontiguousarray(np.tile(sup, reps)[:n, :n])


def mem_dataset(a, res, nodata):
    ds = gdal.GetDriverByName("MEM").Create("", a.shape[1], a.shape[0], 1, gdal.GDT_UInt16 if a.dtype == np.uint16 else gdal.GDT_Byte)
    ds.SetGeoTransform((ORIGIN[0], res, 0.0, ORIGIN[1], 0.0, -res))
    s = osr.SpatialReference(); s.ImportFromEPSG(EPSG)
    ds.SetProjection(s.ExportToWkt())
    bnd = ds.GetRasterBand(1)
    bnd.WriteArray(a)
    if nodata is not None:
        bnd.SetNoDataValue(nodata)
    return ds


def safe_names(date):
    d = DATES[date]
    product = f"{d['sat']}_MSIL2A_{d['t']}_N0509_{d['orbit']}_{TILE}_{d['proc']}.SAFE"
    granule = f"L2A_{TILE}_{d['abs']}_{d['t']}"
    return product, granule


def safe_rel(date, b):
    _, granule = safe_names(date)
    res = 10 if b in BANDS10 else 20
    return f"GRANULE/{granule}/IMG_DATA/R{res}m/{TILE}_{DATES[date]['t']}_{b}_{res}m"


def job(args):
    kind, date, b = args
    t0 = time.time()
    gdal.SetCacheMax(256 * 1024 * 1024)
    if b == "SCL":
        # Scene classification from the 20 m tiles: water (6), vegetation (4), bare (5).
        g = np.load(os.path.join(tiles_dir, f"{date}_B03.npy")).astype(np.float32)
        g = g.reshape(g.shape[0] // 2, 2, g.shape[1] // 2, 2).mean(axis=(1, 3))
        r = np.load(os.path.join(tiles_dir, f"{date}_B04.npy")).astype(np.float32)
        r = r.reshape(r.shape[0] // 2, 2, r.shape[1] // 2, 2).mean(axis=(1, 3))
        n = np.load(os.path.join(tiles_dir, f"{date}_B08.npy")).astype(np.float32)
        n = n.reshape(n.shape[0] // 2, 2, n.shape[1] // 2, 2).mean(axis=(1, 3))
        s = np.load(os.path.join(tiles_dir, f"{date}_B11.npy")).astype(np.float32)
        scl = np.full(s.shape, 5, np.uint8)
        scl[(n - r) / (n + r) > 0.3] = 4
        scl[(g - s) / (g + s) > 0.2] = 6
        big = mirrored(scl, SIZE10 // 2)
        res = 20
    else:
        res = 10 if b in BANDS10 else 20
        big = mirrored(np.load(os.path.join(tiles_dir, f"{date}_{b}.npy")), SIZE10 if res == 10 else SIZE10 // 2)
    if kind == "cog":
        path = os.path.join(size_dir, "cog", date, f"{b}.tif")
        ds = mem_dataset(big, res, 0)
        gdal.GetDriverByName("COG").CreateCopy(path, ds, options=["COMPRESS=DEFLATE", "PREDICTOR=YES", "BLOCKSIZE=1024", "NUM_THREADS=1", "BIGTIFF=IF_SAFER"])
    else:
        product, _ = safe_names(date)
        path = os.path.join(size_dir, "safe", date, product, safe_rel(date, b) + ".jp2")
        if b != "SCL":
            big = big + np.uint16(1000)  # BOA_ADD_OFFSET = -1000
        ds = mem_dataset(big, res, None)
        gdal.GetDriverByName("JP2OpenJPEG").CreateCopy(path, ds, options=[
            "REVERSIBLE=YES", "QUALITY=100", "BLOCKXSIZE=1024", "BLOCKYSIZE=1024", "RESOLUTIONS=6",
            "CODEC=JP2", "GMLJP2=NO", "GeoJP2=YES"])
    ds = None
    return f"{path} ({time.time() - t0:.0f} s)"


def write_xml(date):
    product, granule = safe_names(date)
    d = DATES[date]
    text = open("tests/fixtures/safe/L2A_N0509/MTD_MSIL2A.xml", encoding="utf-8").read()
    files = [safe_rel(date, b) for b in BANDS10 + BANDS20 + ["SCL"]]
    entries = "\n".join(f"                        <IMAGE_FILE>{f}</IMAGE_FILE>" for f in files)
    text, n = re.subn(r"(<Granule [^>]*>).*?(\s*</Granule>)", lambda m: m.group(1) + "\n" + entries + m.group(2), text, count=1, flags=re.S)
    assert n == 1
    stamp = f"{d['day']}T{d['t'][9:11]}:{d['t'][11:13]}:{d['t'][13:15]}.024Z"
    for tag in ["PRODUCT_START_TIME", "PRODUCT_STOP_TIME", "DATATAKE_SENSING_START"]:
        text = re.sub(f"<{tag}>[^<]*</{tag}>", f"<{tag}>{stamp}</{tag}>", text)
    text = re.sub(r"<PRODUCT_URI>[^<]*</PRODUCT_URI>", f"<PRODUCT_URI>{product}</PRODUCT_URI>", text)
    text = text.replace("Sentinel-2B", "Sentinel-2A" if d["sat"] == "S2A" else "Sentinel-2B")
    # DN were written with +1000: every band's BOA_ADD_OFFSET must be -1000.
    text = re.sub(r'(<BOA_ADD_OFFSET band_id="\d+">)[^<]*(</BOA_ADD_OFFSET>)', r"\g<1>-1000\g<2>", text)
    path = os.path.join(size_dir, "safe", date, product, "MTD_MSIL2A.xml")
    open(path, "w", encoding="utf-8").write(text)


if __name__ == "__main__":
    t0 = time.time()
    build_tiles()
    jobs = []
    kinds = ["cog"] + (["safe"] if want_jp2 else [])
    for kind in kinds:
        shutil.rmtree(os.path.join(size_dir, kind), ignore_errors=True)
        for date in DATES:
            if kind == "cog":
                os.makedirs(os.path.join(size_dir, "cog", date), exist_ok=True)
            else:
                product, granule = safe_names(date)
                for r in (10, 20):
                    os.makedirs(os.path.join(size_dir, "safe", date, product, "GRANULE", granule, "IMG_DATA", f"R{r}m"), exist_ok=True)
                write_xml(date)
            for b in BANDS10 + BANDS20 + (["SCL"] if kind == "safe" else []):
                jobs.append((kind, date, b))
    # Biggest first so the two workers finish together.
    jobs.sort(key=lambda j: (j[0] != "safe", j[2] not in BANDS10))
    with mp.Pool(2) as pool:
        for msg in pool.imap_unordered(job, jobs):
            log(f"wrote {msg}")
    log(f"{SIZE10} x {SIZE10} pair in {size_dir} ({', '.join(kinds)}) in {time.time() - t0:.0f} s")
PYEOF
echo "make_bench_scene.sh: done in $(( $(date +%s) - start )) s"
