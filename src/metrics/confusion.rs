//! Metrics from confusion counts: `Precision`, `Recall` (binary) and `F1Score` (binary,
//! or macro-averaged over classes). True/false positives and false negatives accumulate in
//! Variables, so the result is exact over the whole stream, not an average of batches.

use kiln_ir::DType;

use super::{divide_no_nan, state, LabelMetric, Metric};
use crate::{Error, Result, Tensor, Variable};

/// Per-class (or single) counts of true positives and, when the metric needs them, false
/// positives and false negatives (Keras keeps only what a metric reads: `Precision` has no
/// false negatives, `Recall` no false positives).
struct Confusion {
    tp: Variable,
    fp: Option<Variable>,
    fn_: Option<Variable>,
}

impl Confusion {
    fn new(name: &str, shape: &[usize], fp: bool, fn_: bool) -> Confusion {
        let count = |what: &str| state(&format!("{name}/{what}"), shape);
        Confusion {
            tp: count("true_positives"),
            fp: fp.then(|| count("false_positives")),
            fn_: fn_.then(|| count("false_negatives")),
        }
    }

    /// Adds counts from boolean `actual` and `predicted` of the same shape, summed over `axes`.
    fn add(&self, actual: &Tensor, predicted: &Tensor, axes: &[usize]) -> Result<()> {
        let f = |b: Tensor| -> Result<Tensor> { b.try_cast(DType::F32)?.try_sum(axes, false) };
        self.tp.assign_add(&f(actual.try_logical_and(predicted)?)?)?;
        if let Some(fp) = &self.fp {
            fp.assign_add(&f(actual.try_logical_not()?.try_logical_and(predicted)?)?)?;
        }
        if let Some(fn_) = &self.fn_ {
            fn_.assign_add(&f(actual.try_logical_and(&predicted.try_logical_not()?)?)?)?;
        }
        Ok(())
    }

    /// `tp / (tp + other)`, 0 where both are 0.
    fn ratio(&self, other: &Option<Variable>) -> Tensor {
        let (tp, other) = (self.tp.read(), other.as_ref().expect("kept for this metric").read());
        divide_no_nan(&tp, &(&tp + &other)).expect("f32 counts")
    }

    fn vars(&self) -> Vec<Variable> {
        std::iter::once(self.tp.clone()).chain(self.fp.clone()).chain(self.fn_.clone()).collect()
    }
}

/// Binary labels and scores of the same shape to booleans (`> threshold`).
fn binarize(metric: &'static str, y_true: &Tensor, y_pred: &Tensor, threshold: f64) -> Result<(Tensor, Tensor)> {
    if y_true.shape() != y_pred.shape() || y_true.dtype() == DType::Bool || y_pred.dtype() == DType::Bool {
        return Err(Error::invalid(
            metric,
            format!(
                "labels {} and predictions {} must be numeric of the same shape",
                y_true.tensor_type(),
                y_pred.tensor_type()
            ),
        ));
    }
    let t = y_true.try_cast(DType::F32)?;
    let p = y_pred.try_cast(DType::F32)?;
    Ok((t.try_greater(&t.scalar_like(0.5))?, p.try_greater(&p.scalar_like(threshold))?))
}

/// `[batch]` i64 class indices to a `[batch, classes]` boolean one-hot mask.
fn class_mask(labels: &Tensor, classes: usize) -> Result<Tensor> {
    let ids = Tensor::try_arange(0.0, classes as f64, 1.0, DType::I64)?;
    labels.try_expand_dims(-1)?.try_equal(&ids)
}

fn all_axes(t: &Tensor) -> Vec<usize> {
    (0..t.rank()).collect()
}

/// Keras `Precision` (threshold 0.5): `tp / (tp + fp)`, 0 before any positive prediction.
///
/// ```
/// use kiln::metrics::{LabelMetric, Metric, Precision};
/// use kiln::Tensor;
/// let p = Precision::new();
/// p.update_state(&Tensor::new(&[0.0f32, 1.0, 1.0, 1.0]), &Tensor::new(&[1.0f32, 0.0, 1.0, 1.0])).unwrap();
/// assert!((p.result().item().unwrap() - 2.0 / 3.0).abs() < 1e-6);
/// ```
pub struct Precision {
    threshold: f64,
    c: Confusion,
}

/// Keras `Recall` (threshold 0.5): `tp / (tp + fn)`, 0 before any positive label.
pub struct Recall {
    threshold: f64,
    c: Confusion,
}

macro_rules! binary_counts {
    ($name:ident, $keras:literal, $fp:literal, $fn:literal) => {
        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }
        impl $name {
            pub fn new() -> Self {
                Self::with_threshold(0.5)
            }
            /// Predictions above `threshold` count as positive (default 0.5).
            pub fn with_threshold(threshold: f64) -> Self {
                $name { threshold, c: Confusion::new($keras, &[], $fp, $fn) }
            }
        }
        impl LabelMetric for $name {
            fn update_state(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<()> {
                let (t, p) = binarize($keras, y_true, y_pred, self.threshold)?;
                self.c.add(&t, &p, &all_axes(&t))
            }
        }
    };
}

binary_counts!(Precision, "precision", true, false);
binary_counts!(Recall, "recall", false, true);

impl Metric for Precision {
    fn get_config(&self) -> Result<crate::models::ObjectConfig> {
        Ok(crate::models::ObjectConfig::new("Precision").with("threshold", self.threshold))
    }
    fn result(&self) -> Tensor {
        self.c.ratio(&self.c.fp)
    }
    fn variables(&self) -> Vec<Variable> {
        self.c.vars()
    }
    fn name(&self) -> String {
        "precision".into()
    }
}

impl Metric for Recall {
    fn get_config(&self) -> Result<crate::models::ObjectConfig> {
        Ok(crate::models::ObjectConfig::new("Recall").with("threshold", self.threshold))
    }
    fn result(&self) -> Tensor {
        self.c.ratio(&self.c.fn_)
    }
    fn variables(&self) -> Vec<Variable> {
        self.c.vars()
    }
    fn name(&self) -> String {
        "recall".into()
    }
}

/// Keras `F1Score`: `2 p r / (p + r)` with `p = tp / (tp + fp + ε)`, `r = tp / (tp + fn + ε)`
/// (ε = 1e-7, as Keras).
///
/// - [`F1Score::binary`]: labels and scores of the same shape, positive above a threshold.
/// - [`F1Score::macro_average`]: integer class labels `[batch]` and scores `[batch, classes]`
///   (the predicted class is the argmax); the result is the unweighted mean of the
///   per-class F1 scores.
///
/// ```
/// use kiln::metrics::{F1Score, LabelMetric, Metric};
/// use kiln::Tensor;
/// let f1 = F1Score::macro_average(3);
/// let labels = Tensor::new(&[0i64, 1, 2, 2]);
/// let scores = Tensor::new(&[[0.9f32, 0.1, 0.0], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.0, 0.1, 0.9]]);
/// f1.update_state(&labels, &scores).unwrap();
/// // per class: 1, 2/3, 2/3
/// assert!((f1.result().item().unwrap() - 7.0 / 9.0).abs() < 1e-5);
/// ```
pub struct F1Score {
    classes: Option<usize>,
    threshold: f64,
    c: Confusion,
}

impl F1Score {
    /// The metric of a config written by [`Metric::get_config`].
    pub fn from_config(c: &crate::models::Config) -> Result<F1Score> {
        Ok(match c.get_or::<Option<usize>>("classes", None)? {
            Some(classes) => F1Score::macro_average(classes),
            None => F1Score::binary(c.get_or("threshold", 0.5)?),
        })
    }

    /// Binary F1 with the given threshold on the scores.
    pub fn binary(threshold: f64) -> F1Score {
        F1Score { classes: None, threshold, c: Confusion::new("f1_score", &[], true, true) }
    }

    /// Macro-averaged F1 over `classes` classes.
    pub fn macro_average(classes: usize) -> F1Score {
        F1Score { classes: Some(classes), threshold: 0.5, c: Confusion::new("f1_score", &[classes], true, true) }
    }

    /// The F1 score of each class (macro) or the single one (binary).
    pub fn per_class(&self) -> Tensor {
        let eps = 1e-7;
        let read = |v: &Option<Variable>| v.as_ref().expect("F1 keeps every count").read();
        let (tp, fp, fn_) = (self.c.tp.read(), read(&self.c.fp), read(&self.c.fn_));
        let p = &tp / &(&tp + &fp + eps);
        let r = &tp / &(&tp + &fn_ + eps);
        (&p * &r * 2.0) / (&p + &r + eps)
    }
}

impl LabelMetric for F1Score {
    fn update_state(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<()> {
        match self.classes {
            None => {
                let (t, p) = binarize("f1_score", y_true, y_pred, self.threshold)?;
                self.c.add(&t, &p, &all_axes(&t))
            }
            Some(classes) => {
                crate::losses::check_sparse("f1_score", y_true, y_pred)?;
                if y_pred.shape()[y_pred.rank() - 1] != classes || y_pred.rank() != 2 {
                    return Err(Error::invalid(
                        "f1_score",
                        format!("expected predictions [batch, {classes}], got {}", y_pred.tensor_type()),
                    ));
                }
                let actual = class_mask(&y_true.try_cast(DType::I64)?, classes)?;
                let predicted = class_mask(&y_pred.try_argmax(-1, false)?, classes)?;
                self.c.add(&actual, &predicted, &[0])
            }
        }
    }
}

impl Metric for F1Score {
    fn get_config(&self) -> Result<crate::models::ObjectConfig> {
        Ok(crate::models::ObjectConfig::new("F1Score").with("classes", self.classes).with("threshold", self.threshold))
    }
    fn result(&self) -> Tensor {
        let f = self.per_class();
        if self.classes.is_some() {
            f.mean(0, false)
        } else {
            f
        }
    }
    fn variables(&self) -> Vec<Variable> {
        self.c.vars()
    }
    fn name(&self) -> String {
        "f1_score".into()
    }
}
