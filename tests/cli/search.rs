//! The samplers: inside the space in every phase, deterministic, and the test functions' vectors.

#[path = "../../benches/functions/mod.rs"]
mod functions;

use proptest::prelude::*;

use hptune::search::{suggest, Outcome, Past, Phase, PhasePlan, SampledBy, Sampler, Space};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn suggestions_stay_inside_the_space(seed in 0u64..10_000, total in 3usize..40, f in 0usize..6, gp in any::<bool>()) {
        let func = &functions::all()[f];
        // The GP's suggestions cost more: shorter studies for it.
        let total = if gp { total.min(16) } else { total };
        let sampler = if gp { Sampler::Gp } else { Sampler::Tpe };
        let plan = PhasePlan::split(total);
        let mut history: Vec<Past> = Vec::new();
        for number in 0..total {
            let s = suggest(&func.space, &plan, (seed, sampler), number, false, &history, None);
            prop_assert_eq!(s.phase, plan.phase_of(number));
            let finished = history.iter().filter(|p| matches!(p.outcome, Outcome::Value(_))).count();
            let model = if gp { SampledBy::Gp } else { SampledBy::Tpe };
            prop_assert_eq!(s.sampled_by, if s.phase == Phase::Random || finished < 2 { SampledBy::Halton } else { model });
            let params = s.params;
            for p in &func.space.params {
                prop_assert!(p.dist.contains(&params[&p.name]), "{} = {} outside {:?}", p.name, params[&p.name], p.dist);
            }
            let value = (func.f)(&params);
            // A running trial now and then, as parallel workers leave them, and a failed one.
            let outcome = match number % 7 {
                4 => Outcome::Running,
                6 => Outcome::Failed,
                _ => Outcome::Value(value),
            };
            history.push(Past { params, outcome });
        }
    }
}

#[test]
fn the_default_space_round_trips_every_value() {
    let space = Space::default_space();
    let plan = PhasePlan::split(20);
    let params = suggest(&space, &plan, (3, Sampler::Tpe), 0, true, &[], None).params;
    assert_eq!(params.len(), space.params.len());
    for p in &space.params {
        let v = &params[&p.name];
        assert!(p.dist.contains(v));
        assert_eq!(&p.dist.from_internal(p.dist.to_internal(v).unwrap()), v);
    }
    // Deterministic in (seed, number, history).
    assert_eq!(
        suggest(&space, &plan, (3, Sampler::Tpe), 7, true, &[], None),
        suggest(&space, &plan, (3, Sampler::Tpe), 7, true, &[], None)
    );
    assert_ne!(
        suggest(&space, &plan, (3, Sampler::Tpe), 7, true, &[], None).params,
        suggest(&space, &plan, (4, Sampler::Tpe), 7, true, &[], None).params
    );
}

/// The GP phase: the same seed and history give the same point, another seed another; with
/// fewer than two finished trials it is the quasi-random design; `auto` picks it for the
/// default space and TPE for a wide one.
#[test]
fn the_gp_sampler_repeats_and_starts_from_the_quasi_random_design() {
    let func = &functions::all()[1];
    let plan = PhasePlan { random: 3, bayesian: 20, finetune: 0 };
    let mut history: Vec<Past> = Vec::new();
    for number in 0..8 {
        let params = suggest(&func.space, &plan, (5, Sampler::Gp), number, false, &history, None).params;
        let value = (func.f)(&params);
        history.push(Past { params, outcome: Outcome::Value(value) });
    }
    let next = |seed| suggest(&func.space, &plan, (seed, Sampler::Gp), 8, false, &history, None);
    assert_eq!(next(5), next(5));
    assert_eq!(next(5).sampled_by, SampledBy::Gp);
    assert_ne!(next(5).params, next(6).params);
    assert_ne!(next(5).params, suggest(&func.space, &plan, (5, Sampler::Tpe), 8, false, &history, None).params);
    // No finished trial yet: the Halton point, whatever the sampler.
    let running: Vec<Past> =
        history.iter().map(|p| Past { params: p.params.clone(), outcome: Outcome::Running }).collect();
    for number in [3, 9] {
        let gp = suggest(&func.space, &plan, (5, Sampler::Gp), number, false, &running, None);
        assert_eq!(gp, suggest(&func.space, &plan, (5, Sampler::Tpe), number, false, &running, None));
        assert_eq!(gp.sampled_by, SampledBy::Halton);
    }
    assert_eq!(Sampler::Auto.resolve(&Space::default_space()), Sampler::Gp);
    let wide = Space::from_toml(
        &(0..20).map(|i| format!("[p{i}]\ntype = \"float\"\nlow = 0.0\nhigh = 1.0\n")).collect::<String>(),
    )
    .unwrap();
    assert_eq!(Sampler::Auto.resolve(&wide), Sampler::Tpe);
}

/// The GP does not propose a failed point again (left out of the history, it proposed the same
/// integer point five times; TPE, which samples, counts it among the bad trials).
#[test]
fn a_failed_point_is_not_proposed_again() {
    let space = Space::from_toml(
        "[x]\ntype = \"int\"\nlow = 0\nhigh = 20\n\n[y]\ntype = \"categorical\"\nchoices = [\"a\", \"b\"]\n",
    )
    .unwrap();
    let f =
        |p: &hptune::search::Params| (p["x"].as_f64().unwrap() - 15.0).powi(2) + if p["y"] == "b" { 0.0 } else { 50.0 };
    let plan = PhasePlan { random: 5, bayesian: 20, finetune: 0 };
    let sampler = Sampler::Gp;
    let mut history: Vec<Past> = Vec::new();
    for number in 0..5 {
        let params = suggest(&space, &plan, (2, sampler), number, false, &history, None).params;
        history.push(Past { outcome: Outcome::Value(f(&params)), params });
    }
    let mut failed = Vec::new();
    for number in 5..10 {
        let params = suggest(&space, &plan, (2, sampler), number, false, &history, None).params;
        assert!(!failed.contains(&params), "{sampler} proposed a failed point again: {params:?} after {failed:?}");
        failed.push(params.clone());
        history.push(Past { params, outcome: Outcome::Failed });
    }
}

/// A discrete parameter's grid is every legal value once, in order (the GP searches it value by
/// value); continuous and categorical parameters have none.
#[test]
fn grids_list_every_legal_value() {
    let space = Space::from_toml(
        "[a]\ntype = \"int\"\nlow = 16\nhigh = 128\nstep = 16\n\n[b]\ntype = \"int\"\nlow = 1\nhigh = 64\nlog = true\n\n\
         [c]\ntype = \"float\"\nlow = 0.0\nhigh = 0.5\nstep = 0.1\n\n[d]\ntype = \"float\"\nlow = 0.0\nhigh = 1.0\n\n\
         [e]\ntype = \"categorical\"\nchoices = [1, 2]\n",
    )
    .unwrap();
    let values = |i: usize| -> Option<Vec<String>> {
        let d = &space.params[i].dist;
        Some(d.grid()?.iter().map(|u| d.from_internal(*u).to_string()).collect())
    };
    assert_eq!(values(0).unwrap(), ["16", "32", "48", "64", "80", "96", "112", "128"]);
    assert_eq!(values(1).unwrap(), (1..=64).map(|v| v.to_string()).collect::<Vec<_>>());
    assert_eq!(values(2).unwrap(), ["0.0", "0.1", "0.2", "0.30000000000000004", "0.4", "0.5"]);
    assert!(values(3).is_none() && values(4).is_none());
}

/// The noisy functions' noise is the same draw in the Rust bench and in Optuna's script.
#[test]
fn the_noise_is_the_same_in_rust_and_python() {
    let cases = [(0u64, 0u64), (1, 5), (7, 99), (19, 12_345)];
    let calls: Vec<String> = cases.iter().map(|(s, n)| format!("standard_normal({s}, {n})")).collect();
    let script = format!(
        "import sys; sys.path.insert(0, 'benches'); from optuna_quality import *; print(repr([{}]))",
        calls.join(", ")
    );
    let out = std::process::Command::new(crate::interop::python())
        .arg("-c")
        .arg(script)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let python: Vec<f64> = text.trim().trim_matches(['[', ']']).split(',').map(|v| v.trim().parse().unwrap()).collect();
    let rust: Vec<f64> = cases.iter().map(|&(s, n)| functions::standard_normal(s, n)).collect();
    assert_eq!(python, rust);
}

#[test]
fn phases_split_the_budget_and_accept_overrides() {
    assert_eq!(PhasePlan::split(10), PhasePlan { random: 3, bayesian: 5, finetune: 2 });
    assert_eq!(PhasePlan::split(1), PhasePlan { random: 1, bayesian: 0, finetune: 0 });
    assert_eq!(PhasePlan::split(100), PhasePlan { random: 7, bayesian: 73, finetune: 20 });
}

#[test]
fn test_functions_match_the_published_vectors() {
    use functions::*;
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs().max(1e-300) || a == b;
    let pi = std::f64::consts::PI;
    assert!(close(branin(&[-pi, 12.275]), 0.39788735772973816));
    assert!(close(branin(&[0.0, 10.0]), 35.602112642270264));
    assert!(close(hartmann6(&[0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573]), -3.322368011391339));
    assert!(close(
        hartmann6(&[1.0 / 7.0, 2.0 / 7.0, 3.0 / 7.0, 4.0 / 7.0, 5.0 / 7.0, 6.0 / 7.0]),
        -0.18787404891617537
    ));
    assert!(close(rosenbrock(&[-2.0, 1.0, 4.0, 7.0]), 9918.0));
    assert!(close(ackley(&[-16.384; 5]), 21.489016910524118));
    assert!(close(styblinski_tang(&[-2.5; 5]), -183.59375));
    let mixed_at = |lr: f64, layers: i64, model: &str, dropout: f64| {
        let p: hptune::search::Params = [
            ("lr".to_string(), serde_json::json!(lr)),
            ("layers".to_string(), serde_json::json!(layers)),
            ("model".to_string(), serde_json::json!(model)),
            ("dropout".to_string(), serde_json::json!(dropout)),
        ]
        .into_iter()
        .collect();
        mixed(&p)
    };
    assert!(close(mixed_at(0.1, 4, "mlp", 0.5), 7.640000000000001));
    assert!(close(mixed_at(0.0003, 3, "lstm", 0.25), 0.86340218226594));
}

/// The model-based phases beat quasi-random search on every test function: median over 7 seeds
/// of the best value after 60 trials, against 60 Halton points.
#[test]
fn tpe_beats_quasi_random_search() {
    let budget = 60;
    let run = |f: &functions::TestFunction, plan: &PhasePlan, seed: u64| {
        let mut history: Vec<Past> = Vec::new();
        for number in 0..budget {
            let params = suggest(&f.space, plan, (seed, Sampler::Tpe), number, false, &history, None).params;
            let value = (f.f)(&params);
            history.push(Past { params, outcome: Outcome::Value(value) });
        }
        history
            .iter()
            .map(|p| match p.outcome {
                Outcome::Value(v) => v,
                _ => unreachable!(),
            })
            .fold(f64::INFINITY, f64::min)
    };
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let tuned = PhasePlan::split(budget);
    let random = PhasePlan { random: budget, bayesian: 0, finetune: 0 };
    for f in functions::all() {
        let tpe = median((0..7).map(|s| run(&f, &tuned, s)).collect());
        let halton = median((0..7).map(|s| run(&f, &random, s)).collect());
        assert!(tpe < halton, "{}: TPE {tpe} not below quasi-random {halton}", f.name);
    }
}

/// With a cost, the GP spends its model-based trials where improvement is cheap: a dear choice
/// that does not change the value is drawn far less often than without the cost while the cost
/// weighs (its weight at least 3/4), less often over the whole budget, and the best found is as
/// good.
#[test]
fn a_cost_steers_the_gp_to_cheap_points_that_do_as_well() {
    let space = Space::from_toml(
        "[x]\ntype = \"float\"\nlow = 0.0\nhigh = 1.0\n\n[y]\ntype = \"float\"\nlow = 0.0\nhigh = 1.0\n\n\
         [size]\ntype = \"categorical\"\nchoices = [\"small\", \"large\"]\n",
    )
    .unwrap();
    let f = |p: &hptune::search::Params| {
        (p["x"].as_f64().unwrap() - 0.3).powi(2) + (p["y"].as_f64().unwrap() - 0.7).powi(2)
    };
    let cost = |p: &hptune::search::Params| if p["size"] == "large" { 100.0 } else { 1.0 };
    let plan = PhasePlan::split(30);
    // (dear draws while the weight is at least 3/4, dear draws in all, best value)
    let run = |seed: u64, cost: Option<hptune::search::TrialCost>| {
        let (mut history, mut early, mut all): (Vec<Past>, usize, usize) = (Vec::new(), 0, 0);
        for number in 0..plan.total() {
            let s = suggest(&space, &plan, (seed, Sampler::Gp), number, false, &history, cost);
            if s.sampled_by == SampledBy::Gp && s.params["size"] == "large" {
                all += 1;
                early += usize::from(hptune::search::cost_weight(&plan, number) >= 0.75);
            }
            history.push(Past { outcome: Outcome::Value(f(&s.params)), params: s.params });
        }
        let best = history.iter().filter_map(|p| if let Outcome::Value(v) = p.outcome { Some(v) } else { None });
        (early, all, best.fold(f64::INFINITY, f64::min))
    };
    let (mut priced, mut free) = ((0, 0), (0, 0));
    for seed in 1..=3 {
        let ((early_p, all_p, best_p), (early_f, all_f, best_f)) = (run(seed, Some(&cost)), run(seed, None));
        assert!(best_p < 1e-3 && best_f < 1e-3, "seed {seed}: best {best_p} with the cost, {best_f} without");
        priced = (priced.0 + early_p, priced.1 + all_p);
        free = (free.0 + early_f, free.1 + all_f);
    }
    assert!(
        4 * priced.0 <= free.0 && priced.1 < free.1,
        "the dear choice drawn {priced:?} times with the cost, {free:?} without"
    );
}

/// The cost's weight: 1 at the first model-based trial, falling to 0 by the last.
#[test]
fn the_cost_weight_cools_over_the_budget() {
    let plan = PhasePlan::split(30);
    let w: Vec<f64> = (0..30).map(|n| hptune::search::cost_weight(&plan, n)).collect();
    assert_eq!(w[plan.random], 1.0);
    assert!(w.windows(2).all(|p| p[1] <= p[0]), "{w:?}");
    assert!(w[29] < 0.05, "{w:?}");
    assert_eq!(hptune::search::cost_weight(&PhasePlan { random: 1, bayesian: 0, finetune: 0 }, 0), 0.0);
}
