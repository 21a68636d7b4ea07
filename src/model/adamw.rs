//! AdamW as PyTorch's defaults have it (betas 0.9, 0.999, eps 1e-8, decoupled weight decay).
//!
//! On CPU each parameter is updated in place in one pass over its weights, gradient and moments
//! (candle_nn's AdamW spends about ten allocating tensor ops a parameter a step, which was a third
//! of an MLP's training time); on other devices the same arithmetic runs as candle tensor ops.

use std::cell::RefCell;

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, InplaceOp2, Layout, Tensor, Var};

use super::kernels::contiguous;

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

pub struct AdamW {
    params: Vec<(Var, Moments)>,
    learning_rate: f64,
    weight_decay: f64,
    step: i32,
}

/// First and second moments of one parameter.
enum Moments {
    Cpu(Vec<f32>, Vec<f32>),
    Device(Tensor, Tensor),
}

impl AdamW {
    pub fn new(vars: Vec<Var>, learning_rate: f64, weight_decay: f64) -> candle_core::Result<Self> {
        let params = vars
            .into_iter()
            .map(|var| {
                let moments = if var.device().is_cpu() && var.dtype() == candle_core::DType::F32 {
                    Moments::Cpu(vec![0.0; var.elem_count()], vec![0.0; var.elem_count()])
                } else {
                    Moments::Device(var.zeros_like()?, var.zeros_like()?)
                };
                Ok((var, moments))
            })
            .collect::<candle_core::Result<_>>()?;
        Ok(Self { params, learning_rate, weight_decay, step: 0 })
    }

    /// Sets the learning rate of the next steps (the plateau schedule lowers it).
    pub fn set_learning_rate(&mut self, learning_rate: f64) {
        self.learning_rate = learning_rate;
    }

    pub fn learning_rate(&self) -> f64 {
        self.learning_rate
    }

    /// Gradients of `loss`, then one step.
    pub fn backward_step(&mut self, loss: &Tensor) -> candle_core::Result<()> {
        let grads = loss.backward()?;
        self.step(&grads)
    }

    pub fn step(&mut self, grads: &GradStore) -> candle_core::Result<()> {
        self.step += 1;
        let c = Constants {
            lr: self.learning_rate,
            decay: 1.0 - self.learning_rate * self.weight_decay,
            scale_m: 1.0 / (1.0 - BETA1.powi(self.step)),
            scale_v: 1.0 / (1.0 - BETA2.powi(self.step)),
        };
        for (var, moments) in &mut self.params {
            let Some(g) = grads.get(var) else { continue };
            match moments {
                Moments::Cpu(m, v) => var.inplace_op2(g, &Update { c, moments: RefCell::new((m, v)) })?,
                Moments::Device(m, v) => {
                    *m = ((&*m * BETA1)? + (g * (1.0 - BETA1))?)?;
                    *v = ((&*v * BETA2)? + (g.sqr()? * (1.0 - BETA2))?)?;
                    let step = ((&*m * c.scale_m)? / ((&*v * c.scale_v)?.sqrt()? + EPS)?)?;
                    var.set(&((var.as_tensor() * c.decay)? - (step * c.lr)?)?)?;
                }
            }
        }
        Ok(())
    }
}

#[derive(Clone, Copy)]
struct Constants {
    lr: f64,
    /// 1 - lr * weight decay.
    decay: f64,
    /// Bias corrections: 1 / (1 - beta^t).
    scale_m: f64,
    scale_v: f64,
}

/// One parameter's step, in place: the op's first tensor is the parameter, the second its gradient.
struct Update<'a> {
    c: Constants,
    moments: RefCell<(&'a mut Vec<f32>, &'a mut Vec<f32>)>,
}

impl InplaceOp2 for Update<'_> {
    fn name(&self) -> &'static str {
        "adamw"
    }

    fn cpu_fwd(&self, s1: &mut CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> candle_core::Result<()> {
        let g = contiguous::<f32>(s2, l2, "the gradient")?;
        let CpuStorage::F32(data) = s1 else { candle_core::bail!("adamw: the parameter must be f32") };
        let Some((lo, hi)) = l1.contiguous_offsets() else {
            candle_core::bail!("adamw: the parameter must be contiguous")
        };
        let p = &mut data[lo..hi];
        let mut moments = self.moments.borrow_mut();
        let (m, v) = &mut *moments;
        if p.len() != g.len() || m.len() != p.len() {
            candle_core::bail!("adamw: the gradient has {} values, the parameter {}", g.len(), p.len());
        }
        let (b1, b2, eps) = (BETA1 as f32, BETA2 as f32, EPS as f32);
        let (lr, decay, scale_m, scale_v) =
            (self.c.lr as f32, self.c.decay as f32, self.c.scale_m as f32, self.c.scale_v as f32);
        for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * (g * g);
            *p = *p * decay - lr * (*m * scale_m) / ((*v * scale_v).sqrt() + eps);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor, Var};
    use candle_nn::{Optimizer, ParamsAdamW};

    /// Fifty steps on a quadratic against candle_nn's AdamW (the tensor-op version of the same
    /// arithmetic): the weights agree to f32 rounding.
    #[test]
    fn in_place_steps_match_candle_nn() {
        let start: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin()).collect();
        let target =
            Tensor::from_vec((0..37).map(|i| (i as f32 * 0.11).cos()).collect::<Vec<f32>>(), 37, &Device::Cpu).unwrap();
        let ours = Var::from_vec(start.clone(), 37, &Device::Cpu).unwrap();
        let theirs = Var::from_vec(start, 37, &Device::Cpu).unwrap();
        let mut a = super::AdamW::new(vec![ours.clone()], 0.05, 0.01).unwrap();
        let params = ParamsAdamW { lr: 0.05, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01 };
        let mut b = candle_nn::AdamW::new(vec![theirs.clone()], params).unwrap();
        let loss = |w: &Var| (w.as_tensor() - &target).unwrap().sqr().unwrap().sum_all().unwrap();
        for _ in 0..50 {
            a.backward_step(&loss(&ours)).unwrap();
            b.backward_step(&loss(&theirs)).unwrap();
        }
        let diff = (ours.as_tensor() - theirs.as_tensor()).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-5);
        let moved = (ours.as_tensor() - &target).unwrap().abs().unwrap().max_all().unwrap();
        assert!(moved.to_scalar::<f32>().unwrap() < 0.5, "it optimises");
    }

    /// The tensor-op path (other devices; f64 reaches it on CPU) against candle_nn's AdamW.
    #[test]
    fn tensor_op_steps_match_candle_nn() {
        let start: Vec<f64> = (0..11).map(|i| (i as f64 * 0.7).sin()).collect();
        let ours = Var::from_vec(start.clone(), 11, &Device::Cpu).unwrap();
        let theirs = Var::from_vec(start, 11, &Device::Cpu).unwrap();
        let mut a = super::AdamW::new(vec![ours.clone()], 0.05, 0.01).unwrap();
        let params = ParamsAdamW { lr: 0.05, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01 };
        let mut b = candle_nn::AdamW::new(vec![theirs.clone()], params).unwrap();
        for _ in 0..20 {
            a.backward_step(&ours.as_tensor().sqr().unwrap().sum_all().unwrap()).unwrap();
            b.backward_step(&theirs.as_tensor().sqr().unwrap().sum_all().unwrap()).unwrap();
        }
        let diff = (ours.as_tensor() - theirs.as_tensor()).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f64>().unwrap() < 1e-12);
    }
}
