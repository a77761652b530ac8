//! The transcendentals of this module again, as Rust compiled for AVX-512 (or AVX2): each
//! routine maps a tile of `f32`s (16 or 8 lanes at a time) or `f64`s (8 or 4). Cranelift
//! emits 128-bit vectors only, so a kernel heavy in these functions is compute-bound at a
//! quarter (or half) of the machine's width; `lower/tiled.rs` computes each function's
//! argument for a tile of elements into a buffer and calls the routine here (docs/BACKGROUND.md's
//! measured proposal).
//!
//! The routines run the very algorithms the Cranelift code emits (`exp.rs`, `log.rs`, ...,
//! generic over [`Ops`]) on [`Host`], whose operations are plain `f32`/`f64` arithmetic
//! inlined into a loop that LLVM vectorizes; so the ULP bounds of docs/JIT.md hold for both
//! paths, and `jit/tests/wide.rs` checks they agree bit for bit. Runtime detection picks the
//! AVX-512 or AVX2 build, and a host without either keeps the Cranelift code.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

use kiln_ir::{DType, UnaryOp};

use super::ops::Ops;

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
/// chosen build. Kernels compiled later use AVX-512 instructions only on `Avx512`, so any
/// other path compiles the code a CPU without AVX-512 gets. Refuses a build this CPU cannot
/// run (and changes nothing).
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

/// The routine for `op` on tiles of `dtype`, if there is one, whichever path is selected:
/// the lowering decides from the path recorded when the kernel was analyzed
/// (`Program::wide`), the host symbol table lists them all, and each routine dispatches on
/// [`math_path`] when it runs.
pub(crate) fn routine_any_path(op: UnaryOp, dtype: DType) -> Option<TileFn> {
    match dtype {
        DType::F32 => f32_math::routine(op),
        DType::F64 => f64_math::routine(op),
        DType::I32 | DType::I64 | DType::Bool => None,
    }
}

/// [`Ops`] on one lane of `F`: each operation is the plain Rust one, inlined, so that the
/// loops below vectorize the whole algorithm. `madd` is `mul_add`, one FMA instruction in
/// the AVX builds (the routines run only where the CPU has FMA).
pub(crate) struct Host<F>(std::marker::PhantomData<F>);

macro_rules! host_ops {
    ($F:ty, $I:ty, $U:ty) => {
        impl Ops for Host<$F> {
            type F = $F;
            type I = $I;
            type M = bool;

            #[inline(always)]
            fn is_f32(&self) -> bool {
                <$F>::MANTISSA_DIGITS == f32::MANTISSA_DIGITS
            }
            #[inline(always)]
            fn k(&mut self, c: f64) -> $F {
                c as $F
            }
            #[inline(always)]
            fn ki(&mut self, c: i64) -> $I {
                c as $I
            }
            #[inline(always)]
            fn add(&mut self, a: $F, b: $F) -> $F {
                a + b
            }
            #[inline(always)]
            fn sub(&mut self, a: $F, b: $F) -> $F {
                a - b
            }
            #[inline(always)]
            fn mul(&mut self, a: $F, b: $F) -> $F {
                a * b
            }
            #[inline(always)]
            fn div(&mut self, a: $F, b: $F) -> $F {
                a / b
            }
            #[inline(always)]
            fn madd(&mut self, a: $F, b: $F, c: $F) -> $F {
                a.mul_add(b, c)
            }
            #[inline(always)]
            fn neg(&mut self, a: $F) -> $F {
                -a
            }
            #[inline(always)]
            fn abs(&mut self, a: $F) -> $F {
                a.abs()
            }
            #[inline(always)]
            fn lt(&mut self, a: $F, b: $F) -> bool {
                a < b
            }
            #[inline(always)]
            fn gt(&mut self, a: $F, b: $F) -> bool {
                a > b
            }
            #[inline(always)]
            fn ge(&mut self, a: $F, b: $F) -> bool {
                a >= b
            }
            #[inline(always)]
            fn eq(&mut self, a: $F, b: $F) -> bool {
                a == b
            }
            #[inline(always)]
            fn is_nan(&mut self, a: $F) -> bool {
                a.is_nan()
            }
            #[inline(always)]
            fn and(&mut self, a: bool, b: bool) -> bool {
                a & b
            }
            #[inline(always)]
            fn sel(&mut self, m: bool, a: $F, b: $F) -> $F {
                if m {
                    a
                } else {
                    b
                }
            }
            #[inline(always)]
            fn sel_i(&mut self, m: bool, a: $I, b: $I) -> $I {
                if m {
                    a
                } else {
                    b
                }
            }
            #[inline(always)]
            fn bits(&mut self, a: $F) -> $I {
                a.to_bits() as $I
            }
            #[inline(always)]
            fn of_bits(&mut self, a: $I) -> $F {
                <$F>::from_bits(a as $U)
            }
            #[inline(always)]
            fn iadd(&mut self, a: $I, b: $I) -> $I {
                a.wrapping_add(b)
            }
            #[inline(always)]
            fn isub(&mut self, a: $I, b: $I) -> $I {
                a.wrapping_sub(b)
            }
            #[inline(always)]
            fn iand(&mut self, a: $I, b: $I) -> $I {
                a & b
            }
            #[inline(always)]
            fn ixor(&mut self, a: $I, b: $I) -> $I {
                a ^ b
            }
            #[inline(always)]
            fn shl(&mut self, a: $I, n: u32) -> $I {
                a << n
            }
            #[inline(always)]
            fn sshr(&mut self, a: $I, n: u32) -> $I {
                a >> n
            }
            #[inline(always)]
            fn ushr(&mut self, a: $I, n: u32) -> $I {
                ((a as $U) >> n) as $I
            }
            #[inline(always)]
            fn igt(&mut self, a: $I, b: $I) -> bool {
                a > b
            }
            #[inline(always)]
            fn ige(&mut self, a: $I, b: $I) -> bool {
                a >= b
            }
            #[inline(always)]
            fn ieq(&mut self, a: $I, b: $I) -> bool {
                a == b
            }
        }
    };
}

host_ops!(f32, i32, u32);
host_ops!(f64, i64, u64);

/// The routine applying the algorithm `$algo` on [`Host`]: a C-ABI entry point `$tile` (the
/// name profiles show) around loops compiled for AVX-512 and for AVX2 (LLVM vectorizes the
/// branch-free scalar code 16 or 8 lanes wide).
macro_rules! tile {
    ($tile:ident, $algo:path) => {{
        unsafe extern "C" fn $tile(src: *const u8, dst: *mut u8, n: usize) {
            #[inline(always)]
            fn f(x: F) -> F {
                $algo(&mut Host::<F>(PhantomData), x)
            }
            #[target_feature(enable = "avx512f,fma")]
            fn avx512(x: &[F], y: &mut [F]) {
                y.iter_mut().zip(x).for_each(|(y, x)| *y = f(*x));
            }
            #[target_feature(enable = "avx512f,fma")]
            fn avx512_in_place(x: &mut [F]) {
                x.iter_mut().for_each(|x| *x = f(*x));
            }
            #[target_feature(enable = "avx2,fma")]
            fn avx2(x: &[F], y: &mut [F]) {
                y.iter_mut().zip(x).for_each(|(y, x)| *y = f(*x));
            }
            #[target_feature(enable = "avx2,fma")]
            fn avx2_in_place(x: &mut [F]) {
                x.iter_mut().for_each(|x| *x = f(*x));
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
                    MathPath::Cranelift => x.iter_mut().for_each(|x| *x = f(*x)),
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
                    MathPath::Cranelift => y.iter_mut().zip(x).for_each(|(y, x)| *y = f(*x)),
                }
            }
        }
        $tile as TileFn
    }};
}

/// The routine for sin (`$cos = false`) or cos: the vectorized fast path over a copy of
/// each chunk of the input (which may be the output buffer itself), then the rare lanes
/// beyond the reduction's bound recomputed by the host's libm, as the Cranelift code does.
macro_rules! tile_trig {
    ($tile:ident, $cos:expr, $libm:expr) => {{
        unsafe extern "C" fn $tile(src: *const u8, dst: *mut u8, n: usize) {
            #[inline(always)]
            fn f(x: F) -> F {
                trig::sincos(&mut Host::<F>(PhantomData), x, $cos)
            }
            #[target_feature(enable = "avx512f,fma")]
            fn avx512(x: &[F], y: &mut [F]) {
                y.iter_mut().zip(x).for_each(|(y, x)| *y = f(*x));
            }
            #[target_feature(enable = "avx2,fma")]
            fn avx2(x: &[F], y: &mut [F]) {
                y.iter_mut().zip(x).for_each(|(y, x)| *y = f(*x));
            }
            const CHUNK: usize = 64;
            let bound = trig::bound(<F>::MANTISSA_DIGITS == f32::MANTISSA_DIGITS) as F;
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
                    MathPath::Cranelift => y.iter_mut().zip(&xs[..m]).for_each(|(y, x)| *y = f(*x)),
                }
                for (y, &x) in y.iter_mut().zip(&xs[..m]) {
                    if x.abs() > bound {
                        *y = $libm(x);
                    }
                }
                start += m;
            }
        }
        $tile as TileFn
    }};
}

/// The routines for one float format `F`.
macro_rules! float_math {
    ($name:ident, $F:ty) => {
        pub(super) mod $name {
            use std::marker::PhantomData;

            use kiln_ir::UnaryOp;

            use super::{math_path, Host, MathPath, TileFn};
            use crate::math::{exp, log, special, trig};

            type F = $F;

            /// This format's routine for `op`, if it has one.
            pub(super) fn routine(op: UnaryOp) -> Option<TileFn> {
                Some(match op {
                    UnaryOp::Exp => tile!(exp_tile, exp::exp),
                    UnaryOp::Expm1 => tile!(expm1_tile, exp::expm1),
                    UnaryOp::Tanh => tile!(tanh_tile, special::tanh),
                    UnaryOp::Sigmoid => tile!(sigmoid_tile, special::sigmoid),
                    UnaryOp::Log => tile!(log_tile, log::log),
                    UnaryOp::Log1p => tile!(log1p_tile, log::log1p),
                    UnaryOp::Softplus => tile!(softplus_tile, special::softplus),
                    UnaryOp::Sin => tile_trig!(sin_tile, false, F::sin),
                    UnaryOp::Cos => tile_trig!(cos_tile, true, F::cos),
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
                })
            }
        }
    };
}

float_math!(f32_math, f32);
float_math!(f64_math, f64);
