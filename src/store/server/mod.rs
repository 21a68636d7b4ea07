//! A study kept in PostgreSQL, in Optuna's own tables (`../shared/ref/OPTUNA_POSTGRES.md`), so that
//! workers on many machines, Python Optuna clients and optuna-dashboard share it live; hptune's
//! extras sit in its own tables beside them (`hptune.sql`) and in system attributes prefixed
//! `hptune:`.
//!
//! Optuna's protocol, kept exactly: a new trial is inserted while the study row is locked (`FOR
//! UPDATE`), its number the count of the study's trials inserted before it (there is no unique
//! constraint: the lock is what keeps numbers unique); a trial is finished under its own row lock,
//! only while it is still RUNNING; heartbeats are the database clock's `now()`. Transactions are
//! short: a worker samples and trains outside them. Each worker thread holds its own connection,
//! and a dropped connection is opened again on the next call.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::NaiveDateTime;
use itertools::Itertools;
use postgres::{Client, GenericClient, NoTls, Transaction};
use serde_json::{json, Value as Json};

use super::{CheckpointRecord, Finished, Lineage, NewRun, SavedCheckpoint, StudyRecord, TrialEnd, TrialRecord};
use crate::model::EpochMetrics;
use crate::search::{PhasePlan, SampledBy, Sampler, Space, Suggestion};
use crate::states::{Role, RunStage, TrialState};

/// Optuna's schema version on the server (Optuna 3.2 to 5.0 write it).
pub const SCHEMA_VERSION: i32 = 12;
pub const ALEMBIC_VERSION: &str = "v3.2.0.a";
/// The study system attribute holding hptune's study record.
pub const STUDY_ATTR: &str = "hptune:study";
/// Trial system attributes.
const PHASE_ATTR: &str = "hptune:phase";
const SAMPLER_ATTR: &str = "hptune:sampler";
const WORKER_ATTR: &str = "hptune:worker";
/// The heartbeat grace a study was created with, in seconds (every worker of it uses it).
const GRACE_ATTR: &str = "hptune:heartbeat_grace_s";
/// The key of the claim that made a trial (`worker/n`), so that a retried claim finds it.
const CLAIM_ATTR: &str = "hptune:claim";

/// What one claim came to.
enum Claim {
    Taken(usize, Suggestion),
    BudgetMet,
    /// The budget is met only if trials running elsewhere finish.
    Wait,
    /// The trial it took was failed (an enqueued parameter outside the space): why.
    Refused(String),
}

/// A key unique to one claim of this process.
fn claim_key(worker: &str) -> String {
    static CLAIMS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    format!("{worker}/{}", CLAIMS.fetch_add(1, std::sync::atomic::Ordering::SeqCst))
}

const END_ATTR: &str = "hptune:end";
const RUN_ATTR: &str = "hptune:run";
/// How many times a series of stale trials is queued again (Optuna's `max_retry`).
pub const MAX_RETRY: usize = 3;

/// What `hptune pull` copies of a finished trial besides its row: its training run, epochs and
/// checkpoints (with their bytes).
#[derive(Debug, Clone)]
pub struct TrialDetails {
    pub run: Option<NewRun>,
    pub epochs: Vec<EpochMetrics>,
    pub checkpoints: Vec<SavedCheckpoint>,
}

/// The errors of the study server. A postgres error is shown with its causes (the postgres crate
/// keeps the useful part there: "error connecting to server: Connection refused", "db error:
/// ERROR: ...") and not passed on as a source, so that a chain printer does not repeat it.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{url}: {}", with_causes(.cause))]
    Connect { url: String, cause: postgres::Error },
    #[error("study server: {}", with_causes(.0))]
    Sql(postgres::Error),
    #[error(
        "{url}: Optuna's tables are at schema version {found}, this hptune speaks version {SCHEMA_VERSION} \
         (Optuna 3.2 to 5.0); upgrade the storage with `optuna storage upgrade --storage URL` or use another database"
    )]
    SchemaVersion { url: String, found: String },
    #[error("study server: {0}")]
    Invalid(String),
}

impl From<postgres::Error> for ServerError {
    fn from(e: postgres::Error) -> Self {
        ServerError::Sql(e)
    }
}

/// An error and each of its causes, joined by ": ".
fn with_causes(e: &postgres::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text = format!("{text}: {c}");
        cause = c.source();
    }
    text
}

pub type Result<T, E = ServerError> = std::result::Result<T, E>;

/// A PostgreSQL study server: the URL and a pool of connections, one per thread that uses it.
pub struct Server {
    url: String,
    pool: Mutex<Vec<Client>>,
    /// A RUNNING trial whose heartbeat is older than this many seconds is failed and retried.
    grace_s: f64,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Server({})", redact(&self.url))
    }
}

/// Whether a `--storage` value names a PostgreSQL server (Optuna's SQLAlchemy URLs, with a
/// `+driver`, are accepted too).
pub fn is_url(storage: &str) -> bool {
    storage.starts_with("postgresql://")
        || storage.starts_with("postgres://")
        || storage.starts_with("postgresql+") && storage.contains("://")
}

/// The URL without its password, for messages and records: the userinfo's password and any
/// `password=` query parameter become `***`.
pub fn redact(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let base = match (base.find("://"), base.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &base[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!("{}{}:***{}", &base[..scheme + 3], &userinfo[..colon], &base[at..]),
                None => base.to_string(),
            }
        }
        _ => base.to_string(),
    };
    let Some(query) = query else { return base };
    let params: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => kv.to_string(),
        })
        .collect();
    format!("{base}?{}", params.join("&"))
}

/// `text` (a command line, an error message) with every URL in it redacted.
pub fn redact_text(text: &str) -> String {
    text.split(' ')
        .map(|word| match word.find("://") {
            Some(i) => {
                let start =
                    word[..i].rfind(|c: char| !(c.is_ascii_alphanumeric() || "+-.".contains(c))).map_or(0, |j| j + 1);
                format!("{}{}", &word[..start], redact(&word[start..]))
            }
            None => word.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl Server {
    /// Connects and makes sure the database holds Optuna's schema at the version hptune speaks
    /// (creating it in an empty database) and hptune's tables. A RUNNING trial whose heartbeat is
    /// older than `grace_s` counts as stale.
    pub fn connect(url: &str, grace_s: f64) -> Result<Self> {
        // `postgresql+psycopg2://` (SQLAlchemy's form) is the same server.
        let url = match url.split_once("://") {
            Some((scheme, rest)) if scheme.starts_with("postgresql+") => format!("postgresql://{rest}"),
            _ => url.to_string(),
        };
        let server = Self { url, pool: Mutex::new(Vec::new()), grace_s };
        server.with(|c| {
            let mut tx = c.transaction()?;
            // One creator at a time; the others then find the schema made.
            tx.execute("SELECT pg_advisory_xact_lock(7310500711)", &[])?;
            let exists: bool = tx.query_one("SELECT to_regclass('version_info') IS NOT NULL", &[])?.get(0);
            if exists {
                let row = tx.query_opt(
                    "SELECT v.schema_version, (SELECT string_agg(version_num, ',') FROM alembic_version) FROM version_info v",
                    &[],
                )?;
                let (version, alembic): (Option<i32>, Option<String>) =
                    row.map_or((None, None), |r| (r.get(0), r.get(1)));
                if version != Some(SCHEMA_VERSION) || alembic.as_deref() != Some(ALEMBIC_VERSION) {
                    return Err(ServerError::SchemaVersion {
                        url: redact(&server.url),
                        found: format!(
                            "{} (alembic {})",
                            version.map_or("none".into(), |v| v.to_string()),
                            alembic.unwrap_or_else(|| "none".into())
                        ),
                    });
                }
            } else {
                tx.batch_execute(include_str!("schema.sql"))?;
            }
            tx.batch_execute(include_str!("hptune.sql"))?;
            tx.commit()?;
            Ok(())
        })?;
        Ok(server)
    }

    /// The server's URL without its password.
    pub fn name(&self) -> String {
        redact(&self.url)
    }

    /// Runs `f` on a connection of the pool (a new one when none is free). A connection that
    /// failed is dropped, so the next call connects again.
    fn with<T>(&self, f: impl FnOnce(&mut Client) -> Result<T>) -> Result<T> {
        let pooled = self.pool.lock().expect("pool lock").pop();
        let mut client = match pooled {
            Some(c) if !c.is_closed() => c,
            _ => {
                let connect = |url: &str| -> std::result::Result<Client, postgres::Error> {
                    let mut config: postgres::Config = url.parse()?;
                    // Named in pg_stat_activity, unless the URL names it.
                    if config.get_application_name().is_none() {
                        config.application_name("hptune");
                    }
                    config.connect(NoTls)
                };
                connect(&self.url).map_err(|cause| ServerError::Connect { url: redact(&self.url), cause })?
            }
        };
        let out = crate::costs::time(crate::costs::Cost::ServerCall, || f(&mut client));
        let broken = matches!(&out, Err(e) if is_transient(e)) || client.is_closed();
        if !broken {
            self.pool.lock().expect("pool lock").push(client);
        }
        out
    }

    /// Like `with`, retrying a few times (with a pause) when the connection dropped, so that a
    /// restarted server or a network blip does not cost a trial.
    fn with_retry<T>(&self, f: impl Fn(&mut Client) -> Result<T>) -> Result<T> {
        let mut attempt = 0;
        loop {
            match self.with(&f) {
                Err(e @ (ServerError::Connect { .. } | ServerError::Sql(_))) if attempt < 5 && is_transient(&e) => {
                    attempt += 1;
                    eprintln!("note: study server {}: {e}; trying again ({attempt}/5)", self.name());
                    std::thread::sleep(std::time::Duration::from_secs(attempt));
                }
                out => return out,
            }
        }
    }

    /// Creates the study unless one of that name exists; returns the stored record either way.
    pub fn create_study(&self, s: &StudyRecord) -> Result<StudyRecord> {
        self.with_retry(|c| {
            let mut tx = c.transaction()?;
            let created = tx.query_opt(
                "INSERT INTO studies (study_name) VALUES ($1) ON CONFLICT (study_name) DO NOTHING RETURNING study_id",
                &[&s.study_name],
            )?;
            if let Some(row) = created {
                let id: i32 = row.get(0);
                let direction = s.direction.to_uppercase();
                tx.execute(
                    "INSERT INTO study_directions (direction, study_id, objective) VALUES ($1::text::studydirection, $2, 0)",
                    &[&direction, &id],
                )?;
                for (key, value) in [
                    (STUDY_ATTR, study_json(s).to_string()),
                    (SAMPLER_ATTR, json!(s.sampler).to_string()),
                    (GRACE_ATTR, json!(self.grace_s).to_string()),
                ] {
                    tx.execute(
                        "INSERT INTO study_system_attributes (study_id, key, value_json) VALUES ($1, $2, $3)",
                        &[&id, &key, &value],
                    )?;
                }
            }
            tx.commit()?;
            Ok(())
        })?;
        self.study(&s.study_name)?
            .ok_or_else(|| ServerError::Invalid(format!("study {} vanished while it was created", s.study_name)))
    }

    /// The study of that name, as hptune recorded it (None when there is none; an error when it
    /// is a study that hptune did not create).
    pub fn study(&self, name: &str) -> Result<Option<StudyRecord>> {
        self.with_retry(|c| {
            let row = c.query_opt(
                "SELECT s.study_id, a.value_json FROM studies s
                 LEFT JOIN study_system_attributes a ON a.study_id = s.study_id AND a.key = $2
                 WHERE s.study_name = $1",
                &[&name, &STUDY_ATTR],
            )?;
            let Some(row) = row else { return Ok(None) };
            let attr: Option<String> = row.get(1);
            let attr = attr.ok_or_else(|| {
                ServerError::Invalid(format!(
                    "study {name} was not created by hptune (it has no {STUDY_ATTR} system attribute): \
                     hptune runs studies it created, with their search space; pick another --study name"
                ))
            })?;
            parse_study(name, &attr).map(Some)
        })
    }

    fn study_id(c: &mut impl GenericClient, name: &str) -> Result<i32> {
        c.query_opt("SELECT study_id FROM studies WHERE study_name = $1", &[&name])?
            .map(|r| r.get(0))
            .ok_or_else(|| ServerError::Invalid(format!("no study {name} on the server")))
    }

    /// Raises a study's trial budget.
    pub fn set_study_trials(&self, study: &StudyRecord, n_trials: usize) -> Result<()> {
        let updated = StudyRecord { n_trials, ..study.clone() };
        self.with_retry(|c| {
            let id = Self::study_id(c, &study.study_name)?;
            c.execute(
                "UPDATE study_system_attributes SET value_json = $3 WHERE study_id = $1 AND key = $2",
                &[&id, &STUDY_ATTR, &study_json(&updated).to_string()],
            )?;
            Ok(())
        })
    }

    /// Every trial of the study, by number.
    pub fn trials(&self, study: &StudyRecord) -> Result<Vec<TrialRecord>> {
        let space = parse_space(study)?;
        self.with_retry(|c| {
            let id = Self::study_id(c, &study.study_name)?;
            Ok(read_trials(c, id, study, &space)?.into_iter().map(|(_, t)| t).collect())
        })
    }

    /// Claims the next trial, as an Optuna worker does: with the study row locked, checks the
    /// budget and inserts the trial RUNNING with its number (the count of the study's trials
    /// inserted before it) and a heartbeat, then commits. Then, outside that lock, `sample` picks
    /// its parameters from every trial's (running ones included), which are written with the
    /// trial's phase and sampler. None when the budget is met (counting running trials).
    pub fn claim_trial(
        &self,
        study: &StudyRecord,
        worker: &str,
        max_failures: usize,
        sample: impl Fn(usize, &[TrialRecord]) -> Suggestion,
    ) -> Result<Option<(usize, Suggestion)>> {
        let space = parse_space(study)?;
        loop {
            match self.claim_once(study, worker, max_failures, &space, &sample)? {
                Claim::Taken(number, suggestion) => return Ok(Some((number, suggestion))),
                Claim::BudgetMet => return Ok(None),
                // Until the running trials end, or a dead worker's goes stale and is queued again
                // for this one to take: the workers that remain meet the budget.
                // A look costs a few milliseconds of the server's; a pause of a heartbeat interval
                // (20 s) made the last workers of a study outlast its trials by that much.
                Claim::Wait => {
                    let pause = std::time::Duration::from_secs_f64((self.grace_s / 6.0).clamp(0.2, 1.0));
                    let until = std::time::Instant::now() + pause;
                    while std::time::Instant::now() < until {
                        // Ctrl-C: no more claims (the caller reports the interruption).
                        if crate::interrupt::received().is_some() {
                            return Ok(None);
                        }
                        std::thread::sleep(std::time::Duration::from_millis(100));
                    }
                }
                // That trial failed with its reason; the worker goes on with the next.
                Claim::Refused(reason) => eprintln!("{reason}"),
            }
        }
    }

    fn claim_once(
        &self,
        study: &StudyRecord,
        worker: &str,
        max_failures: usize,
        space: &Space,
        sample: &impl Fn(usize, &[TrialRecord]) -> Suggestion,
    ) -> Result<Claim> {
        // As an Optuna worker does before each trial: stale trials are failed and queued again.
        for number in self.fail_stale(&study.study_name)? {
            eprintln!(
                "trial {number} of study {} went stale (its worker stopped): failed, and queued again",
                study.study_name
            );
        }
        // The claim's key, recorded with the trial: a retry after a lost COMMIT acknowledgement
        // finds the trial it made instead of making a second one.
        let key = json!(claim_key(worker)).to_string();
        let injected = std::sync::atomic::AtomicBool::new(false);
        let claimed = self.with_retry(|c| {
            let mut tx = c.transaction()?;
            let id = lock_study(&mut tx, &study.study_name)?;
            if let Some(r) = tx.query_opt(
                "SELECT t.trial_id, t.number FROM trials t JOIN trial_system_attributes a ON a.trial_id = t.trial_id
                 WHERE t.study_id = $1 AND a.key = $2 AND a.value_json = $3",
                &[&id, &CLAIM_ATTR, &key],
            )? {
                tx.commit()?;
                return Ok(Ok((id, r.get::<_, i32>(0), r.get::<_, i32>(1) as usize)));
            }
            let n_trials = parse_study(&study.study_name, &study_attr(&mut tx, id)?)?.n_trials;
            let count = |rows: &[postgres::Row], s: &str| -> usize {
                rows.iter().filter(|r| r.get::<_, &str>(0) == s).map(|r| r.get::<_, i64>(1) as usize).sum()
            };
            let rows = tx.query("SELECT state::text, count(*) FROM trials WHERE study_id = $1 GROUP BY 1", &[&id])?;
            let (finished, running) = (count(&rows, "COMPLETE") + count(&rows, "PRUNED"), count(&rows, "RUNNING"));
            if finished + running >= n_trials {
                // Running trials may still fail (a worker that died goes stale after the grace):
                // wait for them while they could leave the budget unmet.
                return Ok(Err(finished < n_trials && running > 0));
            }
            let failed = count(&rows, "FAIL");
            if failed > max_failures {
                return Err(ServerError::Invalid(format!(
                    "study {}: {failed} trials failed, more than {max_failures}: stopping; see their reasons with \
                     `hptune pull` and `hptune query \"SELECT number, reason FROM trials WHERE state = 'FAIL'\"`",
                    study.study_name
                )));
            }
            // A WAITING trial (enqueued from Python, or a retry) is taken first, by one worker.
            let waiting = tx.query_opt(
                "SELECT trial_id, number FROM trials WHERE study_id = $1 AND state = 'WAITING' ORDER BY trial_id LIMIT 1
                 FOR UPDATE SKIP LOCKED",
                &[&id],
            )?;
            let (trial_id, number) = match waiting {
                Some(r) => {
                    let trial_id: i32 = r.get(0);
                    tx.execute(
                        "UPDATE trials SET state = 'RUNNING', datetime_start = now() AT TIME ZONE 'UTC' WHERE trial_id = $1",
                        &[&trial_id],
                    )?;
                    (trial_id, r.get::<_, i32>(1))
                }
                None => insert_trial(&mut tx, id, "RUNNING")?,
            };
            tx.execute(
                "INSERT INTO trial_heartbeats (trial_id, heartbeat) VALUES ($1, now())
                 ON CONFLICT (trial_id) DO UPDATE SET heartbeat = now()",
                &[&trial_id],
            )?;
            set_attr(&mut tx, trial_id, WORKER_ATTR, &json!(worker))?;
            tx.execute(
                "INSERT INTO trial_system_attributes (trial_id, key, value_json) VALUES ($1, $2, $3)",
                &[&trial_id, &CLAIM_ATTR, &key],
            )?;
            tx.commit()?;
            if crate::interrupt::injected("lost-claim-ack") && !injected.swap(true, std::sync::atomic::Ordering::SeqCst) {
                // `HPTUNE_INJECT=lost-claim-ack`, the first claim of each call: the session ends right
                // after the COMMIT, as if its acknowledgement was lost (a retried claim must make no
                // second trial); the error is the server's own.
                match c.simple_query("SELECT pg_terminate_backend(pg_backend_pid())") {
                    Err(e) => return Err(ServerError::Sql(e)),
                    Ok(_) => return Err(ServerError::Invalid("the injected disconnect did not happen".into())),
                }
            }
            Ok(Ok((id, trial_id, number as usize)))
        })?;
        let (id, trial_id, number) = match claimed {
            Ok(claimed) => claimed,
            Err(true) => return Ok(Claim::Wait),
            Err(false) => return Ok(Claim::BudgetMet),
        };
        let history = self.with_retry(|c| read_trials(c, id, study, space))?;
        let mut mine = None;
        // Trials just claimed by other workers, whose parameters are not written yet, are left out.
        let mut others = Vec::with_capacity(history.len());
        for (t, r) in history {
            if t == trial_id {
                mine = Some(r);
            } else if !r.params.is_empty() {
                others.push(r);
            }
        }
        let mut suggestion = sample(number, &others);
        // A retried trial keeps its parameters, phase and sampler; an enqueued one its fixed
        // parameters (the sampler fills in the rest).
        let fixed = self.with_retry(|c| fixed_params(c, trial_id))?;
        if let Some(mine) = mine.filter(|m| !m.params.is_empty()) {
            suggestion = Suggestion { phase: mine.phase, sampled_by: mine.sampled_by, params: mine.params };
        }
        for (name, value) in fixed {
            let param = space.params.iter().find(|p| p.name == name);
            if !param.is_some_and(|p| p.dist.contains(&value)) {
                let allowed = param.map_or("not a parameter of the space".to_string(), |p| format!("{:?}", p.dist));
                let reason = format!(
                    "enqueued parameter {name} = {value} is not in the study's search space ({name}: {allowed})"
                );
                let end = TrialEnd {
                    state: TrialState::Fail,
                    value: None,
                    val_loss: None,
                    pruned_epoch: None,
                    reason: Some(reason.clone()),
                };
                self.end_trial(&study.study_name, number, &end)?;
                return Ok(Claim::Refused(format!("trial {number} of study {}: {reason}", study.study_name)));
            }
            suggestion.params.insert(name, value);
        }
        self.with_retry(|c| {
            let mut tx = c.transaction()?;
            for p in &space.params {
                let Some(value) = suggestion.params.get(&p.name) else { continue };
                let internal = p.dist.to_optuna(value).ok_or_else(|| {
                    ServerError::Invalid(format!("parameter {} = {value} is outside its distribution", p.name))
                })?;
                tx.execute(
                    "INSERT INTO trial_params (trial_id, param_name, param_value, distribution_json) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (trial_id, param_name) DO NOTHING",
                    &[&trial_id, &p.name, &internal, &p.dist.optuna_json().to_string()],
                )?;
            }
            set_attr(&mut tx, trial_id, PHASE_ATTR, &json!(suggestion.phase))?;
            set_attr(&mut tx, trial_id, SAMPLER_ATTR, &json!(suggestion.sampled_by))?;
            tx.commit()?;
            Ok(())
        })?;
        Ok(Claim::Taken(number, suggestion))
    }

    /// The heartbeat grace `study` was created with, in seconds (None for a study of an older
    /// hptune, or none of that name).
    pub fn study_grace(&self, study: &str) -> Result<Option<f64>> {
        self.with_retry(|c| {
            let row = c.query_opt(
                "SELECT a.value_json FROM study_system_attributes a JOIN studies s USING (study_id)
                 WHERE s.study_name = $1 AND a.key = $2",
                &[&study, &GRACE_ATTR],
            )?;
            Ok(row.and_then(|r| r.get::<_, String>(0).parse::<f64>().ok()).filter(|&g| g > 0.0))
        })
    }

    /// The names of the studies hptune created on the server, oldest first.
    pub fn studies(&self) -> Result<Vec<String>> {
        self.with_retry(|c| {
            let rows = c.query(
                "SELECT s.study_name FROM studies s JOIN study_system_attributes a ON a.study_id = s.study_id AND a.key = $1
                 ORDER BY s.study_id",
                &[&STUDY_ATTR],
            )?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    /// Records a trial's training run (in its `hptune:run` attribute, for `hptune pull`).
    pub fn begin_trial_run(&self, study: &str, number: usize, run: &NewRun) -> Result<()> {
        self.with_retry(|c| {
            let mut tx = c.transaction()?;
            let trial_id = trial_id(&mut tx, study, number)?;
            set_attr(&mut tx, trial_id, RUN_ATTR, &run_json(run))?;
            tx.commit()?;
            Ok(())
        })
    }

    /// A trial's training run, epochs and checkpoints with their bytes.
    pub fn trial_details(&self, study: &str, number: usize) -> Result<TrialDetails> {
        self.with_retry(|c| {
            let mut tx = c.transaction()?;
            let trial_id = trial_id(&mut tx, study, number)?;
            let run = tx
                .query_opt("SELECT value_json FROM trial_system_attributes WHERE trial_id = $1 AND key = $2", &[
                    &trial_id, &RUN_ATTR,
                ])?
                .map(|r| parse_run(r.get(0), study, number))
                .transpose()?;
            let epochs = tx
                .query(
                    "SELECT epoch, train_loss, val_loss, val_accuracy, seconds FROM hptune_epochs WHERE trial_id = $1 ORDER BY epoch",
                    &[&trial_id],
                )?
                .iter()
                .map(|r| EpochMetrics {
                    epoch: r.get::<_, i32>(0) as usize,
                    train_loss: r.get(1),
                    val_loss: r.get(2),
                    val_accuracy: r.get(3),
                    seconds: r.get(4),
                })
                .collect();
            let mut checkpoints = Vec::new();
            for r in tx.query(
                "SELECT c.checkpoint_id, c.role, c.epoch, c.path, c.sha256, c.size_bytes, f.bytes
                 FROM hptune_checkpoints c JOIN hptune_checkpoint_files f ON f.sha256 = c.sha256
                 WHERE c.trial_id = $1 ORDER BY c.checkpoint_id",
                &[&trial_id],
            )? {
                let role: &str = r.get(1);
                checkpoints.push(SavedCheckpoint {
                    record: CheckpointRecord {
                        checkpoint_id: r.get(0),
                        run_id: crate::ids::trial_run(study, number),
                        role: Role::parse(role)
                            .ok_or_else(|| ServerError::Invalid(format!("checkpoint role '{role}' is not hptune's")))?,
                        epoch: r.get(2),
                        path: r.get(3),
                        sha256: r.get(4),
                        size_bytes: r.get(5),
                        cleanup_id: None,
                    },
                    bytes: r.get(6),
                });
            }
            tx.commit()?;
            Ok(TrialDetails { run, epochs, checkpoints })
        })
    }

    /// Records epochs of a running trial: Optuna's intermediate values (the validation
    /// accuracy, which the median pruner of every worker reads) and hptune's full metrics.
    pub fn record_epochs(&self, study: &str, number: usize, epochs: &[EpochMetrics]) -> Result<()> {
        if epochs.is_empty() {
            return Ok(());
        }
        self.with_retry(|c| {
            let mut tx = c.transaction()?;
            let trial_id = trial_id(&mut tx, study, number)?;
            insert_epochs(&mut tx, trial_id, epochs)?;
            tx.commit()?;
            Ok(())
        })
    }

    /// The validation accuracy at `epoch` of the study's COMPLETE trials (for the median pruner).
    pub fn completed_values_at(&self, study: &str, epoch: usize) -> Result<Vec<f64>> {
        self.with_retry(|c| {
            let rows = c.query(
                "SELECT v.intermediate_value FROM trials t
                 JOIN studies s ON s.study_id = t.study_id
                 JOIN trial_intermediate_values v ON v.trial_id = t.trial_id
                 WHERE s.study_name = $1 AND t.state = 'COMPLETE' AND v.step = $2 AND v.intermediate_value_type = 'FINITE'",
                &[&study, &(epoch as i32)],
            )?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    /// Finishes a trial: its epochs not yet recorded, its checkpoints (with their bytes) and its
    /// end, in one transaction, if it is still RUNNING (the trial row locked, as Optuna does).
    pub fn finish_trial(
        &self,
        study: &str,
        number: usize,
        pending: &[EpochMetrics],
        checkpoints: &[SavedCheckpoint],
        end: &TrialEnd,
    ) -> Result<Finished> {
        self.with_retry(|c| {
            let mut tx = c.transaction()?;
            let trial_id = trial_id(&mut tx, study, number)?;
            insert_epochs(&mut tx, trial_id, pending)?;
            for saved in checkpoints {
                let r = &saved.record;
                tx.execute(
                    "INSERT INTO hptune_checkpoint_files (sha256, bytes) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    &[&r.sha256, &saved.bytes],
                )?;
                tx.execute(
                    "INSERT INTO hptune_checkpoints (checkpoint_id, trial_id, role, epoch, path, sha256, size_bytes)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                    &[&r.checkpoint_id, &trial_id, &r.role.as_str(), &r.epoch, &r.path, &r.sha256, &r.size_bytes],
                )?;
            }
            let finished = guarded_end(&mut tx, trial_id, end)?;
            tx.commit()?;
            Ok(finished)
        })
    }

    /// Records how a trial ended, if it is still RUNNING.
    pub fn end_trial(&self, study: &str, number: usize, end: &TrialEnd) -> Result<Finished> {
        self.with_retry(|c| {
            let mut tx = c.transaction()?;
            let trial_id = trial_id(&mut tx, study, number)?;
            let finished = guarded_end(&mut tx, trial_id, end)?;
            tx.commit()?;
            Ok(finished)
        })
    }

    /// Renews the heartbeat of this worker's RUNNING trials of the study.
    pub fn heartbeat(&self, study: &str, worker: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE trial_heartbeats h SET heartbeat = now()
                 FROM trials t JOIN studies s ON s.study_id = t.study_id
                 JOIN trial_system_attributes a ON a.trial_id = t.trial_id AND a.key = $3
                 WHERE h.trial_id = t.trial_id AND s.study_name = $1 AND t.state = 'RUNNING' AND a.value_json = $2",
                &[&study, &json!(worker).to_string(), &WORKER_ATTR],
            )?;
            Ok(())
        })
    }

    /// Fails the study's RUNNING trials whose heartbeat is older than the grace period and queues each
    /// again (as Optuna's `fail_stale_trials` with its retry callback); trials without a heartbeat
    /// are never failed. Returns the numbers of the failed trials.
    pub fn fail_stale(&self, study: &str) -> Result<Vec<usize>> {
        self.with_retry(|c| {
            let mut tx = c.transaction()?;
            let id = lock_study(&mut tx, study)?;
            let stale = tx.query(
                "SELECT t.trial_id, t.number, extract(epoch FROM now()::timestamp - h.heartbeat)::float8 FROM trials t
                 JOIN trial_heartbeats h ON h.trial_id = t.trial_id
                 WHERE t.study_id = $1 AND t.state = 'RUNNING' AND now()::timestamp - h.heartbeat > make_interval(secs => $2)
                 ORDER BY t.trial_id",
                &[&id, &self.grace_s],
            )?;
            let mut failed = Vec::new();
            for row in stale {
                let (trial_id, number, age): (i32, i32, f64) = (row.get(0), row.get(1), row.get(2));
                let end = TrialEnd {
                    state: TrialState::Fail,
                    value: None,
                    val_loss: None,
                    pruned_epoch: None,
                    reason: Some(format!("stale: no heartbeat for {age:.0} s while RUNNING")),
                };
                if guarded_end(&mut tx, trial_id, &end)? == Finished::Recorded {
                    failed.push(number as usize);
                    retry(&mut tx, id, trial_id, number)?;
                }
            }
            tx.commit()?;
            Ok(failed)
        })
    }

    /// How many trials of a study are done (COMPLETE or PRUNED), and the best COMPLETE value.
    pub fn trial_progress(&self, study: &str) -> Result<(usize, Option<f64>)> {
        self.with_retry(|c| {
            let row = c.query_one(
                "SELECT count(*) FILTER (WHERE t.state IN ('COMPLETE', 'PRUNED')), max(v.value) FILTER (WHERE t.state = 'COMPLETE')
                 FROM trials t JOIN studies s ON s.study_id = t.study_id
                 LEFT JOIN trial_values v ON v.trial_id = t.trial_id AND v.objective = 0
                 WHERE s.study_name = $1",
                &[&study],
            )?;
            Ok((row.get::<_, i64>(0) as usize, row.get(1)))
        })
    }

    /// Puts a dataset on the server (by its content hash) unless it is there.
    pub fn put_dataset(&self, dataset_id: &str, name: &str, source: &str, long_csv: &str) -> Result<()> {
        self.with_retry(|c| {
            c.execute(
                "INSERT INTO hptune_datasets (dataset_id, name, source, long_csv) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[&dataset_id, &name, &source, &long_csv],
            )?;
            Ok(())
        })
    }

    /// A dataset on the server: name, source and long CSV.
    pub fn dataset(&self, dataset_id: &str) -> Result<Option<(String, String, String)>> {
        self.with_retry(|c| {
            Ok(c.query_opt("SELECT name, source, long_csv FROM hptune_datasets WHERE dataset_id = $1", &[&dataset_id])?
                .map(|r| (r.get(0), r.get(1), r.get(2))))
        })
    }
}

/// Whether an error is a dropped or refused connection (worth trying again) rather than a
/// refusal by the server (a missing database, a bad password) or a bug.
fn is_transient(e: &ServerError) -> bool {
    use postgres::error::SqlState;
    let lost = |e: &postgres::Error| {
        // The server ended the session (shutdown, restart, pg_terminate_backend) or the
        // connection broke.
        let ended = e.code().is_some_and(|c| {
            [SqlState::ADMIN_SHUTDOWN, SqlState::CRASH_SHUTDOWN, SqlState::CANNOT_CONNECT_NOW].contains(c)
                || c.code().starts_with("08")
        });
        ended
            || e.is_closed()
            || std::error::Error::source(e).is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some())
    };
    match e {
        ServerError::Connect { cause, .. } | ServerError::Sql(cause) => lost(cause),
        _ => false,
    }
}

/// Locks the study row (Optuna's `FOR UPDATE` on `studies`), which every writer of a new trial
/// takes: the lock is what keeps trial numbers unique.
pub fn lock_study(tx: &mut Transaction, name: &str) -> Result<i32> {
    crate::costs::time(crate::costs::Cost::ServerLockWait, || {
        tx.query_opt("SELECT study_id FROM studies WHERE study_name = $1 FOR UPDATE", &[&name])
    })?
    .map(|r| r.get(0))
    .ok_or_else(|| ServerError::Invalid(format!("no study {name} on the server")))
}

/// Inserts a trial of a study in `state` (RUNNING or WAITING) and numbers it as Optuna does: the count of
/// the study's trials with a smaller trial_id. Unique only while the caller holds the study row
/// (`lock_study`).
pub fn insert_trial(tx: &mut Transaction, study_id: i32, state: &str) -> Result<(i32, i32)> {
    let trial_id: i32 = tx
        .query_one(
            "INSERT INTO trials (study_id, state, datetime_start)
             VALUES ($1, $2::text::trialstate, CASE WHEN $2 = 'RUNNING' THEN now() AT TIME ZONE 'UTC' END)
             RETURNING trial_id",
            &[&study_id, &state],
        )?
        .get(0);
    let number: i32 = tx
        .query_one(
            "UPDATE trials SET number = (SELECT count(*) FROM trials WHERE study_id = $1 AND trial_id < $2)
             WHERE trial_id = $2 RETURNING number",
            &[&study_id, &trial_id],
        )?
        .get(0);
    Ok((trial_id, number))
}

/// Queues a failed trial again as Optuna's `RetryHeartbeatStaleTrialCallback` does: a WAITING
/// trial with the same parameters, `failed_trial` (the first of the series) and `retry_history`
/// (every trial of the series so far), unless the series has been retried `MAX_RETRY` times.
fn retry(tx: &mut Transaction, study_id: i32, trial_id: i32, number: i32) -> Result<Option<i32>> {
    let attrs: Vec<(String, String)> = tx
        .query(
            "SELECT key, value_json FROM trial_system_attributes WHERE trial_id = $1
             AND key IN ('failed_trial', 'retry_history', 'fixed_params', $2, $3)",
            &[&trial_id, &PHASE_ATTR, &SAMPLER_ATTR],
        )?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let attr = |k: &str| attrs.iter().find(|a| a.0 == k).and_then(|a| serde_json::from_str::<Json>(&a.1).ok());
    let failed_trial = attr("failed_trial").unwrap_or(json!(number));
    let mut history: Vec<Json> = attr("retry_history").and_then(|h| h.as_array().cloned()).unwrap_or_default();
    history.push(json!(number));
    if history.len() > MAX_RETRY {
        return Ok(None);
    }
    let (new_id, new_number) = insert_trial(tx, study_id, "WAITING")?;
    tx.execute(
        "INSERT INTO trial_params (trial_id, param_name, param_value, distribution_json)
         SELECT $2, param_name, param_value, distribution_json FROM trial_params WHERE trial_id = $1",
        &[&trial_id, &new_id],
    )?;
    set_attr(tx, new_id, "failed_trial", &failed_trial)?;
    set_attr(tx, new_id, "retry_history", &Json::Array(history))?;
    for key in ["fixed_params", PHASE_ATTR, SAMPLER_ATTR] {
        if let Some(v) = attr(key) {
            set_attr(tx, new_id, key, &v)?;
        }
    }
    Ok(Some(new_number))
}

/// The parameters a trial was enqueued with (`study.enqueue_trial`: its `fixed_params`).
fn fixed_params(c: &mut Client, trial_id: i32) -> Result<Vec<(String, Json)>> {
    let row = c.query_opt(
        "SELECT value_json FROM trial_system_attributes WHERE trial_id = $1 AND key = 'fixed_params'",
        &[&trial_id],
    )?;
    let fixed: Option<Json> = row.and_then(|r| serde_json::from_str(r.get::<_, &str>(0)).ok());
    Ok(fixed.and_then(|f| f.as_object().cloned()).map(|m| m.into_iter().collect()).unwrap_or_default())
}

fn study_attr(tx: &mut Transaction, study_id: i32) -> Result<String> {
    Ok(tx
        .query_one(
            "SELECT value_json FROM study_system_attributes WHERE study_id = $1 AND key = $2",
            &[&study_id, &STUDY_ATTR],
        )?
        .get(0))
}

fn trial_id(tx: &mut Transaction, study: &str, number: usize) -> Result<i32> {
    tx.query_opt(
        "SELECT t.trial_id FROM trials t JOIN studies s ON s.study_id = t.study_id
         WHERE s.study_name = $1 AND t.number = $2 ORDER BY t.trial_id LIMIT 1",
        &[&study, &(number as i32)],
    )?
    .map(|r| r.get(0))
    .ok_or_else(|| ServerError::Invalid(format!("study {study} has no trial {number}")))
}

fn set_attr(tx: &mut Transaction, trial_id: i32, key: &str, value: &Json) -> Result<()> {
    tx.execute(
        "INSERT INTO trial_system_attributes (trial_id, key, value_json) VALUES ($1, $2, $3)
         ON CONFLICT (trial_id, key) DO UPDATE SET value_json = excluded.value_json",
        &[&trial_id, &key, &value.to_string()],
    )?;
    Ok(())
}

fn insert_epochs(tx: &mut Transaction, trial_id: i32, epochs: &[EpochMetrics]) -> Result<()> {
    for m in epochs {
        let epoch = m.epoch as i32;
        tx.execute(
            "INSERT INTO trial_intermediate_values (trial_id, step, intermediate_value, intermediate_value_type)
             VALUES ($1, $2, $3, 'FINITE') ON CONFLICT (trial_id, step) DO NOTHING",
            &[&trial_id, &epoch, &m.val_accuracy],
        )?;
        tx.execute(
            "INSERT INTO hptune_epochs (trial_id, epoch, train_loss, val_loss, val_accuracy, seconds)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            &[&trial_id, &epoch, &m.train_loss, &m.val_loss, &m.val_accuracy, &m.seconds],
        )?;
    }
    Ok(())
}

/// Ends a trial under its row lock if it is still RUNNING (the second finisher loses, as in
/// Optuna): state, value and completion time together. A PRUNED trial's Optuna value is its last
/// intermediate value, as Optuna records it; hptune's value and the rest of the end go into the
/// `hptune:end` attribute.
fn guarded_end(tx: &mut Transaction, trial_id: i32, end: &TrialEnd) -> Result<Finished> {
    let state: String =
        tx.query_one("SELECT state::text FROM trials WHERE trial_id = $1 FOR UPDATE", &[&trial_id])?.get(0);
    if state != "RUNNING" {
        return Ok(Finished::AlreadyEnded { state });
    }
    tx.execute(
        "UPDATE trials SET state = $2::text::trialstate, datetime_complete = now() AT TIME ZONE 'UTC' WHERE trial_id = $1",
        &[&trial_id, &end.state.as_str()],
    )?;
    let optuna_value: Option<f64> = match end.state {
        TrialState::Complete => end.value,
        TrialState::Pruned => tx
            .query_opt(
                "SELECT intermediate_value FROM trial_intermediate_values WHERE trial_id = $1 ORDER BY step DESC LIMIT 1",
                &[&trial_id],
            )?
            .and_then(|r| r.get(0)),
        _ => None,
    };
    if let Some(v) = optuna_value.filter(|v| v.is_finite()) {
        tx.execute(
            "INSERT INTO trial_values (trial_id, objective, value, value_type) VALUES ($1, 0, $2, 'FINITE')
             ON CONFLICT (trial_id, objective) DO UPDATE SET value = excluded.value",
            &[&trial_id, &v],
        )?;
    }
    let record =
        json!({"value": end.value, "val_loss": end.val_loss, "pruned_epoch": end.pruned_epoch, "reason": end.reason});
    set_attr(tx, trial_id, END_ATTR, &record)?;
    Ok(Finished::Recorded)
}

fn study_json(s: &StudyRecord) -> Json {
    json!({
        "direction": s.direction,
        "dataset_id": s.dataset_id,
        "space_toml": s.space_toml,
        "n_trials": s.n_trials,
        "plan": [s.plan.random, s.plan.bayesian, s.plan.finetune],
        "seed": s.seed,
        "epochs": s.epochs,
        "holdout": s.holdout,
        "pruning": s.pruning,
        "sampler": s.sampler,
        "sampler_json": s.sampler_json,
    })
}

fn parse_study(name: &str, attr: &str) -> Result<StudyRecord> {
    let bad =
        |what: &str| ServerError::Invalid(format!("study {name}: its {STUDY_ATTR} attribute has no valid {what}"));
    let j: Json = serde_json::from_str(attr).map_err(|_| bad("JSON"))?;
    let text = |k: &str| j.get(k).and_then(Json::as_str).map(str::to_string).ok_or_else(|| bad(k));
    let uint = |k: &str| j.get(k).and_then(Json::as_u64).ok_or_else(|| bad(k));
    let plan = j.get("plan").and_then(Json::as_array).filter(|p| p.len() == 3).ok_or_else(|| bad("plan"))?;
    let phase = |i: usize| plan[i].as_u64().map(|v| v as usize).ok_or_else(|| bad("plan"));
    Ok(StudyRecord {
        study_name: name.to_string(),
        direction: text("direction")?,
        dataset_id: text("dataset_id")?,
        space_toml: text("space_toml")?,
        n_trials: uint("n_trials")? as usize,
        plan: PhasePlan { random: phase(0)?, bayesian: phase(1)?, finetune: phase(2)? },
        seed: uint("seed")?,
        epochs: uint("epochs")? as usize,
        holdout: j.get("holdout").and_then(Json::as_f64).ok_or_else(|| bad("holdout"))?,
        pruning: j.get("pruning").and_then(Json::as_bool).ok_or_else(|| bad("pruning"))?,
        sampler: Sampler::parse(&text("sampler")?).ok_or_else(|| bad("sampler"))?,
        sampler_json: text("sampler_json")?,
    })
}

fn run_json(r: &NewRun) -> Json {
    json!({
        "run_id": r.run_id,
        "dataset_id": r.dataset_id,
        "model_type": r.model_type,
        "config_json": r.config_json,
        "config_source": r.config_source,
        "seed": r.seed,
        "device": r.device,
        "tickers": r.tickers,
        "train_span": [r.train_span.0.to_string(), r.train_span.1.to_string()],
        "val_span": [r.val_span.0.to_string(), r.val_span.1.to_string()],
        "holdout_start": r.holdout_start.map(|d| d.to_string()),
    })
}

/// A trial's run from its `hptune:run` attribute.
fn parse_run(attr: &str, study: &str, number: usize) -> Result<NewRun> {
    let bad = |what: &str| {
        ServerError::Invalid(format!("study {study} trial {number}: its {RUN_ATTR} attribute has no valid {what}"))
    };
    let j: Json = serde_json::from_str(attr).map_err(|_| bad("JSON"))?;
    let text = |k: &str| j.get(k).and_then(Json::as_str).map(str::to_string).ok_or_else(|| bad(k));
    let date = |v: &Json| v.as_str().and_then(|d| d.parse::<chrono::NaiveDate>().ok());
    let span = |k: &str| {
        let pair = j.get(k).and_then(Json::as_array).filter(|p| p.len() == 2).ok_or_else(|| bad(k))?;
        Ok::<_, ServerError>((date(&pair[0]).ok_or_else(|| bad(k))?, date(&pair[1]).ok_or_else(|| bad(k))?))
    };
    let tickers = j.get("tickers").and_then(Json::as_array).ok_or_else(|| bad("tickers"))?;
    Ok(NewRun {
        run_id: text("run_id")?,
        stage: RunStage::Tune,
        dataset_id: text("dataset_id")?,
        model_type: text("model_type")?,
        config_json: text("config_json")?,
        config_source: text("config_source")?,
        seed: j.get("seed").and_then(Json::as_u64).ok_or_else(|| bad("seed"))?,
        device: text("device")?,
        tickers: tickers
            .iter()
            .map(|t| t.as_str().map(str::to_string).ok_or_else(|| bad("tickers")))
            .collect::<Result<_>>()?,
        train_span: span("train_span")?,
        val_span: span("val_span")?,
        holdout_start: j.get("holdout_start").and_then(date),
        lineage: Lineage::Trial { study: study.to_string(), number },
    })
}

fn parse_space(study: &StudyRecord) -> Result<Space> {
    Space::from_toml(&study.space_toml)
        .map_err(|e| ServerError::Invalid(format!("study {}: stored search space: {e}", study.study_name)))
}

/// The study's trials with their trial ids, by number. A trial that another client (Python
/// Optuna) made has no hptune attributes: it counts in the phase its number falls in, sampled
/// by the study's sampler; parameters outside the study's space are left out.
fn read_trials(
    c: &mut impl GenericClient,
    study_id: i32,
    study: &StudyRecord,
    space: &Space,
) -> Result<Vec<(i32, TrialRecord)>> {
    let rows = c.query(
        "SELECT t.trial_id, t.number, t.state::text, t.datetime_start, t.datetime_complete, v.value,
                extract(epoch FROM now()::timestamp - h.heartbeat)::float8
         FROM trials t LEFT JOIN trial_values v ON v.trial_id = t.trial_id AND v.objective = 0
         LEFT JOIN trial_heartbeats h ON h.trial_id = t.trial_id
         WHERE t.study_id = $1 AND t.state <> 'WAITING' AND t.number IS NOT NULL ORDER BY t.number, t.trial_id",
        &[&study_id],
    )?;
    let attrs = c.query(
        "SELECT a.trial_id, a.key, a.value_json FROM trial_system_attributes a JOIN trials t ON t.trial_id = a.trial_id
         WHERE t.study_id = $1 AND a.key LIKE 'hptune:%'",
        &[&study_id],
    )?;
    let params = c.query(
        "SELECT p.trial_id, p.param_name, p.param_value FROM trial_params p JOIN trials t ON t.trial_id = p.trial_id
         WHERE t.study_id = $1",
        &[&study_id],
    )?;
    // Each trial's attributes and parameters, grouped once: a claim reads the whole study, so its
    // cost must grow with the rows, not with trials x rows.
    let attrs_of: HashMap<i32, Vec<(&str, &str)>> =
        attrs.iter().map(|a| (a.get(0), (a.get(1), a.get(2)))).into_group_map();
    let params_of: HashMap<i32, Vec<(&str, Option<f64>)>> =
        params.iter().map(|p| (p.get(0), (p.get(1), p.get(2)))).into_group_map();
    let resolved = study.sampler.resolve(space);
    let mut trials = Vec::with_capacity(rows.len());
    for r in rows {
        let trial_id: i32 = r.get(0);
        let number = r.get::<_, i32>(1) as usize;
        let own_attrs = attrs_of.get(&trial_id).map_or(&[][..], Vec::as_slice);
        let attr = |key: &str| -> Option<Json> {
            own_attrs.iter().find(|(k, _)| *k == key).and_then(|(_, v)| serde_json::from_str(v).ok())
        };
        let phase = attr(PHASE_ATTR)
            .and_then(|p| p.as_str().and_then(crate::search::Phase::parse))
            .unwrap_or_else(|| study.plan.phase_of(number));
        let sampled_by =
            attr(SAMPLER_ATTR).and_then(|s| s.as_str().and_then(SampledBy::parse)).unwrap_or(match (phase, resolved) {
                (crate::search::Phase::Random, _) => SampledBy::Halton,
                (_, Sampler::Gp) => SampledBy::Gp,
                _ => SampledBy::Tpe,
            });
        let state = TrialState::parse(r.get::<_, &str>(2)).unwrap_or(TrialState::Fail);
        let end = attr(END_ATTR).unwrap_or(Json::Null);
        let started: Option<NaiveDateTime> = r.get(3);
        let finished: Option<NaiveDateTime> = r.get(4);
        let started_at = started.unwrap_or_default();
        let mut record = TrialRecord {
            number,
            phase,
            sampled_by,
            state,
            value: end.get("value").and_then(Json::as_f64).or(r.get(5)),
            val_loss: end.get("val_loss").and_then(Json::as_f64),
            run_id: Some(crate::ids::trial_run(&study.study_name, number)),
            worker: attr(WORKER_ATTR).and_then(|w| w.as_str().map(str::to_string)).unwrap_or_else(|| "optuna".into()),
            pruned_epoch: end.get("pruned_epoch").and_then(Json::as_i64).map(|e| e as i32),
            reason: end.get("reason").and_then(Json::as_str).map(str::to_string),
            started_at,
            finished_at: finished,
            duration_s: finished.map(|f| (f - started_at).num_milliseconds() as f64 / 1000.0),
            params: Default::default(),
            heartbeat_age_s: r.get::<_, Option<f64>>(6).unwrap_or(0.0),
        };
        for &(name, value) in params_of.get(&trial_id).map_or(&[][..], Vec::as_slice) {
            let Some(param) = space.params.iter().find(|s| s.name == name) else { continue };
            let Some(value) = value.and_then(|v| param.dist.from_optuna(v)) else { continue };
            record.params.insert(name.to_string(), value);
        }
        trials.push((trial_id, record));
    }
    Ok(trials)
}

#[cfg(test)]
mod redact_tests {
    use super::{redact, redact_text};

    #[test]
    fn passwords_leave_urls_and_command_lines() {
        assert_eq!(redact("postgresql://u:secret@h:5432/db"), "postgresql://u:***@h:5432/db");
        assert_eq!(
            redact("postgresql://u@h/db?password=secret&sslmode=off"),
            "postgresql://u@h/db?password=***&sslmode=off"
        );
        assert_eq!(
            redact("postgresql://h/db?sslmode=off&PASSWORD=secret"),
            "postgresql://h/db?sslmode=off&PASSWORD=***"
        );
        assert_eq!(redact("postgresql://u@h/db"), "postgresql://u@h/db");
        let line =
            "hptune tune --storage=postgresql://u:secret@h/db --study s HPTUNE_STORAGE=postgres://h/x?password=pw";
        let red = redact_text(line);
        assert!(!red.contains("secret") && !red.contains("pw"), "{red}");
        assert!(red.contains("--storage=postgresql://u:***@h/db") && red.contains("--study s"), "{red}");
    }
}
