//! The x86 emitter (`src/asm/`): the kernels it compiles must give exactly the bits of the
//! same kernels compiled by Cranelift (`kiln_jit::set_asm(false)`) on the same math path —
//! both run the same approximations, and every other op is IEEE-exact or defined bit for
//! bit — over every length (whole vectors, unrolled steps, the masked tail) and split call
//! ranges; and it must take the kernels it covers and leave the rest to Cranelift.
//!
//! CI runs 64 random cases; `PROPTEST_CASES=5000 cargo test --release -p kiln-jit --test
//! asm` runs a long campaign.

mod common;

use std::sync::Mutex;

use common::Rng;
use common::*;
use kiln_ir::{Array, BinaryOp, DType, Graph, Kernel, NodeId, Op, ReduceOp, UnaryOp};
use proptest::prelude::*;

/// The emitter switch is process-wide: tests that flip it hold this lock.
static ASM: Mutex<()> = Mutex::new(());

/// `f` with the emitter on or off, on math path `path`; the emitter is on again after.
fn with_asm<R>(on: bool, path: kiln_jit::MathPath, f: impl FnOnce() -> R) -> R {
    struct On;
    impl Drop for On {
        fn drop(&mut self) {
            kiln_jit::set_asm(true);
        }
    }
    let _on = On;
    with_path(path, || {
        kiln_jit::set_asm(on);
        f()
    })
}

/// Where the emitter must compile a kernel: on both wide paths, on AVX-512 (a reduction of
/// a random body, which on AVX2 falls back when the body does not fit the registers left
/// beside the accumulators), or nowhere (an uncovered op).
#[derive(Clone, Copy, Debug)]
enum Cover {
    Both,
    Avx512,
    No,
}

/// Runs `kernel` with the emitter and with Cranelift on every wide path, asserting the same
/// bits (NaNs: any NaN) and, when `covered`, that the emitter compiled it.
fn assert_emitter_agrees(kernel: &Kernel, inputs: &[Array], covered: Cover, what: &str) {
    let _held = ASM.lock().unwrap_or_else(|e| e.into_inner());
    for path in wide_paths() {
        let (emitted, generator) =
            with_asm(true, path, || (run_compiled(kernel, inputs), kiln_jit::compile(kernel).unwrap().generator()));
        let cranelift = with_asm(false, path, || run_compiled(kernel, inputs));
        assert_same(&emitted, &cranelift, &format!("{what} ({})", path.name()));
        let expected = match covered {
            Cover::Both => true,
            Cover::Avx512 => path == kiln_jit::MathPath::Avx512,
            Cover::No => false,
        };
        if expected {
            assert_eq!(generator, format!("asm-{}", path.name()), "{what}: not compiled by the emitter");
        }
    }
}

const UNARY: [UnaryOp; 14] = [
    UnaryOp::Exp,
    UnaryOp::Expm1,
    UnaryOp::Tanh,
    UnaryOp::Sigmoid,
    UnaryOp::Softplus,
    UnaryOp::Log,
    UnaryOp::Log1p,
    UnaryOp::Neg,
    UnaryOp::Abs,
    UnaryOp::Sqrt,
    UnaryOp::Rsqrt,
    UnaryOp::Square,
    UnaryOp::Relu,
    // Not covered: the kernel falls back to Cranelift, which must still agree.
    UnaryOp::Sin,
];
const BINARY: [BinaryOp; 6] =
    [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Maximum, BinaryOp::Minimum];
const COMPARE: [BinaryOp; 6] = [
    BinaryOp::Less,
    BinaryOp::LessEqual,
    BinaryOp::Greater,
    BinaryOp::GreaterEqual,
    BinaryOp::Equal,
    BinaryOp::NotEqual,
];

#[derive(Clone, Debug)]
enum Step {
    Unary(usize, usize),
    Binary(usize, usize, usize),
    /// `compare(a, b) ? c : d`.
    Select(usize, usize, usize, usize, usize),
    /// A scalar constant operand.
    Const(f32),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..UNARY.len(), any::<usize>()).prop_map(|(o, a)| Step::Unary(o, a)),
        4 => (0..BINARY.len(), any::<usize>(), any::<usize>()).prop_map(|(o, a, b)| Step::Binary(o, a, b)),
        1 => (0..COMPARE.len(), any::<usize>(), any::<usize>(), any::<usize>(), any::<usize>())
            .prop_map(|(o, a, b, c, d)| Step::Select(o, a, b, c, d)),
        1 => prop_oneof![Just(0.0f32), Just(-0.0), Just(1.0), Just(-2.5), Just(f32::NAN), Just(f32::INFINITY), Just(1e-40)]
            .prop_map(Step::Const),
    ]
}

/// Specials among random values, so NaN, infinities, zeros and subnormals reach every op.
fn values(rng: &mut Rng, n: usize) -> Vec<f32> {
    const SPECIAL: [f32; 10] =
        [0.0, -0.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e-40, -1e-45, 88.8, -104.5, 1.0];
    (0..n)
        .map(|_| match rng.below(6) {
            0 => SPECIAL[rng.below(SPECIAL.len() as u64) as usize],
            1 => f32::from_bits(rng.next() as u32),
            _ => ((rng.unit() - 0.5) * 20.0) as f32,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn emitted_kernels_equal_cranelift_kernels(
        rows in prop_oneof![Just(1usize), 2usize..6],
        n in prop_oneof![1usize..70, 1000usize..1090],
        kinds in proptest::collection::vec(0u8..4, 1..4),
        steps in proptest::collection::vec(step(), 1..12),
        const_leaf in any::<bool>(),
        reduce in proptest::option::of((0usize..4, any::<bool>())),
        seed in any::<u64>(),
    ) {
        let mut rng = Rng(seed | 1);
        // Operand 0 is whole ([rows, n], or [n] for one row); the others whole, a row
        // broadcast over the rows, a row statistic broadcast along the row, or a scalar.
        let whole = if rows == 1 { vec![n] } else { vec![rows, n] };
        let shapes: Vec<Vec<usize>> = std::iter::once(whole.clone())
            .chain(kinds.iter().map(|&k| match k {
                0 => whole.clone(),
                1 => vec![n],
                2 if rows > 1 => vec![rows, 1],
                _ => vec![],
            }))
            .collect();
        let types: Vec<_> = shapes.iter().map(|s| ty(DType::F32, s)).collect();
        let table = Array::from_vec(values(&mut rng, n), &[n]).unwrap();
        let covered = match (steps.iter().any(|s| matches!(s, Step::Unary(o, _) if UNARY[*o] == UnaryOp::Sin)), reduce) {
            (true, _) => Cover::No,
            // A reduction over one element collapses away: Cranelift's.
            (false, Some(_)) if n == 1 => Cover::No,
            (false, Some(_)) => Cover::Avx512,
            (false, None) => Cover::Both,
        };
        let k = kernel(&types, |g: &mut Graph, ins: &[NodeId]| {
            let mut vals: Vec<NodeId> = ins.to_vec();
            if const_leaf {
                // A whole constant operand: its address is patched in at load.
                vals.push(g.add_const(table.clone()));
            }
            for s in &steps {
                let m = vals.len();
                let v = match *s {
                    Step::Unary(o, a) => add(g, Op::Unary(UNARY[o]), &[vals[a % m]]),
                    Step::Binary(o, a, b) => add(g, Op::Binary(BINARY[o]), &[vals[a % m], vals[b % m]]),
                    Step::Select(o, a, b, c, d) => {
                        let mask = add(g, Op::Binary(COMPARE[o]), &[vals[a % m], vals[b % m]]);
                        add(g, Op::Select, &[mask, vals[c % m], vals[d % m]])
                    }
                    Step::Const(c) => g.add_const(Array::scalar(c)),
                };
                vals.push(v);
            }
            let last = *vals.last().unwrap();
            let full = add(g, Op::Binary(BinaryOp::Add), &[last, ins[0]]);
            // Sometimes a reduction along the rows (softmax's max and sum) or, over several
            // rows, down the columns (a bias gradient's sum).
            match reduce {
                Some((r, down)) => {
                    let op = [ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min, ReduceOp::Mean][r];
                    let axis = if rows == 1 || down { 0 } else { 1 };
                    add(g, Op::Reduce { op, axes: vec![axis], keepdims: false }, &[full])
                }
                None => full,
            }
        });
        let inputs: Vec<Array> = shapes
            .iter()
            .map(|s| Array::from_vec(values(&mut rng, s.iter().product()), s).unwrap())
            .collect();
        assert_emitter_agrees(&k, &inputs, covered, &k.body.to_text());
    }
}

#[test]
fn every_length_and_range_split_agrees() {
    // Whole unrolled steps (two, three and four vectors), single vectors and the masked
    // tail, for both widths.
    let mut rng = Rng(5);
    for n in (1..=70).chain([127, 128, 129, 255, 256, 257, 4096, 4099]) {
        let x = Array::from_vec(values(&mut rng, n), &[n]).unwrap();
        assert_emitter_agrees(&gelu(n), std::slice::from_ref(&x), Cover::Both, &format!("gelu over {n}"));
        // exp(x - 0.5) steps three vectors at a time on AVX2 (four copies need more registers).
        let exp = kernel(&[ty(DType::F32, &[n])], |g, x| {
            let half = g.add_const(Array::scalar(0.5f32));
            let d = add(g, Op::Binary(BinaryOp::Sub), &[x[0], half]);
            add(g, Op::Unary(UnaryOp::Exp), &[d])
        });
        assert_emitter_agrees(&exp, &[x], Cover::Both, &format!("exp over {n}"));
    }
}

/// Row (and column) sums, means, maxima and minima of finite values of mixed magnitudes,
/// where the order of accumulation shows in the rounding: the emitter must fold in
/// Cranelift's order exactly, for every remainder of the row (16-wide steps, 4-wide steps,
/// single values) and every column count (unrolled steps, single vectors, masked tail).
#[test]
fn reductions_accumulate_in_cranelifts_order() {
    let mut rng = Rng(21);
    for rows in [1usize, 3] {
        for n in (2..=50).chain([255, 256, 257, 1029]) {
            let shape = if rows == 1 { vec![n] } else { vec![rows, n] };
            let finite: Vec<f32> =
                (0..rows * n).map(|_| ((rng.unit() - 0.5) * 10f64.powi(rng.below(7) as i32 - 3)) as f32).collect();
            let x = Array::from_vec(finite, &shape).unwrap();
            let ops = [ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min, ReduceOp::Mean];
            let axes = if rows == 1 { vec![0] } else { vec![1, 0] };
            for (op, axis) in ops.into_iter().flat_map(|op| axes.iter().map(move |&a| (op, a))) {
                // A producer in the body too: x * x - x.
                let k = kernel(&[ty(DType::F32, &shape)], |g, i| {
                    let sq = add(g, Op::Unary(UnaryOp::Square), &[i[0]]);
                    let v = add(g, Op::Binary(BinaryOp::Sub), &[sq, i[0]]);
                    add(g, Op::Reduce { op, axes: vec![axis], keepdims: false }, &[v])
                });
                let what = format!("{op:?} over {shape:?} axis {axis}");
                assert_emitter_agrees(&k, std::slice::from_ref(&x), Cover::Both, &what);
                // A body too large for two copies at once on AVX2 (one runs twice a step).
                let k = kernel(&[ty(DType::F32, &shape)], |g, i| {
                    let v = add(g, Op::Unary(UnaryOp::Softplus), &[i[0]]);
                    add(g, Op::Reduce { op, axes: vec![axis], keepdims: false }, &[v])
                });
                let what = format!("{op:?} of softplus over {shape:?} axis {axis}");
                assert_emitter_agrees(&k, std::slice::from_ref(&x), Cover::Both, &what);
            }
        }
    }
}

#[test]
fn the_emitter_takes_what_it_covers_and_leaves_the_rest() {
    let _held = ASM.lock().unwrap_or_else(|e| e.into_inner());
    let f32_of = |s: &[usize]| ty(DType::F32, s);
    let binary = |op: BinaryOp, a: &[usize], b: &[usize]| {
        kernel(&[f32_of(a), f32_of(b)], |g, x| add(g, Op::Binary(op), &[x[0], x[1]]))
    };
    let sum_of = |ops: &[kiln_ir::TensorType]| {
        kernel(ops, |g, x| x[1..].iter().fold(x[0], |acc, &v| add(g, Op::Binary(BinaryOp::Add), &[acc, v])))
    };
    let covered = [
        (gelu(1000), "GELU"),
        (binary(BinaryOp::Add, &[4, 8], &[8]), "a row broadcast over the rows"),
        (binary(BinaryOp::Div, &[4, 8], &[4, 1]), "a row statistic broadcast along the row"),
        (sum_of(&vec![f32_of(&[64]); 9]), "nine operands"),
    ];
    let reduce = |op: ReduceOp, axis: usize| {
        kernel(&[f32_of(&[4, 8])], move |g, x| add(g, Op::Reduce { op, axes: vec![axis], keepdims: false }, &[x[0]]))
    };
    let reductions = [
        (reduce(ReduceOp::Max, 1), "a row max"),
        (reduce(ReduceOp::Sum, 1), "a row sum"),
        (reduce(ReduceOp::Mean, 1), "a row mean"),
        (reduce(ReduceOp::Sum, 0), "a column sum"),
    ];
    let f64_mul = kernel(&[ty(DType::F64, &[64])], |g, x| add(g, Op::Binary(BinaryOp::Mul), &[x[0], x[0]]));
    let cast = kernel(&[ty(DType::I32, &[64])], |g, x| add(g, Op::Cast(DType::F32), &[x[0]]));
    let left = [
        (f64_mul, "f64"),
        (cast, "a cast"),
        // Three dimensions after collapsing.
        (binary(BinaryOp::Add, &[2, 3, 4], &[3, 1]), "3-D"),
        // One more operand than the emitter has base registers for.
        (sum_of(&vec![f32_of(&[64]); 10]), "ten operands"),
    ];
    for path in kiln_jit::MathPath::available() {
        let emitted = match path {
            kiln_jit::MathPath::Cranelift => "cranelift".to_string(),
            p => format!("asm-{}", p.name()),
        };
        let generator = |k: &Kernel, on: bool| with_asm(on, path, || kiln_jit::compile(k).unwrap().generator());
        for (k, what) in &covered {
            assert_eq!(generator(k, true), emitted, "{what} ({})", path.name());
            assert_eq!(generator(k, false), "cranelift", "{what} with set_asm(false)");
        }
        for (k, what) in &reductions {
            assert_eq!(generator(k, true), emitted, "{what} ({})", path.name());
        }
        for (k, what) in &left {
            assert_eq!(generator(k, true), "cranelift", "{what} is Cranelift's");
        }
    }
}

#[test]
fn operands_at_their_limits_agree() {
    let mut rng = Rng(9);
    let n = 203;
    // Nine operands (five in callee-saved registers) and one broadcast element.
    let whole = [n];
    let types: Vec<_> = (0..9).map(|i| ty(DType::F32, if i == 3 { &[] } else { &whole })).collect();
    let k = kernel(&types, |g, x| {
        x[1..].iter().enumerate().fold(x[0], |acc, (i, &v)| {
            let op = [BinaryOp::Add, BinaryOp::Mul, BinaryOp::Sub, BinaryOp::Maximum][i % 4];
            add(g, Op::Binary(op), &[acc, v])
        })
    });
    let inputs: Vec<Array> =
        types.iter().map(|t| Array::from_vec(values(&mut rng, t.numel()), &t.shape).unwrap()).collect();
    assert_emitter_agrees(&k, &inputs, Cover::Both, "nine operands");
    // A long chain of transcendentals, whose unrolled copies do not fit the registers:
    // the emitter runs it one vector a step.
    let chain = kernel(&[ty(DType::F32, &[n]), ty(DType::F32, &[n])], |g, x| {
        let mut v = x[0];
        for op in [UnaryOp::Tanh, UnaryOp::Sigmoid, UnaryOp::Softplus, UnaryOp::Log1p, UnaryOp::Exp] {
            let u = add(g, Op::Unary(op), &[v]);
            v = add(g, Op::Binary(BinaryOp::Mul), &[u, x[1]]);
        }
        v
    });
    let inputs =
        [Array::from_vec(values(&mut rng, n), &[n]).unwrap(), Array::from_vec(values(&mut rng, n), &[n]).unwrap()];
    assert_emitter_agrees(&chain, &inputs, Cover::Both, "transcendental chain");
}
