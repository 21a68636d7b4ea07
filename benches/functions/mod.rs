//! The standard test functions of `../shared/ref/FUNCTIONS.md` (all minimised), with their search
//! spaces, for comparing hptune's samplers with Optuna's. Shared by the bench and by a test that
//! checks the published test vectors.
//!
//! Each has a noisy variant, as a validation accuracy is noisy: f(x) + noise * N(0, 1), the normal
//! draw from (seed, trial number) by `standard_normal` (benches/optuna_quality.py draws the same).
//! `noise` is about a tenth of the gap between random search's best after 100 trials and the
//! optimum.

#![allow(dead_code)]

use std::f64::consts::{E, PI};

use hptune::search::{Params, Space};

pub struct TestFunction {
    pub name: &'static str,
    pub space: Space,
    pub f: fn(&Params) -> f64,
    /// Standard deviation of the noisy variant's noise.
    pub noise: f64,
}

/// A standard normal draw for trial `number` of the study with `seed`: SplitMix64 seeded with
/// seed * 1,000,003 + number, two uniforms, Box-Muller.
pub fn standard_normal(seed: u64, number: u64) -> f64 {
    let mut state = seed.wrapping_mul(1_000_003).wrapping_add(number);
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let u1 = ((next() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let u2 = (next() >> 11) as f64 / (1u64 << 53) as f64;
    (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos()
}

fn xs(p: &Params, d: usize) -> Vec<f64> {
    (0..d).map(|i| p[&format!("x{i}")].as_f64().unwrap()).collect()
}

fn uniform_space(d: usize, lo: f64, hi: f64) -> Space {
    let text: String = (0..d).map(|i| format!("[x{i}]\ntype = \"float\"\nlow = {lo:?}\nhigh = {hi:?}\n\n")).collect();
    Space::from_toml(&text).unwrap()
}

pub fn branin(x: &[f64]) -> f64 {
    let (a, b, c, r, s, t) = (1.0, 5.1 / (4.0 * PI * PI), 5.0 / PI, 6.0, 10.0, 1.0 / (8.0 * PI));
    a * (x[1] - b * x[0] * x[0] + c * x[0] - r).powi(2) + s * (1.0 - t) * x[0].cos() + s
}

pub fn hartmann6(x: &[f64]) -> f64 {
    let alpha = [1.0, 1.2, 3.0, 3.2];
    let a = [
        [10.0, 3.0, 17.0, 3.5, 1.7, 8.0],
        [0.05, 10.0, 17.0, 0.1, 8.0, 14.0],
        [3.0, 3.5, 1.7, 10.0, 17.0, 8.0],
        [17.0, 8.0, 0.05, 10.0, 0.1, 14.0],
    ];
    let p: [[f64; 6]; 4] = [
        [1312.0, 1696.0, 5569.0, 124.0, 8283.0, 5886.0],
        [2329.0, 4135.0, 8307.0, 3736.0, 1004.0, 9991.0],
        [2348.0, 1451.0, 3522.0, 2883.0, 3047.0, 6650.0],
        [4047.0, 8828.0, 8732.0, 5743.0, 1091.0, 381.0],
    ];
    -(0..4)
        .map(|i| alpha[i] * (-(0..6).map(|j| a[i][j] * (x[j] - p[i][j] * 1e-4).powi(2)).sum::<f64>()).exp())
        .sum::<f64>()
}

pub fn rosenbrock(x: &[f64]) -> f64 {
    (0..x.len() - 1).map(|i| 100.0 * (x[i + 1] - x[i] * x[i]).powi(2) + (x[i] - 1.0).powi(2)).sum()
}

pub fn ackley(x: &[f64]) -> f64 {
    let d = x.len() as f64;
    let sq = x.iter().map(|v| v * v).sum::<f64>() / d;
    let cs = x.iter().map(|v| (2.0 * PI * v).cos()).sum::<f64>() / d;
    -20.0 * (-0.2 * sq.sqrt()).exp() - cs.exp() + 20.0 + E
}

pub fn styblinski_tang(x: &[f64]) -> f64 {
    0.5 * x.iter().map(|v| v.powi(4) - 16.0 * v * v + 5.0 * v).sum::<f64>()
}

pub fn mixed(p: &Params) -> f64 {
    let lr = p["lr"].as_f64().unwrap();
    let layers = p["layers"].as_f64().unwrap();
    let pen = match p["model"].as_str().unwrap() {
        "lstm" => 0.0,
        "gru" => 0.3,
        _ => 1.0,
    };
    let dropout = p["dropout"].as_f64().unwrap();
    (lr.log10() + 3.0).powi(2) + 0.5 * (layers - 2.0).powi(2) + pen + 4.0 * (dropout - 0.1).powi(2)
}

/// Styblinski-Tang in `d` dimensions on [-5, 5]^d (optimum -39.166 d), for the `auto` threshold.
pub fn styblinski_tang_d(d: usize) -> TestFunction {
    TestFunction {
        name: "styblinski_tang_d",
        space: uniform_space(d, -5.0, 5.0),
        f: |p| styblinski_tang(&p.values().map(|v| v.as_f64().unwrap()).collect::<Vec<_>>()),
        noise: 0.0,
    }
}

pub fn all() -> Vec<TestFunction> {
    vec![
        TestFunction {
            name: "branin",
            space: Space::from_toml("[x0]\ntype = \"float\"\nlow = -5.0\nhigh = 10.0\n\n[x1]\ntype = \"float\"\nlow = 0.0\nhigh = 15.0\n").unwrap(),
            f: |p| branin(&xs(p, 2)),
            noise: 0.1,
        },
        TestFunction { name: "hartmann6", space: uniform_space(6, 0.0, 1.0), f: |p| hartmann6(&xs(p, 6)), noise: 0.05 },
        TestFunction { name: "rosenbrock", space: uniform_space(4, -5.0, 10.0), f: |p| rosenbrock(&xs(p, 4)), noise: 5.0 },
        TestFunction { name: "ackley", space: uniform_space(5, -32.768, 32.768), f: |p| ackley(&xs(p, 5)), noise: 0.3 },
        TestFunction { name: "styblinski_tang", space: uniform_space(5, -5.0, 5.0), f: |p| styblinski_tang(&xs(p, 5)),
            noise: 3.0,
        },
        TestFunction {
            name: "mixed",
            space: Space::from_toml(
                "[lr]\ntype = \"float\"\nlow = 1e-5\nhigh = 1e-1\nlog = true\n\n[layers]\ntype = \"int\"\nlow = 1\nhigh = 4\n\n\
                 [model]\ntype = \"categorical\"\nchoices = [\"lstm\", \"gru\", \"mlp\"]\n\n[dropout]\ntype = \"float\"\nlow = 0.0\nhigh = 0.5\n",
            )
            .unwrap(),
            f: mixed,
            noise: 0.05,
        },
    ]
}
