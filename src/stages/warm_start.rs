//! `tune --warm-start`: the finished trials of earlier studies that seed a new study's sampler.
//! The Bayesian phase's sampler reads the seeds before the study's own trials, as finished
//! observations; the random phase still covers the new problem with its quasi-random points, and
//! the fine-tuning phase narrows around the study's own best only (last week's best need not be
//! this week's). That rule won on `benches/warm_start.rs` against seeds read in every phase, and
//! against seeds that replace the random phase (both dragged the study towards the source's
//! optimum when the function had moved). A seed is not a trial of the study: it counts in no
//! budget and in no N of the selection statistics.

use std::collections::BTreeMap;

use anyhow::bail;

use crate::search::Space;
use crate::states::TrialState;
use crate::store::{Seed, Store};

/// The seeds picked, and what was left out.
#[derive(Debug, Default)]
pub struct Picked {
    pub seeds: Vec<Seed>,
    /// Trials that did not finish with a value (pruned, failed, running), or rows naming no trial.
    pub unfinished: usize,
    /// Finished trials with a parameter of the new space missing, outside it or of another
    /// type; the first such reason.
    pub outside: usize,
    pub first_reason: Option<String>,
    /// Parameters of the seeds that the new space does not have, and how many seeds had each.
    pub dropped: BTreeMap<String, usize>,
}

impl Picked {
    /// In words, for the tune stage's output.
    pub fn describe(&self, spec: &str) -> String {
        let studies: std::collections::BTreeSet<&str> = self.seeds.iter().map(|s| s.source_study.as_str()).collect();
        let mut out = format!(
            "warm start from {spec}: {} finished trials of {} seed the sampler (not counted in --trials or in N)",
            self.seeds.len(),
            studies.into_iter().collect::<Vec<_>>().join(", ")
        );
        if self.outside > 0 {
            out += &format!(
                "; {} skipped with a parameter outside this space or of another type ({})",
                self.outside,
                self.first_reason.as_deref().unwrap_or("")
            );
        }
        if self.unfinished > 0 {
            out += &format!("; {} not finished, skipped", self.unfinished);
        }
        if !self.dropped.is_empty() {
            let d: Vec<String> = self.dropped.iter().map(|(k, n)| format!("{k} ({n})")).collect();
            out += &format!("; parameters this space does not have, dropped: {}", d.join(", "));
        }
        out
    }
}

/// The seeds `spec` names: every trial of the study of that name, or the trial rows a reading
/// statement returns (`SELECT * FROM trials WHERE ...`), kept where they fit `space`.
pub fn pick(store: &Store, spec: &str, space: &Space) -> anyhow::Result<Picked> {
    let keys: Vec<(String, usize)> = if store.study(spec)?.is_some() {
        store.trials(spec)?.into_iter().map(|t| (spec.to_string(), t.number)).collect()
    } else if looks_like_sql(spec) {
        store.trial_keys_of(spec)?
    } else {
        bail!(
            "--warm-start {spec}: no study named '{spec}' in {}, and not a reading statement \
             (e.g. \"SELECT * FROM trials WHERE study_name = 'S' AND value > 0.55\")",
            store.path().display()
        );
    };
    let mut studies: BTreeMap<String, BTreeMap<usize, crate::store::TrialRecord>> = BTreeMap::new();
    for (study, _) in &keys {
        if !studies.contains_key(study) {
            let trials = store.trials(study)?.into_iter().map(|t| (t.number, t)).collect();
            studies.insert(study.clone(), trials);
        }
    }
    let mut picked = Picked::default();
    for (study, number) in keys {
        let Some(t) = studies.get(&study).and_then(|s| s.get(&number)) else {
            picked.unfinished += 1;
            continue;
        };
        let value = match (t.state, t.value) {
            (TrialState::Complete, Some(v)) => v,
            _ => {
                picked.unfinished += 1;
                continue;
            }
        };
        let misfit = space.params.iter().find_map(|p| match t.params.get(&p.name) {
            None => Some(format!("trial {number} of {study} has no {}", p.name)),
            Some(v) if !p.dist.contains(v) => Some(format!(
                "trial {number} of {study}: {} = {v} is not in this space's {}",
                p.name,
                p.dist.optuna_json()
            )),
            Some(_) => None,
        });
        if let Some(reason) = misfit {
            picked.outside += 1;
            picked.first_reason.get_or_insert(reason);
            continue;
        }
        for name in t.params.keys().filter(|k| !space.params.iter().any(|p| &p.name == *k)) {
            *picked.dropped.entry(name.clone()).or_default() += 1;
        }
        let params = space.params.iter().map(|p| (p.name.clone(), t.params[&p.name].clone())).collect();
        picked.seeds.push(Seed { source_study: study, source_number: number, value, params });
    }
    if picked.seeds.is_empty() {
        bail!("{}: nothing to seed the sampler with; the study was not created", picked.describe(spec));
    }
    Ok(picked)
}

fn looks_like_sql(spec: &str) -> bool {
    let first = spec.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
    ["SELECT", "WITH", "FROM", "TABLE", "VALUES", "(", "PIVOT"].iter().any(|k| first.starts_with(k))
}
