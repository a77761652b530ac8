//! Shared test helpers: building one-kernel graphs, running a compiled kernel over a
//! range split at odd boundaries, random inputs with special values, ULP distances.
#![allow(dead_code)]

use kiln_ir::{Array, BinaryOp, DType, Data, Graph, Kernel, NodeId, Op, TensorType, UnaryOp};
use kiln_jit::MathPath;

/// A small deterministic generator (xorshift64*), so failures reproduce.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Float specials that every elementwise test includes.
pub const SPECIAL: [f64; 14] =
    [0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 3.5, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 1e-40, -1e-310, 1e30, -7.0];

/// `n` random elements of `dtype`: floats mostly in [-8, 8], some specials and wide
/// magnitudes; ints in a small range (with extremes); bools half/half.
pub fn random(rng: &mut Rng, dtype: DType, shape: &[usize]) -> Array {
    let n: usize = shape.iter().product();
    let f = |rng: &mut Rng| -> f64 {
        match rng.below(10) {
            0 => SPECIAL[rng.below(SPECIAL.len() as u64) as usize],
            1 => (rng.unit() - 0.5) * 2e6,
            _ => (rng.unit() - 0.5) * 16.0,
        }
    };
    let data = match dtype {
        DType::F32 => Data::F32((0..n).map(|_| f(rng) as f32).collect()),
        DType::F64 => Data::F64((0..n).map(|_| f(rng)).collect()),
        DType::I32 => Data::I32(
            (0..n)
                .map(|_| match rng.below(20) {
                    0 => i32::MIN,
                    1 => i32::MAX,
                    2 => 0,
                    3 => -1,
                    _ => rng.below(41) as i32 - 20,
                })
                .collect(),
        ),
        DType::I64 => Data::I64(
            (0..n)
                .map(|_| match rng.below(20) {
                    0 => i64::MIN,
                    1 => i64::MAX,
                    2 => 0,
                    3 => -1,
                    _ => rng.below(41) as i64 - 20,
                })
                .collect(),
        ),
        DType::Bool => Data::Bool((0..n).map(|_| rng.below(2) == 1).collect()),
    };
    Array::new(data, shape).unwrap()
}

/// Random inputs for each of `kernel`'s operands: [`random`], with [`nonzero`] integers
/// (so that integer division stays defined).
pub fn kernel_inputs(rng: &mut Rng, kernel: &Kernel) -> Vec<Array> {
    let body = &kernel.body;
    body.inputs()
        .iter()
        .map(|&i| {
            let ty = &body.node(i).ty;
            if ty.dtype.is_int() {
                nonzero(rng, ty.dtype, ty.shape.as_slice())
            } else {
                random(rng, ty.dtype, ty.shape.as_slice())
            }
        })
        .collect()
}

/// Integer exponents from 1 to 20 (a negative one is the interpreter's error to report).
pub fn exponents(rng: &mut Rng, dtype: DType, shape: &[usize]) -> Array {
    let e = nonzero(rng, dtype, shape);
    let abs: Vec<i64> = (0..e.len()).map(|i| e.get_f64(i).abs() as i64).collect();
    match dtype {
        DType::I32 => Array::from_vec(abs.iter().map(|&x| x as i32).collect(), shape).unwrap(),
        _ => Array::from_vec(abs, shape).unwrap(),
    }
}

/// Nonzero integers (for division).
pub fn nonzero(rng: &mut Rng, dtype: DType, shape: &[usize]) -> Array {
    let n: usize = shape.iter().product();
    let v: Vec<i64> = (0..n)
        .map(|_| {
            let x = rng.below(41) as i64 - 20;
            if x == 0 {
                -1
            } else {
                x
            }
        })
        .collect();
    match dtype {
        DType::I32 => Array::from_vec(v.iter().map(|&x| x as i32).collect(), shape).unwrap(),
        _ => Array::from_vec(v, shape).unwrap(),
    }
}

/// Runs the compiled kernel on `inputs` over its whole output, as several calls whose
/// ranges split at the given odd boundaries.
pub fn run_compiled(kernel: &Kernel, inputs: &[Array]) -> Array {
    let k = kiln_jit::compile(kernel).expect("compiles");
    let out_ty = &kernel.body.node(kernel.body.outputs()[0]).ty;
    let n = out_ty.numel();
    let bytes = out_ty.bytes();
    // u64 storage for alignment; filled with a pattern so unwritten elements show.
    let mut buf = vec![0xA5A5_A5A5_A5A5_A5A5u64; bytes.div_ceil(8).max(1)];
    let ptrs: Vec<*const u8> = inputs.iter().map(|a| a.data().as_bytes().as_ptr()).collect();
    let mut cuts = vec![0usize];
    for c in [1usize, 6, 13, 37, 1000] {
        if c < n {
            cuts.push(c);
        }
    }
    cuts.push(n);
    for w in cuts.windows(2) {
        // SAFETY: one pointer per operand, each a whole buffer of its static type; the
        // output buffer holds `bytes` bytes; ranges are within 0..n and disjoint.
        unsafe { (k.func())(ptrs.as_ptr(), buf.as_mut_ptr() as *mut u8, w[0], w[1]) };
    }
    // SAFETY: buf holds at least `bytes` initialized bytes.
    let raw = unsafe { std::slice::from_raw_parts(buf.as_ptr() as *const u8, bytes) };
    let data = Data::from_bytes(out_ty.dtype, raw).expect("kernel wrote valid values (bools 0/1)");
    Array::new(data, &out_ty.shape).unwrap()
}

/// The interpreter's result for the kernel body.
pub fn run_interp(kernel: &Kernel, inputs: &[Array]) -> kiln_ir::Result<Array> {
    Ok(kiln_ir::interp::run(&kernel.body, inputs, &[])?.outputs.remove(0))
}

/// tanh-GELU over `n` f32s, the W1 workload: `0.5 x (1 + tanh(0.7978846 (x + 0.044715 x³)))`.
pub fn gelu(n: usize) -> Kernel {
    kernel(&[ty(DType::F32, &[n])], |g: &mut Graph, x: &[NodeId]| {
        let x = x[0];
        let c = |g: &mut Graph, v: f32| g.add_const(Array::scalar(v));
        let x2 = add(g, Op::Binary(BinaryOp::Mul), &[x, x]);
        let x3 = add(g, Op::Binary(BinaryOp::Mul), &[x2, x]);
        let k1 = c(g, 0.044715);
        let t = add(g, Op::Binary(BinaryOp::Mul), &[k1, x3]);
        let t = add(g, Op::Binary(BinaryOp::Add), &[x, t]);
        let k2 = c(g, 0.797_884_6);
        let t = add(g, Op::Binary(BinaryOp::Mul), &[k2, t]);
        let t = add(g, Op::Unary(UnaryOp::Tanh), &[t]);
        let one = c(g, 1.0);
        let t = add(g, Op::Binary(BinaryOp::Add), &[one, t]);
        let half = c(g, 0.5);
        let hx = add(g, Op::Binary(BinaryOp::Mul), &[half, x]);
        add(g, Op::Binary(BinaryOp::Mul), &[hx, t])
    })
}

/// A graph with inputs of the given types, built by `f`, as a kernel.
pub fn kernel(inputs: &[TensorType], f: impl FnOnce(&mut Graph, &[NodeId]) -> NodeId) -> Kernel {
    let mut g = Graph::new("k");
    let ids: Vec<NodeId> = inputs.iter().map(|t| g.add_input(t.clone())).collect();
    let out = f(&mut g, &ids);
    g.set_outputs(vec![out]);
    Kernel { body: g }
}

pub fn ty(d: DType, s: &[usize]) -> TensorType {
    TensorType::new(d, s)
}

pub fn add(g: &mut Graph, op: Op, args: &[NodeId]) -> NodeId {
    g.add(op, args).unwrap()
}

/// Distance in units in the last place (0 for equal values, ±0 equal, NaN = NaN).
pub fn ulp32(a: f32, b: f32) -> u64 {
    ulp_bits(a.is_nan(), b.is_nan(), a.to_bits().into(), b.to_bits().into(), 32)
}

pub fn ulp64(a: f64, b: f64) -> u64 {
    ulp_bits(a.is_nan(), b.is_nan(), a.to_bits(), b.to_bits(), 64)
}

/// [`ulp32`] and [`ulp64`] on the floats' bits (`width` 32 or 64): sign-magnitude bits
/// mapped onto one integer line, where neighbouring floats are 1 apart.
fn ulp_bits(a_nan: bool, b_nan: bool, a: u64, b: u64, width: u32) -> u64 {
    if a_nan || b_nan {
        return if a_nan && b_nan { 0 } else { u64::MAX };
    }
    let line = |bits: u64| -> i128 {
        let magnitude = i128::from(bits & (u64::MAX >> (65 - width)));
        if bits >> (width - 1) == 1 {
            -magnitude
        } else {
            magnitude
        }
    };
    (line(a) - line(b)).unsigned_abs().min(u128::from(u64::MAX)) as u64
}

/// Largest ULP distance between two float arrays, with the index where it occurs.
pub fn max_ulp(a: &Array, b: &Array) -> (u64, usize) {
    assert_eq!(a.shape(), b.shape());
    let mut worst = (0, 0);
    for i in 0..a.len() {
        let u = match (a.data(), b.data()) {
            (Data::F32(x), Data::F32(y)) => ulp32(x[i], y[i]),
            (Data::F64(x), Data::F64(y)) => ulp64(x[i], y[i]),
            _ => panic!("max_ulp on non-float arrays"),
        };
        if u > worst.0 {
            worst = (u, i);
        }
    }
    worst
}

/// Bitwise equality, except that any two NaNs are equal (payloads are not specified).
pub fn assert_same(got: &Array, want: &Array, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    assert_eq!(got.dtype(), want.dtype(), "{what}: dtype");
    for i in 0..got.len() {
        let (g, w) = (got.get_f64(i), want.get_f64(i));
        let same = match (got.data(), want.data()) {
            (Data::F32(x), Data::F32(y)) => x[i].to_bits() == y[i].to_bits() || (x[i].is_nan() && y[i].is_nan()),
            (Data::F64(x), Data::F64(y)) => x[i].to_bits() == y[i].to_bits() || (x[i].is_nan() && y[i].is_nan()),
            (Data::I64(x), Data::I64(y)) => x[i] == y[i],
            _ => g == w,
        };
        assert!(same, "{what}: element {i}: compiled {g:?}, interpreter {w:?}");
    }
}

/// Runs `f` with transcendentals on `path` (a host-routine build or the Cranelift code).
/// The choice is process-wide, so callers serialize on a lock while they compile and run;
/// the path before is restored afterwards, even if `f` panics.
pub fn with_path<R>(path: MathPath, f: impl FnOnce() -> R) -> R {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    struct Restore(MathPath);
    impl Drop for Restore {
        fn drop(&mut self) {
            kiln_jit::set_math_path(self.0).unwrap();
        }
    }
    let _held = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let _restore = Restore(kiln_jit::math_path());
    kiln_jit::set_math_path(path).unwrap();
    f()
}

/// The host-routine builds this CPU runs (AVX-512 and AVX2 on an AVX-512 machine, so both
/// are tested wherever the suite runs); empty on a CPU with neither.
pub fn wide_paths() -> Vec<MathPath> {
    MathPath::available().into_iter().filter(|p| *p != MathPath::Cranelift).collect()
}

/// [`run_compiled`] with transcendentals on `path`.
pub fn run_compiled_on(kernel: &Kernel, inputs: &[Array], path: MathPath) -> Array {
    with_path(path, || run_compiled(kernel, inputs))
}

/// Runs `kernel` on the Cranelift code and on every wide build this CPU runs, asserts that
/// all agree bit for bit, and returns the result.
pub fn assert_paths_agree(kernel: &Kernel, inputs: &[Array], what: &str) -> Array {
    let narrow = run_compiled_on(kernel, inputs, MathPath::Cranelift);
    for path in wide_paths() {
        let wide = run_compiled_on(kernel, inputs, path);
        assert_same(&wide, &narrow, &format!("{what} ({})", path.name()));
    }
    narrow
}
