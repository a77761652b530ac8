//! The transcendentals of this module again, as Rust compiled for AVX-512 (or AVX2): each
//! routine rewrites a tile of `f32`s in place, 16 (or 8) lanes at a time. Cranelift emits
//! 128-bit vectors only, so a kernel heavy in these functions is compute-bound at a
//! quarter (or half) of the machine's width; `lower/tiled.rs` computes each function's argument for a tile of
//! elements into a buffer and calls the routine here (CRANELIFT.md's measured proposal).
//!
//! Each function mirrors its Cranelift twin step for step (same reduction, same
//! polynomial, same constants, FMA where the twin uses it), so the ULP bounds of
//! docs/JIT.md hold for both; `jit/tests/ulp.rs` measures both paths. Runtime detection
//! picks the AVX-512 or AVX2 build, and a host without either keeps the Cranelift code.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use kiln_ir::UnaryOp;

use super::exp::{EXP_TAYLOR_F32, LN2_HI_F32, LN2_LO_F32};
use super::log::{LG_F32, LOG_LN2_HI_F32, LOG_LN2_LO_F32};

/// A tile routine: `f(src, dst, n)` writes `f(src[i])` to `dst[i]` for `i < n`; `src` and
/// `dst` are the same buffer or do not overlap.
pub(crate) type TileFn = unsafe extern "C" fn(*const f32, *mut f32, usize);

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns the wide tile routines on or off for later compilations (on by default where the
/// CPU has AVX-512F or AVX2, with FMA). Off, every transcendental is 128-bit Cranelift code; the
/// tests run both ways.
///
/// ```
/// kiln_jit::set_wide_math(false);
/// assert!(!kiln_jit::wide_math());
/// kiln_jit::set_wide_math(true);
/// ```
pub fn set_wide_math(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// The widest vector extension the routines use on this CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Width {
    Avx512,
    Avx2,
}

fn detected() -> Option<Width> {
    static DETECTED: OnceLock<Option<Width>> = OnceLock::new();
    *DETECTED.get_or_init(|| {
        if !std::is_x86_feature_detected!("fma") {
            None
        } else if std::is_x86_feature_detected!("avx512f") {
            Some(Width::Avx512)
        } else if std::is_x86_feature_detected!("avx2") {
            Some(Width::Avx2)
        } else {
            None
        }
    })
}

/// Whether kernels compiled now hand transcendental-heavy tiles to host routines: enabled,
/// and this CPU has AVX-512F or AVX2, with FMA.
///
/// ```
/// let _used: bool = kiln_jit::wide_math();
/// ```
pub fn wide_math() -> bool {
    detected().is_some() && ENABLED.load(Ordering::Relaxed)
}

/// The vector width the routines run at here, for reports: `"avx512"`, `"avx2"` or `"none"`.
///
/// ```
/// assert!(["avx512", "avx2", "none"].contains(&kiln_jit::wide_math_isa()));
/// ```
pub fn wide_math_isa() -> &'static str {
    match detected() {
        Some(Width::Avx512) => "avx512",
        Some(Width::Avx2) => "avx2",
        None => "none",
    }
}

/// The routine for `op` on `f32` tiles, if there is one and this host can run it.
pub(crate) fn routine(op: UnaryOp) -> Option<TileFn> {
    if !wide_math() {
        return None;
    }
    Some(match op {
        UnaryOp::Exp => exp_tile,
        UnaryOp::Expm1 => expm1_tile,
        UnaryOp::Tanh => tanh_tile,
        UnaryOp::Sigmoid => sigmoid_tile,
        UnaryOp::Log => log_tile,
        UnaryOp::Log1p => log1p_tile,
        UnaryOp::Softplus => softplus_tile,
        _ => return None,
    })
}

/// Defines `$tile`, the C-ABI entry point, around loops applying `$f` compiled for
/// AVX-512 and for AVX2 (LLVM vectorizes the branch-free scalar code 16 or 8 lanes wide).
macro_rules! tile {
    ($tile:ident, $f:ident) => {
        unsafe extern "C" fn $tile(src: *const f32, dst: *mut f32, n: usize) {
            #[target_feature(enable = "avx512f,fma")]
            fn avx512(x: &[f32], y: &mut [f32]) {
                y.iter_mut().zip(x).for_each(|(y, x)| *y = $f(*x));
            }
            #[target_feature(enable = "avx512f,fma")]
            fn avx512_in_place(x: &mut [f32]) {
                x.iter_mut().for_each(|x| *x = $f(*x));
            }
            #[target_feature(enable = "avx2,fma")]
            fn avx2(x: &[f32], y: &mut [f32]) {
                y.iter_mut().zip(x).for_each(|(y, x)| *y = $f(*x));
            }
            #[target_feature(enable = "avx2,fma")]
            fn avx2_in_place(x: &mut [f32]) {
                x.iter_mut().for_each(|x| *x = $f(*x));
            }
            if std::ptr::eq(src, dst) {
                // SAFETY: the kernel passes a buffer of `n` floats it owns for the call.
                let x = unsafe { std::slice::from_raw_parts_mut(dst, n) };
                match detected() {
                    // SAFETY: AVX-512F and FMA were detected on this CPU.
                    Some(Width::Avx512) => unsafe { avx512_in_place(x) },
                    // SAFETY: AVX2 and FMA were detected on this CPU.
                    Some(Width::Avx2) => unsafe { avx2_in_place(x) },
                    None => x.iter_mut().for_each(|x| *x = $f(*x)),
                }
            } else {
                // SAFETY: `src` and `dst` are valid for `n` floats and do not overlap (the
                // kernel passes an operand or tile buffer and an output or tile buffer).
                let (x, y) = unsafe { (std::slice::from_raw_parts(src, n), std::slice::from_raw_parts_mut(dst, n)) };
                match detected() {
                    // SAFETY: as above.
                    Some(Width::Avx512) => unsafe { avx512(x, y) },
                    // SAFETY: as above.
                    Some(Width::Avx2) => unsafe { avx2(x, y) },
                    None => y.iter_mut().zip(x).for_each(|(y, x)| *y = $f(*x)),
                }
            }
        }
    };
}

tile!(exp_tile, exp);
tile!(expm1_tile, expm1);
tile!(tanh_tile, tanh);
tile!(sigmoid_tile, sigmoid);
tile!(log_tile, log);
tile!(log1p_tile, log1p);
tile!(softplus_tile, softplus);

const MAGIC: f32 = 12582912.0;

#[inline(always)]
fn clamp(x: f32, lo: f32, hi: f32) -> f32 {
    let x = if x < lo { lo } else { x };
    if x > hi {
        hi
    } else {
        x
    }
}

#[inline(always)]
fn pow2i(k: i32) -> f32 {
    f32::from_bits((k.wrapping_add(127) << 23) as u32)
}

#[inline(always)]
fn poly(x: f32, c: &[f64]) -> f32 {
    let mut r = c[c.len() - 1] as f32;
    for &k in c[..c.len() - 1].iter().rev() {
        r = r.mul_add(x, k as f32);
    }
    r
}

/// `(n as integer, e^r - 1)` for `x = n ln2 + r`, as `exp::reduce`.
#[inline(always)]
fn reduce(x: f32) -> (i32, f32) {
    let y = x * std::f64::consts::LOG2_E as f32;
    let biased = y + MAGIC;
    let n = biased - MAGIC;
    let ni = (biased.to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
    let r = (-n).mul_add(LN2_HI_F32 as f32, x);
    let r = (-n).mul_add(LN2_LO_F32 as f32, r);
    let q = poly(r, &EXP_TAYLOR_F32);
    (ni, (r * r).mul_add(q, r))
}

#[inline(always)]
fn exp(x: f32) -> f32 {
    let (ni, p) = reduce(clamp(x, -104.0, 89.0));
    let n1 = ni >> 1;
    (1.0 + p) * pow2i(n1) * pow2i(ni.wrapping_sub(n1))
}

#[inline(always)]
fn expm1(x: f32) -> f32 {
    let (ni, p) = reduce(clamp(x, -30.0, 89.0));
    let nc = if ni > 127 { 127 } else { ni };
    let (s, u) = (pow2i(nc), pow2i(ni.wrapping_sub(nc)));
    let r = s.mul_add(p, s - 1.0) * u;
    if x == 0.0 {
        x
    } else {
        r
    }
}

#[inline(always)]
fn tanh(x: f32) -> f32 {
    let xc = clamp(x, -20.0, 20.0);
    let em = expm1(xc + xc);
    em / (em + 2.0)
}

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    let e = exp(-x.abs());
    let num = if x >= 0.0 { 1.0 } else { e };
    num / (1.0 + e)
}

#[inline(always)]
fn softplus(x: f32) -> f32 {
    let l = log1p(exp(-x.abs()));
    let m = if x > 0.0 { x } else { 0.0 };
    m + l
}

const CENTRE: i32 = 0x3f3504f3;

/// `(k, f)` with `u = 2^k (1+f)`, as `log::split`.
#[inline(always)]
fn split(u: f32) -> (i32, f32) {
    let bits = (u.to_bits() as i32).wrapping_add(0x3f800000 - CENTRE);
    let k = ((bits as u32) >> 23) as i32 - 0x7f;
    let mant = (bits & 0x007fffff) + CENTRE;
    (k, f32::from_bits(mant as u32) - 1.0)
}

/// `k` (|k| < 2^22) as a float, by the magic-number trick of `Fx::int_to_float`.
#[inline(always)]
fn int_to_float(k: i32) -> f32 {
    f32::from_bits((k + MAGIC.to_bits() as i32) as u32) - MAGIC
}

/// As `log::core`, operation for operation.
#[inline(always)]
fn core(f: f32, dk: f32, c: f32) -> f32 {
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * poly(w, &[LG_F32[1], LG_F32[3]]);
    let t2 = z * poly(w, &[LG_F32[0], LG_F32[2]]);
    let r = t2 + t1;
    let hfsq = (0.5 * f) * f;
    let a = s * (hfsq + r);
    let lo = dk.mul_add(LOG_LN2_LO_F32 as f32, c);
    let a = ((a + lo) - hfsq) + f;
    a + dk * LOG_LN2_HI_F32 as f32
}

#[inline(always)]
fn log(x: f32) -> f32 {
    let sub = x < f32::MIN_POSITIVE;
    let u = if sub { x * 33554432.0 } else { x };
    let (k, f) = split(u);
    let k = if sub { k - 25 } else { k };
    let r = core(f, int_to_float(k), 0.0);
    let r = if x < 0.0 { f32::NAN } else { r };
    let r = if x == 0.0 { f32::NEG_INFINITY } else { r };
    let r = if x == f32::INFINITY { x } else { r };
    if x.is_nan() {
        x
    } else {
        r
    }
}

#[inline(always)]
fn log1p(x: f32) -> f32 {
    let u = 1.0 + x;
    let (k, f) = split(u);
    let c = if k >= 2 { 1.0 - (u - x) } else { x - (u - 1.0) };
    let c = c / u;
    let small = x < 0.414_213_56 && x > -0.292_893_22;
    let f = if small { x } else { f };
    let c = if small { 0.0 } else { c };
    let k = if small { 0 } else { k };
    let r = core(f, int_to_float(k), c);
    let r = if x < -1.0 { f32::NAN } else { r };
    let r = if x == -1.0 { f32::NEG_INFINITY } else { r };
    let r = if x == f32::INFINITY { x } else { r };
    let r = if x.is_nan() { x } else { r };
    if x == 0.0 {
        x
    } else {
        r
    }
}
