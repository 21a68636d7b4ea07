//! The networks: `mlp`, `lstm` and `gru`, on candle, with PyTorch's shapes and gate orders.
//!
//! Weights are created from our own seeded generator (candle cannot seed its CPU generator), with
//! PyTorch's default initialisation, and named as PyTorch names them, so a checkpoint is a plain
//! safetensors file that a reader of either can map. Dropout masks also come from our generator.
//!
//! Recurrent layers on CPU are one fused op each (`fused_rnn`: the input projections of a whole
//! sequence as one matrix product, one recurrent product and one gate pass per step, backward
//! written by hand); the step-by-step candle version stays as the reference and for other devices.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Result, Tensor, Var};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use rayon::prelude::*;

use super::fused_rnn::{self, Cell};
use super::kernels::{batch_parts, borrow, Mat};
use super::linear::Dense;
use super::ModelType;

/// The shape of a network: what it reads, what it outputs and its size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetShape {
    pub model_type: ModelType,
    pub seq_len: usize,
    /// Features per time step (tickers x features per ticker).
    pub inputs: usize,
    /// One logit per ticker.
    pub outputs: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub dropout: f64,
}

/// What one matrix product of a batch costs beyond its multiply-adds (the call, packing, the
/// elementwise pass that follows it, the optimiser's share), in multiply-adds: fitted to the
/// measured epochs of 12 of the default space's models on one thread, which `window_cost` then
/// puts within 2.7x of their times over a range of 500x (docs/benchmarks.md, "Cost-aware GP").
const PRODUCT_OVERHEAD: f64 = 5e5;

impl NetShape {
    /// What training on one window costs, in multiply-adds: those of its forward pass (the
    /// backward pass is about twice as dear for every model), plus its share of the fixed cost of
    /// each matrix product its batch of `batch` windows runs (an RNN runs one per layer and step).
    pub fn window_cost(&self, batch: usize) -> f64 {
        let [i, h, s, o, l] =
            [self.inputs, self.hidden_size, self.seq_len, self.outputs, self.num_layers].map(|v| v as f64);
        let (macs, products) = match self.model_type {
            ModelType::Linear | ModelType::Mlp if self.num_layers == 0 => (s * i * o, 1.0),
            ModelType::Linear | ModelType::Mlp => (s * i * h + (l - 1.0) * h * h + h * o, l + 1.0),
            ModelType::Lstm | ModelType::Gru => {
                let gates = if self.model_type == ModelType::Lstm { 4.0 } else { 3.0 };
                (gates * h * s * ((i + h) + (l - 1.0) * 2.0 * h) + h * o, l * (1.0 + s) + 1.0)
            }
        };
        macs + PRODUCT_OVERHEAD * products / batch.max(1) as f64
    }
}

pub struct Net {
    pub shape: NetShape,
    /// Parameters in creation order, with their PyTorch-style names.
    params: Vec<(String, Var)>,
    device: Device,
    /// Recurrent layers as one fused op each (CPU), or step by step in candle ops.
    fused: bool,
}

fn uniform(rng: &mut ChaCha8Rng, shape: &[usize], bound: f64, device: &Device) -> Result<Var> {
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|_| rng.gen_range(-bound..bound) as f32).collect();
    Var::from_tensor(&Tensor::from_vec(values, shape, device)?)
}

impl Net {
    pub fn new(shape: NetShape, rng: &mut ChaCha8Rng, device: &Device) -> Result<Self> {
        let mut params = Vec::new();
        let h = shape.hidden_size;
        // PyTorch's Linear initialisation: U(+-1/sqrt(fan_in)) for weight and bias.
        let linear = |params: &mut Vec<(String, Var)>,
                      rng: &mut ChaCha8Rng,
                      name: &str,
                      fan_in: usize,
                      out: usize|
         -> Result<()> {
            let bound = 1.0 / (fan_in as f64).sqrt();
            params.push((format!("{name}.weight"), uniform(rng, &[out, fan_in], bound, device)?));
            params.push((format!("{name}.bias"), uniform(rng, &[out], bound, device)?));
            Ok(())
        };
        match shape.model_type {
            ModelType::Linear | ModelType::Mlp => {
                let mut fan_in = shape.seq_len * shape.inputs;
                for l in 0..shape.num_layers {
                    linear(&mut params, rng, &format!("layers.{l}"), fan_in, h)?;
                    fan_in = h;
                }
                linear(&mut params, rng, "head", fan_in, shape.outputs)?;
            }
            ModelType::Lstm | ModelType::Gru => {
                let gates = if shape.model_type == ModelType::Lstm { 4 } else { 3 };
                let bound = 1.0 / (h as f64).sqrt();
                for l in 0..shape.num_layers {
                    let fan_in = if l == 0 { shape.inputs } else { h };
                    params.push((format!("rnn.weight_ih_l{l}"), uniform(rng, &[gates * h, fan_in], bound, device)?));
                    params.push((format!("rnn.weight_hh_l{l}"), uniform(rng, &[gates * h, h], bound, device)?));
                    params.push((format!("rnn.bias_ih_l{l}"), uniform(rng, &[gates * h], bound, device)?));
                    params.push((format!("rnn.bias_hh_l{l}"), uniform(rng, &[gates * h], bound, device)?));
                }
                linear(&mut params, rng, "head", h, shape.outputs)?;
            }
        }
        Ok(Self { shape, params, device: device.clone(), fused: device.is_cpu() })
    }

    /// Runs in candle's own ops instead of the fused ones (the reference the fused ops are
    /// tested against): recurrent layers step by step, the MLP's ReLU and dropout apart.
    #[cfg(test)]
    pub(crate) fn unfused(mut self) -> Self {
        self.fused = false;
        self
    }

    pub fn vars(&self) -> Vec<Var> {
        self.params.iter().map(|(_, v)| v.clone()).collect()
    }

    fn p(&self, name: &str) -> &Tensor {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_tensor()).expect("parameter exists")
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// x: [B, seq_len, inputs] -> logits [B, outputs]. `dropout` is Some(rng) in training.
    /// Recurrent layers run as one fused op each on CPU (`fused_rnn`), step by step elsewhere.
    pub fn forward(&self, x: &Tensor, mut dropout: Option<&mut ChaCha8Rng>) -> Result<Tensor> {
        let s = self.shape;
        let mut mask = |n: usize| match dropout.as_deref_mut() {
            Some(rng) if s.dropout > 0.0 => Some(dropout_mask(n, s.dropout, rng)),
            _ => None,
        };
        let dropout_layer = |t: Tensor, mask: Option<Vec<f32>>| match mask {
            Some(mask) => &t * &Tensor::from_vec(mask, t.dims(), t.device())?,
            None => Ok(t),
        };
        let hidden = match s.model_type {
            ModelType::Linear | ModelType::Mlp => {
                let mut h = x.flatten_from(1)?;
                for l in 0..s.num_layers {
                    let (w, b) = (self.p(&format!("layers.{l}.weight")), self.p(&format!("layers.{l}.bias")));
                    let mask = mask(h.dim(0)? * w.dim(0)?);
                    h = if self.fused {
                        super::linear::linear_relu(&h, w, b, mask)?
                    } else {
                        dropout_layer(linear(&h, w, b)?.relu()?, mask)?
                    };
                }
                h
            }
            ModelType::Lstm | ModelType::Gru => {
                // Time-major input: [T, B, I].
                let mut seq = x.transpose(0, 1)?.contiguous()?;
                let mut last = None;
                for l in 0..s.num_layers {
                    let keep_seq = l + 1 < s.num_layers;
                    let (out, h) = if self.fused {
                        self.fused_layer(l, &seq, keep_seq)?
                    } else {
                        self.rnn_layer(l, &seq, keep_seq)?
                    };
                    last = Some(h);
                    if let Some(out) = out {
                        let mask = mask(out.elem_count());
                        seq = dropout_layer(out, mask)?;
                    }
                }
                let last = last.unwrap();
                let mask = mask(last.elem_count());
                dropout_layer(last, mask)?
            }
        };
        linear(&hidden, self.p("head.weight"), self.p("head.bias"))
    }

    /// One recurrent layer as one fused op (see `rnn_layer` for what it returns).
    fn fused_layer(&self, l: usize, seq: &Tensor, keep_seq: bool) -> Result<(Option<Tensor>, Tensor)> {
        let cell = if self.shape.model_type == ModelType::Lstm { Cell::Lstm } else { Cell::Gru };
        let p = |name: &str| self.p(&format!("rnn.{name}_l{l}"));
        let out = fused_rnn::layer(cell, seq, (p("weight_ih"), p("weight_hh")), (p("bias_ih"), p("bias_hh")))?;
        let last = out.get(out.dim(0)? - 1)?;
        Ok((keep_seq.then_some(out), last))
    }

    /// One recurrent layer over time-major `seq` [T, B, I], step by step in candle ops (the
    /// reference the fused op is tested against, and the path on other devices); returns the
    /// output sequence (when asked) and the last hidden state [B, H].
    fn rnn_layer(&self, l: usize, seq: &Tensor, keep_seq: bool) -> Result<(Option<Tensor>, Tensor)> {
        let (t_len, b, i) = seq.dims3()?;
        let h_size = self.shape.hidden_size;
        let w_ih = self.p(&format!("rnn.weight_ih_l{l}"));
        let w_hh_t = self.p(&format!("rnn.weight_hh_l{l}")).t()?;
        let b_ih = self.p(&format!("rnn.bias_ih_l{l}"));
        let b_hh = self.p(&format!("rnn.bias_hh_l{l}"));
        let gates = w_ih.dim(0)?;
        // All input projections at once: [T*B, I] x [I, G*H] -> [T, B, G*H].
        let xp = seq.reshape((t_len * b, i))?.matmul(&w_ih.t()?)?.broadcast_add(b_ih)?.reshape((t_len, b, gates))?;
        let mut h = Tensor::zeros((b, h_size), DType::F32, &self.device)?;
        let mut c = h.clone();
        let mut outs = Vec::with_capacity(if keep_seq { t_len } else { 0 });
        for t in 0..t_len {
            let x_t = xp.get(t)?;
            let hp = h.matmul(&w_hh_t)?.broadcast_add(b_hh)?;
            match self.shape.model_type {
                ModelType::Lstm => {
                    let g = (x_t + hp)?;
                    let i_g = candle_nn::ops::sigmoid(&g.narrow(1, 0, h_size)?)?;
                    let f_g = candle_nn::ops::sigmoid(&g.narrow(1, h_size, h_size)?)?;
                    let g_g = g.narrow(1, 2 * h_size, h_size)?.tanh()?;
                    let o_g = candle_nn::ops::sigmoid(&g.narrow(1, 3 * h_size, h_size)?)?;
                    c = ((f_g * &c)? + (i_g * g_g)?)?;
                    h = (o_g * c.tanh()?)?;
                }
                _ => {
                    let rz = candle_nn::ops::sigmoid(&(x_t.narrow(1, 0, 2 * h_size)? + hp.narrow(1, 0, 2 * h_size)?)?)?;
                    let r = rz.narrow(1, 0, h_size)?;
                    let z = rz.narrow(1, h_size, h_size)?;
                    let n = (x_t.narrow(1, 2 * h_size, h_size)? + (r * hp.narrow(1, 2 * h_size, h_size)?)?)?.tanh()?;
                    // h' = (1 - z) * n + z * h = n + z * (h - n)
                    h = (&n + (z * (&h - &n)?)?)?;
                }
            }
            if keep_seq {
                outs.push(h.clone());
            }
        }
        let out = if keep_seq { Some(Tensor::stack(&outs, 0)?) } else { None };
        Ok((out, h))
    }

    /// Logits for many samples, in batches of `batch`, without gradients. On CPU each batch's
    /// rows are split across the rayon threads, each running the whole network on its rows over
    /// the weights in place, with the same forward code the training ops run.
    pub fn predict(&self, x: &[f32], n: usize, batch: usize) -> Result<Vec<f32>> {
        if !self.fused {
            return self.predict_ops(x, n, batch);
        }
        let s = self.shape;
        let per = s.seq_len * s.inputs;
        let guards: Vec<_> = self.params.iter().map(|(_, v)| borrow(v.as_tensor(), "a weight")).collect();
        let data = guards.iter().map(|g| g.slice::<f32>()).collect::<Result<Vec<_>>>()?;
        let w = |name: &str| data[self.params.iter().position(|(n, _)| n == name).expect("parameter exists")];
        let cell = if s.model_type == ModelType::Lstm { Cell::Lstm } else { Cell::Gru };
        // Every weight packed once for the whole pass, shared by the threads.
        let recurrent: Vec<fused_rnn::Weights<f32>> = match s.model_type {
            ModelType::Linear | ModelType::Mlp => Vec::new(),
            ModelType::Lstm | ModelType::Gru => (0..s.num_layers)
                .map(|l| {
                    let p = |name: &str| w(&format!("rnn.{name}_l{l}"));
                    let (g, h) = (cell.gates() * s.hidden_size, s.hidden_size);
                    let width = if l == 0 { s.inputs } else { h };
                    let weights = (Mat::rows(p("weight_ih"), g, width, width), Mat::rows(p("weight_hh"), g, h, h));
                    fused_rnn::Weights::new(cell, weights, (p("bias_ih"), p("bias_hh")))
                })
                .collect(),
        };
        let hidden: Vec<Dense> = match s.model_type {
            ModelType::Linear | ModelType::Mlp => (0..s.num_layers)
                .map(|l| Dense::new(w(&format!("layers.{l}.weight")), w(&format!("layers.{l}.bias"))))
                .collect(),
            ModelType::Lstm | ModelType::Gru => Vec::new(),
        };
        let head = Dense::new(w("head.weight"), w("head.bias"));
        // One part's logits: [rows, outputs] from [rows, seq_len, inputs].
        let run = |x: &[f32], rows: usize| -> Vec<f32> {
            let last = match s.model_type {
                ModelType::Linear | ModelType::Mlp => match hidden.split_first() {
                    Some((first, rest)) => {
                        let h = first.infer(x, rows, true);
                        rest.iter().fold(h, |h, layer| layer.infer(&h, rows, true))
                    }
                    None => x.to_vec(),
                },
                ModelType::Lstm | ModelType::Gru => {
                    // Time-major: [T, rows, inputs].
                    let mut seq = Vec::with_capacity(x.len());
                    for t in 0..s.seq_len {
                        for r in 0..rows {
                            seq.extend_from_slice(&x[(r * s.seq_len + t) * s.inputs..][..s.inputs]);
                        }
                    }
                    let mut width = s.inputs;
                    for layer in &recurrent {
                        seq = fused_rnn::infer(cell, (s.seq_len, rows, width, s.hidden_size), &seq, layer);
                        width = s.hidden_size;
                    }
                    seq.split_off((s.seq_len - 1) * rows * width)
                }
            };
            head.infer(&last, rows, false)
        };
        // Each thread takes a contiguous share of the samples and runs it in pieces of its share of
        // a batch: one hand-off per call instead of one per batch, each of which waited for the
        // other thread to wake. Rows do not mix, so the numbers are those of one thread.
        let parts = batch_parts(n);
        let piece = batch.max(1).div_ceil(parts.len());
        let run_part = |part: &std::ops::Range<usize>| -> Vec<f32> {
            let mut out = Vec::with_capacity(part.len() * s.outputs);
            for start in part.clone().step_by(piece) {
                let end = (start + piece).min(part.end);
                out.extend(run(&x[start * per..end * per], end - start));
            }
            out
        };
        Ok(match parts.as_slice() {
            [part] => run_part(part),
            _ => parts.par_iter().map(run_part).collect::<Vec<_>>().concat(),
        })
    }

    /// `predict` through candle's ops (other devices, and the unfused reference).
    fn predict_ops(&self, x: &[f32], n: usize, batch: usize) -> Result<Vec<f32>> {
        let s = self.shape;
        let per = s.seq_len * s.inputs;
        let mut out = Vec::with_capacity(n * s.outputs);
        for start in (0..n).step_by(batch.max(1)) {
            let end = (start + batch).min(n);
            let xb = Tensor::from_slice(&x[start * per..end * per], (end - start, s.seq_len, s.inputs), &self.device)?;
            let logits = self.forward(&xb, None)?.detach();
            out.extend(logits.flatten_all()?.to_vec1::<f32>()?);
        }
        Ok(out)
    }

    /// The current weights by name (copies, so later training steps do not change them).
    pub fn snapshot(&self) -> Result<HashMap<String, Tensor>> {
        self.params.iter().map(|(n, v)| Ok((n.clone(), v.as_tensor().copy()?))).collect()
    }

    pub fn restore(&self, weights: &HashMap<String, Tensor>) -> Result<()> {
        for (name, var) in &self.params {
            let w = weights
                .get(name)
                .ok_or_else(|| candle_core::Error::Msg(format!("the checkpoint has no parameter {name}")))?;
            if w.dims() != var.dims() {
                return Err(candle_core::Error::Msg(format!(
                    "parameter {name} has shape {:?} in the checkpoint, {:?} in the model",
                    w.dims(),
                    var.dims()
                )));
            }
            var.set(&w.to_device(&self.device)?)?;
        }
        Ok(())
    }

    pub fn save(weights: &HashMap<String, Tensor>, path: &Path) -> Result<()> {
        candle_core::safetensors::save(weights, path)
    }

    pub fn n_params(&self) -> usize {
        self.params.iter().map(|(_, v)| v.elem_count()).sum()
    }
}

/// `x W^T + b`: one op on CPU (no input gradient for data), candle's matmul elsewhere.
fn linear(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() {
        super::linear::linear(x, w, b)
    } else {
        x.matmul(&w.t()?)?.broadcast_add(b)
    }
}

/// Inverted dropout's mask from our generator: `n` values: 0 with probability `p`, else 1/(1-p).
fn dropout_mask(n: usize, p: f64, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let keep = (1.0 / (1.0 - p)) as f32;
    (0..n).map(|_| if rng.gen::<f64>() < p { 0.0 } else { keep }).collect()
}

/// Mean binary cross-entropy on logits: max(z,0) - z*y + log(1 + exp(-|z|)).
pub fn bce_with_logits(z: &Tensor, y: &Tensor) -> Result<Tensor> {
    let loss = ((z.relu()? - (z * y)?)? + z.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?)?;
    loss.mean_all()
}

/// Share of (sample, ticker) cells whose sign of logit matches the label.
pub fn accuracy(logits: &[f32], labels: &[f32]) -> f64 {
    let hits = logits.iter().zip(labels).filter(|(z, y)| (**z > 0.0) == (**y > 0.5)).count();
    hits as f64 / labels.len().max(1) as f64
}

/// Mean BCE of logits against labels, in plain Rust (evaluation needs no graph).
pub fn bce_mean(logits: &[f32], labels: &[f32]) -> f64 {
    let sum: f64 = logits
        .iter()
        .zip(labels)
        .map(|(&z, &y)| {
            let (z, y) = (z as f64, y as f64);
            z.max(0.0) - z * y + (-z.abs()).exp().ln_1p()
        })
        .sum();
    sum / labels.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use candle_core::Device;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::{Net, NetShape};
    use crate::model::ModelType;

    /// A window's cost grows with every size of the model and falls with the batch, and ranks
    /// the default space's models as their training measures (docs/benchmarks.md, "Cost-aware
    /// GP"): a linear model, an MLP, a small LSTM, a 3-layer LSTM.
    #[test]
    fn a_window_costs_more_in_a_bigger_model_and_less_in_a_bigger_batch() {
        let shape = |model_type, hidden_size, num_layers, seq_len| NetShape {
            model_type,
            seq_len,
            inputs: 10,
            outputs: 1,
            hidden_size,
            num_layers,
            dropout: 0.0,
        };
        let cost = |s: NetShape| s.window_cost(64);
        for m in [ModelType::Mlp, ModelType::Lstm, ModelType::Gru] {
            let base = shape(m, 32, 2, 10);
            assert!(cost(shape(m, 64, 2, 10)) > cost(base));
            assert!(cost(shape(m, 32, 3, 10)) > cost(base));
            assert!(cost(shape(m, 32, 2, 20)) > cost(base));
            assert!(base.window_cost(32) > base.window_cost(128));
        }
        assert!(cost(shape(ModelType::Lstm, 32, 2, 10)) > cost(shape(ModelType::Gru, 32, 2, 10)));
        let ranked = [
            shape(ModelType::Mlp, 16, 0, 5),
            shape(ModelType::Mlp, 64, 2, 10),
            shape(ModelType::Lstm, 16, 1, 10),
            shape(ModelType::Lstm, 112, 3, 10),
        ];
        assert!(ranked.windows(2).all(|p| cost(p[0]) < cost(p[1])));
    }

    /// Inference over the weights in place, its batches split across 1 and 2 threads, gives
    /// the logits of candle's own ops (the step-by-step reference), for every model type.
    #[test]
    fn predict_in_place_matches_candle_ops_on_one_and_two_threads() {
        let (n, t, i, o) = (70, 7, 5, 3);
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let x: Vec<f32> = (0..n * t * i).map(|_| rng.gen_range(-2.0..2.0)).collect();
        for model_type in [ModelType::Mlp, ModelType::Lstm, ModelType::Gru] {
            // An MLP may have no hidden layer (the head alone).
            let layers: &[usize] = if model_type == ModelType::Mlp { &[0, 1, 2] } else { &[1, 2] };
            for &layers in layers {
                let shape = NetShape {
                    model_type,
                    seq_len: t,
                    inputs: i,
                    outputs: o,
                    hidden_size: 9,
                    num_layers: layers,
                    dropout: 0.2,
                };
                let new = || Net::new(shape, &mut ChaCha8Rng::seed_from_u64(3), &Device::Cpu).unwrap();
                let reference = new().unfused().predict(&x, n, 32).unwrap();
                let net = new();
                let mut one_thread = Vec::new();
                for threads in [1, 2] {
                    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                    let ours = pool.install(|| net.predict(&x, n, 32).unwrap());
                    assert_eq!(ours.len(), reference.len());
                    // Rows never mix: with the packed AVX-512 kernel two threads give one thread's
                    // numbers exactly. The `gemm` fallback (HPTUNE_CPU=avx2 or baseline, or a CPU
                    // without AVX-512) blocks a product by its shape, so a thread's share of the rows
                    // may sum in another order: the same to rounding, not to the bit.
                    if threads == 1 {
                        one_thread = ours.clone();
                    } else if super::super::kernels::cpu() == super::super::kernels::Cpu::Avx512 {
                        assert_eq!(ours, one_thread, "{model_type:?} L={layers}: 2 threads differ from 1");
                    } else {
                        let gap = ours.iter().zip(&one_thread).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
                        assert!(gap <= 1e-6, "{model_type:?} L={layers}: 2 threads differ from 1 by {gap:e}");
                    }
                    let err = ours.iter().zip(&reference).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
                    let scale = reference.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
                    assert!(err <= 1e-5 * scale.max(1.0), "{model_type:?} L={layers} on {threads} threads: {err:e}");
                }
            }
        }
    }
}
