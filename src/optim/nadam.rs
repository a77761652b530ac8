//! Nadam: Keras 3's `Nadam` (Adam with Nesterov momentum and a momentum schedule).

use kiln_ir::DType;

use super::{scalar, step_as, LearningRate, Optimizer, OptimizerBase};
use crate::models::{Config, ObjectConfig};
use crate::{Result, Tensor, Variable};

/// Keras 3's `Nadam`, step for step. With `t = iterations + 1` and the momentum schedule
/// `u(t) = β₁ (1 - 0.5 · 0.96ᵗ)`, each call first sets `Π ← Π · u(t)` (a Variable starting
/// at 1), then per variable: `m += (g - m)(1 - β₁)`, `v += (g² - v)(1 - β₂)`,
/// `m̂ = u(t+1) m / (1 - Π u(t+1)) + (1 - u(t)) g / (1 - Π)`, `v̂ = v / (1 - β₂ᵗ)`,
/// `w -= lr m̂ / (sqrt(v̂) + ε)`. Defaults: β₁ 0.9, β₂ 0.999, ε 1e-7.
///
/// ```
/// use kiln::optim::{Nadam, Optimizer};
/// use kiln::{Tensor, Variable};
/// let w = Variable::new(Tensor::scalar(1.0f64));
/// Nadam::new(0.1).apply_gradients(&[(Tensor::scalar(3.0f64), &w)]).unwrap();
/// assert!(w.read().to_scalar::<f64>().unwrap() < 1.0);
/// ```
pub struct Nadam {
    beta_1: f64,
    beta_2: f64,
    epsilon: f64,
    base: OptimizerBase,
}

impl Nadam {
    /// The optimizer of a config written by [`Optimizer::get_config`] (its state is restored
    /// apart, by `kiln::models::load_model`).
    pub fn from_config(c: &Config) -> Result<Nadam> {
        Ok(Nadam::new(c.get::<f64>("learning_rate")?)
            .beta_1(c.get_or("beta_1", 0.9)?)
            .beta_2(c.get_or("beta_2", 0.999)?)
            .epsilon(c.get_or("epsilon", 1e-7)?))
    }

    /// Nadam with learning rate `lr` and Keras's defaults for the rest.
    pub fn new(lr: impl Into<LearningRate>) -> Nadam {
        Nadam {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
            base: OptimizerBase::new("Nadam", lr, &["momentum", "velocity"]),
        }
    }

    /// β₁ (default 0.9).
    pub fn beta_1(mut self, beta_1: f64) -> Nadam {
        self.beta_1 = beta_1;
        self
    }

    /// β₂ (default 0.999).
    pub fn beta_2(mut self, beta_2: f64) -> Nadam {
        self.beta_2 = beta_2;
        self
    }

    /// ε (default 1e-7).
    pub fn epsilon(mut self, epsilon: f64) -> Nadam {
        self.epsilon = epsilon;
        self
    }

    /// Keras's `_u_product`, created with the dtype of the first variable updated.
    fn u_product(&self, dtype: DType) -> Result<Variable> {
        self.base.state_variable("u_product", || scalar(dtype, 1.0))
    }

    /// `β₁ (1 - 0.5 · 0.96^step)`.
    fn momentum_at(&self, step: &Tensor, dt: DType) -> Result<Tensor> {
        let decay_power = scalar(dt, 0.96)?.try_pow(step)?;
        scalar(dt, self.beta_1)?.try_mul(&scalar(dt, 1.0)?.try_sub(&scalar(dt, 0.5)?.try_mul(&decay_power)?)?)
    }
}

impl Optimizer for Nadam {
    fn base(&self) -> &OptimizerBase {
        &self.base
    }

    fn get_config(&self) -> Result<ObjectConfig> {
        Ok(self
            .base
            .base_config()?
            .with("beta_1", self.beta_1)
            .with("beta_2", self.beta_2)
            .with("epsilon", self.epsilon))
    }

    /// Advances the momentum schedule's product once per step.
    fn before_step(&self, grads_and_vars: &[(Tensor, &Variable)]) -> Result<()> {
        let Some((_, first)) = grads_and_vars.first() else { return Ok(()) };
        let u_product = self.u_product(first.dtype())?;
        let dt = u_product.dtype();
        let u_t = self.momentum_at(&step_as(self.base.iterations(), 1.0, dt)?, dt)?;
        u_product.assign(&u_product.read().try_mul(&u_t)?)
    }

    fn update_step(&self, g: &Tensor, var: &Variable, lr: &Tensor) -> Result<()> {
        let u_product = &self.u_product(var.dtype())?;
        let dt = var.dtype();
        let slots = self.base.slots(var)?;
        let (m, v) = (&slots[0], &slots[1]);
        let one = scalar(dt, 1.0)?;
        let local_step = step_as(self.base.iterations(), 1.0, dt)?;
        let next_step = step_as(self.base.iterations(), 2.0, dt)?;
        let u_t = self.momentum_at(&local_step, dt)?;
        let u_t_1 = self.momentum_at(&next_step, dt)?;
        let u_product_t = u_product.read().try_cast(dt)?;
        let u_product_t_1 = u_product_t.try_mul(&u_t_1)?;
        let beta_2_power = scalar(dt, self.beta_2)?.try_pow(&local_step)?;
        m.assign_add(&g.try_sub(&m.read())?.try_mul(&scalar(dt, 1.0 - self.beta_1)?)?)?;
        v.assign_add(&g.try_square()?.try_sub(&v.read())?.try_mul(&scalar(dt, 1.0 - self.beta_2)?)?)?;
        let m_hat = u_t_1
            .try_mul(&m.read())?
            .try_div(&one.try_sub(&u_product_t_1)?)?
            .try_add(&one.try_sub(&u_t)?.try_mul(g)?.try_div(&one.try_sub(&u_product_t)?)?)?;
        let v_hat = v.read().try_div(&one.try_sub(&beta_2_power)?)?;
        var.assign_sub(&m_hat.try_mul(lr)?.try_div(&v_hat.try_sqrt()?.try_add(&scalar(dt, self.epsilon)?)?)?)
    }
}
