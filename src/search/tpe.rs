//! Phase 2 and 3: a tree-structured Parzen estimator in the spirit of Optuna's TPESampler
//! (multivariate, with its default gamma and weights, and a prior kernel).
//!
//! Finished trials are split into the best `gamma(n) = min(ceil(0.1 n), 25)` ("good") and the rest
//! ("bad"); trials still running count as bad (Optuna's constant liar), so parallel workers spread
//! out. Each group becomes a mixture with one kernel per trial over all parameters jointly
//! (truncated normals on numeric coordinates, smoothed one-hot on categoricals) plus a flat prior
//! kernel. Candidates drawn from the good mixture are scored by log l(x) - log g(x); the best wins.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution as _, StandardNormal};

use super::space::Space;

/// Candidates drawn from the good mixture per suggestion (Optuna's n_ei_candidates).
pub const N_CANDIDATES: usize = 24;

/// One past trial in internal coordinates, with its objective oriented so that lower is better
/// (None for a running trial).
#[derive(Debug, Clone)]
pub struct Observation {
    pub x: Vec<f64>,
    pub loss: Option<f64>,
}

pub fn gamma(n: usize) -> usize {
    ((0.1 * n as f64).ceil() as usize).min(25)
}

/// Optuna's default weights: flat for the 25 newest, a ramp from 1/n for older ones.
fn weights(n: usize) -> Vec<f64> {
    if n < 25 {
        return vec![1.0; n];
    }
    let ramp = n - 25;
    (0..n)
        .map(|i| if i < ramp { 1.0 / n as f64 + (1.0 - 1.0 / n as f64) * i as f64 / ramp as f64 } else { 1.0 })
        .collect()
}

struct Mixture<'a> {
    points: Vec<&'a [f64]>,
    log_w: Vec<f64>,
    sigma: Vec<f64>,
    /// Per kernel and dimension: the log normaliser of its truncated normal.
    log_norm: Vec<Vec<f64>>,
    bounds: &'a [(f64, f64)],
    categorical: &'a [bool],
}

fn norm_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// erfc by a rational approximation (Numerical Recipes' erfcc, |error| < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

impl<'a> Mixture<'a> {
    /// A mixture over `points` (oldest first) plus a prior kernel at the centre of the bounds.
    fn new(points: Vec<&'a [f64]>, bounds: &'a [(f64, f64)], categorical: &'a [bool]) -> Self {
        let n = points.len();
        let d = bounds.len();
        let mut w = weights(n);
        w.push(1.0); // the prior
        let total: f64 = w.iter().sum();
        let log_w = w.iter().map(|x| (x / total).ln()).collect();
        // Optuna's multivariate bandwidth: 0.2 * range * n^(-1/(d+4)), clipped below.
        let sigma = bounds
            .iter()
            .map(|(lo, hi)| {
                let range = hi - lo;
                (0.2 * range * ((n.max(1)) as f64).powf(-1.0 / (d as f64 + 4.0)))
                    .max(range / (1.0 + n as f64).min(100.0) * 0.5)
            })
            .collect();
        let mut m = Self { points, log_w, sigma, log_norm: Vec::new(), bounds, categorical };
        m.log_norm = (0..m.n_kernels())
            .map(|k| {
                (0..d)
                    .map(|j| {
                        let (lo, hi) = bounds[j];
                        let (mu, s) = m.kernel(k, j);
                        let mass = (norm_cdf((hi - mu) / s) - norm_cdf((lo - mu) / s)).max(1e-12);
                        -(s * (2.0 * std::f64::consts::PI).sqrt()).ln() - mass.ln()
                    })
                    .collect()
            })
            .collect();
        m
    }

    /// Centre and width of kernel k on a numeric dimension j (the last kernel is the prior).
    fn kernel(&self, k: usize, j: usize) -> (f64, f64) {
        let (lo, hi) = self.bounds[j];
        if k == self.points.len() {
            ((lo + hi) / 2.0, hi - lo)
        } else {
            (self.points[k][j], self.sigma[j])
        }
    }

    fn n_kernels(&self) -> usize {
        self.points.len() + 1
    }

    /// Log density of kernel k at x, on dimension j.
    fn log_kernel(&self, k: usize, j: usize, x: f64) -> f64 {
        let (lo, hi) = self.bounds[j];
        if self.categorical[j] {
            let n_choices = (hi - lo).round().max(1.0);
            if k == self.points.len() {
                return -n_choices.ln();
            }
            // Smoothed one-hot: the observed choice gets most of the mass.
            let same = (self.points[k][j] - x).abs() < 0.5;
            let eps = 1.0 / (n_choices + self.points.len() as f64);
            let p = if same { 1.0 - eps * (n_choices - 1.0) } else { eps };
            return p.ln();
        }
        let (mu, s) = self.kernel(k, j);
        let z = (x - mu) / s;
        -0.5 * z * z + self.log_norm[k][j]
    }

    fn log_pdf(&self, x: &[f64]) -> f64 {
        let terms: Vec<f64> = (0..self.n_kernels())
            .map(|k| self.log_w[k] + (0..x.len()).map(|j| self.log_kernel(k, j, x[j])).sum::<f64>())
            .collect();
        let m = terms.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        m + terms.iter().map(|t| (t - m).exp()).sum::<f64>().ln()
    }

    fn sample(&self, rng: &mut ChaCha8Rng, region: &[(f64, f64)]) -> Vec<f64> {
        // Pick a kernel by weight, then draw each dimension from it, inside `region`.
        let u: f64 = rng.gen();
        let mut acc = 0.0;
        let mut k = self.n_kernels() - 1;
        for (i, lw) in self.log_w.iter().enumerate() {
            acc += lw.exp();
            if u < acc {
                k = i;
                break;
            }
        }
        (0..self.bounds.len())
            .map(|j| {
                let (lo, hi) = region[j];
                if self.categorical[j] {
                    let n_choices = (self.bounds[j].1 - self.bounds[j].0).round() as usize;
                    let keep = k < self.points.len() && rng.gen::<f64>() < 0.8;
                    let c = if keep { self.points[k][j] } else { rng.gen_range(0..n_choices) as f64 };
                    return c.clamp(lo.ceil().max(0.0), hi.floor());
                }
                let (mu, s) = self.kernel(k, j);
                for _ in 0..100 {
                    let z: f64 = StandardNormal.sample(rng);
                    let x = mu + s * z;
                    if x >= lo && x <= hi {
                        return x;
                    }
                }
                mu.clamp(lo, hi)
            })
            .collect()
    }
}

/// Suggests the next point (internal coordinates) inside `region` (the space's bounds, or a
/// narrower box in phase 3). `rng` should derive from (seed, trial number).
pub fn suggest(space: &Space, history: &[Observation], region: &[(f64, f64)], rng: &mut ChaCha8Rng) -> Vec<f64> {
    let bounds = space.bounds();
    let categorical: Vec<bool> = space.params.iter().map(|p| p.dist.is_categorical()).collect();
    let mut done: Vec<&Observation> = history.iter().filter(|o| o.loss.is_some()).collect();
    // Best first; ties keep history order, so results do not depend on sort stability.
    done.sort_by(|a, b| a.loss.unwrap().total_cmp(&b.loss.unwrap()));
    let n_good = gamma(done.len());
    let good: Vec<&[f64]> = done[..n_good].iter().map(|o| o.x.as_slice()).collect();
    let mut bad: Vec<&[f64]> = done[n_good..].iter().map(|o| o.x.as_slice()).collect();
    bad.extend(history.iter().filter(|o| o.loss.is_none()).map(|o| o.x.as_slice()));
    let l = Mixture::new(good, &bounds, &categorical);
    let g = Mixture::new(bad, &bounds, &categorical);
    let mut best: Option<(f64, Vec<f64>)> = None;
    for _ in 0..N_CANDIDATES {
        let x = l.sample(rng, region);
        let score = l.log_pdf(&x) - g.log_pdf(&x);
        if best.as_ref().is_none_or(|(s, _)| score > *s) {
            best = Some((score, x));
        }
    }
    best.unwrap().1
}

/// Phase 3's region: the box spanned by the best `k` finished trials, widened by a quarter of
/// each parameter's range on both sides and clipped to the space; categoricals keep the choices
/// the best trials used (as an index range).
pub fn narrowed_region(space: &Space, history: &[Observation], k: usize) -> Vec<(f64, f64)> {
    let bounds = space.bounds();
    let mut done: Vec<&Observation> = history.iter().filter(|o| o.loss.is_some()).collect();
    done.sort_by(|a, b| a.loss.unwrap().total_cmp(&b.loss.unwrap()));
    let top = &done[..k.min(done.len())];
    if top.is_empty() {
        return bounds;
    }
    bounds
        .iter()
        .enumerate()
        .map(|(j, &(lo, hi))| {
            let min = top.iter().map(|o| o.x[j]).fold(f64::INFINITY, f64::min);
            let max = top.iter().map(|o| o.x[j]).fold(f64::NEG_INFINITY, f64::max);
            if space.params[j].dist.is_categorical() {
                (min - 0.5, max + 0.5)
            } else {
                let pad = 0.25 * (hi - lo);
                ((min - pad).max(lo), (max + pad).min(hi))
            }
        })
        .collect()
}
