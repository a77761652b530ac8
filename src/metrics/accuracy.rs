//! Accuracy metrics: the running fraction of correct predictions.

use kiln_ir::DType;

use super::{divide_no_nan, state, LabelMetric, Metric};
use crate::{Error, Result, Tensor, Variable};

/// Running `correct / seen` in two Variables.
struct Counts {
    correct: Variable,
    seen: Variable,
}

impl Counts {
    fn new(name: &str) -> Counts {
        Counts { correct: state(&format!("{name}/total"), &[]), seen: state(&format!("{name}/count"), &[]) }
    }
    fn add(&self, matches: &Tensor) -> Result<()> {
        let m = matches.try_cast(DType::F32)?;
        self.correct.assign_add(&m.sum_all())?;
        self.seen.assign_add(&Tensor::scalar(m.numel() as f32))
    }
    fn result(&self) -> Tensor {
        divide_no_nan(&self.correct.read(), &self.seen.read()).expect("f32 scalars")
    }
    fn vars(&self) -> Vec<Variable> {
        vec![self.correct.clone(), self.seen.clone()]
    }
}

fn mismatch(metric: &'static str, y_true: &Tensor, y_pred: &Tensor, expected: &str) -> Error {
    Error::invalid(
        metric,
        format!("labels {} do not fit predictions {}: {expected}", y_true.tensor_type(), y_pred.tensor_type()),
    )
}

macro_rules! accuracy_metric {
    ($name:ident, $keras:literal, $doc:literal) => {
        #[doc = $doc]
        pub struct $name {
            counts: Counts,
        }
        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }
        impl $name {
            pub fn new() -> Self {
                $name { counts: Counts::new($keras) }
            }
        }
        impl Metric for $name {
            fn result(&self) -> Tensor {
                self.counts.result()
            }
            fn variables(&self) -> Vec<Variable> {
                self.counts.vars()
            }
            fn name(&self) -> String {
                $keras.to_string()
            }
            fn get_config(&self) -> Result<crate::models::ObjectConfig> {
                Ok(crate::models::ObjectConfig::new(stringify!($name)))
            }
        }
    };
}

accuracy_metric!(
    Accuracy,
    "accuracy",
    "Keras `Accuracy`: how often `y_pred == y_true` exactly (same shape and dtype)."
);
accuracy_metric!(
    BinaryAccuracy,
    "binary_accuracy",
    "Keras `BinaryAccuracy`: how often `(y_pred > 0.5) == (y_true > 0.5)` (same shape)."
);
accuracy_metric!(
    CategoricalAccuracy,
    "categorical_accuracy",
    "Keras `CategoricalAccuracy`: how often `argmax(y_pred) == argmax(y_true)` (one-hot labels)."
);
accuracy_metric!(
    SparseCategoricalAccuracy,
    "sparse_categorical_accuracy",
    "Keras `SparseCategoricalAccuracy`: how often `argmax(y_pred) == y_true` (integer labels)."
);

impl LabelMetric for Accuracy {
    fn update_state(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<()> {
        if y_true.shape() != y_pred.shape() || y_true.dtype() != y_pred.dtype() {
            return Err(mismatch("accuracy", y_true, y_pred, "expected the same shape and dtype"));
        }
        self.counts.add(&y_true.try_equal(y_pred)?)
    }
}

impl LabelMetric for BinaryAccuracy {
    fn update_state(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<()> {
        if y_true.shape() != y_pred.shape() || y_true.dtype() == DType::Bool || y_pred.dtype() == DType::Bool {
            return Err(mismatch("binary_accuracy", y_true, y_pred, "expected numeric tensors of the same shape"));
        }
        let t = y_true.try_cast(DType::F32)?;
        let p = y_pred.try_cast(DType::F32)?;
        let half = t.scalar_like(0.5);
        self.counts.add(&t.try_greater(&half)?.try_equal(&p.try_greater(&half)?)?)
    }
}

impl LabelMetric for CategoricalAccuracy {
    fn update_state(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<()> {
        if y_true.shape() != y_pred.shape() || y_pred.rank() == 0 {
            return Err(mismatch("categorical_accuracy", y_true, y_pred, "expected one-hot labels of the same shape"));
        }
        self.counts.add(&y_true.try_argmax(-1, false)?.try_equal(&y_pred.try_argmax(-1, false)?)?)
    }
}

impl LabelMetric for SparseCategoricalAccuracy {
    fn update_state(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<()> {
        let y_true = crate::losses::check_sparse("sparse_categorical_accuracy", y_true, y_pred)?;
        let predicted = y_pred.try_argmax(-1, false)?;
        self.counts.add(&y_true.try_cast(DType::I64)?.try_equal(&predicted)?)
    }
}
