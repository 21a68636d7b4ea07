#!/usr/bin/env bash
# A year of history in one file: how long the reading commands take on it.
# Usage: benches/history.sh [WEEKS] [TRIALS]   (default 100 weeks of 1,000-trial pipelines)
#
# One real `hptune pipeline` (TRIALS trials of 2 epochs on a synthetic 5 x 1,200 panel, then
# extend, analyze, train, backtest) is the newest week; benches/history_clone.py copies its rows
# as WEEKS-1 earlier weeks (run ids and timestamps moved back a week each). Then each reading
# command runs as a whole process on the grown file: wall time and peak memory.
# Set HPTUNE_HISTORY_DIR to keep the files (the template takes a few minutes to make).
set -euo pipefail
cd "$(dirname "$0")/.."
weeks=${1:-100}
trials=${2:-1000}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hptune/target}"
cargo build --release --quiet
bin="$(realpath "$CARGO_TARGET_DIR/release/hptune")"
py=.venv/bin/python
work=${HPTUNE_HISTORY_DIR:-$(mktemp -d)}
mkdir -p "$work"
[ -n "${HPTUNE_HISTORY_DIR:-}" ] || trap 'rm -rf "$work"' EXIT
tpl="$work/template-$trials.db"
db="$work/history-$weeks-$trials.db"

if [ ! -f "$tpl" ]; then
  rm -f "$tpl.tmp"
  "$bin" --db "$tpl.tmp" -q data synth --tickers 5 --days 1200 --seed 1 --signal 0.1 > /dev/null
  (cd "$work" && "$bin" --db "$tpl.tmp" -q pipeline --dataset synth_5x1200_seed1_signal0.1 --trials "$trials" \
    --epochs 2 --jobs 2 > /dev/null)
  mv "$tpl.tmp" "$tpl"
fi
if [ ! -f "$db" ]; then
  "$py" benches/history_clone.py "$tpl" "$db.tmp" "$weeks"
  mv "$db.tmp" "$db"
fi
# Any writing command brings the file to this hptune's schema and views first.
"$bin" --db "$db" -q data list > /dev/null
size=$(stat -c %s "$db")
rows=$("$bin" --db "$db" query "SELECT count(*) FROM trials" --format csv | tail -1)
printf 'file: %d weeks x %d trials = %d trials, %.0f MB, %.0f bytes a trial\n' "$weeks" "$trials" "$rows" \
  "$(echo "$size / 1000000" | bc -l)" "$(echo "$size / $rows" | bc -l)"

measure() { # label command...
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" > "$work/out" 2> "$work/err" || { cat "$work/err"; exit 1; }
  read -r secs kb < "$work/time"
  printf '%-44s %8.2f s %7.0f MB peak\n' "$label" "$secs" "$(echo "$kb / 1024" | bc -l)"
}

measure "query best-config" "$bin" --db "$db" query best-config
views=$("$bin" --db "$db" query --list --format csv | tail -n +2 | cut -d, -f1)
# A view as a terminal shows it (up to 1,000,000 rows read and counted, the first and last 20
# printed; past that the first 40), then every row written out as CSV.
for v in $views; do
  measure "query $v" "$bin" --db "$db" query "$v" --format table --output "$work/view.txt"
  measure "  every row as CSV" "$bin" --db "$db" query "$v" --format csv --output "$work/view.csv"
  printf '%-44s %19s\n' "" "$(($(wc -l < "$work/view.csv") - 1)) rows"
done
newest=$("$bin" --db "$db" query "SELECT study_name FROM studies ORDER BY created_at DESC LIMIT 1" --format csv | tail -1)
measure "query trial_outcomes of the newest study" "$bin" --db "$db" query \
  "SELECT * FROM trial_outcomes WHERE study_name = '$newest'" --format csv --output "$work/view.csv"
measure "report (newest runs, whole history)" "$bin" --db "$db" report --out "$work/report.html"
printf '%-44s %8.2f MB page\n' "" "$(echo "$(stat -c %s "$work/report.html") / 1000000" | bc -l)"
rm -rf "$work/export"
measure "export tune (the newest study)" "$bin" --db "$db" export tune --to "$work/export"
rm -rf "$work/export"
measure "export (all five stages, newest runs)" "$bin" --db "$db" export --to "$work/export"
measure "diff --last 2" "$bin" --db "$db" diff --last 2
cp "$db" "$work/resume.db"
measure "tune --study NEWEST: one more trial" "$bin" --db "$work/resume.db" -q tune --study "$newest" \
  --trials $((trials + 1))
rm -f "$work/resume.db" "$work/resume.db.wal"
