#!/usr/bin/env bash
# Store, import and query numbers for the notes. Usage: benches/run.sh
# Prints wall time and peak memory (max RSS from /usr/bin/time) for each measurement.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/hptune"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
db="$work/bench.db"

measure() { # label rows command...
  local label=$1 rows=$2; shift 2
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" > /dev/null
  read -r secs kb < "$work/time"
  if [ "$rows" -gt 0 ]; then
    printf '%-48s %8.2f s %10.0f rows/s %8.0f MB peak\n' "$label" "$secs" "$(echo "$rows / $secs" | bc -l)" "$(echo "$kb / 1024" | bc -l)"
  else
    printf '%-48s %8.2f s %8.0f MB peak\n' "$label" "$secs" "$(echo "$kb / 1024" | bc -l)"
  fi
}

measure "create database (+ shipped data, 128,510 rows)" 128510 "$bin" --db "$db" data list
# Reversed ticker order makes the same rows a new dataset, so the whole import runs.
rev=$(tail -n +2 data/sp500_20_close.csv | cut -d, -f2 | awk '!seen[$0]++' | tac | paste -sd,)
measure "import sp500_20_close.csv (115,700 rows)" 115700 "$bin" --db "$db" data import data/sp500_20_close.csv --name rev --tickers "$rev"
"$bin" data synth --tickers 500 --days 5000 --seed 1 --csv "$work/synth.csv" > /dev/null
measure "import synthetic 500 x 5,000 CSV (2.5M rows)" 2500000 "$bin" --db "$db" data import "$work/synth.csv"
measure "synth 500 x 5,000 straight into the store" 2500000 "$bin" --db "$db" data synth --tickers 500 --days 5000 --seed 2

runs=20
start=$(date +%s%N)
for _ in $(seq $runs); do "$bin" --db "$db" query datasets_overview --format csv > /dev/null; done
end=$(date +%s%N)
printf '%-48s %8.1f ms per process (mean of %d)\n' "hptune query datasets_overview" "$(echo "($end - $start) / $runs / 1000000" | bc -l)" $runs

measure "query 10M rows to CSV (streamed)" 10000000 "$bin" --db "$db" query \
  "SELECT range AS i, range * 0.5 AS x, 'row' || range::VARCHAR AS s FROM range(10000000)" --format csv --output "$work/big.csv"
measure "query 10M rows to Parquet" 10000000 "$bin" --db "$db" query \
  "SELECT range AS i, range * 0.5 AS x, 'row' || range::VARCHAR AS s FROM range(10000000)" --format parquet --output "$work/big.parquet"
