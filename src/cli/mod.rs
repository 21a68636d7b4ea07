//! The command line: parse the arguments, resolve them into the settings each command needs, and
//! run it. One file per command.

mod analyze;
mod annotate;
mod backtest;
mod clean;
mod data;
mod diff;
mod export;
mod extend;
mod merge;
mod pipeline;
mod pull;
mod query;
mod report;
mod train;
mod tune;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::store::Store;

#[derive(Debug, Parser)]
#[command(
    name = "hptune",
    version,
    about = "Tune, validate, train and backtest next-day direction models; every stage recorded in one DuckDB file."
)]
pub struct Cli {
    /// The experiments database (a DuckDB file; created on first use).
    #[arg(long, global = true, env = "HPTUNE_DB", default_value = "experiments.db")]
    pub db: PathBuf,

    /// Seconds that `query`, `data`, `export`, `check`, `report` and `clean` wait for another
    /// process that holds the database before giving up. The stages (tune, extend, analyze, train, backtest, pipeline)
    /// wait as long as it takes, saying every 10 s who holds it, so that no work is lost.
    #[arg(long, global = true, env = "HPTUNE_LOCK_TIMEOUT", default_value_t = 60.0, value_name = "SECS")]
    pub lock_timeout: f64,

    /// No progress lines (results, notes and errors still print).
    #[arg(long, short, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Progress as log lines even on a terminal, and, when the command ends, where its time went
    /// outside training (database opens, calls and waits, sampler, features, checkpoints, exports).
    #[arg(long, short, global = true)]
    pub verbose: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Import, generate and describe market data.
    Data(data::Args),
    /// Run a named view or read-only SQL on the database.
    Query(query::Args),
    /// Run all five stages in order (quick defaults), stopping at the first failure.
    Pipeline(pipeline::Args),
    /// Print every stage's checklist: inputs present, disk space, device.
    Check(pipeline::CheckArgs),
    /// Write a stage's files again from the database.
    Export(export::Args),
    /// Stage 1: tune hyperparameters in three phases (random, Bayesian, fine-tuning).
    Tune(tune::Args),
    /// Copy a study server's studies (trials, epochs, checkpoints, dataset) into the database.
    Pull(pull::Args),
    /// Stage 2: train the study's top configurations on every cross-validation fold.
    Extend(extend::Args),
    /// Stage 3: select the best configuration (the best_config view) and export best_config.json.
    Analyze(analyze::Args),
    /// Stage 4: train the selected configuration (or --config) and export final_model/.
    Train(train::Args),
    /// Stage 5: backtest a model on its own tickers after its training data, or print its signals.
    Backtest(backtest::Args),
    /// Two runs of one kind side by side: settings, configuration, data, code and results that differ.
    Diff(diff::Args),
    /// Copy another experiments database's datasets, studies, runs and results into this one.
    Merge(merge::Args),
    /// Tag a study, run, selection or backtest with KEY=VALUE pairs (none: list its tags).
    Tag(annotate::TagArgs),
    /// Add a note to a study, run, selection or backtest (none: list its notes).
    Note(annotate::NoteArgs),
    /// Write the whole record (history and each stage's newest run) as one HTML page.
    Report(report::Args),
    /// Show what moved-aside outputs and unneeded weights take; --apply removes them.
    Clean(clean::Args),
    /// Print a shell completion script: `hptune completions bash > /etc/bash_completion.d/hptune`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `hptune man > hptune.1 && man ./hptune.1`.
    Man,
}

/// A listing as a table (for people) or JSON (for scripts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TableOrJson {
    Table,
    Json,
}

/// `--sampler`: one of the samplers' names.
pub(crate) fn sampler() -> impl clap::builder::TypedValueParser<Value = crate::search::Sampler> {
    use crate::search::Sampler;
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(Sampler::ALL.iter().map(|s| s.as_str()))
        .map(|s: String| Sampler::parse(&s).expect("a listed sampler"))
}

/// A count of at least one (trials, epochs, jobs, configurations).
pub(crate) fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("'{s}' is not a whole number of at least 1")),
    }
}

/// `--test-groups`: CPCV's k, 2 unless given; refused with another scheme, where it would mean nothing.
pub(crate) fn test_groups(scheme: crate::cv::Scheme, given: Option<usize>) -> anyhow::Result<usize> {
    match (scheme, given) {
        (crate::cv::Scheme::Cpcv, k) => Ok(k.unwrap_or(2)),
        (_, None) => Ok(1),
        (other, Some(_)) => anyhow::bail!("--test-groups applies to --scheme cpcv, not {other}"),
    }
}

/// A study server's URL: PostgreSQL (`postgresql://`, `postgres://`, or SQLAlchemy's
/// `postgresql+DRIVER://`). A bad one is refused with its password redacted, which clap's own
/// message for a value parser (it repeats the value) would not do.
#[derive(Clone)]
pub(crate) struct StorageUrl;

impl clap::builder::TypedValueParser for StorageUrl {
    type Value = String;

    fn parse_ref(
        &self,
        _cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        use clap::error::ErrorKind;
        let s = value.to_str().ok_or_else(|| clap::Error::raw(ErrorKind::InvalidUtf8, "--storage is not UTF-8\n"))?;
        if crate::store::server::is_url(s) {
            return Ok(s.to_string());
        }
        Err(clap::Error::raw(
            ErrorKind::ValueValidation,
            format!(
                "invalid value '{}' for '--storage': not a PostgreSQL URL (postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE)\n",
                crate::store::server::redact(s)
            ),
        ))
    }
}

/// The share of the latest dates kept out of training: above 0 and below 0.9.
pub(crate) fn holdout_share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(h) if h > 0.0 && h < 0.9 => Ok(h),
        _ => Err(format!("'{s}' is not a share between 0 and 0.9 (e.g. 0.2 keeps the latest 20% of dates)")),
    }
}

/// CSCV's blocks: an even number from 2 to 24 (C(24, 12) = 2.7 million combinations).
pub(crate) fn pbo_blocks(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (2..=24).contains(&n) && n.is_multiple_of(2) => Ok(n),
        _ => Err(format!("'{s}' is not an even number of blocks from 2 to 24 (the paper's default is 16)")),
    }
}

/// Costs in basis points: 0 to 1,000 (10%).
pub(crate) fn basis_points(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(b) if (0.0..=1000.0).contains(&b) => Ok(b),
        _ => Err(format!("'{s}' is not a number of basis points from 0 to 1000")),
    }
}

/// What to do about a store error, in terms of this command line's flags (the store's own
/// messages say what happened, not which flag to use).
fn with_hint(e: anyhow::Error) -> anyhow::Error {
    let hint = e.chain().find_map(|c| c.downcast_ref::<crate::store::StoreError>()).and_then(|s| {
        use crate::store::StoreError::*;
        match s {
            Locked { .. } => Some("run again when that process finishes, or wait longer with --lock-timeout SECS"),
            NameTaken { .. } => Some("choose another --name"),
            NoDataset { .. } => Some("`hptune data list` shows the datasets there"),
            TooManyFailures { .. } => Some("`hptune query optimization_history` shows the reasons"),
            NoDatabase(_) => Some("pass --db PATH (or set HPTUNE_DB), or run a stage to create it"),
            ExternalAccess(_) => Some("write results with --output FILE [--format csv|json|parquet]"),
            _ => None,
        }
    });
    match hint {
        Some(hint) => anyhow::anyhow!("{e:#}. {}{}", hint[..1].to_uppercase(), &hint[1..]),
        None => e,
    }
}

impl Cli {
    pub fn run(self) -> anyhow::Result<()> {
        self.dispatch().map_err(with_hint)
    }

    fn dispatch(self) -> anyhow::Result<()> {
        crate::progress::set_mode(self.quiet, self.verbose);
        if !(self.lock_timeout.is_finite() && self.lock_timeout >= 0.0) {
            anyhow::bail!("--lock-timeout must be a number of seconds >= 0, got {}", self.lock_timeout);
        }
        let cpu_env = crate::model::CPU_ENV;
        if let Some(v) = std::env::var(cpu_env).ok().filter(|v| crate::model::Cpu::parse(v).is_none()) {
            anyhow::bail!("{cpu_env}={v}: use baseline, avx2 or avx512 (the widest CPU kernels to use), or unset it");
        }
        let interactive = matches!(
            self.command,
            Command::Data(_)
                | Command::Query(_)
                | Command::Diff(_)
                | Command::Tag(_)
                | Command::Note(_)
                | Command::Check(_)
                | Command::Export(_)
                | Command::Clean(_)
        );
        let store = Store::new(self.db, interactive.then(|| Duration::from_secs_f64(self.lock_timeout)));
        if matches!(self.command, Command::Tune(_) | Command::Extend(_) | Command::Train(_) | Command::Pipeline(_)) {
            crate::interrupt::install();
        }
        match self.command {
            Command::Data(args) => data::run(args, &store),
            Command::Query(args) => query::run(args, &store),
            Command::Diff(args) => diff::run(args, &store),
            Command::Tag(args) => annotate::tag(args, &store),
            Command::Merge(args) => merge::run(args, &store),
            Command::Note(args) => annotate::note(args, &store),
            Command::Train(args) => train::run(args, &store),
            Command::Analyze(args) => analyze::run(args, &store),
            Command::Backtest(args) => backtest::run(args, &store),
            Command::Check(args) => pipeline::check(args, &store),
            Command::Export(args) => export::run(args, &store),
            Command::Clean(args) => clean::run(args, &store),
            Command::Report(args) => report::run(args, &store),
            Command::Pull(args) => pull::run(args, &store),
            Command::Pipeline(args) => {
                if args.jobs > 1 && std::env::var_os("RAYON_NUM_THREADS").is_none() {
                    std::env::set_var("RAYON_NUM_THREADS", "1");
                }
                pipeline::run(args, &store)
            }
            Command::Extend(args) => {
                if args.jobs > 1 && std::env::var_os("RAYON_NUM_THREADS").is_none() {
                    std::env::set_var("RAYON_NUM_THREADS", "1");
                }
                extend::run(args, &store)
            }
            // From the definition alone: the store is never opened (it opens on first use).
            Command::Completions { shell } => {
                use clap::CommandFactory;
                clap_complete::generate(shell, &mut Cli::command(), "hptune", &mut std::io::stdout());
                Ok(())
            }
            Command::Man => {
                use clap::CommandFactory;
                Ok(clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?)
            }
            Command::Tune(args) => {
                // One thread per trial: keep candle's matrix products single-threaded when trials
                // run side by side.
                if args.jobs > 1 && std::env::var_os("RAYON_NUM_THREADS").is_none() {
                    std::env::set_var("RAYON_NUM_THREADS", "1");
                }
                tune::run(args, &store)
            }
        }
    }
}
