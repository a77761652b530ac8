//! RMSprop: Keras 3's `RMSprop` (optionally with momentum and centered).

use kiln_ir::DType;

use super::slots::Slots;
use super::{apply_each, new_iterations, scalar, LearningRate, Optimizer};
use crate::{Result, Tensor, Variable};

/// Keras 3's `RMSprop`: `v = ρ v + (1-ρ) g²`; `inc = lr g / sqrt(v + ε)` (centered:
/// `a = ρ a + (1-ρ) g`, `inc = lr g / sqrt(v - a² + ε)`); then `w -= inc`, or with momentum
/// `μ`: `m = μ m + inc; w -= m`. Defaults: ρ 0.9, momentum 0, ε 1e-7, not centered.
///
/// ```
/// use kiln::optim::{Optimizer, RMSprop};
/// use kiln::{Tensor, Variable};
/// let w = Variable::new(Tensor::scalar(1.0f64));
/// RMSprop::new(0.01).apply_gradients(&[(Tensor::scalar(2.0f64), &w)]).unwrap();
/// let expected = 1.0 - 0.01 * 2.0 / (0.1f64 * 4.0 + 1e-7).sqrt();
/// assert!((w.read().to_scalar::<f64>().unwrap() - expected).abs() < 1e-12);
/// ```
pub struct RMSprop {
    lr: LearningRate,
    rho: f64,
    momentum: f64,
    epsilon: f64,
    centered: bool,
    iterations: Variable,
    slots: Slots,
}

impl RMSprop {
    /// RMSprop with learning rate `lr` and Keras's defaults for the rest.
    pub fn new(lr: impl Into<LearningRate>) -> RMSprop {
        RMSprop {
            lr: lr.into(),
            rho: 0.9,
            momentum: 0.0,
            epsilon: 1e-7,
            centered: false,
            iterations: new_iterations("RMSprop"),
            slots: Slots::new("RMSprop", vec!["velocity", "momentum", "average_gradient"]),
        }
    }

    /// Discounting factor ρ for the squared-gradient average (default 0.9).
    pub fn rho(mut self, rho: f64) -> RMSprop {
        self.rho = rho;
        self
    }

    /// Momentum μ (default 0).
    pub fn momentum(mut self, momentum: f64) -> RMSprop {
        self.momentum = momentum;
        self
    }

    /// ε added under the square root (default 1e-7).
    pub fn epsilon(mut self, epsilon: f64) -> RMSprop {
        self.epsilon = epsilon;
        self
    }

    /// Normalize by the centered second moment (the gradient's variance estimate).
    pub fn centered(mut self, centered: bool) -> RMSprop {
        self.centered = centered;
        self
    }

    /// The step counter and the slot Variables created so far.
    pub fn variables(&self) -> Vec<Variable> {
        let mut v = vec![self.iterations.clone()];
        v.extend(self.slots.all());
        v
    }

    fn update(&self, g: &Tensor, var: &Variable, lr: &Tensor) -> Result<()> {
        let dt = var.dtype();
        let slots = self.slots.of(var)?;
        let (velocity, momentum, average) = (&slots[0], &slots[1], &slots[2]);
        let rho = scalar(dt, self.rho)?;
        let one_minus_rho = scalar(dt, 1.0 - self.rho)?;
        velocity.assign(&rho.try_mul(&velocity.read())?.try_add(&one_minus_rho.try_mul(&g.try_square()?)?)?)?;
        let denominator = if self.centered {
            average.assign(&rho.try_mul(&average.read())?.try_add(&one_minus_rho.try_mul(g)?)?)?;
            velocity.read().try_sub(&average.read().try_square()?)?.try_add(&scalar(dt, self.epsilon)?)?
        } else {
            velocity.read().try_add(&scalar(dt, self.epsilon)?)?
        };
        let increment = lr.try_mul(g)?.try_div(&denominator.try_sqrt()?)?;
        if self.momentum > 0.0 {
            momentum.assign(&scalar(dt, self.momentum)?.try_mul(&momentum.read())?.try_add(&increment)?)?;
            var.assign_sub(&momentum.read())
        } else {
            var.assign_sub(&increment)
        }
    }
}

impl Optimizer for RMSprop {
    fn variables(&self) -> Vec<Variable> {
        RMSprop::variables(self)
    }

    fn apply_gradients(&self, grads_and_vars: &[(Tensor, &Variable)]) -> Result<()> {
        apply_each(self, "RMSprop", grads_and_vars, |g, var, lr| self.update(g, var, lr))
    }

    fn iterations(&self) -> &Variable {
        &self.iterations
    }

    fn learning_rate(&self, dtype: DType) -> Result<Tensor> {
        self.lr.at(&self.iterations.read(), dtype)
    }
}
