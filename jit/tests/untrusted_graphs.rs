//! Graphs the executor cannot trust: parsed without verification, or declaring values no
//! machine can hold. Building or running them is an `Err`, never an out-of-bounds access.

mod executor_support;

use std::sync::Arc;

use executor_support::*;
use kiln_ir::{DType, Error, Graph, Kernel, Op, ReduceOp, TensorType, UnaryOp};
use kiln_jit::Executable;

/// `exp` of an `f32[2]` input in a kernel whose node claims `claimed` (the body says f32[2]).
fn lying_kernel(claimed: &[usize]) -> Graph {
    let mut body = Graph::new("k");
    let a = body.add_input(TensorType::new(DType::F32, &[2]));
    let e = body.add(Op::Unary(UnaryOp::Exp), &[a]).unwrap();
    body.set_outputs(vec![e]);
    let mut g = Graph::new("lies");
    let x = input(&mut g, &[2]);
    let k = g.add_unchecked(Op::Fused(Arc::new(Kernel { body })), TensorType::new(DType::F32, claimed), &[x]);
    g.set_outputs(vec![k]);
    g
}

#[test]
fn executable_new_verifies_an_unverified_graph() {
    // Parsed from text without verification, this used to build and then segfault in `run`
    // (the kernel was sized by the node's 4,000,000 elements over a 2-element operand).
    let text = lying_kernel(&[4_000_000]).to_text();
    let g = Graph::from_text_unverified(&text).unwrap();
    let err = Executable::new(g).err().expect("an unverified graph that breaks a rule must not build");
    assert!(matches!(err, Error::Graph(_)), "{err}");
    assert!(err.to_string().contains("f32[4000000]"), "{err}");
    // The interpreter refuses the same graph.
    let g = Graph::from_text_unverified(&text).unwrap();
    assert!(kiln_ir::interp::run(&g, &[f32s(&[1.0, 2.0], &[2])], &[]).is_err());
}

#[test]
fn a_kernel_body_with_a_variable_table_does_not_build() {
    let mut body = Graph::new("k");
    body.declare_var("v", TensorType::new(DType::F32, &[2]));
    let a = body.add_input(TensorType::new(DType::F32, &[2]));
    let e = body.add(Op::Unary(UnaryOp::Neg), &[a]).unwrap();
    body.set_outputs(vec![e]);
    let mut g = Graph::new("vars_in_body");
    let x = input(&mut g, &[2]);
    let k = g.add(Op::Fused(Arc::new(Kernel { body })), &[x]).unwrap();
    g.set_outputs(vec![k]);
    let inputs = [f32s(&[1.0, 2.0], &[2])];
    assert!(kiln_ir::interp::run(&g, &inputs, &[]).is_err(), "the interpreter cannot bind the body's variable");
    let err = Executable::new(g).err().expect("compiled code must refuse it too");
    assert!(err.to_string().contains("declares 1 variable(s)"), "{err}");
}

/// 2^40 f32 values (4 TiB): a valid size, which no test machine can allocate.
const HUGE: usize = 1 << 40;

#[track_caller]
fn assert_out_of_memory(r: kiln_ir::Result<kiln_jit::Outcome>) {
    match r {
        Err(e @ Error::OutOfMemory { .. }) => assert!(e.to_string().contains("cannot allocate"), "{e}"),
        Err(e) => panic!("expected an allocation error, got {e}"),
        Ok(_) => panic!("expected an allocation error, got Ok"),
    }
}

/// A graph file whose kernel broadcasts an `f32[1]` input to `f32[2^40]`, as an output
/// (`reduce: false`) or as an arena intermediate summed by a separate node.
fn huge_graph_text(reduce_after: bool) -> String {
    let mut g = Graph::new("huge");
    let x = input(&mut g, &[1]);
    let k = fused(&mut g, &[x], |b, i| {
        let wide = b.add(Op::BroadcastTo(vec![HUGE].into()), &[i[0]]).unwrap();
        un(b, UnaryOp::Neg, wide)
    });
    let out = if reduce_after { reduce(&mut g, ReduceOp::Max, k, &[0], false) } else { k };
    g.set_outputs(vec![out]);
    g.to_text()
}

#[test]
fn a_graph_file_declaring_a_huge_output_runs_to_an_error() {
    let g = Graph::from_text(&huge_graph_text(false)).unwrap();
    assert!(g.to_text().contains("f32[1099511627776]"));
    let inputs = [f32s(&[1.0], &[1])];
    assert_out_of_memory(kiln_ir::interp::run(&g, &inputs, &[]));
    let exe = Executable::new(g).unwrap();
    assert_out_of_memory(exe.run(&inputs, &[]));
    // The executable stays usable for a caller that handles the error.
    assert_out_of_memory(exe.run(&inputs, &[]));
}

#[test]
fn a_graph_file_declaring_a_huge_intermediate_runs_to_an_error() {
    let g = Graph::from_text(&huge_graph_text(true)).unwrap();
    let inputs = [f32s(&[1.0], &[1])];
    let exe = Executable::new(g).unwrap();
    assert!(exe.arena_bytes() >= HUGE * 4);
    assert_out_of_memory(exe.run(&inputs, &[]));
}

#[test]
fn a_graph_whose_arena_would_overflow_does_not_build() {
    // Three kernels of 2^59 f32 (2^61 bytes) each: every size is legal on its own, but the
    // arena arithmetic over them (per-thread block buffers included) would pass isize::MAX.
    let mut g = Graph::new("overflow");
    let x = input(&mut g, &[1]);
    let mut last = x;
    for _ in 0..3 {
        last = fused(&mut g, &[last], |b, i| {
            let wide = b.add(Op::BroadcastTo(vec![1 << 59].into()), &[i[0]]).unwrap();
            un(b, UnaryOp::Neg, wide)
        });
        last = reduce(&mut g, ReduceOp::Max, last, &[0], true);
    }
    g.set_outputs(vec![last]);
    let err = Executable::new(g).err().expect("the arena overflows");
    assert!(matches!(err, Error::Overflow { .. }), "{err}");
}
