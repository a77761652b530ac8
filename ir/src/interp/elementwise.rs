//! Elementwise ops: `Unary`, `Binary`, `Select`, `Cast`, `BroadcastTo`.
//!
//! Float transcendentals are written once, in f64: an f32 operand is widened, the function
//! evaluated in f64 and the result rounded once to f32. That makes the f32 reference
//! essentially correctly rounded, the best yardstick for the JIT's approximations.

use crate::array::{Array, Data};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::op::{BinaryOp, IntUnaryOp, UnaryOp};
use crate::shape::{broadcast_shapes, Shape};

use super::layout::{broadcast_offsets, take, Reads};
use super::scalar::{maximum, minimum, Num};

fn mismatch(op: &'static str, d: DType) -> Error {
    Error::UnsupportedDType { op, dtype: d, expected: "" }
}

/// The float function of a unary op, evaluated in f64.
fn float_fn(op: UnaryOp) -> Option<fn(f64) -> f64> {
    Some(match op {
        UnaryOp::Neg => |x| -x,
        UnaryOp::Abs => f64::abs,
        UnaryOp::Exp => f64::exp,
        UnaryOp::Log => f64::ln,
        UnaryOp::Log1p => f64::ln_1p,
        UnaryOp::Expm1 => f64::exp_m1,
        UnaryOp::Sqrt => f64::sqrt,
        UnaryOp::Rsqrt => |x| 1.0 / x.sqrt(),
        UnaryOp::Square => |x| x * x,
        UnaryOp::Tanh => f64::tanh,
        UnaryOp::Sigmoid => sigmoid,
        // `x < 0` is false for NaN and -0.0, so both pass through unchanged.
        UnaryOp::Relu => |x| if x < 0.0 { 0.0 } else { x },
        UnaryOp::Softplus => |x| (-x.abs()).exp().ln_1p() + x.max(0.0),
        UnaryOp::Sin => f64::sin,
        UnaryOp::Cos => f64::cos,
        UnaryOp::Sign => sign,
        UnaryOp::Floor => f64::floor,
        UnaryOp::Ceil => f64::ceil,
        UnaryOp::Round => f64::round_ties_even,
        UnaryOp::LogicalNot => return None,
    })
}

/// `1 / (1 + e^-x)` without overflow: for negative x use `e^x / (1 + e^x)`.
fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// -1, 0 or 1; NaN stays NaN and both zeros give +0.
fn sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else if x == 0.0 {
        0.0
    } else {
        x
    }
}

macro_rules! int_unary {
    ($op:expr, $v:expr, $t:ty) => {{
        let f: fn($t) -> $t = match $op.on_ints() {
            Some(IntUnaryOp::Neg) => |x| x.wrapping_neg(),
            Some(IntUnaryOp::Abs) => |x| x.wrapping_abs(),
            Some(IntUnaryOp::Square) => |x| x.wrapping_mul(x),
            Some(IntUnaryOp::Sign) => |x| x.signum(),
            Some(IntUnaryOp::Relu) => |x| x.max(0),
            None => return Err(mismatch($op.name(), <$t as crate::Element>::DTYPE)),
        };
        $v.iter().map(|&x| f(x)).collect::<Vec<$t>>()
    }};
}

pub(crate) fn unary(op: UnaryOp, a: &Array) -> Result<Array> {
    let data = match (a.data(), float_fn(op)) {
        (Data::F32(v), Some(f)) => Data::F32(v.iter().map(|&x| f(x as f64) as f32).collect()),
        (Data::F64(v), Some(f)) => Data::F64(v.iter().map(|&x| f(x)).collect()),
        (Data::I32(v), _) => Data::I32(int_unary!(op, v, i32)),
        (Data::I64(v), _) => Data::I64(int_unary!(op, v, i64)),
        (Data::Bool(v), None) => Data::Bool(v.iter().map(|&x| !x).collect()),
        (d, _) => return Err(mismatch(op.name(), d.dtype())),
    };
    Array::new(data, a.shape())
}

/// Arithmetic and comparison of two numbers of the same type; `None` for an integer
/// division by zero.
fn numeric<T: Num>(op: BinaryOp, x: &[T], y: &[T], rx: &Reads, ry: &Reads, n: usize) -> Result<Data> {
    let pairs = (0..n).map(|i| (x[rx.at(i)], y[ry.at(i)]));
    let cmp = |f: fn(T, T) -> bool| Data::Bool(pairs.clone().map(|(a, b)| f(a, b)).collect());
    let arith = |f: fn(T, T) -> T| T::into_data(pairs.clone().map(|(a, b)| f(a, b)).collect());
    Ok(match op {
        BinaryOp::Add => arith(T::add),
        BinaryOp::Sub => arith(T::sub),
        BinaryOp::Mul => arith(T::mul),
        BinaryOp::Div => {
            let q: Option<Vec<T>> = pairs.clone().map(|(a, b)| a.div(b)).collect();
            T::into_data(q.ok_or_else(|| Error::runtime("div", format!("integer division by zero ({})", T::DTYPE)))?)
        }
        BinaryOp::Pow => {
            let p: Option<Vec<T>> = pairs.clone().map(|(a, b)| a.pow(b)).collect();
            T::into_data(p.ok_or_else(|| {
                Error::runtime("pow", format!("integers to negative integer powers are not allowed ({})", T::DTYPE))
            })?)
        }
        BinaryOp::Maximum => arith(maximum),
        BinaryOp::Minimum => arith(minimum),
        BinaryOp::Equal => cmp(|a, b| a == b),
        BinaryOp::NotEqual => cmp(|a, b| a != b),
        BinaryOp::Less => cmp(|a, b| a < b),
        BinaryOp::LessEqual => cmp(|a, b| a <= b),
        BinaryOp::Greater => cmp(|a, b| a > b),
        BinaryOp::GreaterEqual => cmp(|a, b| a >= b),
        BinaryOp::LogicalAnd | BinaryOp::LogicalOr => return Err(mismatch(op.name(), T::DTYPE)),
    })
}

fn logical(op: BinaryOp, x: &[bool], y: &[bool], rx: &Reads, ry: &Reads, n: usize) -> Result<Data> {
    let f: fn(bool, bool) -> bool = match op {
        BinaryOp::LogicalAnd => |a, b| a && b,
        BinaryOp::LogicalOr => |a, b| a || b,
        BinaryOp::Equal => |a, b| a == b,
        BinaryOp::NotEqual => |a, b| a != b,
        BinaryOp::Add
        | BinaryOp::Sub
        | BinaryOp::Mul
        | BinaryOp::Div
        | BinaryOp::Pow
        | BinaryOp::Maximum
        | BinaryOp::Minimum
        | BinaryOp::Less
        | BinaryOp::LessEqual
        | BinaryOp::Greater
        | BinaryOp::GreaterEqual => return Err(mismatch(op.name(), DType::Bool)),
    };
    Ok(Data::Bool((0..n).map(|i| f(x[rx.at(i)], y[ry.at(i)])).collect()))
}

/// The numpy broadcast of the operands' shapes (computed, not taken from the node's type,
/// so a wrong type is caught by `eval`'s final check rather than by an index panic).
fn broadcast(op: &'static str, a: &[usize], b: &[usize]) -> Result<Shape> {
    broadcast_shapes(a, b).ok_or_else(|| Error::ShapeMismatch { op, lhs: a.into(), rhs: b.into() })
}

pub(crate) fn binary(op: BinaryOp, a: &Array, b: &Array) -> Result<Array> {
    let shape = broadcast(op.name(), a.shape(), b.shape())?;
    let (ra, rb, n) = (Reads::new(a.shape(), &shape), Reads::new(b.shape(), &shape), shape.iter().product());
    let data = match (a.data(), b.data()) {
        (Data::F32(x), Data::F32(y)) => numeric(op, x, y, &ra, &rb, n)?,
        (Data::F64(x), Data::F64(y)) => numeric(op, x, y, &ra, &rb, n)?,
        (Data::I32(x), Data::I32(y)) => numeric(op, x, y, &ra, &rb, n)?,
        (Data::I64(x), Data::I64(y)) => numeric(op, x, y, &ra, &rb, n)?,
        (Data::Bool(x), Data::Bool(y)) => logical(op, x, y, &ra, &rb, n)?,
        (x, y) => return Err(Error::DTypeMismatch { op: op.name(), lhs: x.dtype(), rhs: y.dtype() }),
    };
    Array::new(data, &shape)
}

pub(crate) fn select(c: &Array, a: &Array, b: &Array) -> Result<Array> {
    let cond = c.as_slice::<bool>().ok_or_else(|| mismatch("select", c.dtype()))?;
    let shape = broadcast("select", &broadcast("select", c.shape(), a.shape())?, b.shape())?;
    let r = [Reads::new(c.shape(), &shape), Reads::new(a.shape(), &shape), Reads::new(b.shape(), &shape)];
    let n: usize = shape.iter().product();
    fn pick<T: Copy>(cond: &[bool], x: &[T], y: &[T], r: &[Reads; 3], n: usize) -> Vec<T> {
        (0..n).map(|i| if cond[r[0].at(i)] { x[r[1].at(i)] } else { y[r[2].at(i)] }).collect()
    }
    let data = match (a.data(), b.data()) {
        (Data::F32(x), Data::F32(y)) => Data::F32(pick(cond, x, y, &r, n)),
        (Data::F64(x), Data::F64(y)) => Data::F64(pick(cond, x, y, &r, n)),
        (Data::I32(x), Data::I32(y)) => Data::I32(pick(cond, x, y, &r, n)),
        (Data::I64(x), Data::I64(y)) => Data::I64(pick(cond, x, y, &r, n)),
        (Data::Bool(x), Data::Bool(y)) => Data::Bool(pick(cond, x, y, &r, n)),
        (x, y) => return Err(Error::DTypeMismatch { op: "select", lhs: x.dtype(), rhs: y.dtype() }),
    };
    Array::new(data, &shape)
}

/// Converts every element with Rust's `as`, whose rules are TensorFlow's: float → int
/// truncates toward zero and saturates (NaN → 0), int → int wraps, int → float rounds to
/// nearest. `$zero` is the source type's zero (anything nonzero, NaN included, is `true`).
macro_rules! cast_from {
    ($v:expr, $to:expr, $zero:expr) => {
        match $to {
            DType::F32 => Data::F32($v.iter().map(|&x| x as f32).collect()),
            DType::F64 => Data::F64($v.iter().map(|&x| x as f64).collect()),
            DType::I32 => Data::I32($v.iter().map(|&x| x as i32).collect()),
            DType::I64 => Data::I64($v.iter().map(|&x| x as i64).collect()),
            DType::Bool => Data::Bool($v.iter().map(|&x| x != $zero).collect()),
        }
    };
}

pub(crate) fn cast(a: &Array, to: DType) -> Result<Array> {
    let data = match a.data() {
        Data::F32(v) => cast_from!(v, to, 0.0),
        Data::F64(v) => cast_from!(v, to, 0.0),
        Data::I32(v) => cast_from!(v, to, 0),
        Data::I64(v) => cast_from!(v, to, 0),
        Data::Bool(v) => {
            let bytes: Vec<u8> = v.iter().map(|&x| x as u8).collect();
            cast_from!(bytes, to, 0)
        }
    };
    Array::new(data, a.shape())
}

pub(crate) fn broadcast_to(a: &Array, shape: &[usize]) -> Result<Array> {
    if !crate::shape::broadcasts_to(a.shape(), shape) {
        return Err(Error::ShapeMismatch { op: "broadcast_to", lhs: a.shape().into(), rhs: shape.into() });
    }
    let offs = broadcast_offsets(a.shape(), shape);
    Array::new(crate::with_data!(a.data(), v => crate::dtype::Element::into_data(take(v, &offs))), shape)
}
