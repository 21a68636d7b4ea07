//! Where a study lives: this database file, or a study server that workers on many machines
//! share. The tuning stage asks a `StudyHome` and never knows which.

use super::server::Server;
use super::{Finished, NewRun, Result, SavedCheckpoint, Store, StudyRecord, TrialEnd, TrialRecord};
use crate::model::EpochMetrics;
use crate::search::Suggestion;

#[derive(Clone, Copy)]
pub enum StudyHome<'a> {
    Local(&'a Store),
    Server(&'a Server),
}

impl StudyHome<'_> {
    pub fn study(&self, name: &str) -> Result<Option<StudyRecord>> {
        match self {
            Self::Local(s) => s.study(name),
            Self::Server(s) => Ok(s.study(name)?),
        }
    }

    pub fn create_study(&self, record: &StudyRecord) -> Result<StudyRecord> {
        match self {
            Self::Local(s) => s.create_study(record),
            Self::Server(s) => Ok(s.create_study(record)?),
        }
    }

    pub fn set_study_trials(&self, study: &StudyRecord, n_trials: usize) -> Result<()> {
        match self {
            Self::Local(s) => s.set_study_trials(&study.study_name, n_trials),
            Self::Server(s) => Ok(s.set_study_trials(study, n_trials)?),
        }
    }

    pub fn trials(&self, study: &StudyRecord) -> Result<Vec<TrialRecord>> {
        match self {
            Self::Local(s) => s.trials(&study.study_name),
            Self::Server(s) => Ok(s.trials(study)?),
        }
    }

    /// Fails the study's RUNNING trials whose worker is gone; returns their numbers.
    pub fn fail_orphans(&self, study: &str) -> Result<Vec<usize>> {
        match self {
            Self::Local(s) => s.fail_orphans(study, |t| crate::workers::is_gone(&t.worker, t.heartbeat_age_s)),
            Self::Server(s) => Ok(s.fail_stale(study)?),
        }
    }

    pub fn claim_trial(
        &self,
        study: &StudyRecord,
        worker: &str,
        max_failures: usize,
        sample: impl Fn(usize, &[TrialRecord]) -> Suggestion,
    ) -> Result<Option<(usize, Suggestion)>> {
        match self {
            Self::Local(s) => s.claim_trial(study, worker, max_failures, sample),
            Self::Server(s) => Ok(s.claim_trial(study, worker, max_failures, sample)?),
        }
    }

    /// Records a trial's training run as started (a server keeps it in the trial, and `hptune
    /// pull` records it here).
    pub fn begin_trial_run(&self, study: &str, number: usize, run: &NewRun) -> Result<()> {
        match self {
            Self::Local(s) => s.begin_trial_run(study, number, run),
            Self::Server(s) => Ok(s.begin_trial_run(study, number, run)?),
        }
    }

    pub fn record_epochs(&self, study: &str, number: usize, run_id: &str, epochs: &[EpochMetrics]) -> Result<()> {
        match self {
            Self::Local(s) => s.record_epochs(run_id, epochs),
            Self::Server(s) => Ok(s.record_epochs(study, number, epochs)?),
        }
    }

    pub fn completed_values_at(&self, study: &str, epoch: usize) -> Result<Vec<f64>> {
        match self {
            Self::Local(s) => s.completed_values_at(study, epoch),
            Self::Server(s) => Ok(s.completed_values_at(study, epoch)?),
        }
    }

    /// Finishes a trial and its run: the epochs not yet recorded, the number of epochs run, the
    /// best epoch, the checkpoints, and its per-date outcomes (kept in the local file only: a
    /// study server's trials have none).
    pub fn finish_trial(
        &self,
        study: &str,
        number: usize,
        run: (&str, &[EpochMetrics], usize, usize, &[SavedCheckpoint]),
        outcomes: &[crate::outcomes::DateOutcome],
        end: &TrialEnd,
    ) -> Result<Finished> {
        match self {
            Self::Local(s) => s.finish_trial(study, number, run, outcomes, end),
            Self::Server(s) => Ok(s.finish_trial(study, number, run.1, run.4, end)?),
        }
    }

    /// Records how a trial ended, if it is still RUNNING.
    pub fn end_trial(&self, study: &str, number: usize, end: &TrialEnd) -> Result<Finished> {
        match self {
            Self::Local(s) => s.end_trial(study, number, end),
            Self::Server(s) => Ok(s.end_trial(study, number, end)?),
        }
    }

    /// Records a trial's training run as failed (a server's trial carries the reason).
    pub fn fail_run(&self, run_id: &str, reason: &str) -> Result<()> {
        match self {
            Self::Local(s) => s.fail_run(run_id, reason),
            Self::Server(_) => Ok(()),
        }
    }

    pub fn heartbeat(&self, study: &str, worker: &str) -> Result<()> {
        match self {
            Self::Local(s) => s.heartbeat(study, worker),
            Self::Server(s) => Ok(s.heartbeat(study, worker)?),
        }
    }

    pub fn trial_progress(&self, study: &str) -> Result<(usize, Option<f64>)> {
        match self {
            Self::Local(s) => s.trial_progress(study),
            Self::Server(s) => Ok(s.trial_progress(study)?),
        }
    }
}
