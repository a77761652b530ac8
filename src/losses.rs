//! Losses: a [`Loss`] maps `(y_true, y_pred)` to per-sample losses, then reduces them to
//! the loss, differentiable in `y_pred`. Built-ins follow Keras 3: a per-sample loss (the
//! mean over the last axis for the elementwise losses, the sum for the cross-entropies),
//! optional per-sample weights, then a [`Reduction`] — Keras's default
//! `sum_over_batch_size`, the mean over every per-sample value. Any closure
//! `Fn(&Tensor, &Tensor) -> Tensor` is a loss too: its result is the per-sample (or
//! per-element) loss, reduced the same way.
//!
//! Labels are matched to the predictions as Keras does: a `[n]` label against `[n, 1]`
//! predictions (or the reverse) gains or loses that last axis, and numeric labels are cast
//! to the predictions' dtype; any other mismatch is an `Err` naming both.
//!
//! ```
//! use kiln::losses::{Loss, MeanSquaredError, Reduction};
//! use kiln::Tensor;
//! let y_true = Tensor::new(&[[0.0f32, 1.0], [1.0, 1.0]]);
//! let y_pred = Tensor::new(&[[1.0f32, 1.0], [1.0, 0.0]]);
//! assert_eq!(MeanSquaredError.call(&y_true, &y_pred).unwrap().to_scalar::<f32>().unwrap(), 0.5);
//! let per_sample = MeanSquaredError.with_reduction(Reduction::None).call(&y_true, &y_pred).unwrap();
//! assert_eq!(per_sample.to_vec::<f32>().unwrap(), vec![0.5, 0.5]);
//! let w = Tensor::new(&[1.0f32, 0.0]);
//! assert_eq!(MeanSquaredError.call_weighted(&y_true, &y_pred, Some(&w)).unwrap().to_scalar::<f32>().unwrap(), 0.25);
//! // The book's Huber loss as a closure returning per-element losses:
//! let huber_fn = |y_true: &Tensor, y_pred: &Tensor| {
//!     let error = y_true - y_pred;
//!     let small = error.abs().less(&error.scalar_like(1.0));
//!     small.select(&(error.square() / 2.0), &(error.abs() - 0.5))
//! };
//! assert_eq!(huber_fn.call(&y_true, &y_pred).unwrap().to_scalar::<f32>().unwrap(), 0.25);
//! ```

use kiln_ir::DType;

use crate::metrics::divide_no_nan;
use crate::models::{no_config, Config, ObjectConfig};
use crate::{Error, Result, Tensor};

/// How per-sample losses become the loss (Keras's `reduction`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reduction {
    /// The sum divided by the number of per-sample values (Keras's default; also its `"mean"`).
    #[default]
    SumOverBatchSize,
    /// The sum.
    Sum,
    /// The weighted sum divided by the sum of the sample weights (Keras's
    /// `"mean_with_sample_weight"`; without weights, as `SumOverBatchSize`).
    MeanWithSampleWeight,
    /// No reduction: the per-sample losses (times their weights).
    None,
}

/// A loss: labels and predictions to per-sample losses, reduced to the loss.
pub trait Loss: Send + Sync {
    /// The unreduced losses (Keras's loss function): one per sample, or per element for a
    /// closure that returns them so.
    fn per_sample(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor>;

    /// The reduction [`Loss::call`] applies.
    fn reduction(&self) -> Reduction {
        Reduction::SumOverBatchSize
    }

    /// The loss (Keras's `loss(y_true, y_pred)`).
    fn call(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        self.call_weighted(y_true, y_pred, None)
    }

    /// The loss with `sample_weight` (broadcast against the per-sample losses, a `[n]` weight
    /// matched to `[n, 1]` losses as labels are) applied before the reduction.
    fn call_weighted(&self, y_true: &Tensor, y_pred: &Tensor, sample_weight: Option<&Tensor>) -> Result<Tensor> {
        let losses = self.per_sample(y_true, y_pred)?;
        reduce(losses, sample_weight, self.reduction())
    }

    /// The class name and config that rebuild this loss (whole-model saving); built-ins
    /// implement it, by default it is an `Err`.
    fn get_config(&self) -> Result<ObjectConfig> {
        Err(no_config("loss", std::any::type_name::<Self>(), "implement Loss::get_config and register a constructor"))
    }

    /// This loss with another reduction.
    fn with_reduction(self, reduction: Reduction) -> Reduced<Self>
    where
        Self: Sized,
    {
        Reduced { loss: self, reduction }
    }
}

/// A closure gets its labels matched to the predictions' rank and dtype first, as Keras's
/// wrapper of a loss function does (so `[n]` targets against `[n, 1]` predictions do not
/// broadcast to `[n, n]`).
impl<F: Fn(&Tensor, &Tensor) -> Tensor + Send + Sync> Loss for F {
    fn per_sample(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        Ok(self(&labels_like(y_true, y_pred)?, y_pred))
    }
}

/// A loss with a chosen [`Reduction`] (made by [`Loss::with_reduction`]).
#[derive(Clone, Copy, Debug)]
pub struct Reduced<L> {
    pub loss: L,
    pub reduction: Reduction,
}

impl<L: Loss> Loss for Reduced<L> {
    fn per_sample(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        self.loss.per_sample(y_true, y_pred)
    }

    fn reduction(&self) -> Reduction {
        self.reduction
    }

    fn get_config(&self) -> Result<ObjectConfig> {
        let inner = self.loss.get_config()?;
        Ok(ObjectConfig { config: inner.config.with("reduction", self.reduction.keras_name()), ..inner })
    }
}

impl Reduction {
    /// Keras's name of the reduction (`"sum_over_batch_size"`, `"sum"`,
    /// `"mean_with_sample_weight"`, `"none"`).
    pub fn keras_name(self) -> &'static str {
        match self {
            Reduction::SumOverBatchSize => "sum_over_batch_size",
            Reduction::Sum => "sum",
            Reduction::MeanWithSampleWeight => "mean_with_sample_weight",
            Reduction::None => "none",
        }
    }

    /// The reduction of a Keras name (`"mean"` too, Keras's alias of the default).
    pub fn from_keras_name(name: &str) -> Result<Reduction> {
        Ok(match name {
            "sum_over_batch_size" | "mean" => Reduction::SumOverBatchSize,
            "sum" => Reduction::Sum,
            "mean_with_sample_weight" => Reduction::MeanWithSampleWeight,
            "none" => Reduction::None,
            other => return Err(Error::invalid("loss", format!("unknown reduction `{other}`"))),
        })
    }
}

/// `loss` with the reduction a saved config names (the default when it names none), as the
/// built-in losses are rebuilt by `kiln::models::load_model`.
pub fn with_saved_reduction<L: Loss + 'static>(loss: L, c: &Config) -> Result<std::sync::Arc<dyn Loss>> {
    Ok(match c.get_or::<Option<String>>("reduction", None)? {
        Some(name) => std::sync::Arc::new(loss.with_reduction(Reduction::from_keras_name(&name)?)),
        None => std::sync::Arc::new(loss),
    })
}

/// Applies `sample_weight` and `reduction` to per-sample `losses`.
fn reduce(losses: Tensor, sample_weight: Option<&Tensor>, reduction: Reduction) -> Result<Tensor> {
    let weighted = match sample_weight {
        Some(w) => {
            let w = squeeze_or_expand(w.try_cast(losses.dtype())?, &losses);
            losses.try_mul(&w)?
        }
        None => losses,
    };
    let all: Vec<usize> = (0..weighted.rank()).collect();
    let sum = || weighted.try_sum(all.clone(), false);
    match reduction {
        Reduction::None => Ok(weighted),
        Reduction::Sum => sum(),
        Reduction::MeanWithSampleWeight if sample_weight.is_some() => {
            let w = sample_weight.expect("checked").try_cast(weighted.dtype())?;
            let total =
                w.try_broadcast_to(weighted.shape())?.try_sum((0..weighted.rank()).collect::<Vec<_>>(), false)?;
            divide_no_nan(&sum()?, &total) // an empty batch has loss 0, as in Keras
        }
        Reduction::SumOverBatchSize | Reduction::MeanWithSampleWeight => {
            let n = weighted.shape().iter().product::<usize>();
            divide_no_nan(&sum()?, &weighted.scalar_like(n as f64))
        }
    }
}

/// `t` with a last axis of 1 added or removed to match `like`'s rank (Keras's
/// `squeeze_or_expand_to_same_rank`); unchanged otherwise.
pub(crate) fn squeeze_or_expand(t: Tensor, like: &Tensor) -> Tensor {
    let (r, l) = (t.rank(), like.rank());
    if r == l + 1 && t.shape().last() == Some(&1) {
        let keep: Vec<i64> = t.shape()[..r - 1].iter().map(|&d| d as i64).collect();
        t.try_reshape(keep).unwrap_or(t)
    } else if l == r + 1 && like.shape().last() == Some(&1) {
        t.try_expand_dims(-1).unwrap_or(t)
    } else {
        t
    }
}

/// `y_true` as Keras matches labels to predictions: a last axis of 1 added or removed
/// ([`squeeze_or_expand`]), numeric labels cast to float predictions' dtype. (Losses and
/// metrics check the shape afterwards, each in its own words.)
pub(crate) fn labels_like(y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
    let labels = squeeze_or_expand(y_true.clone(), y_pred);
    if labels.dtype() != y_pred.dtype() && labels.dtype() != DType::Bool && y_pred.dtype().is_float() {
        return labels.try_cast(y_pred.dtype());
    }
    Ok(labels)
}

/// Keras's clipping epsilon for probabilities.
const EPSILON: f64 = 1e-7;

/// `y_true` matched to `y_pred` (last axis of 1 added or removed, numeric labels cast to the
/// predictions' float dtype); then it must have `y_pred`'s shape, and `y_pred` a float dtype
/// with a batch axis.
fn match_labels(loss: &'static str, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
    if !y_pred.dtype().is_float() || y_pred.rank() == 0 {
        return Err(Error::invalid(
            loss,
            format!("predictions must be floats with a batch axis, got {}", y_pred.tensor_type()),
        ));
    }
    let labels = labels_like(y_true, y_pred)?;
    if labels.shape() != y_pred.shape() || labels.dtype() != y_pred.dtype() {
        return Err(Error::invalid(
            loss,
            format!("labels {} do not match predictions {}", y_true.tensor_type(), y_pred.tensor_type()),
        ));
    }
    Ok(labels)
}

/// The mean over the last axis: one loss per sample.
fn per_sample_mean(per_element: Tensor) -> Result<Tensor> {
    per_element.try_mean(-1, false)
}

/// Mean of `(y_pred - y_true)²`.
#[derive(Clone, Copy, Debug, Default)]
pub struct MeanSquaredError;

impl Loss for MeanSquaredError {
    fn get_config(&self) -> Result<ObjectConfig> {
        Ok(ObjectConfig::new("MeanSquaredError"))
    }

    fn per_sample(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        let y_true = &match_labels("mean_squared_error", y_true, y_pred)?;
        per_sample_mean(y_pred.try_sub(y_true)?.try_square()?)
    }
}

/// Mean of `|y_pred - y_true|`.
#[derive(Clone, Copy, Debug, Default)]
pub struct MeanAbsoluteError;

impl Loss for MeanAbsoluteError {
    fn get_config(&self) -> Result<ObjectConfig> {
        Ok(ObjectConfig::new("MeanAbsoluteError"))
    }

    fn per_sample(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        let y_true = &match_labels("mean_absolute_error", y_true, y_pred)?;
        per_sample_mean(y_pred.try_sub(y_true)?.try_abs()?)
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
    fn get_config(&self) -> Result<ObjectConfig> {
        Ok(ObjectConfig::new("Huber").with("delta", self.delta))
    }

    fn per_sample(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        let y_true = &match_labels("huber", y_true, y_pred)?;
        let abs_error = y_pred.try_sub(y_true)?.try_abs()?;
        let quadratic = abs_error.try_minimum(&abs_error.scalar_like(self.delta))?;
        let linear = abs_error.try_sub(&quadratic)?;
        per_sample_mean(quadratic.try_square()?.try_mul(&abs_error.scalar_like(0.5))?.try_add(&(linear * self.delta))?)
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
    fn get_config(&self) -> Result<ObjectConfig> {
        Ok(ObjectConfig::new("BinaryCrossentropy").with("from_logits", self.from_logits))
    }

    fn per_sample(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        let y_true = &match_labels("binary_crossentropy", y_true, y_pred)?;
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
        per_sample_mean(per_element)
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
    fn get_config(&self) -> Result<ObjectConfig> {
        Ok(ObjectConfig::new("CategoricalCrossentropy").with("from_logits", self.from_logits))
    }

    fn per_sample(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        let y_true = &match_labels("categorical_crossentropy", y_true, y_pred)?;
        y_true.try_mul(&log_probs(y_pred, self.from_logits)?)?.try_sum(-1, false)?.try_neg()
    }
}

/// Categorical cross-entropy with integer class labels: `y_true` is `i32`/`i64` of shape
/// `y_pred.shape()[..-1]` with values in `0..classes`; a label out of range is an `Err`,
/// eagerly and from a traced function alike (the check runs inside the graph).
#[derive(Clone, Copy, Debug, Default)]
pub struct SparseCategoricalCrossentropy {
    pub from_logits: bool,
}

impl SparseCategoricalCrossentropy {
    pub fn new(from_logits: bool) -> Self {
        SparseCategoricalCrossentropy { from_logits }
    }
}

/// Checks integer class labels (`[batch..]`, or `[batch.., 1]`) against `[batch.., classes]`
/// predictions; returns them
/// [checked](checked_labels).
pub(crate) fn check_sparse(loss: &'static str, labels: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
    let r = y_pred.rank();
    // Keras takes `[n, 1]` labels too.
    let squeezed;
    let labels = if r > 0 && labels.rank() == r && labels.shape().last() == Some(&1) {
        squeezed = labels.try_reshape(labels.shape()[..r - 1].iter().map(|&d| d as i64).collect::<Vec<_>>())?;
        &squeezed
    } else {
        labels
    };
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
    fn get_config(&self) -> Result<ObjectConfig> {
        Ok(ObjectConfig::new("SparseCategoricalCrossentropy").with("from_logits", self.from_logits))
    }

    fn per_sample(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        let y_true = check_sparse("sparse_categorical_crossentropy", y_true, y_pred)?;
        if !y_pred.dtype().is_float() {
            return Err(Error::invalid("sparse_categorical_crossentropy", "predictions must be floats"));
        }
        let classes = y_pred.shape()[y_pred.rank() - 1];
        let onehot = y_true.one_hot(classes, y_pred.dtype());
        CategoricalCrossentropy { from_logits: self.from_logits }.per_sample(&onehot, y_pred)
    }
}
