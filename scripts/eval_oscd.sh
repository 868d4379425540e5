#!/usr/bin/env bash
# Benchmarks dunewatch on an OSCD-style folder: for every labelled city, runs
#   dunewatch detect --before images/<city>/imgs_1 --after images/<city>/imgs_2 --out <out>/runs/<city> --quiet
#   dunewatch eval --pred <out>/runs/<city> --truth labels/<city>/<city>-cm.tif --json
# then prints a per-city table and the aggregate (confusion counts summed over
# cities, figures computed from the sums), and writes <out>/eval.csv.
# Figures per city: pixel precision, recall, F1, IoU; recall of labelled
# objects by size class (< 0.1 ha, 0.1-1 ha, > 1 ha); precision of the top
# 10, 20 and 50 sites by rank (a site is true when >= 30 % or >= 5 of its
# pixels are labelled change; see `dunewatch eval --help`). Aggregates: object
# recall = summed detected / summed objects; top-k precision = summed true
# sites / summed min(k, sites of the city). Top-k needs the sites step: do not
# pass --no-sites.
#
# Usage: scripts/eval_oscd.sh <oscd dir> [out dir]     (out dir default: out/eval_oscd)
# Extra detect options (e.g. DETECT_ARGS="--method cva") are passed through.
# LOCO=1: leave-one-city-out figures for the learned method: for every city,
#   dunewatch train --oscd <oscd dir> --exclude <city> --out <out>/models/<city>.json
# (trained on the other labelled cities only), then detect with
#   --method learned --model <out>/models/<city>.json
# TRAIN_ARGS (e.g. "--threads 1") are passed to train.
# Uses target/release/dunewatch (or $DUNEWATCH), building it when missing. Needs python3 (stdlib only).
# Exits 1 if any city failed (the others are still scored).
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 <oscd dir> [out dir]" >&2
  exit 2
fi
root="$(cd "$(dirname "$0")/.." && pwd)"
oscd="$(cd "$1" && pwd)"
out="${2:-$root/out/eval_oscd}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
bin="${DUNEWATCH:-$root/target/release/dunewatch}"
command -v python3 >/dev/null || { echo "$0: python3 is needed for the table" >&2; exit 1; }

if [ ! -x "$bin" ]; then
  echo "building $bin ..." >&2
  (cd "$root" && cargo build --release --quiet)
fi

[ -d "$oscd/labels" ] && [ -d "$oscd/images" ] || { echo "$0: $oscd has no labels/ and images/ folders" >&2; exit 1; }

read -r -a detect_args <<< "${DETECT_ARGS:-}"
failed=()
cities=()
for label_dir in "$oscd"/labels/*/; do
  city="$(basename "$label_dir")"
  label="$label_dir$city-cm.tif"
  before="$oscd/images/$city/imgs_1"
  after="$oscd/images/$city/imgs_2"
  if [ ! -f "$label" ] || [ ! -d "$before" ] || [ ! -d "$after" ]; then
    echo "skip $city: needs $label, $before and $after" >&2
    continue
  fi
  run="$out/runs/$city"
  mkdir -p "$run"
  loco_args=()
  if [ -n "${LOCO:-}" ]; then
    echo "$city: train on the other cities ..." >&2
    mkdir -p "$out/models"
    read -r -a train_args <<< "${TRAIN_ARGS:-}"
    if ! "$bin" train --oscd "$oscd" --exclude "$city" --out "$out/models/$city.json" --quiet "${train_args[@]}"; then
      echo "$city: train failed" >&2
      failed+=("$city")
      continue
    fi
    loco_args=(--method learned --model "$out/models/$city.json")
  fi
  echo "$city: detect ..." >&2
  if ! "$bin" detect --before "$before" --after "$after" --out "$run" --quiet "${loco_args[@]}" "${detect_args[@]}"; then
    echo "$city: detect failed" >&2
    failed+=("$city")
    continue
  fi
  if ! "$bin" eval --pred "$run" --truth "$label" --json > "$run/eval.json.tmp"; then
    echo "$city: eval failed" >&2
    failed+=("$city")
    continue
  fi
  mv "$run/eval.json.tmp" "$run/eval.json"
  cities+=("$city")
done

if [ ${#cities[@]} -eq 0 ]; then
  echo "$0: no city was scored" >&2
  exit 1
fi

method="${DETECT_ARGS:-}"
[ -n "${LOCO:-}" ] && method="learned, leave one city out ${method}"
[ -n "$method" ] || method="default"
python3 - "$out" "$method" "${cities[@]}" <<'PY'
import csv, json, os, sys

out, method, cities = sys.argv[1], sys.argv[2], sys.argv[3:]
KS = (10, 20, 50)
CLASSES = (("under_0_1_ha", "obj<0.1ha"), ("from_0_1_to_1_ha", "obj0.1-1ha"), ("over_1_ha", "obj>1ha"))

def ratio(n, d):
    return n / d if d else 0.0  # 0/0 = 0, as dunewatch eval reports it

def figures(tp, fp, fn, tn):
    kappa_d = (tp + fp) * (fp + tn) + (tp + fn) * (fn + tn)
    return {
        "precision": ratio(tp, tp + fp),
        "recall": ratio(tp, tp + fn),
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
        "iou": ratio(tp, tp + fp + fn),
        "kappa": ratio(2 * (tp * tn - fn * fp), kappa_d),
    }

rows = []
total = {"tp": 0, "fp": 0, "fn": 0, "tn": 0, "masked": 0, "obj1": 0, "det1": 0, "obj": 0, "det": 0}
for city in cities:
    with open(os.path.join(out, "runs", city, "eval.json")) as f:
        r = json.load(f)
    px, big, allo = r["pixels"], r["objects"]["over_1_ha"], r["objects"]["all"]
    row = {"city": city}
    for k in ("tp", "fp", "fn", "tn", "masked"):
        row[k] = px[k]
        total[k] += px[k]
    row.update({k: px[k] for k in ("precision", "recall", "f1", "iou", "kappa")})
    row["objects_over_1ha"], row["object_recall_over_1ha"] = big["objects"], big["recall"]
    row["objects"], row["object_recall"] = allo["objects"], allo["recall"]
    total["obj1"] += big["objects"]; total["det1"] += big["detected"]
    total["obj"] += allo["objects"]; total["det"] += allo["detected"]
    for key, _ in CLASSES:
        c = r["objects"][key]
        row[f"objects_{key}"], row[f"object_recall_{key}"] = c["objects"], c["recall"]
        total[f"obj_{key}"] = total.get(f"obj_{key}", 0) + c["objects"]
        total[f"det_{key}"] = total.get(f"det_{key}", 0) + c["detected"]
    tops = {t["k"]: t for t in (r.get("sites") or {}).get("top", [])}
    row["sites"] = r["sites"]["sites"] if r.get("sites") else ""
    for k in KS:
        t = tops.get(k)
        if t is None:  # run without sites
            row[f"top{k}_sites"] = row[f"top{k}_true"] = row[f"top{k}_precision"] = ""
            continue
        row[f"top{k}_sites"], row[f"top{k}_true"], row[f"top{k}_precision"] = t["sites"], t["true_sites"], t["precision"]
        total[f"top{k}_sites"] = total.get(f"top{k}_sites", 0) + t["sites"]
        total[f"top{k}_true"] = total.get(f"top{k}_true", 0) + t["true_sites"]
    rows.append(row)

agg = {"city": "ALL", **{k: total[k] for k in ("tp", "fp", "fn", "tn", "masked")}}
agg.update(figures(total["tp"], total["fp"], total["fn"], total["tn"]))
agg["objects_over_1ha"], agg["object_recall_over_1ha"] = total["obj1"], ratio(total["det1"], total["obj1"])
agg["objects"], agg["object_recall"] = total["obj"], ratio(total["det"], total["obj"])
for key, _ in CLASSES:
    agg[f"objects_{key}"] = total[f"obj_{key}"]
    agg[f"object_recall_{key}"] = ratio(total[f"det_{key}"], total[f"obj_{key}"])
agg["sites"] = sum(r["sites"] for r in rows if r["sites"] != "") if any(r["sites"] != "" for r in rows) else ""
for k in KS:
    if f"top{k}_sites" in total:
        agg[f"top{k}_sites"], agg[f"top{k}_true"] = total[f"top{k}_sites"], total[f"top{k}_true"]
        agg[f"top{k}_precision"] = ratio(total[f"top{k}_true"], total[f"top{k}_sites"])
    else:
        agg[f"top{k}_sites"] = agg[f"top{k}_true"] = agg[f"top{k}_precision"] = ""
for row in rows + [agg]:
    row["method"] = method

cols = ["method", "city", "tp", "fp", "fn", "tn", "masked", "precision", "recall", "f1", "iou", "kappa",
        "objects_over_1ha", "object_recall_over_1ha", "objects", "object_recall"]
cols += [f"{p}_{key}" for key, _ in CLASSES for p in ("objects", "object_recall")]
cols += ["sites"] + [f"top{k}_{p}" for k in KS for p in ("sites", "true", "precision")]
path = os.path.join(out, "eval.csv")
with open(path, "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=cols)
    w.writeheader()
    for row in rows + [agg]:
        w.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in row.items()})

def topk(row, k):
    p, n = row[f"top{k}_precision"], row[f"top{k}_sites"]
    if p == "":
        return "-"
    # Fewer sites than k: precision over the sites there are, their number in brackets.
    return f"{p:.3f}" if n >= k or row["city"] == "ALL" else f"{p:.2f}({n})"

head = (f"{'city':<12} {'TP':>8} {'FP':>8} {'FN':>8} {'prec':>6} {'recall':>6} {'F1':>6} {'IoU':>6} "
        + " ".join(f"{name:>10}" for _, name in CLASSES) + " " + " ".join(f"{'top' + str(k):>8}" for k in KS))
print(f"method: {method}")
print(head)
print("-" * len(head))
def line(row):
    print(f"{row['city']:<12} {row['tp']:>8} {row['fp']:>8} {row['fn']:>8} "
          f"{row['precision']:>6.3f} {row['recall']:>6.3f} {row['f1']:>6.3f} {row['iou']:>6.3f} "
          + " ".join(f"{row[f'object_recall_{key}']:>10.3f}" for key, _ in CLASSES) + " "
          + " ".join(f"{topk(row, k):>8}" for k in KS))
for row in rows:
    line(row)
print("-" * len(head))
line(agg)
print(f"\nobj<0.1ha, obj0.1-1ha, obj>1ha: recall of truth objects by size (detected = at least one pixel predicted change).")
print(f"top10/20/50: precision of the first k sites by rank (true = >= 30 % or >= 5 of its pixels labelled change);")
print(f"  a city with fewer than k sites: precision over its sites, their number in brackets.")
print(f"ALL: counts summed over cities (top-k: summed true sites / summed min(k, sites)). CSV: {path}")
PY

if [ ${#failed[@]} -gt 0 ]; then
  echo "failed: ${failed[*]}" >&2
  exit 1
fi
