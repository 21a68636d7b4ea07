//! Is the best real? A study's verdict: its best trial against the baselines scored on the same
//! dates, and against what the best of as many skill-less configurations reaches (deflation,
//! PBO, deflated Sharpe ratio), from the per-date outcomes the trials recorded. The numbers come
//! from `validity`; this module gathers the series and says the result in words.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde_json::{json, Value as Json};

use crate::plot::{Chart, Mark, Panel, Series, XTicks, BLUE, GREEN, GREY, ORANGE};
use crate::states::TrialState;
use crate::store::{BaselineRecord, Store, ValidityRecord};
use crate::validity::{self, Deflation, Pbo, SharpeTest};

/// CSCV's default number of blocks (the paper's S = 16).
pub const PBO_BLOCKS: usize = 16;
/// The significance level of the warnings.
pub const ALPHA: f64 = 0.05;

/// A study's best against its baselines and against chance.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub study: String,
    /// COMPLETE and PRUNED trials: every configuration that was trained and validated (a pruned
    /// one was looked at and dropped, as Bailey and López de Prado count every trial tried);
    /// FAIL trials never produced a prediction and are not counted.
    pub tried: usize,
    /// Mean pairwise correlation of the complete trials' per-date hit series, and the effective
    /// number of independent trials it implies.
    pub rho: f64,
    pub effective: f64,
    /// The best complete trial (by validation accuracy), with its accuracy.
    pub best: Option<(usize, f64)>,
    pub baselines: Vec<BaselineRecord>,
    pub deflation: Option<Deflation>,
    pub pbo: Option<Pbo>,
    /// The best trial's validation-period long-flat strategy, deflated for the study's trials.
    pub sharpe: Option<SharpeTest>,
}

impl Verdict {
    /// The strongest baseline (highest accuracy).
    pub fn best_baseline(&self) -> Option<&BaselineRecord> {
        self.baselines.first()
    }

    /// The verdict in sentences, as `tune`, `analyze` and the report say it.
    pub fn sentences(&self) -> Vec<String> {
        let mut out = Vec::new();
        let Some((number, best)) = self.best else {
            out.push(format!("study {}: no complete trial to judge", self.study));
            return out;
        };
        if let Some(b) = self.best_baseline() {
            let verdict = if best > b.summary.accuracy {
                "the best configuration beats every baseline".to_string()
            } else {
                format!("the best configuration loses to a baseline ({})", b.description)
            };
            out.push(format!(
                "best configuration (trial {number}) {}, best baseline {} {}: {verdict}",
                pct(best),
                b.name,
                pct(b.summary.accuracy)
            ));
        }
        if let Some(d) = &self.deflation {
            let chance = if d.p_chance < ALPHA {
                "unlikely to be chance".to_string()
            } else {
                "not distinguishable from chance at 5%".to_string()
            };
            let share =
                if d.p_chance < 0.001 { "fewer than 0.1%".to_string() } else { format!("{:.1}%", 100.0 * d.p_chance) };
            out.push(format!(
                "{} configurations tried (about {:.0} independent): a best of {} on {} validation dates is reached by chance \
                 in {share} of such studies (the best of {:.0} skill-less ones, which score {} by always calling the more \
                 frequent direction: {} expected, {} at 95%): {chance}",
                self.tried,
                d.effective_trials,
                pct(d.best),
                d.dates,
                d.effective_trials,
                pct(d.chance),
                pct(d.expected_best),
                pct(d.best_q95),
            ));
        }
        if let Some(p) = &self.pbo {
            out.push(format!(
                "probability of backtest overfitting {:.2} ({} combinations of {} blocks; out-of-sample slope {:.2})",
                p.pbo, p.combinations, p.blocks, p.degradation_slope
            ));
        }
        if let Some(s) = &self.sharpe {
            out.push(format!(
                "its validation long-flat strategy: Sharpe {:.2} a year (252 days), PSR {:.2}, deflated for {:.0} trials {:.2}",
                s.sharpe_annual, s.psr, s.trials, s.dsr
            ));
        }
        out
    }

    /// Warnings for `analyze` and `pipeline`: a selection that loses to a baseline or that chance
    /// explains.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let (Some((_, best)), Some(b)) = (self.best, self.best_baseline()) {
            if best <= b.summary.accuracy {
                out.push(format!(
                    "warning: study {}'s best configuration ({}) does not beat the {} baseline ({})",
                    self.study,
                    pct(best),
                    b.name,
                    pct(b.summary.accuracy)
                ));
            }
        }
        if let Some(d) = self.deflation.filter(|d| d.p_chance >= ALPHA) {
            out.push(format!(
                "warning: study {}'s best ({}) is not distinguishable from chance at 5% (p = {:.2} for the best of {:.0} \
                 independent trials)",
                self.study,
                pct(d.best),
                d.p_chance,
                d.effective_trials
            ));
        }
        out
    }

    /// What the database keeps of it with a selection.
    pub fn record(&self) -> ValidityRecord {
        let b = self.best_baseline();
        ValidityRecord {
            trials_tried: self.tried,
            mean_correlation: self.rho,
            effective_trials: self.effective,
            best_trial: self.best.map(|b| b.0),
            best_accuracy: self.best.map(|b| b.1),
            validation_dates: self.deflation.map(|d| d.dates),
            expected_best: self.deflation.map(|d| d.expected_best),
            best_q95: self.deflation.map(|d| d.best_q95),
            p_chance: self.deflation.map(|d| d.p_chance),
            best_baseline: b.map(|b| b.name.clone()),
            baseline_accuracy: b.map(|b| b.summary.accuracy),
            pbo: self.pbo.as_ref().map(|p| p.pbo),
            pbo_blocks: self.pbo.as_ref().map(|p| p.blocks),
            pbo_slope: self.pbo.as_ref().map(|p| p.degradation_slope),
            sharpe_annual: self.sharpe.map(|s| s.sharpe_annual),
            psr: self.sharpe.map(|s| s.psr),
            dsr: self.sharpe.map(|s| s.dsr),
            sr0: self.sharpe.map(|s| s.sr0),
            summary: self.sentences().join("; "),
        }
    }

    /// The figures as JSON (`best_config.json`'s `metrics.validity`, `stats.json`).
    pub fn to_json(&self) -> Json {
        let num = |x: f64| if x.is_finite() { json!(x) } else { Json::Null };
        json!({
            "study": self.study,
            "trials_tried": self.tried,
            "trials_counted": "COMPLETE and PRUNED (FAIL trials made no prediction)",
            "mean_correlation": num(self.rho),
            "effective_trials": num(self.effective),
            "effective_trials_estimate": "N / (1 + (N - 1) * mean pairwise correlation of the trials' per-date hit series)",
            "best_trial": self.best.map(|b| b.0),
            "best_accuracy": self.best.map(|b| b.1),
            "baselines": self.baselines.iter().map(|b| json!({
                "name": b.name, "description": b.description, "accuracy": b.summary.accuracy,
                "log_loss": b.summary.log_loss, "mean_return": b.summary.mean_return,
                "sharpe_annual": num(b.summary.sharpe_annual), "dates": b.summary.dates,
            })).collect::<Vec<_>>(),
            "deflation": self.deflation.map(|d| json!({
                "validation_dates": d.dates, "chance_level": d.chance, "null_sd": d.null_sd,
                "expected_best_of_chance": d.expected_best,
                "best_of_chance_q95": d.best_q95, "p_chance": d.p_chance,
            })),
            "pbo": self.pbo.as_ref().map(|p| json!({
                "pbo": p.pbo, "blocks": p.blocks, "combinations": p.combinations,
                "degradation_slope": num(p.degradation_slope), "p_oos_loss": p.p_oos_loss,
            })),
            "sharpe": self.sharpe.map(|s| json!({
                "sharpe_annual": num(s.sharpe_annual), "days_per_year": validity::DAYS_PER_YEAR, "psr": num(s.psr),
                "dsr": num(s.dsr), "sr0_per_day": num(s.sr0), "skewness": num(s.skew), "kurtosis": num(s.kurtosis),
            })),
            "sentences": self.sentences(),
        })
    }
}

impl Verdict {
    /// The trials' validation accuracies against the null: their share at or below each accuracy,
    /// beside the probability that the best of N_eff skill-less configurations stays at or below
    /// it, with the study's best and its best baseline marked.
    pub fn chart(&self, values: &[f64]) -> Chart {
        let mut sorted: Vec<f64> = values.iter().map(|v| 100.0 * v).collect();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len().max(1) as f64;
        let trials: Vec<(f64, f64)> = sorted.iter().enumerate().map(|(i, &v)| (v, (i + 1) as f64 / n)).collect();
        let mut series = vec![Series::new("trials: share at or below", BLUE, Mark::Line, trials)];
        if let Some(d) = self.deflation {
            let (lo, hi) = (d.chance - 4.0 * d.null_sd, (d.chance + 6.0 * d.null_sd).max(d.best + d.null_sd));
            let null: Vec<(f64, f64)> = (0..=200)
                .map(|i| lo + (hi - lo) * i as f64 / 200.0)
                .map(|x| (100.0 * x, crate::stats::norm_cdf((x - d.chance) / d.null_sd).powf(d.effective_trials)))
                .collect();
            let label = format!("best of {:.0} skill-less: P at or below", d.effective_trials);
            series.push(Series::new(label, GREY, Mark::Line, null));
        }
        let mark = |x: f64| vec![(100.0 * x, 0.0), (100.0 * x, 1.0)];
        if let Some((_, best)) = self.best {
            series.push(Series::new("the study's best", ORANGE, Mark::Line, mark(best)));
        }
        if let Some(b) = self.best_baseline() {
            series.push(Series::new(
                format!("best baseline ({})", b.name),
                GREEN,
                Mark::Line,
                mark(b.summary.accuracy),
            ));
        }
        let panel = Panel {
            title: format!("Study {}: trials against chance", self.study),
            x_label: "validation direction accuracy (%)".into(),
            y_label: "probability".into(),
            x_ticks: XTicks::Numbers,
            series,
        };
        Chart::new(vec![panel], 1, (800, 420))
    }
}

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

/// The verdict of `study` from the database, with PBO over `blocks` blocks.
pub fn study(store: &Store, study: &str, blocks: usize) -> anyhow::Result<Verdict> {
    let trials = store.trials(study)?;
    let tried = trials.iter().filter(|t| matches!(t.state, TrialState::Complete | TrialState::Pruned)).count();
    let value: BTreeMap<usize, f64> =
        trials.iter().filter(|t| t.state == TrialState::Complete).filter_map(|t| Some((t.number, t.value?))).collect();
    let series = store.study_outcomes(study)?;
    let trial_series: Vec<_> = series.iter().filter(|s| s.trial.is_some_and(|n| value.contains_key(&n))).collect();
    // The dates every complete trial validated on (their windows differ slightly by seq_len).
    let common: BTreeSet<NaiveDate> = trial_series
        .iter()
        .map(|s| s.outcomes.iter().map(|o| o.date).collect::<BTreeSet<_>>())
        .reduce(|a, b| a.intersection(&b).copied().collect())
        .unwrap_or_default();
    let on_common = |f: fn(&crate::outcomes::DateOutcome) -> f64| -> Vec<Vec<f64>> {
        trial_series.iter().map(|s| s.outcomes.iter().filter(|o| common.contains(&o.date)).map(f).collect()).collect()
    };
    let hits = on_common(|o| o.hit);
    let rho = validity::mean_correlation(&hits);
    let effective = validity::effective_trials(tried as f64, rho);
    let best = value.iter().map(|(&n, &v)| (n, v)).reduce(|a, b| if b.1 > a.1 { b } else { a });
    let best_series = best.and_then(|(n, _)| trial_series.iter().find(|s| s.trial == Some(n)));
    let deflation = best_series.map(|s| {
        let h: Vec<f64> = s.outcomes.iter().map(|o| o.hit).collect();
        // The spread of one configuration's per-date hit share: the median over the trials.
        let mut sds: Vec<f64> = trial_series
            .iter()
            .map(|t| crate::stats::sample_std(&t.outcomes.iter().map(|o| o.hit).collect::<Vec<_>>()))
            .filter(|v| v.is_finite())
            .collect();
        sds.sort_by(f64::total_cmp);
        let date_sd = if sds.is_empty() { 0.5 } else { crate::stats::percentile_sorted(&sds, 50.0) };
        // Chance is what always calling the more frequent direction scores on the best's dates
        // (the always-up baseline's hit share is each date's share of tickers up); 0.5 without it.
        let dates: BTreeSet<NaiveDate> = s.outcomes.iter().map(|o| o.date).collect();
        let up: Vec<f64> = series
            .iter()
            .find(|b| b.trial.is_none() && b.source.ends_with(":always_up"))
            .map(|b| b.outcomes.iter().filter(|o| dates.contains(&o.date)).map(|o| o.hit).collect())
            .unwrap_or_default();
        let chance = if up.is_empty() { 0.5 } else { crate::stats::mean(&up).max(1.0 - crate::stats::mean(&up)) };
        validity::deflate_accuracy(crate::stats::mean(&h), (h.len(), date_sd), chance, tried as f64, effective)
    });
    let pbo = validity::pbo(&hits, blocks, 0.5);
    let sharpe = best_series.map(|s| {
        let rets: Vec<f64> = s.outcomes.iter().map(|o| o.ret).collect();
        let srs: Vec<f64> = trial_series
            .iter()
            .map(|t| validity::sharpe(&t.outcomes.iter().map(|o| o.ret).collect::<Vec<_>>()))
            .filter(|v| v.is_finite())
            .collect();
        let var_sr = (srs.len() >= 2).then(|| crate::stats::sample_var(&srs));
        validity::sharpe_test(&rets, effective, var_sr)
    });
    Ok(Verdict {
        study: study.to_string(),
        tried,
        rho,
        effective,
        best,
        baselines: store.baselines(study)?,
        deflation,
        pbo,
        sharpe,
    })
}
