//! Weight constraints: any `Fn(&Tensor) -> Tensor` projecting weights back onto an allowed
//! set. They are applied **after each optimizer update**, by the training step calling
//! [`super::Layer::apply_constraints`] right after `apply_gradients` (as Keras's optimizer
//! does for `variable.constraint`); the optimizer itself knows nothing of layers.
//!
//! ```
//! use kiln::nn::constraints::non_neg;
//! use kiln::Tensor;
//! let w = Tensor::new(&[-1.0f32, 2.0]);
//! assert_eq!(non_neg(&w).to_vec::<f32>().unwrap(), vec![0.0, 2.0]);
//! // The seed's custom constraint:
//! let my_positive_weights = |w: &Tensor| w.less(&w.scalar_like(0.0)).select(&w.zeros_like(), w);
//! assert_eq!(my_positive_weights(&w).to_vec::<f32>().unwrap(), vec![0.0, 2.0]);
//! ```

use std::sync::Arc;

use crate::Tensor;

/// A shared constraint closure: weights to projected weights of the same type.
pub type Constraint = Arc<dyn Fn(&Tensor) -> Tensor + Send + Sync>;

/// Zeroes negative weights (Keras `NonNeg`: `w · (w ≥ 0)`).
pub fn non_neg(w: &Tensor) -> Tensor {
    w * &w.greater_equal(&w.scalar_like(0.0)).cast(w.dtype())
}

/// Keras `MaxNorm`: rescales each slice along `axis` (default 0: each unit's incoming
/// weights of a Dense kernel) whose L2 norm exceeds `max_value`.
///
/// ```
/// let w = kiln::Tensor::new(&[[3.0f64, 0.1], [4.0, 0.1]]);
/// let c = kiln::nn::constraints::max_norm(1.0, 0)(&w).to_vec::<f64>().unwrap();
/// assert!((c[0] - 0.6).abs() < 1e-6 && (c[2] - 0.8).abs() < 1e-6 && (c[1] - 0.1).abs() < 1e-6);
/// ```
pub fn max_norm(max_value: f64, axis: i64) -> impl Fn(&Tensor) -> Tensor + Send + Sync + Clone + 'static {
    move |w: &Tensor| {
        // √0 has an infinite derivative: a zero slice takes the root of 1 instead, so its
        // gradient is 0 (the select's) rather than inf·0 = NaN.
        let squares = w.square().sum(axis, true);
        let nonzero = squares.greater(&squares.scalar_like(0.0));
        let norms = nonzero.select(&nonzero.select(&squares, &squares.scalar_like(1.0)).sqrt(), &squares.zeros_like());
        let desired = norms.minimum(&norms.scalar_like(max_value)).maximum(&norms.scalar_like(0.0));
        w * &(desired / (norms + 1e-7))
    }
}
