//! The dense kernels the fused layers share: matrix products on the `gemm` crate (AVX-512 where
//! the CPU has it, chosen at run time), column sums, and reading candle's CPU storage.

use candle_core::{CpuStorage, Layout, Storage, StorageRef, Tensor};
use num_traits::Float;

/// The widest instruction set the CPU kernels use: the gate passes are compiled for each, and the
/// packed products need AVX-512 (else `gemm`, which picks its own kernels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cpu {
    Baseline,
    Avx2,
    Avx512,
}

/// The environment variable that caps `cpu()`, so that every path runs (and is tested) on any
/// machine: `baseline`, `avx2` or `avx512`.
pub const CPU_ENV: &str = "HPTUNE_CPU";

impl Cpu {
    pub fn name(self) -> &'static str {
        match self {
            Cpu::Baseline => "baseline",
            Cpu::Avx2 => "avx2",
            Cpu::Avx512 => "avx512",
        }
    }

    /// A `HPTUNE_CPU` value.
    pub fn parse(s: &str) -> Option<Self> {
        [Cpu::Baseline, Cpu::Avx2, Cpu::Avx512].into_iter().find(|c| c.name() == s)
    }
}

fn detected() -> Cpu {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            return Cpu::Avx512;
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return Cpu::Avx2;
        }
    }
    Cpu::Baseline
}

/// What the CPU has, capped by `HPTUNE_CPU` (an unknown value is refused by the command line
/// before any work, and caps nothing here).
pub fn cpu() -> Cpu {
    static CPU: std::sync::OnceLock<Cpu> = std::sync::OnceLock::new();
    *CPU.get_or_init(|| {
        let cap = std::env::var(CPU_ENV).ok().and_then(|v| Cpu::parse(&v)).unwrap_or(Cpu::Avx512);
        detected().min(cap)
    })
}

/// The data of a contiguous tensor on CPU (`what` names it in the error otherwise).
pub fn contiguous<'a, F: candle_core::WithDType>(
    s: &'a CpuStorage,
    l: &Layout,
    what: &str,
) -> candle_core::Result<&'a [F]> {
    let data = F::cpu_storage_as_slice(s)?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("{what} must be contiguous"),
    }
}

/// A contiguous CPU tensor's data, borrowed (not copied) while this lives: what a custom op's
/// backward reads its inputs and gradient through.
pub struct Borrowed<'a> {
    storage: StorageRef<'a>,
    layout: &'a Layout,
    what: &'static str,
}

pub fn borrow<'a>(t: &'a Tensor, what: &'static str) -> Borrowed<'a> {
    let (storage, layout) = t.storage_and_layout();
    Borrowed { storage, layout, what }
}

impl Borrowed<'_> {
    pub fn slice<F: candle_core::WithDType>(&self) -> candle_core::Result<&[F]> {
        match &*self.storage {
            Storage::Cpu(s) => contiguous(s, self.layout, self.what),
            _ => candle_core::bail!("{} must be on the CPU", self.what),
        }
    }
}

/// A matrix in a slice: `rows` x `cols`, element (r, c) at `r * rs + c * cs`.
#[derive(Clone, Copy)]
pub struct Mat<'a, F> {
    pub data: &'a [F],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a, F> Mat<'a, F> {
    /// A row-major block of `data`.
    pub fn rows(data: &'a [F], rows: usize, cols: usize, stride: usize) -> Self {
        Self { data, rows, cols, rs: stride, cs: 1 }
    }

    pub fn t(self) -> Self {
        Self { rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs, ..self }
    }

    fn fits(&self) -> bool {
        self.rows == 0 || self.cols == 0 || (self.rows - 1) * self.rs + (self.cols - 1) * self.cs < self.data.len()
    }
}

/// The batch rows each thread runs: one part per rayon thread, at least 16 rows each. The parts
/// depend only on the batch and the thread count, so a run repeats exactly for a given
/// `RAYON_NUM_THREADS`.
pub fn batch_parts(b: usize) -> Vec<std::ops::Range<usize>> {
    let n = rayon::current_num_threads().min(b / 16).max(1);
    (0..n).map(|k| k * b / n..(k + 1) * b / n).collect()
}

/// `dst` (row-major, `a.rows` x `b.cols`, row stride `dst_stride`) = `a` x `b`, plus `dst` when
/// `add`, on the calling thread. Threads split batches, not products: the recurrent layers and
/// inference run a part of the batch per rayon thread; gemm's own split of the MLP's large
/// training products made a 2-thread MLP run slower than a 1-thread one (29-33k against 36-41k
/// samples/s, five alternating pairs of `cargo bench --bench train_speed -- mlp`).
pub fn matmul<F: 'static + Float>(dst: &mut [F], dst_stride: usize, a: Mat<F>, b: Mat<F>, add: bool) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert!(b.rows == k && a.fits() && b.fits());
    assert!(m == 0 || n == 0 || (m - 1) * dst_stride + n <= dst.len());
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !add {
            for r in 0..m {
                dst[r * dst_stride..r * dst_stride + n].fill(F::zero());
            }
        }
        return;
    }
    // SAFETY: every index the product reads or writes lies inside the slices (checked above).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_stride as isize,
            add,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            F::one(),
            F::one(),
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// `rows` copies of `row`, one after another: a bias broadcast to every row of a product's
/// output, copied a row at a time (collecting an iterator that cycles over the row does not
/// vectorise: perf put it at 7.5% of an LSTM training run; the row copies take 1.4%).
pub fn repeat_rows<F: Copy>(row: &[F], rows: usize) -> Vec<F> {
    let mut out = Vec::with_capacity(rows * row.len());
    for _ in 0..rows {
        out.extend_from_slice(row);
    }
    out
}

/// The sum of each column of a row-major matrix with `cols` columns.
pub fn column_sums<F: Float>(m: &[F], cols: usize) -> Vec<F> {
    let mut sums = vec![F::zero(); cols];
    for row in m.chunks_exact(cols) {
        for (s, v) in sums.iter_mut().zip(row) {
            *s = *s + *v;
        }
    }
    sums
}

/// The element types the layers compute in: f32 to train, f64 for gradient checks. The gate
/// nonlinearities: for f32 a branch-free exp that the compiler vectorises (Cephes' polynomial on
/// [-ln2/2, ln2/2] and the exponent set by integer arithmetic; relative error about 2e-7 over the
/// clamped range), exact libm functions for f64. And the packed products of `packed`, which only
/// f32 has.
pub trait Real: 'static + Float + Send + Sync + Default {
    fn sigmoid(self) -> Self;
    fn tanh_act(self) -> Self;
    /// `b` packed for `mul_panels`, where this type and the CPU have a kernel.
    fn pack(_b: Mat<Self>) -> Option<super::packed::Panels<Self>> {
        None
    }
    /// `dst = a x b (+ dst)` for panels made by `pack`.
    fn mul_panels(_dst: &mut [Self], _dst_stride: usize, _a: Mat<Self>, _b: &super::packed::Panels<Self>, _add: bool) {
        unreachable!("only a type that packs has panels")
    }
}

impl Real for f64 {
    fn sigmoid(self) -> f64 {
        1.0 / (1.0 + (-self).exp())
    }
    fn tanh_act(self) -> f64 {
        self.tanh()
    }
}

impl Real for f32 {
    #[inline(always)]
    fn sigmoid(self) -> f32 {
        1.0 / (1.0 + exp_f32(-self))
    }
    /// tanh(x) = 2 sigmoid(2x) - 1 (absolute error about 1e-7).
    #[inline(always)]
    fn tanh_act(self) -> f32 {
        2.0 / (1.0 + exp_f32(-2.0 * self)) - 1.0
    }
    fn pack(b: Mat<f32>) -> Option<super::packed::Panels<f32>> {
        super::packed::pack_f32(b)
    }
    fn mul_panels(dst: &mut [f32], dst_stride: usize, a: Mat<f32>, b: &super::packed::Panels<f32>, add: bool) {
        super::packed::mul_panels_f32(dst, dst_stride, a, b, add)
    }
}

/// exp(x) for f32 without branches or calls (where the caller is compiled with FMA, as the
/// per-CPU copies of the gate passes are: elsewhere each multiply-add is a libm call).
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 * 2^23: adding it rounds to a whole number, which then sits in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let shifted = x.mul_add(LOG2E, ROUND);
    let n = shifted - ROUND;
    let k = shifted.to_bits() as i32 - ROUND.to_bits() as i32;
    let r = (-n).mul_add(LN2_LO, (-n).mul_add(LN2_HI, x));
    let mut p = 1.987_569_1e-4_f32;
    p = p.mul_add(r, 1.398_199_9e-3);
    p = p.mul_add(r, 8.333_452e-3);
    p = p.mul_add(r, 4.166_579_6e-2);
    p = p.mul_add(r, 1.666_666_5e-1);
    p = p.mul_add(r, 0.5);
    let y = (p * r).mul_add(r, r) + 1.0;
    y * f32::from_bits(((k + 127) << 23) as u32)
}

#[cfg(test)]
mod tests {
    use super::{exp_f32, Real};

    #[test]
    fn fast_activations_stay_within_their_error_bounds() {
        let mut worst = (0.0f64, 0.0f64, 0.0f64);
        for k in -200_000..=200_000 {
            let x = k as f32 * 4.4e-4;
            let e = (x as f64).exp();
            if x >= -87.0 {
                worst.0 = worst.0.max(((exp_f32(x) as f64) - e).abs() / e);
            }
            worst.1 = worst.1.max(((x.sigmoid() as f64) - 1.0 / (1.0 + (-x as f64).exp())).abs());
            worst.2 = worst.2.max(((x.tanh_act() as f64) - (x as f64).tanh()).abs());
        }
        assert!(worst.0 < 3e-7 && worst.1 < 2e-7 && worst.2 < 3e-7, "{worst:?}");
        assert_eq!(exp_f32(-1000.0), exp_f32(-87.0), "inputs are clamped, never overflow");
        assert!((500.0f32).sigmoid() == 1.0 && (-500.0f32).sigmoid() < 1e-37 && (30.0f32).tanh_act() == 1.0);
    }
}
