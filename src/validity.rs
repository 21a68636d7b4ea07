//! Is the best real? Statistics of a selection that count every configuration tried: the best of
//! N skill-less configurations, the probabilistic and deflated Sharpe ratio (Bailey and López de
//! Prado 2012, 2014), the effective number of correlated trials, and the probability of backtest
//! overfitting by combinatorially symmetric cross-validation (Bailey, Borwein, López de Prado and
//! Zhu 2017). Pure functions over per-date outcome series; `../shared/ref/VALIDITY.md` has the
//! formulas and the paper's test vector. Sharpe ratios are per period (per day) unless a name
//! says annual; `DAYS_PER_YEAR` annualises.

use crate::stats::{mean, norm_cdf, population_var};

/// Trading days per year, for annualised Sharpe ratios (the backtest's convention too).
pub const DAYS_PER_YEAR: f64 = 252.0;
/// The Euler-Mascheroni constant.
const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

/// The standard normal quantile. Acklam's rational approximation (relative error 1.2e-9) refined
/// by one Halley step on `libm`'s erfc, which brings it to double precision; one function does
/// not warrant a statistics crate beside `libm`.
pub fn norm_ppf(p: f64) -> f64 {
    if !(0.0..=1.0).contains(&p) || p.is_nan() {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] =
        [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    let x = if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    };
    // One Halley step: e = Phi(x) - p.
    let e = norm_cdf(x) - p;
    let u = e * (2.0 * std::f64::consts::PI).sqrt() * (x * x / 2.0).exp();
    x - u / (1.0 + x * u / 2.0)
}

/// The expected maximum of `n` independent standard normals, by the papers' approximation
/// (1 - gamma) PhiInv(1 - 1/n) + gamma PhiInv(1 - 1/(n e)); 0 for one trial.
pub fn expected_max_z(n: f64) -> f64 {
    if n <= 1.0 {
        return 0.0;
    }
    (1.0 - EULER_GAMMA) * norm_ppf(1.0 - 1.0 / n) + EULER_GAMMA * norm_ppf(1.0 - 1.0 / (n * std::f64::consts::E))
}

/// The `q` quantile of the maximum of `n` independent standard normals: PhiInv(q^(1/n)).
pub fn max_z_quantile(n: f64, q: f64) -> f64 {
    norm_ppf(q.powf(1.0 / n.max(1.0)))
}

/// Skewness and kurtosis (not excess: 3 for a normal) of `v`, population moments as the papers
/// use them; (0, 3) for fewer than two values or no spread.
pub fn skew_kurtosis(v: &[f64]) -> (f64, f64) {
    let var = population_var(v);
    if v.len() < 2 || var.is_nan() || var <= 0.0 {
        return (0.0, 3.0);
    }
    let m = mean(v);
    let n = v.len() as f64;
    let m3 = v.iter().map(|x| (x - m).powi(3)).sum::<f64>() / n;
    let m4 = v.iter().map(|x| (x - m).powi(4)).sum::<f64>() / n;
    (m3 / var.powf(1.5), m4 / (var * var))
}

/// The per-period Sharpe ratio of `returns` (mean over the sample standard deviation, no risk-free
/// rate); NaN below two returns or without spread.
pub fn sharpe(returns: &[f64]) -> f64 {
    let sd = crate::stats::sample_std(returns);
    if sd > 0.0 {
        mean(returns) / sd
    } else {
        f64::NAN
    }
}

/// The probabilistic Sharpe ratio: the probability that the true per-period Sharpe ratio exceeds
/// `sr_star`, given an observed `sr` over `t` returns with skewness `skew` and kurtosis `kurt`.
pub fn psr(sr: f64, sr_star: f64, t: usize, skew: f64, kurt: f64) -> f64 {
    if t < 2 || !sr.is_finite() {
        return f64::NAN;
    }
    let denom = 1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr * sr;
    if denom.is_nan() || denom <= 0.0 {
        return f64::NAN;
    }
    norm_cdf((sr - sr_star) * ((t - 1) as f64).sqrt() / denom.sqrt())
}

/// The Sharpe ratio that the best of `n` skill-less trials reaches on expectation, given the
/// variance of the trials' per-period Sharpe ratios: SR0 of the deflated Sharpe ratio.
pub fn expected_max_sharpe(var_sr: f64, n: f64) -> f64 {
    var_sr.max(0.0).sqrt() * expected_max_z(n)
}

/// The deflated Sharpe ratio: PSR against the expected best of `n` skill-less trials.
pub fn dsr(sr: f64, t: usize, skew: f64, kurt: f64, var_sr: f64, n: f64) -> f64 {
    psr(sr, expected_max_sharpe(var_sr, n), t, skew, kurt)
}

/// PSR against 0 and DSR of one return series, with what they were computed from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SharpeTest {
    /// Per-period Sharpe ratio, and annualised with `DAYS_PER_YEAR`.
    pub sharpe: f64,
    pub sharpe_annual: f64,
    pub returns: usize,
    pub skew: f64,
    pub kurtosis: f64,
    /// P(true Sharpe > 0).
    pub psr: f64,
    /// The expected best per-period Sharpe ratio of `trials` skill-less trials, and P(true Sharpe
    /// > that).
    pub sr0: f64,
    pub dsr: f64,
    pub trials: f64,
}

/// PSR and DSR of `returns`, deflated for `trials` configurations whose per-period Sharpe ratios
/// vary by `var_sr` (where unknown, the null's 1 / (T - 1) is used, as the paper suggests).
pub fn sharpe_test(returns: &[f64], trials: f64, var_sr: Option<f64>) -> SharpeTest {
    let sr = sharpe(returns);
    let t = returns.len();
    let (skew, kurtosis) = skew_kurtosis(returns);
    let var_sr = var_sr.filter(|v| v.is_finite()).unwrap_or(1.0 / (t.max(2) - 1) as f64);
    let sr0 = expected_max_sharpe(var_sr, trials);
    SharpeTest {
        sharpe: sr,
        sharpe_annual: sr * DAYS_PER_YEAR.sqrt(),
        returns: t,
        skew,
        kurtosis,
        psr: psr(sr, 0.0, t, skew, kurtosis),
        sr0,
        dsr: psr(sr, sr0, t, skew, kurtosis),
        trials,
    }
}

/// The mean pairwise correlation of `series` (one per trial, over the same dates), clamped to
/// [0, 1]; series without spread are left out. O(N T), through the sum of the standardised
/// series: sum_ij corr_ij = |sum_i z_i|^2 / T.
pub fn mean_correlation(series: &[Vec<f64>]) -> f64 {
    let Some(t) = series.first().map(Vec::len) else { return 0.0 };
    let mut sum = vec![0.0; t];
    let mut used = 0usize;
    for s in series {
        let m = mean(s);
        let sd = population_var(s).sqrt();
        if sd.is_nan() || sd <= 0.0 || s.len() != t {
            continue;
        }
        used += 1;
        for (acc, x) in sum.iter_mut().zip(s) {
            *acc += (x - m) / sd;
        }
    }
    if used <= 1 {
        return 0.0;
    }
    let total = sum.iter().map(|x| x * x).sum::<f64>() / t as f64;
    let u = used as f64;
    ((total - u) / (u * (u - 1.0))).clamp(0.0, 1.0)
}

/// The effective number of independent trials among `n` whose outcomes correlate by `rho` on
/// average: N / (1 + (N - 1) rho), the design effect of equicorrelated trials (N trials that move
/// together count as one, N uncorrelated ones as N). It needs no eigen-decomposition of a
/// 1,000 x 1,000 matrix and has no threshold to choose, unlike counting the eigenvalues that
/// explain most of the variance.
pub fn effective_trials(n: f64, rho: f64) -> f64 {
    if n <= 1.0 {
        return n.max(0.0);
    }
    n / (1.0 + (n - 1.0) * rho.clamp(0.0, 1.0))
}

/// How the best of a selection compares with the best of as many skill-less configurations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Deflation {
    /// Configurations tried, and how many independent ones they are worth.
    pub trials: f64,
    pub effective_trials: f64,
    /// Validation dates (the unit: tickers of one date move together).
    pub dates: usize,
    pub best: f64,
    /// What a skill-less configuration scores on expectation on these dates: 0.5 for coin flips,
    /// or the share of the more frequent direction, which always calling it reaches (a trending
    /// validation span rewards a model that only learned the trend).
    pub chance: f64,
    /// The null's standard deviation of one configuration's accuracy over `dates` dates.
    pub null_sd: f64,
    /// What the best of `effective_trials` skill-less configurations reaches: its expectation and
    /// its 95% quantile.
    pub expected_best: f64,
    pub best_q95: f64,
    /// P(the best of `effective_trials` skill-less configurations >= `best`).
    pub p_chance: f64,
}

/// Deflates a selection's `best` mean per-date accuracy: under the null each configuration's
/// accuracy over `dates` dates is normal around `chance` with standard deviation
/// `date_sd / sqrt(dates)`, `date_sd` the spread of one configuration's per-date hit shares (0.5
/// for one ticker, less when several tickers are called each date and do not all move together).
pub fn deflate_accuracy(
    best: f64,
    (dates, date_sd): (usize, f64),
    chance: f64,
    trials: f64,
    effective_trials: f64,
) -> Deflation {
    let null_sd = date_sd / (dates.max(1) as f64).sqrt();
    let n = effective_trials.max(1.0);
    let z = (best - chance) / null_sd;
    Deflation {
        trials,
        effective_trials: n,
        dates,
        best,
        chance,
        null_sd,
        expected_best: chance + null_sd * expected_max_z(n),
        best_q95: chance + null_sd * max_z_quantile(n, 0.95),
        // 1 - Phi(z)^n, through logs so that a tiny tail does not round to 0.
        p_chance: -(n * libm::log1p(-norm_cdf(-z))).exp_m1(),
    }
}

/// The probability of backtest overfitting and what comes with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Pbo {
    /// Share of the combinations whose in-sample best ranks at or below the out-of-sample median.
    pub pbo: f64,
    /// One logit per combination: ln(w / (1 - w)), w the in-sample best's out-of-sample relative rank.
    pub logits: Vec<f64>,
    /// Least-squares slope of the in-sample best's out-of-sample performance on its in-sample one.
    pub degradation_slope: f64,
    /// Share of combinations whose in-sample best performs below `loss_below` out of sample.
    pub p_oos_loss: f64,
    pub blocks: usize,
    pub combinations: usize,
}

/// PBO by combinatorially symmetric cross-validation over `perf`, one series per trial over the
/// same `T` periods (e.g. per-date accuracy), in `blocks` (even) blocks of consecutive periods
/// (cut as numpy's `array_split` cuts them).
/// Every half of the blocks in turn is in-sample: the trial with the best in-sample mean (the
/// first of equals) is ranked out of sample among all (ties share their mean rank, 1 = worst).
/// `loss_below` is the out-of-sample performance that counts as a loss (0.5 for accuracy, 0 for
/// returns). None with fewer than 2 trials, an odd or zero block count, or fewer periods than
/// blocks.
pub fn pbo(perf: &[Vec<f64>], blocks: usize, loss_below: f64) -> Option<Pbo> {
    let n = perf.len();
    let t = perf.first()?.len();
    if n < 2 || blocks < 2 || !blocks.is_multiple_of(2) || t < blocks || perf.iter().any(|p| p.len() != t) {
        return None;
    }
    // Blocks as numpy's array_split cuts them: the first T mod S one period longer.
    let bounds: Vec<usize> = (0..=blocks).map(|b| b * (t / blocks) + b.min(t % blocks)).collect();
    let size: Vec<f64> = bounds.windows(2).map(|w| (w[1] - w[0]) as f64).collect();
    let sums: Vec<Vec<f64>> =
        perf.iter().map(|p| bounds.windows(2).map(|w| p[w[0]..w[1]].iter().sum()).collect()).collect();
    let total: Vec<f64> = sums.iter().map(|s| s.iter().sum()).collect();
    let mut logits = Vec::new();
    let (mut is_best, mut oos_best) = (Vec::new(), Vec::new());
    let mut losses = 0usize;
    let half = blocks / 2;
    let mut oos = vec![0.0; n];
    for combo in itertools::Itertools::combinations(0..blocks, half) {
        let is_size: f64 = combo.iter().map(|&b| size[b]).sum();
        let oos_size = t as f64 - is_size;
        let mut best = (f64::NEG_INFINITY, 0usize);
        for (i, s) in sums.iter().enumerate() {
            let is_sum: f64 = combo.iter().map(|&b| s[b]).sum();
            let m = is_sum / is_size;
            if m > best.0 {
                best = (m, i);
            }
            oos[i] = (total[i] - is_sum) / oos_size;
        }
        let star = oos[best.1];
        // Mean rank, 1 = worst: 1 + (below) + (equal others) / 2.
        let below = oos.iter().filter(|&&v| v < star).count() as f64;
        let equal = oos.iter().filter(|&&v| v == star).count() as f64 - 1.0;
        let w = (1.0 + below + equal / 2.0) / (n as f64 + 1.0);
        logits.push((w / (1.0 - w)).ln());
        is_best.push(best.0);
        oos_best.push(star);
        losses += usize::from(star < loss_below);
    }
    let combinations = logits.len();
    let pbo = logits.iter().filter(|&&l| l <= 0.0).count() as f64 / combinations as f64;
    let (mx, my) = (mean(&is_best), mean(&oos_best));
    let sxy: f64 = is_best.iter().zip(&oos_best).map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = is_best.iter().map(|x| (x - mx) * (x - mx)).sum();
    Some(Pbo {
        pbo,
        logits,
        degradation_slope: if sxx > 0.0 { sxy / sxx } else { f64::NAN },
        p_oos_loss: losses as f64 / combinations as f64,
        blocks,
        combinations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn the_normal_quantile_inverts_the_distribution_function() {
        for p in [1e-12, 1e-6, 0.001, 0.02425, 0.1, 0.3, 0.5, 0.7, 0.975, 0.99, 1.0 - 1e-9] {
            let x = norm_ppf(p);
            assert!((norm_cdf(x) - p).abs() <= 1e-14 * p.max(1e-3), "p {p}: x {x}");
        }
        assert!((norm_ppf(0.975) - 1.959_963_984_540_054).abs() < 1e-12);
        assert_eq!(norm_ppf(0.5), 0.0);
    }

    /// The paper's worked example (VALIDITY.md): annual SR 2.5 over T = 1,250 daily returns,
    /// N = 100 trials with annual V[SR] = 0.5, skewness -3, kurtosis 10: SR0 = 0.1132 and
    /// DSR = 0.9004 with 250 days a year; 0.1127 and 0.8997 with 252.
    #[test]
    fn the_deflated_sharpe_ratio_reproduces_the_papers_example() {
        for (days, sr0_want, dsr_want) in [(250.0, 0.1132, 0.9004), (252.0, 0.1127, 0.8997)] {
            let f64_days: f64 = days;
            let sr = 2.5 / f64_days.sqrt();
            let var = 0.5 / days;
            let sr0 = expected_max_sharpe(var, 100.0);
            let d = dsr(sr, 1250, -3.0, 10.0, var, 100.0);
            assert!((sr0 - sr0_want).abs() < 5e-5, "{days} days: SR0 {sr0}");
            assert!((d - dsr_want).abs() < 5e-5, "{days} days: DSR {d}");
        }
    }

    /// The best of N coin flips (VALIDITY.md's table): 0.5 + z_N 0.5 / sqrt(n).
    #[test]
    fn the_expected_best_of_n_coin_flips_matches_the_table() {
        for (n, trials, want) in [(250, 50.0, 0.572), (250, 100.0, 0.580), (250, 1000.0, 0.603), (5000, 1000.0, 0.523)]
        {
            let d = deflate_accuracy(0.5, (n, 0.5), 0.5, trials, trials);
            assert!((d.expected_best - want).abs() < 5e-4, "n {n} N {trials}: {}", d.expected_best);
        }
    }

    /// Simulated skill-less studies: the deflation's expected best and 95% quantile are those of
    /// the simulation, and p_chance is uniform-ish (about 5% below 0.05).
    #[test]
    fn deflation_matches_simulated_skill_less_studies() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let (dates, trials, studies) = (250, 40, 2000);
        let mut bests = Vec::new();
        let mut significant = 0;
        for _ in 0..studies {
            let best = (0..trials)
                .map(|_| (0..dates).filter(|_| rng.gen::<bool>()).count() as f64 / dates as f64)
                .fold(f64::NEG_INFINITY, f64::max);
            let d = deflate_accuracy(best, (dates, 0.5), 0.5, trials as f64, trials as f64);
            significant += usize::from(d.p_chance < 0.05);
            bests.push(best);
        }
        let d = deflate_accuracy(0.5, (dates, 0.5), 0.5, trials as f64, trials as f64);
        let sim_mean = mean(&bests);
        bests.sort_by(f64::total_cmp);
        let sim_q95 = crate::stats::percentile_sorted(&bests, 95.0);
        assert!((d.expected_best - sim_mean).abs() < 0.006, "{} vs {sim_mean}", d.expected_best);
        assert!((d.best_q95 - sim_q95).abs() < 0.008, "{} vs {sim_q95}", d.best_q95);
        let rate = significant as f64 / studies as f64;
        assert!((0.02..0.08).contains(&rate), "{rate}");
    }

    /// More trials tried never make the same best look more significant.
    #[test]
    fn more_trials_never_make_a_best_more_significant() {
        let mut last = 0.0;
        for n in [1.0, 2.0, 5.0, 10.0, 30.0, 100.0, 1000.0] {
            let p = deflate_accuracy(0.56, (250, 0.5), 0.5, n, n).p_chance;
            assert!(p > last, "N {n}: {p} after {last}");
            last = p;
        }
    }

    #[test]
    fn correlated_trials_count_as_fewer() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let common: Vec<f64> = (0..500).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let independent: Vec<Vec<f64>> =
            (0..20).map(|_| (0..500).map(|_| rng.gen_range(-1.0..1.0)).collect()).collect();
        let copies: Vec<Vec<f64>> = (0..20).map(|_| common.clone()).collect();
        let n_eff = |s: &[Vec<f64>]| effective_trials(s.len() as f64, mean_correlation(s));
        let n_ind = n_eff(&independent);
        assert!((15.0..=20.0).contains(&n_ind), "{n_ind}");
        assert!((n_eff(&copies) - 1.0).abs() < 1e-9);
        // Half shared, half own noise: rho about 0.5, N_eff about 20 / 10.5.
        let mixed: Vec<Vec<f64>> =
            independent.iter().map(|s| s.iter().zip(&common).map(|(a, b)| a + b).collect()).collect();
        let n_mixed = n_eff(&mixed);
        assert!((1.6..2.4).contains(&n_mixed), "{n_mixed}");
    }

    #[test]
    fn psr_is_a_half_at_the_benchmark_and_grows_with_length() {
        assert!((psr(0.1, 0.1, 100, 0.0, 3.0) - 0.5).abs() < 1e-12);
        assert!(psr(0.1, 0.0, 1000, 0.0, 3.0) > psr(0.1, 0.0, 100, 0.0, 3.0));
        // Negative skew and fat tails lower the confidence in a positive Sharpe ratio.
        assert!(psr(0.1, 0.0, 250, -3.0, 10.0) < psr(0.1, 0.0, 250, 0.0, 3.0));
    }

    /// Noise trials overfit (PBO near 0.5 or above); one trial with a real edge among them is
    /// chosen in and out of sample (PBO near 0).
    #[test]
    fn pbo_is_high_for_noise_and_low_for_a_real_edge() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let noise = |rng: &mut ChaCha8Rng, edge: f64| -> Vec<f64> {
            (0..480).map(|_| if rng.gen::<f64>() < 0.5 + edge { 1.0 } else { 0.0 }).collect()
        };
        let null: Vec<Vec<f64>> = (0..30).map(|_| noise(&mut rng, 0.0)).collect();
        let p = pbo(&null, 16, 0.5).unwrap();
        assert_eq!(p.combinations, 12_870);
        assert!(p.pbo > 0.3, "noise: PBO {}", p.pbo);
        let mut with_edge = null.clone();
        with_edge.push(noise(&mut rng, 0.15));
        let p = pbo(&with_edge, 16, 0.5).unwrap();
        assert!(p.pbo < 0.05, "edge: PBO {}", p.pbo);
        assert!(pbo(&null, 15, 0.5).is_none());
    }
}
