//! Row groups (`executor/rows.rs`): chains of row-wise kernels run block by block must
//! give bit for bit what the same kernels give run one after another (each kernel computes
//! the same elements the same way; only the order of whole rows changes), on one thread
//! and on two, with values kept in block buffers, values escaping to later steps or to the
//! outputs, and chains that must not be grouped.

mod executor_support;

use executor_support::*;
use kiln_ir::{BinaryOp, Graph, NodeId, Op, ReduceOp, UnaryOp};
use kiln_jit::executor::reference;
use kiln_jit::{Executable, Options};

/// Row softmax as the fuser leaves it: max, exp(x - max), sum, divide.
fn softmax(g: &mut Graph, x: NodeId) -> (NodeId, NodeId) {
    let m = fused(g, &[x], |b, i| reduce(b, ReduceOp::Max, i[0], &[1], true));
    let e = fused(g, &[x, m], |b, i| {
        let d = bin(b, BinaryOp::Sub, i[0], i[1]);
        un(b, UnaryOp::Exp, d)
    });
    let s = fused(g, &[e], |b, i| reduce(b, ReduceOp::Sum, i[0], &[1], true));
    let y = fused(g, &[e, s], |b, i| bin(b, BinaryOp::Div, i[0], i[1]));
    (e, y)
}

/// Runs `g` grouped and ungrouped, on 1 and 2 threads (splitting even small work), checks
/// all four agree bit for bit and match the interpreter within `rel`, and returns the
/// grouped schedule.
fn check(g: &Graph, shapes: &[&[usize]], rel: f64) -> String {
    let inputs: Vec<_> =
        shapes.iter().enumerate().map(|(k, s)| f32s(&data(s.iter().product(), 30 + k as u64), s)).collect();
    let want = reference::run(g, &inputs, &[]).unwrap();
    let opts = |threads, row_groups| Options { threads, par_min_work: 1, row_groups };
    let plain = Executable::with_options(g.clone(), opts(1, false)).unwrap().run(&inputs, &[]).unwrap();
    assert_close(&plain, &want, rel);
    let mut schedule = String::new();
    for threads in [1, 2] {
        let exe = Executable::with_options(g.clone(), opts(threads, true)).unwrap();
        for _ in 0..2 {
            assert_same(&exe.run(&inputs, &[]).unwrap(), &plain);
        }
        schedule = exe.schedule_text();
    }
    schedule
}

#[test]
fn softmax_runs_as_one_group_with_its_exp_in_block_buffers() {
    for rows in [2, 3, 37, 1000] {
        let mut g = Graph::new("softmax");
        let x = input(&mut g, &[rows, 300]);
        let (_, y) = softmax(&mut g, x);
        g.set_outputs(vec![y]);
        let s = check(&g, &[&[rows, 300]], 1e-5);
        assert!(s.contains("# row group"), "{s}");
        assert!(s.contains("-> block+"), "{s}");
    }
}

#[test]
fn values_used_after_the_group_or_returned_stay_whole() {
    let mut g = Graph::new("escape");
    let x = input(&mut g, &[64, 100]);
    let (e, y) = softmax(&mut g, x);
    // `e` is read by a library op after the group and is an output; so is `y`.
    let t = g.add(Op::Transpose(vec![1, 0]), &[e]).unwrap();
    g.set_outputs(vec![y, t, e]);
    let s = check(&g, &[&[64, 100]], 1e-5);
    assert!(s.contains("# row group"), "{s}");
}

#[test]
fn kernels_reading_other_rows_are_not_grouped() {
    let mut g = Graph::new("mixed");
    let x = input(&mut g, &[100, 100]);
    // A rank-1 value of 100 rows, read by a [100, 100] kernel: broadcasting aligns it with
    // the columns, so row r of the result needs every row of it.
    let r = fused(&mut g, &[x], |b, i| reduce(b, ReduceOp::Sum, i[0], &[1], false));
    let y = fused(&mut g, &[x, r], |b, i| bin(b, BinaryOp::Mul, i[0], i[1]));
    // A reduction over the rows themselves.
    let c = fused(&mut g, &[y], |b, i| reduce(b, ReduceOp::Sum, i[0], &[0], true));
    let z = fused(&mut g, &[y, c], |b, i| bin(b, BinaryOp::Sub, i[0], i[1]));
    g.set_outputs(vec![z]);
    let s = check(&g, &[&[100, 100]], 1e-4);
    assert!(!s.contains("# row group"), "{s}");
}

#[test]
fn a_group_with_an_outside_broadcast_operand_and_an_output_in_the_middle() {
    let mut g = Graph::new("norm");
    let x = input(&mut g, &[513, 40]);
    let w = input(&mut g, &[40]);
    let mean = fused(&mut g, &[x], |b, i| reduce(b, ReduceOp::Mean, i[0], &[1], true));
    let c = fused(&mut g, &[x, mean], |b, i| bin(b, BinaryOp::Sub, i[0], i[1]));
    let var = fused(&mut g, &[c], |b, i| {
        let sq = un(b, UnaryOp::Square, i[0]);
        reduce(b, ReduceOp::Mean, sq, &[1], false)
    });
    let y = fused(&mut g, &[c, w], |b, i| bin(b, BinaryOp::Mul, i[0], i[1]));
    g.set_outputs(vec![y, var]);
    let s = check(&g, &[&[513, 40], &[40]], 1e-5);
    assert!(s.contains("# row group"), "{s}");
}

/// One executable with a row group, called from 8 threads at once with different inputs
/// (the pool is busy with one call's group while the others run theirs inline): each
/// caller gets its own result, equal to a lone call's bit for bit.
#[test]
fn concurrent_calls_of_a_grouped_executable() {
    let mut g = Graph::new("softmax");
    let x = input(&mut g, &[300, 200]);
    let (_, y) = softmax(&mut g, x);
    g.set_outputs(vec![y]);
    let exe = Executable::with_options(g, Options { threads: 2, par_min_work: 1, row_groups: true }).unwrap();
    let inputs: Vec<_> = (0..8u64).map(|t| [f32s(&data(60_000, 60 + t), &[300, 200])]).collect();
    let want: Vec<_> = inputs.iter().map(|i| exe.run(i, &[]).unwrap()).collect();
    std::thread::scope(|s| {
        for (i, w) in inputs.iter().zip(&want) {
            let exe = &exe;
            s.spawn(move || {
                for _ in 0..20 {
                    assert_same(&exe.run(i, &[]).unwrap(), w);
                }
            });
        }
    });
}
