//! `Lambda`: any closure as a layer without weights.

use std::sync::Arc;

use super::Layer;
use crate::{Result, Tensor, Variable};

/// Keras's `Lambda`: wraps a closure `Fn(&Tensor) -> Tensor` as a weightless layer.
///
/// ```
/// use kiln::nn::{Lambda, Layer};
/// let double = Lambda::new(|x| x * 2.0);
/// let y = double.call(&kiln::Tensor::new(&[1.0f32, 2.0]), false).unwrap();
/// assert_eq!(y.to_vec::<f32>().unwrap(), vec![2.0, 4.0]);
/// ```
#[derive(Clone)]
pub struct Lambda {
    f: Arc<dyn Fn(&Tensor) -> Tensor + Send + Sync>,
}

impl Lambda {
    pub fn new(f: impl Fn(&Tensor) -> Tensor + Send + Sync + 'static) -> Lambda {
        Lambda { f: Arc::new(f) }
    }
}

impl Layer for Lambda {
    fn call(&self, x: &Tensor, _training: bool) -> Result<Tensor> {
        Ok((self.f)(x))
    }

    fn variables(&self) -> Vec<Variable> {
        Vec::new()
    }

    fn is_trainable(&self) -> bool {
        true
    }

    fn set_trainable(&self, _trainable: bool) {}

    fn name(&self) -> String {
        "lambda".to_string()
    }
}
