#!/usr/bin/env bash
# Benchmarks dunewatch on an OSCD-style folder: for every labelled city, runs
#   dunewatch detect --before images/<city>/imgs_1 --after images/<city>/imgs_2 --out <out>/runs/<city> --quiet
#   dunewatch eval --pred <out>/runs/<city> --truth labels/<city>/<city>-cm.tif --json
# then prints a per-city table and the aggregate (confusion counts summed over
# cities, figures computed from the sums), and writes <out>/eval.csv.
#
# Usage: scripts/eval_oscd.sh <oscd dir> [out dir]     (out dir default: out/eval_oscd)
# Extra detect options (e.g. DETECT_ARGS="--method cva") are passed through.
# LOCO=1: leave-one-city-out figures for the learned method: for every city,
#   dunewatch train --oscd <oscd dir> --exclude <city> --out <out>/models/<city>.json
# (trained on the other labelled cities only), then detect with
#   --method learned --model <out>/models/<city>.json
# TRAIN_ARGS (e.g. "--threads 1") are passed to train.
# Uses target/release/dunewatch, building it when missing. Needs python3 (stdlib only).
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
bin="$root/target/release/dunewatch"
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

python3 - "$out" "${cities[@]}" <<'PY'
import csv, json, os, sys

out, cities = sys.argv[1], sys.argv[2:]

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
    rows.append(row)

agg = {"city": "ALL", **{k: total[k] for k in ("tp", "fp", "fn", "tn", "masked")}}
agg.update(figures(total["tp"], total["fp"], total["fn"], total["tn"]))
agg["objects_over_1ha"], agg["object_recall_over_1ha"] = total["obj1"], ratio(total["det1"], total["obj1"])
agg["objects"], agg["object_recall"] = total["obj"], ratio(total["det"], total["obj"])

cols = ["city", "tp", "fp", "fn", "tn", "masked", "precision", "recall", "f1", "iou", "kappa",
        "objects_over_1ha", "object_recall_over_1ha", "objects", "object_recall"]
path = os.path.join(out, "eval.csv")
with open(path, "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=cols)
    w.writeheader()
    for row in rows + [agg]:
        w.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in row.items()})

head = f"{'city':<12} {'TP':>10} {'FP':>10} {'FN':>10} {'TN':>11} {'prec':>6} {'recall':>6} {'F1':>6} {'IoU':>6} {'obj>1ha':>7}"
print(head)
print("-" * len(head))
def line(row):
    print(f"{row['city']:<12} {row['tp']:>10} {row['fp']:>10} {row['fn']:>10} {row['tn']:>11} "
          f"{row['precision']:>6.3f} {row['recall']:>6.3f} {row['f1']:>6.3f} {row['iou']:>6.3f} "
          f"{row['object_recall_over_1ha']:>7.3f}")
for row in rows:
    line(row)
print("-" * len(head))
line(agg)
print(f"\nobj>1ha: recall of truth objects over 1 ha (detected = at least one pixel predicted change).")
print(f"ALL: confusion counts summed over cities. CSV: {path}")
PY

if [ ${#failed[@]} -gt 0 ]; then
  echo "failed: ${failed[*]}" >&2
  exit 1
fi
