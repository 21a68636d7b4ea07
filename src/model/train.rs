//! Training: samples from the feature table, AdamW, early stopping on validation loss.
//!
//! Every random draw (initial weights, shuffles, dropout masks) comes from generators seeded by
//! the run seed, so the same seed gives the same weights and metrics on CPU.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::{bail, Context};
use candle_core::Tensor;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::adamw::AdamW;
use super::config::{Layout, ModelConfig};
use super::net::{accuracy, bce_mean, bce_with_logits, Net};
use crate::features::{FeatureTable, Scaler};

/// Windows and labels, flattened: x is [n, seq_len, inputs], y is [n, outputs].
#[derive(Debug, Clone)]
pub struct Samples {
    pub x: Vec<f32>,
    pub y: Vec<f32>,
    pub n: usize,
    pub seq_len: usize,
    pub inputs: usize,
    pub outputs: usize,
}

/// Builds the samples ending at each date index in `ends` (each >= WARMUP + seq_len - 1, and
/// < dates - 1 so it has a label), scaled with `scaler`, in `cfg`'s layout and window.
pub fn build_samples(
    table: &FeatureTable,
    scaler: &Scaler,
    ends: std::ops::Range<usize>,
    cfg: &ModelConfig,
) -> Samples {
    windows(table, scaler, ends, cfg, true)
}

/// The model inputs ending at each date index in `ends`, without labels (`y` is empty): what a
/// backtest or a signal feeds the model, up to the last date.
pub fn build_inputs(table: &FeatureTable, scaler: &Scaler, ends: std::ops::Range<usize>, cfg: &ModelConfig) -> Samples {
    windows(table, scaler, ends, cfg, false)
}

/// Windows of `seq_len` scaled rows ending at each date of `ends`. Joint: one sample per date,
/// [seq_len, tickers x features] in, every ticker's label out. Pooled: one sample per (date,
/// ticker), date-major, [seq_len, ticker's features ++ cross-sectional mean of the features] in,
/// its label out; so the pooled model's logits line up with the joint one's [dates, tickers].
fn windows(
    table: &FeatureTable,
    scaler: &Scaler,
    ends: std::ops::Range<usize>,
    cfg: &ModelConfig,
    labels: bool,
) -> Samples {
    let seq_len = cfg.seq_len;
    let w = table.width();
    let tickers = table.tickers.len();
    let first_row = ends.start + 1 - seq_len;
    let mut scaled = Vec::with_capacity((ends.end - first_row) * w);
    for t in first_row..ends.end {
        scaler.apply(table.row(t), &mut scaled);
    }
    let dates = ends.len();
    match cfg.layout {
        Layout::Joint => {
            let mut x = Vec::with_capacity(dates * seq_len * w);
            let mut y = Vec::with_capacity(if labels { dates * tickers } else { 0 });
            for t in ends {
                let lo = (t + 1 - seq_len - first_row) * w;
                x.extend_from_slice(&scaled[lo..lo + seq_len * w]);
                if labels {
                    y.extend(table.labels(t));
                }
            }
            Samples { x, y, n: dates, seq_len, inputs: w, outputs: tickers }
        }
        Layout::Pooled => {
            let f = table.names.len();
            // The market's row per date: the mean over tickers of each scaled feature.
            let market: Vec<f32> = scaled
                .chunks_exact(w)
                .flat_map(|row| (0..f).map(move |j| (0..tickers).map(|k| row[k * f + j]).sum::<f32>() / tickers as f32))
                .collect();
            let inputs = 2 * f;
            let mut x = Vec::with_capacity(dates * tickers * seq_len * inputs);
            let mut y = Vec::with_capacity(if labels { dates * tickers } else { 0 });
            for t in ends {
                let first = t + 1 - seq_len - first_row;
                for k in 0..tickers {
                    for r in first..first + seq_len {
                        x.extend_from_slice(&scaled[r * w + k * f..][..f]);
                        x.extend_from_slice(&market[r * f..][..f]);
                    }
                }
                if labels {
                    y.extend(table.labels(t));
                }
            }
            Samples { x, y, n: dates * tickers, seq_len, inputs, outputs: 1 }
        }
    }
}

impl Samples {
    /// Appends the samples of `other` (same shapes).
    pub fn append(&mut self, other: Samples) {
        assert_eq!((self.seq_len, self.inputs, self.outputs), (other.seq_len, other.inputs, other.outputs));
        self.x.extend(other.x);
        self.y.extend(other.y);
        self.n += other.n;
    }
}

#[derive(Debug, Clone)]
pub struct TrainSettings {
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub patience: usize,
    pub seed: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EpochMetrics {
    /// 1-based.
    pub epoch: usize,
    pub train_loss: f64,
    pub val_loss: f64,
    pub val_accuracy: f64,
    pub seconds: f64,
}

pub struct TrainOutcome {
    /// Weights with the lowest validation loss, and the epoch they come from.
    pub best: HashMap<String, Tensor>,
    pub best_epoch: usize,
    /// The best weights' logits on the validation samples (for the per-date outcomes).
    pub best_val_logits: Vec<f32>,
    /// Weights after the last epoch run.
    pub last: HashMap<String, Tensor>,
    pub epochs_run: usize,
}

/// One pass over `samples` in the order `order`, one AdamW step per batch; returns the mean
/// training loss. Batches are gathered inside the loop, as PyTorch's `X[idx]` is.
pub fn run_epoch(
    net: &Net,
    opt: &mut AdamW,
    samples: &Samples,
    order: &[usize],
    batch_size: usize,
    dropout_rng: &mut ChaCha8Rng,
) -> anyhow::Result<f64> {
    let device = net.device().clone();
    let per_x = samples.seq_len * samples.inputs;
    let mut xb = Vec::with_capacity(batch_size * per_x);
    let mut yb = Vec::with_capacity(batch_size * samples.outputs);
    let mut loss_sum = 0.0;
    for batch in order.chunks(batch_size) {
        crate::interrupt::check()?;
        xb.clear();
        yb.clear();
        for &i in batch {
            xb.extend_from_slice(&samples.x[i * per_x..(i + 1) * per_x]);
            yb.extend_from_slice(&samples.y[i * samples.outputs..(i + 1) * samples.outputs]);
        }
        let b = batch.len();
        let x = Tensor::from_slice(&xb, (b, samples.seq_len, samples.inputs), &device)?;
        let y = Tensor::from_slice(&yb, (b, samples.outputs), &device)?;
        let logits = net.forward(&x, Some(dropout_rng))?;
        let loss = bce_with_logits(&logits, &y)?;
        let value = loss.to_scalar::<f32>()? as f64;
        if !value.is_finite() {
            bail!("training diverged: the loss is {value}");
        }
        opt.backward_step(&loss)?;
        loss_sum += value * b as f64;
    }
    Ok(loss_sum / order.len().max(1) as f64)
}

/// AdamW over the parameters of `net` (PyTorch's defaults, see `adamw`).
pub fn adamw(net: &Net, learning_rate: f64, weight_decay: f64) -> anyhow::Result<AdamW> {
    Ok(AdamW::new(net.vars(), learning_rate, weight_decay)?)
}

/// Epochs without a better validation loss after which the learning rate halves (PyTorch's
/// `ReduceLROnPlateau` with factor 0.5): a third of the early-stopping patience, at least 2, so a
/// run tries a smaller step before it stops.
fn plateau_epochs(patience: usize) -> usize {
    (patience / 3).max(2)
}

/// Trains `net` on `train`, early-stopping on `val`; calls `on_epoch` after each epoch (to record
/// it) and stops with an error if it fails or the loss stops being finite. The learning rate
/// halves on a plateau of the validation loss; at the end `net` holds the best epoch's weights.
pub fn train(
    net: &Net,
    train: &Samples,
    val: &Samples,
    s: &TrainSettings,
    mut on_epoch: impl FnMut(&EpochMetrics) -> anyhow::Result<()>,
) -> anyhow::Result<TrainOutcome> {
    if train.n == 0 || val.n == 0 {
        bail!("no training or validation samples ({} and {})", train.n, val.n);
    }
    let mut opt = adamw(net, s.learning_rate, s.weight_decay)?;
    let mut shuffle_rng = ChaCha8Rng::seed_from_u64(s.seed ^ 0x5348_5546_464c_4531);
    let mut dropout_rng = ChaCha8Rng::seed_from_u64(s.seed ^ 0x4452_4f50_4f55_5431);
    let mut order: Vec<usize> = (0..train.n).collect();
    let mut best = (f64::INFINITY, 0usize, net.snapshot()?);
    let mut since_best = 0;
    let mut since_lowered = 0;
    let mut best_val_logits = Vec::new();
    let mut epochs_run = 0;
    for epoch in 1..=s.epochs {
        let started = Instant::now();
        order.shuffle(&mut shuffle_rng);
        let train_loss = run_epoch(net, &mut opt, train, &order, s.batch_size, &mut dropout_rng)
            .with_context(|| format!("epoch {epoch}"))?;
        let logits = net.predict(&val.x, val.n, 256).context("validating")?;
        let val_loss = bce_mean(&logits, &val.y);
        if !val_loss.is_finite() {
            bail!("training diverged: the validation loss is {val_loss} at epoch {epoch}");
        }
        let metrics = EpochMetrics {
            epoch,
            train_loss,
            val_loss,
            val_accuracy: accuracy(&logits, &val.y),
            seconds: started.elapsed().as_secs_f64(),
        };
        crate::costs::add(crate::costs::Cost::Training, started.elapsed());
        on_epoch(&metrics)?;
        crate::interrupt::wait_while_paused()?;
        epochs_run = epoch;
        if val_loss < best.0 {
            best = (val_loss, epoch, net.snapshot()?);
            best_val_logits = logits;
            since_best = 0;
            since_lowered = 0;
        } else {
            since_best += 1;
            since_lowered += 1;
            if since_best >= s.patience {
                break;
            }
            if since_lowered >= plateau_epochs(s.patience) {
                opt.set_learning_rate(opt.learning_rate() * 0.5);
                since_lowered = 0;
            }
        }
    }
    let last = net.snapshot()?;
    net.restore(&best.2)?;
    Ok(TrainOutcome { best: best.2, best_epoch: best.1, best_val_logits, last, epochs_run })
}
