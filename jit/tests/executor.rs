//! The executor against the reference interpreter on hand-built graphs.

mod executor_support;

use std::collections::HashMap;

use executor_support::*;
use kiln_ir::{Array, BinaryOp, DType, Distribution, Graph, MemoryPlan, Op, ReduceOp, Slot, TensorType, UnaryOp};
use kiln_jit::{Executable, Options, Outcome};

fn check_exact(g: Graph, inputs: &[Array], vars: &[Array]) -> Executable {
    let want = reference::run(&g, inputs, vars).unwrap();
    let exe = Executable::new(g).unwrap();
    for _ in 0..3 {
        let got = exe.run(inputs, vars).unwrap();
        assert_same(&got, &want);
    }
    exe
}

/// `tanh(x*y + x)` then `relu(.)*2`, two fused kernels in a chain (IEEE-exact ops compare bitwise).
#[test]
fn elementwise_chain_matches_interpreter() {
    for n in [1usize, 3, 4, 5, 17, 1000] {
        let mut g = Graph::new("chain");
        let x = input(&mut g, &[n]);
        let y = input(&mut g, &[n]);
        let k1 = fused(&mut g, &[x, y], |b, i| {
            let m = bin(b, BinaryOp::Mul, i[0], i[1]);
            bin(b, BinaryOp::Add, m, i[0])
        });
        let two = g.add_const(Array::scalar(2.0f32));
        let k2 = fused(&mut g, &[k1, two], |b, i| {
            let r = un(b, UnaryOp::Relu, i[0]);
            bin(b, BinaryOp::Mul, r, i[1])
        });
        g.set_outputs(vec![k2, k1]);
        check_exact(g, &[f32s(&data(n, 1), &[n]), f32s(&data(n, 2), &[n])], &[]);
    }
}

/// `relu(x @ w + b)`: gemm then a fused epilogue; gemm sums in another order than the
/// interpreter, so the tolerance is 1e-5 relative (k = 37 products of values in [-2, 2)).
#[test]
fn matmul_with_epilogue() {
    for (m, k, n) in [(1, 1, 1), (4, 37, 5), (33, 37, 65), (128, 64, 96)] {
        let mut g = Graph::new("dense");
        let x = input(&mut g, &[m, k]);
        let w = input(&mut g, &[k, n]);
        let b = input(&mut g, &[n]);
        let mm = g.add(Op::MatMul, &[x, w]).unwrap();
        let y = fused(&mut g, &[mm, b], |bg, i| {
            let s = bin(bg, BinaryOp::Add, i[0], i[1]);
            un(bg, UnaryOp::Relu, s)
        });
        g.set_outputs(vec![y, mm]);
        let inputs = [f32s(&data(m * k, 3), &[m, k]), f32s(&data(k * n, 4), &[k, n]), f32s(&data(n, 5), &[n])];
        let want = reference::run(&g, &inputs, &[]).unwrap();
        let exe = Executable::new(g).unwrap();
        assert!(exe.schedule_text().contains("gemm"), "{}", exe.schedule_text());
        assert_close(&exe.run(&inputs, &[]).unwrap(), &want, 1e-5);
    }
}

/// Batched matmul with a broadcast batch dim, and f64.
#[test]
fn batched_and_f64_matmul() {
    let mut g = Graph::new("bmm");
    let a = input(&mut g, &[3, 1, 4, 5]);
    let b = input(&mut g, &[2, 5, 6]);
    let mm = g.add(Op::MatMul, &[a, b]).unwrap();
    g.set_outputs(vec![mm]);
    let inputs = [f32s(&data(60, 6), &[3, 1, 4, 5]), f32s(&data(60, 7), &[2, 5, 6])];
    let want = reference::run(&g, &inputs, &[]).unwrap();
    assert_close(&Executable::new(g).unwrap().run(&inputs, &[]).unwrap(), &want, 1e-5);

    let mut g = Graph::new("dmm");
    let a = g.add_input(TensorType::new(DType::F64, &[7, 3]));
    let b = g.add_input(TensorType::new(DType::F64, &[3, 2]));
    let mm = g.add(Op::MatMul, &[a, b]).unwrap();
    g.set_outputs(vec![mm]);
    let to64 = |v: Vec<f32>| v.into_iter().map(f64::from).collect::<Vec<_>>();
    let inputs =
        [Array::from_vec(to64(data(21, 8)), &[7, 3]).unwrap(), Array::from_vec(to64(data(6, 9)), &[3, 2]).unwrap()];
    let want = reference::run(&g, &inputs, &[]).unwrap();
    assert_close(&Executable::new(g).unwrap().run(&inputs, &[]).unwrap(), &want, 1e-12);
}

/// `softmax(x)` over rows as four kernels: max, exp(x - max), sum, divide.
#[test]
fn softmax_like_reduce_chain() {
    let (r, c) = (6, 33);
    let mut g = Graph::new("softmax");
    let x = input(&mut g, &[r, c]);
    let mx = fused(&mut g, &[x], |b, i| reduce(b, ReduceOp::Max, i[0], &[1], true));
    let e = fused(&mut g, &[x, mx], |b, i| {
        let d = bin(b, BinaryOp::Sub, i[0], i[1]);
        un(b, UnaryOp::Exp, d)
    });
    let s = fused(&mut g, &[e], |b, i| reduce(b, ReduceOp::Sum, i[0], &[1], true));
    let y = fused(&mut g, &[e, s], |b, i| bin(b, BinaryOp::Div, i[0], i[1]));
    g.set_outputs(vec![y]);
    let inputs = [f32s(&data(r * c, 10), &[r, c])];
    let want = reference::run(&g, &inputs, &[]).unwrap();
    let exe = Executable::new(g).unwrap();
    // exp is a polynomial in compiled code (a few ULP) and sums may be reassociated.
    assert_close(&exe.run(&inputs, &[]).unwrap(), &want, 1e-5);
}

/// read v → r1; v := r1 + x; read v (after the write) → r2; w := r2 * 2. Outputs see the
/// write, `writes` hold the final values, and the given `vars` are not changed.
#[test]
fn variable_reads_and_writes_in_order() {
    let mut g = Graph::new("vars");
    let x = input(&mut g, &[3]);
    let v = g.declare_var("v", TensorType::new(DType::F32, &[3]));
    let w = g.declare_var("w", TensorType::new(DType::F32, &[3]));
    let r1 = g.add_read_var(v).unwrap();
    let sum = fused(&mut g, &[r1, x], |b, i| bin(b, BinaryOp::Add, i[0], i[1]));
    let a1 = g.add(Op::AssignVar(v), &[sum]).unwrap();
    g.add_order(r1, a1);
    let r2 = g.add_read_var(v).unwrap();
    g.add_order(a1, r2);
    let two = g.add_const(Array::scalar(2.0f32));
    let dbl = g.add(Op::Binary(BinaryOp::Mul), &[r2, two]).unwrap();
    let a2 = g.add(Op::AssignVar(w), &[dbl]).unwrap();
    g.set_outputs(vec![r1, r2, dbl]);
    let _ = a2;
    let vars = [f32s(&[1.0, 2.0, 3.0], &[3]), f32s(&[0.0; 3], &[3])];
    let exe = check_exact(g, &[f32s(&[10.0, 20.0, 30.0], &[3])], &vars);
    // `sum` is read only by the write of v: computed into the buffer v then gets.
    assert!(exe.schedule_text().contains("-> fresh buffer"), "{}", exe.schedule_text());
    let out = exe.run(&[f32s(&[10.0, 20.0, 30.0], &[3])], &vars).unwrap();
    assert_eq!(out.outputs[0].to_vec::<f32>().unwrap(), vec![1.0, 2.0, 3.0]);
    assert_eq!(out.outputs[1].to_vec::<f32>().unwrap(), vec![11.0, 22.0, 33.0]);
    assert_eq!(out.writes.iter().map(|w| w.0).collect::<Vec<_>>(), vec![0, 1]);
    assert_eq!(out.writes[1].1.to_vec::<f32>().unwrap(), vec![22.0, 44.0, 66.0]);
    assert_eq!(vars[0].to_vec::<f32>().unwrap(), vec![1.0, 2.0, 3.0]);
}

#[test]
fn random_ops_match_interpreter() {
    let mut g = Graph::new("rand");
    let x = input(&mut g, &[4, 5]);
    let r = g.add_random(Distribution::Uniform, 42, TensorType::new(DType::F32, &[4, 5]), None).unwrap();
    let y = fused(&mut g, &[x, r], |b, i| bin(b, BinaryOp::Mul, i[0], i[1]));
    g.set_outputs(vec![y, r]);
    check_exact(g, &[f32s(&data(20, 11), &[4, 5])], &[]);
}

#[test]
fn zero_size_tensors() {
    let mut g = Graph::new("empty");
    let x = input(&mut g, &[0, 3]);
    let w = input(&mut g, &[3, 2]);
    let e = fused(&mut g, &[x], |b, i| un(b, UnaryOp::Neg, i[0]));
    let mm = g.add(Op::MatMul, &[e, w]).unwrap();
    let s = fused(&mut g, &[x], |b, i| reduce(b, ReduceOp::Sum, i[0], &[0], false));
    g.set_outputs(vec![e, mm, s]);
    check_exact(g, &[Array::zeros(&[0, 3], DType::F32), f32s(&data(6, 12), &[3, 2])], &[]);

    // k = 0: the product is all zeros.
    let mut g = Graph::new("k0");
    let a = input(&mut g, &[2, 0]);
    let b = input(&mut g, &[0, 3]);
    let mm = g.add(Op::MatMul, &[a, b]).unwrap();
    let y = fused(&mut g, &[mm], |bg, i| un(bg, UnaryOp::Neg, i[0]));
    g.set_outputs(vec![y]);
    check_exact(g, &[Array::zeros(&[2, 0], DType::F32), Array::zeros(&[0, 3], DType::F32)], &[]);
}

/// Reshape of an input is a view; of an arena value, a copy into its own slot; of an output, fine too.
#[test]
fn reshape_views_and_copies() {
    let mut g = Graph::new("reshape");
    let x = input(&mut g, &[2, 6]);
    let rx = g.add(Op::Reshape(kiln_ir::Shape::from_slice(&[3, 4])), &[x]).unwrap();
    let w = input(&mut g, &[4, 4]);
    let mm = g.add(Op::MatMul, &[rx, w]).unwrap();
    let rm = g.add(Op::Reshape(kiln_ir::Shape::from_slice(&[12])), &[mm]).unwrap();
    let y = fused(&mut g, &[rm], |b, i| un(b, UnaryOp::Neg, i[0]));
    let ry = g.add(Op::Reshape(kiln_ir::Shape::from_slice(&[4, 3])), &[y]).unwrap();
    g.set_outputs(vec![ry, rx, x]);
    let inputs = [
        f32s(&data(12, 13), &[2, 6]),
        f32s(&[1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0], &[4, 4]),
    ];
    let exe = check_exact(g, &inputs, &[]);
    let out = exe.run(&inputs, &[]).unwrap();
    assert!(std::sync::Arc::ptr_eq(out.outputs[1].data_arc(), inputs[0].data_arc()), "reshape of an input is a view");
}

#[test]
fn duplicate_outputs_and_passthrough() {
    let mut g = Graph::new("dup");
    let x = input(&mut g, &[5]);
    let y = fused(&mut g, &[x], |b, i| un(b, UnaryOp::Square, i[0]));
    let c = g.add_const(Array::scalar(7i32));
    g.set_outputs(vec![y, x, y, c]);
    check_exact(g, &[f32s(&data(5, 14), &[5])], &[]);
}

/// The direct path (`Executable::is_direct`): a kernel reading another's output, outputs
/// listed in another order than computed, inputs, constants and duplicates among them, and
/// `run_into` over previous outputs that are fewer, shared or of another type.
#[test]
fn direct_path_places_outputs_in_order() {
    let mut g = Graph::new("direct");
    let x = input(&mut g, &[6]);
    let a = fused(&mut g, &[x], |b, i| un(b, UnaryOp::Exp, i[0]));
    let y = fused(&mut g, &[a, x], |b, i| bin(b, BinaryOp::Mul, i[0], i[1]));
    let c = g.add_const(Array::scalar(2i32));
    g.set_outputs(vec![c, y, x, a, y]);
    let inputs = [f32s(&data(6, 30), &[6])];
    let want = reference::run(&g, &inputs, &[]).unwrap();
    // Without row groups: a chain of row-wise kernels would run as one (not direct).
    let exe = Executable::with_options(g, Options { row_groups: false, ..Options::default() }).unwrap();
    assert!(exe.is_direct(), "{}", exe.schedule_text());
    let mut out = Outcome { outputs: vec![], writes: vec![] };
    for _ in 0..3 {
        exe.run_into(&inputs, &[], &mut out).unwrap();
        assert_same(&out, &want);
    }
    let reused = out.outputs[3].data().as_bytes().as_ptr();
    let kept = out.outputs[1].clone();
    out.outputs[0] = Array::scalar(1.0f64);
    out.outputs.truncate(4);
    exe.run_into(&inputs, &[], &mut out).unwrap();
    assert_same(&out, &want);
    assert_eq!(out.outputs[3].data().as_bytes().as_ptr(), reused, "an unshared output is written in place");
    assert_ne!(out.outputs[1].data().as_bytes().as_ptr(), kept.data().as_bytes().as_ptr(), "a shared one is not");
    out.outputs.truncate(1);
    exe.run_into(&inputs, &[], &mut out).unwrap();
    assert_same(&out, &want);
}

#[test]
fn library_ops_run_in_the_interpreter() {
    let mut g = Graph::new("lib");
    let x = input(&mut g, &[3, 4]);
    let s = reduce(&mut g, ReduceOp::Sum, x, &[0], false);
    let y = fused(&mut g, &[s], |b, i| un(b, UnaryOp::Neg, i[0]));
    g.set_outputs(vec![y]);
    let exe = check_exact(g, &[f32s(&data(12, 15), &[3, 4])], &[]);
    assert!(exe.schedule_text().contains("library"), "{}", exe.schedule_text());
}

#[test]
fn wrong_inputs_are_errors() {
    let mut g = Graph::new("sig");
    let x = input(&mut g, &[2]);
    let v = g.declare_var("v", TensorType::new(DType::F32, &[2]));
    let r = g.add_read_var(v).unwrap();
    let y = fused(&mut g, &[x, r], |b, i| bin(b, BinaryOp::Add, i[0], i[1]));
    g.set_outputs(vec![y]);
    let exe = Executable::new(g).unwrap();
    let ok = f32s(&[1.0, 2.0], &[2]);
    let one = std::slice::from_ref(&ok);
    assert!(exe.run(one, one).is_ok());
    assert!(exe.run(&[], one).is_err(), "too few inputs");
    assert!(exe.run(&[ok.clone(), ok.clone()], one).is_err(), "too many inputs");
    assert!(exe.run(&[f32s(&[1.0; 3], &[3])], one).is_err(), "wrong shape");
    assert!(exe.run(&[Array::from_vec(vec![1.0f64, 2.0], &[2]).unwrap()], one).is_err(), "wrong dtype");
    assert!(exe.run(one, &[]).is_err(), "missing variable");
    assert!(exe.run(one, &[f32s(&[1.0], &[1])]).is_err(), "variable of the wrong shape");
}

/// An executor following a memory plan that reuses one slot for two intermediates gives
/// the same results; a plan whose slot does not fit is rejected at build.
#[test]
fn follows_a_memory_plan_with_reuse() {
    let mut g = Graph::new("planned");
    let x = input(&mut g, &[64]);
    let a = fused(&mut g, &[x], |b, i| un(b, UnaryOp::Neg, i[0]));
    let bb = fused(&mut g, &[a], |b, i| un(b, UnaryOp::Square, i[0]));
    let c = fused(&mut g, &[bb], |b, i| un(b, UnaryOp::Neg, i[0]));
    let d = fused(&mut g, &[c, x], |b, i| bin(b, BinaryOp::Add, i[0], i[1]));
    g.set_outputs(vec![d]);
    let inputs = [f32s(&data(64, 16), &[64])];
    let want = reference::run(&g, &inputs, &[]).unwrap();
    // a and c share offset 0 (a is dead once b ran), b lives at 256.
    let slots: HashMap<_, _> = [
        (a, Slot { offset: 0, bytes: 256 }),
        (bb, Slot { offset: 256, bytes: 256 }),
        (c, Slot { offset: 0, bytes: 256 }),
    ]
    .into();
    let mut planned = g.clone();
    planned.plan = Some(MemoryPlan {
        schedule: g.topo_order().unwrap(),
        slots: slots.clone(),
        arena_bytes: 512,
        naive_bytes: 768,
        ..MemoryPlan::default()
    });
    // Row groups would move the chain's values out of the plan's slots.
    let exe = Executable::with_options(planned, Options { row_groups: false, ..Options::default() }).unwrap();
    assert_eq!(exe.arena_bytes(), 512);
    assert_same(&exe.run(&inputs, &[]).unwrap(), &want);

    let mut bad = g.clone();
    bad.plan = Some(MemoryPlan {
        schedule: g.topo_order().unwrap(),
        slots,
        arena_bytes: 300,
        naive_bytes: 0,
        ..MemoryPlan::default()
    });
    assert!(Executable::new(bad).is_err(), "slot past the arena end");
    let mut bad = g.clone();
    let mut sched = g.topo_order().unwrap();
    sched.reverse();
    bad.plan = Some(MemoryPlan {
        schedule: sched,
        slots: HashMap::new(),
        arena_bytes: 0,
        naive_bytes: 0,
        ..MemoryPlan::default()
    });
    assert!(Executable::new(bad).is_err(), "schedule out of dependency order");
}

/// One executable called from 8 threads, 100 times each, with per-thread inputs.
#[test]
fn concurrent_calls_get_their_own_results() {
    let n = 5000;
    let mut g = Graph::new("conc");
    let x = input(&mut g, &[n / 50, 50]);
    let w = input(&mut g, &[50, 8]);
    let e = fused(&mut g, &[x], |b, i| {
        let s = un(b, UnaryOp::Square, i[0]);
        bin(b, BinaryOp::Sub, s, i[0])
    });
    let mm = g.add(Op::MatMul, &[e, w]).unwrap();
    let y = fused(&mut g, &[mm], |b, i| un(b, UnaryOp::Neg, i[0]));
    g.set_outputs(vec![y, e]);
    let exe =
        Executable::with_options(g.clone(), Options { threads: 2, par_min_work: 1024, ..Options::default() }).unwrap();
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let (exe, g) = (&exe, &g);
            s.spawn(move || {
                let inputs = [f32s(&data(n, 100 + t), &[n / 50, 50]), f32s(&data(400, 200 + t), &[50, 8])];
                let want = exe.run(&inputs, &[]).unwrap();
                assert_close(&want, &reference::run(g, &inputs, &[]).unwrap(), 1e-5);
                for _ in 0..100 {
                    assert_same(&exe.run(&inputs, &[]).unwrap(), &want);
                }
            });
        }
    });
}

/// Splitting kernels across 2 threads gives bit-identical results to 1 thread.
#[test]
fn thread_split_equals_single_thread() {
    let n = 300_001;
    let mut g = Graph::new("split");
    let x = input(&mut g, &[n]);
    let y = input(&mut g, &[n]);
    let k = fused(&mut g, &[x, y], |b, i| {
        let m = bin(b, BinaryOp::Mul, i[0], i[1]);
        let t = un(b, UnaryOp::Tanh, m);
        bin(b, BinaryOp::Add, t, i[0])
    });
    g.set_outputs(vec![k]);
    let inputs = [f32s(&data(n, 17), &[n]), f32s(&data(n, 18), &[n])];
    let one =
        Executable::with_options(g.clone(), Options { threads: 1, par_min_work: 1, ..Options::default() }).unwrap();
    let two = Executable::with_options(g, Options { threads: 2, par_min_work: 1, ..Options::default() }).unwrap();
    assert_same(&one.run(&inputs, &[]).unwrap(), &two.run(&inputs, &[]).unwrap());
}

/// `run_into` writes into the previous output tensors when the caller does not share them.
#[test]
fn run_into_reuses_unshared_outputs() {
    let mut g = Graph::new("into");
    let x = input(&mut g, &[16, 8]);
    let w = input(&mut g, &[8, 4]);
    let mm = g.add(Op::MatMul, &[x, w]).unwrap();
    g.set_outputs(vec![mm]);
    let inputs = [f32s(&data(128, 19), &[16, 8]), f32s(&data(32, 20), &[8, 4])];
    let exe = Executable::new(g.clone()).unwrap();
    let mut out = exe.run(&inputs, &[]).unwrap();
    let before = out.outputs[0].data().as_bytes().as_ptr();
    exe.run_into(&inputs, &[], &mut out).unwrap();
    assert_eq!(out.outputs[0].data().as_bytes().as_ptr(), before, "unshared output reused");
    let kept = out.outputs[0].clone();
    exe.run_into(&[inputs[0].clone(), f32s(&data(32, 21), &[8, 4])], &[], &mut out).unwrap();
    assert_ne!(out.outputs[0].data().as_bytes().as_ptr(), before, "a shared output is not overwritten");
    assert_close(
        &reference::Outcome { outputs: vec![kept], writes: vec![] },
        &reference::run(&g, &inputs, &[]).unwrap(),
        1e-5,
    );
}

#[test]
fn dump_writes_schedule_and_marks_fallbacks() {
    let mut g = Graph::new("dumped");
    let x = input(&mut g, &[2, 2]);
    let y = fused(&mut g, &[x], |b, i| un(b, UnaryOp::Exp, i[0]));
    let mm = g.add(Op::MatMul, &[y, x]).unwrap();
    let t = g.add(Op::Transpose(vec![1, 0]), &[mm]).unwrap();
    g.set_outputs(vec![t]);
    let exe = Executable::new(g).unwrap();
    let dir = std::env::temp_dir().join(format!("kiln-exec-dump-{}", std::process::id()));
    exe.dump(&dir, "f").unwrap();
    let text = std::fs::read_to_string(dir.join("f.exec.txt")).unwrap();
    assert!(text.contains("gemm 2x2x2") && text.contains("library"), "{text}");
    for fb in exe.fallbacks() {
        assert!(text.contains("INTERPRETER FALLBACK"), "{text}");
        assert!(!fb.reason.is_empty());
    }
    let clifs = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "clif"))
        .count();
    assert_eq!(clifs + exe.fallbacks().len(), 1, "the one fused node is either a kernel or a marked fallback");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A matmul operand made by transposing the last two axes is read by gemm through swapped
/// strides (lhs, rhs, both, batched, an operand living in the arena); the transpose is not
/// computed when nothing else reads it, and still is when something does.
#[test]
fn gemm_reads_transposed_operands_in_place() {
    let t = |g: &mut Graph, a, perm: &[usize]| g.add(Op::Transpose(perm.to_vec()), &[a]).unwrap();
    let mm = |g: &mut Graph, a, b| g.add(Op::MatMul, &[a, b]).unwrap();
    let mut g = Graph::new("transposed");
    let shapes: [&[usize]; 6] = [&[7, 5], &[7, 9], &[9, 7], &[5, 7], &[3, 4, 6], &[3, 4, 5]];
    let ids: Vec<_> = shapes.iter().map(|s| input(&mut g, s)).collect();
    let (a, b, e, x, c, d) = (ids[0], ids[1], ids[2], ids[3], ids[4], ids[5]);
    let at = t(&mut g, a, &[1, 0]); // [5, 7]
    let et = t(&mut g, e, &[1, 0]); // [7, 9], also an output below
    let ct = t(&mut g, c, &[0, 2, 1]); // [3, 6, 4]
    let lhs = mm(&mut g, at, b);
    let rhs = mm(&mut g, x, et);
    let both = mm(&mut g, at, et);
    let batched = mm(&mut g, ct, d);
    let a2 = fused(&mut g, &[a], |k, i| un(k, UnaryOp::Neg, i[0]));
    let a2t = t(&mut g, a2, &[1, 0]);
    let arena = mm(&mut g, a2t, b);
    g.set_outputs(vec![lhs, rhs, both, batched, arena, et]);
    let inputs: Vec<_> =
        shapes.iter().enumerate().map(|(k, s)| f32s(&data(s.iter().product(), 40 + k as u64), s)).collect();
    let want = reference::run(&g, &inputs, &[]).unwrap();
    let exe = Executable::new(g).unwrap();
    assert_close(&exe.run(&inputs, &[]).unwrap(), &want, 1e-5);
    let text = exe.schedule_text();
    assert!(text.contains("lhs transposed") && text.contains("rhs transposed"), "{text}");
    assert_eq!(text.matches("elided").count(), 3, "at, ct and a2t are elided; et is an output:\n{text}");
}

/// When the plan reuses the slot of a transpose's operand before the matmul that reads the
/// transpose (the plan sees the operand die at the transpose), gemm must not read the slot:
/// the transpose is computed as usual.
#[test]
fn gemm_does_not_read_a_transposed_operand_whose_slot_was_reused() {
    let mut g = Graph::new("reuse");
    let x = input(&mut g, &[4, 4]);
    let a = fused(&mut g, &[x], |k, i| un(k, UnaryOp::Neg, i[0]));
    let at = g.add(Op::Transpose(vec![1, 0]), &[a]).unwrap();
    let z = fused(&mut g, &[x], |k, i| un(k, UnaryOp::Square, i[0]));
    let m = g.add(Op::MatMul, &[at, z]).unwrap();
    g.set_outputs(vec![m]);
    let inputs = [f32s(&data(16, 50), &[4, 4])];
    let want = reference::run(&g, &inputs, &[]).unwrap();
    let mut planned = g.clone();
    planned.plan = Some(MemoryPlan {
        schedule: vec![x, a, at, z, m],
        slots: [(a, Slot { offset: 0, bytes: 64 }), (z, Slot { offset: 0, bytes: 64 })].into(),
        arena_bytes: 64,
        naive_bytes: 128,
        ..MemoryPlan::default()
    });
    let exe = Executable::new(planned).unwrap();
    assert!(!exe.schedule_text().contains("elided"), "{}", exe.schedule_text());
    assert_close(&exe.run(&inputs, &[]).unwrap(), &want, 1e-5);
}
