//! W5 call overhead: `3*w1^2 + 2*w1*w2` on f32 scalars, as one fused kernel.
//! Run with `cargo test --release -p kiln-jit --test executor_overhead -- --ignored --nocapture`.

mod executor_support;

use executor_support::*;
use kiln_ir::{Array, BinaryOp, Graph};
use kiln_jit::Executable;

#[test]
#[ignore = "a measurement; prints µs per call"]
fn tiny_graph_call_overhead() {
    let mut g = Graph::new("w5");
    let w1 = input(&mut g, &[]);
    let w2 = input(&mut g, &[]);
    let three = g.add_const(Array::scalar(3.0f32));
    let two = g.add_const(Array::scalar(2.0f32));
    let y = fused(&mut g, &[w1, w2, three, two], |b, i| {
        let sq = bin(b, BinaryOp::Mul, i[0], i[0]);
        let t1 = bin(b, BinaryOp::Mul, i[2], sq);
        let p = bin(b, BinaryOp::Mul, i[3], i[0]);
        let t2 = bin(b, BinaryOp::Mul, p, i[1]);
        bin(b, BinaryOp::Add, t1, t2)
    });
    g.set_outputs(vec![y]);
    let exe = Executable::new(g).unwrap();
    let ins = [Array::scalar(1.5f32), Array::scalar(-0.5f32)];
    let mut out = exe.run(&ins, &[]).unwrap();
    assert_eq!(out.outputs[0].to_vec::<f32>().unwrap(), vec![3.0 * 2.25 - 1.5]);
    let n = 200_000;
    for (name, into) in [("run", false), ("run_into", true)] {
        let t = std::time::Instant::now();
        for _ in 0..n {
            if into {
                exe.run_into(&ins, &[], &mut out).unwrap();
            } else {
                out = exe.run(&ins, &[]).unwrap();
            }
        }
        let us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
        println!("{name}: {us:.3} µs/call ({} fallbacks)", exe.fallbacks().len());
    }
}
