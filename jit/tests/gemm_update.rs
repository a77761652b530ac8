//! Products added into a Variable's update (`executor/gemm_update.rs`): which update kernels
//! the plan replaces, and that the result matches the interpreter, with the Variable handed
//! over (written in place) or not.

mod executor_support;

use executor_support::*;
use kiln_ir::{Array, BinaryOp, DType, Graph, NodeId, Op, TensorType};
use kiln_jit::{Executable, Outcome};

const M: usize = 96;
const K: usize = 40;
const N: usize = 72;

/// An update's body from the Variable's value `w` and the product `p`.
type Body = fn(&mut Graph, NodeId, NodeId) -> NodeId;

/// The constant 0.25 of `w`'s type in an update's body.
fn quarter(b: &mut Graph, w: NodeId) -> NodeId {
    let dtype = b.node(w).ty.dtype;
    b.add_const(Array::scalar_f64(dtype, 0.25))
}

/// The update forms the plan recognizes, and the `beta` each adds the product with.
const FORMS: [(&str, Body, f64); 4] = [
    (
        "w - c·p",
        |b, w, p| {
            let c = quarter(b, w);
            let t = bin(b, BinaryOp::Mul, p, c);
            bin(b, BinaryOp::Sub, w, t)
        },
        -0.25,
    ),
    (
        "c·p + w",
        |b, w, p| {
            let c = quarter(b, w);
            let t = bin(b, BinaryOp::Mul, c, p);
            bin(b, BinaryOp::Add, t, w)
        },
        0.25,
    ),
    ("w + p", |b, w, p| bin(b, BinaryOp::Add, w, p), 1.0),
    ("w - p", |b, w, p| bin(b, BinaryOp::Sub, w, p), -1.0),
];

/// `w <- body(w, x @ dz)` for a Variable `w: [M, N]` and inputs `x: [M, K]`,
/// `dz: [K, N]` of `dtype`; returns the graph and the update's node.
fn step(dtype: DType, body: Body) -> (Graph, NodeId) {
    let mut g = Graph::new("update");
    let x = g.add_input(TensorType::new(dtype, &[M, K]));
    let dz = g.add_input(TensorType::new(dtype, &[K, N]));
    let v = g.declare_var("w", TensorType::new(dtype, &[M, N]));
    let w = g.add_read_var(v).unwrap();
    let p = g.add(Op::MatMul, &[x, dz]).unwrap();
    let new = fused(&mut g, &[w, p], |b, i| body(b, i[0], i[1]));
    let write = g.add(Op::AssignVar(v), &[new]).unwrap();
    g.add_order(w, write);
    (g, new)
}

fn arrays(dtype: DType) -> [Array; 3] {
    let a = |n: usize, seed: u64, shape: &[usize]| {
        let v: Vec<f64> = data(n, seed).iter().map(|&f| f as f64).collect();
        let f = Array::from_vec(v, shape).unwrap();
        kiln_ir::interp::eval(&Op::Cast(dtype), &[&f], &TensorType::new(dtype, shape)).unwrap()
    };
    [a(M * K, 1, &[M, K]), a(K * N, 2, &[K, N]), a(M * N, 3, &[M, N])]
}

/// Each form, in f32 and f64, handed over and not: the product is added into the update
/// (the plan says so), the new value matches the interpreter's within an f32 or f64
/// rounding of each element, and a Variable handed over keeps its buffer.
#[test]
fn a_product_added_into_an_update_matches_the_interpreter() {
    for (form, body, beta) in FORMS {
        for dtype in [DType::F32, DType::F64] {
            let (g, _) = step(dtype, body);
            let exe = Executable::new(g.clone()).unwrap();
            let text = exe.schedule_text();
            assert!(text.contains(&format!("+ {beta}·product")), "{form} {dtype}:\n{text}");
            assert_eq!(exe.updates_in_place(), &[0], "{form} {dtype}:\n{text}");
            let [x, dz, w] = arrays(dtype);
            let want = reference::run(&g, &[x.clone(), dz.clone()], std::slice::from_ref(&w)).unwrap();
            let eps = if dtype == DType::F32 { f32::EPSILON as f64 } else { f64::EPSILON };
            let close = |got: &Array| {
                let want = &want.writes[0].1;
                (0..want.len())
                    .all(|k| (got.get_f64(k) - want.get_f64(k)).abs() <= 8.0 * eps * want.get_f64(k).abs().max(1.0))
            };
            // Not handed over: written into a fresh buffer; the Variable's array is untouched.
            let out = exe.run(&[x.clone(), dz.clone()], std::slice::from_ref(&w)).unwrap();
            assert!(close(&out.writes[0].1), "{form} {dtype}, fresh");
            assert!(w.bits_eq(&arrays(dtype)[2]));
            // Handed over: written over the Variable's own buffer.
            let mut w = w;
            let before = w.data().as_bytes().as_ptr();
            let mut out = Outcome { outputs: Vec::new(), writes: Vec::new() };
            exe.run_updating(&[&x, &dz], &mut [&mut w], &mut out).unwrap();
            assert_eq!(out.writes[0].1.data().as_bytes().as_ptr(), before, "{form} {dtype}");
            assert!(close(&out.writes[0].1), "{form} {dtype}, in place");
        }
    }
}

/// A product with another reader, an update whose other operand is broadcast, and an
/// update that is not `acc ± c·p` stay a product and a kernel.
#[test]
fn other_products_and_kernels_are_left_alone() {
    // The product is also an output.
    let (mut g, new) = step(DType::F32, FORMS[0].1);
    let p = g.args(new)[1];
    g.set_outputs(vec![p]);
    // A broadcast operand: `b - c·p` for a bias-shaped `b`.
    let mut h = Graph::new("broadcast");
    let x = h.add_input(TensorType::new(DType::F32, &[M, K]));
    let dz = h.add_input(TensorType::new(DType::F32, &[K, N]));
    let b = h.add_input(TensorType::new(DType::F32, &[N]));
    let v = h.declare_var("w", TensorType::new(DType::F32, &[M, N]));
    let q = h.add(Op::MatMul, &[x, dz]).unwrap();
    let new = fused(&mut h, &[b, q], |k, i| bin(k, BinaryOp::Sub, i[0], i[1]));
    h.add(Op::AssignVar(v), &[new]).unwrap();
    // Not linear in the product: `w - p·p`.
    let (sq, _) = step(DType::F32, |b, w, p| {
        let t = bin(b, BinaryOp::Mul, p, p);
        bin(b, BinaryOp::Sub, w, t)
    });
    for g in [g, h, sq] {
        let text = Executable::new(g).unwrap().schedule_text();
        assert!(!text.contains("·product") && text.contains("kernel"), "{text}");
    }
}

/// An update whose Variable's old value is read after the product (here, returned) is
/// still added into the product, into a fresh buffer: the old value survives.
#[test]
fn an_old_value_read_after_the_product_survives() {
    let (mut g, new) = step(DType::F32, FORMS[0].1);
    let w = g.args(new)[0];
    let doubled = fused(&mut g, &[w], |b, i| bin(b, BinaryOp::Add, i[0], i[0]));
    g.set_outputs(vec![doubled]);
    let exe = Executable::new(g.clone()).unwrap();
    let text = exe.schedule_text();
    assert!(text.contains("·product"), "{text}");
    let [x, dz, mut w] = arrays(DType::F32);
    let want = reference::run(&g, &[x.clone(), dz.clone()], std::slice::from_ref(&w)).unwrap();
    let mut out = Outcome { outputs: Vec::new(), writes: Vec::new() };
    exe.run_updating(&[&x, &dz], &mut [&mut w], &mut out).unwrap();
    assert!(out.outputs[0].bits_eq(&want.outputs[0]), "the old value doubled");
    assert_close(
        &Outcome { outputs: vec![out.writes[0].1.clone()], writes: vec![] },
        &Outcome { outputs: vec![want.writes[0].1.clone()], writes: vec![] },
        1e-6,
    );
}

/// A step that can fail after the product keeps the update out of the Variable's buffer, and
/// a failed call leaves the Variable as it was.
#[test]
fn a_failed_call_after_the_product_keeps_the_variable() {
    let (mut g, new) = step(DType::F32, FORMS[0].1);
    let index = g.add_input(TensorType::new(DType::I64, &[]));
    let dz = g.inputs()[1];
    let picked = g.add(Op::Gather { axis: 0 }, &[dz, index]).unwrap();
    g.add_order(new, picked);
    g.set_outputs(vec![picked]);
    let exe = Executable::new(g).unwrap();
    let text = exe.schedule_text();
    assert!(text.find("·product") < text.find("library") && exe.updates_in_place().is_empty(), "{text}");
    let [x, dz, mut w] = arrays(DType::F32);
    let mut out = Outcome { outputs: Vec::new(), writes: Vec::new() };
    assert!(exe.run_updating(&[&x, &dz, &Array::scalar(K as i64)], &mut [&mut w], &mut out).is_err());
    assert!(w.bits_eq(&arrays(DType::F32)[2]));
}
