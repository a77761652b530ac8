//! Elementwise unary and binary ops, `select` and `cast`.

use kiln_ir::{BinaryOp, DType, Op, UnaryOp};

use super::or_panic;
use crate::trace::apply;
use crate::{Error, Result, Tensor};

macro_rules! unary {
    ($($name:ident $try_name:ident $variant:ident $doc:literal;)*) => {
        impl Tensor {$(
            #[doc = $doc]
            #[track_caller]
            pub fn $name(&self) -> Tensor {
                or_panic(self.$try_name())
            }
            #[doc = concat!("The fallible form of [`Tensor::", stringify!($name), "`].")]
            pub fn $try_name(&self) -> Result<Tensor> {
                apply(Op::Unary(UnaryOp::$variant), &[self])
            }
        )*}
    };
}

unary! {
    neg try_neg Neg "`-x`.";
    abs try_abs Abs "`|x|`.";
    exp try_exp Exp "`e^x`.";
    log try_log Log "Natural logarithm.";
    log1p try_log1p Log1p "`ln(1 + x)`, accurate for small `x`.";
    expm1 try_expm1 Expm1 "`e^x - 1`, accurate for small `x`.";
    sqrt try_sqrt Sqrt "Square root.";
    rsqrt try_rsqrt Rsqrt "`1 / sqrt(x)`.";
    square try_square Square "`x * x`.";
    tanh try_tanh Tanh "Hyperbolic tangent.";
    sigmoid try_sigmoid Sigmoid "`1 / (1 + e^-x)`, stable for large `|x|`.";
    relu try_relu Relu "`max(x, 0)` (NaN stays NaN).";
    softplus try_softplus Softplus "`ln(1 + e^x)`, computed without overflow.";
    sin try_sin Sin "Sine.";
    cos try_cos Cos "Cosine.";
    sign try_sign Sign "-1, 0 or 1 (NaN stays NaN).";
    floor try_floor Floor "Round toward -inf.";
    ceil try_ceil Ceil "Round toward +inf.";
    round try_round Round "Round half to even (TF's convention).";
    logical_not try_logical_not LogicalNot "Boolean not.";
}

macro_rules! binary {
    ($($name:ident $try_name:ident $variant:ident $doc:literal;)*) => {
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
                apply(Op::Binary(BinaryOp::$variant), &[self, other])
            }
        )*}
    };
}

binary! {
    add try_add Add "Elementwise sum.";
    sub try_sub Sub "Elementwise difference.";
    mul try_mul Mul "Elementwise product.";
    div try_div Div "Elementwise quotient (integers truncate toward zero; integer division by zero is an error).";
    pow try_pow Pow "`self ^ other` (floats).";
    maximum try_maximum Maximum "Elementwise maximum (NaN propagates).";
    minimum try_minimum Minimum "Elementwise minimum (NaN propagates).";
    equal try_equal Equal "`==`, giving a `Bool` tensor.";
    not_equal try_not_equal NotEqual "`!=`, giving a `Bool` tensor.";
    less try_less Less "`<`, giving a `Bool` tensor.";
    less_equal try_less_equal LessEqual "`<=`, giving a `Bool` tensor.";
    greater try_greater Greater "`>`, giving a `Bool` tensor.";
    greater_equal try_greater_equal GreaterEqual "`>=`, giving a `Bool` tensor.";
    logical_and try_logical_and LogicalAnd "Boolean and.";
    logical_or try_logical_or LogicalOr "Boolean or.";
}

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
