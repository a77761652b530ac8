//! The verifier accepts well-formed graphs and rejects each kind of corruption, naming
//! the node as the text form numbers it.

mod printers_graphs;

use std::sync::Arc;

use kiln_ir::{Array, BinaryOp, DType, Distribution, Graph, Kernel, Op, ReduceOp, UnaryOp};
use printers_graphs::{elementwise_kernel, kitchen_sink, reduce_kernel, small, t};

/// The verifier's message, which must start with `prefix`.
fn fails(g: &Graph, prefix: &str, contains: &str) {
    let msg = match g.verify() {
        Err(kiln_ir::Error::Graph(m)) => m,
        other => panic!("expected Error::Graph, got {other:?}\n{}", g.to_text()),
    };
    assert!(msg.starts_with(prefix), "message `{msg}` does not start with `{prefix}`");
    assert!(msg.contains(contains), "message `{msg}` does not mention `{contains}`");
}

fn base() -> (Graph, kiln_ir::NodeId, kiln_ir::NodeId) {
    let mut g = Graph::new("g");
    let x = g.add_input(t(DType::F32, &[2, 3]));
    let y = g.add_input(t(DType::F32, &[3]));
    (g, x, y)
}

#[test]
fn well_formed_graphs_verify() {
    kitchen_sink().verify().unwrap();
    small().verify().unwrap();
    Graph::new("empty").verify().unwrap();
}

#[test]
fn stored_type_must_match_the_rule() {
    let (mut g, x, y) = base();
    g.add_unchecked(Op::Binary(BinaryOp::Add), t(DType::F32, &[3]), &[x, y]);
    fails(&g, "%2 = add: ", "stored type f32[3] but the operands give f32[2,3]");
}

#[test]
fn operand_types_must_satisfy_the_rule() {
    let (mut g, x, _) = base();
    let i = g.add_const(Array::from_vec(vec![1i32, 2, 3], &[3]).unwrap());
    g.add_unchecked(Op::Binary(BinaryOp::Mul), t(DType::F32, &[2, 3]), &[x, i]);
    fails(&g, "%3 = mul: ", "dtype mismatch f32 vs i32");
    let (mut g, x, _) = base();
    g.add_unchecked(Op::Unary(UnaryOp::Neg), t(DType::F32, &[2, 3]), &[x, x]);
    fails(&g, "%2 = neg: ", "expects 1 operand(s), got 2");
}

#[test]
fn operand_positions_must_be_contiguous() {
    let (mut g, x, y) = base();
    let n = g.add(Op::Unary(UnaryOp::Neg), &[x]).unwrap();
    g.set_arg(n, 2, y);
    fails(&g, "%2 = neg: ", "operand positions [0, 2]");
}

#[test]
fn sources_take_no_operands() {
    let (mut g, x, _) = base();
    g.add_unchecked(Op::Const(Array::scalar(1.0f32)), t(DType::F32, &[]), &[x]);
    fails(&g, "%2 = const: ", "a source takes no operands, got 1");
    let (mut g, x, _) = base();
    let v = g.declare_var("v", t(DType::F32, &[2, 3]));
    g.add_unchecked(Op::ReadVar(v), t(DType::F32, &[2, 3]), &[x]);
    fails(&g, "%2 = read_var: ", "a source takes no operands");
}

#[test]
fn input_indices_must_match_positions() {
    let (mut g, _, _) = base();
    g.add_unchecked(Op::Input(1), t(DType::F32, &[3]), &[]);
    fails(&g, "%2 = input: ", "is not input 1");
    let (mut g, x, y) = base();
    g.node_mut(y).op = Op::Input(0);
    fails(&g, "%1 = input: ", "listed as input 1");
    let (mut g, x2, y) = base();
    g.add_order(y, x2);
    fails(&g, "", "an input cannot be ordered after other nodes");
    let _ = x;
}

#[test]
fn variables_must_be_declared_and_typed() {
    let (mut g, x, _) = base();
    g.add_unchecked(Op::ReadVar(3), t(DType::F32, &[2, 3]), &[]);
    fails(&g, "%2 = read_var: ", "variable @3 is not declared (the graph has 0)");
    let (mut g, x2, _) = base();
    let v = g.declare_var("w", t(DType::F32, &[3, 4]));
    g.add_unchecked(Op::ReadVar(v), t(DType::F32, &[2, 3]), &[]);
    fails(&g, "%2 = read_var: ", "differs from variable @0 `w`: f32[3,4]");
    let (mut g, x3, _) = base();
    let v = g.declare_var("w", t(DType::F32, &[3, 4]));
    g.add(Op::AssignVar(v), &[x3]).unwrap();
    fails(&g, "%2 = assign_var: ", "writes f32[2,3] to variable @0 `w`: f32[3,4]");
    let (mut g, _, _) = base();
    g.add_unchecked(Op::AssignVar(7), t(DType::F32, &[2, 3]), &[x]);
    fails(&g, "%2 = assign_var: ", "not declared");
    let _ = x2;
}

#[test]
fn cycles_are_rejected() {
    let (mut g, x, _) = base();
    let a = g.add(Op::Unary(UnaryOp::Neg), &[x]).unwrap();
    let b = g.add(Op::Unary(UnaryOp::Exp), &[a]).unwrap();
    g.add_order(b, a);
    fails(&g, "%", "is on a cycle");
    let (mut g, x, _) = base();
    let a = g.add(Op::Unary(UnaryOp::Neg), &[x]).unwrap();
    g.set_arg(a, 0, a);
    fails(&g, "%", "is on a cycle");
}

#[test]
fn outputs_must_exist() {
    let (mut g, x, _) = base();
    let a = g.add(Op::Unary(UnaryOp::Neg), &[x]).unwrap();
    g.remove(a);
    g.set_outputs(vec![x, a]);
    fails(&g, "graph @g: ", "output 1 is not a node");
}

#[test]
fn random_ops_are_checked() {
    let (mut g, x, _) = base();
    g.add_unchecked(Op::Random { dist: Distribution::Uniform, seed: 1 }, t(DType::I32, &[2]), &[]);
    fails(&g, "%2 = random_uniform: ", "not a float type");
    g = base().0;
    let c = g.add_const(Array::scalar(1i32));
    g.add_unchecked(Op::Random { dist: Distribution::Normal, seed: 1 }, t(DType::F32, &[2]), &[c]);
    fails(&g, "%3 = random_normal: ", "counter operand must be i64[], got i32[]");
    let _ = x;
}

#[test]
fn writes_of_a_variable_must_be_ordered() {
    let (mut g, x, _) = base();
    let v = g.declare_var("v", t(DType::F32, &[2, 3]));
    let w1 = g.add(Op::AssignVar(v), &[x]).unwrap();
    let n = g.add(Op::Unary(UnaryOp::Neg), &[x]).unwrap();
    let w2 = g.add(Op::AssignVar(v), &[n]).unwrap();
    fails(&g, "%4 = assign_var: ", "write of @0 `v` is not ordered against the write %2");
    g.add_order(w1, w2);
    g.verify().unwrap();
    // A path through data edges counts too.
    let (mut g, x, _) = base();
    let v = g.declare_var("v", t(DType::F32, &[2, 3]));
    let w1 = g.add(Op::AssignVar(v), &[x]).unwrap();
    let n = g.add(Op::Unary(UnaryOp::Neg), &[w1]).unwrap();
    g.add(Op::AssignVar(v), &[n]).unwrap();
    g.verify().unwrap();
}

#[test]
fn reads_must_be_ordered_against_writes() {
    let (mut g, x, _) = base();
    let v = g.declare_var("v", t(DType::F32, &[2, 3]));
    let u = g.declare_var("u", t(DType::F32, &[2, 3]));
    let w = g.add(Op::AssignVar(v), &[x]).unwrap();
    let r = g.add_read_var(v).unwrap();
    // A read of another variable needs no order.
    let _ = g.add_read_var(u).unwrap();
    fails(&g, "%3 = read_var: ", "read of @0 `v` is not ordered against the write %2");
    g.add_order(w, r);
    g.verify().unwrap();
}

fn fused(body: Graph) -> Op {
    Op::Fused(Arc::new(Kernel { body }))
}

#[test]
fn fused_kernels_are_checked() {
    // Valid kernels.
    let (mut g, x, y) = base();
    g.add(Op::Fused(Arc::new(reduce_kernel())), &[x, y]).unwrap();
    let b = g.add_input(t(DType::Bool, &[2, 3]));
    g.add(Op::Fused(Arc::new(elementwise_kernel())), &[x, b]).unwrap();
    g.verify().unwrap();

    // Operand types differ from the body's inputs.
    let (mut g, x, y) = base();
    g.add_unchecked(Op::Fused(Arc::new(reduce_kernel())), t(DType::F32, &[2]), &[y, x]);
    fails(&g, "%2 = fused: ", "operand 0 is f32[3] but the kernel expects f32[2,3]");

    // Node type differs from the body's output.
    let (mut g, x, y) = base();
    g.add_unchecked(Op::Fused(Arc::new(reduce_kernel())), t(DType::F32, &[2, 3]), &[x, y]);
    fails(&g, "%2 = fused: ", "stored type f32[2,3] but the operands give f32[2]");

    // An invalid body.
    let mut body = Graph::new("k");
    let a = body.add_input(t(DType::F32, &[2, 3]));
    let m = body.add_unchecked(Op::Unary(UnaryOp::Exp), t(DType::F64, &[2, 3]), &[a]);
    body.set_outputs(vec![m]);
    let (mut g, x, _) = base();
    g.add_unchecked(fused(body), t(DType::F64, &[2, 3]), &[x]);
    fails(&g, "%2 = fused: body: %1 = exp: ", "stored type f64[2,3]");

    // Two outputs.
    let mut body = Graph::new("k");
    let a = body.add_input(t(DType::F32, &[2, 3]));
    let e = body.add(Op::Unary(UnaryOp::Exp), &[a]).unwrap();
    body.set_outputs(vec![e, a]);
    let (mut g, x, _) = base();
    g.add_unchecked(fused(body), t(DType::F32, &[2, 3]), &[x]);
    fails(&g, "%2 = fused: ", "the body has 2 outputs");

    // A non-elementwise op in the body.
    let mut body = Graph::new("k");
    let a = body.add_input(t(DType::F32, &[2, 3]));
    let tr = body.add(Op::Transpose(vec![1, 0]), &[a]).unwrap();
    body.set_outputs(vec![tr]);
    let (mut g, x, _) = base();
    g.add(fused(body), &[x]).unwrap();
    fails(&g, "%2 = fused: ", "body: %1 = transpose is not allowed in a kernel");

    // A reduction that is not the output.
    let mut body = Graph::new("k");
    let a = body.add_input(t(DType::F32, &[2, 3]));
    let s = body.add(Op::Reduce { op: ReduceOp::Sum, axes: vec![1], keepdims: true }, &[a]).unwrap();
    let e = body.add(Op::Unary(UnaryOp::Exp), &[s]).unwrap();
    body.set_outputs(vec![e]);
    let (mut g, x, _) = base();
    g.add(fused(body), &[x]).unwrap();
    fails(&g, "%2 = fused: ", "a reduction must be the body's output");

    // A variable read in a body.
    let mut body = Graph::new("k");
    let v = body.declare_var("v", t(DType::F32, &[2, 3]));
    let r = body.add_read_var(v).unwrap();
    body.set_outputs(vec![r]);
    let (mut g, _, _) = base();
    g.add(fused(body), &[]).unwrap();
    fails(&g, "%2 = fused: ", "read_var is not allowed in a kernel");
}

#[test]
fn a_kernel_body_declaring_variables_is_rejected() {
    // The body only negates its input, but declares a variable: the interpreter cannot
    // run it (no variable to bind) while compiled code would ignore the table.
    let mut body = Graph::new("k");
    body.declare_var("v", t(DType::F32, &[3]));
    let a = body.add_input(t(DType::F32, &[3]));
    let n = body.add(Op::Unary(UnaryOp::Neg), &[a]).unwrap();
    body.set_outputs(vec![n]);
    let (mut g, _, y) = base();
    let k = g.add(fused(body), &[y]).unwrap();
    g.set_outputs(vec![k]);
    fails(&g, "%2 = fused: ", "body: declares 1 variable(s); a kernel has none");
    assert!(Graph::from_text(&g.to_text()).is_err());
    let unverified = Graph::from_text_unverified(&g.to_text()).unwrap();
    assert!(kiln_ir::interp::run(
        &unverified,
        &[Array::zeros(&[2, 3], DType::F32), Array::zeros(&[3], DType::F32)],
        &[]
    )
    .is_err());
}

#[test]
fn rules_refuse_results_whose_size_overflows() {
    let big = |shape: &[usize]| t(DType::F32, shape);
    // 2^32 * 2^32 wraps to 0 elements, (2^62 + 1) * 4 to 4, two usize::MAX dims sum to 2^65 - 2.
    let cases: Vec<(Op, Vec<kiln_ir::TensorType>)> = vec![
        (Op::BroadcastTo(vec![1 << 32, 1 << 32].into()), vec![big(&[])]),
        (Op::Reshape(vec![(1 << 62) + 1, 4].into()), vec![big(&[4])]),
        (Op::Concat { axis: 0 }, vec![big(&[usize::MAX, 0]), big(&[usize::MAX, 0])]),
        (Op::Binary(BinaryOp::Add), vec![big(&[1 << 62, 1]), big(&[1, 4])]),
        // Operand types that overflow are refused too (never counted with a wrapping product).
        (Op::Unary(UnaryOp::Neg), vec![big(&[1 << 40, 1 << 40])]),
    ];
    for (op, args) in cases {
        let r = kiln_ir::infer(&op, &args);
        assert!(
            matches!(r, Err(kiln_ir::Error::Overflow { .. }) | Err(kiln_ir::Error::Reshape { .. })),
            "{op:?}: {r:?}"
        );
    }
    assert_eq!(
        kiln_ir::infer(&Op::Concat { axis: 1 }, &[big(&[usize::MAX, 0]), big(&[usize::MAX, 0])]).unwrap(),
        big(&[usize::MAX, 0])
    );
}

#[test]
fn overflowing_types_are_rejected() {
    let (mut g, _, _) = base();
    g.add_unchecked(Op::Random { dist: Distribution::Uniform, seed: 0 }, t(DType::F32, &[1 << 40, 1 << 40]), &[]);
    fails(&g, "%2 = random_uniform: ", "overflows");
}
