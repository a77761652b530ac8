//! Weight regularizers: any `Fn(&Tensor) -> Tensor` giving a scalar penalty; a layer
//! reports the penalties of its weights in [`super::Layer::losses`], for the training step
//! to add to the loss (Keras's `add_loss`). Built-ins follow Keras 3.
//!
//! ```
//! use kiln::nn::regularizers::{l1_l2, l2};
//! use kiln::Tensor;
//! let w = Tensor::new(&[1.0f64, -2.0]);
//! assert!((l2(0.01)(&w).to_scalar::<f64>().unwrap() - 0.05).abs() < 1e-12);
//! assert!((l1_l2(0.1, 0.01)(&w).to_scalar::<f64>().unwrap() - 0.35).abs() < 1e-12);
//! // The seed's custom regularizer:
//! let my_l1_regularizer = |w: &Tensor| (w * 0.01).abs().sum_all();
//! assert!((my_l1_regularizer(&w).to_scalar::<f64>().unwrap() - 0.03).abs() < 1e-12);
//! ```

use std::sync::Arc;

use crate::Tensor;

/// A shared regularizer closure: weights to a scalar penalty.
pub type Regularizer = Arc<dyn Fn(&Tensor) -> Tensor + Send + Sync>;

/// `factor · Σ|w|`.
pub fn l1(factor: f64) -> impl Fn(&Tensor) -> Tensor + Send + Sync + Clone + 'static {
    move |w: &Tensor| w.abs().sum_all() * factor
}

/// `factor · Σw²` (Keras 3's L2 has no ½).
pub fn l2(factor: f64) -> impl Fn(&Tensor) -> Tensor + Send + Sync + Clone + 'static {
    move |w: &Tensor| w.square().sum_all() * factor
}

/// `l1 · Σ|w| + l2 · Σw²`.
pub fn l1_l2(l1: f64, l2: f64) -> impl Fn(&Tensor) -> Tensor + Send + Sync + Clone + 'static {
    move |w: &Tensor| w.abs().sum_all() * l1 + w.square().sum_all() * l2
}
