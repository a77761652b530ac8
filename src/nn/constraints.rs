//! Weight constraints: anything implementing [`Constraint`] — a closure
//! `Fn(&Tensor) -> Tensor` projecting weights back onto an allowed set, or a type with a
//! config that whole-model saving can write. They are applied **after each optimizer
//! update**, by the training step calling [`super::Layer::apply_constraints`] right after
//! `apply_gradients` (as Keras's optimizer does for `variable.constraint`); the optimizer
//! itself knows nothing of layers.
//!
//! ```
//! use kiln::nn::constraints::{non_neg, Constraint};
//! use kiln::Tensor;
//! let w = Tensor::new(&[-1.0f32, 2.0]);
//! assert_eq!(non_neg().call(&w).to_vec::<f32>().unwrap(), vec![0.0, 2.0]);
//! // The seed's custom constraint, as a closure:
//! let my_positive_weights = |w: &Tensor| w.less(&w.scalar_like(0.0)).select(&w.zeros_like(), w);
//! assert_eq!(my_positive_weights.call(&w).to_vec::<f32>().unwrap(), vec![0.0, 2.0]);
//! ```

use crate::models::{no_config, Config, ObjectConfig};
use crate::{Result, Tensor};

/// Weights to projected weights of the same type. Closures are constraints; a type that
/// also implements [`Constraint::get_config`] survives whole-model saving.
pub trait Constraint: Send + Sync {
    /// The projection of `weights`.
    fn call(&self, weights: &Tensor) -> Tensor;

    /// The class name and config that rebuild this constraint; an `Err` by default.
    fn get_config(&self) -> Result<ObjectConfig> {
        Err(no_config("constraint", "(closure)", "implement Constraint::get_config on a type instead"))
    }
}

impl<F: Fn(&Tensor) -> Tensor + Send + Sync> Constraint for F {
    fn call(&self, weights: &Tensor) -> Tensor {
        self(weights)
    }
}

/// Zeroes negative weights (Keras `NonNeg`: `w · (w ≥ 0)`); [`non_neg`] makes one.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct NonNeg;

impl Constraint for NonNeg {
    fn call(&self, w: &Tensor) -> Tensor {
        w * &w.greater_equal(&w.scalar_like(0.0)).cast(w.dtype())
    }

    fn get_config(&self) -> Result<ObjectConfig> {
        Ok(ObjectConfig::new("NonNeg"))
    }
}

/// Keras `NonNeg`.
pub fn non_neg() -> NonNeg {
    NonNeg
}

/// Keras `MaxNorm`: rescales each slice along `axis` (default 0: each unit's incoming
/// weights of a Dense kernel) whose L2 norm exceeds `max_value`; [`max_norm`] makes one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MaxNorm {
    pub max_value: f64,
    pub axis: i64,
}

impl Constraint for MaxNorm {
    fn call(&self, w: &Tensor) -> Tensor {
        // √0 has an infinite derivative: a zero slice takes the root of 1 instead, so its
        // gradient is 0 (the select's) rather than inf·0 = NaN.
        let squares = w.square().sum(self.axis, true);
        let nonzero = squares.greater(&squares.scalar_like(0.0));
        let norms = nonzero.select(&nonzero.select(&squares, &squares.scalar_like(1.0)).sqrt(), &squares.zeros_like());
        let desired = norms.minimum(&norms.scalar_like(self.max_value)).maximum(&norms.scalar_like(0.0));
        w * &(desired / (norms + 1e-7))
    }

    fn get_config(&self) -> Result<ObjectConfig> {
        Ok(ObjectConfig::new("MaxNorm").with("max_value", self.max_value).with("axis", self.axis))
    }
}

impl MaxNorm {
    /// The constraint of a config written by [`Constraint::get_config`].
    pub fn from_config(c: &Config) -> Result<MaxNorm> {
        Ok(MaxNorm { max_value: c.get_or("max_value", 2.0)?, axis: c.get_or("axis", 0)? })
    }
}

/// Keras `MaxNorm(max_value, axis)`.
///
/// ```
/// use kiln::nn::constraints::{max_norm, Constraint};
/// let w = kiln::Tensor::new(&[[3.0f64, 0.1], [4.0, 0.1]]);
/// let c = max_norm(1.0, 0).call(&w).to_vec::<f64>().unwrap();
/// assert!((c[0] - 0.6).abs() < 1e-6 && (c[2] - 0.8).abs() < 1e-6 && (c[1] - 0.1).abs() < 1e-6);
/// ```
pub fn max_norm(max_value: f64, axis: i64) -> MaxNorm {
    MaxNorm { max_value, axis }
}
