//! CSE and dead-node removal: what merges, what never merges, what stays alive.

use kiln_ir::{BinaryOp, DType, Distribution, Graph, Op, TensorType, UnaryOp};
use kiln_passes::{Cse, Dce, Pass};

fn f32s(shape: &[usize]) -> TensorType {
    TensorType::new(DType::F32, shape)
}

#[test]
fn cse_merges_chains_and_rewires_outputs() {
    let mut g = Graph::new("t");
    let x = g.add_input(f32s(&[4]));
    let a1 = g.add(Op::Unary(UnaryOp::Exp), &[x]).unwrap();
    let a2 = g.add(Op::Unary(UnaryOp::Exp), &[x]).unwrap();
    let b1 = g.add(Op::Binary(BinaryOp::Add), &[a1, x]).unwrap();
    let b2 = g.add(Op::Binary(BinaryOp::Add), &[a2, x]).unwrap();
    // Operand order matters: add(x, a) is not merged with add(a, x).
    let b3 = g.add(Op::Binary(BinaryOp::Add), &[x, a2]).unwrap();
    g.set_outputs(vec![b1, b2, b3]);
    let c = Cse.run(&mut g).unwrap();
    g.verify().unwrap();
    assert_eq!(c.get("nodes_merged"), 2);
    assert_eq!(g.outputs()[0], g.outputs()[1]);
    assert_ne!(g.outputs()[0], g.outputs()[2]);
    assert_eq!(g.len(), 4);
}

#[test]
fn cse_merges_equal_constants_but_not_different_bits() {
    let mut g = Graph::new("t");
    let a = g.add_const(kiln_ir::Array::scalar(0.0f32));
    let b = g.add_const(kiln_ir::Array::scalar(0.0f32));
    let c = g.add_const(kiln_ir::Array::scalar(-0.0f32));
    g.set_outputs(vec![a, b, c]);
    Cse.run(&mut g).unwrap();
    assert_eq!(g.len(), 2, "+0.0 merged, -0.0 kept apart");
}

#[test]
fn cse_never_merges_random_ops() {
    let mut g = Graph::new("t");
    let r1 = g.add_random(Distribution::Uniform, 7, f32s(&[3]), None).unwrap();
    let r2 = g.add_random(Distribution::Uniform, 7, f32s(&[3]), None).unwrap();
    let s = g.add(Op::Binary(BinaryOp::Sub), &[r1, r2]).unwrap();
    g.set_outputs(vec![s]);
    let c = Cse.run(&mut g).unwrap();
    assert!(!c.changed);
    assert_eq!(g.len(), 3);
}

#[test]
fn cse_never_merges_inputs_or_writes() {
    let mut g = Graph::new("t");
    let x = g.add_input(f32s(&[3]));
    let y = g.add_input(f32s(&[3]));
    let v = g.declare_var("v", f32s(&[3]));
    let w1 = g.add(Op::AssignVar(v), &[x]).unwrap();
    let w2 = g.add(Op::AssignVar(v), &[x]).unwrap();
    g.add_order(w1, w2);
    g.set_outputs(vec![x, y]);
    assert!(!Cse.run(&mut g).unwrap().changed);
    assert_eq!(g.len(), 4);
}

#[test]
fn cse_merges_reads_only_without_a_write_between() {
    let mut g = Graph::new("t");
    let x = g.add_input(f32s(&[3]));
    let v = g.declare_var("v", f32s(&[3]));
    let r1 = g.add_read_var(v).unwrap();
    let r2 = g.add_read_var(v).unwrap();
    let w = g.add(Op::AssignVar(v), &[x]).unwrap();
    g.add_order(r1, w);
    g.add_order(r2, w);
    let r3 = g.add_read_var(v).unwrap();
    g.add_order(w, r3);
    let s1 = g.add(Op::Binary(BinaryOp::Add), &[r1, r2]).unwrap();
    let s2 = g.add(Op::Binary(BinaryOp::Add), &[s1, r3]).unwrap();
    g.set_outputs(vec![s2]);
    let c = Cse.run(&mut g).unwrap();
    g.verify().unwrap();
    assert_eq!(c.get("nodes_merged"), 1, "r1 and r2 merge; r3 reads after the write");
    assert!(g.contains(r1) && !g.contains(r2) && g.contains(r3));
    assert_eq!(g.order_succs(r1), vec![w]);
    assert_eq!(g.args(s1).as_slice(), &[r1, r1]);
}

#[test]
fn dce_removes_unused_and_keeps_side_effects() {
    let mut g = Graph::new("t");
    let x = g.add_input(f32s(&[3]));
    let unused_input = g.add_input(f32s(&[3]));
    let v = g.declare_var("v", f32s(&[3]));
    let e = g.add(Op::Unary(UnaryOp::Exp), &[x]).unwrap();
    let w = g.add(Op::AssignVar(v), &[e]).unwrap(); // nothing uses it: still live
    let dead = g.add(Op::Unary(UnaryOp::Tanh), &[x]).unwrap();
    let dead2 = g.add(Op::Binary(BinaryOp::Mul), &[dead, dead]).unwrap();
    let out = g.add(Op::Unary(UnaryOp::Neg), &[x]).unwrap();
    g.set_outputs(vec![out]);
    let c = Dce.run(&mut g).unwrap();
    g.verify().unwrap();
    assert_eq!(c.get("nodes_removed"), 2);
    assert!(g.contains(w) && g.contains(e) && g.contains(unused_input));
    assert!(!g.contains(dead) && !g.contains(dead2));
    assert!(!Dce.run(&mut g).unwrap().changed, "idempotent");
}

#[test]
fn dce_removes_an_unused_read_but_keeps_write_order() {
    let mut g = Graph::new("t");
    let x = g.add_input(f32s(&[3]));
    let y = g.add_input(f32s(&[3]));
    let v = g.declare_var("v", f32s(&[3]));
    let w1 = g.add(Op::AssignVar(v), &[x]).unwrap();
    let r = g.add_read_var(v).unwrap();
    let w2 = g.add(Op::AssignVar(v), &[y]).unwrap();
    g.add_order(w1, r);
    g.add_order(r, w2);
    g.set_outputs(vec![]);
    Dce.run(&mut g).unwrap();
    g.verify().unwrap();
    assert!(!g.contains(r));
    assert_eq!(g.order_succs(w1), vec![w2], "w1 still runs before w2");
}
