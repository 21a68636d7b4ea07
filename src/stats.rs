//! Summary statistics used across stages: mean, sample and population variance, standard deviation, and
//! numpy's percentile, the standard normal's density and distribution function. Undefined values (too few numbers) are NaN.

/// The arithmetic mean; NaN for no values.
pub fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// Sample variance (ddof 1, as pandas and numpy with `ddof=1`); NaN below two values.
pub fn sample_var(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return f64::NAN;
    }
    let m = mean(v);
    v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() - 1) as f64
}

/// Population variance (ddof 0, numpy's default); NaN for no values.
pub fn population_var(v: &[f64]) -> f64 {
    let m = mean(v);
    v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64
}

/// Sample standard deviation (ddof 1); NaN below two values.
pub fn sample_std(v: &[f64]) -> f64 {
    sample_var(v).sqrt()
}

/// numpy's `percentile(v, q)` with its default linear interpolation, for `q` in 0..=100, of
/// values sorted ascending; NaN for no values.
pub fn percentile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q / 100.0 * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// The standard normal density.
pub fn norm_pdf(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// The standard normal distribution function.
pub fn norm_cdf(z: f64) -> f64 {
    0.5 * libm::erfc(-z / std::f64::consts::SQRT_2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn mean_and_sample_spread_match_numpy() {
        // numpy: mean 5.0, var(ddof=1) 4.571428571428571, std(ddof=1) 2.138089935299395, var() 4.0
        let v = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        assert!(close(mean(&v), 5.0));
        assert!(close(sample_var(&v), 32.0 / 7.0));
        assert!(close(sample_std(&v), 2.138_089_935_299_395));
        assert!(close(population_var(&v), 4.0));
    }

    #[test]
    fn too_few_values_are_undefined() {
        assert!(mean(&[]).is_nan());
        assert!(sample_var(&[3.0]).is_nan());
        assert!(sample_std(&[]).is_nan());
        assert!(population_var(&[]).is_nan());
        assert!(percentile_sorted(&[], 50.0).is_nan());
    }

    #[test]
    fn percentile_interpolates_like_numpy() {
        // numpy.percentile([1, 2, 3, 4], q) for q = 0, 25, 50, 90, 100: 1, 1.75, 2.5, 3.7, 4
        let v = [1.0, 2.0, 3.0, 4.0];
        for (q, want) in [(0.0, 1.0), (25.0, 1.75), (50.0, 2.5), (90.0, 3.7), (100.0, 4.0)] {
            assert!(close(percentile_sorted(&v, q), want), "q {q}: {}", percentile_sorted(&v, q));
        }
        assert!(close(percentile_sorted(&[1.0, 3.0, 10.0], 50.0), 3.0));
        assert!(close(percentile_sorted(&[7.0], 30.0), 7.0));
    }
}
