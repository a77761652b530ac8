//! Vectorized transcendentals emitted as Cranelift IR: range reduction plus polynomial.
//!
//! Every function here works on a scalar (`f32`, `f64`) or a 128-bit vector (`f32x4`,
//! `f64x2`) value alike, so the vector body of a loop and its scalar tail compute the same
//! bits. FMA is used inside the approximations only when the host has it
//! ([`Fx::fma`]); the user's own `a*b+c` is never contracted (that is `lower`'s job).

mod exp;
mod log;
mod pow;
mod special;
mod trig;
pub(crate) mod wide;

pub(crate) use exp::{exp, expm1};
pub(crate) use log::{log, log1p};
pub(crate) use pow::pow;
pub(crate) use special::{rsqrt, sigmoid, softplus, tanh};
pub(crate) use trig::{cos, sin, HostMath};

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, Endianness, InstBuilder, MemFlagsData, Type, Value};
use cranelift_frontend::FunctionBuilder;

/// An IR emitter: the function builder plus what the host ISA allows.
pub(crate) struct Fx<'a, 'f> {
    pub b: &'a mut FunctionBuilder<'f>,
    /// Whether `fma` lowers to one instruction (`has_fma`); without it, `mul` + `add`.
    pub fma: bool,
    /// Host routines for the rare slow paths (huge trig arguments).
    pub host: HostMath,
}

impl<'a, 'f> Fx<'a, 'f> {
    pub fn ty(&self, v: Value) -> Type {
        self.b.func.dfg.value_type(v)
    }

    /// The integer type with the same lane layout as float type `t`.
    pub fn int_of(t: Type) -> Type {
        match t {
            types::F32 => types::I32,
            types::F64 => types::I64,
            types::F32X4 => types::I32X4,
            types::F64X2 => types::I64X2,
            _ => t,
        }
    }

    /// The float type with the same lane layout as integer type `t`.
    pub fn float_of(t: Type) -> Type {
        match t {
            types::I32 => types::F32,
            types::I64 => types::F64,
            types::I32X4 => types::F32X4,
            types::I64X2 => types::F64X2,
            _ => t,
        }
    }

    /// `c` as a value of float type `t` (splatted if `t` is a vector).
    pub fn fconst(&mut self, t: Type, c: f64) -> Value {
        let lane = t.lane_type();
        let s = if lane == types::F32 { self.b.ins().f32const(c as f32) } else { self.b.ins().f64const(c) };
        self.splat_if(t, s)
    }

    /// `c` as a value of integer type `t` (splatted if `t` is a vector).
    pub fn iconst(&mut self, t: Type, c: i64) -> Value {
        let s = self.b.ins().iconst(t.lane_type(), c);
        self.splat_if(t, s)
    }

    fn splat_if(&mut self, t: Type, s: Value) -> Value {
        if t.is_vector() {
            self.b.ins().splat(t, s)
        } else {
            s
        }
    }

    /// Reinterprets the bits of `v` as type `t` (same width).
    pub fn cast_bits(&mut self, t: Type, v: Value) -> Value {
        if self.ty(v) == t {
            return v;
        }
        let flags = MemFlagsData::new().with_endianness(Endianness::Little);
        self.b.ins().bitcast(t, flags, v)
    }

    pub fn bits_of(&mut self, v: Value) -> Value {
        let t = Self::int_of(self.ty(v));
        self.cast_bits(t, v)
    }

    pub fn float_of_bits(&mut self, v: Value) -> Value {
        let t = Self::float_of(self.ty(v));
        self.cast_bits(t, v)
    }

    pub fn add(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fadd(a, b)
    }
    pub fn sub(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fsub(a, b)
    }
    pub fn mul(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fmul(a, b)
    }
    pub fn div(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fdiv(a, b)
    }

    /// `a * b + c`, fused when the host has FMA (only inside approximations).
    pub fn madd(&mut self, a: Value, b: Value, c: Value) -> Value {
        if self.fma {
            self.b.ins().fma(a, b, c)
        } else {
            let p = self.b.ins().fmul(a, b);
            self.b.ins().fadd(p, c)
        }
    }

    /// `a * k + c` with a constant `k`.
    pub fn madd_k(&mut self, a: Value, k: f64, c: Value) -> Value {
        let kv = self.fconst(self.ty(a), k);
        self.madd(a, kv, c)
    }

    /// Horner evaluation of `coeffs[0] + coeffs[1] x + ...`.
    pub fn poly(&mut self, x: Value, coeffs: &[f64]) -> Value {
        let t = self.ty(x);
        let mut r = self.fconst(t, coeffs[coeffs.len() - 1]);
        for &c in coeffs[..coeffs.len() - 1].iter().rev() {
            let cv = self.fconst(t, c);
            r = self.madd(r, x, cv);
        }
        r
    }

    /// A float comparison: an `i8` 0/1 for scalars, an integer lane mask for vectors.
    pub fn fcmp(&mut self, cc: FloatCC, a: Value, b: Value) -> Value {
        self.b.ins().fcmp(cc, a, b)
    }

    pub fn fcmp_k(&mut self, cc: FloatCC, a: Value, k: f64) -> Value {
        let kv = self.fconst(self.ty(a), k);
        self.b.ins().fcmp(cc, a, kv)
    }

    pub fn icmp(&mut self, cc: IntCC, a: Value, b: Value) -> Value {
        self.b.ins().icmp(cc, a, b)
    }

    pub fn icmp_k(&mut self, cc: IntCC, a: Value, k: i64) -> Value {
        let kv = self.iconst(self.ty(a), k);
        self.b.ins().icmp(cc, a, kv)
    }

    /// `mask ? a : b`, for a mask made by [`Fx::fcmp`] / [`Fx::icmp`].
    pub fn sel(&mut self, mask: Value, a: Value, b: Value) -> Value {
        let t = self.ty(a);
        if t.is_vector() {
            let m = self.cast_bits(t, mask);
            self.b.ins().bitselect(m, a, b)
        } else {
            self.b.ins().select(mask, a, b)
        }
    }

    /// `mask ? k : b` for a float constant `k`.
    pub fn sel_k(&mut self, mask: Value, k: f64, b: Value) -> Value {
        let kv = self.fconst(self.ty(b), k);
        self.sel(mask, kv, b)
    }

    pub fn and(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().band(a, b)
    }
    pub fn or(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().bor(a, b)
    }
    /// Logical not of a mask (`i8` 0/1 for scalars, all-ones lanes for vectors).
    pub fn not(&mut self, m: Value) -> Value {
        if self.ty(m).is_vector() {
            self.b.ins().bnot(m)
        } else {
            self.b.ins().bxor_imm_s(m, 1)
        }
    }

    pub fn isnan(&mut self, x: Value) -> Value {
        self.b.ins().fcmp(FloatCC::Unordered, x, x)
    }

    /// `x` clamped to `[lo, hi]`; NaN stays NaN.
    pub fn clamp(&mut self, x: Value, lo: f64, hi: f64) -> Value {
        let m = self.fcmp_k(FloatCC::LessThan, x, lo);
        let x = self.sel_k(m, lo, x);
        let m = self.fcmp_k(FloatCC::GreaterThan, x, hi);
        self.sel_k(m, hi, x)
    }

    /// The float type's constants for the magic-number rounding trick: `1.5 * 2^mant`.
    pub fn magic(t: Type) -> f64 {
        if t.lane_type() == types::F32 {
            12582912.0
        } else {
            6755399441055744.0
        }
    }

    /// Rounds `x` (|x| < 2^22) to the nearest integer, half to even: returns the rounded
    /// float and the same integer in the matching integer type.
    pub fn round_int(&mut self, x: Value) -> (Value, Value) {
        let t = self.ty(x);
        let magic = Self::magic(t);
        let mv = self.fconst(t, magic);
        let biased = self.add(x, mv);
        let n = self.sub(biased, mv);
        let bits = self.bits_of(biased);
        let mbits = self.bits_of(mv);
        let ni = self.b.ins().isub(bits, mbits);
        (n, ni)
    }

    /// An integer (|k| < 2^22) converted to the float type of the same layout, exactly.
    pub fn int_to_float(&mut self, k: Value) -> Value {
        let it = self.ty(k);
        let ft = Self::float_of(it);
        let magic = Self::magic(ft);
        let mv = self.fconst(ft, magic);
        let mbits = self.bits_of(mv);
        let biased = self.b.ins().iadd(k, mbits);
        let f = self.float_of_bits(biased);
        self.sub(f, mv)
    }

    /// `2^k` for an integer `k` in the normal exponent range.
    pub fn pow2i(&mut self, k: Value) -> Value {
        let it = self.ty(k);
        let (bias, mant) = if it.lane_type() == types::I32 { (127, 23) } else { (1023, 52) };
        let bv = self.iconst(it, bias);
        let e = self.b.ins().iadd(k, bv);
        let sh = self.b.ins().iconst(types::I32, mant);
        let bits = self.b.ins().ishl(e, sh);
        self.float_of_bits(bits)
    }

    pub fn shr_s(&mut self, v: Value, n: i64) -> Value {
        let sh = self.b.ins().iconst(types::I32, n);
        self.b.ins().sshr(v, sh)
    }

    pub fn shr_u(&mut self, v: Value, n: i64) -> Value {
        let sh = self.b.ins().iconst(types::I32, n);
        self.b.ins().ushr(v, sh)
    }

    pub fn is_f32(&self, v: Value) -> bool {
        self.ty(v).lane_type() == types::F32
    }
}
