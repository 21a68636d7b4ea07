//! Warm start (`tune --warm-start`): does a study seeded with the finished trials of a study of a
//! shifted copy of the function beat a cold study of the same budget?
//!
//! Per function of `functions` and seed 0..SEEDS (20; `HPTUNE_BENCH_SEEDS=N`): a 50-trial study
//! (the tuner's phases, the `auto` sampler) of the shifted copy f(x + 2% of each float
//! parameter's range, in its internal coordinate: log for log-scaled ones; ints and categories
//! unshifted; `HPTUNE_BENCH_SHIFT=0.1` for 10%), then a 50-trial study of f itself whose Bayesian
//! phase reads those 50 finished trials first (as `tune --warm-start` feeds them), against a cold
//! 50-trial study of f with the same seed. Prints the median best true value of each (the study's
//! own trials only) with quartiles, and how often the warm study's best was better.
//!
//! Run: `cargo bench --bench warm_start`.

mod functions;

use rayon::prelude::*;

use hptune::search::space::Distribution;
use hptune::search::{suggest, Outcome, Params, Past, Phase, PhasePlan, Sampler};

const BUDGET: usize = 50;
/// The shift of the source function, as a share of each float parameter's internal range
/// (`HPTUNE_BENCH_SHIFT`, default 0.02).
fn shift() -> f64 {
    std::env::var("HPTUNE_BENCH_SHIFT").ok().and_then(|s| s.parse().ok()).unwrap_or(0.02)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// `p` moved by the shift: the source function at p is f at the shifted point.
fn shifted(f: &functions::TestFunction, p: &Params) -> Params {
    let mut q = p.clone();
    for prm in &f.space.params {
        if let Distribution::Float { log, .. } = prm.dist {
            let (lo, hi) = prm.dist.bounds();
            let x = prm.dist.to_internal(&p[&prm.name]).unwrap() + shift() * (hi - lo);
            q.insert(prm.name.clone(), serde_json::json!(if log { x.exp() } else { x }));
        }
    }
    q
}

/// A study of `objective` after `seeds`; returns its own trials (params, value).
fn run(
    f: &functions::TestFunction,
    seed: u64,
    seeds: &[Past],
    objective: &dyn Fn(&Params) -> f64,
) -> Vec<(Params, f64)> {
    let plan = PhasePlan::split(BUDGET);
    let mut history: Vec<Past> = Vec::new();
    let mut own = Vec::new();
    for number in 0..BUDGET {
        // As `hptune tune` reads them: the seeds in the Bayesian phase only.
        let seeded = if plan.phase_of(number) == Phase::Bayesian { seeds } else { &[] };
        let past: Vec<Past> = seeded.iter().cloned().chain(history.iter().cloned()).collect();
        let params = suggest(&f.space, &plan, (seed, Sampler::Auto), number, false, &past, None).params;
        let value = objective(&params);
        history.push(Past { params: params.clone(), outcome: Outcome::Value(value) });
        own.push((params, value));
    }
    own
}

fn main() {
    let seeds: u64 = std::env::var("HPTUNE_BENCH_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    println!(
        "{seeds} seeds, {BUDGET} trials each, source shifted by {:.0}% of each float range; median best [q25, q75]",
        100.0 * shift()
    );
    println!("{:<16} {:>30} {:>30} {:>10}", "function", "cold", "warm", "warm wins");
    for f in functions::all() {
        let runs: Vec<(f64, f64)> = (0..seeds)
            .into_par_iter()
            .map(|seed| {
                let source = run(&f, seed + 1000, &[], &|p| (f.f)(&shifted(&f, p)));
                let past: Vec<Past> =
                    source.into_iter().map(|(params, v)| Past { params, outcome: Outcome::Value(v) }).collect();
                let best = |trials: Vec<(Params, f64)>| trials.iter().map(|t| t.1).fold(f64::INFINITY, f64::min);
                (best(run(&f, seed, &[], &|p| (f.f)(p))), best(run(&f, seed, &past, &|p| (f.f)(p))))
            })
            .collect();
        let cell = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            format!("{:.4} [{:.4}, {:.4}]", percentile(&v, 0.5), percentile(&v, 0.25), percentile(&v, 0.75))
        };
        let wins = runs.iter().filter(|r| r.1 < r.0).count();
        println!(
            "{:<16} {:>30} {:>30} {:>7}/{seeds}",
            f.name,
            cell(runs.iter().map(|r| r.0).collect()),
            cell(runs.iter().map(|r| r.1).collect()),
            wins
        );
    }
}
