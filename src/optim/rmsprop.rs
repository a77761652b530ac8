//! RMSprop: Keras 3's `RMSprop` (optionally with momentum and centered).

use super::{scalar, LearningRate, Optimizer, OptimizerBase};
use crate::models::{Config, ObjectConfig};
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
    rho: f64,
    momentum: f64,
    epsilon: f64,
    centered: bool,
    base: OptimizerBase,
}

impl RMSprop {
    /// The optimizer of a config written by [`Optimizer::get_config`] (its state is restored
    /// apart, by `kiln::models::load_model`).
    pub fn from_config(c: &Config) -> Result<RMSprop> {
        Ok(RMSprop::new(c.get::<f64>("learning_rate")?)
            .rho(c.get_or("rho", 0.9)?)
            .momentum(c.get_or("momentum", 0.0)?)
            .epsilon(c.get_or("epsilon", 1e-7)?)
            .centered(c.get_or("centered", false)?))
    }

    /// RMSprop with learning rate `lr` and Keras's defaults for the rest.
    pub fn new(lr: impl Into<LearningRate>) -> RMSprop {
        RMSprop {
            rho: 0.9,
            momentum: 0.0,
            epsilon: 1e-7,
            centered: false,
            base: OptimizerBase::new("RMSprop", lr, &["velocity", "momentum", "average_gradient"]),
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
}

impl Optimizer for RMSprop {
    fn base(&self) -> &OptimizerBase {
        &self.base
    }

    fn get_config(&self) -> Result<ObjectConfig> {
        Ok(self
            .base
            .base_config()?
            .with("rho", self.rho)
            .with("momentum", self.momentum)
            .with("epsilon", self.epsilon)
            .with("centered", self.centered))
    }

    fn update_step(&self, g: &Tensor, var: &Variable, lr: &Tensor) -> Result<()> {
        let dt = var.dtype();
        let slots = self.base.slots(var)?;
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
