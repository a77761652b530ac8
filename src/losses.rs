//! Losses: a [`Loss`] maps `(y_true, y_pred)` to a scalar, differentiable in `y_pred`.
//! Built-ins follow Keras 3: a per-sample loss (the mean over the last axis for the
//! elementwise losses), then Keras's default reduction `sum_over_batch_size` — the mean
//! over the batch. Any closure `Fn(&Tensor, &Tensor) -> Tensor` is a loss too.
//!
//! Labels are checked: a `y_true` of the wrong shape or dtype is an `Err` naming both.
//!
//! ```
//! use kiln::losses::{Loss, MeanSquaredError};
//! use kiln::Tensor;
//! let y_true = Tensor::new(&[[0.0f32, 1.0], [1.0, 1.0]]);
//! let y_pred = Tensor::new(&[[1.0f32, 1.0], [1.0, 0.0]]);
//! let l = MeanSquaredError.call(&y_true, &y_pred).unwrap();
//! assert_eq!(l.to_scalar::<f32>().unwrap(), 0.5);
//! // The book's Huber loss as a closure:
//! let huber_fn = |y_true: &Tensor, y_pred: &Tensor| {
//!     let error = y_true - y_pred;
//!     let small = error.abs().less(&error.scalar_like(1.0));
//!     small.select(&(error.square() / 2.0), &(error.abs() - 0.5)).mean_all()
//! };
//! assert_eq!(huber_fn.call(&y_true, &y_pred).unwrap().to_scalar::<f32>().unwrap(), 0.25);
//! ```

use kiln_ir::DType;

use crate::{Error, Result, Tensor};

/// A loss: labels and predictions to a scalar.
pub trait Loss: Send + Sync {
    fn call(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor>;
}

impl<F: Fn(&Tensor, &Tensor) -> Tensor + Send + Sync> Loss for F {
    fn call(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        Ok(self(y_true, y_pred))
    }
}

/// Keras's clipping epsilon for probabilities.
const EPSILON: f64 = 1e-7;

/// `y_true` must have `y_pred`'s shape and dtype, and `y_pred` a float dtype with a batch axis.
fn check_same(loss: &'static str, y_true: &Tensor, y_pred: &Tensor) -> Result<()> {
    if !y_pred.dtype().is_float() || y_pred.rank() == 0 {
        return Err(Error::invalid(
            loss,
            format!("predictions must be floats with a batch axis, got {}", y_pred.tensor_type()),
        ));
    }
    if y_true.shape() != y_pred.shape() || y_true.dtype() != y_pred.dtype() {
        return Err(Error::invalid(
            loss,
            format!("labels {} do not match predictions {}", y_true.tensor_type(), y_pred.tensor_type()),
        ));
    }
    Ok(())
}

/// Mean over the last axis (per-sample), then mean over the samples.
fn reduce_elementwise(per_element: Tensor) -> Result<Tensor> {
    per_element.try_mean(-1, false)?.try_mean(all_axes(per_element.rank() - 1), false)
}

fn all_axes(rank: usize) -> Vec<usize> {
    (0..rank).collect()
}

/// Mean of `(y_pred - y_true)²`.
#[derive(Clone, Copy, Debug, Default)]
pub struct MeanSquaredError;

impl Loss for MeanSquaredError {
    fn call(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        check_same("mean_squared_error", y_true, y_pred)?;
        reduce_elementwise(y_pred.try_sub(y_true)?.try_square()?)
    }
}

/// Mean of `|y_pred - y_true|`.
#[derive(Clone, Copy, Debug, Default)]
pub struct MeanAbsoluteError;

impl Loss for MeanAbsoluteError {
    fn call(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        check_same("mean_absolute_error", y_true, y_pred)?;
        reduce_elementwise(y_pred.try_sub(y_true)?.try_abs()?)
    }
}

/// Keras's `Huber` with threshold `delta`: `½e²` for `|e| ≤ δ`, else `δ(|e| - ½δ)`.
#[derive(Clone, Copy, Debug)]
pub struct Huber {
    pub delta: f64,
}

impl Default for Huber {
    fn default() -> Self {
        Huber { delta: 1.0 }
    }
}

impl Huber {
    pub fn new(delta: f64) -> Huber {
        Huber { delta }
    }
}

impl Loss for Huber {
    fn call(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        check_same("huber", y_true, y_pred)?;
        let abs_error = y_pred.try_sub(y_true)?.try_abs()?;
        let quadratic = abs_error.try_minimum(&abs_error.scalar_like(self.delta))?;
        let linear = abs_error.try_sub(&quadratic)?;
        reduce_elementwise(
            quadratic.try_square()?.try_mul(&abs_error.scalar_like(0.5))?.try_add(&(linear * self.delta))?,
        )
    }
}

/// Binary cross-entropy on probabilities (clipped to `[1e-7, 1 - 1e-7]`) or, with
/// `from_logits`, on logits (`max(x, 0) - x z + log(1 + e^-|x|)`, stable).
#[derive(Clone, Copy, Debug, Default)]
pub struct BinaryCrossentropy {
    pub from_logits: bool,
}

impl BinaryCrossentropy {
    pub fn new(from_logits: bool) -> Self {
        BinaryCrossentropy { from_logits }
    }
}

impl Loss for BinaryCrossentropy {
    fn call(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        check_same("binary_crossentropy", y_true, y_pred)?;
        let per_element = if self.from_logits {
            // TF's form: max(x, 0) and -|x| both split at x >= 0, so at x = 0 their gradients
            // (1 and -1) add up to sigmoid(0) - z; relu'(0) = abs'(0) = 0 would drop the 0.5.
            let x = y_pred;
            let nonneg = x.try_greater_equal(&x.scalar_like(0.0))?;
            let relu = nonneg.try_select(x, &x.zeros_like())?;
            let neg_abs = nonneg.try_select(&x.try_neg()?, x)?;
            relu.try_sub(&x.try_mul(y_true)?)?.try_add(&neg_abs.try_exp()?.try_log1p()?)?
        } else {
            let p = clip(y_pred)?;
            let pos = y_true.try_mul(&p.try_log()?)?;
            let neg = (1.0 - y_true).try_mul(&(1.0 - &p).try_log()?)?;
            pos.try_add(&neg)?.try_neg()?
        };
        reduce_elementwise(per_element)
    }
}

fn clip(p: &Tensor) -> Result<Tensor> {
    p.try_maximum(&p.scalar_like(EPSILON))?.try_minimum(&p.scalar_like(1.0 - EPSILON))
}

/// `-Σ y log p` over the last axis with `y` one-hot (or soft) labels; `p` are
/// probabilities (renormalized and clipped, as Keras does) or, with `from_logits`, logits.
#[derive(Clone, Copy, Debug, Default)]
pub struct CategoricalCrossentropy {
    pub from_logits: bool,
}

impl CategoricalCrossentropy {
    pub fn new(from_logits: bool) -> Self {
        CategoricalCrossentropy { from_logits }
    }
}

fn log_probs(y_pred: &Tensor, from_logits: bool) -> Result<Tensor> {
    if from_logits {
        Ok(y_pred.log_softmax(-1))
    } else {
        let p = y_pred.try_div(&y_pred.try_sum(-1, true)?)?;
        clip(&p)?.try_log()
    }
}

impl Loss for CategoricalCrossentropy {
    fn call(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        check_same("categorical_crossentropy", y_true, y_pred)?;
        let per_sample = y_true.try_mul(&log_probs(y_pred, self.from_logits)?)?.try_sum(-1, false)?.try_neg()?;
        per_sample.try_mean(all_axes(per_sample.rank()), false)
    }
}

/// Categorical cross-entropy with integer class labels: `y_true` is `i32`/`i64` of shape
/// `y_pred.shape()[..-1]` with values in `0..classes`; a label out of range is an `Err`,
/// eagerly and from a traced function alike (see [`checked_labels`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct SparseCategoricalCrossentropy {
    pub from_logits: bool,
}

impl SparseCategoricalCrossentropy {
    pub fn new(from_logits: bool) -> Self {
        SparseCategoricalCrossentropy { from_logits }
    }
}

/// Checks integer class labels against `[batch.., classes]` predictions; returns them
/// [checked](checked_labels).
pub(crate) fn check_sparse(loss: &'static str, labels: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
    let r = y_pred.rank();
    if r == 0 || !matches!(labels.dtype(), DType::I32 | DType::I64) || labels.shape() != &y_pred.shape()[..r - 1] {
        return Err(Error::invalid(
            loss,
            format!(
                "labels must be i32 or i64 of shape {} (one class index per row of the predictions {}), got {}",
                kiln_ir::shape::fmt_shape(&y_pred.shape()[..r.saturating_sub(1)]),
                y_pred.tensor_type(),
                labels.tensor_type()
            ),
        ));
    }
    checked_labels(loss, labels, y_pred.shape()[r - 1])
}

/// Integer class `labels` that fail the call if one lies outside `0..classes`. Concrete
/// labels are checked now. Symbolic ones (inside a traced function) are gathered from
/// `arange(classes)`: an identity on valid labels whose out-of-range index is a runtime
/// `Err` on every backend ("gather: index 7 is out of range for an axis of size 3"), so a
/// compiled training step with a bad label fails and commits no Variable write.
pub(crate) fn checked_labels(loss: &'static str, labels: &Tensor, classes: usize) -> Result<Tensor> {
    match labels.array() {
        Some(a) => {
            if let Some(bad) = (0..a.len()).map(|i| a.get_f64(i)).find(|&v| v < 0.0 || v >= classes as f64) {
                return Err(Error::invalid(loss, format!("label {bad} is out of range for {classes} classes")));
            }
            Ok(labels.clone())
        }
        None => Tensor::try_arange(0.0, classes as f64, 1.0, labels.dtype())?.try_gather(labels, 0),
    }
}

impl Loss for SparseCategoricalCrossentropy {
    fn call(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        let y_true = check_sparse("sparse_categorical_crossentropy", y_true, y_pred)?;
        if !y_pred.dtype().is_float() {
            return Err(Error::invalid("sparse_categorical_crossentropy", "predictions must be floats"));
        }
        let classes = y_pred.shape()[y_pred.rank() - 1];
        let onehot = y_true.one_hot(classes, y_pred.dtype());
        CategoricalCrossentropy { from_logits: self.from_logits }.call(&onehot, y_pred)
    }
}
