//! `AUC`: the area under the ROC (or precision-recall) curve, estimated as Keras does from
//! confusion counts at fixed thresholds that accumulate over the stream.

use kiln_ir::DType;

use super::{divide_no_nan, state, LabelMetric, Metric};
use crate::{Error, Result, Tensor, Variable};

/// Which curve [`AUC`] integrates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Curve {
    /// Recall against false-positive rate (Keras's default).
    #[default]
    Roc,
    /// Precision against recall.
    Pr,
}

/// Keras `AUC` with `summation_method="interpolation"`: true/false positives and negatives
/// are counted at `num_thresholds` thresholds (`-ε`, `1/(T-1)`, …, `(T-2)/(T-1)`, `1+ε`; a
/// prediction above a threshold is positive, a label is positive when non-zero), and the
/// area is the trapezoid sum over the curve those points draw. For `Curve::Pr` the
/// precision is interpolated between points as Keras does (Davis & Goadrich).
///
/// ```
/// use kiln::metrics::{AUC, LabelMetric, Metric};
/// use kiln::Tensor;
/// let auc = AUC::new();
/// auc.update_state(&Tensor::new(&[0.0f32, 0.0, 1.0, 1.0]), &Tensor::new(&[0.1f32, 0.4, 0.35, 0.8])).unwrap();
/// assert!((auc.result().item().unwrap() - 0.75).abs() < 1e-2);
/// ```
pub struct AUC {
    curve: Curve,
    thresholds: Tensor,
    tp: Variable,
    fp: Variable,
    tn: Variable,
    fn_: Variable,
}

impl Default for AUC {
    fn default() -> Self {
        Self::new()
    }
}

impl AUC {
    /// The metric of a config written by [`Metric::get_config`].
    pub fn from_config(c: &crate::models::Config) -> Result<AUC> {
        let curve = match c.get_or("curve", "ROC".to_string())?.as_str() {
            "ROC" => Curve::Roc,
            "PR" => Curve::Pr,
            other => return Err(Error::invalid("auc", format!("unknown curve `{other}` (ROC or PR)"))),
        };
        let n: usize = c.get_or("num_thresholds", 200)?;
        if n > 1 << 20 {
            return Err(Error::invalid("auc", format!("{n} thresholds is more than 2^20")));
        }
        AUC::with_options(n, curve)
    }

    /// ROC curve, 200 thresholds (Keras's defaults).
    pub fn new() -> AUC {
        AUC::with_options(200, Curve::Roc).expect("200 thresholds")
    }

    /// `num_thresholds` (at least 2) thresholds on `curve`.
    pub fn with_options(num_thresholds: usize, curve: Curve) -> Result<AUC> {
        if num_thresholds < 2 {
            return Err(Error::invalid("auc", format!("needs at least 2 thresholds, got {num_thresholds}")));
        }
        let eps = 1e-7;
        let n = num_thresholds;
        let mut t: Vec<f32> = vec![(0.0 - eps) as f32];
        t.extend((0..n - 2).map(|i| ((i + 1) as f64 / (n - 1) as f64) as f32));
        t.push((1.0 + eps) as f32);
        let count = |what: &str| state(&format!("auc/{what}"), &[n]);
        Ok(AUC {
            curve,
            thresholds: crate::init_scope(|| Tensor::from_vec(t, &[n]))?,
            tp: count("true_positives"),
            fp: count("false_positives"),
            tn: count("true_negatives"),
            fn_: count("false_negatives"),
        })
    }
}

impl LabelMetric for AUC {
    fn update_state(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<()> {
        if y_true.shape() != y_pred.shape() || !y_pred.dtype().is_float() {
            return Err(Error::invalid(
                "auc",
                format!(
                    "labels {} and float scores {} must have the same shape",
                    y_true.tensor_type(),
                    y_pred.tensor_type()
                ),
            ));
        }
        let n = y_pred.numel() as i64;
        let scores = y_pred.try_cast(DType::F32)?.try_reshape([n, 1])?;
        let positive = y_true.try_cast(DType::F32)?.try_reshape([n, 1])?.try_not_equal(&Tensor::scalar(0.0f32))?;
        let above = scores.try_greater(&self.thresholds.try_reshape([1, -1])?)?; // [n, T]
        let count = |b: Tensor| -> Result<Tensor> { b.try_cast(DType::F32)?.try_sum(0, false) };
        let negative = positive.try_logical_not()?;
        let below = above.try_logical_not()?;
        self.tp.assign_add(&count(positive.try_logical_and(&above)?)?)?;
        self.fp.assign_add(&count(negative.try_logical_and(&above)?)?)?;
        self.tn.assign_add(&count(negative.try_logical_and(&below)?)?)?;
        self.fn_.assign_add(&count(positive.try_logical_and(&below)?)?)
    }
}

/// `t[..-1]` and `t[1..]` of a vector.
fn pairs(t: &Tensor) -> Result<(Tensor, Tensor)> {
    let n = t.shape()[0] as isize;
    Ok((t.try_slice(&[(0..n - 1).into()])?, t.try_slice(&[(1..n).into()])?))
}

impl AUC {
    fn area(&self) -> Result<Tensor> {
        let (tp, fp, tn, fn_) = (self.tp.read(), self.fp.read(), self.tn.read(), self.fn_.read());
        match self.curve {
            Curve::Roc => {
                let recall = divide_no_nan(&tp, &tp.try_add(&fn_)?)?;
                let fpr = divide_no_nan(&fp, &fp.try_add(&tn)?)?;
                let ((x0, x1), (y0, y1)) = (pairs(&fpr)?, pairs(&recall)?);
                x0.try_sub(&x1)?.try_mul(&y0.try_add(&y1)?.try_mul(&Tensor::scalar(0.5f32))?)?.try_sum(0, false)
            }
            Curve::Pr => pr_area(&tp, &fp, &fn_),
        }
    }
}

/// Keras's `interpolate_pr_auc`: between thresholds, precision is interpolated along the
/// line the true and false positives move on, integrated in closed form.
fn pr_area(tp: &Tensor, fp: &Tensor, fn_: &Tensor) -> Result<Tensor> {
    let (tp0, tp1) = pairs(tp)?;
    let dtp = tp0.try_sub(&tp1)?;
    let p = tp.try_add(fp)?;
    let (p0, p1) = pairs(&p)?;
    let dp = p0.try_sub(&p1)?;
    let prec_slope = divide_no_nan(&dtp, &dp.try_maximum(&Tensor::scalar(0.0f32))?)?;
    let intercept = tp1.try_sub(&prec_slope.try_mul(&p1)?)?;
    let zero = Tensor::scalar(0.0f32);
    let both = p0.try_greater(&zero)?.try_logical_and(&p1.try_greater(&zero)?)?;
    let ratio = both.try_select(&divide_no_nan(&p0, &p1.try_maximum(&zero)?)?, &p0.ones_like())?;
    let pr_auc_increment = divide_no_nan(
        &prec_slope.try_mul(&dtp.try_add(&intercept.try_mul(&ratio.try_log()?)?)?)?,
        &tp1.try_add(&pairs(fn_)?.1)?.try_maximum(&zero)?,
    )?;
    pr_auc_increment.try_sum(0, false)
}

impl Metric for AUC {
    fn result(&self) -> Tensor {
        self.area().expect("f32 counts of one length")
    }
    fn variables(&self) -> Vec<Variable> {
        vec![self.tp.clone(), self.fp.clone(), self.tn.clone(), self.fn_.clone()]
    }
    fn name(&self) -> String {
        "auc".into()
    }
    fn get_config(&self) -> Result<crate::models::ObjectConfig> {
        let curve = match self.curve {
            Curve::Roc => "ROC",
            Curve::Pr => "PR",
        };
        Ok(crate::models::ObjectConfig::new("AUC").with("num_thresholds", self.tp.shape()[0]).with("curve", curve))
    }
}
