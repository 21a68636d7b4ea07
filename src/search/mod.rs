//! Samplers for the three tuning phases: quasi-random (Halton), Bayesian (TPE or a Gaussian
//! process), fine-tuning (the same model inside the box around the best trials). Plain numeric
//! code: it sees trial parameters and values, never the database.

pub mod gp;
pub mod qmc;
pub mod space;
pub mod tpe;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub use space::{Distribution, Param, Params, Space};
pub use tpe::Observation;

crate::states::states! {
    /// A tuning phase.
    Phase {
        /// Scrambled Halton points.
        Random = "random",
        /// The study's sampler over the whole space.
        Bayesian = "bayesian",
        /// The study's sampler in the box around the best 20%.
        Finetune = "finetune",
    }
}

crate::states::states! {
    /// The model behind the Bayesian and fine-tuning phases.
    Sampler {
        /// Tree-structured Parzen estimator.
        Tpe = "tpe",
        /// Gaussian process with log expected improvement.
        Gp = "gp",
        /// GP for spaces it handles well (`AUTO_GP_MAX_PARAMS`), TPE otherwise.
        Auto = "auto",
    }
}

crate::states::states! {
    /// What drew a trial's parameters.
    SampledBy {
        /// A scrambled Halton point (the random phase, and any trial before two have finished).
        Halton = "halton",
        Tpe = "tpe",
        Gp = "gp",
    }
}

/// `auto` picks the GP for spaces of at most this many parameters, none of them categorical
/// with more than `AUTO_GP_MAX_CHOICES` choices.
pub const AUTO_GP_MAX_PARAMS: usize = 16;
pub const AUTO_GP_MAX_CHOICES: usize = 8;

impl Sampler {
    /// The sampler `auto` stands for on `space` (others stand for themselves).
    pub fn resolve(self, space: &Space) -> Sampler {
        match self {
            Sampler::Auto => {
                let few_choices = space.params.iter().all(|p| match &p.dist {
                    Distribution::Categorical { choices } => choices.len() <= AUTO_GP_MAX_CHOICES,
                    _ => true,
                });
                if space.params.len() <= AUTO_GP_MAX_PARAMS && few_choices {
                    Sampler::Gp
                } else {
                    Sampler::Tpe
                }
            }
            s => s,
        }
    }
}

/// How many trials each phase gets. Default split of N: 30% random (at least 1, at most 7: Halton
/// points cover the space evenly, and past that the model-based phases use the budget better;
/// `cargo bench --bench sampler_quality` measured 7 best of 5, 7 and 10 over 40 seeds), 20%
/// fine-tuning, the rest Bayesian.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhasePlan {
    pub random: usize,
    pub bayesian: usize,
    pub finetune: usize,
}

impl PhasePlan {
    pub fn split(total: usize) -> Self {
        let random = ((0.3 * total as f64).round() as usize).clamp(1, 7).min(total);
        let finetune = ((0.2 * total as f64).round() as usize).min(total - random);
        Self { random, bayesian: total - random - finetune, finetune }
    }

    pub fn total(&self) -> usize {
        self.random + self.bayesian + self.finetune
    }

    /// The phase of trial `number` (0-based).
    pub fn phase_of(&self, number: usize) -> Phase {
        if number < self.random {
            Phase::Random
        } else if number < self.random + self.bayesian {
            Phase::Bayesian
        } else {
            Phase::Finetune
        }
    }
}

/// How a past trial stands, as the sampler sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// Finished with this objective value.
    Value(f64),
    /// Still running: a pending point (TPE counts it among the bad trials, the GP at its
    /// posterior mean), so parallel workers spread out.
    Running,
    /// Failed: counted as the worst finished value, so the GP moves away from it instead of
    /// proposing it again, and TPE counts it among the bad trials.
    Failed,
}

/// A past trial as the sampler sees it: its parameters and outcome.
#[derive(Debug, Clone)]
pub struct Past {
    pub params: Params,
    pub outcome: Outcome,
}

/// Share of finished trials whose box phase 3 samples in (at least 3 trials).
const FINETUNE_TOP: f64 = 0.2;

/// A trial's parameters, with its phase and what drew them.
#[derive(Debug, Clone, PartialEq)]
pub struct Suggestion {
    pub phase: Phase,
    pub sampled_by: SampledBy,
    pub params: Params,
}

/// What a trial with these parameters costs to run, in any unit (only ratios count), for the GP
/// to weigh improvement against: `model::ModelConfig::epoch_cost` for a study of models.
pub type TrialCost<'a> = &'a dyn Fn(&Params) -> f64;

/// The exponent of the cost in the GP's acquisition for trial `number`: 1 at the first model-based
/// trial, falling linearly to 0 at the end of the budget (CArBO's cost cooling, in trials): the
/// search looks for improvement per unit of cost first, and for improvement alone by the end.
pub fn cost_weight(plan: &PhasePlan, number: usize) -> f64 {
    let (total, start) = (plan.total() as f64, plan.random as f64);
    if total <= start {
        return 0.0;
    }
    ((total - number as f64) / (total - start)).clamp(0.0, 1.0)
}

/// Parameters for trial `number` of a study, the model-based phases with `sampler`, the GP's
/// weighing each point by `cost` (see `cost_weight`) where it is given.
/// Deterministic in (seed, number, history).
pub fn suggest(
    space: &Space,
    plan: &PhasePlan,
    (seed, sampler): (u64, Sampler),
    number: usize,
    maximize: bool,
    history: &[Past],
    cost: Option<TrialCost>,
) -> Suggestion {
    let phase = plan.phase_of(number);
    let loss = |v: f64| if maximize { -v } else { v };
    let worst = history
        .iter()
        .filter_map(|p| match p.outcome {
            Outcome::Value(v) => Some(loss(v)),
            _ => None,
        })
        .reduce(f64::max);
    let observations: Vec<Observation> = history
        .iter()
        .filter_map(|p| {
            let x = space
                .params
                .iter()
                .map(|prm| p.params.get(&prm.name).and_then(|v| prm.dist.to_internal(v)))
                .collect::<Option<Vec<f64>>>()?;
            let loss = match p.outcome {
                Outcome::Value(v) => Some(loss(v)),
                Outcome::Running => None,
                Outcome::Failed => worst,
            };
            Some(Observation { x, loss })
        })
        .collect();
    let finished = history.iter().filter(|p| matches!(p.outcome, Outcome::Value(_))).count();
    let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ number as u64);
    let (sampled_by, x): (SampledBy, Vec<f64>) = if phase == Phase::Random || finished < 2 {
        let u = qmc::halton(seed, number as u64, space.params.len());
        (SampledBy::Halton, space.bounds().iter().zip(u).map(|((lo, hi), u)| lo + u * (hi - lo)).collect())
    } else {
        let region = if phase == Phase::Finetune {
            let k = ((FINETUNE_TOP * finished as f64).ceil() as usize).max(3);
            tpe::narrowed_region(space, &observations, k)
        } else {
            space.bounds()
        };
        match sampler.resolve(space) {
            Sampler::Gp => {
                let log_cost = cost.map(|cost| move |x: &[f64]| cost(&space.params_at(x)).ln());
                let price = gp::Price {
                    log_cost: log_cost.as_ref().map(|f| f as gp::LogCost),
                    alpha: cost_weight(plan, number),
                };
                (SampledBy::Gp, gp::suggest(space, &observations, &region, &price, &mut rng))
            }
            _ => (SampledBy::Tpe, tpe::suggest(space, &observations, &region, &mut rng)),
        }
    };
    Suggestion { phase, sampled_by, params: space.params_at(&x) }
}
