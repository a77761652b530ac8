//! The IR of each elementwise instruction, in scalar or vector [`VecMode`], and the loads
//! and stores of every dtype (bools are bytes in memory, lane masks in vector registers).

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, InstBuilder, Value};
use kiln_ir::{BinaryOp, DType, Error, IntUnaryOp, Result, UnaryOp};

use super::{mem, Ins, Program, VecMode};
use crate::math::{self, Fx};

/// Evaluates the program's instructions with `leaves[l]` the value of leaf `l` at the
/// current position, and returns the root's value.
pub(crate) fn eval(fx: &mut Fx, prog: &Program, mode: VecMode, leaves: &[Value]) -> Result<Value> {
    let mut vals: Vec<Option<Value>> =
        prog.ins.iter().map(|i| if let Ins::Leaf(l) = i { Some(leaves[*l]) } else { None }).collect();
    eval_into(fx, prog, mode, &mut vals, |_| true)?;
    Ok(vals[prog.root].expect("root evaluated"))
}

/// Computes each instruction `i` with `wanted(i)` whose value is not given yet, in order;
/// the values of leaves (and of anything else computed elsewhere) must be given.
pub(crate) fn eval_into(
    fx: &mut Fx,
    prog: &Program,
    mode: VecMode,
    vals: &mut [Option<Value>],
    wanted: impl Fn(usize) -> bool,
) -> Result<()> {
    for (i, ins) in prog.ins.iter().enumerate() {
        if vals[i].is_some() || !wanted(i) {
            continue;
        }
        let a = |k: usize| vals[k].expect("operand evaluated before its user");
        let v = match *ins {
            Ins::Leaf(l) => unreachable!("leaf {l} must be loaded by the caller"),
            Ins::Scalar(d, bits) => scalar(fx, mode, d, bits),
            Ins::Unary(op, d, x) => unary(fx, mode, op, d, a(x))?,
            Ins::Binary(op, d, x, y) => binary(fx, op, d, a(x), a(y))?,
            Ins::Select(_, c, x, y) => fx.sel(a(c), a(x), a(y)),
            Ins::Cast(from, to, x) => cast(fx, mode, from, to, a(x))?,
        };
        vals[i] = Some(v);
    }
    Ok(())
}

/// A constant of dtype `d` (given by its bit pattern) in `mode`.
pub(crate) fn scalar(fx: &mut Fx, mode: VecMode, d: DType, bits: u64) -> Value {
    let t = mode.ty(d);
    match d {
        DType::F32 => {
            let s = fx.b.ins().f32const(f32::from_bits(bits as u32));
            splat(fx, t, s)
        }
        DType::F64 => {
            let s = fx.b.ins().f64const(f64::from_bits(bits));
            splat(fx, t, s)
        }
        DType::I32 => fx.iconst(t, bits as u32 as i32 as i64),
        DType::I64 => fx.iconst(t, bits as i64),
        DType::Bool if mode.is_vector() => fx.iconst(t, if bits & 1 == 1 { -1 } else { 0 }),
        DType::Bool => fx.iconst(t, (bits & 1) as i64),
    }
}

fn splat(fx: &mut Fx, t: types::Type, s: Value) -> Value {
    if t.is_vector() {
        fx.b.ins().splat(t, s)
    } else {
        s
    }
}

/// A scalar-mode value of dtype `d` broadcast to all lanes of `mode`.
pub(crate) fn broadcast(fx: &mut Fx, mode: VecMode, d: DType, s: Value) -> Value {
    if !mode.is_vector() {
        return s;
    }
    let t = mode.ty(d);
    if d == DType::Bool {
        let lane = t.lane_type();
        let w = fx.b.ins().uextend(lane, s);
        let m = fx.b.ins().ineg(w);
        fx.b.ins().splat(t, m)
    } else {
        fx.b.ins().splat(t, s)
    }
}

/// Loads one value of dtype `d` (all lanes of `mode`) from `addr + offset`.
pub(crate) fn load(fx: &mut Fx, mode: VecMode, d: DType, addr: Value, offset: i32) -> Value {
    let t = mode.ty(d);
    if d != DType::Bool || !mode.is_vector() {
        return fx.b.ins().load(t, mem(), addr, offset);
    }
    if mode.class == 4 {
        // Four bytes, widened byte -> i16 -> i32, then != 0 as a lane mask.
        let w = fx.b.ins().load(types::I32, mem(), addr, offset);
        let v = fx.b.ins().scalar_to_vector(types::I32X4, w);
        let v = fx.cast_bits(types::I8X16, v);
        let v = fx.b.ins().uwiden_low(v);
        let v = fx.b.ins().uwiden_low(v);
        let z = fx.iconst(types::I32X4, 0);
        fx.b.ins().icmp(IntCC::NotEqual, v, z)
    } else {
        let mut v = fx.iconst(types::I64X2, 0);
        for lane in 0..2u8 {
            let b = fx.b.ins().load(types::I8, mem(), addr, offset + lane as i32);
            let w = fx.b.ins().uextend(types::I64, b);
            let m = fx.b.ins().ineg(w);
            v = fx.b.ins().insertlane(v, m, lane);
        }
        v
    }
}

/// Stores `v` (dtype `d`, all lanes of `mode`) at `addr + offset`.
pub(crate) fn store(fx: &mut Fx, mode: VecMode, d: DType, addr: Value, offset: i32, v: Value) {
    if d != DType::Bool || !mode.is_vector() {
        fx.b.ins().store(mem(), v, addr, offset);
        return;
    }
    if mode.class == 4 {
        // Lane masks -> 0/1 -> narrowed to four bytes.
        let one = fx.iconst(types::I32X4, 1);
        let v = fx.b.ins().band(v, one);
        let v = fx.b.ins().snarrow(v, v);
        let v = fx.b.ins().snarrow(v, v);
        let v = fx.cast_bits(types::I32X4, v);
        let w = fx.b.ins().extractlane(v, 0);
        fx.b.ins().store(mem(), w, addr, offset);
    } else {
        for lane in 0..2u8 {
            let m = fx.b.ins().extractlane(v, lane);
            let b = fx.b.ins().ireduce(types::I8, m);
            let b = fx.b.ins().band_imm_s(b, 1);
            fx.b.ins().store(mem(), b, addr, offset + lane as i32);
        }
    }
}

fn float_unary(fx: &mut Fx, op: UnaryOp, x: Value) -> Value {
    match op {
        UnaryOp::Neg => fx.b.ins().fneg(x),
        UnaryOp::Abs => fx.b.ins().fabs(x),
        UnaryOp::Exp => math::exp(fx, x),
        UnaryOp::Log => math::log(fx, x),
        UnaryOp::Log1p => math::log1p(fx, x),
        UnaryOp::Expm1 => math::expm1(fx, x),
        UnaryOp::Sqrt => fx.b.ins().sqrt(x),
        UnaryOp::Rsqrt => math::rsqrt(fx, x),
        UnaryOp::Square => fx.b.ins().fmul(x, x),
        UnaryOp::Tanh => math::tanh(fx, x),
        UnaryOp::Sigmoid => math::sigmoid(fx, x),
        UnaryOp::Softplus => math::softplus(fx, x),
        UnaryOp::Sin => math::sin(fx, x),
        UnaryOp::Cos => math::cos(fx, x),
        UnaryOp::Floor => fx.b.ins().floor(x),
        UnaryOp::Ceil => fx.b.ins().ceil(x),
        UnaryOp::Round => fx.b.ins().nearest(x),
        UnaryOp::Relu => {
            // x < 0 ? +0 : x  (NaN and -0 pass through, as in the interpreter)
            let neg = fx.fcmp_k(FloatCC::LessThan, x, 0.0);
            fx.sel_k(neg, 0.0, x)
        }
        UnaryOp::Sign => {
            // 1, -1, +0 for both zeros, NaN stays NaN.
            let zero = fx.fcmp_k(FloatCC::Equal, x, 0.0);
            let r = fx.sel_k(zero, 0.0, x);
            let neg = fx.fcmp_k(FloatCC::LessThan, x, 0.0);
            let r = fx.sel_k(neg, -1.0, r);
            let pos = fx.fcmp_k(FloatCC::GreaterThan, x, 0.0);
            fx.sel_k(pos, 1.0, r)
        }
        UnaryOp::LogicalNot => unreachable!("logical_not on floats is rejected by infer"),
    }
}

fn int_unary(fx: &mut Fx, op: UnaryOp, x: Value) -> Result<Value> {
    let t = fx.ty(x);
    let zero = fx.iconst(t, 0);
    Ok(match op.on_ints() {
        Some(IntUnaryOp::Neg) => fx.b.ins().ineg(x),
        Some(IntUnaryOp::Abs) => {
            let n = fx.b.ins().ineg(x);
            let neg = fx.icmp(IntCC::SignedLessThan, x, zero);
            fx.sel(neg, n, x)
        }
        Some(IntUnaryOp::Square) => fx.b.ins().imul(x, x),
        Some(IntUnaryOp::Relu) => {
            let pos = fx.icmp(IntCC::SignedGreaterThan, x, zero);
            fx.sel(pos, x, zero)
        }
        Some(IntUnaryOp::Sign) => {
            let one = fx.iconst(t, 1);
            let m1 = fx.iconst(t, -1);
            let neg = fx.icmp(IntCC::SignedLessThan, x, zero);
            let r = fx.sel(neg, m1, zero);
            let pos = fx.icmp(IntCC::SignedGreaterThan, x, zero);
            fx.sel(pos, one, r)
        }
        None => return Err(Error::Compile(format!("{} is not defined on integers", op.name()))),
    })
}

fn unary(fx: &mut Fx, _mode: VecMode, op: UnaryOp, d: DType, x: Value) -> Result<Value> {
    match d {
        DType::F32 | DType::F64 => Ok(float_unary(fx, op, x)),
        DType::I32 | DType::I64 => int_unary(fx, op, x),
        DType::Bool if op == UnaryOp::LogicalNot => Ok(fx.not(x)),
        DType::Bool => Err(Error::Compile(format!("{} is not defined on bool", op.name()))),
    }
}

/// NaN-propagating maximum with the interpreter's (numpy's) rule `a >= b || isnan(a) ? a : b`,
/// bit for bit (ties between -0 and +0 return `a`).
fn fmaximum(fx: &mut Fx, a: Value, b: Value) -> Value {
    let ge = fx.fcmp(FloatCC::GreaterThanOrEqual, a, b);
    let nan = fx.isnan(a);
    let m = fx.or(ge, nan);
    fx.sel(m, a, b)
}

/// `a <= b || isnan(a) ? a : b`.
fn fminimum(fx: &mut Fx, a: Value, b: Value) -> Value {
    let le = fx.fcmp(FloatCC::LessThanOrEqual, a, b);
    let nan = fx.isnan(a);
    let m = fx.or(le, nan);
    fx.sel(m, a, b)
}

/// Truncating integer division of scalars that never traps: `x / 0 = 0` (the interpreter
/// reports an error instead; see docs/JIT.md), `MIN / -1 = MIN` (wrapping).
fn sdiv_scalar(fx: &mut Fx, a: Value, d: Value) -> Value {
    let t = fx.ty(a);
    let zero = fx.b.ins().icmp_imm_s(IntCC::Equal, d, 0);
    let m1 = fx.b.ins().icmp_imm_s(IntCC::Equal, d, -1);
    let bad = fx.b.ins().bor(zero, m1);
    let one = fx.b.ins().iconst(t, 1);
    let safe = fx.b.ins().select(bad, one, d);
    let q = fx.b.ins().sdiv(a, safe);
    let na = fx.b.ins().ineg(a);
    let q = fx.b.ins().select(m1, na, q);
    let z = fx.b.ins().iconst(t, 0);
    fx.b.ins().select(zero, z, q)
}

fn sdiv(fx: &mut Fx, a: Value, d: Value) -> Value {
    let t = fx.ty(a);
    if !t.is_vector() {
        return sdiv_scalar(fx, a, d);
    }
    // No vector integer division on x86: lane by lane.
    let mut r = a;
    for lane in 0..t.lane_count() as u8 {
        let x = fx.b.ins().extractlane(a, lane);
        let y = fx.b.ins().extractlane(d, lane);
        let q = sdiv_scalar(fx, x, y);
        r = fx.b.ins().insertlane(r, q, lane);
    }
    r
}

/// `a ^ e` for integers: by squaring over every value bit of the exponent, without branches
/// (so lanes need not agree), wrapping on overflow as the interpreter does. A negative
/// exponent gives 0 here; the executor runs kernels with an integer power on the interpreter,
/// which reports it as an error.
fn ipow(fx: &mut Fx, a: Value, e: Value) -> Value {
    let t = fx.ty(a);
    let (zero, one) = (fx.iconst(t, 0), fx.iconst(t, 1));
    let (mut acc, mut base, mut rest) = (one, a, e);
    for _ in 0..t.lane_type().bits() - 1 {
        let bit = fx.b.ins().band(rest, one);
        let set = fx.icmp(IntCC::NotEqual, bit, zero);
        let times = fx.b.ins().imul(acc, base);
        acc = fx.sel(set, times, acc);
        base = fx.b.ins().imul(base, base);
        rest = fx.b.ins().ushr_imm_u(rest, 1);
    }
    let negative = fx.icmp(IntCC::SignedLessThan, e, zero);
    fx.sel(negative, zero, acc)
}

/// The dtype classes a lowering distinguishes.
#[derive(Clone, Copy)]
enum Class {
    Float,
    Int,
    Bool,
}

fn class(d: DType) -> Class {
    match d {
        DType::F32 | DType::F64 => Class::Float,
        DType::I32 | DType::I64 => Class::Int,
        DType::Bool => Class::Bool,
    }
}

/// One binary op on values of dtype `d` (scalars or vectors alike): one arm per op and
/// dtype class, so a new op must say what it does on each.
pub(crate) fn binary(fx: &mut Fx, op: BinaryOp, d: DType, a: Value, b: Value) -> Result<Value> {
    use BinaryOp::*;
    use Class::*;
    Ok(match (op, class(d)) {
        (Add, Float) => fx.b.ins().fadd(a, b),
        (Sub, Float) => fx.b.ins().fsub(a, b),
        (Mul, Float) => fx.b.ins().fmul(a, b),
        (Div, Float) => fx.b.ins().fdiv(a, b),
        (Pow, Float) => math::pow(fx, a, b),
        (Maximum, Float) => fmaximum(fx, a, b),
        (Minimum, Float) => fminimum(fx, a, b),
        (Equal, Float) => fx.fcmp(FloatCC::Equal, a, b),
        (NotEqual, Float) => fx.fcmp(FloatCC::NotEqual, a, b),
        (Less, Float) => fx.fcmp(FloatCC::LessThan, a, b),
        (LessEqual, Float) => fx.fcmp(FloatCC::LessThanOrEqual, a, b),
        (Greater, Float) => fx.fcmp(FloatCC::GreaterThan, a, b),
        (GreaterEqual, Float) => fx.fcmp(FloatCC::GreaterThanOrEqual, a, b),
        (Add, Int) => fx.b.ins().iadd(a, b),
        (Sub, Int) => fx.b.ins().isub(a, b),
        (Mul, Int) => fx.b.ins().imul(a, b),
        (Div, Int) => sdiv(fx, a, b),
        (Maximum, Int) => {
            let gt = fx.icmp(IntCC::SignedGreaterThan, a, b);
            fx.sel(gt, a, b)
        }
        (Minimum, Int) => {
            let lt = fx.icmp(IntCC::SignedLessThan, a, b);
            fx.sel(lt, a, b)
        }
        (Equal, Int | Bool) => fx.icmp(IntCC::Equal, a, b),
        (NotEqual, Int | Bool) => fx.icmp(IntCC::NotEqual, a, b),
        (Less, Int) => fx.icmp(IntCC::SignedLessThan, a, b),
        (LessEqual, Int) => fx.icmp(IntCC::SignedLessThanOrEqual, a, b),
        (Greater, Int) => fx.icmp(IntCC::SignedGreaterThan, a, b),
        (GreaterEqual, Int) => fx.icmp(IntCC::SignedGreaterThanOrEqual, a, b),
        (LogicalAnd, Bool) => fx.b.ins().band(a, b),
        (LogicalOr, Bool) => fx.b.ins().bor(a, b),
        (Pow, Int) => ipow(fx, a, b),
        (LogicalAnd | LogicalOr, Float | Int)
        | (Add | Sub | Mul | Div | Pow | Maximum | Minimum | Less | LessEqual | Greater | GreaterEqual, Bool) => {
            return Err(Error::Compile(format!("{} is not defined on {d}", op.name())))
        }
    })
}

/// `cast` with Rust `as` semantics: float -> int truncates and saturates (NaN -> 0),
/// int -> int wraps, anything -> bool is `!= 0`, bool -> numeric is 0/1.
fn cast(fx: &mut Fx, mode: VecMode, from: DType, to: DType, x: Value) -> Result<Value> {
    if from == to {
        return Ok(x);
    }
    let tt = mode.ty(to);
    let ft = mode.ty(from);
    if to == DType::Bool {
        return Ok(if from.is_float() {
            let z = fx.fconst(ft, 0.0);
            fx.fcmp(FloatCC::NotEqual, x, z)
        } else {
            let z = fx.iconst(ft, 0);
            fx.icmp(IntCC::NotEqual, x, z)
        });
    }
    if from == DType::Bool {
        if mode.is_vector() {
            // Lane masks are all-ones: keep the bits of 1 (or 1.0) where set.
            let one = if to.is_float() {
                let f = fx.fconst(tt, 1.0);
                fx.bits_of(f)
            } else {
                fx.iconst(tt, 1)
            };
            let m = fx.cast_bits(fx.ty(one), x);
            let r = fx.b.ins().band(m, one);
            return Ok(fx.cast_bits(tt, r));
        }
        let w = fx.b.ins().uextend(types::I32, x);
        return Ok(match to {
            DType::I32 => w,
            DType::I64 => fx.b.ins().uextend(types::I64, w),
            _ => fx.b.ins().fcvt_from_sint(tt, w),
        });
    }
    let v = match (from, to) {
        (DType::F32, DType::F64) => fx.b.ins().fpromote(tt, x),
        (DType::F64, DType::F32) => fx.b.ins().fdemote(tt, x),
        (f, t) if f.is_float() && t.is_int() => fx.b.ins().fcvt_to_sint_sat(tt, x),
        (f, t) if f.is_int() && t.is_float() => fx.b.ins().fcvt_from_sint(tt, x),
        (DType::I32, DType::I64) => fx.b.ins().sextend(tt, x),
        (DType::I64, DType::I32) => fx.b.ins().ireduce(tt, x),
        _ => return Err(Error::Compile(format!("cast {from} -> {to} has no lowering"))),
    };
    Ok(v)
}
