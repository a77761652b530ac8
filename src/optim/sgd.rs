//! Stochastic gradient descent with optional (Nesterov) momentum: Keras 3's `SGD`.

use super::{scalar, LearningRate, Optimizer, OptimizerBase};
use crate::models::{Config, ObjectConfig};
use crate::{Result, Tensor, Variable};

/// Keras 3's `SGD`. Without momentum: `w -= lr * g`. With momentum `μ`:
/// `m = μ m - lr g`, then `w += m`, or with Nesterov `w += μ m - lr g`.
///
/// ```
/// use kiln::optim::{Optimizer, SGD};
/// use kiln::{Tensor, Variable};
/// let w = Variable::new(Tensor::scalar(1.0f64));
/// let opt = SGD::new(0.1).momentum(0.9).nesterov(true);
/// opt.apply_gradients(&[(Tensor::scalar(1.0f64), &w)]).unwrap();
/// // m = -0.1; w += 0.9 * -0.1 - 0.1
/// assert!((w.read().to_scalar::<f64>().unwrap() - 0.81).abs() < 1e-12);
/// ```
pub struct SGD {
    momentum: f64,
    nesterov: bool,
    base: OptimizerBase,
}

impl SGD {
    /// The optimizer of a config written by [`Optimizer::get_config`] (its state is restored
    /// apart, by `kiln::models::load_model`).
    pub fn from_config(c: &Config) -> Result<SGD> {
        let momentum: f64 = c.get_or("momentum", 0.0)?;
        if !(0.0..=1.0).contains(&momentum) {
            return Err(crate::Error::invalid("SGD", format!("momentum must be in [0, 1], got {momentum}")));
        }
        Ok(SGD::new(c.get::<f64>("learning_rate")?).momentum(momentum).nesterov(c.get_or("nesterov", false)?))
    }

    /// Plain SGD with learning rate `lr` (a constant or a schedule).
    pub fn new(lr: impl Into<LearningRate>) -> SGD {
        SGD { momentum: 0.0, nesterov: false, base: OptimizerBase::new("SGD", lr, &["momentum"]) }
    }

    /// Momentum `μ` in `[0, 1]` (Keras default 0).
    pub fn momentum(mut self, momentum: f64) -> SGD {
        assert!((0.0..=1.0).contains(&momentum), "SGD momentum must be in [0, 1], got {momentum}");
        self.momentum = momentum;
        self
    }

    /// Nesterov momentum (Keras default false).
    pub fn nesterov(mut self, nesterov: bool) -> SGD {
        self.nesterov = nesterov;
        self
    }
}

impl Optimizer for SGD {
    fn base(&self) -> &OptimizerBase {
        &self.base
    }

    fn get_config(&self) -> Result<ObjectConfig> {
        Ok(self.base.base_config()?.with("momentum", self.momentum).with("nesterov", self.nesterov))
    }

    fn update_step(&self, g: &Tensor, var: &Variable, lr: &Tensor) -> Result<()> {
        if self.momentum == 0.0 {
            return var.assign_sub(&g.try_mul(lr)?);
        }
        let m = &self.base.slots(var)?[0];
        let mu = scalar(var.dtype(), self.momentum)?;
        m.assign(&m.read().try_mul(&mu)?.try_sub(&g.try_mul(lr)?)?)?;
        if self.nesterov {
            var.assign_add(&m.read().try_mul(&mu)?.try_sub(&g.try_mul(lr)?)?)
        } else {
            var.assign_add(&m.read())
        }
    }
}
