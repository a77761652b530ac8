//! Every elementwise op and dtype, compiled vs the interpreter: bit for bit where IEEE
//! (or integer arithmetic) is exact, within the stated ULP bound for the approximations.
//! Sizes 0, 1, vector width ±1, odd primes and large; broadcasting patterns; scalars.

mod common;

use common::*;
use kiln_ir::{Array, BinaryOp, DType, Op, UnaryOp};

const SIZES: [usize; 11] = [0, 1, 3, 4, 5, 7, 8, 9, 17, 31, 1031];

fn approx_bound(op: UnaryOp, d: DType) -> Option<u64> {
    let _ = d;
    Some(match op {
        UnaryOp::Exp | UnaryOp::Expm1 | UnaryOp::Log | UnaryOp::Log1p => 2,
        UnaryOp::Tanh | UnaryOp::Sigmoid | UnaryOp::Softplus => 4,
        UnaryOp::Sin | UnaryOp::Cos => 2,
        UnaryOp::Rsqrt => 1,
        _ => return None,
    })
}

fn check_unary(op: UnaryOp, d: DType, shape: &[usize], rng: &mut Rng) {
    let k = kernel(&[ty(d, shape)], |g, x| add(g, Op::Unary(op), &[x[0]]));
    let x = random(rng, d, shape);
    let want = run_interp(&k, std::slice::from_ref(&x)).unwrap();
    let got = run_compiled(&k, std::slice::from_ref(&x));
    let what = format!("{} {d} {shape:?}", op.name());
    match approx_bound(op, d) {
        Some(b) => {
            let (u, i) = max_ulp(&got, &want);
            assert!(u <= b, "{what}: {u} ULP at x={} (got {}, want {})", x.get_f64(i), got.get_f64(i), want.get_f64(i));
        }
        None => assert_same(&got, &want, &what),
    }
}

#[test]
fn unary_ops_all_dtypes() {
    kiln_jit::set_verify(true);
    let mut rng = Rng(1);
    for op in UnaryOp::ALL {
        for d in DType::ALL {
            if !op.accepts(d) {
                continue;
            }
            for n in SIZES {
                check_unary(op, d, &[n], &mut rng);
            }
            check_unary(op, d, &[3, 5, 7], &mut rng);
            check_unary(op, d, &[], &mut rng);
        }
    }
}

/// Operand shape pairs: same shape, row broadcast, outer product, scalar on either side.
fn shape_pairs() -> Vec<(Vec<usize>, Vec<usize>)> {
    let mut v = vec![];
    for n in SIZES {
        v.push((vec![n], vec![n]));
        v.push((vec![3, n], vec![n]));
        v.push((vec![n], vec![]));
    }
    v.push((vec![5, 1], vec![1, 9]));
    v.push((vec![], vec![2, 13]));
    v.push((vec![2, 3, 5], vec![3, 1]));
    v.push((vec![4, 1, 6], vec![1, 3, 1]));
    v.push((vec![2, 0, 3], vec![3]));
    v
}

fn check_binary(op: BinaryOp, d: DType, sa: &[usize], sb: &[usize], rng: &mut Rng) {
    let k = kernel(&[ty(d, sa), ty(d, sb)], |g, x| add(g, Op::Binary(op), &[x[0], x[1]]));
    let a = random(rng, d, sa);
    let b = match op {
        BinaryOp::Div if d.is_int() => nonzero(rng, d, sb),
        BinaryOp::Pow if d.is_int() => exponents(rng, d, sb),
        _ => random(rng, d, sb),
    };
    let want = run_interp(&k, &[a.clone(), b.clone()]).unwrap();
    let got = run_compiled(&k, &[a, b]);
    let what = format!("{} {d} {sa:?} {sb:?}", op.name());
    if op == BinaryOp::Pow && d.is_float() {
        let (u, _) = max_ulp(&got, &want);
        let bound = if d == DType::F32 { 1 } else { 2048 };
        assert!(u <= bound, "{what}: {u} ULP");
    } else {
        assert_same(&got, &want, &what);
    }
}

#[test]
fn binary_ops_all_dtypes_and_broadcasts() {
    kiln_jit::set_verify(true);
    let mut rng = Rng(2);
    for op in BinaryOp::ALL {
        for d in DType::ALL {
            if !op.accepts(d) {
                continue;
            }
            for (sa, sb) in shape_pairs() {
                check_binary(op, d, &sa, &sb, &mut rng);
                check_binary(op, d, &sb, &sa, &mut rng);
            }
        }
    }
}

#[test]
fn integer_division_edge_cases() {
    // MIN / -1 wraps; truncation toward zero.
    let k =
        kernel(&[ty(DType::I32, &[6]), ty(DType::I32, &[6])], |g, x| add(g, Op::Binary(BinaryOp::Div), &[x[0], x[1]]));
    let a = Array::from_vec(vec![i32::MIN, -7, 7, -7, 0, 5], &[6]).unwrap();
    let b = Array::from_vec(vec![-1, 2, -2, -2, 3, 1], &[6]).unwrap();
    assert_same(&run_compiled(&k, &[a.clone(), b.clone()]), &run_interp(&k, &[a, b]).unwrap(), "div");
}

#[test]
fn select_all_dtypes() {
    kiln_jit::set_verify(true);
    let mut rng = Rng(3);
    for d in DType::ALL {
        for (sc, sa, sb) in [
            (vec![9], vec![9], vec![9]),
            (vec![4, 7], vec![7], vec![]),
            (vec![], vec![3, 5], vec![3, 5]),
            (vec![6, 1], vec![1, 6], vec![6, 6]),
        ] {
            let k = kernel(&[ty(DType::Bool, &sc), ty(d, &sa), ty(d, &sb)], |g, x| add(g, Op::Select, x));
            let ins = [random(&mut rng, DType::Bool, &sc), random(&mut rng, d, &sa), random(&mut rng, d, &sb)];
            let want = run_interp(&k, &ins).unwrap();
            assert_same(&run_compiled(&k, &ins), &want, &format!("select {d} {sc:?}"));
        }
    }
}

#[test]
fn casts_all_pairs() {
    kiln_jit::set_verify(true);
    let mut rng = Rng(4);
    for from in DType::ALL {
        for to in DType::ALL {
            for n in [1usize, 5, 8, 33] {
                let k = kernel(&[ty(from, &[n])], |g, x| add(g, Op::Cast(to), &[x[0]]));
                let x = random(&mut rng, from, &[n]);
                let want = run_interp(&k, std::slice::from_ref(&x)).unwrap();
                assert_same(&run_compiled(&k, &[x]), &want, &format!("cast {from}->{to} [{n}]"));
            }
        }
    }
}

#[test]
fn fused_chain_with_constants_and_broadcast_to() {
    kiln_jit::set_verify(true);
    let mut rng = Rng(5);
    // y = select(x > c, x * w, -x) + b, c a [5] constant, w a scalar constant, b broadcast.
    let k = kernel(&[ty(DType::F32, &[3, 5]), ty(DType::F32, &[3, 1])], |g, x| {
        let c = g.add_const(Array::from_vec(vec![0.5f32, -1.0, 2.0, 0.0, -0.0], &[5]).unwrap());
        let w = g.add_const(Array::scalar(1.5f32));
        let gt = add(g, Op::Binary(BinaryOp::Greater), &[x[0], c]);
        let xw = add(g, Op::Binary(BinaryOp::Mul), &[x[0], w]);
        let nx = add(g, Op::Unary(UnaryOp::Neg), &[x[0]]);
        let s = add(g, Op::Select, &[gt, xw, nx]);
        let b = add(g, Op::BroadcastTo([3, 5].into_iter().collect()), &[x[1]]);
        add(g, Op::Binary(BinaryOp::Add), &[s, b])
    });
    let ins = [random(&mut rng, DType::F32, &[3, 5]), random(&mut rng, DType::F32, &[3, 1])];
    assert_same(&run_compiled(&k, &ins), &run_interp(&k, &ins).unwrap(), "chain");
}

#[test]
fn no_contraction_of_user_multiply_add() {
    // a*b+c must round twice, as the interpreter does, even where FMA exists.
    let t64 = ty(DType::F32, &[64]);
    let k = kernel(&[t64.clone(), t64.clone(), t64], |g, x| {
        let m = add(g, Op::Binary(BinaryOp::Mul), &[x[0], x[1]]);
        add(g, Op::Binary(BinaryOp::Add), &[m, x[2]])
    });
    let mut rng = Rng(6);
    let ins: Vec<Array> = (0..3).map(|_| random(&mut rng, DType::F32, &[64])).collect();
    assert_same(&run_compiled(&k, &ins), &run_interp(&k, &ins).unwrap(), "a*b+c");
    assert!(!k_clif(&k).contains("fma"), "no fma in a kernel without transcendentals");
}

fn k_clif(k: &kiln_ir::Kernel) -> String {
    kiln_jit::compile(k).unwrap().clif().to_string()
}

#[test]
fn compile_cache_returns_the_same_kernel() {
    let make = || kernel(&[ty(DType::F32, &[7])], |g, x| add(g, Op::Unary(UnaryOp::Exp), &[x[0]]));
    let a = kiln_jit::compile(&make()).unwrap();
    let b = kiln_jit::compile(&make()).unwrap();
    assert!(std::sync::Arc::ptr_eq(&a, &b));
    let other = kernel(&[ty(DType::F32, &[8])], |g, x| add(g, Op::Unary(UnaryOp::Exp), &[x[0]]));
    assert!(!std::sync::Arc::ptr_eq(&a, &kiln_jit::compile(&other).unwrap()));
}

#[test]
fn unsupported_body_is_a_compile_error() {
    let k = kernel(&[ty(DType::F32, &[2, 3])], |g, x| add(g, Op::Transpose(vec![1, 0]), &[x[0]]));
    assert!(matches!(kiln_jit::compile(&k), Err(kiln_ir::Error::Compile(_))));
}
