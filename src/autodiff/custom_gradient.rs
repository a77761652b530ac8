//! `custom_gradient`: a forward computation that brings its own gradient (TF's
//! `tf.custom_gradient`), for numerically careful or cheaper backward passes.

use std::rc::Rc;

use crate::context::recording::{self, GradFn, Recorded};
use crate::Tensor;

/// Computes `f(inputs)` and differentiates it with the gradient closure `f` returns instead
/// of through the ops `f` used.
///
/// `f` gets the inputs and returns `(value, grad_fn)`; `grad_fn(dy)` gets the gradient of the
/// value and returns one gradient per input, each of its input's shape and dtype. The forward
/// ops run with every tape paused (nothing inside `f` is recorded); the gradient closure runs
/// during `tape.gradient`, where outer tapes record it, so it should compute from the inputs
/// it captured if second derivatives are wanted. Variables read inside `f` get no gradient.
///
/// The numerically stable softplus (Géron, ch. 12): `ln(eᶻ + 1)` overflows at z = 1000 and so
/// does its naive derivative `eᶻ / (eᶻ + 1)` = inf/inf = NaN, but `1 - 1/(1 + eᶻ)` stays 1:
///
/// ```
/// use kiln::{GradientTape, Tensor};
/// fn my_softplus(z: &Tensor) -> Tensor {
///     kiln::custom_gradient(&[z], |x| {
///         let z = x[0].clone();
///         let value = (z.exp() + 1.0).log();
///         (value, move |dy: &Tensor| vec![dy * (1.0 - 1.0 / (z.exp() + 1.0))])
///     })
/// }
/// let z = Tensor::scalar(1000.0f32);
/// let tape = GradientTape::new();
/// tape.watch(&z);
/// let y = my_softplus(&z);
/// let g = tape.gradient_tensors(&y, &[&z]).unwrap()[0].clone().unwrap();
/// assert_eq!(g.to_scalar::<f32>().unwrap(), 1.0);
/// ```
pub fn custom_gradient<F, G>(inputs: &[&Tensor], f: F) -> Tensor
where
    F: FnOnce(&[Tensor]) -> (Tensor, G),
    G: Fn(&Tensor) -> Vec<Tensor> + 'static,
{
    let args: Vec<Tensor> = inputs.iter().map(|t| (*t).clone()).collect();
    let (value, grad_fn) = recording::without_tapes(|| f(&args));
    // A fresh identity: tapes see this tensor as computed from `inputs` by `grad_fn` alone.
    let out = value.stop_gradient();
    let backward: GradFn =
        Rc::new(move |dy: &Tensor| Ok::<_, crate::Error>(grad_fn(dy).into_iter().map(Some).collect()));
    recording::record(Recorded::Custom(backward), inputs, &out);
    out
}
