//! Adam: Keras 3's `Adam` (optionally AMSGrad).

use super::{scalar, step_as, LearningRate, Optimizer, OptimizerBase};
use crate::models::{Config, ObjectConfig};
use crate::{Result, Tensor, Variable};

/// Keras 3's `Adam`, step for step: with `t = iterations + 1`,
/// `α = lr · sqrt(1 - β₂ᵗ) / (1 - β₁ᵗ)`, `m += (g - m)(1 - β₁)`, `v += (g² - v)(1 - β₂)`
/// (AMSGrad: `v̂ = max(v̂, v)` used for `v`), `w -= m α / (sqrt(v) + ε)`.
/// Defaults: β₁ 0.9, β₂ 0.999, ε 1e-7, no AMSGrad.
///
/// ```
/// use kiln::optim::{Adam, Optimizer};
/// use kiln::{Tensor, Variable};
/// let w = Variable::new(Tensor::scalar(1.0f64));
/// Adam::new(0.1).apply_gradients(&[(Tensor::scalar(3.0f64), &w)]).unwrap();
/// // The first Adam step moves by about lr, whatever the gradient's scale.
/// assert!((w.read().to_scalar::<f64>().unwrap() - 0.9).abs() < 1e-6);
/// ```
pub struct Adam {
    beta_1: f64,
    beta_2: f64,
    epsilon: f64,
    amsgrad: bool,
    base: OptimizerBase,
}

impl Adam {
    /// The optimizer of a config written by [`Optimizer::get_config`] (its state is restored
    /// apart, by `kiln::models::load_model`).
    pub fn from_config(c: &Config) -> Result<Adam> {
        Ok(Adam::new(c.get::<f64>("learning_rate")?)
            .beta_1(c.get_or("beta_1", 0.9)?)
            .beta_2(c.get_or("beta_2", 0.999)?)
            .epsilon(c.get_or("epsilon", 1e-7)?)
            .amsgrad(c.get_or("amsgrad", false)?))
    }

    /// Adam with learning rate `lr` and Keras's defaults for the rest.
    pub fn new(lr: impl Into<LearningRate>) -> Adam {
        Adam {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
            amsgrad: false,
            base: OptimizerBase::new("Adam", lr, &["momentum", "velocity", "velocity_hat"]),
        }
    }

    /// β₁, the first-moment decay (default 0.9).
    pub fn beta_1(mut self, beta_1: f64) -> Adam {
        self.beta_1 = beta_1;
        self
    }

    /// β₂, the second-moment decay (default 0.999).
    pub fn beta_2(mut self, beta_2: f64) -> Adam {
        self.beta_2 = beta_2;
        self
    }

    /// ε (default 1e-7).
    pub fn epsilon(mut self, epsilon: f64) -> Adam {
        self.epsilon = epsilon;
        self
    }

    /// The AMSGrad variant (default false).
    pub fn amsgrad(mut self, amsgrad: bool) -> Adam {
        self.amsgrad = amsgrad;
        self
    }
}

impl Optimizer for Adam {
    fn base(&self) -> &OptimizerBase {
        &self.base
    }

    fn get_config(&self) -> Result<ObjectConfig> {
        Ok(self
            .base
            .base_config()?
            .with("beta_1", self.beta_1)
            .with("beta_2", self.beta_2)
            .with("epsilon", self.epsilon)
            .with("amsgrad", self.amsgrad))
    }

    fn update_step(&self, g: &Tensor, var: &Variable, lr: &Tensor) -> Result<()> {
        let dt = var.dtype();
        let slots = self.base.slots(var)?;
        let (m, v, v_hat) = (&slots[0], &slots[1], &slots[2]);
        let local_step = step_as(self.base.iterations(), 1.0, dt)?;
        let beta_1_power = scalar(dt, self.beta_1)?.try_pow(&local_step)?;
        let beta_2_power = scalar(dt, self.beta_2)?.try_pow(&local_step)?;
        let one = scalar(dt, 1.0)?;
        let alpha = lr.try_mul(&one.try_sub(&beta_2_power)?.try_sqrt()?)?.try_div(&one.try_sub(&beta_1_power)?)?;
        m.assign_add(&g.try_sub(&m.read())?.try_mul(&scalar(dt, 1.0 - self.beta_1)?)?)?;
        v.assign_add(&g.try_square()?.try_sub(&v.read())?.try_mul(&scalar(dt, 1.0 - self.beta_2)?)?)?;
        let second = if self.amsgrad {
            v_hat.assign(&v_hat.read().try_maximum(&v.read())?)?;
            v_hat.read()
        } else {
            v.read()
        };
        var.assign_sub(&m.read().try_mul(&alpha)?.try_div(&second.try_sqrt()?.try_add(&scalar(dt, self.epsilon)?)?)?)
    }
}
