#!/usr/bin/env bash
# Many workers on one study server (hptune tune --storage). On a throwaway PostgreSQL server in a
# temporary folder:
#  1. for each worker count (default 1 4 16 64), that many hptune processes (--jobs 1 each, their
#     own database) share one study of tiny trials (1 epoch of a small MLP on 3 x 200 synthetic
#     days): claims per second over the whole study, the mean time a claim waited for the study
#     row lock and for all its server calls, the most connections the server saw, the wall time;
#  2. a real study on the shipped data (2 x TRIALS_PER_WORKER GRU trials of one size, 4 epochs, no
#     pruning) with 1 and then 2 worker processes of one thread each.
# Usage: benches/server_scale.sh [TRIALS_PER_WORKER] [WORKERS...]   (default: 4  1 4 16 64)
# Needs Debian's postgresql package (tests/setup.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
per_worker=${1:-4}
shift $(( $# > 0 ? 1 : 0 ))
counts=("${@:-1}")
[ $# -eq 0 ] && counts=(1 4 16 64)
cargo build --release --quiet
bin="$(realpath "${CARGO_TARGET_DIR:-target}")/release/hptune"
. benches/throwaway_pg.sh

"$bin" --db "$work/seed.db" -q data synth --tickers 3 --days 200 --seed 1 --name tiny > /dev/null
printf '[model_type]\ntype = "categorical"\nchoices = ["mlp"]\n\n[hidden_size]\ntype = "int"\nlow = 8\nhigh = 16\nstep = 8\n\n[seq_len]\ntype = "int"\nlow = 2\nhigh = 4\n' > "$work/space.toml"

# Sums "costs: NAME: N events, S s, longest L s" over the logs: prints "events seconds".
cost() { local name=$1; shift; sed -nE "s/^costs: $name: ([0-9]+) events, ([0-9.]+) s(, longest [0-9.]+ s)?$/\1 \2/p" "$@" |
  awk '{n += $1; s += $2} END {printf "%d %.4f\n", n, s}'; }

printf '%8s %8s %10s %10s %14s %16s %12s\n' workers trials "wall s" claims/s "lock wait ms" "server ms/claim" connections
for n in "${counts[@]}"; do
  db="w$n"
  psql -c "CREATE DATABASE $db"
  trials=$(( n * per_worker ))
  # The study is created first (with its dataset on the server) by one short run.
  "$bin" --db "$work/seed.db" -q tune --storage "$(url "$db")" --study s --trials 1 --epochs 1 --dataset tiny \
    --space "$work/space.toml" --out "$work/out-$n-0" > /dev/null 2>&1
  peak=0
  start=$(date +%s.%N)
  pids=()
  for i in $(seq 1 "$n"); do
    cp "$work/seed.db" "$work/w$n-$i.db"
    "$bin" --db "$work/w$n-$i.db" --verbose tune --storage "$(url "$db")" --study s --trials $(( trials + 1 )) --jobs 1 \
      --out "$work/out-$n-$i" > /dev/null 2> "$work/log-$n-$i" &
    pids+=($!)
  done
  while kill -0 "${pids[@]}" 2> /dev/null; do
    c=$(psql -d "$db" -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'hptune'")
    [ "$c" -gt "$peak" ] && peak=$c
    sleep 0.2
  done
  for p in "${pids[@]}"; do wait "$p"; done
  end=$(date +%s.%N)
  read -r claims lock_s < <(cost "study server: wait for the study lock" "$work"/log-$n-*)
  read -r calls call_s < <(cost "study server: calls" "$work"/log-$n-*)
  done_trials=$(psql -d "$db" -c "SELECT count(*) FROM trials WHERE state IN ('COMPLETE', 'PRUNED')")
  wall=$(echo "$end - $start" | bc -l)
  printf '%8d %8d %10.1f %10.1f %14.2f %16.1f %12d\n' "$n" "$(( done_trials - 1 ))" "$wall" \
    "$(echo "($done_trials - 1) / $wall" | bc -l)" "$(echo "1000 * $lock_s / ($claims + 0.000001)" | bc -l)" \
    "$(echo "1000 * $call_s / ($claims + 0.000001)" | bc -l)" "$peak"
done

# Trials of one cost (only the learning rate varies, no pruning), so the wall times compare.
printf '[model_type]\ntype = "categorical"\nchoices = ["gru"]\n\n[hidden_size]\ntype = "categorical"\nchoices = [32]\n\n[seq_len]\ntype = "categorical"\nchoices = [20]\n\n[learning_rate]\ntype = "float"\nlow = 1e-4\nhigh = 1e-2\nlog = true\n' > "$work/fixed.toml"
echo
echo "the shipped data, $(( per_worker * 2 )) GRU trials of 4 epochs, one thread per process (--jobs 1, RAYON_NUM_THREADS=1):"
for n in 1 2; do
  db="real$n"
  psql -c "CREATE DATABASE $db"
  start=$(date +%s.%N)
  pids=()
  for i in $(seq 1 "$n"); do
    RAYON_NUM_THREADS=1 "$bin" --db "$work/real$n-$i.db" -q tune --storage "$(url "$db")" --study r \
      --trials $(( per_worker * 2 )) --epochs 4 --jobs 1 --no-pruning --space "$work/fixed.toml" --out "$work/real-$n-$i" > /dev/null 2> "$work/real-log-$n-$i" &
    pids+=($!)
    # The first process creates the study; the second joins it.
    [ "$i" -eq 1 ] && until psql -d "$db" -c "SELECT count(*) FROM trials" 2> /dev/null | grep -qv '^0$'; do sleep 0.1; done
  done
  for p in "${pids[@]}"; do wait "$p"; done
  end=$(date +%s.%N)
  printf '%d worker process(es): %.1f s\n' "$n" "$(echo "$end - $start" | bc -l)"
done
