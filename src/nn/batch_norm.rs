//! `BatchNormalization` over the last axis, with moving statistics in Variables.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use kiln_ir::DType;

use super::Layer;
use crate::models::{Config, ObjectConfig};
use crate::{Error, Result, Tensor, Variable};

struct Weights {
    gamma: Variable,
    beta: Variable,
    moving_mean: Variable,
    moving_variance: Variable,
}

/// Keras's `BatchNormalization` (axis -1, momentum 0.99, epsilon 1e-3).
///
/// In training it normalizes with the batch's mean and (biased) variance over every axis
/// but the last, and updates `moving = moving · momentum + batch · (1 - momentum)` — two
/// Variable writes that, inside a traced step, are part of the compiled graph. In inference
/// it normalizes with the moving statistics. `gamma` and `beta` are trainable; the moving
/// statistics never are.
///
/// ```
/// use kiln::nn::{BatchNormalization, Layer};
/// use kiln::Tensor;
/// let bn = BatchNormalization::new();
/// let x = Tensor::new(&[[1.0f32, 10.0], [3.0, 30.0]]);
/// let y = bn.call(&x, true).unwrap().to_vec::<f32>().unwrap();
/// assert!((y[0] + 1.0).abs() < 1e-3 && (y[1] + 1.0).abs() < 1e-3);          // normalized
/// let mm = bn.moving_mean().unwrap().read().to_vec::<f32>().unwrap();
/// assert!((mm[0] - 0.02).abs() < 1e-6 && (mm[1] - 0.2).abs() < 1e-6);       // 0.01 · mean
/// assert_eq!(bn.trainable_variables().len(), 2);
/// ```
pub struct BatchNormalization {
    momentum: f64,
    epsilon: f64,
    dtype: DType,
    name: String,
    trainable: AtomicBool,
    built: OnceLock<Weights>,
}

impl Default for BatchNormalization {
    fn default() -> Self {
        BatchNormalization::new()
    }
}

impl BatchNormalization {
    pub fn new() -> BatchNormalization {
        BatchNormalization {
            momentum: 0.99,
            epsilon: 1e-3,
            dtype: DType::F32,
            name: super::unique_name("batch_normalization"),
            trainable: AtomicBool::new(true),
            built: OnceLock::new(),
        }
    }

    /// Weight of the old moving statistics in each update (default 0.99).
    pub fn momentum(self, momentum: f64) -> Self {
        BatchNormalization { momentum, ..self }
    }

    /// Added to the variance before the square root (default 1e-3).
    pub fn epsilon(self, epsilon: f64) -> Self {
        BatchNormalization { epsilon, ..self }
    }

    /// The weights' dtype (default `f32`).
    pub fn dtype(self, dtype: DType) -> Self {
        BatchNormalization { dtype, ..self }
    }

    pub fn with_name(self, name: &str) -> Self {
        BatchNormalization { name: name.to_string(), ..self }
    }

    /// The layer of a config written by [`Layer::get_config`].
    pub fn from_config(c: &Config) -> Result<BatchNormalization> {
        let bn = BatchNormalization::new()
            .momentum(c.get_or("momentum", 0.99)?)
            .epsilon(c.get_or("epsilon", 1e-3)?)
            .dtype(c.dtype_or("dtype", DType::F32)?)
            .with_name(&c.get::<String>("name")?);
        bn.set_trainable(c.get_or("trainable", true)?);
        Ok(bn)
    }

    /// The moving mean, once built.
    pub fn moving_mean(&self) -> Option<&Variable> {
        self.built.get().map(|w| &w.moving_mean)
    }

    /// The moving variance, once built.
    pub fn moving_variance(&self) -> Option<&Variable> {
        self.built.get().map(|w| &w.moving_variance)
    }

    fn build(&self, features: usize) -> Result<&Weights> {
        if let Some(w) = self.built.get() {
            if w.gamma.shape()[0] != features {
                return Err(Error::invalid(
                    "BatchNormalization",
                    format!("layer `{}` was built for {} features, got {features}", self.name, w.gamma.shape()[0]),
                ));
            }
            return Ok(w);
        }
        let w = crate::init_scope(|| -> Result<Weights> {
            let var = |suffix: &str, init: Tensor, trainable: bool| {
                Variable::try_with_options(init, Some(&format!("{}/{suffix}", self.name)), trainable)
            };
            Ok(Weights {
                gamma: var("gamma", Tensor::ones(&[features], self.dtype), true)?,
                beta: var("beta", Tensor::zeros(&[features], self.dtype), true)?,
                moving_mean: var("moving_mean", Tensor::zeros(&[features], self.dtype), false)?,
                moving_variance: var("moving_variance", Tensor::ones(&[features], self.dtype), false)?,
            })
        })?;
        Ok(self.built.get_or_init(|| w))
    }
}

impl Layer for BatchNormalization {
    fn call(&self, x: &Tensor, training: bool) -> Result<Tensor> {
        if x.rank() < 2 || x.dtype() != self.dtype {
            return Err(Error::invalid(
                "BatchNormalization",
                format!("layer `{}` takes {} inputs of rank >= 2, got {}", self.name, self.dtype, x.tensor_type()),
            ));
        }
        let w = self.build(x.shape()[x.rank() - 1])?;
        let batch_axes: Vec<i64> = (0..x.rank() as i64 - 1).collect();
        // A frozen BatchNormalization runs in inference mode (Keras's fine-tuning rule).
        let (mean, variance) = if training && self.is_trainable() {
            let mean = x.try_mean(&batch_axes, false)?;
            let variance = x.try_sub(&mean)?.try_square()?.try_mean(&batch_axes, false)?;
            let m = self.momentum;
            let update = |moving: &Variable, batch: &Tensor| -> Result<()> {
                let new = (moving.read() * m).try_add(&batch.stop_gradient().try_mul(&batch.scalar_like(1.0 - m))?)?;
                moving.assign(&new)
            };
            update(&w.moving_mean, &mean)?;
            update(&w.moving_variance, &variance)?;
            (mean, variance)
        } else {
            (w.moving_mean.read(), w.moving_variance.read())
        };
        let inv = (variance + self.epsilon).try_rsqrt()?.try_mul(&w.gamma.read())?;
        x.try_mul(&inv)?.try_add(&w.beta.read().try_sub(&mean.try_mul(&inv)?)?)
    }

    fn variables(&self) -> Vec<Variable> {
        match self.built.get() {
            Some(w) => vec![w.gamma.clone(), w.beta.clone(), w.moving_mean.clone(), w.moving_variance.clone()],
            None => Vec::new(),
        }
    }

    fn is_trainable(&self) -> bool {
        self.trainable.load(Ordering::Relaxed)
    }

    fn set_trainable(&self, trainable: bool) {
        self.trainable.store(trainable, Ordering::Relaxed)
    }

    fn name(&self) -> String {
        self.name.clone()
    }

    fn get_config(&self) -> Result<ObjectConfig> {
        Ok(ObjectConfig::new("BatchNormalization")
            .with("name", &self.name)
            .with("trainable", self.is_trainable())
            .with("dtype", self.dtype.to_string())
            .with("momentum", self.momentum)
            .with("epsilon", self.epsilon))
    }

    fn build_inputs(&self) -> Option<Vec<kiln_ir::TensorType>> {
        self.built.get().map(|w| vec![kiln_ir::TensorType::new(self.dtype, &[1, w.gamma.shape()[0]])])
    }
}
