#!/usr/bin/env bash
# What `dunewatch detect` fetches from remote scenes: bytes and requests
# (from nginx's access log) and wall time, for a 20 km area in a full-size
# COG pair served over loopback, against the same run on the local files.
# A benchmark, not a test; not run by CI.
#
#   bash scripts/bench_remote.sh [bench_data dir] [area km]
#   DUNEWATCH_BIN=target/debug/dunewatch bash scripts/bench_remote.sh ...   (another build)
#   DETECT_ARGS="--method combined" bash scripts/bench_remote.sh ...        (other detect options)
#
# Uses (and makes, when missing, with `make_bench_scene.sh --no-jp2`) the
# full COG pair <bench_data>/full/cog/{before,after} (10980 x 10980 px at
# 10 m, 1024 px DEFLATE tiles, EPSG:32640), serves it with
# scripts/test_servers.sh (nginx on 127.0.0.1), writes Earth Search style
# STAC items for both dates, and runs, with the release binary:
#
#   detect --before <local folder> --after <local folder> --aoi area.geojson --no-sites   (local)
#   detect --before http://.../before.json --after http://.../after.json --aoi ... --no-sites (remote)
#
# and the same two with the sites step. "Area share" is the bytes of the
# files the run requested times the share of the tile the area covers: what
# an ideal reader of exactly the area would fetch (tile granularity aside).
# "Window's tiles" is the bytes of the full-resolution COG tiles that the
# area's window touches in those files: the least any reader of whole
# compressed tiles fetches.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DATA=${1:-bench_data}
KM=${2:-20}
BIN=${DUNEWATCH_BIN:-$ROOT/target/release/dunewatch}
[ -x "$BIN" ] || { echo "build first: cargo build --release" >&2; exit 1; }
COG=$DATA/full/cog
if [ ! -f "$COG/before/B04.tif" ]; then
  bash scripts/make_bench_scene.sh "$DATA" --no-jp2
fi
COG=$(cd "$COG" && pwd)

WORK=$(mktemp -d /tmp/dunewatch-bench-remote.XXXXXX)
cleanup() {
  bash "$ROOT/scripts/test_servers.sh" stop "$WORK" >/dev/null 2>&1 || true
  # BENCH_KEEP=DIR keeps the run folders (DIR/out-local, ...) for comparisons.
  if [ -n "${BENCH_KEEP:-}" ]; then
    mkdir -p "$BENCH_KEEP" && cp -r "$WORK"/out-* "$WORK/access.log" "$BENCH_KEEP"/
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK/www"
ln -s "$COG/before" "$WORK/www/before"
ln -s "$COG/after" "$WORK/www/after"
bash scripts/test_servers.sh start "$WORK" >/dev/null
PORT=$(cat "$WORK/nginx.port")

# Items and a KM x KM area in the middle of the tile, in lon/lat.
/usr/bin/python3 - "$COG" "$WORK" "$PORT" "$KM" <<'EOF'
import json, sys
from osgeo import gdal, osr
cog, work, port, km = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
keys = {"B02": "blue", "B03": "green", "B04": "red", "B05": "rededge1", "B06": "rededge2",
        "B07": "rededge3", "B08": "nir", "B8A": "nir08", "B11": "swir16", "B12": "swir22"}
ds = gdal.Open(f"{cog}/before/B04.tif")
gt = ds.GetGeoTransform(); w, h = ds.RasterXSize, ds.RasterYSize
utm = osr.SpatialReference(); utm.ImportFromWkt(ds.GetProjection())
ll = osr.SpatialReference(); ll.ImportFromEPSG(4326)
for s in (utm, ll):
    s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
ct = osr.CoordinateTransformation(utm, ll)
def lonlat(x, y):
    p = ct.TransformPoint(x, y); return [p[0], p[1]]
x0, y0 = gt[0], gt[3]; x1, y1 = x0 + w * gt[1], y0 + h * gt[5]
cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, km * 500
ring = [lonlat(cx - r, cy - r), lonlat(cx + r, cy - r), lonlat(cx + r, cy + r), lonlat(cx - r, cy + r)]
ring.append(ring[0])
json.dump({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {},
           "geometry": {"type": "Polygon", "coordinates": [ring]}}]}, open(f"{work}/area.geojson", "w"))
fp = [lonlat(x0, y1), lonlat(x1, y1), lonlat(x1, y0), lonlat(x0, y0)]; fp.append(fp[0])
for side, date in (("before", "2016-01-20"), ("after", "2018-03-28")):
    assets = {}
    for b, k in keys.items():
        d = gdal.Open(f"{cog}/{side}/{b}.tif")
        t = d.GetGeoTransform()
        assets[k] = {"href": f"http://127.0.0.1:{port}/{side}/{b}.tif",
                     "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                     "proj:shape": [d.RasterYSize, d.RasterXSize],
                     "proj:transform": [t[1], t[2], t[0], t[4], t[5], t[3]],
                     "raster:bands": [{"nodata": 0, "data_type": "uint16", "scale": 0.0001, "offset": 0}],
                     "roles": ["data", "reflectance"]}
    item = {"type": "Feature", "stac_version": "1.0.0", "id": f"bench_{side}",
            "collection": "sentinel-2-l1c", "geometry": {"type": "Polygon", "coordinates": [fp]},
            "bbox": [min(p[0] for p in fp), min(p[1] for p in fp), max(p[0] for p in fp), max(p[1] for p in fp)],
            "properties": {"datetime": f"{date}T07:00:00Z", "proj:epsg": 32640, "eo:cloud_cover": 0,
                           "mgrs:utm_zone": 40, "mgrs:latitude_band": "Q", "mgrs:grid_square": "BM",
                           "s2:processing_baseline": "02.06"},
            "links": [], "assets": assets}
    json.dump(item, open(f"{work}/www/{side}.json", "w"))
print(f"area: {km:g} km x {km:g} km, {(2*r)**2 / ((x1-x0)*(y0-y1)):.4f} of the tile", file=sys.stderr)
EOF
SHARE=$(/usr/bin/python3 -c "print(($KM*1000)**2 / (10980*10)**2)")

run() { # name, args...: wall seconds of one detect run
  local name=$1; shift
  rm -rf "$WORK/out-$name"
  : > "$WORK/access.log"
  local t0 t1
  t0=$(date +%s.%N)
  # shellcheck disable=SC2086  # DETECT_ARGS: extra detect options, e.g. "--method combined"
  "$BIN" detect --quiet "$@" ${DETECT_ARGS:-} --out "$WORK/out-$name" --aoi "$WORK/area.geojson"
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}

report() { # name, wall
  local name=$1 wall=$2
  # Bytes and requests of .tif reads; the files requested and their sizes.
  read -r reqs bytes <<<"$(awk '$2 ~ /\.tif$/ {n++; s+=$4} END {print n+0, s+0}' "$WORK/access.log")"
  local held=0
  for f in $(awk '$2 ~ /\.tif$/ {print $2}' "$WORK/access.log" | sort -u); do
    held=$((held + $(stat -L -c %s "$WORK/www$f")))
  done
  local share tiles
  share=$(/usr/bin/python3 -c "print(int($held * $SHARE))")
  tiles=$(tile_bytes $(awk '$2 ~ /\.tif$/ {print $2}' "$WORK/access.log" | sort -u))
  printf "%-13s wall %6.2f s  requests %4d  fetched %6.1f MB  area share %5.1f MB  ratio %4.2f  window's tiles %5.1f MB  ratio %4.2f\n" \
    "$name" "$wall" "$reqs" "$(echo "$bytes/1048576" | bc -l)" "$(echo "$share/1048576" | bc -l)" \
    "$(echo "if ($share > 0) $bytes/$share else 0" | bc -l)" "$(echo "$tiles/1048576" | bc -l)" \
    "$(echo "if ($tiles > 0) $bytes/$tiles else 0" | bc -l)"
}

tile_bytes() { # files (URI paths): bytes of the full-resolution tiles the
  # area's window (plus dunewatch's 16 px margin) touches, from the TIFF
  # tile sizes: the least a reader of whole compressed tiles must fetch.
  [ $# -gt 0 ] || { echo 0; return; }
  /usr/bin/python3 - "$WORK" "$KM" "$@" <<'PY'
import sys
from osgeo import gdal
work, km, files = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
total = 0
for f in files:
    ds = gdal.Open(f"{work}/www{f}")
    gt, w, h = ds.GetGeoTransform(), ds.RasterXSize, ds.RasterYSize
    band = ds.GetRasterBand(1)
    bx, by = band.GetBlockSize()
    cx, cy, r, m = gt[0] + w * gt[1] / 2, gt[3] + h * gt[5] / 2, km * 500, 16
    x0, x1 = int((cx - r - gt[0]) / gt[1]) - m, int((cx + r - gt[0]) / gt[1]) + m
    y0, y1 = int((cy + r - gt[3]) / gt[5]) - m, int((cy - r - gt[3]) / gt[5]) + m
    for ty in range(max(y0, 0) // by, min(y1, h - 1) // by + 1):
        for tx in range(max(x0, 0) // bx, min(x1, w - 1) // bx + 1):
            total += int(band.GetMetadataItem(f"BLOCK_SIZE_{tx}_{ty}", "TIFF") or 0)
print(total)
PY
}

B=http://127.0.0.1:$PORT/before.json
A=http://127.0.0.1:$PORT/after.json
echo "bench_remote: $KM km area of the full COG pair in $COG"
# A first run of each warms the page cache (local) and checks the setup.
run warm-local --before "$COG/before" --after "$COG/after" --no-sites >/dev/null
w=$(run local --before "$COG/before" --after "$COG/after" --no-sites); report "local" "$w"
w=$(run remote --before "$B" --after "$A" --no-sites); report "remote" "$w"
cmp -s "$WORK/out-local/change_score.tif" "$WORK/out-remote/change_score.tif" \
  && cmp -s "$WORK/out-local/change_mask.tif" "$WORK/out-remote/change_mask.tif" \
  && echo "remote score and mask: byte-identical to local" \
  || echo "remote score and mask: DIFFER from local"
w=$(run local-sites --before "$COG/before" --after "$COG/after"); report "local+sites" "$w"
w=$(run remote-sites --before "$B" --after "$A"); report "remote+sites" "$w"
# The sites of both runs, all but the dates (STAC items carry them, folders
# of COGs do not; the chips' captions show them, so chips are not compared).
/usr/bin/python3 - "$WORK/out-local-sites/sites.csv" "$WORK/out-remote-sites/sites.csv" <<'PY'
import csv, sys
def rows(p):
    return [{k: v for k, v in r.items() if not k.endswith("_date")} for r in csv.DictReader(open(p))]
a, b = rows(sys.argv[1]), rows(sys.argv[2])
print(f"remote sites.csv: {len(b)} sites, " +
      ("identical to local but for the dates" if a == b else "DIFFERS from local"))
PY
