#!/usr/bin/env bash
# Runs every detection method on the desert scenarios of
# scripts/make_desert_scenarios.py and reports, per method:
#   - recall by structure type (compound, apron, hangar, runway, tent_camp):
#     a structure is FOUND when a site points at it: the site covers at least
#     one pixel of its footprint (structures.json; pixel centre inside the
#     site's polygon, the rule of `dunewatch eval`) and at least 30 % of the
#     site's pixels are truth change. A site that swallows most of the scene
#     covers every structure but points at none; the structures any site
#     covers are counted too (`covered`);
#   - false sites per 100 km2 of unchanged desert: every site in the
#     unchanged pairs is false;
#   - the share of the unchanged desert's compared pixels flagged as change
#     (change_mask.tif), which a few huge false sites cannot hide;
#   - false sites per 100 km2 of the pasted scenes: sites under 30 % truth
#     change.
# A regression check for the mission's case, not a replacement for real labels.
#
# Usage: scripts/eval_desert.sh [scenarios dir] [out dir]
#   scenarios dir default: out/desert_scenarios, built first when missing
#     (OSCD=<dir> to point at the OSCD folder; default ../shared/oscd);
#   out dir default: out/eval_desert (runs/<method>/<scenario>, desert.csv).
# METHODS="combined cva" limits the methods (default: every --method value
# `dunewatch detect --help` lists). DETECT_ARGS are passed to detect; THREADS
# (default 2) sets --threads. REUSE=1 scores the runs already in the out dir
# instead of running them again.
# Uses target/release/dunewatch, building it when missing; /usr/bin/python3
# with GDAL and numpy. Exits 1 if any run failed (the others are scored).
set -euo pipefail

if [ $# -gt 2 ]; then
  echo "usage: $0 [scenarios dir] [out dir]" >&2
  exit 2
fi
root="$(cd "$(dirname "$0")/.." && pwd)"
scen="${1:-$root/out/desert_scenarios}"
out="${2:-$root/out/eval_desert}"
bin="$root/target/release/dunewatch"
py=/usr/bin/python3
"$py" -c "from osgeo import gdal, ogr; import numpy" 2>/dev/null || {
  echo "$0: $py with GDAL and numpy is needed (Debian: python3-gdal python3-numpy)" >&2; exit 1; }

if [ ! -x "$bin" ]; then
  echo "building $bin ..." >&2
  (cd "$root" && cargo build --release --quiet)
fi
if [ ! -f "$scen/scenarios.json" ]; then
  echo "building the scenarios in $scen ..." >&2
  "$py" "$root/scripts/make_desert_scenarios.py" --oscd "${OSCD:-$root/../shared/oscd}" --out "$scen"
fi
mkdir -p "$out"
out="$(cd "$out" && pwd)"
scen="$(cd "$scen" && pwd)"

if [ -z "${METHODS:-}" ]; then
  # "Change measure: combined (...), cva, irmad, ..." or clap's "[possible values: ...]".
  METHODS="$("$bin" detect --help | "$py" -c '
import re, sys
t = sys.stdin.read()
m = re.search(r"\[possible values: ([^\]]*)\]", t[t.find("--method"):]) or re.search(r"Change measure: ([^\n]*)", t)
if m:
    s = re.sub(r"\([^)]*\)", "", m.group(1))
    print(" ".join(w.strip().split()[0] for w in s.split(",") if w.strip()))
')"
  [ -n "$METHODS" ] || METHODS="combined cva irmad indices learned"
fi
read -r -a methods <<< "$METHODS"
read -r -a detect_args <<< "${DETECT_ARGS:-}"
scenarios=()
for d in "$scen"/*/; do
  [ -f "$d/structures.json" ] && scenarios+=("$(basename "$d")")
done
[ ${#scenarios[@]} -gt 0 ] || { echo "$0: no scenario in $scen" >&2; exit 1; }

failed=()
for m in "${methods[@]}"; do
  for s in "${scenarios[@]}"; do
    run="$out/runs/$m/$s"
    [ "${REUSE:-0}" = 1 ] && [ -f "$run/run.json" ] && [ -f "$run/sites.geojson" ] && continue
    rm -rf "$run"
    if ! "$bin" detect --before "$scen/$s/imgs_1" --after "$scen/$s/imgs_2" --out "$run" --quiet \
        --method "$m" --threads "${THREADS:-2}" "${detect_args[@]}"; then
      echo "$m $s: detect failed" >&2
      failed+=("$m/$s")
      rm -rf "$run"
    fi
  done
  echo "$m: ${#scenarios[@]} scenarios run" >&2
done

"$py" - "$scen" "$out" "${methods[@]}" <<'PY'
import csv, json, os, sys
import numpy as np
from osgeo import gdal, ogr, osr
gdal.UseExceptions()

scen, out, methods = sys.argv[1], sys.argv[2], sys.argv[3:]
TYPES = ["compound", "apron", "hangar", "runway", "tent_camp"]
names = sorted(d for d in os.listdir(scen) if os.path.isfile(os.path.join(scen, d, "structures.json")))

def site_raster(sites_path, truth):
    """Site index + 1 per truth pixel whose centre a site polygon covers (0 = none), and the site count."""
    w, h = truth.RasterXSize, truth.RasterYSize
    mem = gdal.GetDriverByName("MEM").Create("", w, h, 1, gdal.GDT_Int32)
    mem.SetGeoTransform(truth.GetGeoTransform())
    mem.SetProjection(truth.GetProjection())
    dst = osr.SpatialReference(wkt=truth.GetProjection())
    dst.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    wgs = osr.SpatialReference(); wgs.ImportFromEPSG(4326)
    wgs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    ct = osr.CoordinateTransformation(wgs, dst)
    vds = ogr.GetDriverByName("Memory").CreateDataSource("sites")
    layer = vds.CreateLayer("sites", dst, ogr.wkbUnknown)
    layer.CreateField(ogr.FieldDefn("idx", ogr.OFTInteger))
    with open(sites_path) as f:
        features = json.load(f)["features"]
    for i, ft in enumerate(features):
        g = ogr.CreateGeometryFromJson(json.dumps(ft["geometry"]))
        g.Transform(ct)
        f = ogr.Feature(layer.GetLayerDefn())
        f.SetField("idx", i + 1)
        f.SetGeometry(g)
        layer.CreateFeature(f)
    gdal.RasterizeLayer(mem, [1], layer, options=["ATTRIBUTE=idx"])
    return mem.GetRasterBand(1).ReadAsArray(), len(features)

# A site points at a structure when at least this share of its pixels is truth change.
MIN_TRUE_SHARE = 0.3

def flagged(run):
    """Changed and compared pixels of a run's change mask (0 no change, 1 change, 255 masked)."""
    ds = gdal.Open(os.path.join(run, "change_mask.tif"))  # kept: its band dies with it
    mask = ds.GetRasterBand(1).ReadAsArray()
    return int((mask == 1).sum()), int((mask <= 1).sum())

rows = []
for m in methods:
    found = {t: 0 for t in TYPES}
    total = {t: 0 for t in TYPES}
    covered = 0
    false_unchanged = false_pasted = 0
    area_unchanged = area_pasted = 0.0
    changed_unchanged = compared_unchanged = 0
    missing = []
    for name in names:
        with open(os.path.join(scen, name, "structures.json")) as f:
            meta = json.load(f)
        sites_path = os.path.join(out, "runs", m, name, "sites.geojson")
        if not os.path.isfile(sites_path):
            missing.append(name)
            continue
        truth = gdal.Open(os.path.join(scen, name, "truth.tif"))
        tarr = truth.GetRasterBand(1).ReadAsArray() == 1
        ids, n = site_raster(sites_path, truth)
        if meta["kind"] == "unchanged":
            false_unchanged += n
            area_unchanged += meta["area_km2"]
            c, k = flagged(os.path.dirname(sites_path))
            changed_unchanged += c
            compared_unchanged += k
            continue
        area_pasted += meta["area_km2"]
        # Each site's share of truth change pixels (index 0: no site).
        px = np.bincount(ids.ravel(), minlength=n + 1)
        tr = np.bincount(ids[tarr], minlength=n + 1)
        pointing = tr >= MIN_TRUE_SHARE * np.maximum(px, 1)
        pointing[0] = False
        false_pasted += n - int(pointing[1:].sum())
        for s in meta["structures"]:
            fp = np.array(s["footprint"], dtype=int).reshape(-1, 2)
            total[s["type"]] += 1
            if len(fp) and pointing[ids[fp[:, 1], fp[:, 0]]].any():
                found[s["type"]] += 1
            if len(fp) and (ids[fp[:, 1], fp[:, 0]] > 0).any():
                covered += 1
    row = {"method": m, "scenarios_missing": len(missing)}
    for t in TYPES:
        row[f"{t}_found"], row[f"{t}_total"] = found[t], total[t]
        row[f"{t}_recall"] = found[t] / total[t] if total[t] else ""
    all_f, all_t = sum(found.values()), sum(total.values())
    row["all_found"], row["all_total"] = all_f, all_t
    row["all_recall"] = all_f / all_t if all_t else ""
    row["all_covered"] = covered
    row["false_sites_unchanged"], row["area_unchanged_km2"] = false_unchanged, area_unchanged
    row["false_per_100km2_unchanged"] = 100 * false_unchanged / area_unchanged if area_unchanged else ""
    row["flagged_share_unchanged"] = changed_unchanged / compared_unchanged if compared_unchanged else ""
    row["false_sites_pasted"], row["area_pasted_km2"] = false_pasted, area_pasted
    row["false_per_100km2_pasted"] = 100 * false_pasted / area_pasted if area_pasted else ""
    rows.append(row)

path = os.path.join(out, "desert.csv")
with open(path, "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0]))
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()})

def frac(r, t):
    return f"{r[f'{t}_found']}/{r[f'{t}_total']}" if r[f"{t}_total"] else "-"
def num(v):
    return "-" if v == "" else f"{v:.1f}"
print("| method | " + " | ".join(TYPES) + " | all | covered by any site | false sites / 100 km², unchanged desert"
      " | unchanged desert flagged | false sites / 100 km², pasted scenes |")
print("|---|" + "---|" * (len(TYPES) + 5))
for r in rows:
    miss = f" ({r['scenarios_missing']} runs missing)" if r["scenarios_missing"] else ""
    print(f"| {r['method']}{miss} | " + " | ".join(frac(r, t) for t in TYPES)
          + f" | {frac(r, 'all')} ({num(100 * r['all_recall']) if r['all_recall'] != '' else '-'} %)"
          + f" | {r['all_covered']}/{r['all_total']}"
          + f" | {num(r['false_per_100km2_unchanged'])} ({r['false_sites_unchanged']} in {r['area_unchanged_km2']:.1f} km²)"
          + (f" | {100 * r['flagged_share_unchanged']:.2f} %" if r["flagged_share_unchanged"] != "" else " | -")
          + f" | {num(r['false_per_100km2_pasted'])} |")
print(f"\nfound = a site covers a pixel of the structure and at least {MIN_TRUE_SHARE:.0%} of the site is truth change."
      f" CSV: {path}")
PY

if [ ${#failed[@]} -gt 0 ]; then
  echo "failed: ${failed[*]}" >&2
  exit 1
fi
