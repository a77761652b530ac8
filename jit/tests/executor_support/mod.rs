//! Graph builders and comparisons shared by the executor tests.
#![allow(dead_code)]

use std::sync::Arc;

use kiln_ir::{Array, BinaryOp, DType, Graph, Kernel, NodeId, Op, ReduceOp, TensorType, UnaryOp};

pub use kiln_jit::executor::reference;

pub fn f32s(v: &[f32], shape: &[usize]) -> Array {
    Array::from_vec(v.to_vec(), shape).unwrap()
}

/// Deterministic pseudo-random f32 values in [-2, 2).
pub fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
        })
        .collect()
}

/// A fused kernel node computing `f(inputs)` built by `body` on a fresh body graph.
pub fn fused(g: &mut Graph, args: &[NodeId], body: impl FnOnce(&mut Graph, &[NodeId]) -> NodeId) -> NodeId {
    let mut b = Graph::new("kernel");
    let ins: Vec<NodeId> = args.iter().map(|&a| b.add_input(g.node(a).ty.clone())).collect();
    let out = body(&mut b, &ins);
    b.set_outputs(vec![out]);
    g.add(Op::Fused(Arc::new(Kernel { body: b })), args).unwrap()
}

pub fn bin(g: &mut Graph, op: BinaryOp, a: NodeId, b: NodeId) -> NodeId {
    g.add(Op::Binary(op), &[a, b]).unwrap()
}

pub fn un(g: &mut Graph, op: UnaryOp, a: NodeId) -> NodeId {
    g.add(Op::Unary(op), &[a]).unwrap()
}

pub fn reduce(g: &mut Graph, op: ReduceOp, a: NodeId, axes: &[usize], keepdims: bool) -> NodeId {
    g.add(Op::Reduce { op, axes: axes.to_vec(), keepdims }, &[a]).unwrap()
}

pub fn input(g: &mut Graph, shape: &[usize]) -> NodeId {
    g.add_input(TensorType::new(DType::F32, shape))
}

/// Bitwise equality of two outcomes (outputs and writes).
pub fn assert_same(a: &reference::Outcome, b: &reference::Outcome) {
    assert_eq!(a.outputs.len(), b.outputs.len(), "number of outputs");
    for (i, (x, y)) in a.outputs.iter().zip(&b.outputs).enumerate() {
        assert!(x.bits_eq(y), "output {i}: {x:?} vs {y:?}");
    }
    assert_eq!(a.writes.len(), b.writes.len(), "number of writes");
    for ((va, x), (vb, y)) in a.writes.iter().zip(&b.writes) {
        assert_eq!(va, vb);
        assert!(x.bits_eq(y), "write @{va}: {x:?} vs {y:?}");
    }
}

/// Outputs equal within a relative tolerance `rel` (shapes and dtypes exactly).
pub fn assert_close(a: &reference::Outcome, b: &reference::Outcome, rel: f64) {
    assert_eq!(a.outputs.len(), b.outputs.len());
    for (i, (x, y)) in a.outputs.iter().zip(&b.outputs).enumerate() {
        assert_eq!((x.dtype(), x.shape()), (y.dtype(), y.shape()), "output {i}");
        for k in 0..x.len() {
            let (p, q) = (x.get_f64(k), y.get_f64(k));
            assert!((p - q).abs() <= rel * p.abs().max(q.abs()).max(1.0), "output {i}[{k}]: {p} vs {q}");
        }
    }
}
