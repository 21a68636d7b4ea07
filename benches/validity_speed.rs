//! What the selection statistics cost on a large study: PBO by CSCV (16 blocks, 12,870
//! combinations), the trials' mean correlation and the deflation, on 1,000 trials x 250 dates of
//! per-date hit shares (random, as a skill-less study's are). `cargo bench --bench validity_speed`.

use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn main() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for (trials, dates) in [(100, 250), (1_000, 250), (1_000, 1_000)] {
        let series: Vec<Vec<f64>> =
            (0..trials).map(|_| (0..dates).map(|_| f64::from(rng.gen_range(0..=5u8)) / 5.0).collect()).collect();
        let start = Instant::now();
        let pbo = hptune::validity::pbo(&series, 16, 0.5).expect("enough trials and dates");
        let pbo_s = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let rho = hptune::validity::mean_correlation(&series);
        let n_eff = hptune::validity::effective_trials(trials as f64, rho);
        let d = hptune::validity::deflate_accuracy(0.55, (dates, 0.3), 0.5, trials as f64, n_eff);
        let rest_s = start.elapsed().as_secs_f64();
        println!(
            "{trials} trials x {dates} dates: PBO {:.2} in {:.3} s; mean correlation, N_eff {:.0} and deflation (p {:.3}) in {:.4} s",
            pbo.pbo, pbo_s, n_eff, d.p_chance, rest_s
        );
    }
}
