//! The language the approximations are written in, once: [`Ops`], the handful of lane-wise
//! operations they use. Two backends implement it:
//!
//! - [`super::Clif`] emits each operation as a Cranelift instruction on a scalar or 128-bit
//!   vector value (the code inlined into kernels);
//! - `wide::Host<F>` performs it on one `f32` or `f64`, `#[inline(always)]`, so that the
//!   routines' loops over a tile, compiled for AVX-512 or AVX2, vectorize it 16 or 8 lanes
//!   wide (f64: 8 or 4).
//!
//! Every operation is IEEE-exact or defined bit for bit in both backends (`madd` is one
//! fused rounding in both where the host has FMA, the only case where routines are used), so
//! one algorithm gives the same bits along both paths. The derived operations (`poly`,
//! `round_int`, ...) are provided methods, shared by both backends.

/// Lane-wise float and integer operations on one float format (f32 or f64).
pub(crate) trait Ops {
    /// A float value: one lane or a vector of lanes.
    type F: Copy;
    /// An integer of the float's width, lane for lane (`i32` lanes for f32, `i64` for f64).
    type I: Copy;
    /// A per-lane truth value, as comparisons make it.
    type M: Copy;

    /// Whether the format is f32 (else f64): selects each algorithm's constants.
    fn is_f32(&self) -> bool;
    /// `c` rounded to the format, in every lane.
    fn k(&mut self, c: f64) -> Self::F;
    /// `c` (in the integer's range) in every lane.
    fn ki(&mut self, c: i64) -> Self::I;

    fn add(&mut self, a: Self::F, b: Self::F) -> Self::F;
    fn sub(&mut self, a: Self::F, b: Self::F) -> Self::F;
    fn mul(&mut self, a: Self::F, b: Self::F) -> Self::F;
    fn div(&mut self, a: Self::F, b: Self::F) -> Self::F;
    /// `a * b + c`, rounded once when the target has FMA (the approximations are tuned for it).
    fn madd(&mut self, a: Self::F, b: Self::F, c: Self::F) -> Self::F;
    fn neg(&mut self, a: Self::F) -> Self::F;
    fn abs(&mut self, a: Self::F) -> Self::F;

    /// Ordered comparisons: false when either side is NaN.
    fn lt(&mut self, a: Self::F, b: Self::F) -> Self::M;
    fn gt(&mut self, a: Self::F, b: Self::F) -> Self::M;
    fn ge(&mut self, a: Self::F, b: Self::F) -> Self::M;
    fn eq(&mut self, a: Self::F, b: Self::F) -> Self::M;
    fn is_nan(&mut self, a: Self::F) -> Self::M;
    fn and(&mut self, a: Self::M, b: Self::M) -> Self::M;
    /// `m ? a : b`, lane by lane.
    fn sel(&mut self, m: Self::M, a: Self::F, b: Self::F) -> Self::F;
    fn sel_i(&mut self, m: Self::M, a: Self::I, b: Self::I) -> Self::I;

    /// The float's bits as an integer, and back.
    fn bits(&mut self, a: Self::F) -> Self::I;
    fn of_bits(&mut self, a: Self::I) -> Self::F;
    /// Wrapping integer arithmetic and bit operations.
    fn iadd(&mut self, a: Self::I, b: Self::I) -> Self::I;
    fn isub(&mut self, a: Self::I, b: Self::I) -> Self::I;
    fn iand(&mut self, a: Self::I, b: Self::I) -> Self::I;
    fn ixor(&mut self, a: Self::I, b: Self::I) -> Self::I;
    fn shl(&mut self, a: Self::I, n: u32) -> Self::I;
    /// Arithmetic (sign-filling) right shift.
    fn sshr(&mut self, a: Self::I, n: u32) -> Self::I;
    /// Logical (zero-filling) right shift.
    fn ushr(&mut self, a: Self::I, n: u32) -> Self::I;
    /// Signed integer comparisons.
    fn igt(&mut self, a: Self::I, b: Self::I) -> Self::M;
    fn ige(&mut self, a: Self::I, b: Self::I) -> Self::M;
    fn ieq(&mut self, a: Self::I, b: Self::I) -> Self::M;

    /// `a * k + c` with a constant `k`.
    #[inline(always)]
    fn madd_k(&mut self, a: Self::F, k: f64, c: Self::F) -> Self::F {
        let kv = self.k(k);
        self.madd(a, kv, c)
    }

    /// Horner evaluation of `coeffs[0] + coeffs[1] x + ...`.
    #[inline(always)]
    fn poly(&mut self, x: Self::F, coeffs: &[f64]) -> Self::F {
        let mut r = self.k(coeffs[coeffs.len() - 1]);
        for &c in coeffs[..coeffs.len() - 1].iter().rev() {
            let cv = self.k(c);
            r = self.madd(r, x, cv);
        }
        r
    }

    /// `x` clamped to `[lo, hi]`; NaN stays NaN.
    #[inline(always)]
    fn clamp(&mut self, x: Self::F, lo: f64, hi: f64) -> Self::F {
        let lov = self.k(lo);
        let m = self.lt(x, lov);
        let x = self.sel(m, lov, x);
        let hiv = self.k(hi);
        let m = self.gt(x, hiv);
        self.sel(m, hiv, x)
    }

    /// `1.5 * 2^mant`: adding it rounds a small float to an integer, held in the low bits.
    #[inline(always)]
    fn magic(&mut self) -> Self::F {
        self.k(if self.is_f32() { 12582912.0 } else { 6755399441055744.0 })
    }

    /// Rounds `x` (|x| < 2^22) to the nearest integer, half to even: returns the rounded
    /// float and the same integer.
    #[inline(always)]
    fn round_int(&mut self, x: Self::F) -> (Self::F, Self::I) {
        let mv = self.magic();
        let biased = self.add(x, mv);
        let n = self.sub(biased, mv);
        let bits = self.bits(biased);
        let mbits = self.bits(mv);
        (n, self.isub(bits, mbits))
    }

    /// An integer (|k| < 2^22) converted to a float exactly.
    #[inline(always)]
    fn int_to_float(&mut self, k: Self::I) -> Self::F {
        let mv = self.magic();
        let mbits = self.bits(mv);
        let biased = self.iadd(k, mbits);
        let f = self.of_bits(biased);
        self.sub(f, mv)
    }

    /// `2^k` for an integer `k` in the normal exponent range.
    #[inline(always)]
    fn pow2i(&mut self, k: Self::I) -> Self::F {
        let (bias, mant) = if self.is_f32() { (127, 23) } else { (1023, 52) };
        let bv = self.ki(bias);
        let e = self.iadd(k, bv);
        let bits = self.shl(e, mant);
        self.of_bits(bits)
    }

    /// `x < k`, `x > k`, `x == k` for a constant `k`.
    #[inline(always)]
    fn lt_k(&mut self, x: Self::F, k: f64) -> Self::M {
        let kv = self.k(k);
        self.lt(x, kv)
    }
    #[inline(always)]
    fn gt_k(&mut self, x: Self::F, k: f64) -> Self::M {
        let kv = self.k(k);
        self.gt(x, kv)
    }
    #[inline(always)]
    fn eq_k(&mut self, x: Self::F, k: f64) -> Self::M {
        let kv = self.k(k);
        self.eq(x, kv)
    }

    /// `m ? k : b` for a constant `k`.
    #[inline(always)]
    fn sel_k(&mut self, m: Self::M, k: f64, b: Self::F) -> Self::F {
        let kv = self.k(k);
        self.sel(m, kv, b)
    }
}
