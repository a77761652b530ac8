//! Streaming metrics: state in Variables, so `update_state` works eagerly and inside a
//! compiled training step (the updates are Variable writes of the step's graph), while
//! `result` reads the accumulated value and `reset` clears it between epochs.
//!
//! Unlike a loss, a metric need not be differentiable: accuracy counts argmax matches and
//! precision counts thresholded predictions — operations with no useful gradient. Metrics
//! are only evaluated, never differentiated.
//!
//! ```
//! use kiln::metrics::{LabelMetric, Metric, SparseCategoricalAccuracy};
//! use kiln::Tensor;
//! let acc = SparseCategoricalAccuracy::new();
//! acc.update_state(&Tensor::new(&[0i64, 1]), &Tensor::new(&[[0.9f32, 0.1], [0.8, 0.2]])).unwrap();
//! acc.update_state(&Tensor::new(&[1i64]), &Tensor::new(&[[0.3f32, 0.7]])).unwrap();
//! assert!((acc.result().item().unwrap() - 2.0 / 3.0).abs() < 1e-6);
//! acc.reset().unwrap();
//! assert_eq!(acc.result().item().unwrap(), 0.0);
//! ```

mod accuracy;
mod auc;
mod confusion;
mod mean;
mod wrapper;

pub use accuracy::{Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy};
pub use auc::{Curve, AUC};
pub use confusion::{F1Score, Precision, Recall};
pub use mean::Mean;
pub use wrapper::{MeanAbsoluteError, MeanMetricWrapper, MeanSquaredError, MetricFn, RootMeanSquaredError};

use crate::{Result, Tensor, Variable};

/// What every streaming metric offers.
pub trait Metric: Send + Sync {
    /// The metric over everything seen since the last reset (a scalar or, for per-class
    /// results, a vector). Inside a trace it is symbolic like any read.
    fn result(&self) -> Tensor;

    /// Clears the accumulated state.
    fn reset(&self) -> Result<()> {
        for v in self.variables() {
            v.assign(&Tensor::zeros(v.shape(), v.dtype()))?;
        }
        Ok(())
    }

    /// The state Variables (all non-trainable).
    fn variables(&self) -> Vec<Variable>;

    fn name(&self) -> String;

    /// The class name and config that rebuild this metric (whole-model saving; the state is
    /// not saved, as in Keras); built-ins implement it, by default it is an `Err`.
    fn get_config(&self) -> Result<crate::models::ObjectConfig> {
        Err(crate::models::no_config("metric", &self.name(), "implement Metric::get_config and register a constructor"))
    }
}

/// A metric fed with labels and predictions.
pub trait LabelMetric: Metric {
    /// Accumulates one batch. Labels of the wrong shape or dtype are an `Err`.
    fn update_state(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<()>;
}

/// A zero `f32` state Variable, created outside any trace.
pub(crate) fn state(name: &str, shape: &[usize]) -> Variable {
    crate::init_scope(|| Variable::with_options(Tensor::zeros(shape, kiln_ir::DType::F32), name, false))
}

/// `a / b`, or 0 where `b` is 0 (TF's `divide_no_nan`).
pub(crate) fn divide_no_nan(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let zero = b.try_equal(&b.scalar_like(0.0))?;
    let safe = zero.try_select(&b.scalar_like(1.0), b)?;
    zero.try_select(&a.zeros_like(), &a.try_div(&safe)?)
}
