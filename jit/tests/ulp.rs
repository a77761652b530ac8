//! Accuracy of the generated transcendentals against the interpreter (which evaluates in
//! f64 and rounds once, i.e. practically correctly rounded for f32), over the whole input
//! range: ±0, subnormals, huge magnitudes, ±inf, NaN, random bit patterns, and dense
//! sampling of the interesting ranges, for both the 128-bit Cranelift code and the wide
//! host routines (`math/wide.rs`; the worse of the two counts). `cargo test --release -p kiln-jit --test ulp --
//! --nocapture` prints the table quoted in docs/JIT.md.

mod common;

use common::*;
use kiln_ir::{Array, BinaryOp, DType, Op, UnaryOp};

/// Stated bounds (max ULP) as (op, f32 bound, f64 bound); docs/JIT.md quotes them.
const BOUNDS: [(UnaryOp, u64, u64); 10] = [
    (UnaryOp::Exp, 1, 1),
    (UnaryOp::Expm1, 2, 2),
    (UnaryOp::Log, 1, 1),
    (UnaryOp::Log1p, 2, 2),
    (UnaryOp::Tanh, 3, 4),
    (UnaryOp::Sigmoid, 2, 2),
    (UnaryOp::Softplus, 2, 2),
    (UnaryOp::Sin, 2, 2),
    (UnaryOp::Cos, 2, 2),
    (UnaryOp::Rsqrt, 1, 1),
];

fn inputs_f64(rng: &mut Rng, n: usize) -> Vec<f64> {
    let mut v: Vec<f64> = vec![
        0.0,
        -0.0,
        f64::MIN_POSITIVE,
        -f64::MIN_POSITIVE,
        5e-324,
        -5e-324,
        1e-310,
        f64::MAX,
        f64::MIN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        1.0,
        -1.0,
        1e-20,
        -1e-20,
        709.7,
        710.0,
        -745.0,
        -746.0,
        1e6,
        1e15,
        -1e300,
    ];
    // f32 specials too (this list is also used for f32 after rounding)
    v.extend([
        f32::MIN_POSITIVE as f64,
        1e-45,
        1e-40,
        f32::MAX as f64,
        88.72,
        88.73,
        -87.3,
        -103.9,
        -104.0,
        3e9,
        1e-30,
    ]);
    while v.len() < n {
        let x = match rng.below(4) {
            0 => f64::from_bits(rng.next()),
            1 => f32::from_bits(rng.next() as u32) as f64,
            2 => (rng.unit() - 0.5) * 40.0,
            _ => (rng.unit() - 0.5) * 2.0 * 10f64.powi(rng.below(8) as i32 - 4),
        };
        v.push(x);
    }
    v
}

/// The worst max ULP (and where) over every path this CPU runs.
fn measure(op: UnaryOp, d: DType, xs: &[f64]) -> (u64, f64) {
    let all = kiln_jit::MathPath::available().into_iter().map(|p| measure_with(op, d, xs, p));
    all.max_by_key(|m| m.0).unwrap()
}

/// Max ULP (and where) of one path: 128-bit Cranelift code, or a build of the host routines.
fn measure_with(op: UnaryOp, d: DType, xs: &[f64], path: kiln_jit::MathPath) -> (u64, f64) {
    let n = xs.len();
    let x = if d == DType::F32 {
        Array::from_vec(xs.iter().map(|&x| x as f32).collect(), &[n]).unwrap()
    } else {
        Array::from_vec(xs.to_vec(), &[n]).unwrap()
    };
    let k = kernel(&[ty(d, &[n])], |g, i| add(g, Op::Unary(op), &[i[0]]));
    let want = run_interp(&k, std::slice::from_ref(&x)).unwrap();
    let got = run_compiled_on(&k, std::slice::from_ref(&x), path);
    let (u, i) = max_ulp(&got, &want);
    (u, x.get_f64(i))
}

#[test]
fn transcendental_ulp_bounds() {
    let mut rng = Rng(42);
    let xs = inputs_f64(&mut rng, 400_000);
    let mut failures = vec![];
    println!("| op | f32 max ULP (at x) | f64 max ULP (at x) |");
    for (op, b32, b64) in BOUNDS {
        let (u32_, x32) = measure(op, DType::F32, &xs);
        let (u64_, x64) = measure(op, DType::F64, &xs);
        println!("| {} | {u32_} ({x32:e}) | {u64_} ({x64:e}) |", op.name());
        if u32_ > b32 || u64_ > b64 {
            failures.push(format!("{}: f32 {u32_} > {b32}? f64 {u64_} > {b64}?", op.name()));
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}

#[test]
fn pow_ulp() {
    let mut rng = Rng(43);
    let n = 100_000;
    let mut xs = inputs_f64(&mut rng, n);
    let mut ys = inputs_f64(&mut rng, n);
    // integer exponents with negative bases, small/large exponents
    for i in 0..n / 4 {
        ys[i] = (rng.below(41) as f64) - 20.0;
        xs[i] = (rng.unit() - 0.5) * 20.0;
    }
    for d in [DType::F32, DType::F64] {
        let (xa, ya) = if d == DType::F32 {
            (
                Array::from_vec(xs.iter().map(|&x| x as f32).collect(), &[n]).unwrap(),
                Array::from_vec(ys.iter().map(|&x| x as f32).collect(), &[n]).unwrap(),
            )
        } else {
            (Array::from_vec(xs.clone(), &[n]).unwrap(), Array::from_vec(ys.clone(), &[n]).unwrap())
        };
        let k = kernel(&[ty(d, &[n]), ty(d, &[n])], |g, i| add(g, Op::Binary(BinaryOp::Pow), &[i[0], i[1]]));
        let want = run_interp(&k, &[xa.clone(), ya.clone()]).unwrap();
        let got = run_compiled(&k, &[xa.clone(), ya.clone()]);
        let (u, i) = max_ulp(&got, &want);
        println!("| pow | {d}: {u} ULP at x={:e} y={:e} |", xa.get_f64(i), ya.get_f64(i));
        let bound = if d == DType::F32 { 1 } else { 2048 };
        assert!(u <= bound, "pow {d}: {u} ULP at x={} y={}", xa.get_f64(i), ya.get_f64(i));
    }
}

#[test]
fn tanh_of_tiny_is_identity() {
    for d in [DType::F32, DType::F64] {
        let xs = [1e-30, -1e-30, 1e-8, -3e-9, 1e-40, 0.0, -0.0];
        let (u, x) = measure(UnaryOp::Tanh, d, &xs);
        assert!(u <= 1, "tanh({x:e}) in {d} must be x (within 1 ULP), not 0");
        let (u, x) = measure(UnaryOp::Expm1, d, &xs);
        assert!(u <= 1, "expm1({x:e}) in {d} must be x");
        let (u, x) = measure(UnaryOp::Log1p, d, &xs);
        assert!(u <= 1, "log1p({x:e}) in {d} must be x");
    }
}

/// tanh is odd on every math path, bit for bit, as libm's is: `tanh(-x) = -tanh(x)`, so a
/// max over `tanh(1)` and `tanh(-1)` ties and ±0 keep their signs.
#[test]
fn tanh_is_odd() {
    let mut rng = Rng(44);
    let xs = inputs_f64(&mut rng, 20_000);
    let neg: Vec<f64> = xs.iter().map(|x| -x).collect();
    for d in [DType::F32, DType::F64] {
        let array = |v: &[f64]| {
            let n = v.len();
            if d == DType::F32 {
                Array::from_vec(v.iter().map(|&x| x as f32).collect(), &[n]).unwrap()
            } else {
                Array::from_vec(v.to_vec(), &[n]).unwrap()
            }
        };
        let k = kernel(&[ty(d, &[xs.len()])], |g, i| add(g, Op::Unary(UnaryOp::Tanh), &[i[0]]));
        for path in kiln_jit::MathPath::available() {
            let (pos, neg) = (run_compiled_on(&k, &[array(&xs)], path), run_compiled_on(&k, &[array(&neg)], path));
            for (i, x) in xs.iter().enumerate() {
                let (p, n) = (pos.get_f64(i), neg.get_f64(i));
                let odd = (p.is_nan() && n.is_nan()) || (p.to_bits() == (-n).to_bits());
                assert!(odd, "{d} {}: tanh({x:e}) = {p:e} but tanh(-x) = {n:e}", path.name());
            }
        }
    }
}
