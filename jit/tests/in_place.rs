//! Variable updates written over the Variable's old buffer (`Executable::run_updating`,
//! `executor/in_place.rs`): when the plan allows it, what the call computes, and that a
//! failed call or a shared array keeps the old value.

mod executor_support;

use executor_support::*;
use kiln_ir::{Array, BinaryOp, DType, Graph, NodeId, Op, TensorType};
use kiln_jit::{Executable, Outcome};

const N: usize = 4096;

/// A graph with an input `grad` and an SGD step `w <- w - 0.5 * grad` of its Variable `v`
/// (read as `w`, the new value `new`).
struct Sgd {
    g: Graph,
    grad: NodeId,
    v: u32,
    w: NodeId,
    new: NodeId,
}

fn sgd(name: &str) -> Sgd {
    let mut g = Graph::new(name);
    let grad = input(&mut g, &[N]);
    let v = declare(&mut g);
    let w = g.add_read_var(v).unwrap();
    let half = g.add_const(Array::scalar(0.5f32));
    let new = fused(&mut g, &[w, grad, half], |b, i| {
        let step = bin(b, BinaryOp::Mul, i[1], i[2]);
        bin(b, BinaryOp::Sub, i[0], step)
    });
    let write = g.add(Op::AssignVar(v), &[new]).unwrap();
    g.add_order(w, write);
    Sgd { g, grad, v, w, new }
}

fn declare(g: &mut Graph) -> u32 {
    g.declare_var("w", TensorType::new(DType::F32, &[N]))
}

/// The gradient and the Variable's array every test runs with.
fn operands() -> (Array, Array) {
    (f32s(&data(N, 1), &[N]), f32s(&data(N, 2), &[N]))
}

fn first_ptr(a: &Array) -> *const f32 {
    a.as_slice::<f32>().unwrap().as_ptr()
}

/// Runs `exe` handing `w` over; returns the outcome.
fn run(exe: &Executable, inputs: &[&Array], w: &mut Array) -> kiln_ir::Result<Outcome> {
    let mut out = Outcome { outputs: Vec::new(), writes: Vec::new() };
    exe.run_updating(inputs, &mut [w], &mut out).map(|()| out)
}

#[test]
fn an_sgd_step_writes_over_the_variable_and_matches_the_interpreter() {
    let Sgd { g, v, .. } = sgd("sgd");
    let exe = Executable::new(g.clone()).unwrap();
    assert_eq!(exe.updates_in_place(), &[v as usize], "{}", exe.schedule_text());

    let (gr, mut w) = operands();
    let want = reference::run(&g, std::slice::from_ref(&gr), std::slice::from_ref(&w)).unwrap();
    let before = first_ptr(&w);
    let out = run(&exe, &[&gr], &mut w).unwrap();
    assert_eq!(out.writes.len(), 1);
    assert_eq!(first_ptr(&out.writes[0].1), before, "written over the old buffer");
    assert_eq!(out.writes[0].1.to_vec::<f32>().unwrap(), want.writes[0].1.to_vec::<f32>().unwrap());
}

#[test]
fn a_shared_array_keeps_its_value() {
    let exe = Executable::new(sgd("sgd").g).unwrap();
    let (gr, mut w) = operands();
    let held = w.clone();
    let out = run(&exe, &[&gr], &mut w).unwrap();
    assert_ne!(first_ptr(&out.writes[0].1), first_ptr(&held));
    assert_eq!(held.to_vec::<f32>().unwrap(), data(N, 2));
    assert_eq!(w.to_vec::<f32>().unwrap(), data(N, 2));
}

/// The old value read after the update (here by a later kernel whose result is an output)
/// must still be there: no in-place write.
#[test]
fn an_old_value_read_later_is_not_overwritten() {
    let Sgd { mut g, w, .. } = sgd("read_after");
    let later = fused(&mut g, &[w], |b, i| bin(b, BinaryOp::Add, i[0], i[0]));
    g.set_outputs(vec![later]);
    let exe = Executable::new(g).unwrap();
    let text = exe.schedule_text();
    let (kernel, reader) = (text.find("-> fresh buffer"), text.find("-> output 0"));
    assert!(kernel.is_some() && kernel < reader, "the reader runs after the update:\n{text}");
    assert!(exe.updates_in_place().is_empty(), "{text}");
    let (gr, mut w) = operands();
    let out = run(&exe, &[&gr], &mut w).unwrap();
    let doubled: Vec<f32> = data(N, 2).iter().map(|x| x + x).collect();
    assert_eq!(out.outputs[0].to_vec::<f32>().unwrap(), doubled);
    assert_eq!(w.to_vec::<f32>().unwrap(), data(N, 2));
}

/// Returning the old value (it would be the caller's, changed under it) or writing it to
/// another Variable rules the update out too.
#[test]
fn an_old_value_that_leaves_the_call_is_not_overwritten() {
    let Sgd { mut g, w, .. } = sgd("returned");
    g.set_outputs(vec![w]);
    assert!(Executable::new(g).unwrap().updates_in_place().is_empty());

    let Sgd { mut g, w, .. } = sgd("copied");
    let other = declare(&mut g);
    let copy = g.add(Op::AssignVar(other), &[w]).unwrap();
    g.add_order(w, copy);
    assert!(Executable::new(g).unwrap().updates_in_place().is_empty());
}

/// A step that can fail after the update (a gather, whose index may be out of range) keeps
/// it out of place, so a failed call leaves the Variable as it was.
#[test]
fn a_step_that_can_fail_after_the_update_keeps_the_old_value() {
    let Sgd { mut g, new, .. } = sgd("fails_later");
    let index = g.add_input(TensorType::new(DType::I64, &[]));
    let picked = g.add(Op::Gather { axis: 0 }, &[new, index]).unwrap();
    g.set_outputs(vec![picked]);
    let exe = Executable::new(g).unwrap();
    let text = exe.schedule_text();
    assert!(text.find("-> fresh buffer") < text.find("library"), "the gather runs after the update:\n{text}");
    assert!(exe.updates_in_place().is_empty(), "{text}");
    let (gr, mut w) = operands();
    assert!(run(&exe, &[&gr, &Array::scalar(N as i64)], &mut w).is_err());
    assert_eq!(w.to_vec::<f32>().unwrap(), data(N, 2));
    let out = run(&exe, &[&gr, &Array::scalar(3i64)], &mut w).unwrap();
    assert_eq!(out.outputs[0].to_vec::<f32>().unwrap(), vec![data(N, 2)[3] - 0.5 * data(N, 1)[3]]);
}

/// An output computed after the update (a train step's loss, say) does not rule it out: its
/// buffer is chosen before the call's first step, so nothing after the update allocates.
#[test]
fn an_output_written_after_the_update_is_allocated_first() {
    let Sgd { mut g, grad, v, .. } = sgd("loss_after");
    let loss = fused(&mut g, &[grad], |b, i| bin(b, BinaryOp::Mul, i[0], i[0]));
    g.set_outputs(vec![loss]);
    let exe = Executable::new(g).unwrap();
    let text = exe.schedule_text();
    assert!(text.find("over var @0") < text.find("-> output 0"), "the output is written after the update:\n{text}");
    assert_eq!(exe.updates_in_place(), &[v as usize], "{text}");
    let (gr, mut w) = operands();
    let before = first_ptr(&w);
    let mut out = Outcome { outputs: Vec::new(), writes: Vec::new() };
    for _ in 0..2 {
        // The second call writes the output into the first call's (unshared) output array.
        exe.run_updating(&[&gr], &mut [&mut w], &mut out).unwrap();
        let squares: Vec<f32> = data(N, 1).iter().map(|x| x * x).collect();
        assert_eq!(out.outputs[0].to_vec::<f32>().unwrap(), squares);
        assert_eq!(first_ptr(&out.writes[0].1), before);
        w = out.writes.pop().unwrap().1;
    }
    let twice: Vec<f32> = data(N, 2).iter().zip(data(N, 1)).map(|(w, d)| w - 0.5 * d - 0.5 * d).collect();
    assert_eq!(w.to_vec::<f32>().unwrap(), twice);
}

/// A view of an input returned after the update shares the input's array, never a buffer
/// chosen before the call (which nothing would write).
#[test]
fn a_view_returned_after_the_update_is_the_viewed_array() {
    let Sgd { mut g, grad, .. } = sgd("view_after");
    let view = g.add(Op::Reshape(kiln_ir::Shape::from_slice(&[64, N / 64])), &[grad]).unwrap();
    g.set_outputs(vec![view]);
    let exe = Executable::new(g).unwrap();
    let text = exe.schedule_text();
    assert!(text.find("over var @0") < text.find("= reshape"), "the view comes after the update:\n{text}");
    let (gr, mut w) = operands();
    let out = run(&exe, &[&gr], &mut w).unwrap();
    assert_eq!(out.outputs[0].shape(), &[64, N / 64]);
    assert_eq!(out.outputs[0].to_vec::<f32>().unwrap(), data(N, 1));
}
