//! Right-hand matrices packed once for many products, and the AVX-512 kernel that multiplies by
//! them.
//!
//! A layer's weights multiply every step of a sequence (the recurrent product, 30 times per
//! batch) and every batch of an inference pass, but the `gemm` crate packs both operands again on
//! every call. Here the weights are packed once into panels of 16 columns, and the kernel
//! broadcasts the left matrix straight from its rows (no packing of the activations at all) into
//! 6 rows x 4 panels of accumulators, 24 of the 32 vector registers. Measured one thread against
//! `gemm` (packing not counted, as it happens once per sequence or pass) and PyTorch's matmul
//! (oneDNN) on this project's shapes: 64x64x256 158 against 104-114 and 112 GFLOP/s, 64x256x64
//! 168 against 100-105 and 103, 256x80x256 161-168 against 148-151 and 146-149.
//!
//! f32 on a CPU with AVX-512 only; everything else (f64, other CPUs, a left matrix whose rows are
//! not contiguous) goes through `kernels::matmul`. Each output row is summed in the same order
//! whatever rows share its block, so splitting a batch across threads gives the same numbers.

use super::kernels::{matmul, Mat, Real};

/// Columns per panel: one AVX-512 register of f32.
const LANES: usize = 16;

/// A right-hand matrix (`k` x `n`) packed for the kernel where the element type and CPU have one,
/// with the matrix itself kept for the fallback.
pub struct Packed<'a, F> {
    b: Mat<'a, F>,
    panels: Option<Panels<F>>,
}

/// A `k` x `n` matrix as the kernel's panels. Only `pack_f32` makes them, and only on a CPU with
/// AVX-512 (as `kernels::cpu()` reports it) and for k >= 1: holding panels is the kernel's
/// licence to run, so `mul_panels_f32` can be a safe function.
pub struct Panels<F> {
    data: Vec<F>,
    k: usize,
    n: usize,
}

impl<'a, F: Real> Packed<'a, F> {
    pub fn new(b: Mat<'a, F>) -> Self {
        Self { b, panels: F::pack(b) }
    }
}

/// `dst` (row-major, `a.rows` x `b`'s columns, row stride `dst_stride`) = `a` x `b`, plus `dst`
/// when `add`, on the calling thread.
pub fn matmul_packed<F: Real>(dst: &mut [F], dst_stride: usize, a: Mat<F>, b: &Packed<F>, add: bool) {
    match &b.panels {
        Some(panels) if a.cs == 1 => F::mul_panels(dst, dst_stride, a, panels, add),
        _ => matmul(dst, dst_stride, a, b.b, add),
    }
}

/// `b` as panels of 16 columns (zeros past the last column): panel `p` holds, for each row `r`,
/// columns `16p..16p+16`, at `(p * k + r) * 16`. None without AVX-512, and for an empty inner
/// dimension (k = 0), which the fallback handles.
pub(super) fn pack_f32(b: Mat<f32>) -> Option<Panels<f32>> {
    let (k, n) = (b.rows, b.cols);
    if super::kernels::cpu() < super::kernels::Cpu::Avx512 || k == 0 {
        return None;
    }
    let mut out = vec![0.0; n.div_ceil(LANES) * k * LANES];
    for (p, panel) in out.chunks_exact_mut(k * LANES).enumerate() {
        let cols = LANES.min(n - p * LANES);
        if b.rs == 1 {
            // A transposed matrix (a layer's W read as W^T): read each column along its length.
            for j in 0..cols {
                let col = &b.data[(p * LANES + j) * b.cs..];
                for (r, v) in panel.iter_mut().skip(j).step_by(LANES).enumerate() {
                    *v = col[r];
                }
            }
        } else {
            for (r, row) in panel.chunks_exact_mut(LANES).enumerate() {
                for (j, v) in row.iter_mut().enumerate().take(cols) {
                    *v = b.data[r * b.rs + (p * LANES + j) * b.cs];
                }
            }
        }
    }
    Some(Panels { data: out, k, n })
}

/// `dst = a x panels (+ dst)` for the panels of a `k` x `n` matrix; `a` has contiguous rows.
pub(super) fn mul_panels_f32(dst: &mut [f32], dst_stride: usize, a: Mat<f32>, panels: &Panels<f32>, add: bool) {
    let Panels { data: panels, k, n } = panels;
    let (panels, k, n) = (panels.as_slice(), *k, *n);
    let m = a.rows;
    assert!(a.cs == 1 && a.cols == k && panels.len() == n.div_ceil(LANES) * k * LANES);
    assert!(m == 0 || (m - 1) * a.rs + k <= a.data.len());
    assert!(m == 0 || n == 0 || (m - 1) * dst_stride + n <= dst.len());
    if m == 0 || n == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `Panels` exist only where the CPU has AVX-512 (`pack_f32` is their one maker), and
    // every index the kernel touches lies inside the slices (checked above).
    unsafe {
        avx512::mul(dst, dst_stride, (a.data, a.rs, m), (panels, k, n), add)
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::LANES;

    /// Rows of `a` per block and panels per block: 6 x 4 accumulators.
    const MR: usize = 6;
    const NP: usize = 4;
    /// The rows are run in groups of this many, each over the whole inner dimension in slices of
    /// this many, so that a block's panels (4 x 128 x 64 bytes) and rows stay in the level-1 cache,
    /// and a group's outputs in level 2 while its rows stream in from memory (rows outside, slices
    /// inside: 152 against 143 GFLOP/s on the MLP's 2,400-wide first layer over fresh inputs).
    const KC: usize = 128;
    const MC: usize = 48;

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn mul(
        dst: &mut [f32],
        dst_stride: usize,
        (a, a_rs, m): (&[f32], usize, usize),
        (panels, k, n): (&[f32], usize, usize),
        add: bool,
    ) {
        let np = n.div_ceil(LANES);
        let panel_len = k * LANES;
        for m0 in (0..m).step_by(MC) {
            let m1 = (m0 + MC).min(m);
            for k0 in (0..k).step_by(KC) {
                let kc = KC.min(k - k0);
                // Later slices of the inner dimension add to what the first wrote.
                let add = add || k0 > 0;
                for p0 in (0..np).step_by(NP) {
                    let npg = NP.min(np - p0);
                    // The lanes of the block's last panel that hold columns.
                    let tail = (n - p0 * LANES).min(npg * LANES) - (npg - 1) * LANES;
                    let last = if tail == LANES { u16::MAX } else { (1u16 << tail) - 1 };
                    let b = panels.as_ptr().add(p0 * panel_len + k0 * LANES);
                    for r0 in (m0..m1).step_by(MR) {
                        let mr = MR.min(m1 - r0);
                        let ap = a.as_ptr().add(r0 * a_rs + k0);
                        let dp = dst.as_mut_ptr().add(r0 * dst_stride + p0 * LANES);
                        let args = (ap, a_rs, kc, b, panel_len, dp, dst_stride, last, add);
                        macro_rules! dispatch {
                            ($($rows:literal)*) => {
                                match (mr, npg) {
                                    $(
                                        ($rows, 1) => block::<$rows, 1>(args),
                                        ($rows, 2) => block::<$rows, 2>(args),
                                        ($rows, 3) => block::<$rows, 3>(args),
                                        ($rows, _) => block::<$rows, 4>(args),
                                    )*
                                    _ => unreachable!("a block has 1 to {MR} rows"),
                                }
                            };
                        }
                        dispatch!(1 2 3 4 5 6);
                    }
                }
            }
        }
    }

    type BlockArgs = (*const f32, usize, usize, *const f32, usize, *mut f32, usize, u16, bool);

    /// `R` rows x `P` panels of the output: `k` broadcasts of each row's element against each
    /// panel's row, then one store per register (masked in the last panel, added to what is
    /// there when `add`).
    #[inline(always)]
    unsafe fn block<const R: usize, const P: usize>((a, a_rs, k, b, panel_len, dst, dst_stride, last, add): BlockArgs) {
        let mut acc = [[_mm512_setzero_ps(); P]; R];
        for kk in 0..k {
            let mut bv = [_mm512_setzero_ps(); P];
            for (p, v) in bv.iter_mut().enumerate() {
                *v = _mm512_loadu_ps(b.add(p * panel_len + kk * LANES));
            }
            for (r, row) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*a.add(r * a_rs + kk));
                for (acc, bv) in row.iter_mut().zip(&bv) {
                    *acc = _mm512_fmadd_ps(av, *bv, *acc);
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            for (p, acc) in row.iter().enumerate() {
                let mask = if p + 1 == P { last } else { u16::MAX };
                let d = dst.add(r * dst_stride + p * LANES);
                let v = if add { _mm512_add_ps(_mm512_maskz_loadu_ps(mask, d), *acc) } else { *acc };
                _mm512_mask_storeu_ps(d, mask, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::{matmul_packed, Packed};
    use crate::model::kernels::Mat;

    /// The packed product against a plain triple loop in f64, over sizes around every edge of the
    /// kernel (rows 1-13 around the 6-row blocks and 48-row groups, columns around 16-column
    /// panels and 4-panel blocks, inner sizes past the 128 slice), strided and transposed
    /// operands, and with and without adding to the output.
    #[test]
    fn packed_products_equal_the_plain_product() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut worst = 0.0f64;
        for &(m, k, n) in
            &[(1, 1, 1), (5, 3, 17), (6, 16, 64), (7, 129, 65), (13, 80, 256), (49, 300, 50), (64, 64, 100)]
        {
            for transposed in [false, true] {
                for add in [false, true] {
                    let a: Vec<f32> = (0..m * (k + 3)).map(|_| rng.gen_range(-1.0..1.0)).collect();
                    let b: Vec<f32> = (0..k * n).map(|_| rng.gen_range(-1.0..1.0)).collect();
                    let stride = n + 5;
                    let before: Vec<f32> = (0..m * stride).map(|_| rng.gen_range(-1.0..1.0)).collect();
                    // A row stride longer than the row; b as given or as the transpose of an n x k.
                    let am = Mat::rows(&a, m, k, k + 3);
                    let bm = if transposed { Mat::rows(&b, n, k, k).t() } else { Mat::rows(&b, k, n, n) };
                    let mut dst = before.clone();
                    matmul_packed(&mut dst, stride, am, &Packed::new(bm), add);
                    for r in 0..m {
                        for c in 0..stride {
                            let want = if c >= n {
                                before[r * stride + c] as f64
                            } else {
                                let sum: f64 = (0..k)
                                    .map(|j| am.data[r * am.rs + j] as f64 * bm.data[j * bm.rs + c * bm.cs] as f64)
                                    .sum();
                                sum + if add { before[r * stride + c] as f64 } else { 0.0 }
                            };
                            worst = worst.max((dst[r * stride + c] as f64 - want).abs() / (1.0 + want.abs()));
                        }
                    }
                }
            }
        }
        assert!(worst < 1e-5, "largest relative difference {worst:e}");
    }
}
