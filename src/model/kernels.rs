//! The dense kernels the fused layers share: matrix products on the `gemm` crate (AVX-512 where
//! the CPU has it, chosen at run time), column sums, and reading candle's CPU storage.

use candle_core::{CpuStorage, Layout};
use num_traits::Float;

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

    /// The first `cols` columns.
    pub fn left(self, cols: usize) -> Self {
        assert!(cols <= self.cols);
        Self { cols, ..self }
    }

    fn fits(&self) -> bool {
        self.rows == 0 || self.cols == 0 || (self.rows - 1) * self.rs + (self.cols - 1) * self.cs < self.data.len()
    }
}

/// `dst` (row-major, `a.rows` x `b.cols`, row stride `dst_stride`) = `a` x `b`, plus `dst` when
/// `add`. One thread: these products are small, and the result repeats exactly.
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
