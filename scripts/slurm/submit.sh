#!/usr/bin/env bash
# Submits a dunewatch batch to Slurm: a job array of N tasks (shard K/N each,
# scripts/slurm/batch.sbatch), and an index job that runs after the array
# has ended, however its tasks ended (afterany), to write OUT's index of all
# pairs (batch.csv, sites.geojson, sites.csv, index.html).
#
#   scripts/slurm/submit.sh PAIRS OUT N [dunewatch batch options]
#
# Prints the array's and the index job's ids ("array <id>", "index <id>", one
# a line). Job logs go to OUT/.slurm/. Extra sbatch options for both jobs
# (partition, account, time limit, ...) come from $SBATCH_ARGS, e.g.
#   SBATCH_ARGS="--partition=short --time=02:00:00" scripts/slurm/submit.sh pairs.csv /scratch/watch 20
# The binary is $DUNEWATCH, else `dunewatch` on the nodes' PATH. Submitting
# again with the same PAIRS and OUT runs only the pairs without a finished
# run.
set -euo pipefail

if [ $# -lt 3 ]; then
  echo "usage: $0 PAIRS OUT N [dunewatch batch options]" >&2
  exit 2
fi
pairs=$1
out=$2
n=$3
shift 3
case "$n" in '' | *[!0-9]* | 0)
  echo "$0: N must be a positive number of array tasks, got '$n'" >&2
  exit 2
  ;;
esac
[ -e "$pairs" ] || {
  echo "$0: $pairs: no such list of pairs" >&2
  exit 2
}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out/.slurm"
read -r -a extra <<<"${SBATCH_ARGS:-}"

array=$(sbatch --parsable "${extra[@]}" --array="1-$n" \
  --output="$out/.slurm/batch-%A_%a.out" \
  "$here/batch.sbatch" "$pairs" "$out" "$@")
array=${array%%;*}
index=$(sbatch --parsable "${extra[@]}" --dependency="afterany:$array" \
  --job-name=dunewatch-index --cpus-per-task=1 \
  --output="$out/.slurm/index-%j.out" \
  "$here/batch.sbatch" "$pairs" "$out" --index-only)
index=${index%%;*}
echo "array $array"
echo "index $index"
