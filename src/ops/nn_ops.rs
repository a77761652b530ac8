//! Losses on logits that the tape differentiates without overflow: softmax cross-entropy
//! (dense and sparse labels). Built on `log_softmax`, which subtracts the row maximum, so the
//! gradient `softmax(logits) - labels` stays finite where `-Σ labels·ln(softmax)` computed
//! naively gives `inf`/NaN.

use kiln_ir::shape::fmt_shape;

use crate::{Error, Result, Tensor};

/// Per-example cross-entropy `-Σ labels · log_softmax(logits)` over the last axis (TF's
/// `tf.nn.softmax_cross_entropy_with_logits`). `labels` has the logits' shape and dtype
/// (one-hot or any distribution); the result drops the last axis.
///
/// ```
/// use kiln::Tensor;
/// let logits = Tensor::new(&[[1000.0f32, 0.0]]);
/// let labels = Tensor::new(&[[0.0f32, 1.0]]);
/// let loss = kiln::softmax_cross_entropy_with_logits(&logits, &labels).unwrap();
/// assert_eq!(loss.to_vec::<f32>().unwrap(), vec![1000.0]); // finite, where ln(softmax) is -inf
/// ```
pub fn softmax_cross_entropy_with_logits(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    check_logits(logits)?;
    if labels.tensor_type() != logits.tensor_type() {
        return Err(Error::invalid(
            "softmax_cross_entropy_with_logits",
            format!("labels are {} but logits are {}", labels.tensor_type(), logits.tensor_type()),
        ));
    }
    (labels * &logits.log_softmax(-1)).try_sum(-1, false)?.try_neg()
}

/// Per-example cross-entropy with integer class labels (TF's
/// `tf.nn.sparse_softmax_cross_entropy_with_logits`): `labels` (I32 or I64) has the logits'
/// shape without the last axis, each in `0..classes`. An out-of-range label is an `Err`,
/// eagerly and when a traced function runs (on either backend).
///
/// ```
/// use kiln::Tensor;
/// let logits = Tensor::new(&[[2.0f64, 0.0], [0.0, 2.0]]);
/// let loss = kiln::sparse_softmax_cross_entropy_with_logits(&logits, &Tensor::new(&[0i64, 0])).unwrap();
/// let l = loss.to_vec::<f64>().unwrap();
/// assert!((l[0] - (1.0 + (-2f64).exp()).ln()).abs() < 1e-12);
/// ```
pub fn sparse_softmax_cross_entropy_with_logits(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    check_logits(logits)?;
    const OP: &str = "sparse_softmax_cross_entropy_with_logits";
    if !labels.dtype().is_int() {
        return Err(Error::UnsupportedDType { op: OP, dtype: labels.dtype(), expected: "integer class labels" });
    }
    let (batch, classes) = logits.shape().split_at(logits.rank() - 1);
    if labels.shape() != batch {
        return Err(Error::invalid(
            OP,
            format!(
                "labels of shape {} do not match logits of shape {} (expected {})",
                fmt_shape(labels.shape()),
                fmt_shape(logits.shape()),
                fmt_shape(batch)
            ),
        ));
    }
    let classes = classes[0];
    let labels = crate::losses::checked_labels(OP, labels, classes)?;
    softmax_cross_entropy_with_logits(logits, &labels.one_hot(classes, logits.dtype()))
}

fn check_logits(logits: &Tensor) -> Result<()> {
    if !logits.dtype().is_float() {
        return Err(Error::UnsupportedDType {
            op: "softmax_cross_entropy_with_logits",
            dtype: logits.dtype(),
            expected: "float logits",
        });
    }
    if logits.rank() == 0 {
        return Err(Error::invalid("softmax_cross_entropy_with_logits", "logits need at least one axis (the classes)"));
    }
    Ok(())
}
