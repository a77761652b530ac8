//! Weight regularizers: anything implementing [`Regularizer`] — a closure
//! `Fn(&Tensor) -> Tensor` giving a scalar penalty, or a type with a config that whole-model
//! saving can write (the chapter's `MyL1Regularizer(factor)`). A layer reports the penalties
//! of its weights in [`super::Layer::losses`], for the training step to add to the loss
//! (Keras's `add_loss`). Built-ins follow Keras 3.
//!
//! ```
//! use kiln::nn::regularizers::{l1_l2, l2, Regularizer};
//! use kiln::Tensor;
//! let w = Tensor::new(&[1.0f64, -2.0]);
//! assert!((l2(0.01).call(&w).to_scalar::<f64>().unwrap() - 0.05).abs() < 1e-12);
//! assert!((l1_l2(0.1, 0.01).call(&w).to_scalar::<f64>().unwrap() - 0.35).abs() < 1e-12);
//! // The seed's custom regularizer, as a closure:
//! let my_l1_regularizer = |w: &Tensor| (w * 0.01).abs().sum_all();
//! assert!((my_l1_regularizer.call(&w).to_scalar::<f64>().unwrap() - 0.03).abs() < 1e-12);
//! ```

use crate::models::{no_config, Config, ObjectConfig};
use crate::{Result, Tensor};

/// Weights to a scalar penalty. Closures are regularizers; a type that also implements
/// [`Regularizer::get_config`] (and is registered with
/// [`crate::models::CustomObjects::regularizer`]) survives whole-model saving.
///
/// ```
/// use kiln::models::{Config, ObjectConfig};
/// use kiln::nn::regularizers::Regularizer;
/// use kiln::{Result, Tensor};
/// /// The chapter's `MyL1Regularizer`.
/// struct MyL1Regularizer { factor: f64 }
/// impl Regularizer for MyL1Regularizer {
///     fn call(&self, w: &Tensor) -> Tensor { (w * self.factor).abs().sum_all() }
///     fn get_config(&self) -> Result<ObjectConfig> {
///         Ok(ObjectConfig::new("MyL1Regularizer").with("factor", self.factor))
///     }
/// }
/// let r = MyL1Regularizer { factor: 0.5 };
/// assert_eq!(r.call(&Tensor::new(&[2.0f32, -4.0])).to_scalar::<f32>().unwrap(), 3.0);
/// ```
pub trait Regularizer: Send + Sync {
    /// The penalty of `weights`.
    fn call(&self, weights: &Tensor) -> Tensor;

    /// The class name and config that rebuild this regularizer; an `Err` by default.
    fn get_config(&self) -> Result<ObjectConfig> {
        Err(no_config("regularizer", "(closure)", "implement Regularizer::get_config on a type instead"))
    }
}

impl<F: Fn(&Tensor) -> Tensor + Send + Sync> Regularizer for F {
    fn call(&self, weights: &Tensor) -> Tensor {
        self(weights)
    }
}

/// `l1 · Σ|w| + l2 · Σw²` (Keras 3's `L1L2`; its L2 has no ½). [`l1`], [`l2`] and
/// [`l1_l2`] make one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct L1L2 {
    pub l1: f64,
    pub l2: f64,
}

impl Regularizer for L1L2 {
    fn call(&self, w: &Tensor) -> Tensor {
        match (self.l1 != 0.0, self.l2 != 0.0) {
            (true, false) => w.abs().sum_all() * self.l1,
            (false, true) => w.square().sum_all() * self.l2,
            _ => w.abs().sum_all() * self.l1 + w.square().sum_all() * self.l2,
        }
    }

    fn get_config(&self) -> Result<ObjectConfig> {
        Ok(ObjectConfig::new("L1L2").with("l1", self.l1).with("l2", self.l2))
    }
}

impl L1L2 {
    /// The regularizer of a config written by [`Regularizer::get_config`].
    pub fn from_config(c: &Config) -> Result<L1L2> {
        Ok(L1L2 { l1: c.get_or("l1", 0.0)?, l2: c.get_or("l2", 0.0)? })
    }
}

/// `factor · Σ|w|`.
pub fn l1(factor: f64) -> L1L2 {
    L1L2 { l1: factor, l2: 0.0 }
}

/// `factor · Σw²` (Keras 3's L2 has no ½).
pub fn l2(factor: f64) -> L1L2 {
    L1L2 { l1: 0.0, l2: factor }
}

/// `l1 · Σ|w| + l2 · Σw²`.
pub fn l1_l2(l1: f64, l2: f64) -> L1L2 {
    L1L2 { l1, l2 }
}
