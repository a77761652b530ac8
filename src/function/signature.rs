//! How Rust closures, their arguments and their results meet the traced graph: closures of
//! 0 to 8 `&Tensor` arguments, argument tuples `(&a, &b)`, and results that are a `Tensor`,
//! a tuple of them, a `Vec<Tensor>`, `()` or a `Result` of those.

use smallvec::SmallVec;

use crate::{Result, Tensor};

/// A closure [`crate::function`] can trace. Implemented for `Fn(&Tensor, ..) -> O` with 0 to
/// 8 arguments, and for `Fn(&[Tensor]) -> O` taking any number; `A` only tells them apart.
pub trait TraceFn<A>: Send + Sync + 'static {
    type Output: Outputs;
    /// The number of arguments, or `None` for a closure over a slice.
    const ARITY: Option<usize>;
    /// Calls the closure with `args.len() == ARITY` tensors.
    fn invoke(&self, args: &[Tensor]) -> Self::Output;
}

macro_rules! trace_fn {
    ($n:expr; $($i:tt $T:ident),*) => {
        impl<F, O> TraceFn<($($T,)*)> for F
        where
            F: Fn($(&$T),*) -> O + Send + Sync + 'static,
            O: Outputs,
        {
            type Output = O;
            const ARITY: Option<usize> = Some($n);
            #[allow(unused_variables)]
            fn invoke(&self, args: &[Tensor]) -> O {
                self($(&args[$i]),*)
            }
        }
    };
}

impl<F, O> TraceFn<Vec<Tensor>> for F
where
    F: Fn(&[Tensor]) -> O + Send + Sync + 'static,
    O: Outputs,
{
    type Output = O;
    const ARITY: Option<usize> = None;
    fn invoke(&self, args: &[Tensor]) -> O {
        self(args)
    }
}

trace_fn!(0;);
trace_fn!(1; 0 Tensor);
trace_fn!(2; 0 Tensor, 1 Tensor);
trace_fn!(3; 0 Tensor, 1 Tensor, 2 Tensor);
trace_fn!(4; 0 Tensor, 1 Tensor, 2 Tensor, 3 Tensor);
trace_fn!(5; 0 Tensor, 1 Tensor, 2 Tensor, 3 Tensor, 4 Tensor);
trace_fn!(6; 0 Tensor, 1 Tensor, 2 Tensor, 3 Tensor, 4 Tensor, 5 Tensor);
trace_fn!(7; 0 Tensor, 1 Tensor, 2 Tensor, 3 Tensor, 4 Tensor, 5 Tensor, 6 Tensor);
trace_fn!(8; 0 Tensor, 1 Tensor, 2 Tensor, 3 Tensor, 4 Tensor, 5 Tensor, 6 Tensor, 7 Tensor);

/// What a traced closure may return, flattened to a list of tensors and rebuilt after a call.
pub trait Outputs: Sized + 'static {
    /// What `call` returns (a `Result<T>` output unwraps to `T`'s value).
    type Value;
    fn flatten(self) -> Result<Vec<Tensor>>;
    fn unflatten(tensors: Vec<Tensor>) -> Self::Value;
    /// [`Outputs::unflatten`] from the outputs one by one: what a compiled call uses, so a
    /// function returning tensors or tuples of them builds no `Vec` (issue 18, W5).
    ///
    /// ```
    /// use kiln::{Outputs, Tensor};
    /// let outs = [Tensor::scalar(1.0f32), Tensor::scalar(2.0f32)];
    /// let (a, b) = <(Tensor, Tensor)>::unflatten_iter(outs.into_iter());
    /// assert_eq!((a.to_scalar::<f32>().unwrap(), b.to_scalar::<f32>().unwrap()), (1.0, 2.0));
    /// ```
    fn unflatten_iter(tensors: impl Iterator<Item = Tensor>) -> Self::Value {
        Self::unflatten(tensors.collect())
    }
    /// The tensors of a value `call` returned, in output order, for
    /// [`Function::call_into`](crate::Function::call_into) to overwrite; `None` (the default)
    /// if the value cannot be taken apart, and then `call_into` assigns a new value.
    ///
    /// ```
    /// use kiln::{Outputs, Tensor};
    /// let mut pair = (Tensor::scalar(1.0f32), Tensor::scalar(2.0f32));
    /// assert_eq!(<(Tensor, Tensor)>::tensors_mut(&mut pair).unwrap().len(), 2);
    /// ```
    fn tensors_mut(_value: &mut Self::Value) -> Option<SmallVec<[&mut Tensor; 8]>> {
        None
    }
}

impl Outputs for Tensor {
    type Value = Tensor;
    fn flatten(self) -> Result<Vec<Tensor>> {
        Ok(vec![self])
    }
    fn unflatten(mut t: Vec<Tensor>) -> Tensor {
        t.pop().expect("one output")
    }
    fn unflatten_iter(mut t: impl Iterator<Item = Tensor>) -> Tensor {
        t.next().expect("one output")
    }
    fn tensors_mut(t: &mut Tensor) -> Option<SmallVec<[&mut Tensor; 8]>> {
        Some(smallvec::smallvec![t])
    }
}

impl Outputs for Vec<Tensor> {
    type Value = Vec<Tensor>;
    fn flatten(self) -> Result<Vec<Tensor>> {
        Ok(self)
    }
    fn unflatten(t: Vec<Tensor>) -> Vec<Tensor> {
        t
    }
    fn tensors_mut(t: &mut Vec<Tensor>) -> Option<SmallVec<[&mut Tensor; 8]>> {
        Some(t.iter_mut().collect())
    }
}

impl Outputs for () {
    type Value = ();
    fn flatten(self) -> Result<Vec<Tensor>> {
        Ok(vec![])
    }
    fn unflatten(_: Vec<Tensor>) {}
    fn unflatten_iter(_: impl Iterator<Item = Tensor>) {}
    fn tensors_mut(_: &mut ()) -> Option<SmallVec<[&mut Tensor; 8]>> {
        Some(SmallVec::new())
    }
}

impl<T: Outputs> Outputs for Result<T> {
    type Value = T::Value;
    fn flatten(self) -> Result<Vec<Tensor>> {
        self?.flatten()
    }
    fn unflatten(t: Vec<Tensor>) -> T::Value {
        T::unflatten(t)
    }
    fn unflatten_iter(t: impl Iterator<Item = Tensor>) -> T::Value {
        T::unflatten_iter(t)
    }
    fn tensors_mut(value: &mut T::Value) -> Option<SmallVec<[&mut Tensor; 8]>> {
        T::tensors_mut(value)
    }
}

macro_rules! tuple_outputs {
    ($($i:tt),*) => {
        impl Outputs for ($(tuple_outputs!(@t $i),)*) {
            type Value = Self;
            fn flatten(self) -> Result<Vec<Tensor>> {
                Ok(vec![$(self.$i),*])
            }
            fn unflatten(t: Vec<Tensor>) -> Self {
                Self::unflatten_iter(t.into_iter())
            }
            fn unflatten_iter(mut it: impl Iterator<Item = Tensor>) -> Self {
                ($(tuple_outputs!(@next it $i),)*)
            }
            fn tensors_mut(value: &mut Self) -> Option<SmallVec<[&mut Tensor; 8]>> {
                Some(smallvec::smallvec![$(&mut value.$i),*])
            }
        }
    };
    (@t $i:tt) => { Tensor };
    (@next $it:ident $i:tt) => { $it.next().expect("the output count is fixed by the trace") };
}

tuple_outputs!(0);
tuple_outputs!(0, 1);
tuple_outputs!(0, 1, 2);
tuple_outputs!(0, 1, 2, 3);
tuple_outputs!(0, 1, 2, 3, 4);
tuple_outputs!(0, 1, 2, 3, 4, 5);
tuple_outputs!(0, 1, 2, 3, 4, 5, 6);
tuple_outputs!(0, 1, 2, 3, 4, 5, 6, 7);

/// Arguments of a call: `()`, `&a`, `(&a, &b, ..)` up to 8, or a slice/`Vec` of tensors.
pub trait CallArgs {
    fn into_tensors(self) -> Vec<Tensor>;
    /// Calls `f` with the arguments borrowed: a compiled call reads them in place, so
    /// arguments that are already references are neither cloned nor collected.
    ///
    /// ```
    /// use kiln::{CallArgs, Tensor};
    /// let (a, b) = (Tensor::scalar(1.0f32), Tensor::scalar(2.0f32));
    /// let n = (&a, &b).with_refs(|args| {
    ///     assert!(std::ptr::eq(args[1], &b)); // the caller's tensor itself, not a clone
    ///     args.len()
    /// });
    /// assert_eq!(n, 2);
    /// ```
    fn with_refs<R>(self, f: impl FnOnce(&[&Tensor]) -> R) -> R
    where
        Self: Sized,
    {
        let owned = self.into_tensors();
        let refs: SmallVec<[&Tensor; 8]> = owned.iter().collect();
        f(&refs)
    }
}

impl CallArgs for () {
    fn into_tensors(self) -> Vec<Tensor> {
        vec![]
    }
    fn with_refs<R>(self, f: impl FnOnce(&[&Tensor]) -> R) -> R {
        f(&[])
    }
}

impl CallArgs for &Tensor {
    fn into_tensors(self) -> Vec<Tensor> {
        vec![self.clone()]
    }
    fn with_refs<R>(self, f: impl FnOnce(&[&Tensor]) -> R) -> R {
        f(&[self])
    }
}

impl CallArgs for &[Tensor] {
    fn into_tensors(self) -> Vec<Tensor> {
        self.to_vec()
    }
    fn with_refs<R>(self, f: impl FnOnce(&[&Tensor]) -> R) -> R {
        let refs: SmallVec<[&Tensor; 8]> = self.iter().collect();
        f(&refs)
    }
}

impl CallArgs for Vec<Tensor> {
    fn into_tensors(self) -> Vec<Tensor> {
        self
    }
}

impl CallArgs for &[&Tensor] {
    fn into_tensors(self) -> Vec<Tensor> {
        self.iter().map(|t| (*t).clone()).collect()
    }
    fn with_refs<R>(self, f: impl FnOnce(&[&Tensor]) -> R) -> R {
        f(self)
    }
}

macro_rules! call_args {
    ($($i:tt),*) => {
        impl CallArgs for ($(call_args!(@ref $i),)*) {
            fn into_tensors(self) -> Vec<Tensor> {
                vec![$(self.$i.clone()),*]
            }
            fn with_refs<R>(self, f: impl FnOnce(&[&Tensor]) -> R) -> R {
                f(&[$(self.$i),*])
            }
        }
    };
    (@ref $i:tt) => { &Tensor };
}

call_args!(0);
call_args!(0, 1);
call_args!(0, 1, 2);
call_args!(0, 1, 2, 3);
call_args!(0, 1, 2, 3, 4);
call_args!(0, 1, 2, 3, 4, 5);
call_args!(0, 1, 2, 3, 4, 5, 6);
call_args!(0, 1, 2, 3, 4, 5, 6, 7);
