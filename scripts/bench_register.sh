#!/usr/bin/env bash
# Times adding a full tile's sites (~50k) to a register that already holds a
# year of runs (24), with GNU time (wall time and peak memory).
#
# No full-tile run ships with the repo, so the runs are synthesised from a
# real one: the Abu Dhabi sample's sites (detect on sample_tiles/abudhabi)
# are tiled over a 110 km square (a Sentinel-2 tile) and jittered by up to
# a pixel (three jitter patterns shared by the year's runs, a fourth for
# the added tile), with a new date every ~15 days; each run's run.json
# (dates, grid) is the real one with the grid widened to the tiled area.
#
# Usage: scripts/bench_register.sh [WORK_DIR]   (default target/bench_register)
# Env: SITES (default 50000), RUNS (default 24)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/dunewatch
WORK=${1:-target/bench_register}
SITES=${SITES:-50000}
RUNS=${RUNS:-24}
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "bench_register.sh: needs GNU time (apt-get install time)" >&2; exit 1; }
[ -x "$BIN" ] || cargo build --release
mkdir -p "$WORK"
if [ ! -f "$WORK/seed/sites.geojson" ]; then
  "$BIN" detect -q --before sample_tiles/abudhabi/before --after sample_tiles/abudhabi/after --out "$WORK/seed"
fi
/usr/bin/python3 - "$WORK" "$SITES" "$RUNS" <<'PY'
import json, math, os, random, sys, datetime
work, n_sites, n_runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
seed = json.load(open(os.path.join(work, "seed/sites.geojson")))["features"]
run = json.load(open(os.path.join(work, "seed/run.json")))
gt = run["grid"]["geotransform"]
w, h = run["grid"]["width"], run["grid"]["height"]
span_x, span_y = w * gt[1], h * -gt[5]
copies = math.ceil(n_sites / len(seed))
side = math.ceil(math.sqrt(copies))
d0 = datetime.date(2023, 1, 1)
def variant(v):
    path = os.path.join(work, "variant_%d.geojson" % v)
    if os.path.exists(path):
        return path
    rnd = random.Random(v)
    feats = []
    for c in range(copies):
        ox, oy = (c % side) * span_x, -(c // side) * span_y
        jx, jy = rnd.uniform(-1, 1) * gt[1], rnd.uniform(-1, 1) * gt[5]
        for f in seed:
            if len(feats) >= n_sites:
                break
            g = f["geometry"]
            def mv(ring):
                return [[round(x + ox + jx, 7), round(y + oy + jy, 7)] for x, y in ring]
            if g["type"] == "Polygon":
                coords = [mv(r) for r in g["coordinates"]]
            else:
                coords = [[mv(r) for r in p] for p in g["coordinates"]]
            p = f["properties"]
            feats.append({"type": "Feature", "geometry": {"type": g["type"], "coordinates": coords},
                          "properties": {"id": len(feats) + 1, "rank": len(feats) + 1, "kind": p["kind"],
                                         "score": p["score"], "area_m2": p["area_m2"],
                                         "features": {"brightness_before": p["features"]["brightness_before"],
                                                      "brightness_after": p["features"]["brightness_after"]}}})
    with open(path, "w") as fh:
        json.dump({"type": "FeatureCollection", "features": feats}, fh)
    return path
for k in range(n_runs + 1):
    name = "year_%02d" % k if k < n_runs else "full_tile"
    d = os.path.join(work, name)
    os.makedirs(d, exist_ok=True)
    link = os.path.join(d, "sites.geojson")
    if not os.path.exists(link):
        os.symlink(os.path.abspath(variant(k % 3 if k < n_runs else 3)), link)
    r = json.loads(json.dumps(run))
    r["before"]["date"] = str(d0 + datetime.timedelta(days=15 * k))
    r["after"]["date"] = str(d0 + datetime.timedelta(days=15 * (k + 1)))
    r["grid"]["width"], r["grid"]["height"] = w * side, h * side
    json.dump(r, open(os.path.join(d, "run.json"), "w"))
PY
REG="$WORK/year.gpkg"
if [ ! -f "$REG" ]; then
  echo "building the year's register ($RUNS runs of $SITES sites)..."
  for k in $(seq -f %02g 0 $((RUNS - 1))); do
    "$BIN" register add -q "$WORK/year_$k" --into "$REG"
  done
fi
cp "$REG" "$WORK/bench.gpkg"
echo "register: $(ogrinfo -ro -q -sql 'SELECT COUNT(*) AS n FROM sites' "$WORK/bench.gpkg" | grep -o 'n (Integer) = [0-9]*') sites, $RUNS runs"
$TIME -v "$BIN" register add "$WORK/full_tile" --into "$WORK/bench.gpkg" 2> "$WORK/time.txt"
grep -E "User time|System time|Elapsed|Maximum resident" "$WORK/time.txt"
