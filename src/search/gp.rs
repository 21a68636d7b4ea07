//! Gaussian-process Bayesian optimisation, after Optuna's `GPSampler`.
//!
//! Parameters live on the unit cube (internal coordinates, so log parameters are log-scaled;
//! integers and steps are rounded when the point becomes parameters); a categorical parameter
//! keeps its choice index and the kernel compares it by equality (Hamming distance). The kernel
//! is an ARD Matérn-5/2 with a scale and a fitted noise term; its parameters maximise the
//! marginal likelihood plus Optuna's priors (L-BFGS on their logarithms). The next point
//! maximises log expected improvement: 2,048 random candidates (scored with one matrix product),
//! then local searches from the best ten of them and from the best trial so far: gradient ascent on
//! the continuous coordinates (preconditioned by the length scales, until the projected gradient is
//! below Optuna's tolerance), int and stepped parameters searched on their grid of
//! legal values, and each categorical's choices swept.
//! Before the fit the objective values are standardised and warped by a Yeo-Johnson transform
//! fitted to them (see `yeo_johnson`).
//! Running trials enter as pending points valued at the posterior mean (the "kriging believer"),
//! which keeps the mean and removes the variance there, so parallel workers spread out.
//! Where trials differ in cost (a study of models: a 3-layer LSTM trains a hundred times longer
//! than a linear model), the log expected improvement is priced by the log of the cost, weighted
//! by a factor that falls from 1 to 0 over the budget (`Price`): improvement per unit of cost
//! first, improvement alone by the end.

use argmin::core::{CostFunction, Executor, Gradient};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
use nalgebra::{Cholesky, DMatrix, DVector, Dyn};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::space::Space;
use super::tpe::Observation;
use crate::stats::{mean, norm_cdf, norm_pdf, population_var};

/// Random candidates scored before the local search (Optuna's `n_preliminary_samples`).
pub const N_CANDIDATES: usize = 2048;
/// Starting points of the local search (Optuna's `n_local_search`).
const N_LOCAL: usize = 10;
/// The smallest noise variance (of the standardised objective).
const MIN_NOISE: f64 = 1e-6;

/// Kernel parameters: inverse squared length scales per dimension, the scale, the noise variance.
#[derive(Debug, Clone, PartialEq)]
pub struct Kernel {
    pub inv_sq_lengths: Vec<f64>,
    pub scale: f64,
    pub noise: f64,
}

impl Kernel {
    /// From the log parameters the fit moves: [ln λ_1..ln λ_d, ln scale, ln (noise - MIN_NOISE)].
    fn from_raw(raw: &[f64]) -> Self {
        let d = raw.len() - 2;
        Self {
            inv_sq_lengths: raw[..d].iter().map(|r| r.exp()).collect(),
            scale: raw[d].exp(),
            noise: MIN_NOISE + raw[d + 1].exp(),
        }
    }
}

/// Zero mean, unit (population) standard deviation.
fn standardise(v: &[f64]) -> Vec<f64> {
    let (mu, sd) = (mean(v), population_var(v).sqrt().max(1e-12));
    v.iter().map(|y| (y - mu) / sd).collect()
}

/// The Yeo-Johnson transform of one value (Yeo and Johnson 2000): monotone, λ = 1 the identity,
/// λ < 1 compresses the upper tail and λ > 1 the lower one (λ = 2: -ln(1 - x) below zero).
fn yj(x: f64, lambda: f64) -> f64 {
    if x >= 0.0 {
        if lambda.abs() < 1e-9 {
            x.ln_1p()
        } else {
            ((1.0 + x).powf(lambda) - 1.0) / lambda
        }
    } else if (lambda - 2.0).abs() < 1e-9 {
        -(-x).ln_1p()
    } else {
        -((1.0 - x).powf(2.0 - lambda) - 1.0) / (2.0 - lambda)
    }
}

/// The objective values warped to look normal before the GP sees them, as HEBO does: the
/// Yeo-Johnson transform with the λ of most likelihood (golden-section search over [-2, 4]).
/// Objectives with a long tail of bad values (Rosenbrock's span six orders of magnitude) get it
/// compressed, so the GP models the good region instead of the worst trials; values that already
/// look normal keep λ near 1. The order of the values, and so the best trial, is unchanged.
/// (`sampler_quality`, 20 seeds, median best at 50 trials without and with it: Rosenbrock 237 vs
/// 15.4, Ackley 6.15 vs 3.85, Styblinski-Tang -149.0 vs -163.3, Hartmann-6 -3.261 vs -3.320.)
/// Written here: the transform is a few lines, and no well-kept crate offers it with the fit.
fn yeo_johnson(z: &[f64]) -> Vec<f64> {
    let n = z.len() as f64;
    let jacobian: f64 = z.iter().map(|x| x.signum() * x.abs().ln_1p()).sum();
    let log_likelihood = |lambda: f64| {
        let w: Vec<f64> = z.iter().map(|&x| yj(x, lambda)).collect();
        -0.5 * n * population_var(&w).max(1e-300).ln() + (lambda - 1.0) * jacobian
    };
    let (mut a, mut b) = (-2.0, 4.0);
    let g = 0.5 * (5f64.sqrt() - 1.0);
    for _ in 0..60 {
        let (c, d) = (b - g * (b - a), a + g * (b - a));
        if log_likelihood(c) > log_likelihood(d) {
            b = d;
        } else {
            a = c;
        }
    }
    let lambda = 0.5 * (a + b);
    z.iter().map(|&x| yj(x, lambda)).collect()
}

/// Matérn-5/2 as a function of the squared distance, and its derivative in the squared distance.
fn matern52(r2: f64) -> (f64, f64) {
    let r = (5.0 * r2).sqrt();
    let e = (-r).exp();
    ((1.0 + r + r * r / 3.0) * e, -5.0 / 6.0 * (1.0 + r) * e)
}

/// K⁻¹ from K's Cholesky factor L, as L⁻ᵀ L⁻¹: L⁻¹ column by column by forward substitution from
/// each column's diagonal down (nalgebra's `Cholesky::inverse` solves against the whole identity,
/// running through the zeros above the diagonal: two thirds of a fit's time at 300 trials), then
/// one matrix product.
fn inverse(chol: &Cholesky<f64, Dyn>) -> DMatrix<f64> {
    let l = chol.l_dirty();
    let n = l.nrows();
    let mut m = DMatrix::zeros(n, n);
    for j in 0..n {
        let mut x = m.column_mut(j);
        x[j] = 1.0;
        for k in j..n {
            x[k] /= l[(k, k)];
            let xk = x[k];
            for (xi, li) in x.as_mut_slice()[k + 1..].iter_mut().zip(&l.column(k).as_slice()[k + 1..]) {
                *xi -= xk * li;
            }
        }
    }
    m.transpose() * m
}

/// One dimension's squared difference: (a - b)^2, or 0/1 for a categorical one.
fn delta(a: f64, b: f64, categorical: bool) -> f64 {
    if categorical {
        f64::from(u8::from((a - b).abs() > 0.5))
    } else {
        (a - b) * (a - b)
    }
}

fn sq_dist(a: &[f64], b: &[f64], k: &Kernel, categorical: &[bool]) -> f64 {
    (0..a.len()).map(|t| delta(a[t], b[t], categorical[t]) * k.inv_sq_lengths[t]).sum()
}

/// The GP conditioned on data: what the acquisition asks.
pub struct Posterior {
    x: Vec<Vec<f64>>,
    categorical: Vec<bool>,
    kernel: Kernel,
    /// K⁻¹ (noise on the diagonal), kept whole as Optuna keeps it: a variance is then one
    /// matrix-vector product, and a batch of them one matrix product.
    kinv: DMatrix<f64>,
    alpha: DVector<f64>,
}

impl Posterior {
    /// None when the kernel matrix is not positive definite.
    pub fn new(x: Vec<Vec<f64>>, y: &[f64], kernel: Kernel, categorical: Vec<bool>) -> Option<Self> {
        let n = x.len();
        let km = DMatrix::from_fn(n, n, |i, j| {
            kernel.scale * matern52(sq_dist(&x[i], &x[j], &kernel, &categorical)).0
                + if i == j { kernel.noise } else { 0.0 }
        });
        let chol = km.cholesky()?;
        let alpha = chol.solve(&DVector::from_column_slice(y));
        let kinv = inverse(&chol);
        Some(Self { x, categorical, kernel, kinv, alpha })
    }

    /// The kernel against every data point, and the derivative of each in the squared distance.
    fn k_star(&self, p: &[f64]) -> (DVector<f64>, Vec<f64>) {
        let (k, dk): (Vec<f64>, Vec<f64>) = self
            .x
            .iter()
            .map(|xi| {
                let (m, dm) = matern52(sq_dist(p, xi, &self.kernel, &self.categorical));
                (self.kernel.scale * m, self.kernel.scale * dm)
            })
            .unzip();
        (DVector::from_vec(k), dk)
    }

    /// Posterior mean and variance of the latent function at `p`.
    pub fn mean_var(&self, p: &[f64]) -> (f64, f64) {
        let (k, _) = self.k_star(p);
        (k.dot(&self.alpha), (self.kernel.scale - k.dot(&(&self.kinv * &k))).max(1e-12))
    }

    /// Posterior means and variances at many points: the kernel against the data as one matrix,
    /// the variances from one product with K⁻¹.
    fn mean_var_many(&self, ps: &[Vec<f64>]) -> Vec<(f64, f64)> {
        let ks = DMatrix::from_fn(ps.len(), self.x.len(), |i, j| {
            self.kernel.scale * matern52(sq_dist(&ps[i], &self.x[j], &self.kernel, &self.categorical)).0
        });
        let b = &ks * &self.kinv;
        let means = &ks * &self.alpha;
        (0..ps.len()).map(|i| (means[i], (self.kernel.scale - ks.row(i).dot(&b.row(i))).max(1e-12))).collect()
    }

    /// Mean, variance and their gradients in the numeric coordinates of `p` (zero on
    /// categorical ones).
    fn mean_var_grad(&self, p: &[f64]) -> (f64, f64, Vec<f64>, Vec<f64>) {
        let (k, dk) = self.k_star(p);
        let beta = &self.kinv * &k;
        let d = p.len();
        let (mut dm, mut dv) = (vec![0.0; d], vec![0.0; d]);
        for (i, xi) in self.x.iter().enumerate() {
            for j in (0..d).filter(|&j| !self.categorical[j]) {
                let dki = dk[i] * self.kernel.inv_sq_lengths[j] * 2.0 * (p[j] - xi[j]);
                dm[j] += self.alpha[i] * dki;
                dv[j] -= 2.0 * beta[i] * dki;
            }
        }
        let var = self.kernel.scale - k.dot(&beta);
        (k.dot(&self.alpha), var.max(1e-12), dm, dv)
    }
}

/// A value and its gradient.
type ValueGrad = (f64, Vec<f64>);

/// The fit's objective: minus (log marginal likelihood + log prior), over the log parameters.
struct Evidence<'a> {
    x: &'a [Vec<f64>],
    y: &'a [f64],
    categorical: &'a [bool],
    /// The last point evaluated: L-BFGS asks the cost and the gradient of each point apart.
    last: std::cell::RefCell<Option<(Vec<f64>, Option<ValueGrad>)>>,
}

impl Evidence<'_> {
    /// The objective and its gradient, or None where the kernel matrix is not positive definite.
    fn value_grad(&self, raw: &[f64]) -> Option<(f64, Vec<f64>)> {
        let (x, n, d) = (self.x, self.x.len(), raw.len() - 2);
        let k = Kernel::from_raw(raw);
        let mut m = DMatrix::zeros(n, n);
        let mut dm = DMatrix::zeros(n, n);
        for i in 0..n {
            for j in 0..=i {
                let (v, dv) = matern52(sq_dist(&x[i], &x[j], &k, self.categorical));
                (m[(i, j)], m[(j, i)], dm[(i, j)], dm[(j, i)]) = (v, v, dv, dv);
            }
        }
        let km = &m * k.scale + DMatrix::identity(n, n) * k.noise;
        let chol = km.cholesky()?;
        let y = DVector::from_column_slice(self.y);
        let alpha = chol.solve(&y);
        let log_det: f64 = chol.l().diagonal().iter().map(|v| v.ln()).sum::<f64>() * 2.0;
        let lml = -0.5 * y.dot(&alpha) - 0.5 * log_det - 0.5 * n as f64 * (2.0 * std::f64::consts::PI).ln();
        // Optuna's priors: on each λ, -(0.1/λ + 0.1 λ); Gamma(2, 1) on the scale; Gamma(1.1, 30)
        // on the noise.
        let lp = -k.inv_sq_lengths.iter().map(|l| 0.1 / l + 0.1 * l).sum::<f64>() + k.scale.ln() - k.scale
            + 0.1 * k.noise.ln()
            - 30.0 * k.noise;
        // d lml / d θ = 1/2 tr(W dK/dθ), W = α αᵀ - K⁻¹.
        let w = &alpha * alpha.transpose() - inverse(&chol);
        let mut grad = vec![0.0; d + 2];
        // Over pairs i > j (W and dK are symmetric; the diagonal has no distance).
        for i in 0..n {
            for j in 0..i {
                let c = w[(i, j)] * k.scale * dm[(i, j)];
                for (t, (a, b)) in x[i].iter().zip(&x[j]).enumerate() {
                    grad[t] += c * delta(*a, *b, self.categorical[t]);
                }
                grad[d] += w[(i, j)] * k.scale * m[(i, j)];
            }
            grad[d] += 0.5 * w[(i, i)] * k.scale * m[(i, i)];
            grad[d + 1] += 0.5 * w[(i, i)] * (k.noise - MIN_NOISE);
        }
        for (g, l) in grad.iter_mut().zip(&k.inv_sq_lengths) {
            *g *= l;
        }
        for (g, l) in grad.iter_mut().zip(&k.inv_sq_lengths) {
            *g += 0.1 / l - 0.1 * l;
        }
        grad[d] += 1.0 - k.scale;
        grad[d + 1] += (0.1 / k.noise - 30.0) * (k.noise - MIN_NOISE);
        Some((-(lml + lp), grad.into_iter().map(|g| -g).collect()))
    }
}

impl Evidence<'_> {
    fn cached(&self, raw: &[f64]) -> Option<(f64, Vec<f64>)> {
        let mut last = self.last.borrow_mut();
        match &*last {
            Some((at, value)) if at == raw => value.clone(),
            _ => {
                let value = self.value_grad(raw);
                *last = Some((raw.to_vec(), value.clone()));
                value
            }
        }
    }
}

impl CostFunction for Evidence<'_> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, raw: &Vec<f64>) -> Result<f64, argmin::core::Error> {
        Ok(self.cached(raw).map_or(1e10, |(v, _)| v))
    }
}

impl Gradient for Evidence<'_> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, raw: &Vec<f64>) -> Result<Vec<f64>, argmin::core::Error> {
        Ok(self.cached(raw).map_or_else(|| vec![0.0; raw.len()], |(_, g)| g))
    }
}

/// The kernel parameters with the most evidence for (x, y), from λ = 1, scale 1, noise 1 (as Optuna starts).
pub fn fit(x: &[Vec<f64>], y: &[f64], categorical: &[bool]) -> Kernel {
    let d = categorical.len();
    let mut start = vec![0.0; d];
    start.extend([0.0, (1.0f64 - MIN_NOISE).ln()]);
    let evidence = Evidence { x, y, categorical, last: Default::default() };
    // Optuna stops its L-BFGS-B at a gradient of 1e-2 (its `gtol`).
    let solver = LBFGS::new(MoreThuenteLineSearch::new(), 10).with_tolerance_grad(1e-2).expect("a positive tolerance");
    let best = Executor::new(evidence, solver)
        .configure(|s| s.param(start.clone()).max_iters(100))
        .run()
        .ok()
        .and_then(|r| r.state.best_param)
        .filter(|raw| raw.iter().all(|v| v.is_finite()));
    Kernel::from_raw(&best.unwrap_or(start))
}

/// ln(φ(z) + z Φ(z)) (EI of a unit normal over a threshold z below its mean), and its derivative
/// Φ(z) / (φ(z) + z Φ(z)); far in the lower tail from the asymptotic series, where the direct
/// form would cancel to zero.
fn log_h(z: f64) -> (f64, f64) {
    if z > -8.0 {
        let h = norm_pdf(z) + z * norm_cdf(z);
        return (h.ln(), norm_cdf(z) / h);
    }
    // With u = 1/z²: h(z) = φ(z) u (1 - 3u + 15u² - 105u³ + 945u⁴ ...) and Φ(z) = φ(z) |z|⁻¹
    // (1 - u + 3u² - 15u³ + 105u⁴ ...), both asymptotic series, within 1e-7 relative past -8.
    let u = 1.0 / (z * z);
    let s = u * (1.0 - 3.0 * u * (1.0 - 5.0 * u * (1.0 - 7.0 * u * (1.0 - 9.0 * u))));
    let r = (1.0 - u * (1.0 - 3.0 * u * (1.0 - 5.0 * u * (1.0 - 7.0 * u)))) / -z;
    (-0.5 * z * z - 0.5 * (2.0 * std::f64::consts::PI).ln() + s.ln(), r / s)
}

/// Log expected improvement over `best` (maximising) at mean m and variance v, with its
/// derivatives in m and v.
fn log_ei(m: f64, v: f64, best: f64) -> (f64, f64, f64) {
    let s = v.sqrt();
    let z = (m - best) / s;
    let (lh, dlh) = log_h(z);
    (lh + s.ln(), dlh / s, (1.0 - dlh * z) / (2.0 * v))
}

/// The acquisition at p, with its gradient in the numeric coordinates.
fn acquisition(post: &Posterior, best: f64, p: &[f64]) -> (f64, Vec<f64>) {
    let (m, v, dm, dv) = post.mean_var_grad(p);
    let (a, da_dm, da_dv) = log_ei(m, v, best);
    (a, dm.iter().zip(&dv).map(|(dm, dv)| da_dm * dm + da_dv * dv).collect())
}

/// A point on the unit cube (categoricals: a choice index), for the space's parameters.
struct Unit {
    bounds: Vec<(f64, f64)>,
    /// Choices of each categorical parameter (0 for numeric ones).
    choices: Vec<usize>,
    categorical: Vec<bool>,
    /// The legal values of each int or stepped float parameter inside the region, on the unit
    /// cube (None for continuous and categorical ones).
    grids: Vec<Option<Vec<f64>>>,
    /// The region to search, on the unit cube (numeric dimensions).
    region: Vec<(f64, f64)>,
}

impl Unit {
    fn new(space: &Space, region: &[(f64, f64)]) -> Self {
        let bounds = space.bounds();
        let categorical: Vec<bool> = space.params.iter().map(|p| p.dist.is_categorical()).collect();
        let choices = bounds.iter().zip(&categorical).map(|(b, &c)| if c { (b.1 + 0.5) as usize } else { 0 }).collect();
        let region: Vec<(f64, f64)> = region
            .iter()
            .zip(&bounds)
            .map(|(r, b)| (((r.0 - b.0) / (b.1 - b.0)).clamp(0.0, 1.0), ((r.1 - b.0) / (b.1 - b.0)).clamp(0.0, 1.0)))
            .collect();
        let grids = space
            .params
            .iter()
            .zip(&bounds)
            .zip(&region)
            .map(|((p, b), r)| {
                let all: Vec<f64> = p.dist.grid()?.iter().map(|v| (v - b.0) / (b.1 - b.0)).collect();
                let inside: Vec<f64> = all.iter().copied().filter(|v| *v >= r.0 - 1e-12 && *v <= r.1 + 1e-12).collect();
                let mid = 0.5 * (r.0 + r.1);
                Some(if inside.is_empty() {
                    vec![all.into_iter().min_by(|a, b| (a - mid).abs().total_cmp(&(b - mid).abs()))?]
                } else {
                    inside
                })
            })
            .collect();
        Self { bounds, choices, categorical, grids, region }
    }

    /// Whether dimension j is searched by gradient (numeric and not on a grid).
    fn continuous(&self, j: usize) -> bool {
        !self.categorical[j] && self.grids[j].is_none()
    }

    /// Moves each gridded coordinate to its nearest legal value.
    fn snap(&self, p: &mut [f64]) {
        for (v, grid) in p.iter_mut().zip(&self.grids) {
            if let Some(g) = grid {
                *v = g[nearest(g, *v)];
            }
        }
    }

    fn to_unit(&self, x: &[f64]) -> Vec<f64> {
        x.iter()
            .zip(&self.bounds)
            .zip(&self.categorical)
            .map(|((v, b), &c)| if c { v.round() } else { (v - b.0) / (b.1 - b.0) })
            .collect()
    }

    fn internal(&self, u: &[f64]) -> Vec<f64> {
        u.iter()
            .zip(&self.bounds)
            .zip(&self.categorical)
            .map(|((v, b), &c)| if c { *v } else { b.0 + v * (b.1 - b.0) })
            .collect()
    }

    fn random(&self, rng: &mut ChaCha8Rng) -> Vec<f64> {
        self.region
            .iter()
            .zip(&self.choices)
            .zip(&self.grids)
            .map(|((r, &c), grid)| match grid {
                _ if c > 0 => rng.gen_range(0..c) as f64,
                Some(g) => g[rng.gen_range(0..g.len())],
                None => rng.gen_range(r.0..=r.1),
            })
            .collect()
    }

    fn clamp(&self, p: &mut [f64]) {
        for ((v, r), &c) in p.iter_mut().zip(&self.region).zip(&self.categorical) {
            if !c {
                *v = v.clamp(r.0, r.1);
            }
        }
    }
}

/// The index of the grid value nearest to v (grids are sorted).
fn nearest(grid: &[f64], v: f64) -> usize {
    let i = grid.partition_point(|g| *g < v);
    if i == 0 || (i < grid.len() && grid[i] - v < v - grid[i - 1]) {
        i.min(grid.len() - 1)
    } else {
        i - 1
    }
}

/// The ascent stops where no coordinate's projected gradient (in x / l) reaches this, as Optuna's
/// L-BFGS-B does (its `pgtol`, the square root of its tolerance 1e-4).
const PGTOL: f64 = 1e-2;

/// Grids of at most this many values are swept whole; longer ones two steps each side.
const SWEEP_MAX: usize = 16;

/// Local search from `start`, as Optuna's: gradient ascent on the continuous coordinates
/// (preconditioned by the length scales: steps are taken in x / l, where the acquisition is about
/// equally curved in every direction), then each gridded parameter's best value near it and each
/// categorical's best choice, until a round changes nothing. The price counts in every value
/// compared; its gradient is taken as zero (a cost that a continuous coordinate changes does so in
/// steps, where it is rounded to an int, or not at all).
fn local_search(post: &Posterior, best: f64, unit: &Unit, price: &Price, start: Vec<f64>) -> (f64, Vec<f64>) {
    let lengths: Vec<f64> = post.kernel.inv_sq_lengths.iter().map(|l| 1.0 / l.sqrt()).collect();
    let continuous: Vec<usize> = (0..start.len()).filter(|&j| unit.continuous(j)).collect();
    let acquisition = |p: &[f64]| {
        let (a, g) = acquisition(post, best, p);
        (a - price.of(unit, p), g)
    };
    let mut p = start;
    let (mut value, mut grad) = acquisition(&p);
    for _ in 0..10 {
        let mut step = 0.1;
        for _ in 0..200 {
            // The gradient in x / l, less what points out of the region.
            let g: Vec<(usize, f64)> = continuous
                .iter()
                .map(|&j| {
                    let (gz, (lo, hi)) = (grad[j] * lengths[j], unit.region[j]);
                    (j, if (p[j] <= lo && gz < 0.0) || (p[j] >= hi && gz > 0.0) { 0.0 } else { gz })
                })
                .collect();
            if g.iter().all(|(_, v)| v.abs() < PGTOL) || step < 1e-7 {
                break;
            }
            let norm = g.iter().map(|(_, v)| v * v).sum::<f64>().sqrt();
            let mut q = p.clone();
            for &(j, gz) in &g {
                q[j] += step * lengths[j] * gz / norm;
            }
            unit.clamp(&mut q);
            let (qv, qg) = acquisition(&q);
            if qv > value {
                (p, value, grad) = (q, qv, qg);
                step *= 1.5;
            } else {
                step *= 0.5;
            }
        }
        let mut changed = false;
        for j in 0..p.len() {
            let tries: Vec<f64> = match &unit.grids[j] {
                _ if unit.categorical[j] => (0..unit.choices[j]).map(|c| c as f64).collect(),
                Some(g) if g.len() <= SWEEP_MAX => g.clone(),
                Some(g) => {
                    let i = nearest(g, p[j]);
                    g[i.saturating_sub(2)..(i + 3).min(g.len())].to_vec()
                }
                None => continue,
            };
            for v in tries {
                if v == p[j] {
                    continue;
                }
                let mut q = p.clone();
                q[j] = v;
                let (qv, qg) = acquisition(&q);
                if qv > value {
                    (p, value, grad) = (q, qv, qg);
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    (value, p)
}

/// The log of a trial's cost at a point in internal coordinates (any unit: only differences
/// between points count).
pub type LogCost<'a> = &'a dyn Fn(&[f64]) -> f64;

/// What a point costs the acquisition: `alpha` times the log of a trial's cost there, taken off
/// its log expected improvement, so that the search asks for improvement per unit of cost raised
/// to `alpha` (cost-cooled EI, Lee et al. 2020, "Cost-aware Bayesian optimization"; Snoek et al.
/// 2012's EI per second at `alpha` = 1).
pub struct Price<'a> {
    pub log_cost: Option<LogCost<'a>>,
    pub alpha: f64,
}

impl Price<'_> {
    /// The price at p (unit coordinates).
    fn of(&self, unit: &Unit, p: &[f64]) -> f64 {
        match self.log_cost {
            Some(f) if self.alpha > 0.0 => self.alpha * f(&unit.internal(p)),
            _ => 0.0,
        }
    }
}

/// The most finished trials the GP fits on. Its fit is cubic in them (4.7 s a suggestion at 1,000
/// trials on the mixed space, one thread, against 11 ms at 100 and 155 ms at 300): past this,
/// it fits on the best half of them by value and the most recent rest, so a suggestion costs
/// what one at `MAX_FIT` trials costs at any budget, the model stays sharp where the optimum is,
/// and the latest trials (those around the points it proposed last) keep it moving.
pub const MAX_FIT: usize = 200;

/// The observations the GP fits: all of them up to `MAX_FIT` finished ones, else the best
/// `MAX_FIT / 2` by loss and the latest of the rest up to `MAX_FIT`; running trials always (in
/// their order, which is the trials').
fn bounded(observations: &[Observation]) -> Vec<Observation> {
    let finished: Vec<usize> = (0..observations.len()).filter(|&i| observations[i].loss.is_some()).collect();
    if finished.len() <= MAX_FIT {
        return observations.to_vec();
    }
    let mut by_loss = finished.clone();
    by_loss.sort_by(|&a, &b| observations[a].loss.unwrap().total_cmp(&observations[b].loss.unwrap()).then(a.cmp(&b)));
    let mut keep = vec![false; observations.len()];
    for &i in by_loss.iter().take(MAX_FIT / 2) {
        keep[i] = true;
    }
    let mut kept = MAX_FIT / 2;
    for &i in finished.iter().rev() {
        if kept == MAX_FIT {
            break;
        }
        if !keep[i] {
            keep[i] = true;
            kept += 1;
        }
    }
    observations.iter().enumerate().filter(|(i, o)| keep[*i] || o.loss.is_none()).map(|(_, o)| o.clone()).collect()
}

/// The next point in internal coordinates, inside `region` (internal bounds per parameter).
/// Needs at least one finished observation.
pub fn suggest(
    space: &Space,
    observations: &[Observation],
    region: &[(f64, f64)],
    price: &Price,
    rng: &mut ChaCha8Rng,
) -> Vec<f64> {
    let kept = bounded(observations);
    let observations = kept.as_slice();
    let unit = Unit::new(space, region);
    let finished: Vec<(Vec<f64>, f64)> =
        observations.iter().filter_map(|o| o.loss.map(|l| (unit.to_unit(&o.x), -l))).collect();
    let pending: Vec<Vec<f64>> = observations.iter().filter(|o| o.loss.is_none()).map(|o| unit.to_unit(&o.x)).collect();
    let values: Vec<f64> = finished.iter().map(|(_, y)| *y).collect();
    let y = standardise(&yeo_johnson(&standardise(&values)));
    let x: Vec<Vec<f64>> = finished.iter().map(|(x, _)| x.clone()).collect();
    let kernel = fit(&x, &y, &unit.categorical);
    let Some(mut post) = Posterior::new(x.clone(), &y, kernel.clone(), unit.categorical.clone()) else {
        return unit.internal(&unit.random(rng));
    };
    let best = y.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let best_x = x[y.iter().position(|v| *v == best).expect("a finished trial")].clone();
    if !pending.is_empty() {
        let (mut px, mut py) = (x, y);
        for p in pending {
            py.push(post.mean_var(&p).0);
            px.push(p);
        }
        if let Some(p) = Posterior::new(px, &py, kernel, unit.categorical.clone()) {
            post = p;
        }
    }
    let candidates: Vec<Vec<f64>> = (0..N_CANDIDATES).map(|_| unit.random(rng)).collect();
    let mut scored: Vec<(f64, Vec<f64>)> = post
        .mean_var_many(&candidates)
        .into_iter()
        .zip(candidates)
        .map(|((m, v), p)| (log_ei(m, v, best).0 - price.of(&unit, &p), p))
        .collect();
    // The best N_LOCAL candidates start local searches (Optuna draws all but the best by a
    // roulette weighted by expected improvement: 20 seeds of Styblinski-Tang found -170.5 median
    // at 100 trials with it, -181.1 with the best ten).
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut starts: Vec<Vec<f64>> = scored.into_iter().take(N_LOCAL).map(|(_, p)| p).collect();
    let mut inside = best_x;
    unit.clamp(&mut inside);
    unit.snap(&mut inside);
    starts.push(inside);
    let (_, p) = starts
        .into_iter()
        .map(|s| local_search(&post, best, &unit, price, s))
        .fold((f64::NEG_INFINITY, Vec::new()), |a, b| if b.0 > a.0 { b } else { a });
    unit.internal(&p)
}

#[cfg(test)]
mod tests {
    use super::{bounded, fit, log_ei, matern52, Evidence, Kernel, Observation, Posterior, MAX_FIT};

    #[test]
    fn past_max_fit_the_gp_keeps_the_best_half_the_latest_rest_and_every_running_trial() {
        // 500 finished trials whose loss falls with i mod 7 and rises with i; two running.
        let mut obs: Vec<Observation> = (0..500)
            .map(|i| Observation { x: vec![i as f64], loss: Some((i % 7) as f64 * 1000.0 + i as f64) })
            .collect();
        obs.insert(250, Observation { x: vec![-1.0], loss: None });
        obs.push(Observation { x: vec![-2.0], loss: None });
        let kept = bounded(&obs);
        assert_eq!(kept.iter().filter(|o| o.loss.is_some()).count(), MAX_FIT);
        assert_eq!(kept.iter().filter(|o| o.loss.is_none()).count(), 2);
        let xs: Vec<usize> = kept.iter().filter(|o| o.loss.is_some()).map(|o| o.x[0] as usize).collect();
        // The best 100 by loss.
        let mut best: Vec<usize> = (0..500).collect();
        best.sort_by_key(|&i| (i % 7) * 1000 + i);
        assert!(best[..MAX_FIT / 2].iter().all(|i| xs.contains(i)));
        // The rest are the latest trials not among the best.
        let rest: Vec<usize> = (0..500).rev().filter(|i| !best[..MAX_FIT / 2].contains(i)).take(MAX_FIT / 2).collect();
        assert!(rest.iter().all(|i| xs.contains(i)));
        // In the trials' order.
        assert!(kept.windows(2).all(|w| w[0].loss.is_none() || w[1].loss.is_none() || w[0].x[0] < w[1].x[0]));
        // Up to MAX_FIT finished trials, all are kept.
        assert_eq!(bounded(&obs[..150]).len(), 150);
    }

    fn kernel(d: usize) -> Kernel {
        Kernel { inv_sq_lengths: (0..d).map(|j| 0.7 + 0.4 * j as f64).collect(), scale: 1.3, noise: 0.05 }
    }

    /// One data point: mean k(x,x1) y1 / (k11 + σ²) and variance s - k(x,x1)² / (k11 + σ²).
    #[test]
    fn posterior_matches_the_closed_form_on_one_point() {
        let k = kernel(2);
        let x1 = vec![0.2, 0.6];
        let post = Posterior::new(vec![x1.clone()], &[0.8], k.clone(), vec![false, false]).unwrap();
        for p in [[0.2, 0.6], [0.5, 0.1], [0.9, 0.9]] {
            let r2 = (p[0] - x1[0]).powi(2) * k.inv_sq_lengths[0] + (p[1] - x1[1]).powi(2) * k.inv_sq_lengths[1];
            let kx = k.scale * matern52(r2).0;
            let denom = k.scale + k.noise;
            let (m, v) = post.mean_var(&p);
            assert!((m - kx * 0.8 / denom).abs() < 1e-12 && (v - (k.scale - kx * kx / denom)).abs() < 1e-12, "{p:?}");
        }
    }

    /// Three points against the textbook formulas with an explicit inverse.
    #[test]
    fn posterior_matches_the_explicit_inverse_with_a_categorical() {
        let k = kernel(2);
        let cat = vec![false, true];
        let x = vec![vec![0.1, 0.0], vec![0.5, 1.0], vec![0.8, 0.0]];
        let y = [0.3, -1.2, 0.9];
        let post = Posterior::new(x.clone(), &y, k.clone(), cat.clone()).unwrap();
        let kf = |a: &[f64], b: &[f64]| k.scale * matern52(super::sq_dist(a, b, &k, &cat)).0;
        let km = nalgebra::DMatrix::from_fn(3, 3, |i, j| kf(&x[i], &x[j]) + if i == j { k.noise } else { 0.0 });
        let inv = km.try_inverse().unwrap();
        let p = [0.4, 1.0];
        let ks = nalgebra::DVector::from_fn(3, |i, _| kf(&p, &x[i]));
        let yv = nalgebra::DVector::from_column_slice(&y);
        let (m, v) = post.mean_var(&p);
        assert!((m - (ks.transpose() * &inv * yv)[0]).abs() < 1e-10);
        assert!((v - (k.scale - (ks.transpose() * &inv * &ks)[0])).abs() < 1e-10);
    }

    fn skewness(v: &[f64]) -> f64 {
        let z = super::standardise(v);
        z.iter().map(|x| x.powi(3)).sum::<f64>() / z.len() as f64
    }

    /// The warp keeps the order of the values, leaves symmetric ones about as they are, and makes
    /// a long tail of bad values (as a minimised Rosenbrock gives) about symmetric.
    #[test]
    fn yeo_johnson_keeps_order_and_removes_skew() {
        // Normal quantiles, by the logistic approximation (symmetric is what matters here).
        let normal: Vec<f64> = (1..=60).map(|i| i as f64 / 61.0).map(|p| (p / (1.0 - p)).ln() / 1.702).collect();
        let warped = super::standardise(&super::yeo_johnson(&super::standardise(&normal)));
        let drift = warped.iter().zip(super::standardise(&normal)).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(drift < 0.05, "symmetric values moved by {drift}");
        // Maximising minus a log-normal loss: a long lower tail (skewness -2.95; scipy.stats.yeojohnson
        // finds λ 2.68 and leaves -0.26).
        let tailed: Vec<f64> = normal.iter().map(|z| -z.exp()).collect();
        let warped = super::yeo_johnson(&super::standardise(&tailed));
        assert!(skewness(&tailed) < -2.0, "{}", skewness(&tailed));
        assert!(skewness(&warped).abs() < 0.4, "skewness left {}", skewness(&warped));
        for (i, j) in (0..60).flat_map(|i| (0..60).map(move |j| (i, j))) {
            assert_eq!(tailed[i] < tailed[j], warped[i] < warped[j], "order of {i} and {j}");
        }
        // All values equal: nothing to warp, and nothing breaks.
        assert!(super::yeo_johnson(&super::standardise(&[2.0; 5])).iter().all(|v| v.is_finite()));
    }

    /// K⁻¹ from the Cholesky factor against nalgebra's general inverse.
    #[test]
    fn inverse_matches_the_general_inverse() {
        for n in [1, 2, 7, 40] {
            let a = nalgebra::DMatrix::from_fn(n, n, |i, j| ((i * 7 + j * 3) % 11) as f64 / 11.0 - 0.4);
            let k = &a * a.transpose() + nalgebra::DMatrix::identity(n, n) * 0.1;
            let fast = super::inverse(&k.clone().cholesky().unwrap());
            let exact = k.try_inverse().unwrap();
            assert!((&fast - &exact).norm() < 1e-9 * exact.norm(), "n {n}");
        }
    }

    /// The evidence's gradient against central differences, and the acquisition's.
    #[test]
    fn gradients_match_central_differences() {
        let x: Vec<Vec<f64>> =
            (0..9).map(|i| vec![(i as f64 * 0.37) % 1.0, (i % 3) as f64, (i as f64 * 0.61) % 1.0]).collect();
        let y: Vec<f64> = x.iter().map(|p| (3.0 * p[0]).sin() + p[1] * 0.3 - p[2]).collect();
        let cat = vec![false, true, false];
        let ev = Evidence { x: &x, y: &y, categorical: &cat, last: Default::default() };
        let raw = vec![0.3, -0.4, 0.8, 0.2, -3.0];
        let (_, g) = ev.value_grad(&raw).unwrap();
        for j in 0..raw.len() {
            let h = 1e-6;
            let (mut a, mut b) = (raw.clone(), raw.clone());
            a[j] += h;
            b[j] -= h;
            let fd = (ev.value_grad(&a).unwrap().0 - ev.value_grad(&b).unwrap().0) / (2.0 * h);
            assert!((fd - g[j]).abs() < 1e-5 * (1.0 + fd.abs()), "evidence {j}: {fd} vs {}", g[j]);
        }
        let post = Posterior::new(x.clone(), &y, Kernel::from_raw(&raw), cat.clone()).unwrap();
        for best in [0.5, 3.0, 12.0] {
            let p = [0.45, 1.0, 0.3];
            let (_, g) = super::acquisition(&post, best, &p);
            for j in [0, 2] {
                let h = 1e-6;
                let (mut a, mut b) = (p, p);
                a[j] += h;
                b[j] -= h;
                let fd = (super::acquisition(&post, best, &a).0 - super::acquisition(&post, best, &b).0) / (2.0 * h);
                assert!(
                    (fd - g[j]).abs() < 1e-4 * (1.0 + fd.abs()),
                    "acquisition {j} at best {best}: {fd} vs {}",
                    g[j]
                );
            }
        }
        let _ = fit(&x, &y, &cat);
    }

    /// Log EI is continuous where its formula switches to the tail series, and its derivatives
    /// match differences there too.
    #[test]
    fn log_ei_is_smooth_across_the_tail_switch() {
        for z in [-7.999, -8.001, -20.0, 0.5] {
            let (a, dm, dv) = log_ei(z, 1.0, 0.0);
            let h = 1e-5;
            let fd_m = (log_ei(z + h, 1.0, 0.0).0 - log_ei(z - h, 1.0, 0.0).0) / (2.0 * h);
            let fd_v = (log_ei(z, 1.0 + h, 0.0).0 - log_ei(z, 1.0 - h, 0.0).0) / (2.0 * h);
            assert!(a.is_finite() && (fd_m - dm).abs() < 1e-3 * fd_m.abs().max(1.0), "z {z}: {fd_m} vs {dm}");
            assert!((fd_v - dv).abs() < 1e-3 * fd_v.abs().max(1.0), "z {z}: {fd_v} vs {dv}");
        }
        // No jump where the formula switches: the step across it is what the slope says.
        let step = log_ei(-7.999, 1.0, 0.0).0 - log_ei(-8.001, 1.0, 0.0).0;
        assert!((step - 0.002 * log_ei(-8.0, 1.0, 0.0).1).abs() < 1e-5, "{step}");
    }
}
