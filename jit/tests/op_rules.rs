//! Every elementwise row of the op table has a rule everywhere it must: for each op and
//! each dtype its row accepts, the reference kernel runs, the lowering compiles (no
//! interpreter fallback) and both agree. The compiler demands that each site names the op;
//! this test catches a site that names it but refuses a dtype the table promises.

mod common;

use common::*;
use kiln_ir::{BinaryOp, DType, Op, UnaryOp};

const DTYPES: [DType; 5] = [DType::F32, DType::F64, DType::I32, DType::I64, DType::Bool];

/// Equal, or close (relative 1e-5, absolute below 1): the JIT's transcendentals are a few
/// ULP from the interpreter's (docs/JIT.md); the ULP tests bound them tightly.
fn agree(got: &kiln_ir::Array, want: &kiln_ir::Array, what: &str) {
    assert_eq!((got.dtype(), got.shape()), (want.dtype(), want.shape()), "{what}");
    for i in 0..got.len() {
        let (g, w) = (got.get_f64(i), want.get_f64(i));
        let close = (g.is_nan() && w.is_nan()) || g == w || (g - w).abs() <= 1e-5 * w.abs().max(1.0);
        assert!(close, "{what}: element {i}: compiled {g}, interpreter {w}");
    }
}

#[test]
fn every_unary_op_compiles_and_matches_the_interpreter_on_every_accepted_dtype() {
    let mut rng = Rng(3);
    let mut checked = 0;
    for op in UnaryOp::ALL {
        for d in DTYPES.into_iter().filter(|d| op.accepts(*d)) {
            let k = kernel(&[ty(d, &[37])], |g, i| add(g, Op::Unary(op), &[i[0]]));
            let x = random(&mut rng, d, &[37]);
            let what = format!("{} {d}", op.name());
            let want = run_interp(&k, std::slice::from_ref(&x)).unwrap_or_else(|e| panic!("{what}: interpreter: {e}"));
            kiln_jit::compile(&k).unwrap_or_else(|e| panic!("{what}: no lowering: {e}"));
            agree(&run_compiled(&k, &[x]), &want, &what);
            checked += 1;
        }
    }
    assert!(checked >= UnaryOp::ALL.len());
}

#[test]
fn every_binary_op_compiles_and_matches_the_interpreter_on_every_accepted_dtype() {
    let mut rng = Rng(4);
    for op in BinaryOp::ALL {
        for d in DTYPES.into_iter().filter(|d| op.accepts(*d)) {
            let k = kernel(&[ty(d, &[37]), ty(d, &[37])], |g, i| add(g, Op::Binary(op), &[i[0], i[1]]));
            // Nonzero divisors and non-negative exponents: an integer division by zero and a
            // negative integer power are the interpreter's errors to report.
            let a = random(&mut rng, d, &[37]);
            let b = match (op, d.is_int()) {
                (BinaryOp::Pow, true) => exponents(&mut rng, d, &[37]),
                (_, true) => nonzero(&mut rng, d, &[37]),
                _ => random(&mut rng, d, &[37]),
            };
            let what = format!("{} {d}", op.name());
            let want = run_interp(&k, &[a.clone(), b.clone()]).unwrap_or_else(|e| panic!("{what}: interpreter: {e}"));
            kiln_jit::compile(&k).unwrap_or_else(|e| panic!("{what}: no lowering: {e}"));
            agree(&run_compiled(&k, &[a, b]), &want, &what);
        }
    }
}

/// The table's dtype rule and the lowering agree the other way too: a dtype the row refuses
/// is refused by shape inference, so no lowering is ever asked for it.
#[test]
fn refused_dtypes_are_refused_by_inference() {
    for op in UnaryOp::ALL {
        for d in DTYPES.into_iter().filter(|d| !op.accepts(*d)) {
            assert!(kiln_ir::infer(&Op::Unary(op), &[ty(d, &[2])]).is_err(), "{} {d}", op.name());
        }
    }
    for op in BinaryOp::ALL {
        for d in DTYPES.into_iter().filter(|d| !op.accepts(*d)) {
            assert!(kiln_ir::infer(&Op::Binary(op), &[ty(d, &[2]), ty(d, &[2])]).is_err(), "{} {d}", op.name());
        }
    }
}
