//! A linear layer (`y = x W^T + b`, optionally followed by ReLU and a dropout mask) as one candle
//! op whose backward computes the input gradient only when the input needs one: the first layer
//! of a network reads the data, and candle's own matmul backward would spend about a third of the
//! MLP's backward on a gradient nobody uses. ReLU and dropout ride along in the same pass over
//! the output instead of two more tensor ops each way.

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};
use num_traits::Float;

use super::kernels::{borrow, column_sums, contiguous, matmul, repeat_rows, Mat};
use super::packed::{matmul_packed, Packed};

/// `x` [B, K], `w` [N, K], `b` [N] -> [B, N].
pub fn linear(x: &Tensor, w: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op3(w, b, Linear { input_grad: x.track_op(), after: After::Nothing })
}

/// `relu(x W^T + b) * mask`, where `mask` (B x N values: 0 for a dropped unit, 1/(1-p) for a
/// kept one) is inverted dropout, or None outside training.
pub fn linear_relu(x: &Tensor, w: &Tensor, b: &Tensor, mask: Option<Vec<f32>>) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op3(w, b, Linear { input_grad: x.track_op(), after: After::Relu(mask) })
}

/// A layer's weights for inference: `W^T` packed once for every batch and thread, and the bias.
pub(crate) struct Dense<'a> {
    w: Packed<'a, f32>,
    b: &'a [f32],
}

impl<'a> Dense<'a> {
    /// `w` [N, K], `b` [N].
    pub(crate) fn new(w: &'a [f32], b: &'a [f32]) -> Self {
        let (n, k) = (b.len(), w.len() / b.len().max(1));
        Self { w: Packed::new(Mat::rows(w, n, k, k).t()), b }
    }

    /// `x W^T + b` for `rows` rows of `x`, with ReLU after it when `relu`, without gradients:
    /// inference, one thread.
    pub(crate) fn infer(&self, x: &[f32], rows: usize, relu: bool) -> Vec<f32> {
        let (n, k) = (self.b.len(), x.len() / rows.max(1));
        let mut y = repeat_rows(self.b, rows);
        matmul_packed(&mut y, n, Mat::rows(x, rows, k, k), &self.w, true);
        if relu {
            y.iter_mut().for_each(|y| *y = y.max(0.0));
        }
        y
    }
}

struct Linear {
    input_grad: bool,
    after: After,
}

/// What follows the product.
enum After {
    Nothing,
    /// ReLU, then the dropout mask if any.
    Relu(Option<Vec<f32>>),
}

fn dims(x: &Layout, w: &Layout, b: &Layout) -> candle_core::Result<(usize, usize, usize)> {
    let (rows, k) = x.shape().dims2()?;
    let (n, k2) = w.shape().dims2()?;
    if k2 != k || b.shape().dims1()? != n {
        candle_core::bail!("linear: shapes x {:?}, w {:?}, b {:?} do not fit", x.dims(), w.dims(), b.dims());
    }
    Ok((rows, k, n))
}

impl Linear {
    fn forward<F: 'static + Float>(&self, x: &[F], w: &[F], b: &[F], (rows, k, n): (usize, usize, usize)) -> Vec<F> {
        let mut y: Vec<F> = repeat_rows(b, rows);
        matmul(&mut y, n, Mat::rows(x, rows, k, k), Mat::rows(w, n, k, k).t(), true);
        match &self.after {
            After::Nothing => {}
            After::Relu(None) => y.iter_mut().for_each(|y| *y = y.max(F::zero())),
            After::Relu(Some(mask)) => {
                y.iter_mut().zip(mask).for_each(|(y, &m)| *y = y.max(F::zero()) * F::from(m).unwrap())
            }
        }
        y
    }

    /// The gradient before ReLU and dropout from the one after them and the output `y`: a unit
    /// passes its gradient (times its mask) where its output is positive. None when nothing
    /// follows the product.
    fn pre_activation_grad<F: Float>(&self, y: &[F], g: &[F]) -> Option<Vec<F>> {
        let After::Relu(mask) = &self.after else { return None };
        let scale = |i: usize| mask.as_ref().map_or(F::one(), |m| F::from(m[i]).unwrap());
        Some(
            y.iter()
                .zip(g)
                .enumerate()
                .map(|(i, (&y, &g))| if y > F::zero() { g * scale(i) } else { F::zero() })
                .collect(),
        )
    }
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
        if matches!(&self.after, After::Relu(Some(m)) if m.len() != d.0 * d.2) {
            candle_core::bail!("linear: the dropout mask does not fit the output {}x{}", d.0, d.2);
        }
        let shape = Shape::from((d.0, d.2));
        Ok(match s1 {
            CpuStorage::F32(_) => (
                CpuStorage::F32(self.forward::<f32>(
                    contiguous(s1, l1, "x")?,
                    contiguous(s2, l2, "w")?,
                    contiguous(s3, l3, "b")?,
                    d,
                )),
                shape,
            ),
            CpuStorage::F64(_) => (
                CpuStorage::F64(self.forward::<f64>(
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
        y: &Tensor,
        g: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let d = dims(x.layout(), w.layout(), b.layout())?;
        let device = x.device();
        let g = g.contiguous()?;
        let (bx, bw, bg, by) = (borrow(x, "x"), borrow(w, "w"), borrow(&g, "the gradient"), borrow(y, "y"));
        macro_rules! run {
            ($ty:ty) => {{
                let pre = self.pre_activation_grad::<$ty>(by.slice()?, bg.slice()?);
                let g = pre.as_deref().map_or_else(|| bg.slice(), Ok)?;
                let (dx, dw, db) = backward::<$ty>((bx.slice()?, bw.slice()?, g), d, self.input_grad);
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

    /// ReLU and a dropout mask in the op against candle's relu and a product with the mask.
    #[test]
    fn linear_relu_with_a_mask_equals_candle_ops() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        for (rows, k, n) in [(1, 1, 1), (6, 9, 5), (64, 40, 33)] {
            let x = Var::from_tensor(&random(&mut rng, &[rows, k])).unwrap();
            let w = Var::from_tensor(&random(&mut rng, &[n, k])).unwrap();
            let b = Var::from_tensor(&random(&mut rng, &[n])).unwrap();
            let g = random(&mut rng, &[rows, n]);
            let mask: Vec<f32> = (0..rows * n).map(|_| if rng.gen::<f64>() < 0.3 { 0.0 } else { 1.0 / 0.7 }).collect();
            let mask_t =
                Tensor::from_vec(mask.iter().map(|&m| m as f64).collect::<Vec<_>>(), (rows, n), &Device::Cpu).unwrap();
            let diff =
                |a: &Tensor, b: &Tensor| (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap();
            let pre = x.matmul(&w.t().unwrap()).unwrap().broadcast_add(&b).unwrap().relu().unwrap();
            for (ours, theirs) in [
                (super::linear_relu(&x, &w, &b, Some(mask.clone())).unwrap(), (&pre * &mask_t).unwrap()),
                (super::linear_relu(&x, &w, &b, None).unwrap(), pre.clone()),
            ] {
                assert!(diff(&ours, &theirs) < 1e-12);
                let go = (ours * &g).unwrap().sum_all().unwrap().backward().unwrap();
                let gt = (theirs * &g).unwrap().sum_all().unwrap().backward().unwrap();
                for v in [&x, &w, &b] {
                    assert!(diff(go.get(v).unwrap(), gt.get(v).unwrap()) < 1e-12, "{rows}x{k}x{n}");
                }
            }
        }
    }
}
