//! Fusion (kernel counts for GELU and softmax, reductions, splits, side effects) and
//! memory planning (reuse, in-place epilogues, no overlap).

mod common;

use common::{assert_same_outcome, check_kernels, check_plan, random_array, Rng};
use kiln_ir::{interp, Array, BinaryOp, DType, Graph, NodeId, Op, ReduceOp, TensorType, UnaryOp};
use kiln_passes::{Fuse, MemoryPlanner, Pass, Pipeline};

fn scalar(g: &mut Graph, v: f32) -> NodeId {
    g.add_const(Array::scalar(v))
}

fn bin(g: &mut Graph, op: BinaryOp, a: NodeId, b: NodeId) -> NodeId {
    g.add(Op::Binary(op), &[a, b]).unwrap()
}

fn kernels(g: &Graph) -> usize {
    g.node_ids().filter(|&n| matches!(g.node(n).op, Op::Fused(_))).count()
}

/// tanh-GELU as docs/DESIGN.md §9 writes it: `0.5*x*(1 + tanh((x + 0.044715*x*x*x) * 0.7978846))`.
pub fn gelu(n: usize) -> Graph {
    let mut g = Graph::new("gelu");
    let x = g.add_input(TensorType::new(DType::F32, &[n]));
    let half = scalar(&mut g, 0.5);
    let c = scalar(&mut g, 0.044715);
    let k = scalar(&mut g, 0.797_884_6);
    let one = scalar(&mut g, 1.0);
    let hx = bin(&mut g, BinaryOp::Mul, half, x);
    let cx = bin(&mut g, BinaryOp::Mul, c, x);
    let cxx = bin(&mut g, BinaryOp::Mul, cx, x);
    let cxxx = bin(&mut g, BinaryOp::Mul, cxx, x);
    let inner = bin(&mut g, BinaryOp::Add, x, cxxx);
    let scaled = bin(&mut g, BinaryOp::Mul, inner, k);
    let t = g.add(Op::Unary(UnaryOp::Tanh), &[scaled]).unwrap();
    let onep = bin(&mut g, BinaryOp::Add, one, t);
    let out = bin(&mut g, BinaryOp::Mul, hx, onep);
    g.set_outputs(vec![out]);
    g
}

/// Row softmax: `e = exp(x - max(x)); e / sum(e)` over the last axis.
pub fn softmax(rows: usize, cols: usize) -> Graph {
    let mut g = Graph::new("softmax");
    let x = g.add_input(TensorType::new(DType::F32, &[rows, cols]));
    let m = g.add(Op::Reduce { op: ReduceOp::Max, axes: vec![1], keepdims: true }, &[x]).unwrap();
    let d = bin(&mut g, BinaryOp::Sub, x, m);
    let e = g.add(Op::Unary(UnaryOp::Exp), &[d]).unwrap();
    let s = g.add(Op::Reduce { op: ReduceOp::Sum, axes: vec![1], keepdims: true }, &[e]).unwrap();
    let out = bin(&mut g, BinaryOp::Div, e, s);
    g.set_outputs(vec![out]);
    g
}

/// Runs the full pipeline with the verifier, checks kernels, plan and semantics on random inputs.
fn optimize_and_check(g: &Graph, seed: u64) -> Graph {
    let mut opt = g.clone();
    Pipeline::default().verify(true).run(&mut opt).unwrap();
    check_kernels(&opt);
    check_plan(&opt);
    let mut r = Rng::new(seed);
    let inputs: Vec<Array> = g.inputs().iter().map(|&i| random_array(&mut r, &g.node(i).ty)).collect();
    let want = interp::run(g, &inputs, &[]).unwrap();
    let got = interp::run(&opt, &inputs, &[]).unwrap();
    assert_same_outcome(&want, &got, g.name());
    opt
}

#[test]
fn gelu_is_one_kernel() {
    let g = gelu(64);
    let opt = optimize_and_check(&g, 1);
    assert_eq!(kernels(&opt), 1, "{}", opt.to_text());
    assert_eq!(opt.len(), 2, "input + kernel:\n{}", opt.to_text());
    eprintln!("gelu: {} nodes -> {} nodes", g.len(), opt.len());
}

#[test]
fn softmax_is_four_kernels() {
    // max | exp(x - max) | sum(e) | e / sum: `exp` is read by the sum and the division,
    // so it is materialized once rather than recomputed.
    let g = softmax(8, 16);
    let opt = optimize_and_check(&g, 2);
    assert_eq!(kernels(&opt), 4, "{}", opt.to_text());
    eprintln!("softmax: {} nodes -> {} nodes", g.len(), opt.len());
}

/// `x - max - log(sum(exp(x - max)))` over the rows of a rank-2 `x`.
fn add_log_softmax(g: &mut Graph, x: NodeId) -> NodeId {
    let keep = |op| Op::Reduce { op, axes: vec![1], keepdims: true };
    let m = g.add(keep(ReduceOp::Max), &[x]).unwrap();
    let d = bin(g, BinaryOp::Sub, x, m);
    let e = g.add(Op::Unary(UnaryOp::Exp), &[d]).unwrap();
    let s = g.add(keep(ReduceOp::Sum), &[e]).unwrap();
    let lse = g.add(Op::Unary(UnaryOp::Log), &[s]).unwrap();
    bin(g, BinaryOp::Sub, d, lse)
}

/// [`add_log_softmax`] alone, over rows of `classes`.
fn log_softmax(rows: usize, classes: usize) -> Graph {
    let mut g = Graph::new("log_softmax");
    let x = g.add_input(TensorType::new(DType::F32, &[rows, classes]));
    let out = add_log_softmax(&mut g, x);
    g.set_outputs(vec![out]);
    g
}

/// Whether some kernel of `g` over `numel` elements computes `op`.
fn has_kernel_of(g: &Graph, numel: usize, op: UnaryOp) -> bool {
    g.node_ids().any(|n| match &g.node(n).op {
        Op::Fused(k) => g.node(n).ty.numel() == numel && k.body.node_ids().any(|b| k.body.node(b).op == Op::Unary(op)),
        _ => false,
    })
}

#[test]
fn an_expensive_value_broadcast_wide_is_computed_once_per_element_of_its_own() {
    // 1,024 classes: fused into the subtraction the row's `log` would run 1,024 times, so it
    // is a kernel of its own over the 8 row sums.
    let wide = optimize_and_check(&log_softmax(8, 1024), 4);
    assert_eq!(kernels(&wide), 5, "{}", wide.to_text());
    assert!(has_kernel_of(&wide, 8, UnaryOp::Log), "{}", wide.to_text());
    // 10 classes: repeating the `log` 10 times costs less than a kernel of its own.
    let narrow = optimize_and_check(&log_softmax(8, 10), 5);
    assert_eq!(kernels(&narrow), 4, "{}", narrow.to_text());
    assert!(has_kernel_of(&narrow, 80, UnaryOp::Log), "{}", narrow.to_text());
    // A cheap op is fused however wide: `x - max` reads the row max in the kernel.
    assert!(!wide.node_ids().any(|n| matches!(wide.node(n).op, Op::Binary(_))));
    // Layer norm's `rsqrt(var + eps)`: one per row, in a kernel over the rows.
    let mut g = Graph::new("layer_norm");
    let x = g.add_input(TensorType::new(DType::F32, &[8, 1024]));
    let mean = g.add(Op::Reduce { op: ReduceOp::Mean, axes: vec![1], keepdims: true }, &[x]).unwrap();
    let c = bin(&mut g, BinaryOp::Sub, x, mean);
    let sq = bin(&mut g, BinaryOp::Mul, c, c);
    let var = g.add(Op::Reduce { op: ReduceOp::Mean, axes: vec![1], keepdims: true }, &[sq]).unwrap();
    let eps = scalar(&mut g, 1e-5);
    let ve = bin(&mut g, BinaryOp::Add, var, eps);
    let r = g.add(Op::Unary(UnaryOp::Rsqrt), &[ve]).unwrap();
    let out = bin(&mut g, BinaryOp::Mul, c, r);
    g.set_outputs(vec![out]);
    let ln = optimize_and_check(&g, 6);
    assert!(has_kernel_of(&ln, 8, UnaryOp::Rsqrt), "{}", ln.to_text());
}

#[test]
fn sum_of_squares_is_one_kernel_with_the_reduction_as_output() {
    let mut g = Graph::new("t");
    let x = g.add_input(TensorType::new(DType::F32, &[4, 8]));
    let sq = bin(&mut g, BinaryOp::Mul, x, x);
    let s = g.add(Op::Reduce { op: ReduceOp::Sum, axes: vec![0, 1], keepdims: false }, &[sq]).unwrap();
    g.set_outputs(vec![s]);
    let opt = optimize_and_check(&g, 3);
    assert_eq!(kernels(&opt), 1);
    assert_eq!(opt.len(), 2);
}

#[test]
fn a_value_used_outside_ends_the_group() {
    // y = exp(x) is an output and feeds tanh: it must be materialized, not duplicated.
    let mut g = Graph::new("t");
    let x = g.add_input(TensorType::new(DType::F32, &[5]));
    let y = g.add(Op::Unary(UnaryOp::Exp), &[x]).unwrap();
    let z = g.add(Op::Unary(UnaryOp::Tanh), &[y]).unwrap();
    g.set_outputs(vec![y, z]);
    let opt = optimize_and_check(&g, 4);
    assert_eq!(kernels(&opt), 2);
    let total_body_ops: usize = opt
        .node_ids()
        .filter_map(|n| match &opt.node(n).op {
            Op::Fused(k) => Some(k.body.node_ids().filter(|&b| k.body.node(b).op.is_elementwise()).count()),
            _ => None,
        })
        .sum();
    assert_eq!(total_body_ops, 2, "no op computed twice");
}

#[test]
fn fusion_never_creates_a_cycle_through_a_non_member() {
    // a = exp(x); t = transpose(a) (not fusible); b = a + t. Fusing a and b would need t
    // both after and before the kernel.
    let mut g = Graph::new("t");
    let x = g.add_input(TensorType::new(DType::F32, &[3, 3]));
    let a = g.add(Op::Unary(UnaryOp::Exp), &[x]).unwrap();
    let t = g.add(Op::Transpose(vec![1, 0]), &[a]).unwrap();
    let b = bin(&mut g, BinaryOp::Add, a, t);
    g.set_outputs(vec![b]);
    let opt = optimize_and_check(&g, 5);
    assert_eq!(kernels(&opt), 2);
    opt.topo_order().expect("acyclic");
}

#[test]
fn fusion_stops_at_variable_reads_and_writes() {
    let mut g = Graph::new("t");
    let x = g.add_input(TensorType::new(DType::F32, &[3]));
    let v = g.declare_var("v", TensorType::new(DType::F32, &[3]));
    let r = g.add_read_var(v).unwrap();
    let e = bin(&mut g, BinaryOp::Add, r, x);
    let w = g.add(Op::AssignVar(v), &[e]).unwrap();
    g.add_order(r, w);
    let r2 = g.add_read_var(v).unwrap();
    g.add_order(w, r2);
    let out = bin(&mut g, BinaryOp::Mul, r2, x);
    g.set_outputs(vec![out]);
    let mut opt = g.clone();
    Pipeline::default().verify(true).run(&mut opt).unwrap();
    check_kernels(&opt);
    assert_eq!(kernels(&opt), 2, "{}", opt.to_text());
    let vars = vec![Array::from_vec(vec![1.0f32, 2.0, 3.0], &[3]).unwrap()];
    let inputs = vec![Array::from_vec(vec![10.0f32, 20.0, 30.0], &[3]).unwrap()];
    let want = interp::run(&g, &inputs, &vars).unwrap();
    let got = interp::run(&opt, &inputs, &vars).unwrap();
    assert_same_outcome(&want, &got, "vars");
    assert_eq!(got.outputs[0].to_vec::<f32>().unwrap(), vec![110.0, 440.0, 990.0]);
}

#[test]
fn single_elementwise_ops_become_kernels_and_scalar_consts_move_inside() {
    let mut g = Graph::new("t");
    let x = g.add_input(TensorType::new(DType::F32, &[4]));
    let two = scalar(&mut g, 2.0);
    let y = bin(&mut g, BinaryOp::Mul, x, two);
    g.set_outputs(vec![y]);
    let c = Fuse::default().run(&mut g).unwrap();
    g.verify().unwrap();
    assert_eq!(c.get("kernels_formed"), 1);
    assert_eq!(g.len(), 2, "the constant now lives in the kernel body");
    let k = g.outputs()[0];
    assert_eq!(g.args(k).len(), 1);
}

#[test]
fn matmul_epilogue_writes_in_place_over_the_matmul_result() {
    let mut g = Graph::new("t");
    let x = g.add_input(TensorType::new(DType::F32, &[8, 16]));
    let w = g.add_input(TensorType::new(DType::F32, &[16, 32]));
    let b = g.add_input(TensorType::new(DType::F32, &[32]));
    let mm = g.add(Op::MatMul, &[x, w]).unwrap();
    let z = bin(&mut g, BinaryOp::Add, mm, b);
    let h = g.add(Op::Unary(UnaryOp::Relu), &[z]).unwrap();
    let t = g.add(Op::Transpose(vec![1, 0]), &[h]).unwrap();
    g.set_outputs(vec![t]);
    let opt = optimize_and_check(&g, 6);
    assert_eq!(kernels(&opt), 1);
    let plan = opt.plan.as_ref().unwrap();
    let mm = opt.node_ids().find(|&n| matches!(opt.node(n).op, Op::MatMul)).unwrap();
    let k = opt.node_ids().find(|&n| matches!(opt.node(n).op, Op::Fused(_))).unwrap();
    assert_eq!(plan.in_place.get(&k), Some(&mm), "the epilogue overwrites the matmul's buffer");
    assert_eq!(plan.slots[&k], plan.slots[&mm]);
    assert_eq!(plan.arena_bytes, 8 * 32 * 4);
    assert_eq!(plan.naive_bytes, 2 * 8 * 32 * 4);
}

#[test]
fn memory_plan_reuses_dead_buffers() {
    // A chain of products: each buffer dies at the next step, so two slots suffice.
    let mut g = Graph::new("t");
    let x = g.add_input(TensorType::new(DType::F32, &[4, 4]));
    let mut v = x;
    for _ in 0..6 {
        v = g.add(Op::MatMul, &[v, v]).unwrap();
    }
    g.set_outputs(vec![v]);
    MemoryPlanner.run(&mut g).unwrap();
    check_plan(&g);
    let plan = g.plan.as_ref().unwrap();
    assert_eq!(plan.slots.len(), 5);
    assert_eq!(plan.naive_bytes, 5 * 64);
    assert_eq!(plan.arena_bytes, 2 * 64);
}

/// An operand of a Variable write that something else reads too keeps its slot to the end
/// (the executor may commit the write from the arena).
#[test]
fn assign_operands_stay_live_to_the_end() {
    let mut g = Graph::new("t");
    let x = g.add_input(TensorType::new(DType::F32, &[4, 4]));
    let v = g.declare_var("v", TensorType::new(DType::F32, &[4, 4]));
    let a = g.add(Op::MatMul, &[x, x]).unwrap();
    g.add(Op::AssignVar(v), &[a]).unwrap();
    let mut y = a;
    for _ in 0..3 {
        y = g.add(Op::MatMul, &[y, y]).unwrap();
    }
    g.set_outputs(vec![y]);
    MemoryPlanner.run(&mut g).unwrap();
    check_plan(&g);
    let plan = g.plan.as_ref().unwrap();
    let a_slot = plan.slots[&a];
    for (&n, s) in &plan.slots {
        if n != a {
            assert!(s.offset >= a_slot.offset + 64 || s.offset + 64 <= a_slot.offset, "nothing reuses a's slot");
        }
    }
}

/// An SGD update `w - 0.5·(x @ dz)` written to a Variable: neither the update (the executor
/// writes it into a buffer that becomes the Variable's) nor the product (added into that
/// buffer) gets a slot. Returned as well, both get one.
#[test]
fn an_update_and_the_product_added_into_it_get_no_slot() {
    for returned in [false, true] {
        let mut g = Graph::new("t");
        let x = g.add_input(TensorType::new(DType::F32, &[8, 16]));
        let dz = g.add_input(TensorType::new(DType::F32, &[16, 32]));
        let v = g.declare_var("w", TensorType::new(DType::F32, &[8, 32]));
        let w = g.add_read_var(v).unwrap();
        let p = g.add(Op::MatMul, &[x, dz]).unwrap();
        let half = scalar(&mut g, 0.5);
        let step = bin(&mut g, BinaryOp::Mul, p, half);
        let new = bin(&mut g, BinaryOp::Sub, w, step);
        let write = g.add(Op::AssignVar(v), &[new]).unwrap();
        g.add_order(w, write);
        // A second reader of the update: a sum returned as well.
        let outs = if returned {
            vec![g.add(Op::Reduce { op: ReduceOp::Sum, axes: vec![0, 1], keepdims: false }, &[new]).unwrap()]
        } else {
            vec![]
        };
        g.set_outputs(outs);
        Fuse::default().run(&mut g).unwrap();
        MemoryPlanner.run(&mut g).unwrap();
        check_plan(&g);
        let plan = g.plan.as_ref().unwrap();
        let p = g.node_ids().find(|&n| matches!(g.node(n).op, Op::MatMul)).unwrap();
        let [(update, _)] = g.users(p)[..] else { panic!("the product has one reader") };
        assert!(matches!(g.node(update).op, Op::Fused(_)), "{}", g.to_text());
        assert_eq!(plan.slots.contains_key(&p), returned, "{}", g.to_text());
        assert_eq!(plan.slots.contains_key(&update), returned, "{}", g.to_text());
    }
}

/// The forward pass of docs/DESIGN.md §9's MLP step (784→512→512→10, ReLU, softmax cross-entropy
/// with one-hot labels, mean over the batch) at a given batch and width.
fn mlp_forward(batch: usize, inp: usize, hidden: usize, classes: usize) -> Graph {
    let mut g = Graph::new("mlp");
    let f32s = |s: &[usize]| TensorType::new(DType::F32, s);
    let x = g.add_input(f32s(&[batch, inp]));
    let y = g.add_input(f32s(&[batch, classes]));
    let mut h = x;
    let mut width = inp;
    for (k, out) in [hidden, hidden, classes].into_iter().enumerate() {
        let w = g.add_input(f32s(&[width, out]));
        let b = g.add_input(f32s(&[out]));
        let mm = g.add(Op::MatMul, &[h, w]).unwrap();
        h = bin(&mut g, BinaryOp::Add, mm, b);
        if k < 2 {
            h = g.add(Op::Unary(UnaryOp::Relu), &[h]).unwrap();
        }
        width = out;
    }
    let logp = add_log_softmax(&mut g, h);
    let yl = bin(&mut g, BinaryOp::Mul, y, logp);
    let per = g.add(Op::Reduce { op: ReduceOp::Sum, axes: vec![1], keepdims: false }, &[yl]).unwrap();
    let neg = g.add(Op::Unary(UnaryOp::Neg), &[per]).unwrap();
    let loss = g.add(Op::Reduce { op: ReduceOp::Mean, axes: vec![0], keepdims: false }, &[neg]).unwrap();
    g.set_outputs(vec![loss]);
    g
}

#[test]
fn mlp_forward_kernels() {
    // Semantics on a small instance, counts on the real one (they do not depend on sizes).
    optimize_and_check(&mlp_forward(4, 12, 8, 3), 7);
    let g = mlp_forward(256, 784, 512, 10);
    let mut opt = g.clone();
    Pipeline::default().verify(true).run(&mut opt).unwrap();
    check_kernels(&opt);
    check_plan(&opt);
    let plan = opt.plan.as_ref().unwrap();
    eprintln!(
        "mlp forward: {} nodes -> {} nodes, {} kernels; arena {} bytes vs naive {} bytes\n{}",
        g.len(),
        opt.len(),
        kernels(&opt),
        plan.arena_bytes,
        plan.naive_bytes,
        opt.to_text()
    );
    // bias+relu twice, bias, max, x - max, sum(exp), log-softmax*labels summed, -mean.
    assert_eq!(kernels(&opt), 8, "{}", opt.to_text());
    // In place: both bias+relu epilogues and the logits' bias add over their matmul's
    // buffer, and `logits - max` over the logits (whose last reader it is).
    assert_eq!(plan.in_place.len(), 4, "{}", opt.plan_text());
}
