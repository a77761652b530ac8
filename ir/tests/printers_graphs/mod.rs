//! Hand-built graphs shared by the printer, parser and verifier tests.
#![allow(dead_code)]

use std::sync::Arc;

use kiln_ir::{
    ArgOp, Array, BinaryOp, DType, Distribution, Graph, Kernel, NodeId, Op, ReduceOp, SliceDim, TensorType, UnaryOp,
};

pub fn t(d: DType, s: &[usize]) -> TensorType {
    TensorType::new(d, s)
}

/// A kernel `sum(tanh(a * b), axis 1)` over `a: f32[2,3]`, `b: f32[3]`.
pub fn reduce_kernel() -> Kernel {
    let mut k = Graph::new("k");
    let a = k.add_input(t(DType::F32, &[2, 3]));
    let b = k.add_input(t(DType::F32, &[3]));
    let m = k.add(Op::Binary(BinaryOp::Mul), &[a, b]).unwrap();
    let h = k.add(Op::Unary(UnaryOp::Tanh), &[m]).unwrap();
    let s = k.add(Op::Reduce { op: ReduceOp::Sum, axes: vec![1], keepdims: false }, &[h]).unwrap();
    k.set_outputs(vec![s]);
    Kernel { body: k }
}

/// An elementwise kernel with a constant, select, cast and broadcast over `a: f32[2,3]`, `c: bool[2,3]`.
pub fn elementwise_kernel() -> Kernel {
    let mut k = Graph::new("ew kernel");
    let a = k.add_input(t(DType::F32, &[2, 3]));
    let c = k.add_input(t(DType::Bool, &[2, 3]));
    let two = k.add_const(Array::scalar(2.0f32));
    let b2 = k.add(Op::BroadcastTo([2, 3].into_iter().collect()), &[two]).unwrap();
    let s = k.add(Op::Select, &[c, a, b2]).unwrap();
    let d = k.add(Op::Cast(DType::F64), &[s]).unwrap();
    k.set_outputs(vec![d]);
    Kernel { body: k }
}

/// One node of every `Op` variant (every unary, binary and reduction kind too), variables
/// with reads, writes and order edges, zero-size shapes, special floats and big constants.
pub fn kitchen_sink() -> Graph {
    let mut g = Graph::new("kitchen_sink");
    let x = g.add_input(t(DType::F32, &[2, 3]));
    let y = g.add_input(t(DType::F32, &[3]));
    let idx = g.add_input(t(DType::I32, &[2]));
    let b = g.add_input(t(DType::Bool, &[2, 3]));
    let ctr = g.add_input(t(DType::I64, &[]));
    let z = g.add_input(t(DType::F32, &[0, 3]));
    let kernel_var = g.declare_var("dense/kernel", t(DType::F32, &[3, 4]));
    let step_var = g.declare_var("step \"count\"\n", t(DType::I64, &[]));
    let mut outs: Vec<NodeId> = Vec::new();

    // variables: read, write, read-after-write
    let r = g.add_read_var(kernel_var).unwrap();
    let r2 = g.add(Op::Binary(BinaryOp::Add), &[r, r]).unwrap();
    let w = g.add(Op::AssignVar(kernel_var), &[r2]).unwrap();
    let r3 = g.add_read_var(kernel_var).unwrap();
    g.add_order(w, r3);
    let s1 = g.add_read_var(step_var).unwrap();
    let one = g.add_const(Array::scalar(1i64));
    let s2 = g.add(Op::Binary(BinaryOp::Add), &[s1, one]).unwrap();
    let ws = g.add(Op::AssignVar(step_var), &[s2]).unwrap();
    outs.extend([w, ws]);
    let mm = g.add(Op::MatMul, &[x, r3]).unwrap();
    outs.push(mm);

    for u in UnaryOp::ALL {
        let a = if u == UnaryOp::LogicalNot { b } else { x };
        outs.push(g.add(Op::Unary(u), &[a]).unwrap());
    }
    for op in BinaryOp::ALL {
        let (p, q) = if matches!(op, BinaryOp::LogicalAnd | BinaryOp::LogicalOr) { (b, b) } else { (x, y) };
        outs.push(g.add(Op::Binary(op), &[p, q]).unwrap());
    }
    outs.push(g.add(Op::Select, &[b, x, y]).unwrap());
    outs.push(g.add(Op::Cast(DType::F64), &[x]).unwrap());
    outs.push(g.add(Op::BroadcastTo([4, 2, 3].into_iter().collect()), &[y]).unwrap());
    outs.push(g.add(Op::Reshape([3, 2].into_iter().collect()), &[x]).unwrap());
    outs.push(g.add(Op::Transpose(vec![1, 0]), &[x]).unwrap());
    let dims = vec![SliceDim { start: 0, step: 1, len: 2 }, SliceDim { start: 2, step: -1, len: 2 }];
    let sl = g.add(Op::Slice(dims.clone()), &[x]).unwrap();
    outs.push(g.add(Op::Unslice { dims, shape: [2, 3].into_iter().collect() }, &[sl]).unwrap());
    outs.push(g.add(Op::Concat { axis: 0 }, &[x, x, z]).unwrap());
    let ga = g.add(Op::Gather { axis: 1 }, &[x, idx]).unwrap();
    outs.push(g.add(Op::ScatterAdd { axis: 1, shape: [2, 3].into_iter().collect() }, &[ga, idx]).unwrap());
    for (i, r) in ReduceOp::ALL.into_iter().enumerate() {
        let axes = if i % 2 == 0 { vec![1] } else { vec![0, 1] };
        outs.push(g.add(Op::Reduce { op: r, axes, keepdims: i % 2 == 1 }, &[x]).unwrap());
    }
    outs.push(g.add(Op::Reduce { op: ReduceOp::Sum, axes: vec![0], keepdims: false }, &[z]).unwrap());
    outs.push(g.add(Op::Reduce { op: ReduceOp::Max, axes: vec![], keepdims: false }, &[x]).unwrap());
    outs.push(g.add(Op::ArgReduce { op: ArgOp::ArgMax, axis: 1, keepdims: false }, &[x]).unwrap());
    outs.push(g.add(Op::ArgReduce { op: ArgOp::ArgMin, axis: 0, keepdims: true }, &[x]).unwrap());
    outs.push(g.add_random(Distribution::Uniform, 42, t(DType::F32, &[4]), None).unwrap());
    outs.push(g.add_random(Distribution::Normal, u64::MAX, t(DType::F64, &[2, 0]), Some(ctr)).unwrap());

    // constants: special floats, every dtype, scalars, zero-size, big (base64)
    let f32s = vec![
        f32::NAN,
        f32::from_bits(0x7fc0_0001),
        f32::from_bits(0xffc0_0000),
        -0.0,
        0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MIN_POSITIVE,
        1e-45,
        f32::MAX,
        0.1,
        -2.5e-7,
    ];
    outs.push(g.add_const(Array::from_vec(f32s, &[3, 4]).unwrap()));
    let f64s = vec![f64::NAN, f64::from_bits(0x7ff0_0000_0000_0001), -0.0, f64::INFINITY, 0.1, 1e300, 5e-324];
    outs.push(g.add_const(Array::from_vec(f64s, &[7]).unwrap()));
    outs.push(g.add_const(Array::from_vec(vec![i32::MIN, -1, 0, i32::MAX], &[2, 2]).unwrap()));
    outs.push(g.add_const(Array::from_vec(vec![i64::MIN, i64::MAX], &[2]).unwrap()));
    outs.push(g.add_const(Array::from_vec(vec![true, false, true], &[3]).unwrap()));
    outs.push(g.add_const(Array::scalar(-0.0f64)));
    outs.push(g.add_const(Array::zeros(&[0, 3], DType::F32)));
    let big: Vec<f32> = (0..100).map(|i| (i as f32 * 0.37).sin()).collect();
    outs.push(g.add_const(Array::from_vec(big, &[10, 10]).unwrap()));
    outs.push(g.add_const(Array::from_vec((0..70i64).map(|i| i * 1_000_000_007).collect(), &[70]).unwrap()));
    outs.push(g.add_const(Array::from_vec((0..65).map(|i| i % 3 == 0).collect::<Vec<bool>>(), &[65]).unwrap()));

    // fused kernels
    outs.push(g.add(Op::Fused(Arc::new(reduce_kernel())), &[x, y]).unwrap());
    outs.push(g.add(Op::Fused(Arc::new(elementwise_kernel())), &[x, b]).unwrap());

    g.set_outputs(outs);
    g
}

/// The small graph of `docs/DEBUGGING.md`'s first example.
pub fn small() -> Graph {
    let mut g = Graph::new("small");
    let x = g.add_input(t(DType::F32, &[2, 3]));
    let y = g.add_input(t(DType::F32, &[3]));
    let v = g.declare_var("dense/kernel", t(DType::F32, &[3, 4]));
    let r = g.add_read_var(v).unwrap();
    let s = g.add(Op::Binary(BinaryOp::Add), &[x, y]).unwrap();
    let red = g.add(Op::Reduce { op: ReduceOp::Sum, axes: vec![1], keepdims: false }, &[s]).unwrap();
    let c = g.add_const(Array::from_vec(vec![1.0f32, 2.5], &[2]).unwrap());
    let m = g.add(Op::Binary(BinaryOp::Mul), &[red, c]).unwrap();
    let w = g.add(Op::AssignVar(v), &[r]).unwrap();
    g.add_order(r, w);
    g.set_outputs(vec![m, w]);
    g
}
