//! `Flatten`: `[batch, d1, d2, ...] -> [batch, d1 · d2 · ...]`.

use super::Layer;
use crate::{Error, Result, Tensor, Variable};

/// Keras's `Flatten`: keeps the batch axis, flattens the rest.
///
/// ```
/// use kiln::nn::{Flatten, Layer};
/// let x = kiln::Tensor::zeros(&[2, 8, 8], kiln::DType::F32);
/// assert_eq!(Flatten.call(&x, false).unwrap().shape(), &[2, 64]);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Flatten;

impl Layer for Flatten {
    fn call(&self, x: &Tensor, _training: bool) -> Result<Tensor> {
        if x.rank() == 0 {
            return Err(Error::invalid("Flatten", "needs a batch axis, got a scalar"));
        }
        let rest: usize = x.shape()[1..].iter().product();
        x.try_reshape([x.shape()[0], rest])
    }

    fn variables(&self) -> Vec<Variable> {
        Vec::new()
    }

    fn is_trainable(&self) -> bool {
        true
    }

    fn set_trainable(&self, _trainable: bool) {}

    fn get_config(&self) -> Result<crate::models::ObjectConfig> {
        Ok(crate::models::ObjectConfig::new("Flatten"))
    }

    fn name(&self) -> String {
        "flatten".to_string()
    }
}
