//! Sampler quality and overhead, hptune's side (Optuna's: `benches/optuna_quality.py`).
//!
//! Quality: for each function of `../shared/ref/FUNCTIONS.md`, seeds 0..SEEDS, 100 trials, the
//! best value after 10/25/50/100 trials; prints median, q25, q75 over seeds (numpy's linear
//! percentile). Overhead: mean time per suggestion with 100, 1,000 and 10,000 finished trials
//! (TPE), 100 and 300 (GP).
//!
//! Run: `cargo bench --bench sampler_quality` (SEEDS=20 by default; `HPTUNE_BENCH_SEEDS=N`;
//! `HPTUNE_BENCH_ONLY=hartmann6` runs one function; `HPTUNE_BENCH_SAMPLER=gp` (or `auto`) the
//! model-based phases with another sampler than `tpe`).

mod functions;

use std::time::Instant;

use hptune::search::{suggest, Past, PhasePlan, Sampler};

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

fn main() {
    let seeds: u64 = std::env::var("HPTUNE_BENCH_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let budget = 100;
    let sampler = match std::env::var("HPTUNE_BENCH_SAMPLER").as_deref() {
        Ok("gp") => Sampler::Gp,
        Ok("auto") => Sampler::Auto,
        Ok("tpe") | Err(_) => Sampler::Tpe,
        Ok(other) => panic!("HPTUNE_BENCH_SAMPLER={other}: tpe, gp or auto"),
    };
    println!("sampler: {}", sampler.as_str());
    // The tuner's phases over a 100-trial budget, as `hptune tune --trials 100` runs them.
    let plan = PhasePlan::split(budget);
    println!("function          best@10     best@25     best@50    best@100 (median)   q25@100     q75@100");
    let only = std::env::var("HPTUNE_BENCH_ONLY").ok();
    for f in functions::all().into_iter().filter(|f| only.as_deref().is_none_or(|o| o == f.name)) {
        let mut curves: Vec<Vec<f64>> = Vec::new();
        for seed in 0..seeds {
            let mut history: Vec<Past> = Vec::new();
            let mut best = f64::INFINITY;
            let mut curve = Vec::new();
            for number in 0..budget {
                let (_, params) = suggest(&f.space, &plan, (seed, sampler), number, false, &history);
                let value = (f.f)(&params);
                best = best.min(value);
                history.push(Past { params, value: Some(value) });
                if [10, 25, 50, 100].contains(&(number + 1)) {
                    curve.push(best);
                }
            }
            curves.push(curve);
        }
        let at = |k: usize| {
            let mut v: Vec<f64> = curves.iter().map(|c| c[k]).collect();
            v.sort_by(f64::total_cmp);
            v
        };
        let last = at(3);
        println!(
            "{:<16} {:>10.4}  {:>10.4}  {:>10.4}  {:>10.4}          {:>10.4}  {:>10.4}",
            f.name,
            percentile(&at(0), 0.5),
            percentile(&at(1), 0.5),
            percentile(&at(2), 0.5),
            percentile(&last, 0.5),
            percentile(&last, 0.25),
            percentile(&last, 0.75)
        );
    }

    println!("\nsampler overhead (mixed space, Bayesian phase): mean time per suggestion");
    let f = functions::all().pop().unwrap();
    let sizes: &[usize] = if sampler == Sampler::Tpe { &[100, 1_000, 10_000] } else { &[100, 300] };
    for &n in sizes {
        let history: Vec<Past> = (0..n)
            .map(|i| {
                let (_, params) = suggest(&f.space, &PhasePlan::split(n + 100), (1, sampler), i, false, &[]);
                let value = (f.f)(&params);
                Past { params, value: Some(value) }
            })
            .collect();
        let plan = PhasePlan { random: 0, bayesian: n + 100, finetune: 0 };
        let reps = if n >= 10_000 || sampler != Sampler::Tpe { 5 } else { 20 };
        let start = Instant::now();
        for r in 0..reps {
            std::hint::black_box(suggest(&f.space, &plan, (1, sampler), n + r, false, &history));
        }
        println!("{n:>6} trials: {:>9.3} ms", start.elapsed().as_secs_f64() * 1e3 / reps as f64);
    }
}
