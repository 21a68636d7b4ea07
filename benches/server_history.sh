#!/usr/bin/env bash
# A study server's cost per claim as its study grows. On a throwaway PostgreSQL server, one study
# of tiny trials (1 epoch of a small MLP on 3 x 200 synthetic days, the default sampler): BASE
# trials run by hptune (default 100), then, for each SIZE (default 1000 10000), the study grown
# to SIZE finished trials by copying those trials' rows on the server (new trial ids and numbers,
# as benches/history_clone.py copies a file's weeks), and one worker process (--verbose) running
# 20 more trials: per claim, the time in server calls (the whole study read back by read_trials
# among them) and in the sampler, and the process's wall time per trial.
# Usage: benches/server_history.sh [BASE] [SIZE...]   (needs Debian's postgresql, as tests/setup.sh installs;
# HPTUNE_BIN=PATH runs another build, e.g. an earlier commit's, against the same steps)
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:-100}
shift $(( $# > 0 ? 1 : 0 ))
sizes=("${@:-1000}")
[ $# -eq 0 ] && sizes=(1000 10000)
more=20
cargo build --release --quiet
bin=${HPTUNE_BIN:-"$(realpath "${CARGO_TARGET_DIR:-target}")/release/hptune"}
. benches/throwaway_pg.sh
psql -c "CREATE DATABASE h"
pq() { psql -d h -v ON_ERROR_STOP=1 "$@"; }

"$bin" --db "$work/seed.db" -q data synth --tickers 3 --days 200 --seed 1 --name tiny > /dev/null
printf '[model_type]\ntype = "categorical"\nchoices = ["mlp"]\n\n[hidden_size]\ntype = "int"\nlow = 8\nhigh = 16\nstep = 8\n\n[seq_len]\ntype = "int"\nlow = 2\nhigh = 4\n\n[learning_rate]\ntype = "float"\nlow = 1e-4\nhigh = 1e-2\nlog = true\n' > "$work/space.toml"
cp "$work/seed.db" "$work/base.db"
"$bin" --db "$work/base.db" -q tune --storage "$(url h)" --study s --trials "$base" --epochs 1 --dataset tiny \
  --space "$work/space.toml" --out "$work/out-base" > /dev/null 2>&1
study=$(pq -c "SELECT study_id FROM studies WHERE study_name = 's'")

# Sums "costs: NAME: N events, S s, longest L s" over a log: prints "events seconds".
cost() { sed -nE "s/^costs: $1: ([0-9]+) events, ([0-9.]+) s(, longest [0-9.]+ s)?$/\1 \2/p" "$2" |
  awk '{n += $1; s += $2} END {printf "%d %.4f\n", n, s}'; }

printf '%8s %12s %18s %12s %14s\n' trials "wall s/trial" "server ms/claim" "sampler ms" "server calls"
for size in "${sizes[@]}"; do
  have=$(pq -c "SELECT count(*) FROM trials WHERE study_id = $study")
  # Copies of the first BASE trials, numbered after the last one, until the study holds SIZE.
  pq > /dev/null <<SQL
CREATE TEMP TABLE copies AS
SELECT t.trial_id AS old_id, c, t.number + $have + (c - 1) * $base AS number,
       (SELECT max(trial_id) FROM trials) + row_number() OVER (ORDER BY c, t.trial_id) AS new_id
FROM trials t, generate_series(1, ($size - $have) / $base) c
WHERE t.study_id = $study AND t.number < $base;
INSERT INTO trials (trial_id, number, study_id, state, datetime_start, datetime_complete)
  SELECT k.new_id, k.number, t.study_id, t.state, t.datetime_start, t.datetime_complete FROM copies k JOIN trials t ON t.trial_id = k.old_id;
INSERT INTO trial_values (trial_id, objective, value, value_type)
  SELECT k.new_id, v.objective, v.value, v.value_type FROM copies k JOIN trial_values v ON v.trial_id = k.old_id;
INSERT INTO trial_params (trial_id, param_name, param_value, distribution_json)
  SELECT k.new_id, p.param_name, p.param_value, p.distribution_json FROM copies k JOIN trial_params p ON p.trial_id = k.old_id;
INSERT INTO trial_system_attributes (trial_id, key, value_json)
  SELECT k.new_id, a.key, a.value_json FROM copies k JOIN trial_system_attributes a ON a.trial_id = k.old_id;
INSERT INTO trial_user_attributes (trial_id, key, value_json)
  SELECT k.new_id, a.key, a.value_json FROM copies k JOIN trial_user_attributes a ON a.trial_id = k.old_id;
INSERT INTO trial_intermediate_values (trial_id, step, intermediate_value, intermediate_value_type)
  SELECT k.new_id, i.step, i.intermediate_value, i.intermediate_value_type FROM copies k JOIN trial_intermediate_values i ON i.trial_id = k.old_id;
INSERT INTO trial_heartbeats (trial_id, heartbeat)
  SELECT k.new_id, h.heartbeat FROM copies k JOIN trial_heartbeats h ON h.trial_id = k.old_id;
INSERT INTO hptune_epochs (trial_id, epoch, train_loss, val_loss, val_accuracy, seconds)
  SELECT k.new_id, e.epoch, e.train_loss, e.val_loss, e.val_accuracy, e.seconds FROM copies k JOIN hptune_epochs e ON e.trial_id = k.old_id;
INSERT INTO hptune_checkpoints (checkpoint_id, trial_id, role, epoch, path, sha256, size_bytes)
  SELECT c.checkpoint_id || '-copy' || k.new_id, k.new_id, c.role, c.epoch, c.path, c.sha256, c.size_bytes FROM copies k JOIN hptune_checkpoints c ON c.trial_id = k.old_id;
SELECT setval('trials_trial_id_seq', (SELECT max(trial_id) FROM trials));
ANALYZE;
SQL
  now=$(pq -c "SELECT count(*) FROM trials WHERE study_id = $study AND state IN ('COMPLETE', 'PRUNED')")
  cp "$work/seed.db" "$work/w$size.db"
  start=$(date +%s.%N)
  "$bin" --db "$work/w$size.db" --verbose tune --storage "$(url h)" --study s --trials $(( now + more )) --jobs 1 \
    --out "$work/out-$size" > /dev/null 2> "$work/log-$size"
  end=$(date +%s.%N)
  read -r claims lock_s < <(cost "study server: wait for the study lock" "$work/log-$size")
  read -r calls call_s < <(cost "study server: calls" "$work/log-$size")
  read -r suggestions sampler_s < <(cost "sampler" "$work/log-$size")
  printf '%8d %12.3f %18.1f %12.1f %14d\n' "$now" "$(echo "($end - $start) / $more" | bc -l)" \
    "$(echo "1000 * $call_s / $claims" | bc -l)" "$(echo "1000 * $sampler_s / ($suggestions + 0.000001)" | bc -l)" "$calls"
done
