//! Metrics that average a per-sample function of labels and predictions (Keras's
//! `MeanMetricWrapper`): `MeanAbsoluteError`, `MeanSquaredError`, and any closure
//! (`metrics=["mae"]` in Keras); plus `RootMeanSquaredError`, the root of such a mean.

use super::{LabelMetric, Mean, Metric};
use crate::{Error, Result, Tensor, Variable};

/// The per-sample values a wrapped metric averages.
pub type MetricFn = std::sync::Arc<dyn Fn(&Tensor, &Tensor) -> Result<Tensor> + Send + Sync>;

/// The running (optionally weighted) mean of `f(y_true, y_pred)` over every sample seen
/// (Keras's `MeanMetricWrapper`). Labels are matched to the predictions first (a `[n]` label
/// against `[n, 1]` predictions gains the last axis; numeric labels take the predictions'
/// dtype), as Keras does.
///
/// ```
/// use kiln::metrics::{LabelMetric, MeanMetricWrapper, Metric};
/// use kiln::Tensor;
/// let max_error = MeanMetricWrapper::new("max_error", |t: &Tensor, p: &Tensor| Ok((p - t).abs().max(-1, false)));
/// max_error.update_state(&Tensor::new(&[[0.0f32, 1.0]]), &Tensor::new(&[[0.5f32, 3.0]])).unwrap();
/// max_error.update_state(&Tensor::new(&[[0.0f32, 0.0]]), &Tensor::new(&[[1.0f32, 0.0]])).unwrap();
/// assert_eq!(max_error.result().item().unwrap(), 1.5);
/// ```
pub struct MeanMetricWrapper {
    f: MetricFn,
    mean: Mean,
}

impl MeanMetricWrapper {
    /// Averages `f`, a per-sample function (for example a loss's `per_sample`).
    pub fn new(name: &str, f: impl Fn(&Tensor, &Tensor) -> Result<Tensor> + Send + Sync + 'static) -> Self {
        MeanMetricWrapper { f: std::sync::Arc::new(f), mean: Mean::new(name) }
    }

    /// Accumulates one batch, each sample's value weighted by `sample_weight`
    /// ([`Mean::update_state_weighted`]; Keras's `update_state(y_true, y_pred, sample_weight)`).
    pub fn update_state_weighted(
        &self,
        y_true: &Tensor,
        y_pred: &Tensor,
        sample_weight: Option<&Tensor>,
    ) -> Result<()> {
        let values = (self.f)(&match_labels(&self.mean.name(), y_true, y_pred)?, y_pred)?;
        self.mean.update_state_weighted(&values, sample_weight)
    }
}

/// `y_true` with a last axis of 1 added or removed to match `y_pred`'s rank, cast to its
/// dtype when numeric.
fn match_labels(metric: &str, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
    let t = crate::losses::labels_like(y_true, y_pred)?;
    if t.shape() != y_pred.shape() {
        return Err(Error::invalid(
            "metric",
            format!("{metric}: labels {} do not match predictions {}", y_true.tensor_type(), y_pred.tensor_type()),
        ));
    }
    Ok(t)
}

impl LabelMetric for MeanMetricWrapper {
    fn update_state(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<()> {
        self.update_state_weighted(y_true, y_pred, None)
    }
}

impl Metric for MeanMetricWrapper {
    fn result(&self) -> Tensor {
        self.mean.result()
    }
    fn variables(&self) -> Vec<Variable> {
        self.mean.variables()
    }
    fn name(&self) -> String {
        self.mean.name()
    }
}

macro_rules! wrapped {
    ($(#[$doc:meta])* $name:ident $keras:literal |$t:ident, $p:ident| $body:expr) => {
        $(#[$doc])*
        pub struct $name(MeanMetricWrapper);

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl $name {
            pub fn new() -> Self {
                $name(MeanMetricWrapper::new($keras, |$t: &Tensor, $p: &Tensor| $body))
            }

            /// [`MeanMetricWrapper::update_state_weighted`].
            pub fn update_state_weighted(&self, y_true: &Tensor, y_pred: &Tensor, w: Option<&Tensor>) -> Result<()> {
                self.0.update_state_weighted(y_true, y_pred, w)
            }
        }

        impl LabelMetric for $name {
            fn update_state(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<()> {
                self.0.update_state(y_true, y_pred)
            }
        }

        impl Metric for $name {
            fn result(&self) -> Tensor {
                self.0.result()
            }
            fn variables(&self) -> Vec<Variable> {
                self.0.variables()
            }
            fn name(&self) -> String {
                self.0.name()
            }
            fn get_config(&self) -> Result<crate::models::ObjectConfig> {
                Ok(crate::models::ObjectConfig::new(stringify!($name)))
            }
        }
    };
}

wrapped! {
    /// Keras `MeanAbsoluteError` metric: the mean over samples of `mean(|y_pred - y_true|, -1)`.
    ///
    /// ```
    /// use kiln::metrics::{LabelMetric, MeanAbsoluteError, Metric};
    /// use kiln::Tensor;
    /// let mae = MeanAbsoluteError::new();
    /// mae.update_state(&Tensor::new(&[[0.0f32, 1.0]]), &Tensor::new(&[[1.0f32, 1.0]])).unwrap();
    /// assert_eq!(mae.result().item().unwrap(), 0.5);
    /// ```
    MeanAbsoluteError "mean_absolute_error" |t, p| p.try_sub(t)?.try_abs()?.try_mean(-1, false)
}

wrapped! {
    /// Keras `MeanSquaredError` metric: the mean over samples of `mean((y_pred - y_true)², -1)`.
    MeanSquaredError "mean_squared_error" |t, p| p.try_sub(t)?.try_square()?.try_mean(-1, false)
}

/// Keras `RootMeanSquaredError`: `sqrt` of the running (weighted) mean of every squared
/// error.
///
/// ```
/// use kiln::metrics::{LabelMetric, Metric, RootMeanSquaredError};
/// use kiln::Tensor;
/// let rmse = RootMeanSquaredError::new();
/// rmse.update_state(&Tensor::new(&[[0.0f32, 1.0]]), &Tensor::new(&[[3.0f32, 1.0]])).unwrap();
/// rmse.update_state(&Tensor::new(&[[0.0f32, 0.0]]), &Tensor::new(&[[1.0f32, 1.0]])).unwrap();
/// assert!((rmse.result().item().unwrap() - (11.0f64 / 4.0).sqrt()).abs() < 1e-6); // sqrt(11 / 4)
/// ```
pub struct RootMeanSquaredError(MeanMetricWrapper);

impl Default for RootMeanSquaredError {
    fn default() -> Self {
        Self::new()
    }
}

impl RootMeanSquaredError {
    pub fn new() -> Self {
        RootMeanSquaredError(MeanMetricWrapper::new("root_mean_squared_error", |t: &Tensor, p: &Tensor| {
            p.try_sub(t)?.try_square()
        }))
    }

    /// [`MeanMetricWrapper::update_state_weighted`].
    pub fn update_state_weighted(&self, y_true: &Tensor, y_pred: &Tensor, w: Option<&Tensor>) -> Result<()> {
        self.0.update_state_weighted(y_true, y_pred, w)
    }
}

impl LabelMetric for RootMeanSquaredError {
    fn update_state(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<()> {
        self.0.update_state(y_true, y_pred)
    }
}

impl Metric for RootMeanSquaredError {
    fn result(&self) -> Tensor {
        self.0.result().sqrt()
    }
    fn variables(&self) -> Vec<Variable> {
        self.0.variables()
    }
    fn name(&self) -> String {
        self.0.name()
    }
    fn get_config(&self) -> Result<crate::models::ObjectConfig> {
        Ok(crate::models::ObjectConfig::new("RootMeanSquaredError"))
    }
}
