#!/usr/bin/env bash
# Runs each parser fuzz target (tests/fuzz_parsers.rs, proptest) for a time
# budget: SECONDS per target (default 60). A target that runs out its budget
# without a failure passes; a failing case is printed (minimised) and the
# script exits non-zero.
#   scripts/fuzz.sh          # 60 s per target
#   scripts/fuzz.sh 300      # 5 minutes per target
set -euo pipefail
cd "$(dirname "$0")/.."
budget="${1:-60}"
targets=(safe_product_xml batch_pairs_csv aoi_geojson watchlist_geojson tiff_tile_decoder)
cargo test --release --test fuzz_parsers --no-run
failed=0
for t in "${targets[@]}"; do
    echo "== $t (${budget} s)"
    set +e
    PROPTEST_CASES=100000000 timeout --signal=INT "$budget" \
        cargo test --release --test fuzz_parsers -q -- --exact "$t" 2>&1 | tail -20
    rc=${PIPESTATUS[0]}
    set -e
    case "$rc" in
        0 | 124 | 130) echo "   clean for its budget" ;;
        *) echo "   FAILED (exit $rc)"; failed=1 ;;
    esac
done
exit "$failed"
