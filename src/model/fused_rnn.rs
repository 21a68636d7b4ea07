//! LSTM and GRU layers as one candle op each, forward and backward written by hand.
//!
//! The op runs a whole sequence: the input projection of every step as one matrix product, then
//! per step one recurrent product and one pass over contiguous buffers for the gates; the gate
//! activations are kept for the backward, which runs backpropagation through time with the weight
//! gradients as single products over all steps, and the input gradient only when the input is
//! tracked. PyTorch's weights, shapes and gate orders (LSTM i, f, g, o; GRU r, z, n with `b_hn`
//! inside `r * (...)`) are kept, so checkpoints are unchanged. The math is generic over f32 and f64
//! (f64 for gradient checks). See `../shared/ref/FUSED_RNN.md`.

use std::ops::Range;
use std::sync::Mutex;

use rayon::prelude::*;

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};

use super::kernels::{batch_parts, borrow, column_sums, contiguous, matmul, Mat, Real};
use super::packed::{matmul_packed, Packed};

/// Which recurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    Lstm,
    Gru,
}

impl Cell {
    pub fn gates(self) -> usize {
        match self {
            Cell::Lstm => 4,
            Cell::Gru => 3,
        }
    }
}

/// One layer over a time-major sequence: `x` [T, B, I], `w_ih` [G*H, I], `w_hh` [G*H, H], biases
/// [G*H]; returns every step's hidden state [T, B, H] (zero initial state).
pub fn layer(
    cell: Cell,
    x: &Tensor,
    (w_ih, w_hh): (&Tensor, &Tensor),
    (b_ih, b_hh): (&Tensor, &Tensor),
) -> candle_core::Result<Tensor> {
    // Each bias travels as the last column of its weight; candle's cat routes the gradients back.
    let wi = Tensor::cat(&[w_ih, &b_ih.unsqueeze(1)?], 1)?;
    let wh = Tensor::cat(&[w_hh, &b_hh.unsqueeze(1)?], 1)?;
    let op = RnnOp { cell, input_grad: x.track_op(), saved: Mutex::new(None) };
    x.contiguous()?.apply_op3(&wi, &wh, op)
}

struct RnnOp {
    cell: Cell,
    /// Whether the input needs a gradient (the first layer's input does not).
    input_grad: bool,
    /// What the forward kept for the backward.
    saved: Mutex<Option<Saved>>,
}

/// The batch rows each thread ran, and the workspace of each.
enum Saved {
    F32(Vec<Range<usize>>, Vec<Workspace<f32>>),
    F64(Vec<Range<usize>>, Vec<Workspace<f64>>),
}

/// Per step and batch row: the gate activations (LSTM i, f, g, o; GRU r, z, n) [T*B, G*H], and
/// LSTM's cell state or GRU's recurrent `n` part (`W_hn h + b_hn`) [T*B, H]. (The backward
/// recomputes tanh of the cell state: keeping it too cost a sixth more memory, 30 MB more at the
/// peak of `hptune pipeline`, and saved no measurable time: the gradient pass stayed at 4-5% of an
/// LSTM training run in perf.)
struct Workspace<F> {
    gates: Vec<F>,
    extra: Vec<F>,
}

/// Sizes of one call.
#[derive(Debug, Clone, Copy)]
struct Dims {
    t: usize,
    b: usize,
    i: usize,
    h: usize,
}

impl Dims {
    fn g(&self, cell: Cell) -> usize {
        cell.gates() * self.h
    }
}

impl RnnOp {
    fn dims(&self, x: &Layout, wi: &Layout, wh: &Layout) -> candle_core::Result<Dims> {
        let (t, b, i) = x.shape().dims3()?;
        let (g_rows, i1) = wi.shape().dims2()?;
        let (g_rows2, h1) = wh.shape().dims2()?;
        let h = h1 - 1;
        if i1 != i + 1 || g_rows != self.cell.gates() * h || g_rows2 != g_rows {
            candle_core::bail!(
                "fused recurrent layer: shapes x {:?}, w_ih {:?}, w_hh {:?} do not fit",
                x.dims(),
                wi.dims(),
                wh.dims()
            );
        }
        Ok(Dims { t, b, i, h })
    }
}

impl CustomOp3 for RnnOp {
    fn name(&self) -> &'static str {
        match self.cell {
            Cell::Lstm => "fused-lstm",
            Cell::Gru => "fused-gru",
        }
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let d = self.dims(l1, l2, l3)?;
        let shape = Shape::from((d.t, d.b, d.h));
        match s1 {
            CpuStorage::F32(_) => {
                let parts = batch_parts(d.b);
                let (x, wi, wh) = (contiguous(s1, l1, "x")?, contiguous(s2, l2, "w_ih")?, contiguous(s3, l3, "w_hh")?);
                let (out, ws) = forward_parts::<f32>(self.cell, d, (x, wi, wh), &parts);
                *self.saved.lock().unwrap() = Some(Saved::F32(parts, ws));
                Ok((CpuStorage::F32(out), shape))
            }
            CpuStorage::F64(_) => {
                let parts = batch_parts(d.b);
                let (x, wi, wh) = (contiguous(s1, l1, "x")?, contiguous(s2, l2, "w_ih")?, contiguous(s3, l3, "w_hh")?);
                let (out, ws) = forward_parts::<f64>(self.cell, d, (x, wi, wh), &parts);
                *self.saved.lock().unwrap() = Some(Saved::F64(parts, ws));
                Ok((CpuStorage::F64(out), shape))
            }
            _ => candle_core::bail!("fused recurrent layer: f32 or f64 only"),
        }
    }

    fn bwd(
        &self,
        x: &Tensor,
        wi: &Tensor,
        wh: &Tensor,
        out: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let d = self.dims(x.layout(), wi.layout(), wh.layout())?;
        let saved = self.saved.lock().unwrap().take();
        let device = x.device();
        let grad = grad.contiguous()?;
        let (bx, bwi, bwh) = (borrow(x, "x"), borrow(wi, "w_ih"), borrow(wh, "w_hh"));
        let (bout, bgrad) = (borrow(out, "the output"), borrow(&grad, "the gradient"));
        macro_rules! run {
            ($ty:ty, $parts:expr, $ws:expr) => {{
                let (dx, dwi, dwh) = backward_parts::<$ty>(
                    self.cell,
                    d,
                    (bx.slice()?, bwi.slice()?, bwh.slice()?),
                    (bout.slice()?, &$ws, bgrad.slice()?),
                    (&$parts, self.input_grad),
                );
                let dx = dx.map(|dx| Tensor::from_vec(dx, x.dims(), device)).transpose()?;
                (dx, Tensor::from_vec(dwi, wi.dims(), device)?, Tensor::from_vec(dwh, wh.dims(), device)?)
            }};
        }
        let (dx, dwi, dwh) = match saved {
            Some(Saved::F32(parts, ws)) => run!(f32, parts, ws),
            Some(Saved::F64(parts, ws)) => run!(f64, parts, ws),
            None => candle_core::bail!("fused recurrent layer: backward without a forward"),
        };
        Ok((dx, Some(dwi), Some(dwh)))
    }
}

/// The rows `part` of every step of a [T, B, width] buffer, as [T, part, width].
fn gather<F: Copy>(data: &[F], (t, b, width): (usize, usize, usize), part: &Range<usize>) -> Vec<F> {
    let mut out = Vec::with_capacity(t * part.len() * width);
    for step in 0..t {
        out.extend_from_slice(&data[(step * b + part.start) * width..(step * b + part.end) * width]);
    }
    out
}

/// Puts each part's [T, part, width] buffer back into one [T, B, width] buffer.
fn scatter<F: Copy + Default>(
    pieces: &[Vec<F>],
    (t, b, width): (usize, usize, usize),
    parts: &[Range<usize>],
) -> Vec<F> {
    let mut out = vec![F::default(); t * b * width];
    for (piece, part) in pieces.iter().zip(parts) {
        let n = part.len() * width;
        for step in 0..t {
            out[(step * b + part.start) * width..(step * b + part.end) * width]
                .copy_from_slice(&piece[step * n..(step + 1) * n]);
        }
    }
    out
}

/// The forward pass with the batch split into `parts`, each on its own thread.
fn forward_parts<F: Real>(
    cell: Cell,
    d: Dims,
    (x, wi, wh): (&[F], &[F], &[F]),
    parts: &[Range<usize>],
) -> (Vec<F>, Vec<Workspace<F>>) {
    let g = d.g(cell);
    // Each bias is the last column of its weight.
    let last_column = |m: &[F], width: usize| -> Vec<F> { (0..g).map(|k| m[k * (width + 1) + width]).collect() };
    let (b_ih, b_hh) = (last_column(wi, d.i), last_column(wh, d.h));
    let weights = (Mat::rows(wi, g, d.i, d.i + 1), Mat::rows(wh, g, d.h, d.h + 1));
    let w = Weights::new(cell, weights, (&b_ih, &b_hh));
    if parts.len() == 1 {
        let (out, ws) = forward(cell, d, x, &w, true);
        return (out, vec![ws]);
    }
    let (outs, ws): (Vec<_>, Vec<_>) = parts
        .par_iter()
        .map(|part| forward(cell, Dims { b: part.len(), ..d }, &gather(x, (d.t, d.b, d.i), part), &w, true))
        .unzip();
    (scatter(&outs, (d.t, d.b, d.h), parts), ws)
}

/// The backward pass per part (as the forward ran it); the weight gradients are summed over the
/// parts in order.
fn backward_parts<F: Real>(
    cell: Cell,
    d: Dims,
    (x, wi, wh): (&[F], &[F], &[F]),
    (out, ws, dout): (&[F], &[Workspace<F>], &[F]),
    (parts, input_grad): (&[Range<usize>], bool),
) -> (Option<Vec<F>>, Vec<F>, Vec<F>) {
    let g = d.g(cell);
    // `W_hh` multiplies every step's gradient; `W_ih` the input gradient, when there is one.
    let wh_packed = Packed::new(Mat::rows(wh, g, d.h, d.h + 1));
    let wi_packed = input_grad.then(|| Packed::new(Mat::rows(wi, g, d.i, d.i + 1)));
    let packed = (&wh_packed, wi_packed.as_ref());
    if parts.len() == 1 {
        return backward(cell, d, x, (out, &ws[0], dout), packed);
    }
    let results: Vec<_> = parts
        .par_iter()
        .zip(ws)
        .map(|(part, ws)| {
            let piece = |data: &[F], width: usize| gather(data, (d.t, d.b, width), part);
            let dp = Dims { b: part.len(), ..d };
            backward(cell, dp, &piece(x, d.i), (&piece(out, d.h), ws, &piece(dout, d.h)), packed)
        })
        .collect();
    let mut dwi = vec![F::zero(); wi.len()];
    let mut dwh = vec![F::zero(); wh.len()];
    let mut dx_parts = Vec::new();
    for (dx, pwi, pwh) in results {
        dwi.iter_mut().zip(pwi).for_each(|(a, b)| *a = *a + b);
        dwh.iter_mut().zip(pwh).for_each(|(a, b)| *a = *a + b);
        dx_parts.extend(dx);
    }
    let dx = input_grad.then(|| scatter(&dx_parts, (d.t, d.b, d.i), parts));
    (dx, dwi, dwh)
}

/// Defines `$name`, which runs `$rows` compiled for AVX-512, for AVX2 with FMA, or for the
/// baseline, the widest the CPU has. The arithmetic is the same in each (fused multiply-adds
/// included: the baseline's are libm calls, slow but exact), so the results are too.
macro_rules! widest {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) => $rows:ident) => {
        $(#[$doc])*
        fn $name<F: Real>($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn avx512<F: Real>($($arg: $ty),*) {
                    $rows($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2<F: Real>($($arg: $ty),*) {
                    $rows($($arg),*)
                }
                match super::kernels::cpu() {
                    // SAFETY: the CPU has the features the function is compiled for (`cpu()` is
                    // what it detected, capped by HPTUNE_CPU).
                    super::kernels::Cpu::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: as above.
                    super::kernels::Cpu::Avx2 => return unsafe { avx2($($arg),*) },
                    super::kernels::Cpu::Baseline => {}
                }
            }
            $rows($($arg),*)
        }
    };
}

widest! {
    /// One step's gate pass over every batch row: the activations replace the pre-activations in
    /// `gates` (the products without biases: for LSTM both products summed; for GRU the input
    /// part, the recurrent part in `hp`), and LSTM's cell state or GRU's recurrent n part, and
    /// the new hidden state are written; the activations only when kept for a backward
    /// (`width_keep`: H, and whether to keep).
    fn gate_pass(
        cell: Cell,
        width_keep: (usize, bool),
        biases: (&[F], &[F]),
        products: (&mut [F], &[F]),
        prev: (&[F], &[F]),
        out: (&mut [F], &mut [F]),
    ) => gate_pass_rows
}

#[inline(always)]
fn gate_pass_rows<F: Real>(
    cell: Cell,
    (h, keep): (usize, bool),
    (b_in, b_hn): (&[F], &[F]),
    (gates, hp): (&mut [F], &[F]),
    (c_prev, h_prev): (&[F], &[F]),
    (extra, h_new): (&mut [F], &mut [F]),
) {
    let g = cell.gates() * h;
    let bias = |k: usize| &b_in[k * h..(k + 1) * h];
    for (r, a) in gates.chunks_exact_mut(g).enumerate() {
        let rows = r * h..(r + 1) * h;
        let (hn, ex) = (&mut h_new[rows.clone()], &mut extra[rows.clone()]);
        let mut a = a.chunks_exact_mut(h);
        let mut a = || a.next().expect("a part per gate");
        match cell {
            Cell::Lstm => {
                let (ai, af, ag, ao) = (a(), a(), a(), a());
                let cp = &c_prev[rows];
                let (bi, bf, bg, bo) = (bias(0), bias(1), bias(2), bias(3));
                if keep {
                    lstm_cell::<F, true>(ai, af, ag, ao, bi, bf, bg, bo, cp, ex, hn);
                } else {
                    lstm_cell::<F, false>(ai, af, ag, ao, bi, bf, bg, bo, cp, ex, hn);
                }
            }
            Cell::Gru => {
                let (ar, az, an) = (a(), a(), a());
                let p = |k: usize| &hp[r * g + k * h..r * g + (k + 1) * h];
                let (pr, pz, pn, br, bz, bn, hprev) = (p(0), p(1), p(2), bias(0), bias(1), bias(2), &h_prev[rows]);
                if keep {
                    gru_cell::<F, true>(ar, az, an, pr, pz, pn, br, bz, bn, b_hn, hprev, ex, hn);
                } else {
                    gru_cell::<F, false>(ar, az, an, pr, pz, pn, br, bz, bn, b_hn, hprev, ex, hn);
                }
            }
        }
    }
}

/// A layer's weights as the forward pass multiplies by them: `W_ih^T` and `W_hh^T` packed once
/// for every step and batch part, and the biases.
pub(crate) struct Weights<'a, F> {
    wi: Packed<'a, F>,
    wh: Packed<'a, F>,
    /// `b_ih`, plus `b_hh` where it adds straight to the pre-activation: every LSTM gate, GRU's r
    /// and z.
    b_in: Vec<F>,
    /// GRU's `b_hn`, kept apart, as its n gate scales `W_hn h + b_hn` by r (empty for LSTM).
    b_hn: Vec<F>,
}

impl<'a, F: Real> Weights<'a, F> {
    /// `W_ih` [G*H, I] and `W_hh` [G*H, H] (PyTorch's layout), and their biases [G*H].
    pub(crate) fn new(cell: Cell, (wi, wh): (Mat<'a, F>, Mat<'a, F>), (b_ih, b_hh): (&[F], &[F])) -> Self {
        let (g, h) = (wh.rows, wh.cols);
        let apart = if cell == Cell::Gru { 2 * h..g } else { g..g };
        let b_in = (0..g).map(|k| b_ih[k] + if apart.contains(&k) { F::zero() } else { b_hh[k] }).collect();
        Self { wi: Packed::new(wi.t()), wh: Packed::new(wh.t()), b_in, b_hn: b_hh[apart].to_vec() }
    }
}

/// Every step's hidden state [T*B*H] for `x` [T*B*I], without gradients: inference, one thread.
pub(crate) fn infer(cell: Cell, (t, b, i, h): (usize, usize, usize, usize), x: &[f32], w: &Weights<f32>) -> Vec<f32> {
    forward(cell, Dims { t, b, i, h }, x, w, false).0
}

/// The forward pass: every step's hidden state [T*B*H], and what the backward needs.
/// Without `keep` (inference) only the current step's gates live, its input projection made
/// just before they are needed, so they stay in cache; the workspace returned is then partial.
fn forward<F: Real>(cell: Cell, d: Dims, x: &[F], w: &Weights<F>, keep: bool) -> (Vec<F>, Workspace<F>) {
    let Dims { t, b, i, h } = d;
    let kept = if keep { t } else { 1 };
    let g = d.g(cell);
    // The products of every kept step, [T*B, G*H] (the gate pass adds the biases).
    let mut gates = vec![F::zero(); kept * b * g];
    if keep {
        matmul_packed(&mut gates, g, Mat::rows(x, t * b, i, i), &w.wi, false);
    }
    let mut out = vec![F::zero(); t * b * h];
    let mut extra = vec![F::zero(); kept * b * h];
    // GRU's recurrent product; and, in inference, the cell state of the step before.
    let mut hp = if cell == Cell::Gru { vec![F::zero(); b * g] } else { Vec::new() };
    let mut carried = if keep || cell == Cell::Gru { Vec::new() } else { vec![F::zero(); b * h] };
    let zeros = vec![F::zero(); b * h];
    for step in 0..t {
        let (done, rest) = out.split_at_mut(step * b * h);
        let h_prev: &[F] = if step == 0 { &zeros } else { &done[(step - 1) * b * h..] };
        let slot = if keep { step } else { 0 };
        let gates_t = &mut gates[slot * b * g..(slot + 1) * b * g];
        if !keep {
            matmul_packed(gates_t, g, Mat::rows(&x[step * b * i..(step + 1) * b * i], b, i, i), &w.wi, false);
        }
        // The recurrent product (none from the zero initial state).
        if step > 0 {
            let rec = Mat::rows(h_prev, b, h, h);
            match cell {
                Cell::Lstm => matmul_packed(gates_t, g, rec, &w.wh, true),
                Cell::Gru => matmul_packed(&mut hp, g, rec, &w.wh, false),
            }
        }
        let (extra_done, extra_rest) = extra.split_at_mut(slot * b * h);
        let c_prev: &[F] = match (step, keep) {
            (0, _) => &zeros,
            (_, true) => &extra_done[(step - 1) * b * h..],
            (_, false) => &carried,
        };
        let products = (&mut gates_t[..], &hp[..]);
        gate_pass(
            cell,
            (h, keep),
            (&w.b_in, &w.b_hn),
            products,
            (c_prev, h_prev),
            (&mut extra_rest[..b * h], &mut rest[..b * h]),
        );
        if !carried.is_empty() {
            std::mem::swap(&mut extra, &mut carried);
        }
    }
    (out, Workspace { gates, extra })
}

/// One batch row of the LSTM gates from the products and biases of each gate (i, f, g, o); with
/// `KEEP` (training) the activations are written for the backward. Each
/// slice is its own argument, so that the compiler knows they do not overlap and vectorises the
/// loop (inlined into the per-CPU copies of `gate_pass`); slices passed in a tuple lose that, and
/// the loop ran one element at a time.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn lstm_cell<F: Real, const KEEP: bool>(
    ai: &mut [F],
    af: &mut [F],
    ag: &mut [F],
    ao: &mut [F],
    bi: &[F],
    bf: &[F],
    bg: &[F],
    bo: &[F],
    cp: &[F],
    ex: &mut [F],
    hn: &mut [F],
) {
    let h = hn.len();
    // Slices of exactly h, so that the loop has no bounds checks.
    let (ai, af, ag, ao, ex) = (&mut ai[..h], &mut af[..h], &mut ag[..h], &mut ao[..h], &mut ex[..h]);
    let (bi, bf, bg, bo, cp) = (&bi[..h], &bf[..h], &bg[..h], &bo[..h], &cp[..h]);
    for j in 0..h {
        let ig = (ai[j] + bi[j]).sigmoid();
        let fg = (af[j] + bf[j]).sigmoid();
        let gg = (ag[j] + bg[j]).tanh_act();
        let og = (ao[j] + bo[j]).sigmoid();
        let c = fg.mul_add(cp[j], ig * gg);
        let t = c.tanh_act();
        if KEEP {
            (ai[j], af[j], ag[j], ao[j]) = (ig, fg, gg, og);
        }
        (ex[j], hn[j]) = (c, og * t);
    }
}

/// One batch row of the GRU gates (see `lstm_cell`) from the input products, the recurrent ones
/// and the biases of each gate (r, z, n; the recurrent n bias apart).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn gru_cell<F: Real, const KEEP: bool>(
    ar: &mut [F],
    az: &mut [F],
    an: &mut [F],
    pr: &[F],
    pz: &[F],
    pn: &[F],
    br: &[F],
    bz: &[F],
    bn: &[F],
    bhn: &[F],
    hprev: &[F],
    ex: &mut [F],
    hn: &mut [F],
) {
    let h = hn.len();
    // Slices of exactly h, so that the loop has no bounds checks.
    let (ar, az, an, ex, hn) = (&mut ar[..h], &mut az[..h], &mut an[..h], &mut ex[..h], &mut hn[..h]);
    let (pr, pz, pn, br, bz, bn) = (&pr[..h], &pz[..h], &pn[..h], &br[..h], &bz[..h], &bn[..h]);
    let (bhn, hprev) = (&bhn[..h], &hprev[..h]);
    for j in 0..h {
        let rg = (ar[j] + br[j] + pr[j]).sigmoid();
        let zg = (az[j] + bz[j] + pz[j]).sigmoid();
        let rec_n = pn[j] + bhn[j];
        let ng = rg.mul_add(rec_n, an[j] + bn[j]).tanh_act();
        if KEEP {
            (ar[j], az[j], an[j]) = (rg, zg, ng);
        }
        ex[j] = rec_n;
        hn[j] = zg.mul_add(hprev[j] - ng, ng);
    }
}

widest! {
    /// One step's gradient pass over every batch row: from the gradient of the hidden state
    /// (`dh`, carried from the step after, plus `dout`, this step's own) and of LSTM's cell state
    /// (`dc`), the gradients of the pre-activations (`d_in`; GRU's recurrent ones in `d_rec`), and
    /// what is carried to the step before: LSTM's `dc`, GRU's part of `dh`. `saved` is the gate
    /// activations, then LSTM's cell state and the cell state before, or GRU's
    /// recurrent n part and hidden state before, then `dout`.
    fn grad_pass(
        cell: Cell,
        h: usize,
        saved: (&[F], &[F], &[F], &[F]),
        grads: (&mut [F], &mut [F]),
        carried: (&mut [F], &mut [F]),
    ) => grad_pass_rows
}

#[inline(always)]
fn grad_pass_rows<F: Real>(
    cell: Cell,
    h: usize,
    (gates, k0, k1, dout): (&[F], &[F], &[F], &[F]),
    (d_in, d_rec): (&mut [F], &mut [F]),
    (dh, dc): (&mut [F], &mut [F]),
) {
    let g = cell.gates() * h;
    for (r, (a, di)) in gates.chunks_exact(g).zip(d_in.chunks_exact_mut(g)).enumerate() {
        let rows = r * h..(r + 1) * h;
        let (k0, k1, dout, dh) = (&k0[rows.clone()], &k1[rows.clone()], &dout[rows.clone()], &mut dh[rows.clone()]);
        match cell {
            Cell::Lstm => lstm_grad(a, di, k0, k1, dout, dh, &mut dc[rows]),
            Cell::Gru => gru_grad(a, di, &mut d_rec[r * g..(r + 1) * g], k0, k1, dout, dh),
        }
    }
}

/// One batch row of `grad_pass` for LSTM (`dh` is only read: the recurrent product replaces it);
/// each slice its own argument, as in `lstm_cell`.
#[inline(always)]
fn lstm_grad<F: Real>(a: &[F], di: &mut [F], c: &[F], cp: &[F], dout: &[F], dh: &mut [F], dc: &mut [F]) {
    let h = dh.len();
    let one = F::one();
    // Slices of exactly the lengths the loop reads, so that it has no bounds checks.
    let (a, di, dc) = (&a[..4 * h], &mut di[..4 * h], &mut dc[..h]);
    let (c, cp, dout) = (&c[..h], &cp[..h], &dout[..h]);
    for j in 0..h {
        let (ig, fg, gg, og) = (a[j], a[h + j], a[2 * h + j], a[3 * h + j]);
        let dhj = dh[j] + dout[j];
        let tc = c[j].tanh_act();
        let dcj = dc[j] + dhj * og * (one - tc * tc);
        di[j] = dcj * gg * ig * (one - ig);
        di[h + j] = dcj * cp[j] * fg * (one - fg);
        di[2 * h + j] = dcj * ig * (one - gg * gg);
        di[3 * h + j] = dhj * tc * og * (one - og);
        dc[j] = dcj * fg;
    }
}

/// One batch row of `grad_pass` for GRU.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn gru_grad<F: Real>(a: &[F], di: &mut [F], dr: &mut [F], pn: &[F], hp: &[F], dout: &[F], dh: &mut [F]) {
    let h = dh.len();
    let one = F::one();
    // Slices of exactly the lengths the loop reads, so that it has no bounds checks.
    let (a, di, dr) = (&a[..3 * h], &mut di[..3 * h], &mut dr[..3 * h]);
    let (pn, hp, dout) = (&pn[..h], &hp[..h], &dout[..h]);
    for j in 0..h {
        let (rg, zg, ng) = (a[j], a[h + j], a[2 * h + j]);
        let dhj = dh[j] + dout[j];
        let dpn = dhj * (one - zg) * (one - ng * ng);
        let dpr = dpn * pn[j] * rg * (one - rg);
        let dpz = dhj * (hp[j] - ng) * zg * (one - zg);
        (di[j], di[h + j], di[2 * h + j]) = (dpr, dpz, dpn);
        (dr[j], dr[h + j], dr[2 * h + j]) = (dpr, dpz, dpn * rg);
        dh[j] = dhj * zg;
    }
}

/// Backpropagation through time: the gradients of the input (when `input_grad`), of `[W_ih | b_ih]`
/// and of `[W_hh | b_hh]`, from the gradient of every step's hidden state.
fn backward<F: Real>(
    cell: Cell,
    d: Dims,
    x: &[F],
    (out, ws, dout): (&[F], &Workspace<F>, &[F]),
    (wh, wi): (&Packed<F>, Option<&Packed<F>>),
) -> (Option<Vec<F>>, Vec<F>, Vec<F>) {
    let Dims { t, b, i, h } = d;
    let g = d.g(cell);
    // Gradients of the pre-activations: of the input projection, and of the recurrent product
    // (the same for LSTM; for GRU the n part of the recurrent one is scaled by r).
    let mut d_in = vec![F::zero(); t * b * g];
    let mut d_rec = if cell == Cell::Gru { vec![F::zero(); t * b * g] } else { Vec::new() };
    // The gradient carried to the step before: of its hidden state, and LSTM's of its cell state.
    let mut dh = vec![F::zero(); b * h];
    let mut dc = if cell == Cell::Lstm { vec![F::zero(); b * h] } else { Vec::new() };
    let zeros = vec![F::zero(); b * h];
    for step in (0..t).rev() {
        let now = step * b * h..(step + 1) * b * h;
        let before = if step == 0 { None } else { Some((step - 1) * b * h..step * b * h) };
        // LSTM's cell state before, GRU's hidden state before.
        let state_before = if cell == Cell::Lstm { &ws.extra } else { out };
        let (k0, k1) = (&ws.extra[now.clone()], before.map_or(&zeros[..], |r| &state_before[r]));
        let gates = step * b * g..(step + 1) * b * g;
        let d_rec_t = if cell == Cell::Gru { &mut d_rec[gates.clone()] } else { &mut [] };
        let grads = (&mut d_in[gates.clone()], d_rec_t);
        grad_pass(cell, h, (&ws.gates[gates.clone()], k0, k1, &dout[now]), grads, (&mut dh, &mut dc));
        // The hidden state's gradient at the step before: LSTM's all through W_hh, GRU's also
        // through z (already in dh).
        let rec = if cell == Cell::Lstm { &d_in[gates] } else { &d_rec[gates] };
        matmul_packed(&mut dh, h, Mat::rows(rec, b, g, g), wh, cell == Cell::Gru);
    }
    let rec = if cell == Cell::Lstm { &d_in[..] } else { &d_rec[..] };
    // Weight gradients over all steps at once; the bias gradient is the last column.
    let mut dwi = vec![F::zero(); g * (i + 1)];
    matmul(&mut dwi, i + 1, Mat::rows(&d_in, t * b, g, g).t(), Mat::rows(x, t * b, i, i), false);
    let mut dwh = vec![F::zero(); g * (h + 1)];
    if t > 1 {
        let h_prev = Mat::rows(&out[..(t - 1) * b * h], (t - 1) * b, h, h);
        let rec_later = Mat::rows(&rec[b * g..], (t - 1) * b, g, g);
        matmul(&mut dwh, h + 1, rec_later.t(), h_prev, false);
    }
    for (k, v) in column_sums(&d_in, g).into_iter().enumerate() {
        dwi[k * (i + 1) + i] = v;
    }
    for (k, v) in column_sums(rec, g).into_iter().enumerate() {
        dwh[k * (h + 1) + h] = v;
    }
    let dx = wi.map(|wi| {
        let mut dx = vec![F::zero(); t * b * i];
        matmul_packed(&mut dx, i, Mat::rows(&d_in, t * b, g, g), wi, false);
        dx
    });
    (dx, dwi, dwh)
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Tensor, Var};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::{layer, Cell};
    use crate::model::{ModelType, Net, NetShape};

    fn random(rng: &mut ChaCha8Rng, shape: &[usize], scale: f64, dtype: DType) -> Tensor {
        let n: usize = shape.iter().product();
        let v: Vec<f64> = (0..n).map(|_| rng.gen_range(-scale..scale)).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap().to_dtype(dtype).unwrap()
    }

    /// A stack of `layers` fused layers in f64 and a fixed weighted sum of every output.
    struct Stack {
        cell: Cell,
        x: Var,
        params: Vec<Var>,
        weights: Tensor,
    }

    impl Stack {
        fn new(
            cell: Cell,
            (t, b, i, h): (usize, usize, usize, usize),
            layers: usize,
            strided: bool,
            seed: u64,
        ) -> Self {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let g = cell.gates() * h;
            // Large enough weights that some gates saturate.
            let mut params = Vec::new();
            for l in 0..layers {
                let fan_in = if l == 0 { i } else { h };
                for shape in [vec![g, fan_in], vec![g, h], vec![g], vec![g]] {
                    params.push(Var::from_tensor(&random(&mut rng, &shape, 1.5, DType::F64)).unwrap());
                }
            }
            // A strided input: the transpose of a batch-major tensor.
            let x = if strided {
                random(&mut rng, &[b, t, i], 1.0, DType::F64).transpose(0, 1).unwrap()
            } else {
                random(&mut rng, &[t, b, i], 1.0, DType::F64)
            };
            let x = Var::from_tensor(&x).unwrap();
            let weights = random(&mut rng, &[t, b, h], 1.0, DType::F64);
            Self { cell, x, params, weights }
        }

        fn loss(&self) -> Tensor {
            let mut seq = self.x.as_tensor().clone();
            for p in self.params.chunks(4) {
                seq = layer(self.cell, &seq, (&p[0], &p[1]), (&p[2], &p[3])).unwrap();
            }
            (seq * &self.weights).unwrap().sum_all().unwrap()
        }

        fn value(&self) -> f64 {
            self.loss().to_scalar::<f64>().unwrap()
        }
    }

    /// Runs `f` with `threads` rayon threads: the fused op splits a batch of 32 rows or more
    /// across them, whatever the machine.
    fn with_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
        rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(f)
    }

    /// Central differences of every input and parameter entry against the backward pass, in f64;
    /// the last case splits its batch across two threads.
    #[test]
    fn gradients_match_central_differences_in_f64() {
        with_threads(2, gradient_check);
    }

    fn gradient_check() {
        for cell in [Cell::Lstm, Cell::Gru] {
            for (dims, layers, strided) in [
                ((1, 1, 3, 5), 1, false),
                ((4, 2, 3, 5), 2, true),
                ((3, 3, 7, 9), 3, false),
                ((5, 1, 2, 1), 2, true),
                ((3, 32, 2, 3), 2, true),
            ] {
                let stack = Stack::new(cell, dims, layers, strided, 7);
                let grads = stack.loss().backward().unwrap();
                let eps = 1e-6;
                let mut worst: f64 = 0.0;
                for var in std::iter::once(&stack.x).chain(&stack.params) {
                    let analytic = grads.get(var).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
                    let base = var.as_tensor().flatten_all().unwrap().to_vec1::<f64>().unwrap();
                    for (k, a) in analytic.iter().enumerate() {
                        let at = |delta: f64| {
                            let mut v = base.clone();
                            v[k] += delta;
                            var.set(&Tensor::from_vec(v, var.dims(), &Device::Cpu).unwrap()).unwrap();
                            stack.value()
                        };
                        let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
                        at(0.0);
                        worst = worst.max((numeric - a).abs() / (1.0 + numeric.abs()));
                    }
                }
                assert!(worst < 1e-7, "{cell:?} {dims:?} x{layers}: worst relative error {worst:e}");
            }
        }
    }

    fn rel(a: &Tensor, b: &Tensor) -> f64 {
        let d = (a - b).unwrap().sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() as f64;
        let n = b.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() as f64;
        d.sqrt() / n.sqrt().max(1e-12)
    }

    /// The f32 fused op against the step-by-step candle version: outputs and every gradient, on
    /// one thread and with the batch split across two.
    #[test]
    fn fused_equals_the_unfused_reference_in_f32() {
        with_threads(1, compare_with_reference);
        with_threads(2, compare_with_reference);
    }

    fn compare_with_reference() {
        for model_type in [ModelType::Lstm, ModelType::Gru] {
            for (seq_len, batch, hidden, layers) in [(1, 4, 13, 1), (6, 1, 13, 2), (9, 5, 20, 3), (30, 64, 64, 2)] {
                let shape = NetShape {
                    model_type,
                    seq_len,
                    inputs: 11,
                    outputs: 3,
                    hidden_size: hidden,
                    num_layers: layers,
                    dropout: 0.0,
                };
                let fused = Net::new(shape, &mut ChaCha8Rng::seed_from_u64(3), &Device::Cpu).unwrap();
                let plain = Net::new(shape, &mut ChaCha8Rng::seed_from_u64(3), &Device::Cpu).unwrap().unfused();
                let mut rng = ChaCha8Rng::seed_from_u64(4);
                let x = random(&mut rng, &[batch, seq_len, 11], 2.0, DType::F32);
                let y = random(&mut rng, &[batch, 3], 1.0, DType::F32);
                let (a, b) = (fused.forward(&x, None).unwrap(), plain.forward(&x, None).unwrap());
                let what = format!("{model_type:?} T={seq_len} B={batch} H={hidden} L={layers}");
                assert!(rel(&a, &b) < 1e-5, "{what}: outputs differ by {:e}", rel(&a, &b));
                let ga = (a * &y).unwrap().sum_all().unwrap().backward().unwrap();
                let gb = (b * &y).unwrap().sum_all().unwrap().backward().unwrap();
                for (va, vb) in fused.vars().iter().zip(plain.vars()) {
                    let (da, db) = (ga.get(va).unwrap(), gb.get(&vb).unwrap());
                    assert!(rel(da, db) < 1e-5, "{what}: a gradient differs by {:e}", rel(da, db));
                }
            }
        }
    }

    /// Whole training runs, fused and step by step, give the same loss curves; and the same seed
    /// gives the same weights again.
    #[test]
    fn training_fused_follows_the_reference_and_repeats_exactly() {
        use crate::model::{adamw, run_epoch, Samples};
        let (n, t, i, o) = (96, 8, 6, 3);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let x: Vec<f32> = (0..n * t * i).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let y: Vec<f32> = (0..n * o).map(|k| if x[k * 7 % x.len()] > 0.0 { 1.0 } else { 0.0 }).collect();
        let samples = Samples { x, y, n, seq_len: t, inputs: i, outputs: o };
        for model_type in [ModelType::Mlp, ModelType::Lstm, ModelType::Gru] {
            let shape = NetShape {
                model_type,
                seq_len: t,
                inputs: i,
                outputs: o,
                hidden_size: 10,
                num_layers: 2,
                dropout: 0.1,
            };
            let curve = |net: Net| {
                let mut opt = adamw(&net, 3e-3, 0.01).unwrap();
                let order: Vec<usize> = (0..n).collect();
                let mut drop = ChaCha8Rng::seed_from_u64(6);
                // Batches of 32: two parts of 16 rows on two threads.
                let losses: Vec<f64> =
                    (0..5).map(|_| run_epoch(&net, &mut opt, &samples, &order, 32, &mut drop).unwrap()).collect();
                let weights =
                    net.vars().iter().map(|v| v.flatten_all().unwrap().to_vec1::<f32>().unwrap()).collect::<Vec<_>>();
                (losses, weights)
            };
            let new = || Net::new(shape, &mut ChaCha8Rng::seed_from_u64(8), &Device::Cpu).unwrap();
            let (plain, _) = curve(new().unfused());
            for threads in [1, 2] {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                let (fused, weights) = pool.install(|| curve(new()));
                for (a, b) in fused.iter().zip(&plain) {
                    assert!(
                        (a - b).abs() < 1e-4,
                        "{model_type:?} on {threads} threads: loss {a} fused, {b} step by step"
                    );
                }
                let again = pool.install(|| curve(new())).1;
                assert_eq!(again, weights, "{model_type:?} on {threads} threads: the same seed gave other weights");
            }
        }
    }
}
