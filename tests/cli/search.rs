//! The samplers: inside the space in every phase, deterministic, and the test functions' vectors.

#[path = "../../benches/functions/mod.rs"]
mod functions;

use proptest::prelude::*;

use hptune::search::{suggest, Past, PhasePlan, Sampler, Space};

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
            let (phase, params) = suggest(&func.space, &plan, (seed, sampler), number, false, &history);
            prop_assert_eq!(phase, plan.phase_of(number));
            for p in &func.space.params {
                prop_assert!(p.dist.contains(&params[&p.name]), "{} = {} outside {:?}", p.name, params[&p.name], p.dist);
            }
            let value = (func.f)(&params);
            // A running trial now and then, as parallel workers leave them.
            history.push(Past { params, value: if number % 5 == 4 { None } else { Some(value) } });
        }
    }
}

#[test]
fn the_default_space_round_trips_every_value() {
    let space = Space::default_space();
    let plan = PhasePlan::split(20);
    let (_, params) = suggest(&space, &plan, (3, Sampler::Tpe), 0, true, &[]);
    assert_eq!(params.len(), space.params.len());
    for p in &space.params {
        let v = &params[&p.name];
        assert!(p.dist.contains(v));
        assert_eq!(&p.dist.from_internal(p.dist.to_internal(v).unwrap()), v);
    }
    // Deterministic in (seed, number, history).
    assert_eq!(
        suggest(&space, &plan, (3, Sampler::Tpe), 7, true, &[]),
        suggest(&space, &plan, (3, Sampler::Tpe), 7, true, &[])
    );
    assert_ne!(
        suggest(&space, &plan, (3, Sampler::Tpe), 7, true, &[]).1,
        suggest(&space, &plan, (4, Sampler::Tpe), 7, true, &[]).1
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
        let (_, params) = suggest(&func.space, &plan, (5, Sampler::Gp), number, false, &history);
        let value = (func.f)(&params);
        history.push(Past { params, value: Some(value) });
    }
    let next = |seed| suggest(&func.space, &plan, (seed, Sampler::Gp), 8, false, &history);
    assert_eq!(next(5), next(5));
    assert_ne!(next(5).1, next(6).1);
    assert_ne!(next(5).1, suggest(&func.space, &plan, (5, Sampler::Tpe), 8, false, &history).1);
    // No finished trial yet: the Halton point, whatever the sampler.
    let running: Vec<Past> = history.iter().map(|p| Past { params: p.params.clone(), value: None }).collect();
    for number in [3, 9] {
        assert_eq!(
            suggest(&func.space, &plan, (5, Sampler::Gp), number, false, &running),
            suggest(&func.space, &plan, (5, Sampler::Tpe), number, false, &running)
        );
    }
    assert_eq!(Sampler::Auto.resolve(&Space::default_space()), Sampler::Gp);
    let wide = Space::from_toml(
        &(0..20).map(|i| format!("[p{i}]\ntype = \"float\"\nlow = 0.0\nhigh = 1.0\n")).collect::<String>(),
    )
    .unwrap();
    assert_eq!(Sampler::Auto.resolve(&wide), Sampler::Tpe);
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
            let (_, params) = suggest(&f.space, plan, (seed, Sampler::Tpe), number, false, &history);
            let value = (f.f)(&params);
            history.push(Past { params, value: Some(value) });
        }
        history.iter().map(|p| p.value.unwrap()).fold(f64::INFINITY, f64::min)
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
