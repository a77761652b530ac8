//! Elementwise unary and binary ops, `select` and `cast`.

use kiln_ir::{BinaryOp, DType, Op, UnaryOp};

use super::or_panic;
use crate::context::apply;
use crate::{Error, Result, Tensor};

// The rows of the op table (`kiln_ir::for_each_unary_op!`, `for_each_binary_op!`) define
// these methods: a new elementwise op gets its `x.op()` and `x.try_op()` from its row.

macro_rules! unary_methods {
    ($($V:ident $name:ident $try_name:ident $class:ident $cost:literal $doc:literal;)*) => {
        impl Tensor {$(
            #[doc = $doc]
            #[track_caller]
            pub fn $name(&self) -> Tensor {
                or_panic(self.$try_name())
            }
            #[doc = concat!("The fallible form of [`Tensor::", stringify!($name), "`].")]
            pub fn $try_name(&self) -> Result<Tensor> {
                apply(Op::Unary(UnaryOp::$V), &[self])
            }
        )*}
    };
}

kiln_ir::for_each_unary_op!(unary_methods);

macro_rules! binary_methods {
    ($($V:ident $name:ident $try_name:ident $class:ident -> $res:ident $cf:literal / $ci:literal $doc:literal;)*) => {
        impl Tensor {$(
            #[doc = $doc]
            #[doc = ""]
            #[doc = "Operands broadcast (numpy rules) and must have the same dtype."]
            #[track_caller]
            pub fn $name(&self, other: &Tensor) -> Tensor {
                or_panic(self.$try_name(other))
            }
            #[doc = concat!("The fallible form of [`Tensor::", stringify!($name), "`].")]
            pub fn $try_name(&self, other: &Tensor) -> Result<Tensor> {
                apply(Op::Binary(BinaryOp::$V), &[self, other])
            }
        )*}
    };
}

kiln_ir::for_each_binary_op!(binary_methods);

impl Tensor {
    /// A scalar of this tensor's dtype (how `&x * 2.0` turns the literal into a tensor).
    ///
    /// Panics if `v` cannot be represented exactly in an integer or boolean dtype.
    ///
    /// ```
    /// let x = kiln::Tensor::new(&[1i32, 2]);
    /// assert_eq!(x.scalar_like(3.0).to_scalar::<i32>().unwrap(), 3);
    /// ```
    #[track_caller]
    pub fn scalar_like(&self, v: f64) -> Tensor {
        or_panic(self.try_scalar_like(v))
    }

    /// The fallible form of [`Tensor::scalar_like`].
    pub fn try_scalar_like(&self, v: f64) -> Result<Tensor> {
        scalar_of(self.dtype(), v)
    }

    /// `x ^ p` for a literal exponent.
    ///
    /// ```
    /// let x = kiln::Tensor::new(&[2.0f32, 3.0]);
    /// assert_eq!(x.powf(2.0).to_vec::<f32>().unwrap(), vec![4.0, 9.0]);
    /// ```
    #[track_caller]
    pub fn powf(&self, p: f64) -> Tensor {
        self.pow(&self.scalar_like(p))
    }

    /// `where(self, a, b)`: `a` where `self` is true, else `b` (all three broadcast).
    ///
    /// ```
    /// use kiln::Tensor;
    /// let w = Tensor::new(&[-1.0f32, 2.0]);
    /// let clipped = w.less(&w.scalar_like(0.0)).select(&w.scalar_like(0.0), &w);
    /// assert_eq!(clipped.to_vec::<f32>().unwrap(), vec![0.0, 2.0]);
    /// ```
    #[track_caller]
    pub fn select(&self, a: &Tensor, b: &Tensor) -> Tensor {
        or_panic(self.try_select(a, b))
    }

    /// The fallible form of [`Tensor::select`].
    pub fn try_select(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        apply(Op::Select, &[self, a, b])
    }

    /// Converts to `dtype` (float→int truncates toward zero and saturates; NaN→0).
    #[track_caller]
    pub fn cast(&self, dtype: DType) -> Tensor {
        or_panic(self.try_cast(dtype))
    }

    /// The fallible form of [`Tensor::cast`].
    pub fn try_cast(&self, dtype: DType) -> Result<Tensor> {
        apply(Op::Cast(dtype), &[self])
    }
}

/// A rank-0 tensor of `dtype` holding `v`, which must be exactly representable.
pub(crate) fn scalar_of(dtype: DType, v: f64) -> Result<Tensor> {
    let ok = match dtype {
        DType::F32 | DType::F64 => true,
        DType::I32 => v.fract() == 0.0 && v >= i32::MIN as f64 && v <= i32::MAX as f64,
        DType::I64 => v.fract() == 0.0 && v.abs() < 9.223_372_036_854_776e18,
        DType::Bool => v == 0.0 || v == 1.0,
    };
    if !ok {
        return Err(Error::invalid("scalar", format!("{v} cannot be represented exactly as {dtype}")));
    }
    Ok(Tensor::from_array(kiln_ir::Array::scalar_f64(dtype, v)))
}
