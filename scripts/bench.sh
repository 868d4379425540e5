#!/usr/bin/env bash
# End-to-end benchmark of `dunewatch detect` on full-size Sentinel-2 pairs,
# against the GDAL decode floor and two peers. Not part of the tests or CI.
#
#   bash scripts/bench.sh [bench_data dir]
#   bash scripts/bench.sh [bench_data dir] --table   # only print the table of the last run
#   METHODS="combined learned cnn" bash scripts/bench.sh [bench_data dir]
#
# Uses (and makes, when missing) the pairs of scripts/make_bench_scene.sh:
# full COG, full JPEG2000 L2A SAFE, half COG; and of scripts/make_sparse_pair.py:
# a full COG pair with few changes (a few dozen sites, as on a desert tile,
# where the mirrored pairs have tens of thousands). For each it measures, with GNU
# /usr/bin/time -v, wall time, CPU time (user + system) and peak RSS of
#
#   target/release/dunewatch detect --before <b> --after <a> --out <dir> [--threads N]
#
# and of the "decode floor": every input file dunewatch decodes for that pair
# (B02 B03 B04 B08 B11 B12 of both dates, plus the SCL of an L2A SAFE) read
# once, whole, at its native resolution as UInt16 with GDAL's Python bindings
# (Dataset.ReadAsArray in strips of 1024 rows = one row of tiles), files
# spread over as many worker processes as dunewatch has threads (2), each
# with GDAL_NUM_THREADS=1 and the same 256 MB GDAL cache. No warping, no
# arithmetic, nothing written: only the decoding that any tool must do.
#
# Also: the full COG pair with --threads 1, and two peers on the COG pairs:
#  - numpy IR-MAD: IR-MAD written as its users write it (whole arrays in
#    memory, as in M. Canty's published Python; rasterio reads the 6 bands,
#    20 m bands resampled to 10 m on read; chi-square and change probability
#    written as a GeoTIFF). Installed in a venv under <bench_data>/venv with
#    pip (numpy, scipy, rasterio). Run with an address-space limit of
#    PEER_MEM_GB (default 20) GiB so that running out of memory is a clean
#    failure and not the kernel's OOM killer.
#  - Orfeo ToolBox otbcli_MultivariateAlterationDetector (Debian otb-bin,
#    installed here) on 6-band VRT stacks (20 m bands resampled to 10 m by
#    the VRT, bilinear), ITK/OTB threads = 2.
# Peers are installed for benchmarking only; they are not dependencies of
# dunewatch. A peer that cannot finish gets that as its result.
#
# Every run is stopped at CAP seconds (default 1800) and reported as such.
#
# With METHODS set (a list of --method names), it instead runs dunewatch
# once per method on the full COG pair (made with --no-jp2 when missing: no
# JPEG2000 needed) and prints, per method, wall, CPU and peak RSS of the
# whole run and the score pass's wall time (run.json), each also as a
# multiple of the first method's: e.g. the model-based methods' cost against
# the combined score. With THREADS=1 the score pass's wall time is its CPU
# time. Results in <bench_data>/runs/methods.tsv.
#
# Environment: THREADS (default 2), PEERS=0 to skip the peers, PEER_MEM_GB, CAP,
# DETECT_ARGS (extra options for every dunewatch run, e.g. --no-sites), METHODS.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
TABLE_ONLY=0
DATA_ARG=bench_data
for a in "$@"; do
  case "$a" in
    --table) TABLE_ONLY=1 ;;
    -h|--help) sed -n 2,40p "$0"; exit 0 ;;
    *) DATA_ARG="$a" ;;
  esac
done
DATA=$(realpath -m "$DATA_ARG")
THREADS=${THREADS:-2}
PEERS=${PEERS:-1}
PEER_MEM_GB=${PEER_MEM_GB:-20}
CAP=${CAP:-1800}
DETECT_ARGS=${DETECT_ARGS:-}
METHODS=${METHODS:-}
OUT="$DATA/runs"
mkdir -p "$OUT"
RESULTS="$OUT/results.tsv"
[ -z "$METHODS" ] || RESULTS="$OUT/methods.tsv"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
APT_UPDATED=0
apt_install() {
  if [ $APT_UPDATED -eq 0 ]; then $SUDO apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}
log() { echo "bench: $*" >&2; }

if [ "$TABLE_ONLY" = 0 ]; then
: >"$RESULTS"
# --- tools and data ---------------------------------------------------------
[ -x /usr/bin/time ] || apt_install time
/usr/bin/python3 -c 'import numpy; from osgeo import gdal' 2>/dev/null || apt_install python3-numpy python3-gdal
cargo build --release -q || { log "cargo build --release failed"; exit 1; }
# A private copy: target/release may be rebuilt while the benchmark runs.
BIN="$OUT/dunewatch"
cp "$ROOT/target/release/dunewatch" "$BIN"
log "dunewatch at $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo ' + uncommitted src changes')"
if [ -n "$METHODS" ]; then
  [ -f "$DATA/full/cog/after/B12.tif" ] || bash scripts/make_bench_scene.sh "$DATA" --no-jp2
else
[ -f "$DATA/full/cog/after/B12.tif" ] && [ -n "$(ls -d "$DATA"/full/safe/after/*.SAFE 2>/dev/null)" ] || bash scripts/make_bench_scene.sh "$DATA"
[ -f "$DATA/half/cog/after/B12.tif" ] || bash scripts/make_bench_scene.sh "$DATA" --half --no-jp2
[ -f "$DATA/full/sparse/after/B12.tif" ] || /usr/bin/python3 scripts/make_sparse_pair.py "$DATA"
HALF_COG="$DATA/half/cog"
SPARSE="$DATA/full/sparse"
SAFE_B=$(ls -d "$DATA"/full/safe/before/*.SAFE)
SAFE_A=$(ls -d "$DATA"/full/safe/after/*.SAFE)
fi
FULL_COG="$DATA/full/cog"

# --- measuring ----------------------------------------------------------------
# measure NAME CMD...: runs CMD under /usr/bin/time -v; appends
# name, exit, wall s, cpu s, peak RSS MiB, load average at start to $RESULTS.
measure() {
  local name=$1; shift
  local tf="$OUT/$name.time" lf="$OUT/$name.log"
  local load
  # Let the run before settle (its written and deleted files): runs right
  # after the JPEG2000 run were 10-20% slower than the same runs on their
  # own.
  sync
  sleep 3
  load=$(cut -d' ' -f1 /proc/loadavg)
  log "$name: $*"
  /usr/bin/time -v -o "$tf" timeout "$CAP" "$@" >"$lf" 2>&1
  local rc=$?
  local wall cpu rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$tf")
  cpu=$(awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {printf "%.1f", u+s}' "$tf")
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$tf")
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$rc" "$wall" "$cpu" "$rss" "$load" >>"$RESULTS"
  if [ $rc -ne 0 ]; then log "$name: exit $rc: $(tail -n 3 "$lf" | tr '\n' ' ')"; fi
  return 0
}

detect() { # name before after [extra args]
  local name=$1 b=$2 a=$3; shift 3
  rm -rf "$OUT/$name.out"
  # shellcheck disable=SC2086
  measure "$name" "$BIN" detect --before "$b" --after "$a" --out "$OUT/$name.out" --quiet $DETECT_ARGS "$@"
}

# The files dunewatch decodes for a pair, as it resolves them.
decode_list() { # before after -> one path a line
  for s in "$1" "$2"; do
    if [ -f "$s/MTD_MSIL2A.xml" ]; then
      find "$s/GRANULE" -name '*.jp2' | grep -E '_(B02|B03|B04|B08)_10m|_(B11|B12|SCL)_20m'
    else
      for b in B02 B03 B04 B08 B11 B12; do echo "$s/$b.tif"; done
    fi
  done
}

cat >"$OUT/decode_floor.py" <<'EOF'
# Decodes every file given once, whole, at native resolution (UInt16), in
# strips of 1024 rows, over N worker processes; nothing is kept or written.
import os, sys, time
from multiprocessing import Pool
os.environ["GDAL_NUM_THREADS"] = "1"
from osgeo import gdal
gdal.UseExceptions()
gdal.SetCacheMax(256 * 1024 * 1024)

def decode(path):
    ds = gdal.Open(path)
    b = ds.GetRasterBand(1)
    w, h = ds.RasterXSize, ds.RasterYSize
    total = 0
    for y in range(0, h, 1024):
        a = b.ReadAsArray(0, y, w, min(1024, h - y))
        total += int(a[::97, ::97].sum())  # touch the data
    return w * h

if __name__ == "__main__":
    n = int(sys.argv[1])
    files = sorted(sys.argv[2:], key=lambda f: -os.path.getsize(f))
    t = time.time()
    with Pool(n) as p:
        px = sum(p.map(decode, files, chunksize=1))
    print(f"decoded {len(files)} files, {px / 1e6:.0f} Mpx, in {time.time() - t:.1f} s with {n} processes")
EOF

floor() { # name before after
  local name=$1 b=$2 a=$3
  mapfile -t files < <(decode_list "$b" "$a")
  measure "$name" /usr/bin/python3 "$OUT/decode_floor.py" "$THREADS" "${files[@]}"
}

log "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(free -g | awk '/Mem:/ {print $2}') GiB"
if [ -n "$METHODS" ]; then
  # --- one run per method on the full COG pair ----------------------------------
  for m in $METHODS; do
    detect "method_$m" "$FULL_COG/before" "$FULL_COG/after" --threads "$THREADS" --method "$m"
  done
else
# --- dunewatch and its decode floor --------------------------------------------
floor floor_full_cog "$FULL_COG/before" "$FULL_COG/after"
detect dw_full_cog "$FULL_COG/before" "$FULL_COG/after" --threads "$THREADS"
detect dw_full_cog_1t "$FULL_COG/before" "$FULL_COG/after" --threads 1
floor floor_full_jp2 "$SAFE_B" "$SAFE_A"
detect dw_full_jp2 "$SAFE_B" "$SAFE_A" --threads "$THREADS"
floor floor_half_cog "$HALF_COG/before" "$HALF_COG/after"
detect dw_half_cog "$HALF_COG/before" "$HALF_COG/after" --threads "$THREADS"
floor floor_full_sparse "$SPARSE/before" "$SPARSE/after"
detect dw_full_sparse "$SPARSE/before" "$SPARSE/after" --threads "$THREADS"

# --- peers ----------------------------------------------------------------------
stack_vrt() { # scene dir, out vrt: 6 bands at 10 m
  gdalbuildvrt -q -overwrite -separate -resolution highest -r bilinear "$2" \
    "$1/B02.tif" "$1/B03.tif" "$1/B04.tif" "$1/B08.tif" "$1/B11.tif" "$1/B12.tif"
}

if [ "$PEERS" = 1 ]; then
  VENV="$DATA/venv"
  if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import numpy, scipy, rasterio' 2>/dev/null; then
    /usr/bin/python3 -m venv --help >/dev/null 2>&1 || apt_install python3-venv
    /usr/bin/python3 -m venv "$VENV" && "$VENV/bin/pip" install -q numpy scipy rasterio
  fi
  cat >"$OUT/irmad_numpy.py" <<'EOF'
# IR-MAD as users write it with numpy + rasterio: whole images in memory
# (after M. Canty, "Image Analysis, Classification and Change Detection in
# Remote Sensing", iMad): weighted covariance of the stacked bands, the
# generalised eigenproblem through a Cholesky factor, MAD variates, chi-square,
# weights = no-change probability, until the canonical correlations settle.
import sys, time
import numpy as np
import rasterio
from rasterio.enums import Resampling
from scipy.stats import chi2

BANDS = ["B02", "B03", "B04", "B08", "B11", "B12"]

def read(scene):
    with rasterio.open(f"{scene}/B02.tif") as ref:
        h, w, profile = ref.height, ref.width, ref.profile
    out = []
    for b in BANDS:
        with rasterio.open(f"{scene}/{b}.tif") as src:
            out.append(src.read(1, out_shape=(h, w), resampling=Resampling.bilinear).astype(float))
    return np.array(out), profile

t0 = time.time()
img1, profile = read(sys.argv[1])
img2, _ = read(sys.argv[2])
p, rows, cols = img1.shape
X = img1.reshape(p, -1).T
Y = img2.reshape(p, -1).T
del img1, img2
valid = np.all(X > 0, axis=1) & np.all(Y > 0, axis=1)
X, Y = X[valid], Y[valid]
print(f"read {rows} x {cols} x {p} x 2 in {time.time() - t0:.0f} s", flush=True)
w = np.ones(X.shape[0])
old_rho = np.zeros(p)
for it in range(30):
    S = np.cov(np.hstack((X, Y)), rowvar=False, aweights=w)
    s11, s12, s22 = S[:p, :p], S[:p, p:], S[p:, p:]
    m = np.average(np.hstack((X, Y)), axis=0, weights=w)
    L = np.linalg.cholesky(s11)
    Li = np.linalg.inv(L)
    C = Li @ s12 @ np.linalg.inv(s22) @ s12.T @ Li.T
    lam, U = np.linalg.eigh((C + C.T) / 2)
    idx = np.argsort(lam)[::-1]
    lam, U = lam[idx], U[:, idx]
    A = Li.T @ U
    rho = np.sqrt(np.clip(lam, 0, 1))
    B = np.linalg.inv(s22) @ s12.T @ A / rho
    sig2 = 2 * (1 - rho)
    MAD = (X - m[:p]) @ A - (Y - m[p:]) @ B
    Z = np.sum(MAD * MAD / sig2, axis=1)
    w = 1 - chi2.cdf(Z, p)
    delta = np.max(np.abs(rho - old_rho))
    old_rho = rho
    print(f"iteration {it + 1}: rho {np.round(rho, 4)} delta {delta:.5f} ({time.time() - t0:.0f} s)", flush=True)
    if delta < 1e-4:
        break
out = np.full(rows * cols, -1, dtype=np.float32)
out[valid] = 1 - w
profile.update(dtype="float32", count=1, nodata=-1, compress="deflate", tiled=True, blockxsize=512, blockysize=512, predictor=1, BIGTIFF="IF_SAFER")
with rasterio.open(sys.argv[3], "w", **profile) as dst:
    dst.write(out.reshape(rows, cols), 1)
print(f"done in {time.time() - t0:.0f} s")
EOF
  peer_numpy() { # name scene_dir
    measure "$1" bash -c "ulimit -v $((PEER_MEM_GB * 1024 * 1024)); OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS exec '$VENV/bin/python' '$OUT/irmad_numpy.py' '$2/before' '$2/after' '$OUT/$1.tif'"
    rm -f "$OUT/$1.tif"
  }
  peer_numpy numpy_irmad_full_cog "$FULL_COG"
  peer_numpy numpy_irmad_half_cog "$HALF_COG"

  command -v otbcli_MultivariateAlterationDetector >/dev/null 2>&1 || apt_install otb-bin
  peer_otb() { # name scene_dir
    stack_vrt "$2/before" "$OUT/$1.before.vrt"
    stack_vrt "$2/after" "$OUT/$1.after.vrt"
    measure "$1" env ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS="$THREADS" OTB_MAX_RAM_HINT=256 GDAL_CACHEMAX=256 \
      otbcli_MultivariateAlterationDetector -in1 "$OUT/$1.before.vrt" -in2 "$OUT/$1.after.vrt" -out "$OUT/$1.tif" float
    rm -f "$OUT/$1.tif"
  }
  if command -v otbcli_MultivariateAlterationDetector >/dev/null 2>&1; then
    peer_otb otb_mad_full_cog "$FULL_COG"
    peer_otb otb_mad_half_cog "$HALF_COG"
  else
    printf 'otb_mad_full_cog\t127\t\t\t\t\n' >>"$RESULTS"
  fi
fi
fi # METHODS

fi # TABLE_ONLY

if [ -n "$METHODS" ]; then
  # shellcheck disable=SC2086
  /usr/bin/python3 - "$RESULTS" "$OUT" "$THREADS" $METHODS <<'EOF'
import json, os, sys
res, out, threads, methods = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
rows = {}
for line in open(res):
    f = line.rstrip("\n").split("\t")
    rows[f[0]] = dict(rc=int(f[1] or 127), wall=float(f[2] or 0), cpu=float(f[3] or 0), rss=int(f[4] or 0), load=f[5])

def score_s(m):
    try:
        return json.load(open(os.path.join(out, f"method_{m}.out", "run.json")))["detect"]["timings_s"]["score"]
    except Exception:
        return None

def ratio(a, b):
    return f"{a / b:.2f}" if a and b else ""

print()
print(f"full COG 10980^2, --threads {threads}")
print("| method | wall s | CPU s | peak RSS MiB | score pass s | wall / first | CPU / first | score / first | load at start |")
print("|---|---|---|---|---|---|---|---|---|")
first = None
for m in methods:
    r = rows.get(f"method_{m}")
    if r is None:
        continue
    if r["rc"] != 0:
        print(f"| {m} | failed (exit {r['rc']}, see {out}/method_{m}.log) | | {r['rss']} | | | | | {r['load']} |")
        continue
    s = score_s(m)
    if first is None:
        first = (r, s)
    fr, fs = first
    sc = "" if s is None else f"{s:.1f}"
    print(f"| {m} | {r['wall']:.1f} | {r['cpu']:.1f} | {r['rss']} | {sc} | {ratio(r['wall'], fr['wall'])} | {ratio(r['cpu'], fr['cpu'])} | {ratio(s, fs)} | {r['load']} |")
EOF
  echo
  echo "raw results: $RESULTS; logs: $OUT/method_*.log, $OUT/method_*.time"
  exit 0
fi

# --- table --------------------------------------------------------------------
/usr/bin/python3 - "$RESULTS" "$OUT" "$CAP" <<'EOF'
import json, os, sys
rows = {}
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    rows[f[0]] = dict(rc=int(f[1] or 127), wall=float(f[2] or 0), cpu=float(f[3] or 0), rss=int(f[4] or 0), load=f[5])
out = sys.argv[2]
cap = int(sys.argv[3])

def status(name):
    r = rows.get(name)
    if r is None:
        return None, "not run"
    if r["rc"] in (124, 143):
        return r, f"stopped at the {cap} s cap"
    if r["rc"] != 0:
        log = open(os.path.join(out, name + ".log"), errors="replace").read().strip().splitlines()
        why = "out of memory" if any("MemoryError" in l or "memory" in l.lower() for l in log[-20:]) else (log[-1][:80] if log else f"exit {r['rc']}")
        return r, f"did not finish ({why}) after {r['wall']:.0f} s"
    return r, None

def stages(name):
    try:
        j = json.load(open(os.path.join(out, name + ".out", "run.json")))
        d = j["detect"]["timings_s"]
        st = j.get("sites", {}).get("timings_s", {})
        sites = f", sites {st['total']:.0f} s ({j['sites'].get('sites', '?')} sites)" if "total" in st else ""
        return f"fit {d['fit']:.0f} s, score {d['score']:.0f} s, mask {d.get('mask', 0):.0f} s, COG {j['timings_s']['write_cog']:.0f} s{sites}"
    except Exception:
        return ""

lines = [
    ("full COG 10980^2", "dunewatch", "dw_full_cog", "floor_full_cog"),
    ("full COG 10980^2", "dunewatch --threads 1", "dw_full_cog_1t", "floor_full_cog"),
    ("full JP2 SAFE L2A", "dunewatch", "dw_full_jp2", "floor_full_jp2"),
    ("half COG 5490^2", "dunewatch", "dw_half_cog", "floor_half_cog"),
    ("full COG, few changes", "dunewatch", "dw_full_sparse", "floor_full_sparse"),
    ("full COG 10980^2", "numpy+rasterio IR-MAD", "numpy_irmad_full_cog", None),
    ("half COG 5490^2", "numpy+rasterio IR-MAD", "numpy_irmad_half_cog", None),
    ("full COG 10980^2", "OTB MultivariateAlterationDetector", "otb_mad_full_cog", None),
    ("half COG 5490^2", "OTB MultivariateAlterationDetector", "otb_mad_half_cog", None),
]
print()
print("| pair | tool | wall s | CPU s | CPU/wall | peak RSS MiB | decode floor s (CPU s) | wall / floor | load at start | stages |")
print("|---|---|---|---|---|---|---|---|---|---|")
for pair, tool, name, fl in lines:
    r, err = status(name)
    if r is None and err == "not run":
        continue
    if err:
        print(f"| {pair} | {tool} | {err} | | | {r['rss']} | | | {r['load']} | |")
        continue
    fr = rows.get(fl) if fl else None
    fs = f"{fr['wall']:.1f} ({fr['cpu']:.0f})" if fr and fr["rc"] == 0 else ""
    ratio = f"{r['wall'] / fr['wall']:.2f}" if fr and fr["rc"] == 0 and fr["wall"] > 0 else ""
    print(f"| {pair} | {tool} | {r['wall']:.1f} | {r['cpu']:.1f} | {r['cpu'] / max(r['wall'], 1e-9):.2f} | {r['rss']} | {fs} | {ratio} | {r['load']} | {stages(name) if name.startswith('dw_') else ''} |")

def wall(n):
    r = rows.get(n)
    return r["wall"] if r and r["rc"] == 0 else None

print()
a, b = wall("dw_full_cog_1t"), wall("dw_full_cog")
if a and b:
    print(f"speed-up 2 threads vs 1 (full COG): {a / b:.2f}x")
a, b = wall("dw_full_cog"), wall("dw_half_cog")
if a and b:
    print(f"full / half (COG): {a / b:.2f}x wall for 4x the pixels")
for peer, label in [("numpy_irmad", "numpy IR-MAD"), ("otb_mad", "OTB MAD")]:
    for size in ["full", "half"]:
        p, d = wall(f"{peer}_{size}_cog"), wall(f"dw_{size}_cog")
        if p and d:
            print(f"{label} / dunewatch ({size} COG): {p / d:.2f}x")
EOF
echo
echo "raw results: $RESULTS; logs: $OUT/*.log, $OUT/*.time"
