//! Stage 5, backtest: a model on its own tickers, in its own order, over the days after its
//! training data; decisions at each close from data up to that close. Also the latest signal per
//! ticker.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use chrono::NaiveDate;

use crate::backtest::{self, stats, Market, Mode, Settings};
use crate::checkpoint::{self, LoadedModel};
use crate::cv::LABEL_HORIZON;
use crate::features::{self, FeatureTable, WARMUP};
use crate::model::{build_inputs, ModelConfig};
use crate::states::{ModelSource, Role, RunStage, Side};
use crate::store::{
    BacktestRecord, CheckpointRecord, EquityRow, Lineage, NewRun, SavedCheckpoint, SignalRow, StatRow, Store, TradeRow,
};

#[derive(Debug, Clone)]
pub struct Request {
    /// A `final_model/` export or a checkpoint folder; default: the seed's order of models.
    pub model_path: Option<PathBuf>,
    /// Dataset to simulate on (default: the model's).
    pub dataset: Option<String>,
    pub start: Option<NaiveDate>,
    pub end: Option<NaiveDate>,
    /// Allow a period that overlaps the model's training data (marked in the results).
    pub include_training: bool,
    pub mode: Mode,
    pub threshold: f64,
    pub commission_bps: f64,
    pub slippage_bps: f64,
    pub initial_cash: f64,
    pub out_dir: PathBuf,
}

/// The model a backtest uses, and why.
pub struct Chosen {
    pub source: ModelSource,
    pub why: String,
    pub model: LoadedModel,
}

/// The recorded model a backtest picks, with its source and why, in this order: the newest final
/// model, the newest extended run's best configuration (its last fold, trained on the most data),
/// the newest study's best trial.
pub fn recorded_model(store: &Store) -> anyhow::Result<Option<(ModelSource, CheckpointRecord, String)>> {
    if let Some(c) = store.newest_final_model()? {
        let why = format!("the newest final model (hptune train run {})", c.run_id);
        return Ok(Some((ModelSource::Final, c, why)));
    }
    if let Some((c, pick)) = store.newest_extended_best()? {
        let why = format!(
            "the newest extended run ({}): its best configuration, trial {}, fold {} (trained on the most data)",
            pick.extended_run_id, pick.trial_number, pick.fold
        );
        return Ok(Some((ModelSource::Extended, c, why)));
    }
    if let Some((c, (study, number))) = store.newest_study_best()? {
        let why = format!("the best trial ({number}) of the newest study ({study})");
        return Ok(Some((ModelSource::Tuning, c, why)));
    }
    Ok(None)
}

/// Picks the model: `--model-path`, else the recorded model, and last a default configuration
/// trained now.
pub fn choose_model(store: &Store, path: Option<&std::path::Path>, dataset: Option<&str>) -> anyhow::Result<Chosen> {
    let device = candle_core::Device::Cpu;
    if let Some(p) = path {
        if let Some(model) = import_model(store, p, dataset)? {
            let why = format!("--model-path {} (imported: trained in another database)", p.display());
            return Ok(Chosen { source: ModelSource::Path, why, model });
        }
        // A final_model/ export holds best_model/ and final_model/; a checkpoint folder holds the file.
        let best = crate::layout::final_checkpoint_dir(p, Role::Best);
        let dir = if best.join(checkpoint::FILE).exists() { best } else { p.to_path_buf() };
        let model = checkpoint::load(store, &dir, &device)?;
        return Ok(Chosen { source: ModelSource::Path, why: format!("--model-path {}", p.display()), model });
    }
    if let Some((source, record, why)) = recorded_model(store)? {
        let model = checkpoint::load_record(store, &record, &device)?;
        return Ok(Chosen { source, why, model });
    }
    let dataset = dataset.unwrap_or(crate::data::SHIPPED[0].name).to_string();
    eprintln!("no model in {}: training the default configuration on {dataset} first", store.path().display());
    let outcome = super::train::run(
        store,
        &super::train::Request {
            config: ModelConfig::default(),
            config_source: "default configuration (no model in the database)".into(),
            lineage: Lineage::Given,
            dataset,
            seed: 42,
            holdout: crate::split::DEFAULT_HOLDOUT,
            device: crate::model::Device::Cpu,
            out_dir: PathBuf::from(crate::layout::FINAL_DIR),
        },
    )?;
    let record = store.checkpoint(&format!("{}/best", outcome.run_id))?;
    let model = checkpoint::load_record(store, &record, &device)?;
    Ok(Chosen {
        source: ModelSource::Default,
        why: "no model in the database: the default configuration, trained now".into(),
        model,
    })
}

/// What an export says of a model it holds: enough to record it in another database.
struct Exported {
    /// The weights file, and the sha256 the export lists for it.
    file: PathBuf,
    listed_sha: String,
    config: ModelConfig,
    tickers: Vec<String>,
    /// The run id in the database it came from.
    origin: String,
    seed: u64,
    train_span: (NaiveDate, NaiveDate),
    val_span: (NaiveDate, NaiveDate),
    holdout_start: Option<NaiveDate>,
    /// The content hash of its dataset, where the export says.
    dataset_hash: Option<String>,
    dataset_name: String,
    /// Epochs run, best epoch.
    epochs: (usize, usize),
}

fn read_json(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn text(json: &serde_json::Value, pointer: &str) -> String {
    json.pointer(pointer).and_then(|v| v.as_str()).unwrap_or_default().to_string()
}

fn day(json: &serde_json::Value, pointer: &str, file: &Path) -> anyhow::Result<NaiveDate> {
    NaiveDate::parse_from_str(&text(json, pointer), "%Y-%m-%d")
        .with_context(|| format!("{}: {pointer} is not a date", file.display()))
}

fn count(json: &serde_json::Value, pointer: &str) -> usize {
    json.pointer(pointer).and_then(|v| v.as_u64()).unwrap_or_default() as usize
}

/// A `final_model/` export: `config.json`, `training_results.json` and `best_model/`.
fn final_export(dir: &Path) -> anyhow::Result<Option<Exported>> {
    let (config_path, results_path) = (dir.join(crate::layout::CONFIG), dir.join(crate::layout::TRAINING_RESULTS));
    let (Some(config), Some(results)) = (read_json(&config_path), read_json(&results_path)) else { return Ok(None) };
    let listed = results["checkpoints"].as_array().and_then(|c| c.iter().find(|c| c["role"] == Role::Best.as_str()));
    Ok(Some(Exported {
        file: crate::layout::final_checkpoint_dir(dir, Role::Best).join(checkpoint::FILE),
        listed_sha: listed.map(|c| text(c, "/sha256")).unwrap_or_default(),
        config: ModelConfig::from_map(config["config"].as_object().unwrap_or(&Default::default()))
            .map_err(|e| anyhow::anyhow!("{}: {e}", config_path.display()))?,
        tickers: serde_json::from_value(config["tickers"].clone()).unwrap_or_default(),
        origin: text(&config, "/run_id"),
        seed: config["seed"].as_u64().unwrap_or_default(),
        train_span: (day(&config, "/train/start", &config_path)?, day(&config, "/train/end", &config_path)?),
        val_span: (day(&config, "/validation/start", &config_path)?, day(&config, "/validation/end", &config_path)?),
        holdout_start: day(&config, "/holdout_start", &config_path).ok(),
        dataset_hash: Some(text(&config, "/dataset/content_hash")),
        dataset_name: text(&config, "/dataset/name"),
        epochs: (count(&results, "/epochs_run"), count(&results, "/best_epoch")),
    }))
}

/// A fold of an `extended_training_results/` export: `.../extended_model_R/RUN/fold_K/`, whose
/// hashes and spans are in the folder's `extended_training_results.json`.
fn fold_export(dir: &Path) -> anyhow::Result<Option<Exported>> {
    let Some(results_path) = dir.ancestors().nth(3).map(|root| root.join(crate::layout::EXTENDED_RESULTS)) else {
        return Ok(None);
    };
    let Some(results) = read_json(&results_path) else { return Ok(None) };
    let file = dir.join(checkpoint::FILE);
    let fold_no: Option<usize> = dir.file_name().and_then(|n| n.to_str()?.strip_prefix("fold_")?.parse().ok());
    let rank: Option<usize> =
        dir.ancestors().nth(2).and_then(|d| d.file_name()?.to_str()?.strip_prefix("extended_model_")?.parse().ok());
    let (Some(fold_no), Some(rank)) = (fold_no, rank) else { return Ok(None) };
    let entry = results["results"].as_array().and_then(|r| r.iter().find(|e| count(e, "/config_rank") == rank));
    let fold = entry.and_then(|e| e["folds"].as_array()?.iter().find(|f| count(f, "/fold") == fold_no));
    let (Some(entry), Some(fold)) = (entry, fold) else { return Ok(None) };
    Ok(Some(Exported {
        file,
        listed_sha: text(fold, "/checkpoint/sha256"),
        config: ModelConfig::from_map(entry["config"].as_object().unwrap_or(&Default::default()))
            .map_err(|e| anyhow::anyhow!("{}: {e}", results_path.display()))?,
        tickers: serde_json::from_value(results["tickers"].clone()).unwrap_or_default(),
        origin: text(fold, "/run_id"),
        seed: results["seed"].as_u64().unwrap_or_default(),
        train_span: (day(fold, "/train_start", &results_path)?, day(fold, "/train_end", &results_path)?),
        val_span: (day(fold, "/val_start", &results_path)?, day(fold, "/val_end", &results_path)?),
        holdout_start: day(&results, "/holdout_start", &results_path).ok(),
        dataset_hash: None,
        dataset_name: String::from("(not named in the export)"),
        epochs: (count(fold, "/epochs_run"), count(fold, "/best_epoch")),
    }))
}

/// A `final_model/` export or an extended run's fold folder from another database (its weights
/// unknown here): the weights are checked against the sha256 the export lists, and recorded here
/// as an imported run (stage `import`, where it came from in `config_source`) on `dataset`, else on
/// the dataset with the export's content hash, else on the newest one holding its tickers. None
/// when `dir` is no such export, or its weights are known here.
fn import_model(store: &Store, dir: &Path, dataset: Option<&str>) -> anyhow::Result<Option<LoadedModel>> {
    let Some(export) = (match final_export(dir)? {
        Some(e) => Some(e),
        None => fold_export(dir)?,
    }) else {
        return Ok(None);
    };
    let Ok(bytes) = std::fs::read(&export.file) else { return Ok(None) };
    // Known here, by content or by place (a changed file of this database is refused as such).
    let sha = checkpoint::sha256_hex(&bytes);
    let place = std::fs::canonicalize(&export.file)?.to_string_lossy().into_owned();
    if store.checkpoint_by_sha(&sha)?.is_some() || store.checkpoint_at(&place)?.is_some() {
        return Ok(None);
    }
    if export.listed_sha != sha {
        bail!(
            "{} does not match the sha256 its export lists ({}): the weights were changed; refusing to import them",
            export.file.display(),
            if export.listed_sha.is_empty() { "none" } else { &export.listed_sha }
        );
    }
    let tickers = &export.tickers;
    let holds_all = |d: &crate::store::DatasetInfo| tickers.iter().all(|t| d.tickers.contains(t));
    let data = match dataset {
        Some(name) => store.dataset(name)?,
        None => {
            let all = store.datasets()?;
            let by_hash = all.iter().find(|d| Some(&d.content_hash) == export.dataset_hash.as_ref()).cloned();
            by_hash.or_else(|| all.into_iter().rev().find(holds_all)).with_context(|| {
                format!(
                    "{} was trained on dataset {} of another database, and no dataset here holds its tickers ({}): \
                     import one, or pass --dataset NAME",
                    dir.display(),
                    export.dataset_name,
                    tickers.join(", ")
                )
            })?
        }
    };
    let missing: Vec<&str> = tickers.iter().filter(|t| !data.tickers.contains(t)).map(String::as_str).collect();
    if !missing.is_empty() {
        bail!(
            "dataset {} lacks {} of the model's tickers: {} (the model's tickers, in order: {}); nothing was imported",
            data.name,
            missing.len(),
            missing.join(", "),
            tickers.join(", ")
        );
    }
    let run_id = crate::ids::new("import");
    let run = NewRun {
        run_id: run_id.clone(),
        stage: RunStage::Import,
        dataset_id: data.dataset_id,
        model_type: export.config.model_type.name().into(),
        config_json: export.config.to_json().to_string(),
        config_source: format!("imported from {} (run {} of another database)", dir.display(), export.origin),
        seed: export.seed,
        device: crate::model::Device::Cpu.as_str().into(),
        tickers: export.tickers.clone(),
        train_span: export.train_span,
        val_span: export.val_span,
        holdout_start: export.holdout_start,
        lineage: Lineage::Given,
    };
    let record = CheckpointRecord {
        checkpoint_id: format!("{run_id}/{}", Role::Best),
        run_id,
        role: Role::Best,
        epoch: export.epochs.1 as i32,
        path: place,
        sha256: sha,
        size_bytes: bytes.len() as i64,
        cleanup_id: None,
    };
    store.import_run(&run, export.epochs, &SavedCheckpoint { record, bytes })?;
    eprintln!("imported {} as run {} (trained in another database)", dir.display(), run.run_id);
    Ok(Some(checkpoint::load(store, &export.file, &candle_core::Device::Cpu)?))
}

/// The model's tickers from a dataset, in the model's order, with its features.
fn model_table(
    store: &Store,
    m: &LoadedModel,
    dataset: Option<&str>,
) -> anyhow::Result<(String, String, FeatureTable)> {
    let name = match dataset {
        Some(n) => n.to_string(),
        None => store
            .dataset_by_id(&m.run.run.dataset_id)?
            .map(|d| d.name)
            .with_context(|| "the model's dataset is no longer in the database: pass --dataset")?,
    };
    let (dataset_id, panel) = store.load_panel(&name)?;
    let (panel, extra) = panel.select(&m.run.run.tickers).map_err(|e| anyhow::anyhow!("dataset {name}: {e}"))?;
    if !extra.is_empty() {
        eprintln!(
            "note: ignoring {} ticker(s) of {name} that the model does not know: {}",
            extra.len(),
            extra.join(", ")
        );
    }
    let table = features::compute(&panel).for_model(m.scaler.mean.len());
    if table.dates.is_empty() {
        bail!(
            "the model's tickers ({}) share no date in dataset {name}: a backtest needs days on which each of them \
             has a price; use a dataset where they overlap",
            m.run.run.tickers.join(", ")
        );
    }
    if table.width() != m.scaler.mean.len() {
        bail!(
            "dataset {name} gives {} features per day ({}), the model was trained on {}: use data of the same kind (close-only or OHLCV)",
            table.width(),
            table.names.join(", "),
            m.scaler.mean.len()
        );
    }
    Ok((name, dataset_id, table))
}

/// Up-probabilities for the decisions at date indices `ends`, [days, tickers].
fn probabilities(m: &LoadedModel, table: &FeatureTable, ends: std::ops::Range<usize>) -> anyhow::Result<Vec<f64>> {
    let inputs = build_inputs(table, &m.scaler, ends, &m.config);
    let logits = m.net.predict(&inputs.x, inputs.n, 256)?;
    Ok(logits.into_iter().map(|l| 1.0 / (1.0 + (-(l as f64)).exp())).collect())
}

/// The first day the model has not seen: its holdout start, or the day after its last label.
fn first_unseen(m: &LoadedModel, table: &FeatureTable) -> Option<NaiveDate> {
    let r = &m.run.run;
    let last_seen = r.train_span.1.max(r.val_span.1);
    let after_labels = table.dates.iter().position(|d| *d > last_seen).map(|i| i + LABEL_HORIZON);
    let by_labels = after_labels.and_then(|i| table.dates.get(i).copied());
    match (r.holdout_start, by_labels) {
        (Some(h), Some(l)) => Some(h.max(l)),
        (h, l) => h.or(l),
    }
}

pub struct Outcome {
    pub backtest_id: String,
    pub dataset: String,
    pub moved_aside: Option<PathBuf>,
}

pub fn run(store: &Store, req: &Request) -> anyhow::Result<Outcome> {
    check_settings(req.threshold, req.commission_bps, req.slippage_bps, req.initial_cash)?;
    crate::files::check_writable(&req.out_dir)?;
    let chosen = choose_model(store, req.model_path.as_deref(), req.dataset.as_deref())?;
    eprintln!("model: {} ({})", chosen.why, chosen.model.checkpoint.path);
    let m = &chosen.model;
    let (dataset, dataset_id, table) = model_table(store, m, req.dataset.as_deref())?;
    let period = Period::choose(m, &table, req, &dataset)?;
    let probs = probabilities(m, &table, period.t0..period.t1)?;
    let targets: Vec<i8> = probs.iter().map(|&p| req.mode.position(p, req.threshold)).collect();
    let settings =
        Settings { commission_bps: req.commission_bps, slippage_bps: req.slippage_bps, initial_cash: req.initial_cash };
    let n = table.tickers.len();
    let (t0, t1) = (period.t0, period.t1);
    let market = Market {
        dates: &table.dates[t0..t1],
        tickers: n,
        close: &table.closes[t0 * n..t1 * n],
        open: table.opens.as_ref().map(|o| &o[t0 * n..t1 * n]),
    };
    let out = backtest::run(&market, &targets, &settings);

    let trades = trade_rows(&out, &table.tickers);
    let equity = equity_rows(&out, market.dates);
    let mut stat_rows = stat_rows(&out, &market, &table.tickers, req.initial_cash);
    let (hits, calls) = direction_hits(&probs, &market);
    // The repeat-today rule on the same days, tickers and costs: what the model must beat.
    let rule_probs: Vec<f64> = (t0..t1)
        .flat_map(|t| (0..n).map(move |k| (t, k)))
        .map(|(t, k)| f64::from(u8::from(table.closes[t * n + k] > table.closes[(t - 1) * n + k])))
        .collect();
    let rule_targets: Vec<i8> = rule_probs.iter().map(|&p| req.mode.position(p, req.threshold)).collect();
    let rule = backtest::run(&market, &rule_targets, &settings);
    let rule_trades: Vec<_> = rule.trades.iter().collect();
    let (rule_hits, _) = direction_hits(&rule_probs, &market);
    let trials = store.effective_trials_of_run(&m.run.run.run_id)?.unwrap_or(1.0);
    stat_rows.extend(validity_rows(&out.equity, trials, hits, calls));
    let mut rule_stats = stats::compute(market.dates, &rule.equity, &rule.benchmark, &rule_trades);
    rule_stats.push(("Direction Accuracy [%]", 100.0 * rule_hits as f64 / calls.max(1) as f64));
    stat_rows.extend(rule_stats.into_iter().enumerate().map(|(i, (name, v))| StatRow {
        scope: "portfolio".into(),
        strategy: "repeat_today".into(),
        position: i as i32,
        name: name.into(),
        value: v.is_finite().then_some(v),
    }));
    let backtest_id = crate::ids::new("backtest");
    let record = BacktestRecord {
        backtest_id: backtest_id.clone(),
        run_id: m.run.run.run_id.clone(),
        checkpoint_id: m.checkpoint.checkpoint_id.clone(),
        model_source: chosen.source,
        dataset_id,
        tickers: table.tickers.clone(),
        start_date: market.dates[0],
        end_date: *market.dates.last().unwrap(),
        first_unseen: period.unseen,
        in_sample: period.in_sample,
        mode: req.mode,
        threshold: req.threshold,
        fill: if market.open.is_some() { "next-open" } else { "close" }.into(),
        commission_bps: req.commission_bps,
        slippage_bps: req.slippage_bps,
        initial_cash: req.initial_cash,
        accuracy: (calls > 0).then(|| hits as f64 / calls as f64),
        n_predictions: calls as i64,
    };
    let moved_aside = super::set_aside(store, &req.out_dir)?;
    let _claim = crate::files::claim(&req.out_dir)?;
    store.record_backtest(&record, &trades, &equity, &stat_rows)?;
    super::export::backtest(store, &backtest_id, &req.out_dir)?;
    Ok(Outcome { backtest_id, dataset, moved_aside })
}

/// The up-probability above which a position is long.
fn check_threshold(threshold: f64) -> anyhow::Result<()> {
    if !(threshold > 0.0 && threshold < 1.0) {
        bail!("--threshold must be between 0 and 1, got {threshold}");
    }
    Ok(())
}

/// Refuses settings no backtest can run with.
fn check_settings(threshold: f64, commission_bps: f64, slippage_bps: f64, cash: f64) -> anyhow::Result<()> {
    check_threshold(threshold)?;
    for (flag, v) in [("--commission-bps", commission_bps), ("--slippage-bps", slippage_bps)] {
        if !(0.0..1000.0).contains(&v) {
            bail!("{flag} must be in [0, 1000) basis points, got {v}");
        }
    }
    if !(cash.is_finite() && cash > 0.0) {
        bail!("--cash must be a positive amount, got {cash}");
    }
    Ok(())
}

/// The simulated days: date indices `t0..t1` of the feature table, the first day the model has
/// not seen, and whether the period starts before it.
struct Period {
    t0: usize,
    t1: usize,
    unseen: Option<NaiveDate>,
    in_sample: bool,
}

impl Period {
    /// From `--start` (default: the first unseen day) to `--end` (default: the data's last day),
    /// refusing a start inside the training data unless `--include-training`.
    fn choose(m: &LoadedModel, table: &FeatureTable, req: &Request, dataset: &str) -> anyhow::Result<Period> {
        let unseen = first_unseen(m, table);
        let first_possible = WARMUP + m.config.seq_len - 1;
        let start = match (req.start, unseen) {
            (Some(s), Some(u)) if s < u && !req.include_training => bail!(
                "--start {s} overlaps the model's training data (it has seen the days before {u}): \
                 start on or after {u}, or pass --include-training to allow it (the results are marked in-sample)"
            ),
            (Some(s), _) => s,
            (None, Some(u)) => u,
            (None, None) => bail!(
                "the model {} was trained on every day of {dataset}: there is no day after its training data; \
                 use newer data (--dataset), or --include-training with --start",
                m.run.run.run_id
            ),
        };
        let t0 = table.dates.partition_point(|d| *d < start).max(first_possible);
        let t1 = match req.end {
            Some(e) => table.dates.partition_point(|d| *d <= e),
            None => table.dates.len(),
        };
        if t1 < t0 + 2 {
            bail!(
                "the backtest period of {dataset} from {start} has {} day(s) (at least 2 needed): the data ends on {}; \
                 use a dataset with later days, an earlier --start, or --include-training with --start",
                t1.saturating_sub(t0),
                table.dates[table.dates.len() - 1]
            );
        }
        let in_sample = unseen.is_none_or(|u| table.dates[t0] < u);
        Ok(Period { t0, t1, unseen, in_sample })
    }
}

fn trade_rows(out: &backtest::Outcome, tickers: &[String]) -> Vec<TradeRow> {
    out.trades
        .iter()
        .map(|t| TradeRow {
            ticker: tickers[t.ticker].clone(),
            side: if t.side > 0 { Side::Long } else { Side::Short },
            entry_date: t.entry_date,
            entry_price: t.entry_price,
            exit_date: t.exit_date,
            exit_price: t.exit_price,
            size: t.size,
            pnl: t.pnl,
            return_pct: t.return_pct,
            commission: t.commission,
            slippage: t.slippage,
        })
        .collect()
}

/// Each day's equity, buy and hold, drawdown from the peak and open positions.
fn equity_rows(out: &backtest::Outcome, dates: &[NaiveDate]) -> Vec<EquityRow> {
    let mut open_positions = vec![0i32; dates.len()];
    for t in &out.trades {
        // Held at the closes from the entry day to the day before the exit (the exit day's own
        // close too when the fill is at that close, as on the last day).
        let last = if t.exit_bar + 1 == dates.len() { t.exit_bar } else { t.exit_bar.saturating_sub(1) };
        for p in &mut open_positions[t.entry_bar..=last.max(t.entry_bar)] {
            *p += 1;
        }
    }
    let mut peak = f64::NEG_INFINITY;
    (0..dates.len())
        .map(|i| {
            peak = peak.max(out.equity[i]);
            EquityRow {
                date: dates[i],
                equity: out.equity[i],
                benchmark: out.benchmark[i],
                drawdown_pct: 100.0 * (out.equity[i] / peak - 1.0),
                positions: open_positions[i],
            }
        })
        .collect()
}

/// The statistics of the portfolio and of each ticker's sleeve, the model beside buy and hold.
fn stat_rows(out: &backtest::Outcome, market: &Market, tickers: &[String], cash: f64) -> Vec<StatRow> {
    let (dates, n) = (market.dates, market.tickers);
    let mut rows = Vec::new();
    let mut push = |scope: &str, strategy: &str, values: Vec<(&'static str, f64)>| {
        for (i, (name, v)) in values.into_iter().enumerate() {
            rows.push(StatRow {
                scope: scope.into(),
                strategy: strategy.into(),
                position: i as i32,
                name: name.into(),
                value: v.is_finite().then_some(v),
            });
        }
    };
    let all: Vec<_> = out.trades.iter().collect();
    let holds = buy_and_hold_trades(dates, market.close, n, cash);
    push("portfolio", "model", stats::compute(dates, &out.equity, &out.benchmark, &all));
    push(
        "portfolio",
        "buy_and_hold",
        stats::compute(dates, &out.benchmark, &out.benchmark, &holds.iter().collect::<Vec<_>>()),
    );
    let mut by_ticker = vec![Vec::new(); n];
    for t in &out.trades {
        by_ticker[t.ticker].push(t);
    }
    for (k, mine) in by_ticker.iter().enumerate() {
        let eq: Vec<f64> = (0..dates.len()).map(|t| out.sleeve_equity[t * n + k]).collect();
        let bh: Vec<f64> = (0..dates.len()).map(|t| out.sleeve_benchmark[t * n + k]).collect();
        push(&tickers[k], "model", stats::compute(dates, &eq, &bh, mine));
        push(&tickers[k], "buy_and_hold", stats::compute(dates, &bh, &bh, &[&holds[k]]));
    }
    rows
}

/// The model's direction accuracy, and the probabilistic and deflated Sharpe ratio of its daily
/// returns (DSR deflated for the `trials` independent configurations its selection was chosen
/// among; 1 when the model has no recorded selection, where DSR equals PSR), after the model's
/// other portfolio statistics.
fn validity_rows(equity: &[f64], trials: f64, hits: usize, calls: usize) -> Vec<StatRow> {
    let returns: Vec<f64> = equity.windows(2).map(|w| w[1] / w[0] - 1.0).collect();
    let test = crate::validity::sharpe_test(&returns, trials, None);
    let base = 1000;
    [
        ("Direction Accuracy [%]", 100.0 * hits as f64 / calls.max(1) as f64),
        ("Probabilistic Sharpe Ratio", test.psr),
        ("Deflated Sharpe Ratio", test.dsr),
        ("Trials Deflated For", trials),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (name, v))| StatRow {
        scope: "portfolio".into(),
        strategy: "model".into(),
        position: base + i as i32,
        name: name.into(),
        value: v.is_finite().then_some(v),
    })
    .collect()
}

/// How often the model called the next close's direction: (hits, calls) over the days whose next
/// close is simulated.
fn direction_hits(probs: &[f64], market: &Market) -> (usize, usize) {
    let (n, close) = (market.tickers, market.close);
    let mut hits = 0usize;
    let mut calls = 0usize;
    for t in 0..market.dates.len() - 1 {
        for k in 0..n {
            let up = close[(t + 1) * n + k] > close[t * n + k];
            hits += usize::from((probs[t * n + k] > 0.5) == up);
            calls += 1;
        }
    }
    (hits, calls)
}

/// Buy and hold of each ticker's sleeve from the first close to the last, without costs.
fn buy_and_hold_trades(dates: &[NaiveDate], close: &[f64], n: usize, cash: f64) -> Vec<backtest::Trade> {
    let last = dates.len() - 1;
    (0..n)
        .map(|k| {
            let (a, b) = (close[k], close[last * n + k]);
            let size = cash / n as f64 / a;
            backtest::Trade {
                ticker: k,
                side: 1,
                entry_bar: 0,
                exit_bar: last,
                entry_date: dates[0],
                exit_date: dates[last],
                entry_price: a,
                exit_price: b,
                size,
                pnl: size * (b - a),
                return_pct: b / a - 1.0,
                commission: 0.0,
                slippage: 0.0,
            }
        })
        .collect()
}

/// The latest signal per ticker: the model's decision at the last close of the dataset.
pub fn signals(
    store: &Store,
    model_path: Option<&std::path::Path>,
    dataset: Option<&str>,
    mode: Mode,
    threshold: f64,
) -> anyhow::Result<(String, Vec<SignalRow>)> {
    check_threshold(threshold)?;
    let chosen = choose_model(store, model_path, dataset)?;
    eprintln!("model: {} ({})", chosen.why, chosen.model.checkpoint.path);
    let m = &chosen.model;
    let (_, dataset_id, table) = model_table(store, m, dataset)?;
    let t = table.dates.len() - 1;
    if t + 1 < WARMUP + m.config.seq_len {
        bail!("the data has {} days; the model needs {} before a decision", t + 1, WARMUP + m.config.seq_len);
    }
    let probs = probabilities(m, &table, t..t + 1)?;
    let rows: Vec<SignalRow> = table
        .tickers
        .iter()
        .zip(&probs)
        .map(|(ticker, &p)| SignalRow {
            date: table.dates[t],
            ticker: ticker.clone(),
            probability: p,
            position: mode.position(p, threshold) as i32,
        })
        .collect();
    store.record_signals(
        &m.run.run.run_id,
        &m.checkpoint.checkpoint_id,
        &dataset_id,
        mode.as_str(),
        threshold,
        &rows,
    )?;
    Ok((chosen.why, rows))
}
