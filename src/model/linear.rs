//! A linear layer (`y = x W^T + b`) as one candle op whose backward computes the input gradient
//! only when the input needs one: the first layer of a network reads the data, and candle's own
//! matmul backward would spend about a third of the MLP's backward on a gradient nobody uses.

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};
use num_traits::Float;

use super::kernels::{column_sums, contiguous, matmul, Mat};

/// `x` [B, K], `w` [N, K], `b` [N] -> [B, N].
pub fn linear(x: &Tensor, w: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op3(w, b, Linear { input_grad: x.track_op() })
}

struct Linear {
    input_grad: bool,
}

fn dims(x: &Layout, w: &Layout, b: &Layout) -> candle_core::Result<(usize, usize, usize)> {
    let (rows, k) = x.shape().dims2()?;
    let (n, k2) = w.shape().dims2()?;
    if k2 != k || b.shape().dims1()? != n {
        candle_core::bail!("linear: shapes x {:?}, w {:?}, b {:?} do not fit", x.dims(), w.dims(), b.dims());
    }
    Ok((rows, k, n))
}

fn forward<F: 'static + Float>(x: &[F], w: &[F], b: &[F], (rows, k, n): (usize, usize, usize)) -> Vec<F> {
    let mut y: Vec<F> = b.iter().copied().cycle().take(rows * n).collect();
    matmul(&mut y, n, Mat::rows(x, rows, k, k), Mat::rows(w, n, k, k).t(), true);
    y
}

/// The gradients of x (when asked), w and b from the gradient of y.
#[allow(clippy::type_complexity)]
fn backward<F: 'static + Float>(
    (x, w, g): (&[F], &[F], &[F]),
    (rows, k, n): (usize, usize, usize),
    input_grad: bool,
) -> (Option<Vec<F>>, Vec<F>, Vec<F>) {
    let gm = Mat::rows(g, rows, n, n);
    let mut dw = vec![F::zero(); n * k];
    matmul(&mut dw, k, gm.t(), Mat::rows(x, rows, k, k), false);
    let dx = input_grad.then(|| {
        let mut dx = vec![F::zero(); rows * k];
        matmul(&mut dx, k, gm, Mat::rows(w, n, k, k), false);
        dx
    });
    (dx, dw, column_sums(g, n))
}

impl CustomOp3 for Linear {
    fn name(&self) -> &'static str {
        "linear"
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
        let d = dims(l1, l2, l3)?;
        let shape = Shape::from((d.0, d.2));
        Ok(match s1 {
            CpuStorage::F32(_) => (
                CpuStorage::F32(forward::<f32>(
                    contiguous(s1, l1, "x")?,
                    contiguous(s2, l2, "w")?,
                    contiguous(s3, l3, "b")?,
                    d,
                )),
                shape,
            ),
            CpuStorage::F64(_) => (
                CpuStorage::F64(forward::<f64>(
                    contiguous(s1, l1, "x")?,
                    contiguous(s2, l2, "w")?,
                    contiguous(s3, l3, "b")?,
                    d,
                )),
                shape,
            ),
            _ => candle_core::bail!("linear: f32 or f64 only"),
        })
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _y: &Tensor,
        g: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let d = dims(x.layout(), w.layout(), b.layout())?;
        let device = x.device();
        macro_rules! run {
            ($ty:ty) => {{
                let v = |t: &Tensor| t.flatten_all()?.to_vec1::<$ty>();
                let (dx, dw, db) = backward::<$ty>((&v(x)?, &v(w)?, &v(g)?), d, self.input_grad);
                (
                    dx.map(|dx| Tensor::from_vec(dx, x.dims(), device)).transpose()?,
                    Tensor::from_vec(dw, w.dims(), device)?,
                    Tensor::from_vec(db, b.dims(), device)?,
                )
            }};
        }
        let (dx, dw, db) = match x.dtype() {
            candle_core::DType::F64 => run!(f64),
            _ => run!(f32),
        };
        Ok((dx, Some(dw), Some(db)))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor, Var};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random(rng: &mut ChaCha8Rng, shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        Tensor::from_vec((0..n).map(|_| rng.gen_range(-1.0..1.0)).collect::<Vec<f64>>(), shape, &Device::Cpu).unwrap()
    }

    /// The op against candle's own matmul and broadcast add, in f64, values and every gradient.
    #[test]
    fn linear_equals_candle_matmul_and_skips_an_untracked_input() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for (rows, k, n) in [(1, 1, 1), (5, 7, 3), (64, 33, 17)] {
            let x = Var::from_tensor(&random(&mut rng, &[rows, k])).unwrap();
            let w = Var::from_tensor(&random(&mut rng, &[n, k])).unwrap();
            let b = Var::from_tensor(&random(&mut rng, &[n])).unwrap();
            let g = random(&mut rng, &[rows, n]);
            let ours = super::linear(&x, &w, &b).unwrap();
            let theirs = x.matmul(&w.t().unwrap()).unwrap().broadcast_add(&b).unwrap();
            let diff =
                |a: &Tensor, b: &Tensor| (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap();
            assert!(diff(&ours, &theirs) < 1e-12);
            let go = (ours * &g).unwrap().sum_all().unwrap().backward().unwrap();
            let gt = (theirs * &g).unwrap().sum_all().unwrap().backward().unwrap();
            for v in [&x, &w, &b] {
                assert!(diff(go.get(v).unwrap(), gt.get(v).unwrap()) < 1e-12, "{rows}x{k}x{n}");
            }
            // An input that is data, not a variable, gets no gradient.
            let data = random(&mut rng, &[rows, k]);
            let go = (super::linear(&data, &w, &b).unwrap() * &g).unwrap().sum_all().unwrap().backward().unwrap();
            assert!(go.get(&data).is_none() && go.get(&w).is_some());
        }
    }
}
