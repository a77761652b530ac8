//! The transcendentals of this module again, as Rust compiled for AVX-512 (or AVX2): each
//! routine maps a tile of `f32`s (16 or 8 lanes at a time) or `f64`s (8 or 4). Cranelift
//! emits 128-bit vectors only, so a kernel heavy in these functions is compute-bound at a
//! quarter (or half) of the machine's width; `lower/tiled.rs` computes each function's
//! argument for a tile of elements into a buffer and calls the routine here (docs/BACKGROUND.md's
//! measured proposal). The algorithms are written once (`float_math!`), with each format's
//! constants taken from the Cranelift code's own.
//!
//! Each function mirrors its Cranelift twin step for step (same reduction, same
//! polynomial, same constants, FMA where the twin uses it), so the ULP bounds of
//! docs/JIT.md hold for both; `jit/tests/ulp.rs` measures both paths. Runtime detection
//! picks the AVX-512 or AVX2 build, and a host without either keeps the Cranelift code.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

use kiln_ir::{DType, UnaryOp};

/// A tile routine: `f(src, dst, n)` writes `f(src[i])` to `dst[i]` for `i < n` elements
/// of the routine's float type; `src` and `dst` are the same buffer or do not overlap.
pub(crate) type TileFn = unsafe extern "C" fn(*const u8, *mut u8, usize);

/// Where a kernel's transcendentals run: one of the host-routine builds, or the 128-bit
/// Cranelift code every x86-64 CPU runs. All give bit-identical results; they differ in speed.
///
/// ```
/// use kiln_jit::MathPath;
/// // The paths this CPU can run, widest first; the Cranelift code is always among them.
/// let paths = MathPath::available();
/// assert_eq!(paths.last(), Some(&MathPath::Cranelift));
/// assert!(paths.contains(&kiln_jit::math_path()));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MathPath {
    /// Host routines compiled for AVX-512F + FMA (16 f32 lanes).
    Avx512,
    /// Host routines compiled for AVX2 + FMA (8 f32 lanes).
    Avx2,
    /// The 128-bit Cranelift code, inline in the kernel.
    Cranelift,
}

impl MathPath {
    /// Every path this CPU can run, widest first (always ends with `Cranelift`).
    pub fn available() -> Vec<MathPath> {
        let mut out = Vec::with_capacity(3);
        if cpu_runs(MathPath::Avx512) {
            out.push(MathPath::Avx512);
        }
        if cpu_runs(MathPath::Avx2) {
            out.push(MathPath::Avx2);
        }
        out.push(MathPath::Cranelift);
        out
    }

    /// The name used in reports and in `KILN_MATH`: `"avx512"`, `"avx2"` or `"cranelift"`.
    pub fn name(self) -> &'static str {
        match self {
            MathPath::Avx512 => "avx512",
            MathPath::Avx2 => "avx2",
            MathPath::Cranelift => "cranelift",
        }
    }

    /// The path named `name` (as [`MathPath::name`] writes it), if there is one.
    pub fn from_name(name: &str) -> Option<MathPath> {
        [MathPath::Avx512, MathPath::Avx2, MathPath::Cranelift].into_iter().find(|p| p.name() == name)
    }

    fn code(self) -> u8 {
        match self {
            MathPath::Avx512 => 1,
            MathPath::Avx2 => 2,
            MathPath::Cranelift => 3,
        }
    }
}

fn cpu_runs(path: MathPath) -> bool {
    static FEATURES: OnceLock<(bool, bool)> = OnceLock::new();
    let (avx512, avx2) = *FEATURES.get_or_init(|| {
        let fma = std::is_x86_feature_detected!("fma");
        (fma && std::is_x86_feature_detected!("avx512f"), fma && std::is_x86_feature_detected!("avx2"))
    });
    match path {
        MathPath::Avx512 => avx512,
        MathPath::Avx2 => avx2,
        MathPath::Cranelift => true,
    }
}

/// 0: not chosen yet (the widest the CPU runs, or `KILN_MATH`); else a [`MathPath::code`].
static SELECTED: AtomicU8 = AtomicU8::new(0);

/// The path transcendentals take now: the one [`set_math_path`] chose, else the one named
/// by the environment variable `KILN_MATH` (if this CPU runs it), else the widest available.
pub fn math_path() -> MathPath {
    match SELECTED.load(Ordering::Relaxed) {
        1 => MathPath::Avx512,
        2 => MathPath::Avx2,
        3 => MathPath::Cranelift,
        _ => {
            let widest = MathPath::available()[0];
            let chosen = kiln_ir::config::math()
                .as_deref()
                .and_then(MathPath::from_name)
                .filter(|p| cpu_runs(*p))
                .unwrap_or(widest);
            SELECTED.store(chosen.code(), Ordering::Relaxed);
            chosen
        }
    }
}

/// Chooses where transcendentals run from now on, process-wide: kernels compiled later
/// call host routines unless `path` is `Cranelift`, and routines already compiled in run the
/// chosen build. Refuses a build this CPU cannot run (and changes nothing).
///
/// ```
/// use kiln_jit::MathPath;
/// let before = kiln_jit::math_path();
/// for path in MathPath::available() {
///     kiln_jit::set_math_path(path).unwrap();
///     assert_eq!(kiln_jit::math_path(), path);
/// }
/// kiln_jit::set_math_path(before).unwrap();
/// ```
pub fn set_math_path(path: MathPath) -> Result<(), String> {
    if !cpu_runs(path) {
        return Err(format!("this CPU cannot run the {} build of the math routines", path.name()));
    }
    SELECTED.store(path.code(), Ordering::Relaxed);
    Ok(())
}

/// Turns the wide tile routines on (the widest build this CPU runs) or off (the 128-bit
/// Cranelift code) for later compilations; shorthand for [`set_math_path`].
///
/// ```
/// kiln_jit::set_wide_math(false);
/// assert!(!kiln_jit::wide_math());
/// kiln_jit::set_wide_math(true);
/// ```
pub fn set_wide_math(on: bool) {
    let path = if on { MathPath::available()[0] } else { MathPath::Cranelift };
    SELECTED.store(path.code(), Ordering::Relaxed);
}

/// Whether kernels compiled now hand transcendental-heavy tiles to host routines.
///
/// ```
/// let _used: bool = kiln_jit::wide_math();
/// ```
pub fn wide_math() -> bool {
    math_path() != MathPath::Cranelift
}

/// The name of the path transcendentals take now, for reports: `"avx512"`, `"avx2"` or
/// `"cranelift"`.
///
/// ```
/// assert!(["avx512", "avx2", "cranelift"].contains(&kiln_jit::wide_math_isa()));
/// ```
pub fn wide_math_isa() -> &'static str {
    math_path().name()
}

/// The routine for `op` on tiles of `dtype` (f32 or f64), if there is one and this host can
/// run it.
pub(crate) fn routine(op: UnaryOp, dtype: DType) -> Option<TileFn> {
    if !wide_math() {
        return None;
    }
    macro_rules! pick {
        ($m:ident) => {
            match op {
                UnaryOp::Exp => $m::exp_tile,
                UnaryOp::Expm1 => $m::expm1_tile,
                UnaryOp::Tanh => $m::tanh_tile,
                UnaryOp::Sigmoid => $m::sigmoid_tile,
                UnaryOp::Log => $m::log_tile,
                UnaryOp::Log1p => $m::log1p_tile,
                UnaryOp::Softplus => $m::softplus_tile,
                UnaryOp::Sin => $m::sin_tile,
                UnaryOp::Cos => $m::cos_tile,
                // Cheap enough inline (or integer-only): no routine.
                UnaryOp::Neg
                | UnaryOp::Abs
                | UnaryOp::Sqrt
                | UnaryOp::Rsqrt
                | UnaryOp::Square
                | UnaryOp::Relu
                | UnaryOp::Sign
                | UnaryOp::Floor
                | UnaryOp::Ceil
                | UnaryOp::Round
                | UnaryOp::LogicalNot => return None,
            }
        };
    }
    Some(match dtype {
        DType::F32 => pick!(f32_math),
        DType::F64 => pick!(f64_math),
        _ => return None,
    })
}

/// Defines `$tile`, the C-ABI entry point, around loops applying `$f` compiled for
/// AVX-512 and for AVX2 (LLVM vectorizes the branch-free scalar code 16 or 8 lanes wide).
macro_rules! tile {
    ($tile:ident, $f:ident) => {
        pub(super) unsafe extern "C" fn $tile(src: *const u8, dst: *mut u8, n: usize) {
            #[target_feature(enable = "avx512f,fma")]
            fn avx512(x: &[F], y: &mut [F]) {
                y.iter_mut().zip(x).for_each(|(y, x)| *y = $f(*x));
            }
            #[target_feature(enable = "avx512f,fma")]
            fn avx512_in_place(x: &mut [F]) {
                x.iter_mut().for_each(|x| *x = $f(*x));
            }
            #[target_feature(enable = "avx2,fma")]
            fn avx2(x: &[F], y: &mut [F]) {
                y.iter_mut().zip(x).for_each(|(y, x)| *y = $f(*x));
            }
            #[target_feature(enable = "avx2,fma")]
            fn avx2_in_place(x: &mut [F]) {
                x.iter_mut().for_each(|x| *x = $f(*x));
            }
            let (src, dst) = (src as *const F, dst as *mut F);
            if std::ptr::eq(src, dst) {
                // SAFETY: the kernel passes a buffer of `n` elements it owns for the call.
                let x = unsafe { std::slice::from_raw_parts_mut(dst, n) };
                match math_path() {
                    // SAFETY: AVX-512F and FMA were detected on this CPU.
                    MathPath::Avx512 => unsafe { avx512_in_place(x) },
                    // SAFETY: AVX2 and FMA were detected on this CPU.
                    MathPath::Avx2 => unsafe { avx2_in_place(x) },
                    MathPath::Cranelift => x.iter_mut().for_each(|x| *x = $f(*x)),
                }
            } else {
                // SAFETY: `src` and `dst` are valid for `n` elements and do not overlap (the
                // kernel passes an operand or tile buffer and an output or tile buffer).
                let (x, y) = unsafe { (std::slice::from_raw_parts(src, n), std::slice::from_raw_parts_mut(dst, n)) };
                match math_path() {
                    // SAFETY: as above.
                    MathPath::Avx512 => unsafe { avx512(x, y) },
                    // SAFETY: as above.
                    MathPath::Avx2 => unsafe { avx2(x, y) },
                    MathPath::Cranelift => y.iter_mut().zip(x).for_each(|(y, x)| *y = $f(*x)),
                }
            }
        }
    };
}

/// Defines `$tile` for sin (`$cos = false`) or cos: the vectorized fast path over a copy of
/// each chunk of the input (which may be the output buffer itself), then the rare lanes
/// beyond the reduction's bound recomputed by the host's libm, as the Cranelift code does.
macro_rules! tile_trig {
    ($tile:ident, $cos:expr, $libm:expr) => {
        pub(super) unsafe extern "C" fn $tile(src: *const u8, dst: *mut u8, n: usize) {
            #[target_feature(enable = "avx512f,fma")]
            fn avx512(x: &[F], y: &mut [F]) {
                y.iter_mut().zip(x).for_each(|(y, x)| *y = sincos(*x, $cos));
            }
            #[target_feature(enable = "avx2,fma")]
            fn avx2(x: &[F], y: &mut [F]) {
                y.iter_mut().zip(x).for_each(|(y, x)| *y = sincos(*x, $cos));
            }
            const CHUNK: usize = 64;
            let (src, dst) = (src as *const F, dst as *mut F);
            let mut start = 0;
            while start < n {
                let m = CHUNK.min(n - start);
                let mut xs = [0.0 as F; CHUNK];
                // SAFETY: `src` holds `n` elements; the chunk is copied before `dst` (which
                // may be the same buffer) is written.
                xs[..m].copy_from_slice(unsafe { std::slice::from_raw_parts(src.add(start), m) });
                // SAFETY: `dst` holds `n` elements; `xs` is a local copy, so no overlap.
                let y = unsafe { std::slice::from_raw_parts_mut(dst.add(start), m) };
                match math_path() {
                    // SAFETY: AVX-512F and FMA were detected on this CPU.
                    MathPath::Avx512 => unsafe { avx512(&xs[..m], y) },
                    // SAFETY: AVX2 and FMA were detected on this CPU.
                    MathPath::Avx2 => unsafe { avx2(&xs[..m], y) },
                    MathPath::Cranelift => y.iter_mut().zip(&xs[..m]).for_each(|(y, x)| *y = sincos(*x, $cos)),
                }
                for (y, &x) in y.iter_mut().zip(&xs[..m]) {
                    if x.abs() > c::TRIG_BOUND as F {
                        *y = $libm(x);
                    }
                }
                start += m;
            }
        }
    };
}

/// The routines for one float format `F` with integer twin `I`, given that format's
/// constants (a module in scope as `c` with the items used below).
macro_rules! float_math {
    ($name:ident, $F:ty, $I:ty, $consts:path) => {
        pub(super) mod $name {
            use super::{math_path, MathPath};
            use $consts as c;

            type F = $F;
            type I = $I;

            tile!(exp_tile, exp);
            tile!(expm1_tile, expm1);
            tile!(tanh_tile, tanh);
            tile!(sigmoid_tile, sigmoid);
            tile!(log_tile, log);
            tile!(log1p_tile, log1p);
            tile!(softplus_tile, softplus);
            tile_trig!(sin_tile, false, F::sin);
            tile_trig!(cos_tile, true, F::cos);

            const MAGIC: F = c::MAGIC as F;

            #[inline(always)]
            fn clamp(x: F, lo: f64, hi: f64) -> F {
                let x = if x < lo as F { lo as F } else { x };
                if x > hi as F {
                    hi as F
                } else {
                    x
                }
            }

            #[inline(always)]
            fn pow2i(k: I) -> F {
                F::from_bits((k.wrapping_add(c::BIAS) << c::MANT_BITS) as _)
            }

            #[inline(always)]
            fn poly(x: F, k: &[f64]) -> F {
                let mut r = k[k.len() - 1] as F;
                for &a in k[..k.len() - 1].iter().rev() {
                    r = r.mul_add(x, a as F);
                }
                r
            }

            /// `(n as integer, e^r - 1)` for `x = n ln2 + r`, as `exp::reduce`.
            #[inline(always)]
            fn reduce(x: F) -> (I, F) {
                let y = x * std::f64::consts::LOG2_E as F;
                let biased = y + MAGIC;
                let n = biased - MAGIC;
                let ni = (biased.to_bits() as I).wrapping_sub(MAGIC.to_bits() as I);
                let r = (-n).mul_add(c::LN2_HI as F, x);
                let r = (-n).mul_add(c::LN2_LO as F, r);
                let q = poly(r, &c::TAYLOR);
                (ni, (r * r).mul_add(q, r))
            }

            #[inline(always)]
            fn exp(x: F) -> F {
                let (ni, p) = reduce(clamp(x, c::EXP_MIN, c::EXP_MAX));
                let n1 = ni >> 1;
                (1.0 + p) * pow2i(n1) * pow2i(ni.wrapping_sub(n1))
            }

            #[inline(always)]
            fn expm1(x: F) -> F {
                let (ni, p) = reduce(clamp(x, c::EXPM1_MIN, c::EXP_MAX));
                let nc = if ni > c::EMAX { c::EMAX } else { ni };
                let (s, u) = (pow2i(nc), pow2i(ni.wrapping_sub(nc)));
                let r = s.mul_add(p, s - 1.0) * u;
                if x == 0.0 {
                    x
                } else {
                    r
                }
            }

            #[inline(always)]
            fn tanh(x: F) -> F {
                let xc = clamp(x, -c::TANH_BOUND, c::TANH_BOUND);
                let em = expm1(xc + xc);
                em / (em + 2.0)
            }

            #[inline(always)]
            fn sigmoid(x: F) -> F {
                let e = exp(-x.abs());
                let num = if x >= 0.0 { 1.0 } else { e };
                num / (1.0 + e)
            }

            #[inline(always)]
            fn softplus(x: F) -> F {
                let l = log1p(exp(-x.abs()));
                let m = if x > 0.0 { x } else { 0.0 };
                m + l
            }

            /// sin or cos for |x| up to the bound, as `trig::sincos` (larger lanes are
            /// recomputed by the caller).
            #[inline(always)]
            fn sincos(x: F, cos: bool) -> F {
                let b = c::TRIG_BOUND;
                let xc = clamp(x, -b, b);
                let y = xc * std::f64::consts::FRAC_2_PI as F;
                let biased = y + MAGIC;
                let n = biased - MAGIC;
                let ni = (biased.to_bits() as I).wrapping_sub(MAGIC.to_bits() as I);
                let r = (-n).mul_add(c::PIO2[0] as F, xc);
                let r = (-n).mul_add(c::PIO2[1] as F, r);
                let r = (-n).mul_add(c::PIO2[2] as F, r);
                let z = r * r;
                let s = (r * z).mul_add(poly(z, &c::SIN), r);
                let cc = if c::IS_F32 {
                    let c0 = z.mul_add(-0.5, 1.0);
                    (z * z).mul_add(poly(z, &c::COS), c0)
                } else {
                    let hz = 0.5 * z;
                    let w = 1.0 - hz;
                    let e = (1.0 - w) - hz;
                    let e = (z * z).mul_add(poly(z, &c::COS), e);
                    w + e
                };
                let q = if cos { ni.wrapping_add(1) } else { ni };
                let v = if q & 1 == 1 { cc } else { s };
                let sign = (q & 2) << (I::BITS - 2);
                let res = F::from_bits((v.to_bits() as I ^ sign) as _);
                if !cos && x == 0.0 {
                    x
                } else {
                    res
                }
            }

            const FMT: crate::math::log::Fmt = crate::math::log::fmt(c::IS_F32);

            /// `(k, f)` with `u = 2^k (1+f)`, as `log::split`.
            #[inline(always)]
            fn split(u: F) -> (I, F) {
                let bits = (u.to_bits() as I).wrapping_add((FMT.one - FMT.centre) as I);
                let k = (((bits as <F as super::Bits>::U) >> FMT.mant_bits) as I).wrapping_sub(FMT.bias as I);
                let mant = (bits & FMT.mant_mask as I) + FMT.centre as I;
                (k, F::from_bits(mant as _) - 1.0)
            }

            /// `k` (|k| < 2^22) as a float, by the magic-number trick of `Fx::int_to_float`.
            #[inline(always)]
            fn int_to_float(k: I) -> F {
                F::from_bits(k.wrapping_add(MAGIC.to_bits() as I) as _) - MAGIC
            }

            /// As `log::core`, operation for operation.
            #[inline(always)]
            fn core(f: F, dk: F, cc: F) -> F {
                let s = f / (2.0 + f);
                let z = s * s;
                let w = z * z;
                let t1 = w * poly(w, &c::LG_ODD);
                let t2 = z * poly(w, &c::LG_EVEN);
                let r = t2 + t1;
                let hfsq = (0.5 * f) * f;
                let a = s * (hfsq + r);
                let lo = dk.mul_add(FMT.ln2_lo as F, cc);
                let a = ((a + lo) - hfsq) + f;
                a + dk * FMT.ln2_hi as F
            }

            #[inline(always)]
            fn log(x: F) -> F {
                let sub = x < F::MIN_POSITIVE;
                let u = if sub { x * c::SUB_SCALE as F } else { x };
                let (k, f) = split(u);
                let k = if sub { k.wrapping_sub(c::SUB_EXP) } else { k };
                let r = core(f, int_to_float(k), 0.0);
                let r = if x < 0.0 { F::NAN } else { r };
                let r = if x == 0.0 { F::NEG_INFINITY } else { r };
                let r = if x == F::INFINITY { x } else { r };
                if x.is_nan() {
                    x
                } else {
                    r
                }
            }

            #[inline(always)]
            fn log1p(x: F) -> F {
                let u = 1.0 + x;
                let (k, f) = split(u);
                let cc = if k >= 2 { 1.0 - (u - x) } else { x - (u - 1.0) };
                let cc = cc / u;
                let small = x < 0.414_213_56 as F && x > -0.292_893_22 as F;
                let f = if small { x } else { f };
                let cc = if small { 0.0 } else { cc };
                let k = if small { 0 } else { k };
                let r = core(f, int_to_float(k), cc);
                let r = if x < -1.0 { F::NAN } else { r };
                let r = if x == -1.0 { F::NEG_INFINITY } else { r };
                let r = if x == F::INFINITY { x } else { r };
                let r = if x.is_nan() { x } else { r };
                if x == 0.0 {
                    x
                } else {
                    r
                }
            }
        }
    };
}

/// The unsigned integer of a float's width (for logical shifts of its bits).
trait Bits {
    type U;
}
impl Bits for f32 {
    type U = u32;
}
impl Bits for f64 {
    type U = u64;
}

/// f32's constants for `float_math!` (the values `exp.rs` and `log.rs` use for f32).
mod f32_consts {
    pub const IS_F32: bool = true;
    pub const MAGIC: f64 = 12582912.0;
    pub const BIAS: i32 = 127;
    pub const MANT_BITS: i32 = 23;
    pub const EMAX: i32 = 127;
    pub const EXP_MIN: f64 = -104.0;
    pub const EXP_MAX: f64 = 89.0;
    pub const EXPM1_MIN: f64 = -30.0;
    pub const TANH_BOUND: f64 = 20.0;
    pub const SUB_SCALE: f64 = 33554432.0;
    pub const SUB_EXP: i32 = 25;
    pub const LN2_HI: f64 = crate::math::exp::LN2_HI_F32;
    pub const LN2_LO: f64 = crate::math::exp::LN2_LO_F32;
    pub const TAYLOR: [f64; 7] = crate::math::exp::EXP_TAYLOR_F32;
    use crate::math::log::LG_F32 as LG;
    pub const LG_ODD: [f64; 2] = [LG[1], LG[3]];
    pub const LG_EVEN: [f64; 2] = [LG[0], LG[2]];
    pub const TRIG_BOUND: f64 = crate::math::trig::bound(true);
    pub const PIO2: [f64; 3] = crate::math::trig::PIO2_F32;
    pub const SIN: [f64; 3] = crate::math::trig::S_F32;
    pub const COS: [f64; 3] = crate::math::trig::C_F32;
}

/// f64's constants for `float_math!`.
mod f64_consts {
    pub const IS_F32: bool = false;
    pub const MAGIC: f64 = 6755399441055744.0;
    pub const BIAS: i64 = 1023;
    pub const MANT_BITS: i64 = 52;
    pub const EMAX: i64 = 1023;
    pub const EXP_MIN: f64 = -746.0;
    pub const EXP_MAX: f64 = 710.0;
    pub const EXPM1_MIN: f64 = -45.0;
    pub const TANH_BOUND: f64 = 40.0;
    pub const SUB_SCALE: f64 = 18014398509481984.0;
    pub const SUB_EXP: i64 = 54;
    pub const LN2_HI: f64 = crate::math::exp::LN2_HI_F64;
    pub const LN2_LO: f64 = crate::math::exp::LN2_LO_F64;
    pub const TAYLOR: [f64; 13] = crate::math::exp::EXP_TAYLOR_F64;
    use crate::math::log::LG_F64 as LG;
    pub const LG_ODD: [f64; 3] = [LG[1], LG[3], LG[5]];
    pub const LG_EVEN: [f64; 4] = [LG[0], LG[2], LG[4], LG[6]];
    pub const TRIG_BOUND: f64 = crate::math::trig::bound(false);
    pub const PIO2: [f64; 3] = crate::math::trig::PIO2_F64;
    pub const SIN: [f64; 6] = crate::math::trig::S_F64;
    pub const COS: [f64; 6] = crate::math::trig::C_F64;
}

float_math!(f32_math, f32, i32, super::f32_consts);
float_math!(f64_math, f64, i64, super::f64_consts);
