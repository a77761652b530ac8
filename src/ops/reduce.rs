//! Reductions over axes (`sum mean max min prod`) and `argmax`/`argmin`.

use kiln_ir::{ArgOp, Op, ReduceOp};

use super::args::{axes_of, axis_of, IntList};
use super::or_panic;
use crate::context::apply;
use crate::{Result, Tensor};

fn reduce(t: &Tensor, op: ReduceOp, axes: &(impl IntList + ?Sized), keepdims: bool) -> Result<Tensor> {
    let axes = axes_of(op.name(), axes, t.rank())?;
    apply(Op::Reduce { op, axes, keepdims }, &[t])
}

macro_rules! reduction {
    ($($name:ident $try_name:ident $all:ident $variant:ident $doc:literal;)*) => {
        impl Tensor {$(
            #[doc = $doc]
            #[doc = ""]
            #[doc = "`axes` may be negative (from the end); `keepdims` keeps reduced dims as size 1."]
            #[track_caller]
            pub fn $name(&self, axes: impl IntList, keepdims: bool) -> Tensor {
                or_panic(self.$try_name(axes, keepdims))
            }
            #[doc = concat!("The fallible form of [`Tensor::", stringify!($name), "`].")]
            pub fn $try_name(&self, axes: impl IntList, keepdims: bool) -> Result<Tensor> {
                reduce(self, ReduceOp::$variant, &axes, keepdims)
            }
            #[doc = concat!("[`Tensor::", stringify!($name), "`] over every axis, giving a scalar.")]
            #[track_caller]
            pub fn $all(&self) -> Tensor {
                let all: Vec<usize> = (0..self.rank()).collect();
                or_panic(reduce(self, ReduceOp::$variant, &all, false))
            }
        )*}
    };
}

reduction! {
    sum try_sum sum_all Sum "Sum over `axes`.";
    mean try_mean mean_all Mean "Mean over `axes` (NaN over an empty float axis; integer means truncate).";
    max try_max max_all Max "Maximum over `axes` (NaN propagates; `-inf` over an empty axis).";
    min try_min min_all Min "Minimum over `axes` (NaN propagates; `+inf` over an empty axis).";
    prod try_prod prod_all Prod "Product over `axes`.";
}

impl Tensor {
    /// Index of the maximum along `axis` as `I64`; ties go to the first index.
    ///
    /// ```
    /// let t = kiln::Tensor::new(&[[1.0f32, 5.0, 5.0], [7.0, 0.0, 1.0]]);
    /// assert_eq!(t.argmax(1, false).to_vec::<i64>().unwrap(), vec![1, 0]);
    /// ```
    #[track_caller]
    pub fn argmax(&self, axis: i64, keepdims: bool) -> Tensor {
        or_panic(self.try_argmax(axis, keepdims))
    }

    /// The fallible form of [`Tensor::argmax`].
    pub fn try_argmax(&self, axis: i64, keepdims: bool) -> Result<Tensor> {
        let axis = axis_of("argmax", axis, self.rank())?;
        apply(Op::ArgReduce { op: ArgOp::ArgMax, axis, keepdims }, &[self])
    }

    /// Index of the minimum along `axis` as `I64`; ties go to the first index.
    #[track_caller]
    pub fn argmin(&self, axis: i64, keepdims: bool) -> Tensor {
        or_panic(self.try_argmin(axis, keepdims))
    }

    /// The fallible form of [`Tensor::argmin`].
    pub fn try_argmin(&self, axis: i64, keepdims: bool) -> Result<Tensor> {
        let axis = axis_of("argmin", axis, self.rank())?;
        apply(Op::ArgReduce { op: ArgOp::ArgMin, axis, keepdims }, &[self])
    }
}
