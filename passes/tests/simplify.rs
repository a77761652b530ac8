//! Each simplification rule: it fires where it should, keeps the node's type, and keeps
//! NaN, ±Inf and the sign of zero exactly (checked with the interpreter on such inputs).
//! Rules that would change those values are shown not to fire.

mod common;

use common::{assert_same_outcome, Program};
use kiln_ir::{interp, Array, BinaryOp, DType, Graph, NodeId, Op, TensorType, UnaryOp};
use kiln_passes::{Dce, Pass, Simplify};

/// Special float values as a `[8]` array of `dtype`.
fn specials(dtype: DType) -> Array {
    let v = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 0.0, 1.5, -2.0, 1e30];
    match dtype {
        DType::F32 => Array::from_vec(v.iter().map(|&x| x as f32).collect(), &[8]).unwrap(),
        DType::F64 => Array::from_vec(v.to_vec(), &[8]).unwrap(),
        DType::I32 => Array::from_vec(vec![i32::MIN + 1, i32::MAX, -1, 0, 1, 7, -7, 3], &[8]).unwrap(),
        DType::I64 => Array::from_vec(vec![i64::MIN + 1, i64::MAX, -1, 0, 1, 7, -7, 3], &[8]).unwrap(),
        DType::Bool => Array::from_vec(vec![true, false, true, false, true, false, true, false], &[8]).unwrap(),
    }
}

/// Builds `f(x)` on an `[8]` input of `dtype`, simplifies it, checks whether `rule`
/// fired, that the graph verifies and that the outcome on special values is unchanged.
fn check(dtype: DType, rule: &str, fires: bool, f: impl Fn(&mut Graph, NodeId) -> NodeId) -> Graph {
    let mut g = Graph::new("t");
    let x = g.add_input(TensorType::new(dtype, &[8]));
    let y = f(&mut g, x);
    g.set_outputs(vec![y]);
    let before = g.clone();
    let c = Simplify.run(&mut g).unwrap();
    Dce.run(&mut g).unwrap();
    g.verify().unwrap();
    assert_eq!(c.get(rule) > 0, fires, "rule {rule} on {dtype}: {c}\n{}", g.to_text());
    assert_eq!(g.node(g.outputs()[0]).ty, before.node(before.outputs()[0]).ty, "type kept");
    let p = Program { graph: before.clone(), inputs: vec![specials(dtype)], vars: vec![] };
    let want = interp::run(&before, &p.inputs, &[]).unwrap();
    let got = interp::run(&g, &p.inputs, &[]).unwrap();
    assert_same_outcome(&want, &got, rule);
    g
}

fn konst(g: &mut Graph, dtype: DType, shape: &[usize], v: f64) -> NodeId {
    g.add_const(Array::full(shape, dtype, v))
}

fn bin(g: &mut Graph, op: BinaryOp, a: NodeId, b: NodeId) -> NodeId {
    g.add(Op::Binary(op), &[a, b]).unwrap()
}

const FLOATS: [DType; 2] = [DType::F32, DType::F64];
const INTS: [DType; 2] = [DType::I32, DType::I64];
const NUMERIC: [DType; 4] = [DType::F32, DType::F64, DType::I32, DType::I64];

#[test]
fn mul_one_fires_both_sides_and_keeps_specials() {
    for d in NUMERIC {
        let g = check(d, "mul_one", true, |g, x| {
            let one = konst(g, d, &[], 1.0);
            bin(g, BinaryOp::Mul, x, one)
        });
        assert_eq!(g.len(), 1, "only the input is left");
        check(d, "mul_one", true, |g, x| {
            let one = konst(g, d, &[8], 1.0);
            bin(g, BinaryOp::Mul, one, x)
        });
    }
}

#[test]
fn mul_one_that_enlarges_becomes_broadcast() {
    let g = check(DType::F32, "mul_one", true, |g, x| {
        let one = konst(g, DType::F32, &[2, 8], 1.0);
        bin(g, BinaryOp::Mul, x, one)
    });
    assert!(matches!(g.node(g.outputs()[0]).op, Op::BroadcastTo(ref s) if s.as_slice() == [2, 8]));
}

#[test]
fn mul_by_almost_one_does_not_fire() {
    check(DType::F32, "mul_one", false, |g, x| {
        let c = g.add_const(Array::from_vec(vec![1.0f32, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0], &[8]).unwrap());
        bin(g, BinaryOp::Mul, x, c)
    });
}

#[test]
fn div_one_fires_and_keeps_specials() {
    for d in NUMERIC {
        check(d, "div_one", true, |g, x| {
            let one = konst(g, d, &[1], 1.0);
            bin(g, BinaryOp::Div, x, one)
        });
    }
    // 1/x is not x.
    check(DType::F32, "div_one", false, |g, x| {
        let one = konst(g, DType::F32, &[], 1.0);
        bin(g, BinaryOp::Div, one, x)
    });
}

#[test]
fn add_zero_fires_for_ints_only() {
    for d in INTS {
        check(d, "add_zero", true, |g, x| {
            let z = konst(g, d, &[], 0.0);
            bin(g, BinaryOp::Add, z, x)
        });
    }
    // x + (+0.0) turns -0.0 into +0.0: must not fire for floats.
    for d in FLOATS {
        check(d, "add_zero", false, |g, x| {
            let z = konst(g, d, &[], 0.0);
            bin(g, BinaryOp::Add, x, z)
        });
    }
}

#[test]
fn add_negative_zero_fires_for_floats_and_keeps_signed_zero() {
    for d in FLOATS {
        check(d, "add_neg_zero", true, |g, x| {
            let z = konst(g, d, &[], -0.0);
            bin(g, BinaryOp::Add, x, z)
        });
        check(d, "add_neg_zero", true, |g, x| {
            let z = konst(g, d, &[8], -0.0);
            bin(g, BinaryOp::Add, z, x)
        });
    }
}

#[test]
fn sub_zero_fires_for_positive_zero_only() {
    for d in NUMERIC {
        check(d, "sub_zero", true, |g, x| {
            let z = konst(g, d, &[], 0.0);
            bin(g, BinaryOp::Sub, x, z)
        });
    }
    // x - (-0.0) = x + 0.0 loses -0.0.
    for d in FLOATS {
        check(d, "sub_zero", false, |g, x| {
            let z = konst(g, d, &[], -0.0);
            bin(g, BinaryOp::Sub, x, z)
        });
    }
    // 0 - x is a negation, not x.
    check(DType::I32, "sub_zero", false, |g, x| {
        let z = konst(g, DType::I32, &[], 0.0);
        bin(g, BinaryOp::Sub, z, x)
    });
}

#[test]
fn mul_zero_fires_for_ints_and_never_for_floats() {
    for d in INTS {
        let g = check(d, "mul_zero_int", true, |g, x| {
            let z = konst(g, d, &[], 0.0);
            bin(g, BinaryOp::Mul, x, z)
        });
        assert!(!g.is_used(g.inputs()[0]), "x is no longer read");
    }
    // NaN*0 = NaN, Inf*0 = NaN, -1*0 = -0.0.
    for d in FLOATS {
        check(d, "mul_zero_int", false, |g, x| {
            let z = konst(g, d, &[], 0.0);
            bin(g, BinaryOp::Mul, z, x)
        });
    }
}

#[test]
fn neg_neg_fires_and_keeps_specials() {
    for d in NUMERIC {
        let g = check(d, "neg_neg", true, |g, x| {
            let a = g.add(Op::Unary(UnaryOp::Neg), &[x]).unwrap();
            g.add(Op::Unary(UnaryOp::Neg), &[a]).unwrap()
        });
        assert_eq!(g.len(), 1);
    }
    // Triple negation leaves one.
    let g = check(DType::F32, "neg_neg", true, |g, x| {
        let a = g.add(Op::Unary(UnaryOp::Neg), &[x]).unwrap();
        let b = g.add(Op::Unary(UnaryOp::Neg), &[a]).unwrap();
        g.add(Op::Unary(UnaryOp::Neg), &[b]).unwrap()
    });
    assert_eq!(g.len(), 2);
}

#[test]
fn cast_to_same_dtype_fires_and_real_cast_does_not() {
    for d in NUMERIC {
        check(d, "cast_same_dtype", true, |g, x| g.add(Op::Cast(d), &[x]).unwrap());
    }
    check(DType::F32, "cast_same_dtype", false, |g, x| {
        let c = g.add(Op::Cast(DType::F64), &[x]).unwrap();
        g.add(Op::Cast(DType::F32), &[c]).unwrap()
    });
}

#[test]
fn broadcast_rules() {
    check(DType::F32, "broadcast_same_shape", true, |g, x| g.add(Op::BroadcastTo([8][..].into()), &[x]).unwrap());
    let g = check(DType::F32, "broadcast_broadcast", true, |g, x| {
        let a = g.add(Op::BroadcastTo([2, 8][..].into()), &[x]).unwrap();
        g.add(Op::BroadcastTo([3, 2, 8][..].into()), &[a]).unwrap()
    });
    assert_eq!(g.len(), 2);
}

#[test]
fn reshape_rules() {
    check(DType::F32, "reshape_same_shape", true, |g, x| g.add(Op::Reshape([8][..].into()), &[x]).unwrap());
    let g = check(DType::F32, "reshape_reshape", true, |g, x| {
        let a = g.add(Op::Reshape([2, 4][..].into()), &[x]).unwrap();
        g.add(Op::Reshape([4, 2][..].into()), &[a]).unwrap()
    });
    assert_eq!(g.len(), 2);
    let g = check(DType::I64, "reshape_reshape", true, |g, x| {
        let a = g.add(Op::Reshape([2, 4][..].into()), &[x]).unwrap();
        g.add(Op::Reshape([8][..].into()), &[a]).unwrap()
    });
    assert_eq!(g.len(), 1);
}

#[test]
fn transpose_rules() {
    let g = check(DType::F32, "transpose_transpose", true, |g, x| {
        let r = g.add(Op::Reshape([2, 2, 2][..].into()), &[x]).unwrap();
        let a = g.add(Op::Transpose(vec![1, 2, 0]), &[r]).unwrap();
        g.add(Op::Transpose(vec![2, 0, 1]), &[a]).unwrap()
    });
    assert_eq!(g.len(), 2, "the two transposes cancel; the reshape is left:\n{}", g.to_text());
    let g = check(DType::F32, "transpose_transpose", true, |g, x| {
        let r = g.add(Op::Reshape([1, 2, 4][..].into()), &[x]).unwrap();
        let a = g.add(Op::Transpose(vec![1, 2, 0]), &[r]).unwrap();
        g.add(Op::Transpose(vec![1, 2, 0]), &[a]).unwrap()
    });
    assert_eq!(g.len(), 3, "one composed transpose:\n{}", g.to_text());
    check(DType::F32, "transpose_identity", true, |g, x| g.add(Op::Transpose(vec![0]), &[x]).unwrap());
}
