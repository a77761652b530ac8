//! Ops built from other ops: softmax, log-softmax, logsumexp. Each subtracts the maximum
//! first so large inputs do not overflow; gradients flow through the primitive ops.

use super::args::IntList;
use crate::Tensor;

impl Tensor {
    /// `exp(x) / sum(exp(x))` along `axis`.
    ///
    /// ```
    /// let p = kiln::Tensor::new(&[1000.0f32, 1000.0]).softmax(-1);
    /// assert_eq!(p.to_vec::<f32>().unwrap(), vec![0.5, 0.5]);
    /// ```
    #[track_caller]
    pub fn softmax(&self, axis: i64) -> Tensor {
        let shifted = self - &self.max(axis, true).stop_gradient();
        let e = shifted.exp();
        &e / &e.sum(axis, true)
    }

    /// `log(softmax(x))` along `axis`, computed as `x - max - log(sum(exp(x - max)))`.
    #[track_caller]
    pub fn log_softmax(&self, axis: i64) -> Tensor {
        let shifted = self - &self.max(axis, true).stop_gradient();
        // Its own statement, so that eagerly `shifted` is held by nothing else when the
        // subtraction below is deferred: both chains then read `self` (src/lazy.rs).
        let log_sum = shifted.exp().sum(axis, true).log();
        &shifted - &log_sum
    }

    /// `log(sum(exp(x)))` over `axes`, stable for large inputs and for all `-inf` rows.
    ///
    /// ```
    /// let t = kiln::Tensor::new(&[1000.0f64, 1000.0]);
    /// let l = t.logsumexp(&[0], false).to_scalar::<f64>().unwrap();
    /// assert!((l - (1000.0 + 2f64.ln())).abs() < 1e-9);
    /// ```
    #[track_caller]
    pub fn logsumexp(&self, axes: impl IntList, keepdims: bool) -> Tensor {
        let axes = axes.to_i64s();
        let m = self.max(&axes, true).stop_gradient();
        // A row of all -inf has max -inf; shifting by it would give NaN, so shift by 0 there.
        let finite = m.abs().less(&m.scalar_like(f64::INFINITY));
        let m = finite.select(&m, &m.zeros_like());
        let s = (self - &m).exp().sum(&axes, true).log() + &m;
        if keepdims {
            s
        } else {
            s.squeeze(&axes)
        }
    }
}
