#!/usr/bin/env bash
# The samplers on the real objective: a study of N trials (default 30) on the shipped data per
# sampler, same seed, one job each, one after the other. Prints the best validation accuracy, the
# trial that reached it, the wall time and the time spent in the sampler.
# Usage: benches/sampler_study.sh [TRIALS] [SEED] [SAMPLERS...]   (default: 30 42 auto tpe)
set -euo pipefail
cd "$(dirname "$0")/.."
trials=${1:-30}
seed=${2:-42}
shift $(( $# > 2 ? 2 : $# ))
samplers=("${@:-auto}")
[ $# -eq 0 ] && samplers=(auto tpe)
cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/hptune"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '%-6s %8s %12s %10s %10s %12s\n' sampler trials "best val acc" "at trial" "wall s" "sampler s"
for s in "${samplers[@]}"; do
  start=$(date +%s.%N)
  "$bin" --db "$work/s.db" --verbose tune --study "$s" --trials "$trials" --seed "$seed" --sampler "$s" \
    --out "$work/$s" > /dev/null 2> "$work/$s.log"
  end=$(date +%s.%N)
  sampler_s=$(sed -nE 's/^costs: sampler: [0-9]+ events, ([0-9.]+) s(, longest [0-9.]+ s)?$/\1/p' "$work/$s.log")
  row=$("$bin" --db "$work/s.db" query --format csv \
    "SELECT round(max(value) * 100, 2) || '%', arg_max(number, value) FROM trials WHERE study_name = '$s' AND state = 'COMPLETE'" | tail -1)
  printf '%-6s %8s %12s %10s %10.1f %12s\n' "$s" "$trials" "${row%%,*}" "${row##*,}" "$(echo "$end - $start" | bc -l)" "$sampler_s"
done
