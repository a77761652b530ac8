//! Vectorized transcendentals: range reduction plus polynomial, each written once over
//! [`Ops`] and emitted two ways: as Cranelift IR inline in kernels (the entry points here,
//! through [`Clif`]) and as host routines over tiles (`wide`).
//!
//! The Cranelift form works on a scalar (`f32`, `f64`) or a 128-bit vector (`f32x4`,
//! `f64x2`) value alike, so the vector body of a loop and its scalar tail compute the same
//! bits. FMA is used inside the approximations only when the host has it
//! ([`Fx::fma`]); the user's own `a*b+c` is never contracted (that is `lower`'s job).

pub(crate) mod exp;
pub(crate) mod log;
mod ops;
mod pow;
pub(crate) mod special;
mod trig;
pub(crate) mod wide;

pub(crate) use ops::Ops;
pub(crate) use pow::pow;
pub(crate) use special::rsqrt;
pub(crate) use trig::HostMath;

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
    /// The process addresses the code refers to, as relocatable symbols.
    pub syms: crate::code::Symbols,
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

    pub fn is_f32(&self, v: Value) -> bool {
        self.ty(v).lane_type() == types::F32
    }
}

/// [`Ops`] emitting Cranelift instructions on values of one float type (scalar or vector).
pub(crate) struct Clif<'r, 'a, 'f> {
    fx: &'r mut Fx<'a, 'f>,
    /// The float type; integers have the same lane layout.
    t: Type,
}

impl<'r, 'a, 'f> Clif<'r, 'a, 'f> {
    /// The backend for values of `x`'s type.
    fn of(fx: &'r mut Fx<'a, 'f>, x: Value) -> Self {
        let t = fx.ty(x);
        Clif { fx, t }
    }

    /// A shift amount.
    fn amount(&mut self, n: u32) -> Value {
        self.fx.b.ins().iconst(types::I32, i64::from(n))
    }
}

impl Ops for Clif<'_, '_, '_> {
    type F = Value;
    type I = Value;
    type M = Value;

    fn is_f32(&self) -> bool {
        self.t.lane_type() == types::F32
    }
    fn k(&mut self, c: f64) -> Value {
        self.fx.fconst(self.t, c)
    }
    fn ki(&mut self, c: i64) -> Value {
        self.fx.iconst(Fx::int_of(self.t), c)
    }
    fn add(&mut self, a: Value, b: Value) -> Value {
        self.fx.add(a, b)
    }
    fn sub(&mut self, a: Value, b: Value) -> Value {
        self.fx.sub(a, b)
    }
    fn mul(&mut self, a: Value, b: Value) -> Value {
        self.fx.mul(a, b)
    }
    fn div(&mut self, a: Value, b: Value) -> Value {
        self.fx.div(a, b)
    }
    fn madd(&mut self, a: Value, b: Value, c: Value) -> Value {
        self.fx.madd(a, b, c)
    }
    fn neg(&mut self, a: Value) -> Value {
        self.fx.b.ins().fneg(a)
    }
    fn abs(&mut self, a: Value) -> Value {
        self.fx.b.ins().fabs(a)
    }
    fn lt(&mut self, a: Value, b: Value) -> Value {
        self.fx.fcmp(FloatCC::LessThan, a, b)
    }
    fn gt(&mut self, a: Value, b: Value) -> Value {
        self.fx.fcmp(FloatCC::GreaterThan, a, b)
    }
    fn ge(&mut self, a: Value, b: Value) -> Value {
        self.fx.fcmp(FloatCC::GreaterThanOrEqual, a, b)
    }
    fn eq(&mut self, a: Value, b: Value) -> Value {
        self.fx.fcmp(FloatCC::Equal, a, b)
    }
    fn is_nan(&mut self, a: Value) -> Value {
        self.fx.isnan(a)
    }
    fn and(&mut self, a: Value, b: Value) -> Value {
        self.fx.and(a, b)
    }
    fn sel(&mut self, m: Value, a: Value, b: Value) -> Value {
        self.fx.sel(m, a, b)
    }
    fn sel_i(&mut self, m: Value, a: Value, b: Value) -> Value {
        self.fx.sel(m, a, b)
    }
    fn bits(&mut self, a: Value) -> Value {
        self.fx.bits_of(a)
    }
    fn of_bits(&mut self, a: Value) -> Value {
        self.fx.float_of_bits(a)
    }
    fn iadd(&mut self, a: Value, b: Value) -> Value {
        self.fx.b.ins().iadd(a, b)
    }
    fn isub(&mut self, a: Value, b: Value) -> Value {
        self.fx.b.ins().isub(a, b)
    }
    fn iand(&mut self, a: Value, b: Value) -> Value {
        self.fx.b.ins().band(a, b)
    }
    fn ixor(&mut self, a: Value, b: Value) -> Value {
        self.fx.b.ins().bxor(a, b)
    }
    fn shl(&mut self, a: Value, n: u32) -> Value {
        let sh = self.amount(n);
        self.fx.b.ins().ishl(a, sh)
    }
    fn sshr(&mut self, a: Value, n: u32) -> Value {
        let sh = self.amount(n);
        self.fx.b.ins().sshr(a, sh)
    }
    fn ushr(&mut self, a: Value, n: u32) -> Value {
        let sh = self.amount(n);
        self.fx.b.ins().ushr(a, sh)
    }
    fn igt(&mut self, a: Value, b: Value) -> Value {
        self.fx.icmp(IntCC::SignedGreaterThan, a, b)
    }
    fn ige(&mut self, a: Value, b: Value) -> Value {
        self.fx.icmp(IntCC::SignedGreaterThanOrEqual, a, b)
    }
    fn ieq(&mut self, a: Value, b: Value) -> Value {
        self.fx.icmp(IntCC::Equal, a, b)
    }
}

/// Defines the Cranelift entry point `$name(fx, x)` of the algorithm `$algo`.
macro_rules! clif_entry {
    ($($name:ident => $algo:path),* $(,)?) => {$(
        pub(crate) fn $name(fx: &mut Fx, x: Value) -> Value {
            $algo(&mut Clif::of(fx, x), x)
        }
    )*};
}

clif_entry! {
    exp => exp::exp,
    expm1 => exp::expm1,
    log => log::log,
    log1p => log::log1p,
    tanh => special::tanh,
    sigmoid => special::sigmoid,
    softplus => special::softplus,
}

/// `sin x`; lanes beyond the reduction's bound are recomputed by the host's libm.
pub(crate) fn sin(fx: &mut Fx, x: Value) -> Value {
    let fast = trig::sincos(&mut Clif::of(fx, x), x, false);
    trig::slow_path(fx, x, fast, false)
}

/// `cos x`; lanes beyond the reduction's bound are recomputed by the host's libm.
pub(crate) fn cos(fx: &mut Fx, x: Value) -> Value {
    let fast = trig::sincos(&mut Clif::of(fx, x), x, true);
    trig::slow_path(fx, x, fast, true)
}
