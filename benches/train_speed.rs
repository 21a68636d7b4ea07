//! Training and inference throughput of each model type on the shipped data's shape
//! (window 30 days x 20 tickers x 4 features), by the protocol of `../shared/ref/TORCH_SHAPES.md`:
//! 4,000 samples, batch 64 with a shuffle per epoch, AdamW (lr 1e-3, weight decay 0.01),
//! 1 warm-up + 3 timed epochs; inference in batches of 256, 1 warm-up + 3 timed passes.
//!
//! Run: `RAYON_NUM_THREADS=1 cargo bench --bench train_speed` (and `=2`), beside
//! `benches/torch_speed.py --threads 1` (and `2`). Name model types after `--` to run only
//! those (`cargo bench --bench train_speed -- mlp`), e.g. under `perf record`.

use std::time::Instant;

use hptune::model::{adamw, run_epoch, ModelType, Net, NetShape, Samples};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

const N: usize = 4000;
const T: usize = 30;
const I: usize = 80;
const O: usize = 20;

fn main() -> anyhow::Result<()> {
    hptune::keep_freed_memory();
    hptune::candle_ops_inline();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let x: Vec<f32> = (0..N * T * I).map(|_| StandardNormal.sample(&mut rng)).collect();
    let y: Vec<f32> = (0..N * O).map(|_| if rng.gen::<f64>() < 0.5 { 1.0 } else { 0.0 }).collect();
    let samples = Samples { x, y, n: N, seq_len: T, inputs: I, outputs: O };
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into());
    let only: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    println!("model  threads  train samples/s  infer samples/s  params");
    for (model_type, hidden, dropout) in
        [(ModelType::Mlp, 128, 0.1), (ModelType::Lstm, 64, 0.0), (ModelType::Gru, 64, 0.0)]
    {
        if !only.is_empty() && !only.iter().any(|m| m == model_type.name()) {
            continue;
        }
        let shape =
            NetShape { model_type, seq_len: T, inputs: I, outputs: O, hidden_size: hidden, num_layers: 2, dropout };
        let net = Net::new(shape, &mut ChaCha8Rng::seed_from_u64(1), &candle_core::Device::Cpu)?;
        let mut opt = adamw(&net, 1e-3, 0.01)?;
        let mut order: Vec<usize> = (0..N).collect();
        let mut drop_rng = ChaCha8Rng::seed_from_u64(2);
        let mut timed = 0.0;
        for epoch in 0..4 {
            order.shuffle(&mut rng);
            let start = Instant::now();
            run_epoch(&net, &mut opt, &samples, &order, 64, &mut drop_rng)?;
            if epoch > 0 {
                timed += start.elapsed().as_secs_f64();
            }
        }
        let mut infer = 0.0;
        for pass in 0..4 {
            let start = Instant::now();
            let out = net.predict(&samples.x, N, 256)?;
            assert_eq!(out.len(), N * O);
            if pass > 0 {
                infer += start.elapsed().as_secs_f64();
            }
        }
        println!(
            "{:<6} {:>7}  {:>15.0}  {:>15.0}  {}",
            model_type.name(),
            threads,
            3.0 * N as f64 / timed,
            3.0 * N as f64 / infer,
            net.n_params()
        );
    }
    Ok(())
}
