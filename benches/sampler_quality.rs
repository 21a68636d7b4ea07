//! Sampler quality and overhead, hptune's side (Optuna's: `benches/optuna_quality.py`).
//!
//! Quality: for each function of `../shared/ref/FUNCTIONS.md`, plain and noisy (see
//! `functions`), studies of 50 and of 100 trials (each split into the tuner's phases, as `hptune
//! tune --trials N` runs them) for seeds 0..SEEDS; prints the median best value with its
//! quartiles (numpy's linear percentile). On a noisy function the value counted is the true value
//! of the trial with the best noisy value, the trial a user would pick. Overhead: mean time per
//! suggestion with 100, 300, 1,000, 3,000 and 10,000 finished trials (TPE), 100 to 3,000 (GP).
//!
//! Run: `cargo bench --bench sampler_quality` (20 seeds; `HPTUNE_BENCH_SEEDS=N`;
//! `HPTUNE_BENCH_ONLY=hartmann6,ackley` runs those functions, `=none` none (the overhead only);
//! `HPTUNE_BENCH_SAMPLER=tpe,gp,auto` the samplers, all three by default: `auto` reuses the
//! results of the sampler it stands for; `HPTUNE_BENCH_BUDGETS=1000` other study sizes;
//! `HPTUNE_BENCH_NOISY=0` the plain functions only; `HPTUNE_BENCH_OVERHEAD_SIZES=100,1000` other
//! history sizes for the overhead). `HPTUNE_BENCH_DIMS=5,10,20,30` instead runs Styblinski-Tang in
//! those dimensions, 100 trials, TPE against the GP: median best and mean time per suggestion (what
//! `auto`'s threshold rests on).

mod functions;

use std::collections::HashMap;
use std::time::Instant;

use rayon::prelude::*;

use hptune::search::{suggest, Outcome, Past, PhasePlan, Sampler};

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// One study: the true value of the trial with the best observed value.
fn study(f: &functions::TestFunction, sampler: Sampler, seed: u64, budget: usize, noisy: bool) -> f64 {
    let plan = PhasePlan::split(budget);
    let mut history: Vec<Past> = Vec::new();
    let (mut best_seen, mut best_true) = (f64::INFINITY, f64::INFINITY);
    for number in 0..budget {
        let params = suggest(&f.space, &plan, (seed, sampler), number, false, &history, None).params;
        let truth = (f.f)(&params);
        let seen = if noisy { truth + f.noise * functions::standard_normal(seed, number as u64) } else { truth };
        if seen < best_seen {
            (best_seen, best_true) = (seen, truth);
        }
        history.push(Past { params, outcome: Outcome::Value(seen) });
    }
    best_true
}

/// TPE against the GP as the dimension grows: median best after 100 trials and seconds per suggestion.
fn dims(list: &str, seeds: u64) {
    println!(
        "{seeds} seeds, Styblinski-Tang (optimum -39.166 d), 100 trials: median best [q25, q75], ms per suggestion"
    );
    for d in list.split(',').map(|v| v.trim().parse::<usize>().expect("HPTUNE_BENCH_DIMS: numbers")) {
        let f = functions::styblinski_tang_d(d);
        for sampler in [Sampler::Tpe, Sampler::Gp] {
            let runs: Vec<(f64, f64)> = (0..seeds)
                .into_par_iter()
                .map(|seed| {
                    let start = Instant::now();
                    let best = study(&f, sampler, seed, 100, false);
                    (best, start.elapsed().as_secs_f64() * 1e3 / 100.0)
                })
                .collect();
            let mut v: Vec<f64> = runs.iter().map(|r| r.0).collect();
            v.sort_by(f64::total_cmp);
            let ms = runs.iter().map(|r| r.1).sum::<f64>() / runs.len() as f64;
            println!(
                "d={d:<3} {sampler:<4} {:>10.2} [{:.2}, {:.2}]  {ms:>8.1} ms  ({:.1}% of the optimum)",
                percentile(&v, 0.5),
                percentile(&v, 0.25),
                percentile(&v, 0.75),
                100.0 * percentile(&v, 0.5) / (-39.16616570377142 * d as f64)
            );
        }
    }
}

fn main() {
    let seeds: u64 = std::env::var("HPTUNE_BENCH_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let samplers: Vec<Sampler> = std::env::var("HPTUNE_BENCH_SAMPLER")
        .unwrap_or_else(|_| "tpe,gp,auto".into())
        .split(',')
        .map(|s| {
            Sampler::parse(s.trim()).unwrap_or_else(|| panic!("HPTUNE_BENCH_SAMPLER: '{s}' is not tpe, gp or auto"))
        })
        .collect();
    if let Ok(list) = std::env::var("HPTUNE_BENCH_DIMS") {
        return dims(&list, seeds);
    }
    let only = std::env::var("HPTUNE_BENCH_ONLY").ok();
    let budgets: Vec<usize> = std::env::var("HPTUNE_BENCH_BUDGETS")
        .map(|l| l.split(',').map(|n| n.trim().parse().expect("HPTUNE_BENCH_BUDGETS: numbers")).collect())
        .unwrap_or_else(|_| vec![50, 100]);
    let variants: &[bool] =
        if std::env::var("HPTUNE_BENCH_NOISY").as_deref() == Ok("0") { &[false] } else { &[false, true] };
    println!("{seeds} seeds; median [q25, q75] of the best value");
    let header: Vec<String> = budgets.iter().map(|b| format!("{:>34}", format!("budget {b}"))).collect();
    println!("{:<22} {:<10} {}", "function", "sampler", header.join(" "));
    for f in functions::all().into_iter().filter(|f| only.as_deref().is_none_or(|o| o.split(',').any(|n| n == f.name)))
    {
        for &noisy in variants {
            let name = if noisy { format!("{} (noisy)", f.name) } else { f.name.to_string() };
            let mut done: HashMap<Sampler, String> = HashMap::new();
            for &sampler in &samplers {
                let resolved = sampler.resolve(&f.space);
                let row = done
                    .entry(resolved)
                    .or_insert_with(|| {
                        budgets
                            .iter()
                            .map(|&budget| {
                                let mut v: Vec<f64> = (0..seeds)
                                    .into_par_iter()
                                    .map(|seed| study(&f, resolved, seed, budget, noisy))
                                    .collect();
                                v.sort_by(f64::total_cmp);
                                let m = format!("{:.4}", percentile(&v, 0.5));
                                format!("{m:>10} [{:.4}, {:.4}]", percentile(&v, 0.25), percentile(&v, 0.75))
                            })
                            .map(|cell| format!("{cell:>34}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .clone();
                let label = if sampler == resolved { sampler.to_string() } else { format!("{sampler}={resolved}") };
                println!("{name:<22} {label:<10} {row}");
            }
        }
    }

    println!("\nsampler overhead (mixed space, Bayesian phase): mean time per suggestion, one thread");
    let f = functions::all().pop().unwrap();
    let mut resolved: Vec<Sampler> = Vec::new();
    for s in samplers.iter().map(|s| s.resolve(&f.space)) {
        if !resolved.contains(&s) {
            resolved.push(s);
        }
    }
    for sampler in resolved {
        let sizes: &[usize] = match std::env::var("HPTUNE_BENCH_OVERHEAD_SIZES") {
            Ok(list) => Box::leak(
                list.split(',').map(|n| n.trim().parse().expect("sizes")).collect::<Vec<usize>>().into_boxed_slice(),
            ),
            Err(_) if sampler == Sampler::Tpe => &[100, 300, 1_000, 3_000, 10_000],
            Err(_) => &[100, 300, 1_000, 3_000],
        };
        for &n in sizes {
            let history: Vec<Past> = (0..n)
                .map(|i| {
                    let params =
                        suggest(&f.space, &PhasePlan::split(n + 100), (1, sampler), i, false, &[], None).params;
                    let value = (f.f)(&params);
                    Past { params, outcome: Outcome::Value(value) }
                })
                .collect();
            let plan = PhasePlan { random: 0, bayesian: n + 100, finetune: 0 };
            let reps = if n >= 1_000 || sampler != Sampler::Tpe { 3 } else { 20 };
            let start = Instant::now();
            for r in 0..reps {
                std::hint::black_box(suggest(&f.space, &plan, (1, sampler), n + r, false, &history, None));
            }
            println!("{sampler:<4} {n:>6} trials: {:>9.3} ms", start.elapsed().as_secs_f64() * 1e3 / reps as f64);
        }
    }
}
