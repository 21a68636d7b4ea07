//! Phase 1: quasi-random points from a scrambled Halton sequence.
//!
//! Point i of dimension d is the radical inverse of i+1 in the d-th prime base, shifted by a
//! per-dimension offset drawn from the seed (a Cranley-Patterson rotation). Points depend only on
//! (seed, index), so workers that take different trial numbers take different points.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const PRIMES: [u64; 32] = [
    2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97, 101, 103, 107, 109,
    113, 127, 131,
];

fn radical_inverse(mut i: u64, base: u64) -> f64 {
    let inv = 1.0 / base as f64;
    let mut f = inv;
    let mut out = 0.0;
    while i > 0 {
        out += (i % base) as f64 * f;
        i /= base;
        f *= inv;
    }
    out
}

/// The index-th point of the seed's sequence in [0, 1)^dims.
pub fn halton(seed: u64, index: u64, dims: usize) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x4841_4c54_4f4e_0001);
    (0..dims)
        .map(|d| {
            let shift: f64 = rng.gen();
            let base = PRIMES[d % PRIMES.len()];
            // Beyond 32 dimensions bases repeat; a different index stride keeps them apart.
            let i = index + 1 + (d / PRIMES.len()) as u64 * 7919;
            (radical_inverse(i, base) + shift).fract()
        })
        .collect()
}
