//! `interp::run`: bindings are checked, variables are read and written in order on a local
//! copy, and a failing run reports an error instead of partial writes.

use kiln_ir::{interp, Array, BinaryOp, DType, Error, Graph, Op, ReduceOp, TensorType, UnaryOp};

fn scalar_f32() -> TensorType {
    TensorType::new(DType::F32, &[])
}

/// `v = v + x; y = v * 2; v = y; z = read v` with explicit order edges.
fn read_after_write() -> (Graph, [kiln_ir::NodeId; 3]) {
    let mut g = Graph::new("raw");
    let v = g.declare_var("v", scalar_f32());
    let x = g.add_input(scalar_f32());
    let r0 = g.add_read_var(v).unwrap();
    let s = g.add(Op::Binary(BinaryOp::Add), &[r0, x]).unwrap();
    let w0 = g.add(Op::AssignVar(v), &[s]).unwrap();
    let r1 = g.add_read_var(v).unwrap();
    g.add_order(r0, w0);
    g.add_order(w0, r1);
    let two = g.add_const(Array::scalar(2.0f32));
    let y = g.add(Op::Binary(BinaryOp::Mul), &[r1, two]).unwrap();
    let w1 = g.add(Op::AssignVar(v), &[y]).unwrap();
    g.add_order(r1, w1);
    let r2 = g.add_read_var(v).unwrap();
    g.add_order(w1, r2);
    g.set_outputs(vec![r0, r1, r2]);
    (g, [r0, r1, r2])
}

#[test]
fn reads_see_earlier_writes_and_writes_hold_final_values() {
    let (g, _) = read_after_write();
    let var = Array::scalar(1.0f32);
    let out = interp::run(&g, &[Array::scalar(2.0f32)], std::slice::from_ref(&var)).unwrap();
    let vals: Vec<f32> = out.outputs.iter().map(|a| a.to_vec::<f32>().unwrap()[0]).collect();
    assert_eq!(vals, vec![1.0, 3.0, 6.0]);
    assert_eq!(out.writes.len(), 1);
    assert_eq!(out.writes[0].0, 0);
    assert_eq!(out.writes[0].1.to_vec::<f32>().unwrap(), vec![6.0]);
    // The caller's value is untouched.
    assert_eq!(var.to_vec::<f32>().unwrap(), vec![1.0]);
}

#[test]
fn writes_are_sorted_and_only_for_written_vars() {
    let mut g = Graph::new("two");
    let t = TensorType::new(DType::I64, &[2]);
    let a = g.declare_var("a", t.clone());
    let b = g.declare_var("b", t.clone());
    let c = g.declare_var("c", t.clone());
    let rc = g.add_read_var(c).unwrap();
    let wc = g.add(Op::AssignVar(c), &[rc]).unwrap();
    let ra = g.add_read_var(a).unwrap();
    let neg = g.add(Op::Unary(UnaryOp::Neg), &[ra]).unwrap();
    let wa = g.add(Op::AssignVar(a), &[neg]).unwrap();
    g.add_order(rc, wc);
    g.add_order(ra, wa);
    g.set_outputs(vec![]);
    let vals = [
        Array::from_vec(vec![1i64, 2], &[2]).unwrap(),
        Array::from_vec(vec![3i64, 4], &[2]).unwrap(),
        Array::from_vec(vec![5i64, 6], &[2]).unwrap(),
    ];
    let out = interp::run(&g, &[], &vals).unwrap();
    let ids: Vec<u32> = out.writes.iter().map(|w| w.0).collect();
    assert_eq!(ids, vec![a, c]);
    assert_eq!(out.writes[0].1.to_vec::<i64>().unwrap(), vec![-1, -2]);
    assert_eq!(out.writes[1].1.to_vec::<i64>().unwrap(), vec![5, 6]);
    let _ = b;
}

#[test]
fn a_failing_run_after_an_assign_is_an_error() {
    let mut g = Graph::new("fails");
    let t = TensorType::new(DType::I32, &[3]);
    let v = g.declare_var("v", t.clone());
    let x = g.add_input(t.clone());
    let w = g.add(Op::AssignVar(v), &[x]).unwrap();
    let r = g.add_read_var(v).unwrap();
    g.add_order(w, r);
    let q = g.add(Op::Binary(BinaryOp::Div), &[x, r]).unwrap();
    g.set_outputs(vec![q]);
    let x = Array::from_vec(vec![4i32, 0, 6], &[3]).unwrap();
    let err = interp::run(&g, std::slice::from_ref(&x), &[Array::zeros(&[3], DType::I32)]).unwrap_err();
    assert!(matches!(err, Error::Runtime { op: "div", .. }), "{err}");
    let ok = Array::from_vec(vec![4i32, 2, 6], &[3]).unwrap();
    let out = interp::run(&g, std::slice::from_ref(&ok), &[Array::zeros(&[3], DType::I32)]).unwrap();
    assert_eq!(out.outputs[0].to_vec::<i32>().unwrap(), vec![1, 1, 1]);
}

#[test]
fn bindings_are_checked() {
    let (g, _) = read_after_write();
    let var = [Array::scalar(1.0f32)];
    let e = interp::run(&g, &[], &var).unwrap_err();
    assert!(e.to_string().contains("expects 1 input(s), got 0"), "{e}");
    let e = interp::run(&g, &[Array::scalar(1.0f64)], &var).unwrap_err();
    assert!(e.to_string().contains("input 0 must be f32[], got f64[]"), "{e}");
    let e = interp::run(&g, &[Array::zeros(&[2], DType::F32)], &var).unwrap_err();
    assert!(e.to_string().contains("input 0 must be f32[], got f32[2]"), "{e}");
    let e = interp::run(&g, &[Array::scalar(1.0f32)], &[]).unwrap_err();
    assert!(e.to_string().contains("declares 1 variable(s), got 0"), "{e}");
    let e = interp::run(&g, &[Array::scalar(1.0f32)], &[Array::scalar(1i32)]).unwrap_err();
    assert!(matches!(&e, Error::Variable { name, .. } if name == "v"), "{e}");
}

#[test]
fn fused_kernels_run_their_body() {
    let mut body = Graph::new("kernel");
    let a = body.add_input(TensorType::new(DType::F32, &[2, 3]));
    let b = body.add_input(TensorType::new(DType::F32, &[3]));
    let s = body.add(Op::Binary(BinaryOp::Mul), &[a, b]).unwrap();
    let t = body.add(Op::Unary(UnaryOp::Exp), &[s]).unwrap();
    let r = body.add(Op::Reduce { op: ReduceOp::Sum, axes: vec![1], keepdims: false }, &[t]).unwrap();
    body.set_outputs(vec![r]);
    let op = Op::Fused(std::sync::Arc::new(kiln_ir::Kernel { body }));
    let x = Array::from_vec(vec![0.0f32, 1.0, 2.0, 3.0, 4.0, 5.0], &[2, 3]).unwrap();
    let y = Array::from_vec(vec![1.0f32, 0.5, 0.0], &[3]).unwrap();
    let ty = TensorType::new(DType::F32, &[2]);
    let got = interp::eval(&op, &[&x, &y], &ty).unwrap().to_vec::<f32>().unwrap();
    let want = [1.0 + 0.5f64.exp() + 1.0, 3f64.exp() + 2f64.exp() + 1.0];
    for (g, w) in got.iter().zip(want) {
        assert!((*g as f64 - w).abs() <= 1e-6 * w, "{g} vs {w}");
    }
    // Wrong operand types are an error, not a panic.
    assert!(interp::eval(&op, &[&y, &x], &ty).is_err());
}

#[test]
fn source_ops_need_a_graph() {
    let x = Array::scalar(1.0f32);
    for op in [Op::Input(0), Op::ReadVar(0), Op::AssignVar(0)] {
        assert!(interp::eval(&op, &[&x], &scalar_f32()).is_err());
    }
}
