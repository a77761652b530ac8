//! JAX's functional style on top of the tape: `grad(f)` and `value_and_grad(f)` turn a
//! closure of tensors into one that also returns the gradients with respect to every argument.

use std::marker::PhantomData;

use super::tape::GradientTape;
use crate::function::{CallArgs, Outputs, TraceFn};
use crate::{Error, Result, Tensor};

/// The gradient of a scalar-valued closure (JAX's `jax.grad`), made by [`grad`].
pub struct Grad<A, F> {
    f: F,
    _args: PhantomData<fn(A)>,
}

/// The value and gradient of a closure (JAX's `jax.value_and_grad`), made by [`value_and_grad`].
pub struct ValueAndGrad<A, F> {
    f: F,
    _args: PhantomData<fn(A)>,
}

/// `grad(f).call(args)` is the gradient of `f` with respect to each argument, as `f` would be
/// called on them. A non-scalar result is summed (as the tape does); an argument the result
/// does not depend on gets zeros (as JAX). Gradients of gradients work: `grad` of a closure
/// that calls `grad` gives second derivatives.
///
/// ```
/// use kiln::Tensor;
/// let f = |x: &Tensor, y: &Tensor| x.square() * y;
/// let g = kiln::grad(f).call((&Tensor::scalar(3.0f64), &Tensor::scalar(2.0f64))).unwrap();
/// assert_eq!(g[0].item().unwrap(), 12.0); // 2xy
/// assert_eq!(g[1].item().unwrap(), 9.0); // x^2
///
/// let d2 = kiln::grad(|x: &Tensor| kiln::grad(|x: &Tensor| x.powf(3.0)).call(x).unwrap().remove(0));
/// assert_eq!(d2.call(&Tensor::scalar(2.0f64)).unwrap()[0].item().unwrap(), 12.0); // 6x
/// ```
pub fn grad<A, F: TraceFn<A>>(f: F) -> Grad<A, F> {
    Grad { f, _args: PhantomData }
}

/// Like [`grad`], but `call` also returns the value of `f`.
///
/// ```
/// use kiln::Tensor;
/// let (v, g) = kiln::value_and_grad(|x: &Tensor| x.exp().sum_all()).call(&Tensor::new(&[0.0f64, 0.0])).unwrap();
/// assert_eq!(v.item().unwrap(), 2.0);
/// assert_eq!(g[0].to_vec::<f64>().unwrap(), vec![1.0, 1.0]);
/// ```
pub fn value_and_grad<A, F: TraceFn<A>>(f: F) -> ValueAndGrad<A, F> {
    ValueAndGrad { f, _args: PhantomData }
}

impl<A, F: TraceFn<A>> Grad<A, F> {
    /// The gradients with respect to every argument, in order.
    pub fn call(&self, args: impl CallArgs) -> Result<Vec<Tensor>> {
        Ok(differentiate(&self.f, args.into_tensors())?.1)
    }
}

impl<A, F: TraceFn<A>> ValueAndGrad<A, F> {
    /// The value of `f` and its gradients with respect to every argument.
    pub fn call(&self, args: impl CallArgs) -> Result<(Tensor, Vec<Tensor>)> {
        differentiate(&self.f, args.into_tensors())
    }
}

fn differentiate<A, F: TraceFn<A>>(f: &F, args: Vec<Tensor>) -> Result<(Tensor, Vec<Tensor>)> {
    if let Some(n) = F::ARITY {
        if n != args.len() {
            return Err(Error::Gradient(format!("the function takes {n} arguments, got {}", args.len())));
        }
    }
    let tape = GradientTape::new();
    for a in &args {
        tape.watch(a);
    }
    let mut outs = f.invoke(&args).flatten()?;
    if outs.len() != 1 {
        return Err(Error::Gradient(format!("grad needs a function of one tensor result, got {}", outs.len())));
    }
    let value = outs.remove(0);
    let refs: Vec<&Tensor> = args.iter().collect();
    let grads = tape.gradient_tensors(&value, &refs)?;
    let grads = grads.into_iter().zip(&args).map(|(g, a)| g.unwrap_or_else(|| a.zeros_like())).collect();
    Ok((value, grads))
}
