//! The wide path (`lower/tiled.rs` + `math/wide.rs`): kernels whose transcendentals run as
//! AVX-512/AVX2 host routines over tiles must compute exactly what the all-Cranelift
//! kernels compute (both run the same generic approximations, on two `Ops` backends whose
//! primitives must agree bit for bit), and both must agree with the interpreter; in f32 and
//! in f64. On a CPU with neither AVX2 nor AVX-512 the wide path is never taken and the two
//! runs coincide.

mod common;

use common::*;
use kiln_ir::{Array, BinaryOp, DType, Graph, Kernel, NodeId, Op, ReduceOp, UnaryOp};

const ROUTINES: [UnaryOp; 9] = [
    UnaryOp::Exp,
    UnaryOp::Expm1,
    UnaryOp::Tanh,
    UnaryOp::Sigmoid,
    UnaryOp::Log,
    UnaryOp::Log1p,
    UnaryOp::Softplus,
    UnaryOp::Sin,
    UnaryOp::Cos,
];

/// Specials, boundaries of every routine's ranges, and random bit patterns.
fn inputs(n: usize) -> Vec<f32> {
    let mut v = vec![
        0.0,
        -0.0,
        f32::MIN_POSITIVE,
        -f32::MIN_POSITIVE,
        1e-45,
        -1e-45,
        1e-40,
        f32::MAX,
        f32::MIN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        -f32::NAN,
        1.0,
        -1.0,
        -0.999_999_9,
        0.414_213_56,
        -0.292_893_22,
        88.72,
        88.73,
        89.0,
        -103.9,
        -104.0,
        -30.0,
        20.0,
        -20.0,
        1e-30,
        // sin/cos: the reduction's bound and beyond (lanes the host's libm recomputes).
        8192.0,
        -8192.5,
        3e9,
        1e20,
    ];
    let mut rng = Rng(11);
    while v.len() < n {
        v.push(match rng.below(3) {
            0 => f32::from_bits(rng.next() as u32),
            1 => ((rng.unit() - 0.5) * 60.0) as f32,
            _ => ((rng.unit() - 0.5) * 2.0 * 10f64.powi(rng.below(8) as i32 - 5)) as f32,
        });
    }
    v
}

#[test]
fn routines_equal_the_cranelift_approximations_bit_for_bit() {
    let n = 20_011;
    let x32 = inputs(n);
    // f64: the same values, plus f64's own boundaries and random bit patterns.
    let mut rng = Rng(12);
    let mut x64: Vec<f64> = x32.iter().map(|&v| v as f64).collect();
    x64.extend([709.7, 710.0, -745.0, -746.0, -45.0, 40.0, 1e-310, f64::MIN_POSITIVE, f64::MAX, 5e-324]);
    x64.extend((0..n).map(|_| f64::from_bits(rng.next())));
    let cases = [
        (DType::F32, Array::from_vec(x32, &[n]).unwrap()),
        (DType::F64, Array::from_vec(x64.clone(), &[x64.len()]).unwrap()),
    ];
    for (d, x) in cases {
        for op in ROUTINES {
            let k = kernel(&[ty(d, x.shape())], |g, i| add(g, Op::Unary(op), &[i[0]]));
            assert_paths_agree(&k, std::slice::from_ref(&x), &format!("{} {d}", op.name()));
        }
    }
}

fn unary(g: &mut Graph, op: UnaryOp, x: NodeId) -> NodeId {
    add(g, Op::Unary(op), &[x])
}

fn binary(g: &mut Graph, op: BinaryOp, a: NodeId, b: NodeId) -> NodeId {
    add(g, Op::Binary(op), &[a, b])
}

fn scalar(g: &mut Graph, d: DType, v: f64) -> NodeId {
    g.add_const(if d == DType::F32 { Array::scalar(v as f32) } else { Array::scalar(v) })
}

/// Kernel bodies exercising the staging: several routines in a chain and side by side, a
/// routine's result used twice and as the root, values reused across stages, broadcast
/// operands, and a non-f32 output.
fn bodies(d: DType, shape: &[usize]) -> Vec<(&'static str, Kernel)> {
    let row = [*shape.last().unwrap()];
    // One value per row: `[rows, 1]`, or `[1]` for a single row.
    let col: Vec<usize> = if shape.len() >= 2 { vec![shape[0], 1] } else { vec![1] };
    let f = |s: &[usize]| ty(d, s);
    vec![
        (
            "gelu",
            kernel(&[f(shape)], |g, x| {
                let x = x[0];
                let x3 = binary(g, BinaryOp::Mul, x, x);
                let x3 = binary(g, BinaryOp::Mul, x3, x);
                let k = scalar(g, d, 0.044715);
                let t = binary(g, BinaryOp::Mul, k, x3);
                let t = binary(g, BinaryOp::Add, x, t);
                let t = unary(g, UnaryOp::Tanh, t);
                let one = scalar(g, d, 1.0);
                let t = binary(g, BinaryOp::Add, one, t);
                let half = scalar(g, d, 0.5);
                let h = binary(g, BinaryOp::Mul, half, x);
                binary(g, BinaryOp::Mul, h, t)
            }),
        ),
        ("exp root", kernel(&[f(shape)], |g, x| unary(g, UnaryOp::Exp, x[0]))),
        (
            "chain tanh(exp(x)) * log1p(x*x)",
            kernel(&[f(shape)], |g, x| {
                let e = unary(g, UnaryOp::Exp, x[0]);
                let t = unary(g, UnaryOp::Tanh, e);
                let sq = binary(g, BinaryOp::Mul, x[0], x[0]);
                let l = unary(g, UnaryOp::Log1p, sq);
                binary(g, BinaryOp::Mul, t, l)
            }),
        ),
        (
            "reused sigmoid(x - b) with broadcast b",
            kernel(&[f(shape), f(&row)], |g, x| {
                let d = binary(g, BinaryOp::Sub, x[0], x[1]);
                let s = unary(g, UnaryOp::Sigmoid, d);
                let s2 = binary(g, BinaryOp::Mul, s, s);
                let m = binary(g, BinaryOp::Mul, s2, d);
                binary(g, BinaryOp::Add, m, s)
            }),
        ),
        (
            "softplus(x) > expm1(x) (bool output)",
            kernel(&[f(shape)], |g, x| {
                let a = unary(g, UnaryOp::Softplus, x[0]);
                let b = unary(g, UnaryOp::Expm1, x[0]);
                binary(g, BinaryOp::Greater, a, b)
            }),
        ),
        (
            "x - log(b) with b constant along the row",
            kernel(&[f(shape), f(&col)], |g, x| {
                let l = unary(g, UnaryOp::Log, x[1]);
                binary(g, BinaryOp::Sub, x[0], l)
            }),
        ),
        (
            "log(|x|) with a scalar-only stage",
            kernel(&[f(shape)], |g, x| {
                let a = unary(g, UnaryOp::Abs, x[0]);
                let l = unary(g, UnaryOp::Log, a);
                let two = scalar(g, d, 2.0);
                let e = unary(g, UnaryOp::Exp, two);
                binary(g, BinaryOp::Mul, l, e)
            }),
        ),
    ]
}

/// Reductions over the innermost axis with routines inside: the tiles accumulate into the
/// same accumulators in the same order as the all-Cranelift loop (a tile is a multiple of
/// the 16-element vector group), so these too must agree bit for bit.
fn reduction_bodies(d: DType, shape: &[usize]) -> Vec<(&'static str, Kernel)> {
    let last = shape.len() - 1;
    let col: Vec<usize> = if shape.len() >= 2 { vec![shape[0], 1] } else { vec![1] };
    let f = |s: &[usize]| ty(d, s);
    let reduce =
        |g: &mut Graph, op: ReduceOp, x: NodeId| add(g, Op::Reduce { op, axes: vec![last], keepdims: true }, &[x]);
    vec![
        (
            "sum(exp(x - m)) over rows",
            kernel(&[f(shape), f(&col)], |g, x| {
                let d = binary(g, BinaryOp::Sub, x[0], x[1]);
                let e = unary(g, UnaryOp::Exp, d);
                reduce(g, ReduceOp::Sum, e)
            }),
        ),
        (
            "max(x * tanh(x)) over rows",
            kernel(&[f(shape)], |g, x| {
                let t = unary(g, UnaryOp::Tanh, x[0]);
                let m = binary(g, BinaryOp::Mul, x[0], t);
                reduce(g, ReduceOp::Max, m)
            }),
        ),
        (
            "mean(sigmoid(x)) over rows",
            kernel(&[f(shape)], |g, x| {
                let s = unary(g, UnaryOp::Sigmoid, x[0]);
                reduce(g, ReduceOp::Mean, s)
            }),
        ),
    ]
}

#[test]
fn tiled_kernels_equal_cranelift_and_the_interpreter() {
    // Tiles are 256 elements: sizes around one and several tiles, rows shorter and
    // longer than a tile, and an empty output.
    let shapes: [&[usize]; 8] = [&[0], &[1], &[255], &[256], &[257], &[1031], &[3, 300], &[5, 7]];
    let mut rng = Rng(5);
    for shape in shapes {
        for d in [DType::F32, DType::F64] {
            let reductions = reduction_bodies(d, shape).into_iter().map(|(n, k)| (n, k, true));
            for (name, k, reduces) in bodies(d, shape).into_iter().map(|(n, k)| (n, k, false)).chain(reductions) {
                let inputs = kernel_inputs(&mut rng, &k);
                let what = format!("{name} {d}{shape:?}");
                let wide = assert_paths_agree(&k, &inputs, &what);
                let want = run_interp(&k, &inputs).unwrap();
                if want.dtype().is_float() {
                    // A few ULP per routine, composed through a handful of operations; absolute
                    // below 1 because `1 + tanh(t)` and the like cancel (error ~ ULP of 1).
                    // Reductions add the reassociated sum (n eps relative, n <= 1031).
                    let tol = match (d, reduces) {
                        (DType::F32, false) => 1e-5,
                        (DType::F32, true) => 1e-4,
                        (_, false) => 1e-12,
                        (_, true) => 1e-11,
                    };
                    for i in 0..want.len() {
                        let (w, g) = (want.get_f64(i), wide.get_f64(i));
                        let ok = (w.is_nan() && g.is_nan()) || w == g || (w - g).abs() <= tol * w.abs().max(1.0);
                        assert!(ok, "{what}: element {i}: wide {g}, interpreter {w}");
                    }
                }
            }
        }
    }
}

/// Only transcendentals that vary along the row go to the routines, in elementwise kernels
/// and in reductions over the innermost axis: one of a value that is constant along the row
/// (`log` of a broadcast row statistic) stays in Cranelift code, computed once per row
/// instead of once per element.
#[test]
fn which_kernels_call_routines() {
    let x = ty(DType::F32, &[4, 300]);
    let s = ty(DType::F32, &[4, 1]);
    let per_row = kernel(&[x.clone(), s], |g, i| {
        let l = unary(g, UnaryOp::Log, i[1]);
        binary(g, BinaryOp::Sub, i[0], l)
    });
    let per_element = kernel(&[x], |g, i| {
        let l = unary(g, UnaryOp::Log, i[0]);
        binary(g, BinaryOp::Sub, i[0], l)
    });
    let row_sums = &reduction_bodies(DType::F32, &[4, 300])[0].1;
    for path in kiln_jit::MathPath::available() {
        with_path(path, || {
            let calls = |k: &Kernel| kiln_jit::compile_uncached(k).unwrap().clif().contains("call_indirect");
            let wide = path != kiln_jit::MathPath::Cranelift;
            assert!(!calls(&per_row), "log of a row constant must not call a routine");
            assert_eq!(calls(&per_element), wide, "{path:?}: log of every element uses the routine");
            assert_eq!(calls(row_sums), wide, "{path:?}: so does exp inside a row sum");
        });
    }
}

/// A kernel's CLIF text is made when first asked for, by lowering it again: it must show the
/// code the kernel was compiled to, whatever math path is chosen by then.
#[test]
fn clif_text_shows_the_path_the_kernel_was_compiled_for() {
    let body = kernel(&[ty(DType::F32, &[300])], |g, i| unary(g, UnaryOp::Tanh, i[0]));
    for compiled_on in kiln_jit::MathPath::available() {
        for asked_on in kiln_jit::MathPath::available() {
            let k = with_path(compiled_on, || kiln_jit::compile_uncached(&body).unwrap());
            let text = with_path(asked_on, || k.clif().to_string());
            let wide = compiled_on != kiln_jit::MathPath::Cranelift;
            assert_eq!(text.contains("call_indirect"), wide, "compiled on {compiled_on:?}, asked on {asked_on:?}");
            assert!(text.starts_with("function"), "{text}");
        }
    }
}

/// Every build the CPU can run is offered, so the suite tests each of them: an AVX-512 CPU
/// also runs the AVX2 build, and every CPU the Cranelift code.
#[test]
fn every_build_the_cpu_runs_is_available() {
    use kiln_jit::MathPath;
    let paths = MathPath::available();
    let has = |f: &str| match f {
        "avx512f" => std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("fma"),
        _ => std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma"),
    };
    assert_eq!(paths.contains(&MathPath::Avx512), has("avx512f"));
    assert_eq!(paths.contains(&MathPath::Avx2), has("avx2"));
    assert_eq!(paths.last(), Some(&MathPath::Cranelift));
    for p in [MathPath::Avx512, MathPath::Avx2] {
        if !paths.contains(&p) {
            assert!(kiln_jit::set_math_path(p).is_err(), "{p:?} must be refused on this CPU");
        }
    }
    println!("math paths here: {:?}", paths.iter().map(|p| p.name()).collect::<Vec<_>>());
}
