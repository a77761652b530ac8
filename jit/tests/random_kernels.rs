//! Random f32 and f64 kernel bodies mixing cheap ops and transcendentals, over random shapes with
//! broadcast operands, sometimes ending in a reduction over the rows: the wide path (`lower/tiled.rs`: stages, tile buffers, in-place and
//! direct shortcuts, tile boundaries, ranges split at odd places) must give exactly the
//! bits of the all-Cranelift kernel. (Against the interpreter, random compositions are
//! too often ill-conditioned — `log1p` of a `tanh` near -1 turns 2 ULP into 1% — for a
//! tolerance to mean anything; each op's accuracy is tested on its own in `ulp.rs`.)
//!
//! CI runs 64 cases; `PROPTEST_CASES=5000 cargo test --release -p kiln-jit --test
//! random_kernels` runs a long campaign.

mod common;

use common::*;
use kiln_ir::{Array, BinaryOp, DType, Graph, NodeId, Op, ReduceOp, UnaryOp};
use proptest::prelude::*;

const UNARY: [UnaryOp; 11] = [
    UnaryOp::Sin,
    UnaryOp::Cos,
    UnaryOp::Exp,
    UnaryOp::Expm1,
    UnaryOp::Tanh,
    UnaryOp::Sigmoid,
    UnaryOp::Softplus,
    UnaryOp::Log1p,
    UnaryOp::Log,
    UnaryOp::Neg,
    UnaryOp::Abs,
];
const BINARY: [BinaryOp; 5] = [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Maximum, BinaryOp::Minimum];

/// One instruction: a unary op on an earlier value, or a binary op on two earlier values
/// (indices taken modulo the values available), or a comparison-driven select.
#[derive(Clone, Debug)]
enum Step {
    Unary(usize, usize),
    Binary(usize, usize, usize),
    Select(usize, usize, usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..UNARY.len(), any::<usize>()).prop_map(|(o, a)| Step::Unary(o, a)),
        4 => (0..BINARY.len(), any::<usize>(), any::<usize>()).prop_map(|(o, a, b)| Step::Binary(o, a, b)),
        1 => (any::<usize>(), any::<usize>(), any::<usize>()).prop_map(|(c, a, b)| Step::Select(c, a, b)),
    ]
}

/// Operand layouts against the output shape `[rows, cols]`: whole, a broadcast row, a
/// broadcast column, a scalar.
fn operand_shape(kind: u8, rows: usize, cols: usize) -> Vec<usize> {
    match kind % 4 {
        0 => vec![rows, cols],
        1 => vec![cols],
        2 => vec![rows, 1],
        _ => vec![],
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn wide_kernels_equal_cranelift_kernels(
        rows in 1usize..5,
        cols in prop_oneof![1usize..9, 250usize..263, 500usize..530],
        kinds in proptest::collection::vec(any::<u8>(), 1..4),
        steps in proptest::collection::vec(step(), 1..10),
        reduce in proptest::option::of(0usize..4),
        double in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let d = if double { DType::F64 } else { DType::F32 };
        let shapes: Vec<Vec<usize>> = std::iter::once(vec![rows, cols])
            .chain(kinds.iter().map(|&k| operand_shape(k, rows, cols)))
            .collect();
        let types: Vec<_> = shapes.iter().map(|s| ty(d, s)).collect();
        let k = kernel(&types, |g: &mut Graph, ins: &[NodeId]| {
            let mut vals: Vec<NodeId> = ins.to_vec();
            for s in &steps {
                let n = vals.len();
                let v = match *s {
                    Step::Unary(o, a) => add(g, Op::Unary(UNARY[o]), &[vals[a % n]]),
                    Step::Binary(o, a, b) => add(g, Op::Binary(BINARY[o]), &[vals[a % n], vals[b % n]]),
                    Step::Select(c, a, b) => {
                        let zero = g.add_const(if double { Array::scalar(0.0f64) } else { Array::scalar(0.0f32) });
                        let m = add(g, Op::Binary(BinaryOp::Greater), &[vals[c % n], zero]);
                        add(g, Op::Select, &[m, vals[a % n], vals[b % n]])
                    }
                };
                vals.push(v);
            }
            // The root must have the full output shape: add the first input (zero-cost
            // broadcast for whatever the last value's shape is).
            let last = *vals.last().unwrap();
            let full = add(g, Op::Binary(BinaryOp::Add), &[last, ins[0]]);
            // Sometimes a reduction over the rows, which tiles accumulate.
            match reduce {
                Some(r) => {
                    let op = [ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min, ReduceOp::Mean][r];
                    add(g, Op::Reduce { op, axes: vec![1], keepdims: false }, &[full])
                }
                None => full,
            }
        });
        let mut rng = Rng(seed | 1);
        let inputs: Vec<Array> = shapes.iter().map(|s| random(&mut rng, d, s)).collect();
        assert_paths_agree(&k, &inputs, &k.body.to_text());
    }
}
