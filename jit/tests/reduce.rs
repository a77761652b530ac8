//! Reductions with fused producers, over inner, outer and multiple axes, compiled vs the
//! interpreter. Max/min/argmax/argmin and integer reductions are exact; float sums and
//! means are reassociated (vector accumulators) and compared against the interpreter's
//! f64-accumulated result within `n * 2^-23 * sum|x|` (f32) — the textbook bound for
//! any summation order; products within a relative 1e-5.

mod common;

use common::*;
use kiln_ir::{ArgOp, Array, BinaryOp, DType, Op, ReduceOp, UnaryOp};

fn check(op: ReduceOp, d: DType, shape: &[usize], axes: &[usize], keepdims: bool, producer: bool, rng: &mut Rng) {
    let k = kernel(&[ty(d, shape)], |g, x| {
        let v = if producer && d.is_float() {
            // exact producer ops, so max/min stay bit-exact: x*x - x, |.| < 6
            let e = add(g, Op::Binary(BinaryOp::Mul), &[x[0], x[0]]);
            add(g, Op::Binary(BinaryOp::Sub), &[e, x[0]])
        } else if producer {
            add(g, Op::Unary(UnaryOp::Abs), &[x[0]])
        } else {
            x[0]
        };
        add(g, Op::Reduce { op, axes: axes.to_vec(), keepdims }, &[v])
    });
    let x = if d.is_float() {
        // finite values: sums of infinities are exact anyway, and NaN is checked separately
        let n: usize = shape.iter().product();
        let v: Vec<f64> = (0..n).map(|_| (rng.unit() - 0.5) * 4.0).collect();
        if d == DType::F32 {
            Array::from_vec(v.iter().map(|&x| x as f32).collect(), shape).unwrap()
        } else {
            Array::from_vec(v, shape).unwrap()
        }
    } else {
        // small integers: the wrapping sum equals the interpreter's exact (i128) one
        nonzero(rng, d, shape)
    };
    let what = format!("{} {d} {shape:?} axes {axes:?} keepdims {keepdims} producer {producer}", op.name());
    let Ok(want) = run_interp(&k, std::slice::from_ref(&x)) else {
        return; // e.g. an integer mean overflowing: the interpreter reports it
    };
    let got = run_compiled(&k, std::slice::from_ref(&x));
    let exact = !d.is_float() || matches!(op, ReduceOp::Max | ReduceOp::Min);
    if exact && !(d.is_int() && op == ReduceOp::Mean) {
        assert_same(&got, &want, &what);
        return;
    }
    if d.is_int() {
        // integer mean: the interpreter sums exactly in i128; compiled code sums wrapping,
        // which agrees whenever the sum fits (it does for these small values).
        assert_same(&got, &want, &what);
        return;
    }
    let count: usize = axes.iter().map(|&a| shape[a]).product::<usize>().max(1);
    let eps = if d == DType::F32 { f32::EPSILON as f64 } else { f64::EPSILON };
    for i in 0..got.len() {
        let (g, w) = (got.get_f64(i), want.get_f64(i));
        let tol = match op {
            ReduceOp::Prod => 1e-5 * w.abs() + 1e-30,
            // |x| < 6 after the producer: sum |x| <= 6 count.
            _ => {
                (count as f64) * eps * 6.0 * count as f64 / if op == ReduceOp::Mean { count as f64 } else { 1.0 }
                    + 1e-30
            }
        };
        assert!(
            (g.is_nan() && w.is_nan()) || (g - w).abs() <= tol,
            "{what}: element {i}: compiled {g}, interpreter {w}"
        );
    }
}

#[test]
fn reductions_inner_outer_multiple_axes() {
    kiln_jit::set_verify(true);
    let mut rng = Rng(11);
    let cases: &[(&[usize], &[usize])] = &[
        (&[7], &[0]),
        (&[1031], &[0]),
        (&[6, 33], &[1]),
        (&[33, 6], &[0]),
        (&[5, 4, 9], &[0, 2]),
        (&[5, 4, 9], &[1]),
        (&[5, 4, 9], &[0, 1]),
        (&[3, 1, 17], &[2]),
        (&[4, 5], &[]),
        (&[2, 3, 4, 5], &[1, 3]),
        (&[0, 4], &[1]),
        (&[3, 0], &[1]),
        (&[9, 1], &[0]),
    ];
    for op in ReduceOp::ALL {
        for d in [DType::F32, DType::F64, DType::I32, DType::I64] {
            for &(shape, axes) in cases {
                if op == ReduceOp::Mean && d.is_int() && axes.iter().any(|&a| shape[a] == 0) {
                    continue; // rejected by shape inference
                }
                for keepdims in [false, true] {
                    check(op, d, shape, axes, keepdims, keepdims, &mut rng);
                }
            }
        }
    }
}

#[test]
fn arg_reductions() {
    kiln_jit::set_verify(true);
    let mut rng = Rng(12);
    for op in [ArgOp::ArgMax, ArgOp::ArgMin] {
        for d in [DType::F32, DType::F64, DType::I32, DType::I64] {
            for (shape, axis) in
                [(vec![17], 0usize), (vec![4, 9], 1), (vec![9, 4], 0), (vec![3, 5, 2], 1), (vec![6, 1], 1)]
            {
                for keepdims in [false, true] {
                    let k = kernel(&[ty(d, &shape)], |g, x| add(g, Op::ArgReduce { op, axis, keepdims }, &[x[0]]));
                    // few distinct values: ties are common; specials (NaN) included
                    let x = random(&mut rng, d, &shape);
                    let want = run_interp(&k, std::slice::from_ref(&x)).unwrap();
                    assert_same(&run_compiled(&k, &[x]), &want, &format!("{} {d} {shape:?} {axis}", op.name()));
                }
            }
        }
    }
}

#[test]
fn softmax_pieces_row_reductions() {
    // max and sum of exp(x - max) over the last axis of a [64, 1000] tensor.
    let mut rng = Rng(13);
    let x = random(&mut rng, DType::F32, &[64, 1000]);
    let kmax = kernel(&[ty(DType::F32, &[64, 1000])], |g, x| {
        add(g, Op::Reduce { op: ReduceOp::Max, axes: vec![1], keepdims: true }, &[x[0]])
    });
    let m = run_compiled(&kmax, std::slice::from_ref(&x));
    assert_same(&m, &run_interp(&kmax, std::slice::from_ref(&x)).unwrap(), "row max");
    let ksum = kernel(&[ty(DType::F32, &[64, 1000]), ty(DType::F32, &[64, 1])], |g, x| {
        let s = add(g, Op::Binary(BinaryOp::Sub), &[x[0], x[1]]);
        let e = add(g, Op::Unary(UnaryOp::Exp), &[s]);
        add(g, Op::Reduce { op: ReduceOp::Sum, axes: vec![1], keepdims: true }, &[e])
    });
    let got = run_compiled(&ksum, &[x.clone(), m.clone()]);
    let want = run_interp(&ksum, &[x, m]).unwrap();
    for i in 0..got.len() {
        let (g, w) = (got.get_f64(i), want.get_f64(i));
        assert!(g.is_nan() && w.is_nan() || (g - w).abs() <= 1e-5 * w.abs().max(1.0), "row {i}: {g} vs {w}");
    }
}
